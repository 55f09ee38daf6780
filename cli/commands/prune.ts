import { Command, Option } from 'commander';
import { DEFAULT_SHAPE, KpruneError, reasonOf, PrunePlan, defaultOutputPath, planFromDocument, prune, renderPrune } from '../../src/index.js';
import { Output, announceGate, announceReplaced, existing, whereWritten } from '../announce.js';
import { checkPruneCombos } from '../combos.js';
import { addEpilogue, shapeList } from '../help.js';
import { applyConfig, cliInputs } from '../config.js';
import { DataFlags, addDataOptions, dataOptions } from '../data-options.js';
import { EXIT_GATE } from '../exit-codes.js';
import { commandLine, printJson, readJsonFile } from '../output.js';
import { progressView } from '../progress.js';
import { collectPairs, parseInteger, parseNumber } from '../parse.js';
import { terminalStyle } from '../style.js';

interface PruneFlags extends DataFlags {
  shape?: string;
  budget?: number;
  budgetOf?: 'params' | 'macs';
  reshapeAll?: boolean;
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
  quiet?: boolean;
}

async function readPlan(file: string): Promise<PrunePlan> {
  let doc: unknown;
  try {
    doc = await readJsonFile(file);
  } catch (e) {
    // Node's ENOENT message quotes the path again: the error names the file once, in front.
    const why = (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : reasonOf(e, file);
    throw new KpruneError('usage', `cannot read the plan (${why})`, { file });
  }
  // Accept a plan, or a report that embeds one; checked field by field.
  return planFromDocument(doc, file);
}

export function pruneCommand(): Command {
  const cmd = new Command('prune')
    .description('reshape every 3x3 kernel to a lattice shape and write the slimmed model (the default command)')
    .argument('<model>', 'an ONNX model (.onnx) or a TensorFlow.js model (model.json)')
    .option('-s, --shape <shape>', `${shapeList()}, or a mask like 010/111/010 (default: ${DEFAULT_SHAPE}; \`kprune shapes\` draws them)`)
    .option('--budget <fraction>', 'with --shape auto: keep at most this share of the 3x3 layers\' weights, or MACs with --budget-of macs (default 0.6)', parseNumber('--budget'))
    .addOption(new Option('--budget-of <unit>', 'with --shape auto: count the budget in the 3x3 layers\' parameters (default) or MACs').choices(['params', 'macs']))
    .option('--reshape-all', 'with --shape auto: also reshape layers that would save little of the model at a large loss (kept full by default)')
    .option('--layer-shape <name=shape>', 'give one layer (node or weight name) its own shape; repeatable', collectPairs)
    .option('-o, --output <file>', 'where to write the slimmed model (default: <name>.kpruned.onnx beside an ONNX input; <name>.kpruned/<name>.json beside a TF.js one)')
    .addOption(new Option('--weights <storage>', 'TF.js: keep the weights\' storage (quantization, float16) or write float32').choices(['keep', 'float32']))
    .addOption(new Option('--layout <layout>', 'how reshaped layers are stored: decomposed (the default: smaller convolutions holding only the kept weights, fewer bytes and MACs, exact), masked (zeros in place: the original structure, to train further), sparse (a Constant with a COO sparse_value), auto (per layer, the faster of masked and decomposed, timed here)').choices(['masked', 'decomposed', 'sparse', 'auto']))
    .option('--report <file>', 'also write the report: .html for a page to open in a browser, else JSON')
    .option('--json', 'print the report as one JSON document on stdout, nothing else')
    .option('--emit-masks <file>', 'write the chosen 3x3 masks per layer as JSON, to apply in PyTorch or Keras')
    .option('--max-drop <points>', 'quality gate: exit 1 if top-1 (or agreement without labels) drops by more than this many points', parseNumber('--max-drop'))
    .option('--input-shape <dims>', 'input dims for measuring, e.g. 1,3,224,224 or "a=1,3,224,224;b=1,10"')
    .option('--batch <n>', 'batch for --layout auto timings and the latency comparison (default 1)', parseInteger('--batch'))
    .option('--latency-runs <n>', 'timed runs per model for the latency comparison (default 50; 0 = skip)', parseInteger('--latency-runs'))
    .option('--no-run', 'never execute the model (for models too large for a runtime to hold): the output is checked by reading it back; latency and MACs are reported unknown')
    .option('--no-gzip', 'report file sizes without gzip sizes (gzip of a model of gigabytes takes minutes)')
    .option('--threads <n>', 'onnxruntime threads for timings (ONNX; default: its own choice); fine-tuning on the CPU splits each batch over this many worker threads (default: the machine\'s cores; 1: one session)', parseInteger('--threads'))
    .option('--threshold <t>', 'low-magnitude threshold for the analysis (default 0.5)', parseNumber('--threshold'))
    .option('--plan <file>', 'replay the plan of an earlier report (or a plan file) instead of choosing shapes')
    .addOption(new Option('--recover <method>', 'recovery with data (default reconstruct)').choices(['reconstruct', 'none']))
    .option('--finetune <steps>', 'after reconstruction, fine-tune the kept weights for this many steps (needs --data; labels: cross-entropy + distillation, none: distillation)', parseInteger('--finetune'))
    .option('--lr <rate>', 'fine-tuning learning rate (default 3e-3 for adam, 1e-2 for sgd)', parseNumber('--lr'))
    .option('--train-batch <n>', 'fine-tuning samples per step (default 64)', parseInteger('--train-batch'))
    .option('--train-samples <n>', 'fine-tuning training samples, loaded beside the calibration ones (default steps x batch, at most 40000)', parseInteger('--train-samples'))
    .addOption(new Option('--optimizer <name>', 'fine-tuning optimiser (default adam)').choices(['adam', 'sgd']))
    .addOption(new Option('--engine <name>', 'ONNX fine-tuning engine: auto (onnxruntime when every operator on the gradient path has a backward rule, else TF.js), onnxruntime, tfjs').choices(['auto', 'onnxruntime', 'tfjs']))
    .addOption(new Option('--device <name>', 'onnxruntime execution provider for fine-tuning (default cpu; cuda, coreml, dml where onnxruntime-node offers them)').choices(['cpu', 'cuda', 'coreml', 'dml']))
    .option('--config <file>', 'read options from a JSON file (command-line options win)')
    .option('-v, --verbose', 'also print the per-layer table')
    .option('-q, --quiet', 'no progress lines on stderr (errors, the gate and replaced files are still said)');
  addDataOptions(cmd, true);
  addEpilogue(cmd);
  return cmd.action(async (model: string, opts: PruneFlags, self: Command) => {
    if (opts.config) {
      await applyConfig(self, opts.config);
      Object.assign(opts, self.opts());
    }
    checkPruneCombos(self);
    const view = progressView(!opts.json && !opts.quiet);
    const plan = opts.plan ? await readPlan(opts.plan) : undefined;
    const outputs: Output[] = [
      { role: 'model', path: opts.output ?? await defaultOutputPath(model) },
      ...(opts.report ? [{ role: 'report' as const, path: opts.report }] : []),
      ...(opts.emitMasks ? [{ role: 'masks' as const, path: opts.emitMasks }] : []),
    ];
    const before = existing(outputs);
    try {
      const report = await prune(model, {
        shape: opts.shape,
        budget: opts.budget,
        budgetOf: opts.budgetOf,
        reshapeAll: opts.reshapeAll,
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
        // Written by the library in the run's transaction: with the model, or not at all.
        report: opts.report,
        emitMasks: opts.emitMasks,
        otherInputs: cliInputs(opts),
        commandLine: commandLine(),
      });
      view.done();
      announceReplaced(before);
      if (opts.json) printJson(report);
      else process.stdout.write(renderPrune(report, { verbose: opts.verbose, style: terminalStyle(opts.json) }) + '\n' + whereWritten(outputs, report.output.files) + '\n');
      announceGate(report.gate);
      if (report.gate && !report.gate.passed) process.exitCode = EXIT_GATE;
    } finally {
      view.done();
    }
  });
}
