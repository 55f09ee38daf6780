/**
 * Records test/golden/io-outputs.json: the SHA-256 of every file kprune writes for each case of
 * test/helpers/io-cases.ts, from a given build of kprune (the code before the I/O rewrite of issue
 * 15, built from its commit into a folder of its own), so that test/io-bytes.test.ts can hold this
 * checkout's writes to those exact bytes.
 *
 *   node dist/bench/io-golden.js --root <checkout of the reference commit, built> [--commit <sha>]
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { IO_CASES, caseOptions, caseOutput, folderDigests } from '../test/helpers/io-cases.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '..', '..');

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const at = (k: string) => (args.includes(k) ? args[args.indexOf(k) + 1] : undefined);
  const root = path.resolve(at('--root') ?? repo);
  const kprune = await import(pathToFileURL(path.join(root, 'dist', 'src', 'index.js')).href) as { prune: (f: string, o: Record<string, unknown>) => Promise<unknown> };
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kprune-io-golden-'));
  const cases: Record<string, Record<string, string>> = {};
  try {
    for (const [i, c] of IO_CASES.entries()) {
      const out = caseOutput(c, dir, i);
      await kprune.prune(path.join(repo, c.input), caseOptions(c, out));
      cases[c.name] = folderDigests(path.dirname(out));
      process.stderr.write(`${c.name}: ${Object.keys(cases[c.name]).length} file(s)\n`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const file = path.join(repo, 'test', 'golden', 'io-outputs.json');
  writeFileSync(file, `${JSON.stringify({ recordedFrom: at('--commit') ?? root, cases }, null, 1)}\n`);
  process.stderr.write(`wrote ${file}\n`);
}

await main();
