/**
 * The ONNX-on-TF.js executor against onnxruntime on every bundled model: the outputs, and every
 * convolution's output fetched from inside the graph (stored channels-last, handed back NCHW),
 * agree within 1e-4 relative; replaced weights and trainable variables compute the same as the
 * file's; nothing is left allocated.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { findConv3x3 } from '../src/formats/onnx/convs.js';
import { probeModelBytes } from '../src/models/onnx/probe.js';
import { readOnnxModel } from '../src/formats/onnx/read.js';
import { trainingRuntime } from '../src/runtime/tfjs/training-backend.js';
import { decodeGraph } from '../src/formats/onnx/decode-graph.js';
import { OnnxTfjsGraph } from '../src/runtime/tfjs/onnx/graph.js';
import { KpruneError } from '../src/errors.js';
import { mulberry32 } from '../src/util/random.js';
import { FIXTURES } from './helpers/tmp.js';

const MODELS = ['no-3x3.onnx', 'misc-fmnist.onnx', 'resnet-fmnist.onnx', 'vgg-fmnist.onnx', 'vgg-fmnist-constants.onnx', 'vgg-fmnist-external/model.onnx', 'dwsep-fmnist.onnx'];
const rt = await trainingRuntime();
const { tf } = rt;

function input(n: number, seed: number): Float32Array {
  const r = mulberry32(seed);
  return Float32Array.from({ length: n * 784 }, () => r());
}

function relDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return diff / Math.max(scale, 1e-6);
}

for (const name of MODELS) {
  test(`${name}: TF.js (${rt.backend}) matches onnxruntime, outputs and every convolution inside`, async () => {
    const model = await readOnnxModel(path.join(FIXTURES, 'models', name));
    const convOutputs = (model.graph.node ?? []).filter((n) => n.opType === 'Conv').map((n) => n.output![0]);
    const fetch = [...(model.graph.output ?? []).map((o) => o.name!), ...convOutputs];
    const x = input(3, 11);
    const session = await ort.InferenceSession.create(probeModelBytes(model, new Map(), convOutputs));
    const want = await session.run({ [session.inputNames[0]]: new ort.Tensor('float32', x, [3, 1, 28, 28]) }, fetch);
    await session.release();

    const graph = OnnxTfjsGraph.compile(decodeGraph(model), tf);
    const start = tf.memory().numTensors;
    const weights = graph.loadWeights();
    const baseline = tf.memory().numTensors;
    const feed = tf.tensor(x, [3, 1, 28, 28]);
    const got = graph.run(weights, new Map([[graph.inputs[0].name, feed]]), fetch);
    assert.equal(tf.memory().numTensors, baseline + 1 + fetch.length, 'only the feed and the fetched values remain');
    for (const f of fetch) {
      const w = want[f] as ort.Tensor;
      const g = got.get(f)!;
      assert.deepEqual(g.shape, [...w.dims], `${f}: shape`);
      const d = relDiff(await g.data(), w.data as Float32Array);
      assert.ok(d <= 1e-4, `${f}: relative difference ${d}`);
    }
    for (const t of got.values()) t.dispose();
    feed.dispose();
    weights.dispose();
    assert.equal(tf.memory().numTensors, start, 'weights freed');
  });
}

test('replaced weights and trainable variables compute what onnxruntime computes with the same weights', async () => {
  const model = await readOnnxModel(path.join(FIXTURES, 'models', 'misc-fmnist.onnx'));
  const layers = findConv3x3(model).layers;
  const r = mulberry32(5);
  const replaced = new Map(layers.map((l) => [l.id, Float32Array.from(l.weights, (v) => v * (0.5 + r()))]));
  const x = input(2, 12);
  const session = await ort.InferenceSession.create(probeModelBytes(model, replaced, []));
  const want = (await session.run({ [session.inputNames[0]]: new ort.Tensor('float32', x, [2, 1, 28, 28]) }))[session.outputNames[0]].data as Float32Array;
  await session.release();
  const graph = OnnxTfjsGraph.compile(decodeGraph(model), tf);
  for (const trainable of [[], layers.map((l) => l.id)]) {
    const weights = graph.loadWeights({ overrides: replaced, trainable });
    assert.equal(weights.variables.size, trainable.length);
    const y = tf.tidy(() => graph.run(weights, new Map([[graph.inputs[0].name, tf.tensor(x, [2, 1, 28, 28])]])).get(graph.outputs[0])!);
    assert.ok(relDiff(await y.data(), want) <= 1e-4);
    y.dispose();
    // Variables read back in the model's own layout (OIHW), unchanged.
    for (const id of trainable) assert.deepEqual(weights.readTrainable(id), replaced.get(id));
    weights.dispose();
  }
});

test('a weight read by something other than a convolution filter cannot be trained', async () => {
  const model = await readOnnxModel(path.join(FIXTURES, 'models', 'resnet-fmnist.onnx'));
  const graph = OnnxTfjsGraph.compile(decodeGraph(model), tf);
  assert.throws(() => graph.loadWeights({ trainable: ['fc.weight'] }), (e: unknown) => e instanceof KpruneError && e.code === 'unsupported' && /fc\.weight/.test(e.message));
  assert.throws(() => graph.loadWeights({ trainable: ['nope'] }), /not a constant/);
  assert.throws(() => graph.loadWeights({ overrides: new Map([['fc.bias', new Float32Array(3)]]) }), /has 3 values/);
});

test('a missing feed and an unknown fetch are usage errors', async () => {
  const model = await readOnnxModel(path.join(FIXTURES, 'models', 'vgg-fmnist.onnx'));
  const graph = OnnxTfjsGraph.compile(decodeGraph(model), tf);
  const weights = graph.loadWeights();
  const before = tf.memory().numTensors;
  assert.throws(() => graph.run(weights, new Map()), (e: unknown) => e instanceof KpruneError && e.code === 'usage' && /input "input"/.test(e.message));
  const feed = tf.zeros([1, 1, 28, 28]);
  assert.throws(() => graph.run(weights, new Map([['input', feed]]), ['nope']), /"nope" is not a value/);
  feed.dispose();
  assert.equal(tf.memory().numTensors, before, 'a failed run frees what it made');
  weights.dispose();
});
