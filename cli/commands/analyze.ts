import { Command } from 'commander';
import { analyze, renderAnalyze } from '../../src/index.js';
import { printJson } from '../output.js';
import { parseNumber } from '../parse.js';

export function analyzeCommand(): Command {
  return new Command('analyze')
    .description('show how weight magnitude spreads over the 3x3 lattice of every 3x3 convolution')
    .argument('<model>', 'an ONNX model (.onnx) or a TensorFlow.js model (model.json)')
    .option('--threshold <t>', 'list positions whose normalised mean |w| is below t as low-magnitude', parseNumber('--threshold'))
    .option('--json', 'print one JSON document on stdout')
    .action(async (model: string, opts: { threshold?: number; json?: boolean }) => {
      const report = await analyze(model, { threshold: opts.threshold });
      if (opts.json) printJson(report);
      else process.stdout.write(renderAnalyze(report) + '\n');
    });
}
