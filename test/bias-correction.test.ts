/**
 * Per-channel bias correction after reconstruction: the shift it computes matches the mean it
 * claims to match (before or after a ReLU), and on a bundled model every corrected layer's output
 * then has, per channel, the original's mean over the calibration images.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { loadModel, recover, reshape } from '../src/index.js';
import { loadData } from '../src/data/index.js';
import { channelShift } from '../src/core/recover/bias-correction.js';
import { randomFloats } from './helpers/onnx-builder.js';
import { FIXTURES } from './helpers/tmp.js';

const mean = (v: Float32Array) => v.reduce((a, b) => a + b, 0) / v.length;
const reluMean = (v: Float32Array, d: number) => v.reduce((a, b) => a + Math.max(0, b + d), 0) / v.length;

test('pre: the shifted prediction has the target\'s mean', () => {
  const pred = randomFloats(500, 1);
  const target = randomFloats(500, 2).map((v) => v * 2 + 0.7);
  const d = channelShift(pred, target, 'pre');
  assert.ok(Math.abs(mean(pred) + d - mean(target)) < 1e-6);
});

test('relu: what survives the ReLU has the target\'s mean after the shift; a channel that never fires is left alone', () => {
  const pred = randomFloats(800, 3);
  const target = randomFloats(800, 4).map((v) => v + 0.3);
  const d = channelShift(pred, target, 'relu');
  assert.ok(Math.abs(reluMean(pred, d) - reluMean(target, 0)) < 1e-6, `${reluMean(pred, d)} vs ${reluMean(target, 0)}`);
  // Not the pre-activation shift: the ReLU cuts the two distributions differently.
  assert.ok(Math.abs(d - channelShift(pred, target, 'pre')) > 1e-3);
  assert.equal(channelShift(pred, target.map((v) => -Math.abs(v) - 0.1), 'relu'), 0);
  assert.equal(channelShift(new Float32Array(0), new Float32Array(0), 'pre'), 0);
});

test('on a bundled model, each corrected layer\'s output has the original\'s per-channel mean on the calibration images', async () => {
  const file = path.join(FIXTURES, 'models', 'vgg-fmnist.onnx');
  const subset = path.join(FIXTURES, 'data', 'fashion-mnist', 't10k-images-idx3-ubyte.gz');
  const model = await loadModel(file);
  const reshaped = reshape(model, 'cross');
  // Every output position a row (28x28 at most), so the rows are the whole calibration set.
  const data = { data: subset, calib: 32, eval: 8, seed: 2, rowsPerImage: 1000 };
  const corrected = await recover(model, reshaped, { ...data, biasCorrection: 'pre', objective: 'output' });
  const plain = await recover(model, reshaped, { ...data, biasCorrection: 'none', objective: 'output' });
  assert.ok(corrected.layers.every((l) => l.biasCorrected));
  assert.ok(plain.layers.every((l) => !l.biasCorrected));
  const outputs = model.layers.map((l) => l.uses[0].output);
  const split = await loadData(subset, { inputDims: model.inputs[0].dims, calib: 32, eval: 8, seed: 2, numClasses: 10 });
  const x = split.calib.x;
  const dims = [32, 1, 28, 28];
  const channelMeans = async (weights: ReadonlyMap<string, Float32Array>) => {
    const runner = await model.createRunner(weights, outputs);
    try {
      const values = await runner.run(x, dims, outputs);
      return outputs.map((o) => {
        const a = values.get(o)!;
        const [n, c, h, w] = a.dims;
        return Array.from({ length: c }, (_, ch) => {
          let s = 0;
          for (let b = 0; b < n; b++) for (let i = 0; i < h * w; i++) s += a.data[(b * c + ch) * h * w + i];
          return s / (n * h * w);
        });
      });
    } finally {
      await runner.release();
    }
  };
  const original = await channelMeans(new Map());
  const worst = (m: number[][]) => Math.max(...m.flatMap((layer, k) => layer.map((v, ch) => Math.abs(v - original[k][ch]))));
  const after = worst(await channelMeans(corrected.weights));
  const before = worst(await channelMeans(plain.weights));
  assert.ok(after < 1e-3, `largest per-channel mean difference with correction: ${after}`);
  assert.ok(before > 10 * after, `without correction ${before}, with ${after}`);
});
