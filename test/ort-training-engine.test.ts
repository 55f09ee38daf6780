/**
 * Fine-tuning ONNX models in onnxruntime: the engine chosen (onnxruntime when every operator on
 * the gradient path has a rule, TF.js otherwise, the missing operators named), the same training
 * as the TF.js engine step for step, exact masks, reproducibility, devices refused with one line,
 * and the masked optimiser against TF.js's own optimisers.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import onnxProto from 'onnx-proto';
import type * as TF from '../src/runtime/tfjs/tf.js';
import { kernelCount } from '../src/model/conv.js';
import { runLoop } from '../src/core/finetune/loop.js';
import { MaskedOptimizer } from '../src/core/finetune/optimizer.js';
import { maskHas, parseMask } from '../src/core/lattice.js';
import { maskWeights } from '../src/core/reshape.js';
import { loadData } from '../src/data/index.js';
import type { Dataset } from '../src/data/types.js';
import { KpruneError } from '../src/errors.js';
import { findConv3x3 } from '../src/formats/onnx/convs.js';
import { readOnnxModel, tensorFloats } from '../src/formats/onnx/read.js';
import { finetuneOnnx } from '../src/models/onnx/finetune.js';
import type { FinetuneOptions } from '../src/core/finetune/run.js';
import { trainingRuntime } from '../src/runtime/tfjs/training-backend.js';
import { mulberry32 } from '../src/util/random.js';
import { convNode, floatTensor, randomFloats, valueInfo } from './helpers/onnx-builder.js';
import { CLI, FIXTURES, tempDir } from './helpers/tmp.js';

const dir = tempDir();
const model = await readOnnxModel(path.join(FIXTURES, 'models', 'resnet-fmnist.onnx'));
const layers = findConv3x3(model).layers;
const cross = parseMask('010/111/010');
const masks = new Map(layers.map((l) => [l.id, cross]));
const start = new Map(layers.map((l) => [l.id, maskWeights(l.weights, kernelCount(l), cross)]));
const split = await loadData(path.join(FIXTURES, 'data', 'fashion-mnist', 't10k-images-idx3-ubyte.gz'), { inputDims: ['N', 1, 28, 28], calib: 160, eval: 96, seed: 3, numClasses: 10 });
const data = { train: split.calib, heldOut: split.eval };
const options: FinetuneOptions = { steps: 8, batch: 16, labels: true, evalEvery: 4, seed: 1, threads: 1 };

function assertMasked(weights: ReadonlyMap<string, Float32Array>, ls = layers): void {
  for (const l of ls) {
    const w = weights.get(l.id)!;
    for (let i = 0; i < w.length; i++) if (!maskHas(cross, i % 9)) assert.equal(w[i], 0, `${l.name}: position ${i % 9} of kernel ${Math.floor(i / 9)}`);
  }
}

function relative(a: Float32Array, b: Float32Array): number {
  let d = 0;
  let n = 0;
  for (let i = 0; i < b.length; i++) {
    d += (a[i] - b[i]) ** 2;
    n += b[i] ** 2;
  }
  return Math.sqrt(d / n);
}

const first = await finetuneOnnx(model, layers, start, masks, data, options);

test('a bundled model trains in onnxruntime: kept positions move, pruned ones stay exactly zero, held-out loss improves', () => {
  assert.equal(first.engine, 'onnxruntime');
  assert.deepEqual(first.missingOperators, []);
  assert.match(first.backend, /^onnxruntime-node \S+ \(cpu, 1 thread\)$/);
  assert.equal(first.objective, 'cross-entropy+distill');
  assert.deepEqual(first.history.map((h) => h.step), [0, 4, 8]);
  assertMasked(first.weights);
  assert.ok(first.bestStep > 0, 'a trained checkpoint was chosen');
  assert.ok(first.heldOut.after.loss < first.heldOut.before.loss);
});

test('the same seed gives the same weights, bit for bit', async () => {
  const again = await finetuneOnnx(model, layers, start, masks, data, options);
  for (const l of layers) assert.deepEqual(again.weights.get(l.id), first.weights.get(l.id));
});

test('onnxruntime and TF.js train the same: SGD with momentum, 6 steps, weights within 1e-4', async () => {
  const o: FinetuneOptions = { ...options, steps: 6, evalEvery: 6, optimizer: 'sgd', lr: 0.02, select: 'score' };
  const ort = await finetuneOnnx(model, layers, start, masks, data, { ...o, engine: 'onnxruntime' });
  const tfjs = await finetuneOnnx(model, layers, start, masks, data, { ...o, engine: 'tfjs' });
  assert.equal(tfjs.engine, 'tfjs');
  // Compare the weights after the last step whichever checkpoint each chose: run with 'score'
  // selection and check both took step 6 or both kept the start.
  assert.equal(ort.bestStep, tfjs.bestStep);
  for (const l of layers) {
    const rel = relative(ort.weights.get(l.id)!, tfjs.weights.get(l.id)!);
    assert.ok(rel < 1e-4, `${l.name}: ${rel}`);
  }
  assert.ok(Math.abs(ort.heldOut.after.loss - tfjs.heldOut.after.loss) < 1e-4);
});

test('weights recovery changed besides the trained layers (a compensated head, shifted biases) train in onnxruntime, as TF.js trains them', async () => {
  const fcWeight = tensorFloats(model, model.constants.get('fc.weight')!).map((v) => v * 0.5);
  const bias = (id: string) => layers.find((l) => l.id === id)!.uses[0];
  const b0 = bias(layers[0].id);
  const frozen = new Map<string, Float32Array>([
    ['fc.weight', fcWeight],
    [b0.bias!, b0.biasValues!.map((v) => v + 0.2)],
  ]);
  const withFrozen = new Map([...start, ...frozen]);
  const o: FinetuneOptions = { ...options, steps: 6, evalEvery: 6, optimizer: 'sgd', lr: 0.02, select: 'score' };
  const ort = await finetuneOnnx(model, layers, withFrozen, masks, data, { ...o, engine: 'onnxruntime' });
  const tfjs = await finetuneOnnx(model, layers, withFrozen, masks, data, { ...o, engine: 'tfjs' });
  const without = await finetuneOnnx(model, layers, start, masks, data, { ...o, engine: 'onnxruntime' });
  assert.equal(ort.engine, 'onnxruntime');
  assert.equal(ort.engineNote, undefined);
  // The frozen weights are what the student computes with: the start's loss is theirs, not the file's.
  assert.ok(Math.abs(ort.heldOut.before.loss - tfjs.heldOut.before.loss) < 1e-4, `${ort.heldOut.before.loss} vs ${tfjs.heldOut.before.loss}`);
  assert.ok(Math.abs(ort.heldOut.before.loss - without.heldOut.before.loss) > 1e-2);
  assert.equal(ort.bestStep, tfjs.bestStep);
  for (const l of layers) {
    const rel = relative(ort.weights.get(l.id)!, tfjs.weights.get(l.id)!);
    assert.ok(rel < 1e-4, `${l.name}: ${rel}`);
  }
});

test('an intermediate head: one layer trains against the original\'s value there by squared error (block-wise reconstruction)', async () => {
  const [first, second] = layers;
  const head = second.uses[0].input;
  const r = await finetuneOnnx(model, [first], start, new Map([[first.id, cross]]), data, { ...options, labels: false, head, engine: 'onnxruntime' });
  assert.equal(r.objective, 'distill-mse');
  assert.equal(r.heldOut.metric, 'mse');
  assert.deepEqual([...r.weights.keys()], [first.id]);
  assertMasked(r.weights, [first]);
  assert.ok(relative(r.weights.get(first.id)!, start.get(first.id)!) > 0, 'the layer moved');
  assert.ok(r.heldOut.after.loss <= r.heldOut.before.loss);
});

test('--device: a provider onnxruntime-node lacks here is refused with one line; TF.js cannot take one', async () => {
  const usage = (re: RegExp) => (e: unknown) => e instanceof KpruneError && e.code === 'usage' && re.test(e.message) && !e.message.includes('\n');
  await assert.rejects(finetuneOnnx(model, layers, start, masks, data, { ...options, device: 'coreml' }), usage(/--device coreml: onnxruntime-node \S+ on \S+ has no coreml execution provider \(it offers .*cpu/));
  await assert.rejects(finetuneOnnx(model, layers, start, masks, data, { ...options, device: 'cuda' }), usage(/--device cuda: onnxruntime-node (cannot start its cuda execution provider|.* has no cuda execution provider)/));
  await assert.rejects(finetuneOnnx(model, layers, start, masks, data, { ...options, device: 'cuda', engine: 'tfjs' }), usage(/needs the onnxruntime engine/));
});

/** input [N,1,8,8] -> Conv 3x3 -> Relu -> `pool` -> Flatten -> Gemm -> logits [N,4]. */
function smallModel(pool: 'GlobalMaxPool' | 'GlobalAveragePool'): string {
  const { onnx } = onnxProto;
  const graph: onnxProto.onnx.IGraphProto = {
    name: 'small',
    node: [
      convNode({ name: 'conv', input: 'input', output: 'h', weight: 'w', bias: 'b' }),
      { name: 'relu', opType: 'Relu', input: ['h'], output: ['r'] },
      { name: 'pool', opType: pool, input: ['r'], output: ['p'] },
      { name: 'flat', opType: 'Flatten', input: ['p'], output: ['f'] },
      { name: 'fc', opType: 'Gemm', input: ['f', 'fw'], output: ['logits'] },
    ],
    initializer: [floatTensor('w', [6, 1, 3, 3], randomFloats(54, 1)), floatTensor('b', [6], randomFloats(6, 2)), floatTensor('fw', [6, 4], randomFloats(24, 3))],
    input: [valueInfo('input', ['N', 1, 8, 8])],
    output: [valueInfo('logits', ['N', 4])],
  };
  const file = path.join(dir, `${pool}.onnx`);
  writeFileSync(file, onnx.ModelProto.encode({ irVersion: 8, opsetImport: [{ domain: '', version: 13 }], graph }).finish());
  return file;
}

