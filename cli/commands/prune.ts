import { Command, Option } from 'commander';
import { DEFAULT_SHAPE, KpruneError, PrunePlan, masksDocument, prune, renderHtml, renderPrune } from '../../src/index.js';
import { applyConfig } from '../config.js';
import { DataFlags, addDataOptions, dataOptions } from '../data-options.js';
import { EXIT_GATE } from '../exit-codes.js';
import { printJson, readJsonFile, writeJsonFile, writeTextFile } from '../output.js';
import { progressView } from '../progress.js';
import { collectPairs, parseInteger, parseNumber } from '../parse.js';
import { terminalStyle } from '../style.js';

interface PruneFlags extends DataFlags {
  shape?: string;
  budget?: number;
  layerShape?: Record<string, string>;
  output?: string;
  report?: string;
  json?: boolean;
  inputShape?: string;
  threshold?: number;
  plan?: string;
  verbose?: boolean;
  recover?: 'reconstruct' | 'none';
  layout?: 'masked' | 'decomposed' | 'sparse' | 'auto';
  batch?: number;
  latencyRuns?: number;
  threads?: number;
  run?: boolean;
  gzip?: boolean;
  maxDrop?: number;
  emitMasks?: string;
  weights?: 'keep' | 'float32';
  finetune?: number;
  lr?: number;
  trainBatch?: number;
  trainSamples?: number;
  optimizer?: 'adam' | 'sgd';
  engine?: 'auto' | 'onnxruntime' | 'tfjs';
  device?: 'cpu' | 'cuda' | 'coreml' | 'dml';
  config?: string;
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
  const cmd = new Command('prune')
    .description('reshape every 3x3 kernel to a lattice shape and write the slimmed model (the default command)')
    .argument('<model>', 'an ONNX model (.onnx) or a TensorFlow.js model (model.json)')
    .option('-s, --shape <shape>', `full, cross, x, qh-right, qh-left, qh-up, qh-down, qh-cw, qh-ccw, qh, auto, or a mask like 010/111/010 (default: ${DEFAULT_SHAPE})`)
    .option('--budget <fraction>', 'with --shape auto: keep at most this share of 3x3 weights (default 0.6)', parseNumber('--budget'))
    .option('--layer-shape <name=shape>', 'give one layer (node or weight name) its own shape; repeatable', collectPairs)
    .option('-o, --output <file>', 'where to write the slimmed model (default: <name>.kpruned.onnx beside an ONNX input; <name>.kpruned/<name>.json beside a TF.js one)')
    .addOption(new Option('--weights <storage>', 'TF.js: keep the weights\' storage (quantization, float16) or write float32').choices(['keep', 'float32']))
    .addOption(new Option('--layout <layout>', 'how reshaped layers are stored: masked (zeros in place), decomposed (smaller convolutions: fewer bytes and MACs), sparse (a Constant with a COO sparse_value), auto (per layer, the faster of masked and decomposed, timed here)').choices(['masked', 'decomposed', 'sparse', 'auto']))
    .option('--report <file>', 'also write the report: .html for a page to open in a browser, else JSON')
    .option('--json', 'print the report as one JSON document on stdout, nothing else')
    .option('--emit-masks <file>', 'write the chosen 3x3 masks per layer as JSON, to apply in PyTorch or Keras')
    .option('--max-drop <points>', 'quality gate: exit 1 if top-1 (or agreement without labels) drops by more than this many points', parseNumber('--max-drop'))
    .option('--input-shape <dims>', 'input dims for measuring, e.g. 1,3,224,224 or "a=1,3,224,224;b=1,10"')
    .option('--batch <n>', 'batch for --layout auto timings and the latency comparison (default 1)', parseInteger('--batch'))
    .option('--latency-runs <n>', 'timed runs per model for the latency comparison (default 50; 0 = skip)', parseInteger('--latency-runs'))
    .option('--no-run', 'never execute the model (for models too large for a runtime to hold): the output is checked by reading it back; latency and MACs are reported unknown')
    .option('--no-gzip', 'report file sizes without gzip sizes (gzip of a model of gigabytes takes minutes)')
    .option('--threads <n>', 'onnxruntime threads for timings and fine-tuning (ONNX; default: its own choice)', parseInteger('--threads'))
    .option('--threshold <t>', 'low-magnitude threshold for the analysis (default 0.5)', parseNumber('--threshold'))
    .option('--plan <file>', 'replay the plan of an earlier report (or a plan file) instead of choosing shapes')
    .addOption(new Option('--recover <method>', 'recovery with data (default reconstruct)').choices(['reconstruct', 'none']))
    .option('--finetune <steps>', 'after reconstruction, fine-tune the kept weights for this many steps (needs --data; labels: cross-entropy + distillation, none: distillation)', parseInteger('--finetune'))
    .option('--lr <rate>', 'fine-tuning learning rate (default 3e-3 for adam, 1e-2 for sgd)', parseNumber('--lr'))
    .option('--train-batch <n>', 'fine-tuning samples per step (default 64)', parseInteger('--train-batch'))
    .option('--train-samples <n>', 'fine-tuning training samples, loaded beside the calibration ones (default steps x batch, at most 20000)', parseInteger('--train-samples'))
    .addOption(new Option('--optimizer <name>', 'fine-tuning optimiser (default adam)').choices(['adam', 'sgd']))
    .addOption(new Option('--engine <name>', 'ONNX fine-tuning engine: auto (onnxruntime when every operator on the gradient path has a backward rule, else TF.js), onnxruntime, tfjs').choices(['auto', 'onnxruntime', 'tfjs']))
    .addOption(new Option('--device <name>', 'onnxruntime execution provider for fine-tuning (default cpu; cuda, coreml, dml where onnxruntime-node offers them)').choices(['cpu', 'cuda', 'coreml', 'dml']))
    .option('--config <file>', 'read options from a JSON file (command-line options win)')
    .option('-v, --verbose', 'also print the per-layer table');
  addDataOptions(cmd, true);
  return cmd.action(async (model: string, opts: PruneFlags, self: Command) => {
    if (opts.config) {
      await applyConfig(self, opts.config);
      Object.assign(opts, self.opts());
    }
    const view = progressView(!opts.json);
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
        data: dataOptions(opts),
        recover: opts.recover,
        layout: opts.layout,
        batch: opts.batch,
        latencyRuns: opts.latencyRuns,
        threads: opts.threads,
        run: opts.run,
        gzip: opts.gzip,
        maxDrop: opts.maxDrop,
        weights: opts.weights,
        ...(opts.finetune !== undefined ? { finetune: { steps: opts.finetune, lr: opts.lr, batch: opts.trainBatch, optimizer: opts.optimizer, samples: opts.trainSamples, engine: opts.engine, device: opts.device, threads: opts.threads } } : {}),
        onProgress: view.update,
      });
      view.done();
      if (opts.report) {
        if (/\.html?$/i.test(opts.report)) await writeTextFile(opts.report, renderHtml(report));
        else await writeJsonFile(opts.report, report);
      }
      if (opts.emitMasks) await writeJsonFile(opts.emitMasks, masksDocument(report));
      if (opts.json) printJson(report);
      else process.stdout.write(renderPrune(report, { verbose: opts.verbose, style: terminalStyle(opts.json) }) + '\n');
      if (report.gate && !report.gate.passed) process.exitCode = EXIT_GATE;
    } finally {
      view.done();
    }
  });
}
