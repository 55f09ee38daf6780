import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadData, mulberry32, permutation, type DataSplit } from '../src/data/index.js';
import { splitCounts } from '../src/data/split.js';
import { tempDir } from './helpers/tmp.js';
import { npyBytes, npzBytes, put } from './helpers/data-files.js';

const dir = tempDir('kprune-data-split-');
const POOL = 50;
// Sample i is a 2x2 image filled with i, labelled 1000 + i: x and labels name the drawn indices.
const file = put(dir, 'pool.npz', npzBytes({
  x: npyBytes('<f4', [POOL, 1, 2, 2], Array.from({ length: POOL * 4 }, (_, k) => Math.floor(k / 4))),
  y: npyBytes('<i4', [POOL], Array.from({ length: POOL }, (_, i) => 1000 + i)),
}));
const load = (calib: number, evalCount: number, seed: number) => loadData(file, { inputDims: ['N', 1, 2, 2], calib, eval: evalCount, seed });
const indices = (d: DataSplit['calib']) => Array.from({ length: d.count }, (_, s) => d.x[s * 4]);

test('mulberry32 is deterministic, in [0, 1), and permutations are permutations', () => {
  const a = mulberry32(123);
  const b = mulberry32(123);
  const xs = Array.from({ length: 1000 }, () => a());
  assert.deepEqual(xs, Array.from({ length: 1000 }, () => b()));
  assert.ok(xs.every((v) => v >= 0 && v < 1));
  assert.notDeepEqual(xs.slice(0, 5), Array.from({ length: 5 }, mulberry32(124)));
  const p = Array.from(permutation(100, 7));
  assert.deepEqual([...p].sort((m, n) => m - n), Array.from({ length: 100 }, (_, i) => i));
  assert.notDeepEqual(p, Array.from({ length: 100 }, (_, i) => i));
});

test('calib and eval are disjoint, carry their labels, and follow the seed', async () => {
  const d = await load(20, 15, 1);
  const c = indices(d.calib);
  const e = indices(d.eval);
  assert.deepEqual([c.length, e.length], [20, 15]);
  assert.equal(new Set([...c, ...e]).size, 35);
  assert.deepEqual(Array.from(d.calib.labels ?? []), c.map((i) => 1000 + i));
  assert.deepEqual(Array.from(d.eval.labels ?? []), e.map((i) => 1000 + i));
  assert.deepEqual(Array.from(permutation(POOL, 1).subarray(0, 35)), [...c, ...e]);

  const again = await load(20, 15, 1);
  assert.deepEqual([indices(again.calib), indices(again.eval)], [c, e]);
  const other = await load(20, 15, 2);
  assert.notDeepEqual(indices(other.calib), c);
  assert.match(d.calib.source, /calib 20 \+ eval 15 of 50 samples, disjoint, seed 1/);
});

test('a pool too small for both is split without overlap, and the source says so', async () => {
  assert.deepEqual(splitCounts(300, 1000, 1000), { calib: 150, eval: 150, short: true });
  assert.deepEqual(splitCounts(300, 10, 1000), { calib: 10, eval: 290, short: true });
  assert.deepEqual(splitCounts(300, 1000, 10), { calib: 290, eval: 10, short: true });
  assert.deepEqual(splitCounts(1, 5, 5), { calib: 1, eval: 0, short: true });
  assert.deepEqual(splitCounts(300, 200, 100), { calib: 200, eval: 100, short: false });

  const d = await load(100, 100, 3);
  assert.deepEqual([d.calib.count, d.eval.count], [25, 25]);
  assert.equal(new Set([...indices(d.calib), ...indices(d.eval)]).size, 50);
  assert.match(d.eval.source, /50 of 50 samples; calib 25, eval 25 \(asked for 100 \+ 100\)/);
});

test('zero samples asked for gives an empty set with zero channel means', async () => {
  const d = await load(0, 3, 0);
  assert.equal(d.calib.count, 0);
  assert.equal(d.calib.x.length, 0);
  assert.deepEqual(d.calib.channelMean, [0]);
  assert.equal(d.eval.count, 3);
});
