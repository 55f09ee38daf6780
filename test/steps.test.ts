/** The step-wise library API gives what prune gives. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { DEFAULT_LAYOUT, exportModel, loadModel, prune, recover, reshape } from '../src/index.js';
import { FIXTURES, tempDir } from './helpers/tmp.js';

const dir = tempDir();
const vgg = path.join(FIXTURES, 'models', 'vgg-fmnist.onnx');
const SUBSET = path.join(FIXTURES, 'data', 'fashion-mnist', 't10k-images-idx3-ubyte.gz');

test('load -> reshape -> recover -> exportModel writes the same file as prune', async () => {
  const model = await loadModel(vgg);
  const shaped = reshape(model, 'qh');
  assert.deepEqual(shaped.plan.entries.map((e) => e.shape), ['qh-right', 'qh-left', 'qh-up', 'qh-down', 'qh-right']);
  const data = { data: SUBSET, calib: 32, eval: 40, seed: 2 };
  const recovered = await recover(model, shaped, data);
  assert.equal(recovered.layers.length, 5);
  // Neither call names a layout: both write the one default (decomposed).
  await exportModel(model, recovered, path.join(dir, 'steps.onnx'));
  const report = await prune(vgg, { shape: 'qh', data, output: path.join(dir, 'prune.onnx'), latencyRuns: 0 });
  assert.deepEqual([...new Set(report.layers.map((l) => l.layout))], [DEFAULT_LAYOUT]);
  assert.ok(readFileSync(path.join(dir, 'steps.onnx')).equals(readFileSync(path.join(dir, 'prune.onnx'))));
});

test('exportModel writes the smaller decomposed file by default, the same-size masked one on request', async () => {
  assert.equal(DEFAULT_LAYOUT, 'decomposed');
  const model = await loadModel(vgg);
  const shaped = reshape(model, 'cross');
  const plain = await exportModel(model, shaped, path.join(dir, 'default.onnx'));
  const masked = await exportModel(model, shaped, path.join(dir, 'masked.onnx'), 'masked');
  assert.deepEqual([...new Set(plain.layouts.map((l) => l.applied))], ['decomposed']);
  assert.deepEqual([...new Set(masked.layouts.map((l) => l.applied))], ['masked']);
  const bytes = (f: string) => statSync(path.join(dir, f)).size;
  const original = statSync(vgg).size;
  assert.ok(bytes('default.onnx') < 0.9 * original, `default ${bytes('default.onnx')} of ${original} bytes`);
  assert.ok(bytes('masked.onnx') > 0.98 * original, `masked ${bytes('masked.onnx')} of ${original} bytes`);
});

test('a layer that keeps all 9 positions stays as it was under the default layout, decomposed only when asked', async () => {
  const model = await loadModel(vgg);
  const shaped = reshape(model, 'full');
  const plain = await exportModel(model, shaped, path.join(dir, 'full-default.onnx'));
  assert.ok(plain.layouts.length >= 5);
  assert.deepEqual([...new Set(plain.layouts.map((l) => l.requested))], ['masked']);
  const asked = await exportModel(model, shaped, path.join(dir, 'full-decomposed.onnx'), 'decomposed');
  assert.deepEqual([...new Set(asked.layouts.map((l) => l.requested))], ['decomposed']);
});
