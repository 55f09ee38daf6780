import { Command, Option } from 'commander';
import { DEFAULT_SHAPE, KpruneError, PrunePlan, prune, renderPrune } from '../../src/index.js';
import type { PruneOptions } from '../../src/index.js';
import { printJson, readJsonFile, writeJsonFile } from '../output.js';
import { progressView } from '../progress.js';
import { collectPairs, parseInteger, parseList, parseNumber } from '../parse.js';

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
  data?: string;
  calib?: number;
  eval?: number;
  seed?: number;
  recover?: 'reconstruct' | 'none';
  layout?: 'masked' | 'decomposed' | 'sparse' | 'auto';
  batch?: number;
  latencyRuns?: number;
  threads?: number;
  preset?: 'imagenet' | 'fashion-mnist';
  size?: number[];
  channels?: number;
  dataLayout?: 'NCHW' | 'NHWC';
  scale?: number;
  mean?: number[];
  std?: number[];
  occlusion?: number;
  ridge?: number;
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

function dataOptions(o: PruneFlags): PruneOptions['data'] {
  if (!o.data) {
    for (const flag of ['calib', 'eval', 'preset', 'size', 'channels', 'dataLayout', 'scale', 'mean', 'std', 'occlusion', 'ridge'] as const) {
      if (o[flag] !== undefined) throw new KpruneError('usage', `--${flag.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} needs --data`);
    }
    return undefined;
  }
  const preprocess: NonNullable<NonNullable<PruneOptions['data']>['preprocess']> = {};
  if (o.size) {
    if (o.size.length > 2) throw new KpruneError('usage', '--size takes H,W or one number');
    preprocess.height = o.size[0];
    preprocess.width = o.size[1] ?? o.size[0];
  }
  if (o.channels !== undefined) preprocess.channels = o.channels;
  if (o.dataLayout) preprocess.layout = o.dataLayout;
  if (o.scale !== undefined) preprocess.scale = o.scale;
  if (o.mean) preprocess.mean = o.mean;
  if (o.std) preprocess.std = o.std;
  return {
    data: o.data, calib: o.calib, eval: o.eval, seed: o.seed, preset: o.preset, preprocess,
    occlusion: o.occlusion, ridge: o.ridge,
  };
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
    .option('--data <source>', 'calibration/evaluation data: fashion-mnist, a folder of images (class sub-folders = labels), an .npy/.npz, or an IDX images file')
    .option('--calib <n>', 'calibration samples (default 512)', parseInteger('--calib'))
    .option('--eval <n>', 'evaluation samples (default 2000)', parseInteger('--eval'))
    .option('--seed <n>', 'seed for sampling and occlusion (default 0)', parseInteger('--seed'))
    .addOption(new Option('--layout <layout>', 'how reshaped layers are stored: masked (zeros in place), decomposed (smaller convolutions: fewer bytes and MACs), sparse (ONNX sparse_initializer), auto (per layer, the faster of masked and decomposed, timed here)').choices(['masked', 'decomposed', 'sparse', 'auto']))
    .option('--batch <n>', 'batch for --layout auto timings and the latency comparison (default 1)', parseInteger('--batch'))
    .option('--latency-runs <n>', 'timed runs per model for the latency comparison (default 50; 0 = skip)', parseInteger('--latency-runs'))
    .option('--threads <n>', 'onnxruntime threads for timings (default: its own choice)', parseInteger('--threads'))
    .addOption(new Option('--recover <method>', 'recovery with data (default reconstruct)').choices(['reconstruct', 'none']))
    .addOption(new Option('--preset <name>', 'preprocessing preset').choices(['imagenet', 'fashion-mnist']))
    .option('--size <h,w>', 'resize images to this size (default: the model input size)', parseList('--size'))
    .option('--channels <n>', 'image channels (1 or 3; default: the model input)', parseInteger('--channels'))
    .addOption(new Option('--data-layout <layout>', 'input layout of the data (default: from the model input)').choices(['NCHW', 'NHWC']))
    .option('--scale <s>', 'multiply 0..255 pixel values by s (default 1/255)', parseNumber('--scale'))
    .option('--mean <m,...>', 'per-channel mean subtracted after scaling', parseList('--mean'))
    .option('--std <s,...>', 'per-channel std divided after the mean', parseList('--std'))
    .option('--occlusion <area>', 'share of the image the occlusion patch covers (default 0.25; 0 = off)', parseNumber('--occlusion'))
    .option('--ridge <r>', 'ridge strength for reconstruction (default 1e-3)', parseNumber('--ridge'))
    .action(async (model: string, opts: PruneFlags) => {
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
          onProgress: view.update,
        });
        view.done();
        if (opts.report) await writeJsonFile(opts.report, report);
        if (opts.json) printJson(report);
        else process.stdout.write(renderPrune(report, !opts.quiet) + '\n');
      } finally {
        view.done();
      }
    });
}