function smallData(count: number, seed: number): Dataset {
  const r = mulberry32(seed);
  return {
    source: 'random', count, sampleDims: [1, 8, 8], layout: 'NCHW', channelMean: [0.5],
    x: Float32Array.from({ length: count * 64 }, () => r()),
    labels: Int32Array.from({ length: count }, () => Math.floor(r() * 4)),
  };
}

test('an operator without a backward rule on the gradient path: TF.js trains, and the result names it', async () => {
  const small = await readOnnxModel(smallModel('GlobalMaxPool'));
  const ls = findConv3x3(small).layers;
  const m = new Map(ls.map((l) => [l.id, cross]));
  const s = new Map(ls.map((l) => [l.id, maskWeights(l.weights, kernelCount(l), cross)]));
  const d = { train: smallData(64, 1), heldOut: smallData(32, 2) };
  const r = await finetuneOnnx(small, ls, s, m, d, { ...options, steps: 2, evalEvery: 2 });
  assert.equal(r.engine, 'tfjs');
  assert.deepEqual(r.missingOperators, ['GlobalMaxPool (pool): no backward rule']);
  assertMasked(r.weights, ls);
  await assert.rejects(finetuneOnnx(small, ls, s, m, d, { ...options, steps: 2, engine: 'onnxruntime' }),
    (e: unknown) => e instanceof KpruneError && e.code === 'unsupported' && /no backward rule for GlobalMaxPool/.test(e.message));

  const avg = await readOnnxModel(smallModel('GlobalAveragePool'));
  const la = findConv3x3(avg).layers;
  const ra = await finetuneOnnx(avg, la, new Map(la.map((l) => [l.id, maskWeights(l.weights, kernelCount(l), cross)])), new Map(la.map((l) => [l.id, cross])), d, { ...options, steps: 2, evalEvery: 2 });
  assert.equal(ra.engine, 'onnxruntime');
});

