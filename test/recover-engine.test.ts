/**
 * Recovery engine 2: propagating segment by segment from cached activations must give the weights
 * the whole-model rerun gives (the engine before it), on every bundled model it applies to; the
 * segment planner must keep exactly the values a later node reads; the cache must give back what
 * it was given, from memory or from disk; the onnxruntime solve must agree with Cholesky.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { loadModel, recover, reshape } from '../src/index.js';
import { planSegments } from '../src/core/recover/propagation.js';
import { dataAwareLosses, openData } from '../src/pipeline/recover.js';
import type { LoadedModel } from '../src/models/index.js';
import type { DataOptions } from '../src/pipeline/recover.js';
import { LayerStats, RowSampler, jsGramEngine } from '../src/core/recover/layer-stats.js';
import { SpillStore } from '../src/core/recover/spill-store.js';
import { createOrtGramEngine } from '../src/runtime/ort/gram-engine.js';
import { FIXTURES, tempDir } from './helpers/tmp.js';
import { maxRelDiff } from './helpers/assert-close.js';
import { randomFloats } from './helpers/onnx-builder.js';
import { Conv3x3Layer } from '../src/model/conv.js';

const SUBSET = path.join(FIXTURES, 'data', 'fashion-mnist', 't10k-images-idx3-ubyte.gz');
const data = { data: SUBSET, calib: 64, eval: 10, seed: 5 };

// Also weights held in Constant nodes, and in an external data file.
for (const name of ['resnet-fmnist', 'vgg-fmnist', 'dwsep-fmnist', 'vgg-fmnist-constants', 'vgg-fmnist-external/model']) {
  test(`segments give the weights the whole-model rerun gives: ${name}`, async () => {
    const model = await loadModel(path.join(FIXTURES, 'models', `${name}.onnx`));
    const reshaped = reshape(model, 'cross');
    const rerun = await recover(model, reshaped, { ...data, propagation: 'rerun' });
    const segments = await recover(model, reshaped, { ...data, propagation: 'segments' });
    assert.equal(rerun.propagation.engine, 'rerun');
    assert.equal(segments.propagation.engine, 'segments');
    assert.equal(segments.propagation.passes, 2);
    assert.ok(maxRelDiff(rerun.weights, segments.weights) < 1e-5, `weights differ by ${maxRelDiff(rerun.weights, segments.weights)}`);
    rerun.layers.forEach((l, i) => {
      assert.ok(Math.abs(l.errorAfter - segments.layers[i].errorAfter) < 1e-6, `${l.name}: ${l.errorAfter} vs ${segments.layers[i].errorAfter}`);
      assert.equal(l.rows, segments.layers[i].rows);
    });
  });
}

async function scores(model: LoadedModel, options: DataOptions): Promise<Map<string, number[]>> {
  const ctx = await openData(model, options);
  try {
    return await dataAwareLosses(ctx, model);
  } finally {
    await ctx.runners.release();
    await ctx.engine.release();
    await ctx.runner.release();
  }
}

// `--shape auto` scores every candidate shape on the original model: from segments it must get
// the scores the per-layer whole-model runs give.
for (const name of ['resnet-fmnist', 'dwsep-fmnist']) {
  test(`data-aware shape scores from segments equal the per-layer runs: ${name}`, async () => {
    const model = await loadModel(path.join(FIXTURES, 'models', `${name}.onnx`));
    const rerun = await scores(model, { ...data, propagation: 'rerun' });
    const segments = await scores(model, { ...data, propagation: 'segments' });
    assert.deepEqual([...segments.keys()].sort(), [...rerun.keys()].sort());
    assert.equal(rerun.size, model.layers.length);
    for (const [id, a] of rerun) {
      const b = segments.get(id)!;
      assert.equal(b.length, a.length);
      a.forEach((x, i) => assert.ok(Math.abs(x - b[i]) <= 1e-5 * Math.max(1e-3, Math.abs(x)), `${id} candidate ${i}: ${x} vs ${b[i]}`));
      // A cross keeps fewer positions than qh: it cannot leave a smaller error.
      assert.ok(a.some((x) => x > 0), `${id}: some candidate loses something`);
    }
  });
}

test('a cache budget of nothing spills every chunk to disk and changes nothing', async () => {
  const model = await loadModel(path.join(FIXTURES, 'models', 'resnet-fmnist.onnx'));
  const reshaped = reshape(model, 'cross');
  const inMemory = await recover(model, reshaped, { ...data, calib: 40 });
  const spilled = await recover(model, reshaped, { ...data, calib: 40, recoverMemory: 0 });
  assert.equal(inMemory.propagation.spilledBytes, 0);
  assert.ok(spilled.propagation.spilledBytes! > 0);
  assert.equal(spilled.propagation.peakCacheBytes, 0);
  assert.deepEqual([...spilled.weights.keys()], [...inMemory.weights.keys()]);
  for (const [id, w] of inMemory.weights) assert.deepEqual(spilled.weights.get(id), w);
});

test('a model whose weight feeds two convolutions falls back to the rerun and says why', async () => {
  const model = await loadModel(path.join(FIXTURES, 'models', 'misc-fmnist.onnx'));
  const r = await recover(model, reshape(model, 'cross'), { ...data, calib: 16 });
  assert.equal(r.propagation.engine, 'rerun');
  assert.match(r.propagation.fallbackReason ?? '', /used by 2 convolutions/);
});

test('segments keep exactly the values that a node at or after the cut reads', () => {
  // x -> a(conv0) -> r -> b(conv1) ; add(b, r) -> c(conv2) -> d ; e = relu(x) read by node 5
  const graph = {
    input: 'x',
    nodes: [
      { inputs: ['x'], outputs: ['a'] }, // 0: conv0
      { inputs: ['a'], outputs: ['r'] }, // 1: relu
      { inputs: ['r'], outputs: ['b'] }, // 2: conv1
      { inputs: ['b', 'r'], outputs: ['s'] }, // 3: add
      { inputs: ['s'], outputs: ['c'] }, // 4: conv2
      { inputs: ['c', 'x'], outputs: ['d'] }, // 5: after the last cut: never run
    ],
  };
  const segs = planSegments(graph, [0, 2, 4]);
  assert.deepEqual(segs.map((s) => [s.from, s.to]), [[0, 0], [0, 2], [2, 4]]);
  assert.deepEqual(segs[0].live, ['x']);
  assert.deepEqual(segs[1].reads, ['x']);
  assert.deepEqual(segs[1].live.sort(), ['r']);
  assert.deepEqual(segs[2].reads.sort(), ['r']);
  assert.deepEqual(segs[2].writes, ['s']);
  assert.deepEqual(segs[2].live, ['s']);
  assert.throws(() => planSegments({ input: 'x', nodes: [{ inputs: ['y'], outputs: ['z'] }, { inputs: ['x'], outputs: ['y'] }] }, [1]), /topological/);
});

test('the spill store gives back every value, typed, and leaves no file behind', async () => {
  const dir = tempDir();
  const store = new SpillStore(100, dir);
  const values = (k: number) => new Map([
    ['f', { type: 'float32', dims: [2, 3], data: randomFloats(6, k) }],
    ['i', { type: 'int64', dims: [2], data: BigInt64Array.from([BigInt(k), -7n]) }],
    ['h', { type: 'float16', dims: [1], data: Uint16Array.from([15360]) }],
  ]);
  for (let k = 0; k < 20; k++) await store.put(k, values(k));
  assert.ok(store.stats().spilledBytes > 0);
  assert.ok(store.stats().peakBytes <= 100);
  for (let k = 19; k >= 0; k--) assert.deepEqual(await store.take(k), values(k));
  await store.release();
  assert.deepEqual(readdirSync(dir), []);
  await assert.rejects(() => store.take(0), /not in the cache/);
  assert.ok(existsSync(dir));
});

test('the onnxruntime solve and product agree with Cholesky in JavaScript', async () => {
  const engine = await createOrtGramEngine();
  try {
    const layer: Conv3x3Layer = {
      id: 'w', name: 'w', index: 0, outChannels: 6, inChannelsPerGroup: 16, group: 1, kind: 'standard', weights: randomFloats(6 * 16 * 9, 1),
      uses: [{ node: 'c', input: 'x', output: 'y', group: 1, strides: [1, 1], dilations: [1, 1], pads: [1, 1, 1, 1], autoPad: 'NOTSET' }],
    };
    const dims = [4, 16, 6, 6];
    const x = { dims, data: randomFloats(4 * 16 * 36, 2) };
    const y = { dims: [4, 6, 6, 6], data: randomFloats(4 * 6 * 36, 3) };
    const positions = [1, 3, 4, 5, 7];
    const results = [];
    for (const e of [engine, jsGramEngine]) {
      const stats = new LayerStats(layer, positions, e);
      await stats.accumulate(x, y, layer.uses[0], new RowSampler(100, 1));
      await stats.flush();
      const w = await stats.solve(layer.weights, 1e-3);
      results.push({ w, err: await stats.relativeError(w), n: stats.groups[0].n });
    }
    assert.ok(results[0].n >= 64, 'the system is large enough to reach the engine');
    for (let i = 0; i < results[0].w.length; i++) assert.ok(Math.abs(results[0].w[i] - results[1].w[i]) < 1e-5, `${i}`);
    assert.ok(Math.abs(results[0].err - results[1].err) < 1e-9);
  } finally {
    await engine.release();
  }
});
