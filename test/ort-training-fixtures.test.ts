/**
 * The onnxruntime training graph of every bundled model against the TF.js path (whose gradients are
 * checked against float64 loops and TF.js's own kernels in onnx-tfjs-grad.test.ts): the loss and
 * the gradient of every reshaped 3x3 weight, per objective, to 1e-4 relative; dense, as pieces
 * over the kept positions, and with the weights fed in the kept layout (what fine-tuning runs).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import onnxProto from 'onnx-proto';
import type * as TF from '../src/runtime/tfjs/tf.js';
import { kernelCount } from '../src/model/conv.js';
import type { Objective } from '../src/core/finetune/score.js';
import { maskHas, parseMask } from '../src/core/lattice.js';
import { maskWeights } from '../src/core/reshape.js';
import { packKept, unpackKept } from '../src/core/finetune/kept-layout.js';
import { findConv3x3 } from '../src/formats/onnx/convs.js';
import { probeModelBytes } from '../src/models/onnx/probe.js';
import { readOnnxModel } from '../src/formats/onnx/read.js';
import { decodeGraph } from '../src/formats/onnx/decode-graph.js';
import { buildTrainingGraph, computedValues, headValue } from '../src/formats/onnx/training/index.js';
import { trainingRuntime } from '../src/runtime/tfjs/training-backend.js';
import { OnnxTfjsGraph, fromConvFilter } from '../src/runtime/tfjs/onnx/graph.js';
import { trainingLoss } from '../src/runtime/tfjs/trainer.js';
import { probeShapes } from '../src/runtime/ort/training-session.js';
import { mulberry32 } from '../src/util/random.js';
import { FIXTURES } from './helpers/tmp.js';

const { tf } = await trainingRuntime();
const N = 8;
const T = 4;
const W = 0.9;

function relative(a: Float32Array, b: Float32Array): number {
  let d = 0;
  let n = 0;
  for (let i = 0; i < b.length; i++) {
    d += (a[i] - b[i]) ** 2;
    n += b[i] ** 2;
  }
  return Math.sqrt(d / Math.max(n, 1e-30));
}

async function compare(name: string, objectives: Objective[], form: 'dense' | 'pieces' | 'kept' = 'dense'): Promise<void> {
  const pieces = form !== 'dense';
  const model = await readOnnxModel(path.join(FIXTURES, 'models', `${name}.onnx`));
  const layers = findConv3x3(model).layers;
  const cross = parseMask('010/111/010');
  const weights = new Map(layers.map((l) => [l.id, maskWeights(l.weights, kernelCount(l), cross)]));
  const r = mulberry32(5);
  const x = Float32Array.from({ length: N * 784 }, () => r());
  const labels = Int32Array.from({ length: N }, (_, i) => (i * 7) % 10);
  const onehot = new Float32Array(N * 10);
  labels.forEach((l, i) => { onehot[i * 10 + l] = 1; });
  const head = headValue(model);

  // The original's logits (teacher) and every value's dims, from onnxruntime.
  const probe = await ort.InferenceSession.create(probeModelBytes(model, weights, computedValues(model)), { intraOpNumThreads: 1 });
  const shapes = await probeShapes(probe, 'input', x, [N, 1, 28, 28]);
  await probe.release();
  const original = await ort.InferenceSession.create(probeModelBytes(model, new Map(), [head]), { intraOpNumThreads: 1 });
  const teacher = (await original.run({ input: new ort.Tensor('float32', x, [N, 1, 28, 28]) }, [head]))[head].data as Float32Array;
  await original.release();

  const graph = OnnxTfjsGraph.compile(decodeGraph(model), tf);
  const loaded = graph.loadWeights({ overrides: weights, trainable: layers.map((l) => l.id) });
  try {
    for (const objective of objectives) {
      const built = buildTrainingGraph(model, {
        trainable: layers.map((l) => l.id), head, shapes, loss: { objective, temperature: T, distillWeight: W },
        ...(pieces ? { masks: new Map(layers.map((l) => [l.id, cross])) } : {}),
        ...(form === 'kept' ? { layout: 'kept' as const } : {}),
      });
      assert.ok(built.ok, `${name}: ${built.ok ? '' : JSON.stringify(built.missing)}`);
      const g = built.graph;
      if (name === 'vgg-fmnist') {
        // Its 2x2 pools follow ReLUs: each pooled gradient is masked by the ReLU before MaxUnpool
        // scatters it (rules.ts, reluGrad), and the unmasked scatter is pruned.
        const nodes = onnxProto.onnx.ModelProto.decode(g.bytes).graph!.node!;
        const unpools = nodes.filter((nd) => nd.opType === 'MaxUnpool');
        assert.equal(unpools.length, 2, 'one MaxUnpool per pool');
        for (const u of unpools) assert.equal(nodes.find((nd) => nd.output!.includes(u.input![0]))?.opType, 'Mul', 'the pooled gradient is masked before the scatter');
      }
      const session = await ort.InferenceSession.create(g.bytes, { intraOpNumThreads: 1 });
      const feeds: Record<string, ort.Tensor> = { [g.data]: new ort.Tensor('float32', x, [N, 1, 28, 28]) };
      for (const w of g.weights) {
        const readers = (model.graph.node ?? []).filter((nd) => (nd.input ?? []).includes(w.name)).length;
        if (form === 'kept' && readers > 1) {
          // A weight two convolutions share (misc-fmnist) stays in its 3x3 layout.
          assert.equal(w.positions, undefined, `${name} ${w.name}: shared, fed whole`);
        } else if (form === 'kept') {
          assert.ok(w.positions, `${name} ${w.name}: fed in the kept layout`);
          assert.deepEqual([...w.positions].sort(), [1, 3, 4, 5, 7], `${name} ${w.name}: the cross's positions`);
          assert.equal(w.dims.at(-1), 5);
        } else {
          assert.equal(w.positions, undefined);
        }
        const full = weights.get(w.name)!;
        feeds[w.name] = new ort.Tensor('float32', w.positions ? packKept(full, w.positions) : full, w.dims);
      }
      if (g.lossInputs.labels) feeds[g.lossInputs.labels] = new ort.Tensor('float32', onehot, [N, 10]);
      if (g.lossInputs.teacher) feeds[g.lossInputs.teacher] = new ort.Tensor('float32', teacher, [N, 10]);
      const out = await session.run(feeds);
      await session.release();

      const { value, grads } = tf.variableGrads(() => {
        const logits = tf.reshape(graph.run(loaded, new Map([['input', tf.tensor(x, [N, 1, 28, 28])]]), [head]).get(head)!, [N, -1]) as TF.Tensor2D;
        return trainingLoss(tf, { objective, temperature: T, distillWeight: W }, logits, tf.tensor1d(labels, 'int32'), tf.tensor2d(teacher, [N, 10]));
      }, [...loaded.variables.values()]);
      const lossTf = (await value.data())[0];
      const lossOrt = (out[g.loss].data as Float32Array)[0];
      assert.ok(Math.abs(lossOrt - lossTf) <= 1e-4 * Math.abs(lossTf), `${name} ${objective}: loss ${lossOrt} (onnxruntime) vs ${lossTf} (TF.js)`);
      for (const w of g.weights) {
        const v = loaded.variables.get(w.name)!;
        const ref = tf.tidy(() => fromConvFilter(tf, grads[v.name]));
        const theirs = Float32Array.from(await ref.data());
        ref.dispose();
        const given = out[w.grad].data as Float32Array;
        assert.equal(given.length, w.dims.reduce((a, b) => a * b, 1));
        const ours = w.positions ? unpackKept(given, w.positions) : given;
        if (pieces) {
          // Kept positions only: the dropped ones are not computed (zero; the optimiser masks them).
          const kept = (a: Float32Array) => a.filter((_, i) => maskHas(cross, i % 9));
          const rel = relative(kept(ours), kept(theirs));
          assert.ok(rel <= 1e-4, `${name} ${objective} ${w.name} (pieces): gradient differs by ${rel.toExponential(2)} (relative)`);
          assert.ok(ours.every((gv, i) => maskHas(cross, i % 9) || gv === 0), `${name} ${w.name}: dropped positions are exactly zero`);
        } else {
          const rel = relative(ours, theirs);
          assert.ok(rel <= 1e-4, `${name} ${objective} ${w.name}: gradient differs by ${rel.toExponential(2)} (relative)`);
          // Dense: dropped positions get their gradients too, and they are not zero.
          assert.ok(ours.some((gv, i) => i % 9 === 0 && gv !== 0), `${name} ${w.name}: a corner position has a gradient`);
        }
      }
      tf.dispose([value, ...Object.values(grads)]);
    }
  } finally {
    loaded.dispose();
  }
}

test('resnet-fmnist: loss and every 3x3 gradient as the TF.js path computes them (all four objectives)', async () => {
  await compare('resnet-fmnist', ['cross-entropy', 'cross-entropy+distill', 'distill-kl', 'distill-mse']);
});

test('vgg-fmnist, dwsep-fmnist, misc-fmnist: loss and every 3x3 gradient as the TF.js path computes them', async () => {
  for (const name of ['vgg-fmnist', 'dwsep-fmnist', 'misc-fmnist']) await compare(name, ['cross-entropy+distill']);
});

test('every bundled model with its convolutions as pieces over the kept positions: the kept gradients as TF.js computes them', async () => {
  for (const name of ['resnet-fmnist', 'vgg-fmnist', 'dwsep-fmnist', 'misc-fmnist']) await compare(name, ['cross-entropy+distill'], 'pieces');
});

test('every bundled model with its weights fed in the kept layout (what fine-tuning runs): the kept gradients as TF.js computes them', async () => {
  for (const name of ['resnet-fmnist', 'vgg-fmnist', 'dwsep-fmnist', 'misc-fmnist']) await compare(name, ['cross-entropy+distill'], 'kept');
});