test('an abort rejects with the reason and returns nothing', async () => {
  const controller = new AbortController();
  let steps = 0;
  await assert.rejects(
    finetuneOnnx(model, layers, start, masks, data, { ...options, signal: controller.signal, onStep: () => { if (++steps === 2) controller.abort(new Error('Ctrl-C')); } }),
    /Ctrl-C/,
  );
  assert.equal(steps, 2);
});

test('the masked optimiser matches TF.js\'s Adam, momentum and SGD on the same gradients, and keeps dropped positions at zero', async () => {
  const { tf } = await trainingRuntime();
  const n = 4 * 9;
  const mask = parseMask('010/111/010');
  for (const kind of ['adam', 'momentum', 'sgd'] as const) {
    const w0 = Float32Array.from(randomFloats(n, 7), (v, i) => (maskHas(mask, i % 9) ? v : 0));
    const ours = new Float32Array(w0);
    const opt = new MaskedOptimizer(new Map([['w', ours]]), new Map([['w', mask]]), { kind: kind === 'adam' ? 'adam' : 'sgd', momentum: kind === 'momentum' ? 0.9 : 0 });
    const v = tf.variable(tf.tensor(w0));
    const tfOpt: TF.Optimizer = kind === 'adam' ? tf.train.adam(1e-3) : kind === 'momentum' ? tf.train.momentum(0.01, 0.9) : tf.train.sgd(0.01);
    const bits = tf.tensor(Float32Array.from({ length: n }, (_, i) => (maskHas(mask, i % 9) ? 1 : 0)));
    for (let step = 1; step <= 5; step++) {
      const lr = 0.01 * step;
      const g = randomFloats(n, 100 + step);
      opt.step(new Map([['w', g]]), lr);
      const o = tfOpt as unknown as { setLearningRate?: (lr: number) => void; learningRate: number };
      if (o.setLearningRate) o.setLearningRate(lr);
      else o.learningRate = lr;
      tf.tidy(() => {
        tfOpt.applyGradients({ [v.name]: tf.mul(tf.tensor(g), bits) });
        v.assign(tf.mul(v, bits));
      });
    }
    const theirs = await v.data();
    for (let i = 0; i < n; i++) {
      if (!maskHas(mask, i % 9)) assert.equal(ours[i], 0);
      assert.ok(Math.abs(ours[i] - theirs[i]) <= 1e-6 * Math.max(1, Math.abs(theirs[i])), `${kind} [${i}]: ${ours[i]} vs ${theirs[i]}`);
    }
    tfOpt.dispose();
    v.dispose();
    bits.dispose();
  }
});

