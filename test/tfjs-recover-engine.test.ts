/**
 * Recovery engine 2 on TF.js: a LayersModel is reconstructed segment by segment from cached
 * activations (two forward passes), and must get the weights the whole-model rerun gives; a model
 * the segments cannot take (a layer shared by two calls, a GraphModel) reruns and says why.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { loadModel, recover, reshape } from '../src/index.js';
import { toNchw } from '../src/models/tfjs/layerwise.js';
import { npyBytes } from './helpers/data-files.js';
import { randomFloats } from './helpers/onnx-builder.js';
import { functionalModel, graphModelFiles, saveLayersModel, seedWeights, sequentialModel, tfjs } from './helpers/tfjs-models.js';
import { tempDir } from './helpers/tmp.js';

const dir = tempDir('kprune-tfjs-engine-');

function npy(name: string, dims: number[], seed: number): string {
  const file = path.join(dir, `${name}.npy`);
  writeFileSync(file, npyBytes('<f4', dims, randomFloats(dims.reduce((a, b) => a * b, 1), seed)));
  return file;
}

function maxRelDiff(a: ReadonlyMap<string, Float32Array>, b: ReadonlyMap<string, Float32Array>): number {
  let worst = 0;
  for (const [id, w] of a) {
    const v = b.get(id)!;
    let scale = 0;
    for (const x of w) scale = Math.max(scale, Math.abs(x));
    for (let i = 0; i < w.length; i++) worst = Math.max(worst, Math.abs(w[i] - v[i]) / (scale || 1));
  }
  return worst;
}

test('a TF.js LayersModel is reconstructed segment by segment, with the weights the rerun gives', async () => {
  const tf = await tfjs();
  const m = sequentialModel(tf);
  seedWeights(tf, m, 23);
  // Strided, dilated, depthwise and separable layers, activations inside the layers; NHWC data.
  const file = await saveLayersModel(tf, m, path.join(dir, 'seq'), { shardBytes: 512 });
  const model = await loadModel(file);
  const reshaped = reshape(model, 'cross');
  // Chunks of 32 over 40 images: the last chunk is partial.
  const data = { data: npy('seq', [40, 12, 12, 3], 7), calib: 40, eval: 8, seed: 3 };
  const rerun = await recover(model, reshaped, { ...data, propagation: 'rerun' });
  const segments = await recover(model, reshaped, { ...data, propagation: 'segments' });
  assert.equal(rerun.propagation.engine, 'rerun');
  assert.equal(segments.propagation.engine, 'segments', segments.propagation.fallbackReason);
  assert.equal(segments.propagation.passes, 2);
  assert.ok(segments.propagation.maxLiveBytesPerImage! > 0);
  assert.equal(segments.layers.length, model.layers.length);
  const diff = maxRelDiff(rerun.weights, segments.weights);
  assert.ok(diff < 1e-5, `weights differ by ${diff}`);
  rerun.layers.forEach((l, i) => {
    assert.equal(l.rows, segments.layers[i].rows);
    assert.ok(Math.abs(l.errorAfter - segments.layers[i].errorAfter) < 1e-5, `${l.name}: ${l.errorAfter} vs ${segments.layers[i].errorAfter}`);
  });
  // Reconstruction did something: a layer fits its target better than the masked start.
  assert.ok(segments.layers.some((l) => l.errorAfter < 0.9 * l.errorBefore));
});

test('a TF.js model the segments cannot take reruns and says why', async () => {
  const tf = await tfjs();
  const f = functionalModel(tf);
  seedWeights(tf, f, 29);
  const shared = await loadModel(await saveLayersModel(tf, f, path.join(dir, 'func'), {}));
  const a = await recover(shared, reshape(shared, 'cross'), { data: npy('func', [16, 10, 10, 3], 9), calib: 16, eval: 4, seed: 3 });
  assert.equal(a.propagation.engine, 'rerun');
  assert.match(a.propagation.fallbackReason ?? '', /used by 2 convolutions/);

  const graph = await loadModel(graphModelFiles(path.join(dir, 'graph')));
  const b = await recover(graph, reshape(graph, 'cross'), { data: npy('graph', [16, 8, 8, 3], 11), calib: 16, eval: 4, seed: 3 });
  assert.equal(b.propagation.engine, 'rerun');
  assert.match(b.propagation.fallbackReason ?? '', /tfjs-graph/);
});

test('NHWC values are handed to the core as NCHW', () => {
  // [1, 2, 2, 3]: value = 100*h + 10*w + c.
  const data = Float32Array.from([0, 1, 2, 10, 11, 12, 100, 101, 102, 110, 111, 112]);
  const a = toNchw({ type: 'float32', dims: [1, 2, 2, 3], data }, 'NHWC');
  assert.deepEqual(a.dims, [1, 3, 2, 2]);
  assert.deepEqual([...a.data], [0, 10, 100, 110, 1, 11, 101, 111, 2, 12, 102, 112]);
  assert.equal(toNchw({ type: 'float32', dims: [1, 2, 2, 3], data }, 'NCHW').data, data);
});
