import { Command, Option } from 'commander';
import { KpruneError, renderSweep, shellQuote, sweep, withinDropLine } from '../../src/index.js';
import { Output, announceReplaced, existing, whereWritten } from '../announce.js';
import { DataFlags, addDataOptions, dataOptions } from '../data-options.js';
import { addEpilogue } from '../help.js';
import { commandLine, printJson } from '../output.js';
import { parseInteger, parseList, parseNumber } from '../parse.js';
import { EXIT_GATE } from '../exit-codes.js';
import { progressView } from '../progress.js';

interface SweepFlags extends DataFlags {
  shapes?: string;
  budgets?: number[];
  budgetOf?: 'params' | 'macs';
  maxDrop?: number;
  json?: boolean;
  report?: string;
  inputShape?: string;
  latencyRuns?: number;
  batch?: number;
  threads?: number;
  quiet?: boolean;
}

/** The data options as the user gave them, for each point's reproducing command. */
function dataFlags(argv: string[]): string {
  const out: string[] = [];
  const takes = new Set(['--data', '--calib', '--eval', '--seed', '--preset', '--size', '--channels', '--data-layout', '--scale', '--mean', '--std', '--occlusion', '--ridge', '--input-shape']);
  for (let i = 0; i < argv.length; i++) {
    const [flag] = argv[i].split('=');
    if (takes.has(flag)) out.push(argv[i].includes('=') ? argv[i] : `${argv[i]} ${argv[++i] ?? ''}`);
  }
  return out.map((s) => s.split(' ').map(shellQuote).join(' ')).join(' ');
}

export function sweepCommand(): Command {
  const cmd = new Command('sweep')
    .description('the trade-off curve: several shapes and auto budgets, each reshaped and recovered, quality against parameters, MACs, file size (and latency), the Pareto front marked')
    .argument('<model>', 'an ONNX model (.onnx) or a TensorFlow.js model (model.json)')
    .option('--shapes <list>', 'fixed shapes to try, separated by commas (default cross,qh,x)')
    .option('--budgets <list>', 'budgets for --shape auto, separated by commas (default 0.4,0.5,0.6,0.7; "" for none)', (v: string) => (v.trim() === '' ? [] : parseList('--budgets')(v)))
    .addOption(new Option('--budget-of <unit>', 'what the auto budgets count: the 3x3 layers\' parameters (default) or MACs').choices(['params', 'macs']))
    .option('--max-drop <points>', 'name the point within this many points of the original (top-1, or agreement without labels) that keeps the fewest MACs; exit 1 if none is', parseNumber('--max-drop'))
    .option('--json', 'print the sweep as one JSON document on stdout')
    .option('--report <file>', 'also write the sweep: .html for a page with the plot, else JSON')
    .option('--input-shape <dims>', 'input dims for measuring MACs, e.g. 1,3,224,224')
    .option('--latency-runs <n>', 'timed runs per point against the original (default 0: latency not measured)', parseInteger('--latency-runs'))
    .option('--batch <n>', 'batch for the latency runs (default 1)', parseInteger('--batch'))
    .option('--threads <n>', 'onnxruntime threads for the latency runs', parseInteger('--threads'))
    .option('-q, --quiet', 'no progress lines on stderr');
  addDataOptions(cmd, true);
  addEpilogue(cmd);
  return cmd.action(async (model: string, opts: SweepFlags) => {
    const data = dataOptions(opts);
    if (!data) throw new KpruneError('usage', 'sweep needs --data: each point is recovered and measured on it');
    if ((opts.batch !== undefined || opts.threads !== undefined) && !opts.latencyRuns) throw new KpruneError('usage', '--batch and --threads do nothing here: they apply only with --latency-runs');
    const outputs: Output[] = opts.report ? [{ role: 'report', path: opts.report }] : [];
    const before = existing(outputs);
    const view = progressView(!opts.json && !opts.quiet);
    try {
      const report = await sweep(model, {
        data, shapes: opts.shapes?.split(',').map((s) => s.trim()).filter(Boolean), budgets: opts.budgets, budgetOf: opts.budgetOf, maxDrop: opts.maxDrop, inputShape: opts.inputShape,
        latencyRuns: opts.latencyRuns, batch: opts.batch, threads: opts.threads, onProgress: view.update,
        commandPrefix: `kprune ${shellQuote(model)} ${dataFlags(process.argv.slice(2))}`.trimEnd(),
        report: opts.report, commandLine: commandLine(),
      });
      view.done();
      announceReplaced(before);
      if (opts.json) printJson(report);
      else process.stdout.write(renderSweep(report) + '\n' + (outputs.length ? whereWritten(outputs) + '\n' : ''));
      // Like prune's gate: said on stderr too, and exit 1, when no point is within --max-drop.
      if (report.withinDrop && report.withinDrop.point === null) {
        process.stderr.write(`kprune: ${withinDropLine(report, report.withinDrop)}\n`);
        process.exitCode = EXIT_GATE;
      }
    } finally {
      view.done();
    }
  });
}