test('CLI: --device dml and --device cuda here are refused before any work, one line, exit 2, nothing written', () => {
  for (const device of ['dml', 'cuda']) {
    const out = path.join(dir, `never-${device}.onnx`);
    const r = spawnSync(process.execPath, [CLI, path.join(FIXTURES, 'models', 'vgg-fmnist.onnx'), '--data', path.join(FIXTURES, 'data', 'fashion-mnist', 't10k-images-idx3-ubyte.gz'), '--finetune', '5', '--device', device, '-o', out], { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } });
    assert.equal(r.status, 2, r.stderr);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, new RegExp(`--device ${device}: onnxruntime-node`));
    assert.equal(existsSync(out), false);
  }
});

test('checkpoint choice: a held-out improvement under two standard errors keeps the start; a clear one is taken', async () => {
  const n = 1000;
  const noise = mulberry32(11);
  const jitter = Float64Array.from({ length: n }, () => (noise() - 0.5) * 0.4);
  const evaluation = (shift: number) => {
    const samples = Float64Array.from({ length: n }, (_, i) => 1 + jitter[i] * (shift === 0 ? 0 : 1) - shift);
    const loss = samples.reduce((a, b) => a + b, 0) / n;
    return { score: -loss, loss, figures: {}, samples };
  };
  for (const [shift, chosen] of [[0.001, 0], [0.05, 4]] as const) {
    let steps = 0;
    const trainer = { step: async () => { steps++; return 1; }, snapshot: () => new Map([['w', new Float32Array([steps])]]) };
    const evaluator = { evaluate: async (w: ReadonlyMap<string, Float32Array>) => evaluation(w.get('w')![0] === 0 ? 0 : shift) };
    const r = await runLoop(trainer, evaluator, new Map([['w', new Float32Array([0])]]), { steps: 4, lr: 1e-3, batch: 1, seed: 0, schedule: 'constant', evalEvery: 4, trainCount: 8 });
    assert.equal(r.bestStep, chosen, `shift ${shift}`);
    if (chosen === 0) {
      assert.equal(r.notSignificant?.step, 4);
      assert.ok(r.notSignificant!.improvement.loss < 2 * r.notSignificant!.improvement.stdError);
    } else {
      assert.equal(r.notSignificant, undefined);
      assert.ok(r.improvement!.loss > 2 * r.improvement!.stdError);
    }
  }
});
