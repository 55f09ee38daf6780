/**
 * Fine-tuning a reshaped bundled model end to end, briefly: only kept kernel positions change and
 * pruned ones stay exactly zero; the run is reproducible bit for bit; the weights written back
 * into the ONNX file compute in onnxruntime what TF.js computed and score what the result says;
 * an abort frees everything and returns nothing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { kernelCount } from '../src/model/conv.js';
import { maskHas, parseMask } from '../src/core/lattice.js';
import { maskWeights } from '../src/core/reshape.js';
import { loadData } from '../src/data/index.js';
import type { Dataset } from '../src/data/types.js';
import { KpruneError } from '../src/errors.js';
import { loadModel } from '../src/models/index.js';
import { findConv3x3 } from '../src/formats/onnx/convs.js';
import { readOnnxModel } from '../src/formats/onnx/read.js';
import { trainingRuntime } from '../src/runtime/tfjs/training-backend.js';
import type { FinetuneOptions } from '../src/models/onnx/finetune-in-tfjs.js';
import { finetuneOnnx } from '../src/models/onnx/finetune.js';
import { decodeGraph } from '../src/formats/onnx/decode-graph.js';
import { OnnxTfjsGraph } from '../src/runtime/tfjs/onnx/graph.js';
import { FIXTURES, tempDir } from './helpers/tmp.js';

const dir = tempDir();
const FILE = path.join(FIXTURES, 'models', 'resnet-fmnist.onnx');
const SUBSET = path.join(FIXTURES, 'data', 'fashion-mnist', 't10k-images-idx3-ubyte.gz');
const model = await readOnnxModel(FILE);
const layers = findConv3x3(model).layers;
const cross = parseMask('010/111/010');
const masks = new Map(layers.map((l) => [l.id, cross]));
const start = new Map(layers.map((l) => [l.id, maskWeights(l.weights, kernelCount(l), cross)]));
const split = await loadData(SUBSET, { inputDims: ['N', 1, 28, 28], calib: 160, eval: 96, seed: 3, numClasses: 10 });
const data = { train: split.calib, heldOut: split.eval };
const options: FinetuneOptions = { steps: 8, batch: 16, labels: true, evalEvery: 4, seed: 1, engine: 'tfjs' };
const { tf } = await trainingRuntime();

function assertMasked(weights: ReadonlyMap<string, Float32Array>): void {
  for (const l of layers) {
    const w = weights.get(l.id)!;
    assert.equal(w.length, l.weights.length);
    for (let i = 0; i < w.length; i++) if (!maskHas(cross, i % 9)) assert.equal(w[i], 0, `${l.name}: position ${i % 9} of kernel ${Math.floor(i / 9)}`);
  }
}

async function heldOutLogits(file: string, x: Dataset): Promise<Float32Array> {
  const s = await ort.InferenceSession.create(file);
  const y = (await s.run({ input: new ort.Tensor('float32', x.x, [x.count, 1, 28, 28]) })).logits.data as Float32Array;
  await s.release();
  return y;
}

const first = await finetuneOnnx(model, layers, start, masks, data, options);

test('with labels: cross-entropy plus distillation, kept positions train, pruned ones stay exactly zero', () => {
  assert.equal(first.objective, 'cross-entropy+distill');
  assert.match(first.backend, /^TF\.js \S+ \((wasm|cpu|tensorflow) backend\)$/);
  assert.equal(first.steps, 8);
  assert.equal(first.batch, 16);
  assert.deepEqual(first.history.map((h) => h.step), [0, 4, 8]);
  assert.equal(first.heldOut.metric, 'top1');
  assert.equal(first.heldOut.samples, 96);
  assert.ok(first.imagesPerSecond > 0);
  assertMasked(first.weights);
  // From the reshaped (not reconstructed) start, a few steps must already help.
  assert.ok(first.bestStep > 0, 'a trained checkpoint was chosen');
  assert.ok(first.heldOut.after.top1! > first.heldOut.before.top1!, `${first.heldOut.before.top1} -> ${first.heldOut.after.top1}`);
  assert.ok(layers.some((l) => first.weights.get(l.id)!.some((v, i) => v !== start.get(l.id)![i])), 'some weight moved');
});

test('the same seed gives the same weights, bit for bit', async () => {
  const again = await finetuneOnnx(model, layers, start, masks, data, options);
  assert.equal(again.bestStep, first.bestStep);
  for (const l of layers) assert.deepEqual(again.weights.get(l.id), first.weights.get(l.id));
});

test('written back into the ONNX file, the weights compute in onnxruntime what TF.js computes, and score what the result says', async () => {
  const loaded = await loadModel(FILE);
  const out = path.join(dir, 'resnet.finetuned.onnx');
  await loaded.write(first.weights, out);
  const written = await heldOutLogits(out, data.heldOut);
  let correct = 0;
  for (let s = 0; s < data.heldOut.count; s++) {
    let best = 0;
    for (let k = 1; k < 10; k++) if (written[s * 10 + k] > written[s * 10 + best]) best = k;
    if (best === data.heldOut.labels![s]) correct++;
  }
  assert.equal(correct / data.heldOut.count, first.heldOut.after.top1);

  const graph = OnnxTfjsGraph.compile(decodeGraph(model), tf);
  const weights = graph.loadWeights({ overrides: first.weights });
  const y = tf.tidy(() => graph.run(weights, new Map([['input', tf.tensor(data.heldOut.x, [data.heldOut.count, 1, 28, 28])]])).get('logits')!);
  const ours = await y.data();
  y.dispose();
  weights.dispose();
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < written.length; i++) {
    diff = Math.max(diff, Math.abs(ours[i] - written[i]));
    scale = Math.max(scale, Math.abs(written[i]));
  }
  assert.ok(diff <= 1e-4 * scale, `TF.js vs onnxruntime on the written file: ${diff} at scale ${scale}`);
});

test('without labels: distillation from the original, checkpoints chosen by agreement', async () => {
  const unlabelled = { train: { ...data.train, labels: undefined }, heldOut: { ...data.heldOut, labels: undefined } };
  const r = await finetuneOnnx(model, layers, start, masks, unlabelled, { ...options, labels: false, steps: 6, evalEvery: 3 });
  assert.equal(r.objective, 'distill-kl');
  assert.equal(r.heldOut.metric, 'agreement');
  assert.equal(r.heldOut.before.top1, undefined);
  assert.ok(r.heldOut.after.agreement! >= r.heldOut.before.agreement!);
  assertMasked(r.weights);
});

test('zero steps evaluates the start and returns it', async () => {
  const r = await finetuneOnnx(model, layers, start, masks, data, { ...options, steps: 0 });
  assert.equal(r.bestStep, 0);
  for (const l of layers) assert.equal(r.weights.get(l.id), start.get(l.id));
  assert.deepEqual(r.heldOut.after, r.heldOut.before);
});

test('an abort rejects with the reason, returns nothing and frees every tensor', async () => {
  const before = tf.memory().numTensors;
  const controller = new AbortController();
  let steps = 0;
  await assert.rejects(
    finetuneOnnx(model, layers, start, masks, data, { ...options, signal: controller.signal, onStep: () => { if (++steps === 2) controller.abort(new Error('Ctrl-C')); } }),
    /Ctrl-C/,
  );
  assert.equal(steps, 2);
  assert.equal(tf.memory().numTensors, before);
});

test('bad requests are usage errors that say what is wrong, the same whichever engine would train', async () => {
  const usage = (re: RegExp) => (e: unknown) => e instanceof KpruneError && e.code === 'usage' && re.test(e.message);
  const unlabelled = { train: { ...data.train, labels: undefined }, heldOut: data.heldOut };
  const dirty = new Map(start);
  dirty.set(layers[0].id, layers[0].weights);
  // finetune.ts checks the request once for both fine-tuners (models/onnx/finetune-plan.ts).
  for (const engine of ['tfjs', 'onnxruntime', 'auto'] as const) {
    const o = { ...options, engine };
    await assert.rejects(finetuneOnnx(model, layers, start, masks, unlabelled, o), usage(/labelled/));
    await assert.rejects(finetuneOnnx(model, layers, dirty, masks, data, o), usage(/not zero outside its mask/));
    await assert.rejects(finetuneOnnx(model, layers, start, masks, data, { ...o, steps: -1 }), usage(/whole number/));
    await assert.rejects(finetuneOnnx(model, layers, start, masks, data, { ...o, lr: 0 }), usage(/--lr/));
    await assert.rejects(finetuneOnnx(model, layers, start, new Map(), data, o), usage(/no mask/));
  }
});
