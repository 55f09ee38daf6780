import { Command } from 'commander';
import { DEFAULT_SHAPE, KpruneError, PrunePlan, prune, renderPrune } from '../../src/index.js';
import { phasePrinter, printJson, readJsonFile, writeJsonFile } from '../output.js';
import { collectPairs, parseNumber } from '../parse.js';

interface PruneFlags {
  shape?: string;
  budget?: number;
  layerShape?: Record<string, string>;
  output?: string;
  report?: string;
  json?: boolean;
  inputShape?: string;
  threshold?: number;
  plan?: string;
  quiet?: boolean;
}

async function readPlan(file: string): Promise<PrunePlan> {
  let doc: unknown;
  try {
    doc = await readJsonFile(file);
  } catch (e) {
    throw new KpruneError('usage', `cannot read the plan (${e instanceof Error ? e.message : String(e)})`, { file });
  }
  // Accept a plan, or a report that embeds one.
  const d = doc as { planVersion?: number; plan?: PrunePlan };
  const plan = d.planVersion === 1 ? (doc as PrunePlan) : d.plan;
  if (!plan || plan.planVersion !== 1 || !Array.isArray(plan.entries)) {
    throw new KpruneError('usage', 'not a kprune plan or report', { file });
  }
  return plan;
}

export function pruneCommand(): Command {
  return new Command('prune')
    .description('reshape every 3x3 kernel to a lattice shape and write the slimmed model (the default command)')
    .argument('<model>', 'an ONNX model')
    .option('-s, --shape <shape>', `full, cross, x, qh-right, qh-left, qh-up, qh-down, qh-cw, qh-ccw, qh, auto, or a mask like 010/111/010 (default: ${DEFAULT_SHAPE})`)
    .option('--budget <fraction>', 'with --shape auto: keep at most this share of 3x3 weights (default 0.6)', parseNumber('--budget'))
    .option('--layer-shape <name=shape>', 'give one layer (node or weight name) its own shape; repeatable', collectPairs)
    .option('-o, --output <file>', 'where to write the slimmed model (default: <name>.kpruned.onnx beside the input)')
    .option('--report <file>', 'also write the report as JSON to this file')
    .option('--json', 'print the report as one JSON document on stdout, nothing else')
    .option('--input-shape <dims>', 'input dims for measuring MACs, e.g. 1,3,224,224 or "a=1,3,224,224;b=1,10"')
    .option('--threshold <t>', 'low-magnitude threshold for the analysis (default 0.5)', parseNumber('--threshold'))
    .option('--plan <file>', 'replay the plan of an earlier report (or a plan file) instead of choosing shapes')
    .option('-q, --quiet', 'print only the summary, not the per-layer table')
    .action(async (model: string, opts: PruneFlags) => {
      const progress = phasePrinter(!opts.json);
      const plan = opts.plan ? await readPlan(opts.plan) : undefined;
      try {
        const report = await prune(model, {
          shape: opts.shape,
          budget: opts.budget,
          layerShapes: opts.layerShape,
          output: opts.output,
          inputShape: opts.inputShape,
          threshold: opts.threshold,
          plan,
          onPhase: progress.phase,
        });
        progress.done();
        if (opts.report) await writeJsonFile(opts.report, report);
        if (opts.json) printJson(report);
        else process.stdout.write(renderPrune(report, !opts.quiet) + '\n');
      } finally {
        progress.done();
      }
    });
}
