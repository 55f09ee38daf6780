import { Command } from 'commander';
import { NAMED_SHAPES, QH_CYCLE, renderShapes } from '../../src/index.js';
import { printJson } from '../output.js';

export function shapesCommand(): Command {
  return new Command('shapes')
    .description('draw the lattice shapes kprune knows')
    .option('--json', 'print the shapes as JSON')
    .action((opts: { json?: boolean }) => {
      if (opts.json) printJson({ shapes: NAMED_SHAPES, qh: QH_CYCLE });
      else process.stdout.write(renderShapes() + '\n');
    });
}
