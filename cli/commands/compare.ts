import { Command } from 'commander';
import { compare, renderCompare } from '../../src/index.js';
import { applyConfig, cliInputs } from '../config.js';
import { DataFlags, addDataOptions, dataOptions } from '../data-options.js';
import { EXIT_GATE } from '../exit-codes.js';
import { Output, announceGate, announceReplaced, existing, whereWritten } from '../announce.js';
import { checkCompareCombos } from '../combos.js';
import { addEpilogue } from '../help.js';
import { commandLine, printJson } from '../output.js';
import { progressView } from '../progress.js';
import { parseInteger, parseNumber } from '../parse.js';
import { terminalStyle } from '../style.js';

interface CompareFlags extends DataFlags {
  json?: boolean;
  report?: string;
  inputShape?: string;
  batch?: number;
  latencyRuns?: number;
  threads?: number;
  gzip?: boolean;
  maxDrop?: number;
  config?: string;
  quiet?: boolean;
}

export function compareCommand(): Command {
  const cmd = new Command('compare')
    .description('measure two models of the same task side by side: size, parameters, MACs, latency, and with --data accuracy on the same samples')
    .argument('<a>', 'the reference model (e.g. the original)')
    .argument('<b>', 'the model to compare with it (e.g. the slimmed one)')
    .option('--json', 'print the report as one JSON document on stdout, nothing else')
    .option('--report <file>', 'also write the report: .html for a page to open in a browser, else JSON')
    .option('--max-drop <points>', 'quality gate: exit 1 if B loses more than this many points of top-1 (or agreement) against A', parseNumber('--max-drop'))
    .option('--input-shape <dims>', 'input dims for measuring, e.g. 1,3,224,224')
    .option('--batch <n>', 'batch for the latency comparison (default 1)', parseInteger('--batch'))
    .option('--latency-runs <n>', 'timed runs per model (default 50; 0 = skip)', parseInteger('--latency-runs'))
    .option('--threads <n>', 'onnxruntime threads for timings', parseInteger('--threads'))
    .option('--no-gzip', 'sizes without gzip sizes (gzip of a model of gigabytes takes minutes)')
    .option('--config <file>', 'read options from a JSON file (command-line options win)')
    .option('-q, --quiet', 'no progress lines on stderr (errors, the gate and replaced files are still said)');
  addDataOptions(cmd, false);
  addEpilogue(cmd);
  return cmd.action(async (a: string, b: string, opts: CompareFlags, self: Command) => {
    if (opts.config) {
      await applyConfig(self, opts.config);
      Object.assign(opts, self.opts());
    }
    checkCompareCombos(self);
    const view = progressView(!opts.json && !opts.quiet);
    const outputs: Output[] = opts.report ? [{ role: 'report', path: opts.report }] : [];
    const before = existing(outputs);
    try {
      const report = await compare(a, b, {
        data: dataOptions(opts), inputShape: opts.inputShape, batch: opts.batch, latencyRuns: opts.latencyRuns,
        threads: opts.threads, gzip: opts.gzip, maxDrop: opts.maxDrop, onProgress: view.update,
        report: opts.report, otherInputs: cliInputs(opts), commandLine: commandLine(),
      });
      view.done();
      announceReplaced(before);
      if (opts.json) printJson(report);
      else process.stdout.write(renderCompare(report, { style: terminalStyle(opts.json) }) + '\n' + (outputs.length ? whereWritten(outputs) + '\n' : ''));
      announceGate(report.gate);
      if (report.gate && !report.gate.passed) process.exitCode = EXIT_GATE;
    } finally {
      view.done();
    }
  });
}
