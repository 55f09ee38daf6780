import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { loadData, permutation } from '../src/data/index.js';
import { BUNDLED_DIR, findFashionMnist, loadFashionMnist } from '../src/data/fashion-mnist.js';
import { FIXTURES, tempDir } from './helpers/tmp.js';
import { jpegBytes, npyBytes, npzBytes, pngBytes, put } from './helpers/data-files.js';

const dir = tempDir('kprune-data-src-');
const FMNIST = path.join(FIXTURES, 'data', 'fashion-mnist');

/** The raw bytes of an IDX file after its header. */
function idxPayload(file: string, rank: number): Uint8Array {
  return gunzipSync(readFileSync(file)).subarray(4 + 4 * rank);
}

test('class folders are labelled ImageFolder-style; PNG and JPEG by case-insensitive extension', async () => {
  const root = path.join(dir, 'classes');
  // Written out of order: classes are sorted by name whatever the file system says.
  put(root, 'zebra/1.PNG', pngBytes(2, 2, 3, new Array(12).fill(30)));
  put(root, 'ant/a.png', pngBytes(2, 2, 1, [10, 10, 10, 10]));
  put(root, 'ant/nested/b.jpeg', jpegBytes(8, 8, [20, 20, 20]));
  put(root, 'ant/notes.txt', 'not an image');
  put(root, 'moth/c.Jpg', jpegBytes(8, 8, [200, 200, 200]));
  put(root, '.hidden/d.png', pngBytes(2, 2, 1, [99, 99, 99, 99]));
  const d = await loadData(root, { inputDims: ['N', 1, 2, 2], calib: 2, eval: 2, seed: 3, preprocess: { scale: 1 } });
  assert.deepEqual(d.calib.classNames, ['ant', 'moth', 'zebra']);
  assert.deepEqual(d.eval.classNames, ['ant', 'moth', 'zebra']);
  const samples = [d.calib, d.eval].flatMap((s) => Array.from({ length: s.count }, (_, i) => ({ label: s.labels?.[i], v: Math.round(s.x[i * 4]) })));
  assert.deepEqual(samples.sort((a, b) => a.v - b.v), [{ label: 0, v: 10 }, { label: 0, v: 20 }, { label: 2, v: 30 }, { label: 1, v: 200 }]);
  assert.match(d.calib.source, /image folder .*classes \(3 classes\): calib 2 \+ eval 2 of 4 samples, disjoint, seed 3/);
});

test('a flat folder is unlabelled', async () => {
  const root = path.join(dir, 'flat');
  put(root, 'a.png', pngBytes(3, 3, 3, new Array(27).fill(1)));
  put(root, 'b.jpg', jpegBytes(8, 8, [1, 2, 3]));
  const d = await loadData(root, { inputDims: [1, 3, 5, 5], calib: 1, eval: 1, seed: 0 });
  assert.equal(d.calib.labels, undefined);
  assert.equal(d.calib.classNames, undefined);
  assert.deepEqual([d.calib.count, d.eval.count], [1, 1]);
  assert.equal(d.calib.x.length, 75);
  assert.match(d.calib.source, /unlabelled/);
});

test('npy layouts: [N,H,W] for a 1-channel model, NHWC arrays for an NCHW model, exact dims as they are', async () => {
  const hw = put(dir, 'hw.npy', npyBytes('|u1', [2, 2, 2], [1, 2, 3, 4, 5, 6, 7, 8]));
  const a = await loadData(hw, { inputDims: ['N', 1, 2, 2], calib: 2, eval: 0, seed: 0, preprocess: { scale: 1 } });
  const firsts = Array.from({ length: 2 }, (_, i) => a.calib.x[i * 4]);
  assert.deepEqual(firsts.sort(), [1, 5]);

  // One 1x2 RGB image stored HWC, fed to an NCHW model: transposed to planes.
  const nhwc = put(dir, 'nhwc.npy', npyBytes('<f4', [1, 1, 2, 3], [1, 2, 3, 4, 5, 6]));
  const b = await loadData(nhwc, { inputDims: ['N', 3, 1, 2], calib: 1, eval: 0, seed: 0 });
  assert.deepEqual(Array.from(b.calib.x), [1, 4, 2, 5, 3, 6]);

  // [N,3,3,3] is ambiguous: it matches the model's NCHW dims exactly, so it is taken as it is.
  const values = Array.from({ length: 27 }, (_, i) => i);
  const cube = put(dir, 'cube.npy', npyBytes('<f4', [1, 3, 3, 3], values));
  const c = await loadData(cube, { inputDims: ['N', 3, 3, 3], calib: 1, eval: 0, seed: 0 });
  assert.deepEqual(Array.from(c.calib.x), values);
  // ...and for an NHWC model too.
  const e = await loadData(cube, { inputDims: ['N', 3, 3, 3], calib: 1, eval: 0, seed: 0, preprocess: { layout: 'NHWC' } });
  assert.deepEqual(Array.from(e.calib.x), values);
});

