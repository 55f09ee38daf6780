/** The step-wise library API gives what prune gives. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { exportModel, loadModel, prune, recover, reshape } from '../src/index.js';
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
  await exportModel(model, recovered, path.join(dir, 'steps.onnx'), 'decomposed');
  await prune(vgg, { shape: 'qh', data, layout: 'decomposed', output: path.join(dir, 'prune.onnx'), latencyRuns: 0 });
  assert.ok(readFileSync(path.join(dir, 'steps.onnx')).equals(readFileSync(path.join(dir, 'prune.onnx'))));
});
