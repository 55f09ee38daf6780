/**
 * What the user must not have to guess: where each file went (stdout), which existing files a run
 * replaced and why a gate failed (stderr, so that they reach a log even when stdout is a report).
 *
 * An existing output is replaced, and said, rather than refused without --force: re-running the same
 * command after changing one option is the usual loop, the old file stays whole until the new one
 * is complete (outputs are committed together, atomically), and the input can never be an output.
 */
import { existsSync } from 'node:fs';
import type { Gate } from '../src/index.js';

export interface Output {
  role: 'model' | 'report' | 'masks';
  path: string;
}

/** The outputs that exist before the run: after it, each of them was replaced. */
export function existing(outputs: Output[]): Output[] {
  return outputs.filter((o) => existsSync(o.path));
}

export function announceReplaced(replaced: Output[], stream: NodeJS.WritableStream = process.stderr): void {
  for (const o of replaced) stream.write(`kprune: replaced the existing ${o.role} file ${o.path}\n`);
}

/** Lines for stdout: each output and where it went; a TF.js model's shards are counted, not listed. */
export function whereWritten(outputs: Output[], modelFiles: string[] = []): string {
  const w = outputs.reduce((m, o) => Math.max(m, o.role.length), 0);
  return outputs.map((o) => {
    const extra = o.role === 'model' && modelFiles.length > 1 ? ` (+ ${modelFiles.length - 1} weight file${modelFiles.length > 2 ? 's' : ''} beside it)` : '';
    return `${`${o.role}:`.padEnd(w + 2)}${o.path}${extra}`;
  }).join('\n');
}

export function announceGate(gate: Gate | null, stream: NodeJS.WritableStream = process.stderr): void {
  if (gate && !gate.passed) stream.write(`kprune: quality gate --max-drop ${gate.maxDrop} failed: ${gate.reason} (exit 1)\n`);
}
