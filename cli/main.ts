#!/usr/bin/env node
/**
 * The kprune command line: wires commands, maps errors to exit codes. Everything it does is a
 * library call (src/index.ts).
 */
import { Command, CommanderError } from 'commander';
import { isKpruneError, removeWritesInProgress, terminalSafe, VERSION } from '../src/index.js';
import { analyzeCommand } from './commands/analyze.js';
import { pruneCommand } from './commands/prune.js';
import { shapesCommand } from './commands/shapes.js';
import { compareCommand } from './commands/compare.js';
import { sweepCommand } from './commands/sweep.js';
import { EXIT_BAD_INPUT, EXIT_INTERNAL } from './exit-codes.js';
import { firstWord } from './command-guard.js';
import { addEpilogue } from './help.js';

function fail(message: string, code: number): never {
  // Messages quote names from the input files: no control characters reach the terminal.
  process.stderr.write(`kprune: ${terminalSafe(message)}\n`);
  process.exit(code);
}

/**
 * Ctrl-C or a kill: remove what writes in progress staged and stop. Outputs are put in place only
 * by a synchronous commit, which a signal handler never interrupts, so the run is either before it
 * (nothing of it left) or after it (all of it in place); the input is never touched.
 */
function onSignal(signal: 'SIGINT' | 'SIGTERM'): void {
  removeWritesInProgress();
  process.stderr.write(`\nkprune: interrupted (${signal}); no partial file was left\n`);
  process.exit(signal === 'SIGINT' ? 130 : 143);
}

/** Commander's messages quote arguments as given: escaped like every other line (terminalSafe). */
const output = { writeErr: (s: string) => process.stderr.write(terminalSafe(s.startsWith('error:') ? `kprune: ${s}` : s, true)) };

export async function main(argv: string[]): Promise<void> {
  process.once('SIGINT', () => onSignal('SIGINT'));
  process.once('SIGTERM', () => onSignal('SIGTERM'));
  const program = new Command('kprune')
    .description('make convolutional networks smaller by reshaping their 3x3 kernels (ONNX or TensorFlow.js in, the same format out)')
    .version(VERSION)
    .showHelpAfterError(false)
    .exitOverride()
    .configureOutput(output);
  program.addCommand(pruneCommand(), { isDefault: true });
  program.addCommand(analyzeCommand());
  program.addCommand(compareCommand());
  program.addCommand(sweepCommand());
  program.addCommand(shapesCommand());
  addEpilogue(program);
  for (const c of program.commands) c.exitOverride().configureOutput(output);
  // `prune` is the default command, so commander would take a misspelt command for a model.
  const word = firstWord(argv.slice(2), program.commands.map((c) => c.name()));
  if (word.kind === 'help') {
    program.outputHelp();
    process.exit(0);
  }
  if (word.kind === 'unknown') fail(word.message, EXIT_BAD_INPUT);
  try {
    await program.parseAsync(argv);
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.exitCode === 0) process.exit(0);
      process.exit(EXIT_BAD_INPUT);
    }
    if (isKpruneError(e)) fail(e.oneLine(), EXIT_BAD_INPUT);
    const detail = e instanceof Error ? (process.env.KPRUNE_DEBUG ? e.stack ?? e.message : e.message) : String(e);
    fail(`internal error: ${detail} (please report it; KPRUNE_DEBUG=1 shows the stack)`, EXIT_INTERNAL);
  }
}

await main(process.argv);
