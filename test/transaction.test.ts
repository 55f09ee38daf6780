/**
 * The output transaction (src/io/transaction.ts) and file identity (src/io/identity.ts) on their
 * own: spellings of one file, a commit that fails half way, an interrupt at every moment of staging.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { linkSync, mkdirSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { tempDir } from './helpers/tmp.js';
import { identify, isInside, sameFile } from '../src/io/identity.js';
import { OutputTransaction } from '../src/io/transaction.js';
import { removeWritesInProgress } from '../src/io/cleanup.js';
import { KpruneError } from '../src/index.js';

const dir = tempDir('kprune-tx-');

test('identity: every spelling of one file is that file; a name starting with two dots is inside', async () => {
  const d = path.join(dir, 'identity');
  mkdirSync(path.join(d, 'real', 'sub'), { recursive: true });
  writeFileSync(path.join(d, 'real', 'w.bin'), 'w');
  writeFileSync(path.join(d, 'real', 'other.bin'), 'w');
  symlinkSync('real', path.join(d, 'lnk'));
  symlinkSync('w.bin', path.join(d, 'real', 'to-w.bin'));
  linkSync(path.join(d, 'real', 'w.bin'), path.join(d, 'real', 'hard.bin'));
  const w = await identify(path.join(d, 'real', 'w.bin'));
  for (const spelling of ['real/./w.bin', 'real/sub/../w.bin', 'lnk/w.bin', 'real/to-w.bin', 'lnk/to-w.bin', 'real/hard.bin']) {
    assert.ok(sameFile(await identify(path.join(d, spelling)), w), spelling);
  }
  assert.ok(!sameFile(await identify(path.join(d, 'real', 'other.bin')), w));
  // Not there yet: identified by its folder's real path, so a symlinked folder still matches.
  assert.ok(sameFile(await identify(path.join(d, 'lnk', 'new.json')), await identify(path.join(d, 'real', 'new.json'))));
  assert.ok(isInside('/m', '/m/..weights.bin'));
  assert.ok(isInside('/m', '/m/a/../b'));
  assert.ok(!isInside('/m', '/m'));
  assert.ok(!isInside('/m', '/m/../x'));
  assert.ok(!isInside('/m', '/mx/y'));
});

function staged(name: string, files: Record<string, string>): { d: string; tx: OutputTransaction } {
  const d = path.join(dir, name);
  mkdirSync(d, { recursive: true });
  const tx = new OutputTransaction();
  for (const f of Object.keys(files)) tx.declare({ path: path.join(d, f), role: `output ${f}` });
  return { d, tx };
}

test('a commit that fails half way puts every replaced file back as it was, and leaves nothing new', async () => {
  const files = { 'a.bin': 'new a', 'b.dat': 'new b', 'c.json': 'new c' };
  const { d, tx } = staged('rollback', files);
  writeFileSync(path.join(d, 'a.bin'), 'old a');
  writeFileSync(path.join(d, 'b.dat'), 'old b');
  for (const [f, text] of Object.entries(files)) await tx.write(path.join(d, f), Buffer.from(text));
  // The last file's staged copy disappears: its rename fails after the first two were placed.
  rmSync(tx.stagedPath(path.join(d, 'c.json')));
  await assert.rejects(tx.commit(), (e: unknown) => e instanceof KpruneError && e.code === 'io' && /nothing was changed/.test(e.message));
  assert.deepEqual(readdirSync(d).sort(), ['a.bin', 'b.dat']);
  assert.equal(readFileSync(path.join(d, 'a.bin'), 'utf8'), 'old a');
  assert.equal(readFileSync(path.join(d, 'b.dat'), 'utf8'), 'old b');
});

test('a commit replaces every file, in staging order, and removes its staging folder', async () => {
  const files = { 'a.bin': 'new a', 'b.dat': 'new b' };
  const { d, tx } = staged('commit', files);
  writeFileSync(path.join(d, 'a.bin'), 'old a');
  for (const [f, text] of Object.entries(files)) await tx.write(path.join(d, f), Buffer.from(text));
  assert.deepEqual(await tx.commit(), [path.join(d, 'a.bin'), path.join(d, 'b.dat')]);
  assert.deepEqual(readdirSync(d).sort(), ['a.bin', 'b.dat']);
  assert.equal(readFileSync(path.join(d, 'a.bin'), 'utf8'), 'new a');
  await assert.rejects(tx.commit(), /already committed/);
});

test('an aborted transaction removes the folders it created for a TF.js output', async () => {
  const d = path.join(dir, 'created');
  mkdirSync(d);
  const tx = new OutputTransaction();
  const target = path.join(d, 'new', 'deeper', 'model.json');
  tx.declare({ path: target, role: 'the output model', createRoot: true });
  tx.declare({ path: path.join(d, 'new', 'deeper', 'sub', 'shard.bin'), role: 'a shard', root: path.dirname(target), createRoot: true });
  // A report in a folder the model's new folder creates on the way (as mkdir -p would).
  tx.declare({ path: path.join(d, 'new', 'report.json'), role: 'the report' });
  await tx.write(path.join(d, 'new', 'report.json'), Buffer.from('{}'));
  await tx.write(path.join(d, 'new', 'deeper', 'sub', 'shard.bin'), Buffer.from('s'));
  await tx.write(target, Buffer.from('{}'));
  assert.ok(existsSync(path.join(d, 'new', 'deeper')));
  tx.abort();
  assert.deepEqual(readdirSync(d), []);
});

test('an interrupt at any moment of staging leaves nothing behind (no file created after the handler ran)', async () => {
  const d = path.join(dir, 'interrupt');
  mkdirSync(d);
  writeFileSync(path.join(d, 'keep.txt'), 'keep');
  const data = new Uint8Array(256 << 10);
  // The handler runs between turns of the event loop: after 0, 1, 2, ... turns of a run (while it
  // validates and opens its first file), then after growing delays (while bytes are written and
  // flushed), and last after the commit.
  const moments: (number | 'ms' | 'done')[][] = [...Array.from({ length: 16 }, (_, k) => [k]), ...[1, 2, 4, 8, 16, 32, 64].map((ms) => [ms, 'ms' as const]), [0, 'done']];
  const outcomes = new Set<string>();
  for (const [n, unit] of moments) {
    const tx = new OutputTransaction();
    const files = ['x.weights.bin', 'x.model'].map((f) => path.join(d, f));
    for (const f of files) tx.declare({ path: f, role: f });
    let finished = false;
    const writing = (async () => {
      for (const f of files) await tx.write(f, [data, () => data]);
      await tx.commit();
    })().then(() => 'committed', (e: unknown) => (e instanceof Error ? e.message : String(e))).finally(() => { finished = true; });
    if (unit === 'ms') await new Promise((r) => setTimeout(r, n as number));
    else if (unit === 'done') while (!finished) await new Promise((r) => setImmediate(r));
    else for (let k = 0; k < (n as number); k++) await new Promise((r) => setImmediate(r));
    removeWritesInProgress();
    const outcome = await writing;
    outcomes.add(outcome === 'committed' ? outcome : 'aborted');
    const listing = readdirSync(d).sort();
    if (outcome === 'committed') {
      assert.deepEqual(listing, ['keep.txt', 'x.model', 'x.weights.bin'], `interrupt after ${n} ${unit ?? 'turns'}`);
      for (const f of files) rmSync(f);
    } else {
      assert.match(outcome, /already aborted/);
      assert.deepEqual(listing, ['keep.txt'], `interrupt after ${n} ${unit ?? 'turns'}: ${outcome}`);
    }
  }
  assert.deepEqual([...outcomes].sort(), ['aborted', 'committed']);
});

test('checkStaged: a staged file that reads back as written passes; one changed or cut after writing is an io error', async () => {
  const d = path.join(dir, 'check-staged');
  mkdirSync(d, { recursive: true });
  const target = path.join(d, 'm.bin');
  const tx = new OutputTransaction();
  tx.declare({ path: target, role: 'the output model' });
  // Chunks made on demand (by a maker that works once, as TF.js shard writers do) and given whole:
  // both are read back against, in order, and the maker is not asked again.
  let made = 0;
  const once = () => {
    if (made++ > 0) throw new Error('made twice');
    return new Uint8Array(5000).fill(7);
  };
  const stagedAt = await tx.write(target, [new Uint8Array([1, 2, 3]), once, new Uint8Array([9])]);
  await tx.checkStaged(target);
  const bytes = readFileSync(stagedAt);
  bytes[4000] ^= 1;
  writeFileSync(stagedAt, bytes);
  await assert.rejects(tx.checkStaged(target), (e: unknown) => e instanceof KpruneError && e.code === 'io' && /does not read back as it was written/.test(e.message));
  bytes[4000] ^= 1;
  writeFileSync(stagedAt, bytes.subarray(0, bytes.length - 1));
  await assert.rejects(tx.checkStaged(target), /does not read back/);
  bytes[1] ^= 1;
  writeFileSync(stagedAt, bytes);
  await assert.rejects(tx.checkStaged(target), /does not read back/);
  bytes[1] ^= 1;
  writeFileSync(stagedAt, Buffer.concat([bytes, Buffer.from([0])]));
  await assert.rejects(tx.checkStaged(target), /does not read back/);
  writeFileSync(stagedAt, bytes);
  await tx.checkStaged(target);
  await tx.commit();
  assert.deepEqual(readFileSync(target), bytes);
});
