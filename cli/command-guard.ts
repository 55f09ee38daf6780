/**
 * What commander cannot tell on its own, because `prune` is the default command: whether the first
 * word is a model file or a misspelt command. `kprune analyse m.onnx` must not become
 * `prune analyse m.onnx` ("too many arguments"); `kprune` alone shows the help.
 */
import { existsSync } from 'node:fs';

/** Edit distance (insertions, deletions, substitutions, adjacent swaps), small words only. */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.length][b.length];
}

/** The closest command name, when it is close enough to be what the user meant. */
export function closestCommand(word: string, commands: readonly string[]): string | undefined {
  const w = word.toLowerCase();
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of commands) {
    const distance = c.startsWith(w) && w.length >= 3 ? 0 : editDistance(w, c);
    if (distance < bestDistance) {
      best = c;
      bestDistance = distance;
    }
  }
  // Two edits for the usual slips (analyse, compar, prnue), fewer for very short words.
  return best !== undefined && bestDistance <= Math.min(2, Math.floor(best.length / 3)) ? best : undefined;
}

export type FirstWord =
  | { kind: 'help' }
  | { kind: 'ok' }
  | { kind: 'unknown'; message: string };

/**
 * Classifies the command line (argv without node and the script). A first word that names a file
 * is a model for the default command, whatever it is called; one that is not a file and looks like
 * no model path (no dot, no slash) is a command name, and an unknown one is refused with the
 * closest known name.
 */
export function firstWord(args: readonly string[], commands: readonly string[], cwd = process.cwd()): FirstWord {
  if (args.length === 0) return { kind: 'help' };
  const first = args[0];
  if (first.startsWith('-') || commands.includes(first) || first === 'help') return { kind: 'ok' };
  if (existsSync(first.startsWith('/') ? first : `${cwd}/${first}`)) return { kind: 'ok' };
  const near = closestCommand(first, commands);
  if (near) return { kind: 'unknown', message: `unknown command '${first}' (did you mean '${near}'?)` };
  if (/[./\\]/.test(first)) return { kind: 'ok' }; // a model path that does not exist: prune says so, naming it
  return { kind: 'unknown', message: `unknown command '${first}', and no file of that name (commands: ${commands.join(', ')}; or give a model file)` };
}
