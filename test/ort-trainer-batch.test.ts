/**
 * The onnxruntime trainer at any batch size: a training graph has static dims, so a batch of a
 * size it was not built for gets its own graph, built once and kept; its loss is the model's loss
 * on those samples (not the other graph's, not padded). And teacher targets computed once for the
 * whole training set (a run that sees every sample) train exactly as the per-step targets of TF.js.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { kernelCount } from '../src/model/conv.js';
import { parseMask } from '../src/core/lattice.js';
import { maskWeights } from '../src/core/reshape.js';
import { crossEntropy } from '../src/core/finetune/score.js';
import { loadData } from '../src/data/index.js';
import { findConv3x3 } from '../src/formats/onnx/convs.js';
import { readOnnxModel } from '../src/formats/onnx/read.js';
import { buildTrainingGraph, computedValues, headValue } from '../src/formats/onnx/training/index.js';
import { probeModelBytes } from '../src/models/onnx/probe.js';
import { finetuneOnnx } from '../src/models/onnx/finetune.js';
import { precomputeTeacher } from '../src/models/onnx/finetune-in-ort.js';
import type { FinetuneOptions } from '../src/core/finetune/run.js';
import { probeShapes } from '../src/runtime/ort/training-session.js';
import { OrtTrainer, OrtTrainingGraph } from '../src/runtime/ort/trainer.js';
import { TrainPool } from '../src/runtime/ort/train-pool.js';
import { FIXTURES } from './helpers/tmp.js';

const model = await readOnnxModel(path.join(FIXTURES, 'models', 'vgg-fmnist.onnx'));
const layers = findConv3x3(model).layers;
const cross = parseMask('010/111/010');
const masks = new Map(layers.map((l) => [l.id, cross]));
const start = new Map(layers.map((l) => [l.id, maskWeights(l.weights, kernelCount(l), cross)]));
const split = await loadData(path.join(FIXTURES, 'data', 'fashion-mnist', 't10k-images-idx3-ubyte.gz'), { inputDims: ['N', 1, 28, 28], calib: 96, eval: 64, seed: 5, numClasses: 10 });
const train = split.calib;
const head = headValue(model);

async function graphAt(n: number, layout: 'full' | 'kept' = 'full'): Promise<OrtTrainingGraph> {
  const probe = await ort.InferenceSession.create(probeModelBytes(model, start, computedValues(model)), { intraOpNumThreads: 1 });
  const shapes = await probeShapes(probe, 'input', train.x.subarray(0, n * 784), [n, 1, 28, 28]);
  await probe.release();
  const built = buildTrainingGraph(model, { trainable: layers.map((l) => l.id), head, shapes, masks, layout, loss: { objective: 'cross-entropy', temperature: 2, distillWeight: 0 } });
  assert.ok(built.ok);
  const g = built.graph;
  const session = await ort.InferenceSession.create(g.bytes, { intraOpNumThreads: 1 });
  return { session, data: g.data, loss: g.loss, labels: g.lossInputs.labels, headValues: g.flatDims[1], weights: g.weights };
}

async function modelLoss(first: number, n: number): Promise<number> {
  const s = await ort.InferenceSession.create(probeModelBytes(model, start, [head]), { intraOpNumThreads: 1 });
  const y = (await s.run({ input: new ort.Tensor('float32', train.x.subarray(first * 784, (first + n) * 784), [n, 1, 28, 28]) }, [head]))[head].data as Float32Array;
  await s.release();
  return crossEntropy({ data: y, sampleDims: [10] }, train.labels!.subarray(first, first + n));
}

test('a batch of another size gets its own graph, once; its loss is the model\'s loss on those samples', async () => {
  const asked: number[] = [];
  const trainer = new OrtTrainer({
    graphFor: (n) => { asked.push(n); return graphAt(n); },
    start, masks, train, optimizer: 'adam', momentum: 0,
  });
  try {
    const full = await trainer.gradients(Uint32Array.from({ length: 16 }, (_, i) => i));
    const part = await trainer.gradients(Uint32Array.from({ length: 5 }, (_, i) => 20 + i));
    const again = await trainer.gradients(Uint32Array.from({ length: 5 }, (_, i) => 20 + i));
    const full2 = await trainer.gradients(Uint32Array.from({ length: 16 }, (_, i) => 40 + i));
    assert.deepEqual(asked, [16, 5], 'one graph per batch size, kept');
    for (const [got, first, n] of [[full.loss, 0, 16], [part.loss, 20, 5], [full2.loss, 40, 16]] as const) {
      const expected = await modelLoss(first, n);
      assert.ok(Math.abs(got - expected) <= 1e-4 * Math.abs(expected), `samples ${first}..${first + n - 1}: ${got} vs ${expected}`);
    }
    // The same samples give the same result (the reused input buffers are refilled, not appended).
    assert.equal(again.loss, part.loss);
    for (const l of layers) assert.deepEqual(again.grads.get(l.id), part.grads.get(l.id));
  } finally {
    await trainer.release();
  }
});

test('teacher targets computed once train as the TF.js path\'s per-step targets: SGD, weights within 1e-4', async () => {
  const data = { train, heldOut: split.eval };
  const o: FinetuneOptions = { steps: 8, batch: 16, labels: true, evalEvery: 8, seed: 2, threads: 1, optimizer: 'sgd', lr: 0.02, select: 'score' };
  // 8 steps of 16 see 128 >= 96 samples: the onnxruntime run takes the precomputed targets.
  assert.equal(precomputeTeacher(train.count, o.steps, o.batch!, 10), true);
  assert.equal(precomputeTeacher(train.count, 4, o.batch!, 10), false);
  const inOrt = await finetuneOnnx(model, layers, start, masks, data, { ...o, engine: 'onnxruntime' });
  const inTfjs = await finetuneOnnx(model, layers, start, masks, data, { ...o, engine: 'tfjs' });
  assert.equal(inOrt.objective, 'cross-entropy+distill');
  assert.equal(inOrt.bestStep, inTfjs.bestStep);
  for (const l of layers) {
    const a = inOrt.weights.get(l.id)!;
    const b = inTfjs.weights.get(l.id)!;
    let d = 0;
    let n = 0;
    for (let i = 0; i < b.length; i++) {
      d += (a[i] - b[i]) ** 2;
      n += b[i] ** 2;
    }
    assert.ok(Math.sqrt(d / n) < 1e-4, `${l.name}: ${Math.sqrt(d / n)}`);
  }
});

async function graphBytesAt(n: number, layout: 'full' | 'kept' = 'full'): Promise<Uint8Array> {
  const probe = await ort.InferenceSession.create(probeModelBytes(model, start, computedValues(model)), { intraOpNumThreads: 1 });
  const shapes = await probeShapes(probe, 'input', train.x.subarray(0, n * 784), [n, 1, 28, 28]);
  await probe.release();
  const built = buildTrainingGraph(model, { trainable: layers.map((l) => l.id), head, shapes, masks, layout, loss: { objective: 'cross-entropy', temperature: 2, distillWeight: 0 } });
  assert.ok(built.ok);
  return built.graph.bytes;
}

test('the kept layout (weights fed as their kept positions) trains the same weights as the 3x3 layout', async () => {
  const whole = new OrtTrainer({ graphFor: (n) => graphAt(n, 'full'), start, masks, train, optimizer: 'adam', momentum: 0 });
  const kept = new OrtTrainer({ graphFor: (n) => graphAt(n, 'kept'), start, masks, train, optimizer: 'adam', momentum: 0 });
  try {
    const indices = Uint32Array.from({ length: 16 }, (_, i) => (i * 5) % train.count);
    const g = await kept.gradients(indices);
    for (const l of layers) assert.equal(g.grads.get(l.id)!.length, l.weights.length / 9 * 5, `${l.id}: a gradient of the kept positions only`);
    for (let s = 0; s < 3; s++) {
      const a = await whole.step(indices, 1e-3);
      const b = await kept.step(indices, 1e-3);
      assert.ok(Math.abs(a - b) <= 1e-6 * Math.abs(a), `loss ${a} vs ${b}`);
    }
    const wa = whole.snapshot();
    const wb = kept.snapshot();
    for (const l of layers) {
      const [x, y] = [wa.get(l.id)!, wb.get(l.id)!];
      assert.equal(y.length, l.weights.length, 'the snapshot is in 3x3 kernels');
      for (let i = 0; i < x.length; i++) assert.ok(Math.abs(x[i] - y[i]) <= 1e-6, `${l.id}[${i}]: ${x[i]} vs ${y[i]}`);
      assert.ok(y.every((v, i) => (i % 9) % 2 === 1 || i % 9 === 4 || v === 0), `${l.id}: dropped positions are zero`);
      assert.ok(y.some((v, i) => v !== start.get(l.id)![i]), `${l.id}: trained`);
    }
  } finally {
    await whole.release();
    await kept.release();
  }
});

test('data parallelism: a batch split over worker threads gives the whole batch\'s loss and gradients, and trains alike (kept layout)', async () => {
  const pool = TrainPool.open(2);
  const asked: number[] = [];
  const one = new OrtTrainer({ graphFor: (n) => graphAt(n, 'kept'), start, masks, train, optimizer: 'adam', momentum: 0 });
  const split = new OrtTrainer({
    graphFor: (n) => graphAt(n, 'kept'), start, masks, train, optimizer: 'adam', momentum: 0,
    shards: { pool, graphBytesFor: (n) => { asked.push(n); return graphBytesAt(n, 'kept'); } },
  });
  try {
    // 33 samples: shards of 17 and 16, each with its own graph, asked for once.
    const indices = Uint32Array.from({ length: 33 }, (_, i) => (i * 7) % train.count);
    const a = await one.gradients(indices);
    const b = await split.gradients(indices);
    assert.ok(Math.abs(a.loss - b.loss) <= 1e-5 * Math.abs(a.loss), `loss ${a.loss} vs ${b.loss}`);
    for (const [id, g] of a.grads) {
      let scale = 0;
      for (const v of g) scale = Math.max(scale, Math.abs(v));
      const h = b.grads.get(id)!;
      for (let i = 0; i < g.length; i++) assert.ok(Math.abs(g[i] - h[i]) <= 1e-4 * scale, `${id}[${i}]: ${g[i]} vs ${h[i]}`);
    }
    // A few steps train the same weights (up to float rounding); dropped positions stay zero.
    for (let s = 0; s < 3; s++) {
      await one.step(indices, 1e-3);
      await split.step(indices, 1e-3);
    }
    assert.deepEqual(asked.sort((x, y) => x - y), [16, 17]);
    const wa = one.snapshot();
    const wb = split.snapshot();
    for (const [id, w] of wa) {
      const v = wb.get(id)!;
      for (let i = 0; i < w.length; i++) {
        assert.ok(Math.abs(w[i] - v[i]) <= 1e-4, `${id}[${i}]: ${w[i]} vs ${v[i]}`);
        if (i % 9 === 0) assert.equal(v[i], 0, 'a corner stays dropped');
      }
    }
    // Fewer than two samples per worker: one session.
    const small = await split.gradients(indices.subarray(0, 3));
    const ref = await one.gradients(indices.subarray(0, 3));
    assert.ok(Math.abs(small.loss - ref.loss) <= 1e-6 * Math.abs(ref.loss));
  } finally {
    await one.release();
    await split.release();
    await pool.release();
  }
});

test('workers by default only where a step\'s compute outweighs its gradients; asked for, always', async () => {
  const { trainingWorkers, WORKERS_MIN_MACS_PER_WEIGHT } = await import('../src/runtime/ort/training-session.js');
  const os = await import('node:os');
  const cores = Math.min(os.availableParallelism(), 8);
  const heavy = { macs: 2 * WORKERS_MIN_MACS_PER_WEIGHT * 1e6, trainedWeights: 1e6 };
  const light = { macs: 0.2 * WORKERS_MIN_MACS_PER_WEIGHT * 1e6, trainedWeights: 1e6 };
  assert.equal(trainingWorkers({}, heavy), cores >= 2 ? cores : 0);
  assert.equal(trainingWorkers({}, light), 0, 'a ResNet-18 at 56 px (338 MACs per kept weight): one session');
  // The bundled VGG at batch 64: its work counts the kept positions (5 of 9 with a cross); workers.
  const { stepWork } = await import('../src/models/onnx/finetune-in-ort.js');
  const probe = await ort.InferenceSession.create(probeModelBytes(model, start, computedValues(model)), { intraOpNumThreads: 1 });
  const shapes = await probeShapes(probe, 'input', train.x.subarray(0, 64 * 784), [64, 1, 28, 28]);
  await probe.release();
  const vgg = stepWork(model, shapes, layers, masks);
  assert.equal(vgg.trainedWeights, layers.reduce((a, l) => a + l.weights.length / 9 * 5, 0));
  assert.ok(vgg.macs > WORKERS_MIN_MACS_PER_WEIGHT * vgg.trainedWeights, `${vgg.macs / vgg.trainedWeights} MACs per kept weight`);
  assert.equal(trainingWorkers({}, vgg), cores >= 2 ? cores : 0);
  assert.equal(trainingWorkers({ threads: 2 }, light), 2, '--threads N asks for N workers');
  assert.equal(trainingWorkers({ workers: 3 }, light), 3);
  assert.equal(trainingWorkers({ threads: 1 }, heavy), 0);
  assert.equal(trainingWorkers({ device: 'cuda' }, heavy), 0);
});
