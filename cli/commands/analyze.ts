import { Command } from 'commander';
import { analyze, renderAnalyze } from '../../src/index.js';
import { announceReplaced, existing, whereWritten } from '../announce.js';
import type { Output } from '../announce.js';
import { addEpilogue } from '../help.js';
import { commandLine, printJson } from '../output.js';
import { parseNumber } from '../parse.js';

export function analyzeCommand(): Command {
  const cmd = new Command('analyze')
    .description('show how weight magnitude spreads over the 3x3 lattice of every 3x3 convolution')
    .argument('<model>', 'an ONNX model (.onnx) or a TensorFlow.js model (model.json)')
    .option('--threshold <t>', 'list positions whose normalised mean |w| is below t as low-magnitude', parseNumber('--threshold'))
    .option('--report <file>', 'also write the analysis: .html for a page with a heat map per layer, else JSON')
    .option('--input-shape <dims>', 'input shape for counting MACs when the model has dynamic dimensions, e.g. 1,3,224,224')
    .option('--no-run', 'never run the model (the share of MACs in 3x3 layers is then not counted)')
    .option('--json', 'print one JSON document on stdout');
  addEpilogue(cmd);
  return cmd.action(async (model: string, opts: { threshold?: number; json?: boolean; report?: string; inputShape?: string; run?: boolean }) => {
    const outputs: Output[] = opts.report ? [{ role: 'report', path: opts.report }] : [];
    const before = existing(outputs);
    const report = await analyze(model, { threshold: opts.threshold, report: opts.report, commandLine: commandLine(), inputShape: opts.inputShape, run: opts.run });
    announceReplaced(before);
    if (opts.json) printJson(report);
    else process.stdout.write(renderAnalyze(report) + '\n' + (outputs.length ? whereWritten(outputs) + '\n' : ''));
  });
}
