/**
 * The `--help` epilogue: exit codes and environment variables, the two things a script needs and
 * cannot find from the option list. Shown after every command's help.
 */
import { Command } from 'commander';
import { NAMED_SHAPE_NAMES } from '../src/index.js';

export const EXIT_CODES: [number, string][] = [
  [0, 'done (and within the --max-drop gate, when one was given)'],
  [1, 'done, the output is written, but the --max-drop gate failed'],
  [2, 'bad input or usage: one line names the file and the problem; nothing was written'],
  [3, 'a bug in kprune (KPRUNE_DEBUG=1 shows the stack)'],
  [130, 'interrupted (Ctrl-C, SIGINT): nothing partial was left'],
  [143, 'terminated (SIGTERM): nothing partial was left'],
];

/**
 * Variables the CLI and the library read. The KPRUNE_MAX_* limits guard against inputs that would
 * exhaust memory; raise one when a real input needs it (the error names the variable).
 */
export const ENVIRONMENT: [string, string][] = [
  ['NO_COLOR', 'set (to anything) for output without colours; colours are only ever used on a terminal'],
  ['KPRUNE_WRITE_LOG=<file>', 'append the path of every file kprune puts in place to <file>, one per line'],
  ['KPRUNE_DEBUG=1', 'print the stack of an internal error (exit 3)'],
  ['KPRUNE_MAX_IMAGE_PIXELS', 'largest image (width x height) read from a data folder'],
  ['KPRUNE_MAX_DATA_BYTES', 'largest data array, image file or batched timing input'],
  ['KPRUNE_MAX_INPUT_ELEMENTS', 'largest model input or data sample, in elements'],
  ['KPRUNE_MAX_TENSOR_BYTES', 'largest weight kprune builds from a smaller description (a sparse initializer made dense)'],
];

export function epilogue(): string {
  const w = ENVIRONMENT.reduce((m, [k]) => Math.max(m, k.length), 0);
  return [
    '',
    'Exit codes:',
    ...EXIT_CODES.map(([c, t]) => `  ${String(c).padEnd(4)} ${t}`),
    '',
    'Environment:',
    ...ENVIRONMENT.map(([k, t]) => `  ${k.padEnd(w)}  ${t}`),
    '',
  ].join('\n');
}

/** Every named shape, for `--shape`'s help: the list comes from the lattice table, so none is left out. */
export function shapeList(): string {
  return [...NAMED_SHAPE_NAMES, 'qh', 'auto'].join(', ');
}

export function addEpilogue(cmd: Command): Command {
  return cmd.addHelpText('after', epilogue());
}