test('npz with x and int64 or int32 labels y, stored or deflated', async () => {
  for (const [descr, compressed] of [['<i8', true], ['<i4', false]] as const) {
    const x = npyBytes('|u1', [3, 1, 1, 1], [0, 100, 200]);
    const y = npyBytes(descr, [3], [7, 8, 9]);
    const file = put(dir, `xy-${descr.slice(1)}.npz`, npzBytes({ x, y }, compressed));
    const d = await loadData(file, { inputDims: ['N', 1, 1, 1], calib: 3, eval: 0, seed: 5, preprocess: { scale: 1 } });
    const byValue = new Map(Array.from(d.calib.x, (v, i) => [v, d.calib.labels?.[i]]));
    assert.deepEqual([...byValue.entries()].sort((p, q) => p[0] - q[0]), [[0, 7], [100, 8], [200, 9]]);
    assert.match(d.calib.source, /with labels y/);
  }
  const unlabelled = put(dir, 'x-only.npz', npzBytes({ x: npyBytes('<f4', [2, 1, 1], [1, 2]) }));
  assert.equal((await loadData(unlabelled, { inputDims: [1, 1, 1, 1], calib: 1, eval: 1, seed: 0 })).calib.labels, undefined);
});

test('an IDX images file with its sibling labels (the bundled subset)', async () => {
  const images = path.join(FMNIST, 't10k-images-idx3-ubyte.gz');
  const pixels = idxPayload(images, 3);
  const labels = idxPayload(path.join(FMNIST, 't10k-labels-idx1-ubyte.gz'), 1);
  const count = labels.length;
  const d = await loadData(images, { inputDims: ['N', 1, 28, 28], calib: 30, eval: 20, seed: 42, numClasses: 10 });
  // calib is the start of one seeded permutation, eval the next slice.
  const perm = permutation(count, 42);
  for (const [set, from] of [[d.calib, 0], [d.eval, 30]] as const) {
    for (let s = 0; s < set.count; s++) {
      const i = perm[from + s];
      assert.equal(set.labels?.[s], labels[i]);
      for (const p of [0, 300, 783]) assert.equal(set.x[s * 784 + p], Math.fround(pixels[i * 784 + p] / 255));
    }
  }
  assert.match(d.calib.source, new RegExp(`IDX .*t10k-images-idx3-ubyte.gz with labels t10k-labels-idx1-ubyte.gz: calib 30 \\+ eval 20 of ${count} samples`));
});

test('built-in fashion-mnist: calib from the train split, eval from the test split; the bundled subset is the fallback', async () => {
  assert.equal(await findFashionMnist([path.join(dir, 'nowhere'), BUNDLED_DIR]), BUNDLED_DIR);
  const bundled = await loadFashionMnist(BUNDLED_DIR);
  assert.match(bundled.train.description, /^fashion-mnist \(train split, bundled subset .*fixtures\/data\/fashion-mnist\)$/);
  assert.deepEqual(bundled.train.natural, { height: 28, width: 28, channels: 1 });

  const used = await findFashionMnist();
  assert.ok(used !== undefined);
  const d = await loadData('fashion-mnist', { inputDims: [1, 1, 28, 28], calib: 5, eval: 6, seed: 9, preset: 'fashion-mnist', numClasses: 10 });
  assert.match(d.calib.source, new RegExp(`^fashion-mnist \\(train split, .*${used}\\): 5 of \\d+ samples, seed 9$`));
  assert.match(d.eval.source, /^fashion-mnist \(test split, .*\): 6 of \d+ samples, seed 9$/);
  const testPixels = idxPayload(path.join(used, 't10k-images-idx3-ubyte.gz'), 3);
  const perm = permutation(testPixels.length / 784, 9);
  assert.equal(d.eval.x[300], Math.fround(testPixels[perm[0] * 784 + 300] / 255));
  assert.deepEqual([d.calib.labels?.length, d.eval.labels?.length], [5, 6]);
  assert.ok(d.calib.channelMean[0] > 0 && d.calib.channelMean[0] < 1);
});
