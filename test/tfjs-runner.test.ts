/**
 * The TF.js runners against a plain-loop convolution: for every 3x3 layer of every test model, the
 * values fetched as the layer's input and output (NCHW) satisfy output = conv(input) with the
 * layer's weights, bias, strides, dilations and padding as the ConvUse states them. This is what
 * reconstruction relies on. Also: swapped kernels take effect, and memory does not grow per batch.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { loadModel } from '../src/models/index.js';
import { geometry } from '../src/core/recover/geometry.js';
import { maskWeights } from '../src/core/reshape.js';
import { parseMask } from '../src/core/lattice.js';
import { kernelCount } from '../src/model/conv.js';
import { conv2d } from './helpers/conv-reference.js';
import { randomFloats } from './helpers/onnx-builder.js';
import { functionalModel, graphModelFiles, saveLayersModel, seedWeights, sequentialModel, tfjs } from './helpers/tfjs-models.js';
import { tempDir } from './helpers/tmp.js';
import type * as TF from '../src/runtime/tfjs/tf.js';
import { fileHandler } from '../src/models/tfjs/io.js';
import { executeGraph } from '../src/models/tfjs/runner.js';

const dir = tempDir('kprune-tfjs-runner-');

async function models(): Promise<{ name: string; file: string; dims: number[] }[]> {
  const tf = await tfjs();
  const seq = sequentialModel(tf);
  seedWeights(tf, seq, 3);
  const fun = functionalModel(tf);
  seedWeights(tf, fun, 5);
  return [
    { name: 'sequential', file: await saveLayersModel(tf, seq, path.join(dir, 'seq')), dims: [2, 12, 12, 3] },
    { name: 'functional-nested', file: await saveLayersModel(tf, fun, path.join(dir, 'fun')), dims: [2, 10, 10, 3] },
    { name: 'graph', file: graphModelFiles(path.join(dir, 'graph')), dims: [2, 8, 8, 3] },
  ];
}

function maxRelDiff(a: Float32Array, b: Float32Array): number {
  let scale = 1e-6;
  for (const v of b) scale = Math.max(scale, Math.abs(v));
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d / scale;
}

test('fetched convolution inputs and outputs (NCHW) match a reference convolution', async () => {
  for (const m of await models()) {
    const model = await loadModel(m.file);
    const x = randomFloats(m.dims.reduce((a, b) => a * b, 1), 17);
    for (const weights of ['original', 'masked'] as const) {
      const masked = new Map(model.layers.map((l) => [l.id, maskWeights(l.weights, kernelCount(l), parseMask('010/111/010'))]));
      const runner = await model.createRunner(weights === 'masked' ? masked : new Map(), []);
      try {
        for (const layer of model.layers) {
          for (const use of layer.uses) {
            const got = await runner.run(x, m.dims, [use.input, use.output]);
            const xin = got.get(use.input)!;
            const y = got.get(use.output)!;
            assert.equal(xin.dims[1], layer.inChannelsPerGroup * layer.group, `${m.name} ${use.node}: input is NCHW`);
            assert.equal(y.dims[1], layer.outChannels, `${m.name} ${use.node}: output is NCHW`);
            const [, , h, w] = xin.dims;
            const [, , ho, wo] = y.dims;
            const g = geometry(use, h, w);
            const pb = (ho - 1) * g.strideH + 2 * g.dilH + 1 - h - g.padTop;
            const pr = (wo - 1) * g.strideW + 2 * g.dilW + 1 - w - g.padLeft;
            const ref = conv2d(xin.data, xin.dims, {
              weights: weights === 'masked' ? masked.get(layer.id)! : layer.weights,
              bias: use.biasValues, out: layer.outChannels, inPerGroup: layer.inChannelsPerGroup, group: layer.group,
              stride: use.strides, dilation: use.dilations, pads: [g.padTop, g.padLeft, pb, pr],
            });
            assert.deepEqual(ref.dims, y.dims, `${m.name} ${use.node}: output dims`);
            const d = maxRelDiff(y.data, ref.data);
            assert.ok(d < 1e-4, `${m.name} ${use.node} (${weights}): relative difference ${d}`);
          }
        }
      } finally {
        await runner.release();
      }
    }
  }
});

test('model outputs come in the model layout; memory does not grow per batch', async () => {
  const tf = await tfjs();
  for (const m of await models()) {
    const model = await loadModel(m.file);
    const runner = await model.createRunner(new Map(), []);
    const x = randomFloats(m.dims.reduce((a, b) => a * b, 1), 19);
    const fetch = [runner.outputNames[0], ...model.layers.flatMap((l) => l.uses.flatMap((u) => [u.input, u.output]))];
    const first = await runner.run(x, m.dims, fetch);
    const tensors = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) await runner.run(x, m.dims, fetch);
    assert.equal(tf.memory().numTensors, tensors, `${m.name}: tensors after 3 more batches`);
    const out = first.get(runner.outputNames[0])!;
    assert.equal(out.dims[0], m.dims[0]);
    assert.match(runner.runtime, /TF\.js .* backend/);
    await runner.release();
  }
});

test('the layer-by-layer runner gives what TF.js predict/execute gives, esrgan-slim included', async () => {
  const tf = await tfjs();
  const esrgan = path.resolve(new URL('../../node_modules/@upscalerjs/esrgan-slim/models/x2/model.json', import.meta.url).pathname);
  for (const m of [...await models(), { name: 'esrgan-slim x2', file: esrgan, dims: [1, 24, 24, 3] }]) {
    const model = await loadModel(m.file);
    const x = randomFloats(m.dims.reduce((a, b) => a * b, 1), 23).map((v) => (m.name.startsWith('esrgan') ? 128 + 127 * v : v));
    const runner = await model.createRunner(new Map(), []);
    const ours = (await runner.run(x, m.dims)).get(runner.outputNames[0])!;
    await runner.release();
    const graph = model.format === 'tfjs-graph';
    const loaded = graph ? await tf.loadGraphModel(fileHandler(m.file)) : await tf.loadLayersModel(fileHandler(m.file));
    const xt = tf.tensor(x, m.dims);
    const y = graph ? (await executeGraph(loaded as TF.GraphModel, { x: xt }))[0] : (loaded as TF.LayersModel).predict(xt) as TF.Tensor;
    assert.deepEqual(ours.dims, y.shape, m.name);
    const d = maxRelDiff(ours.data, await y.data() as Float32Array);
    assert.ok(d < 1e-5, `${m.name}: relative difference ${d}`);
    tf.dispose([xt, y]);
    loaded.dispose();
  }
});
