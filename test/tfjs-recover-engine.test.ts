/**
 * Recovery engine 2 on TF.js: LayersModels and GraphModels are reconstructed segment by segment
 * from cached activations (two forward passes), and must get the weights the whole-model rerun
 * gives; a model the segments cannot take (a layer shared by two calls, a graph with a node whose
 * two outputs a segment would be fed) reruns and says why.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { loadModel, prune, recover, reshape } from '../src/index.js';
import { toNchw } from '../src/models/tfjs/layerwise.js';
import { graphDataflow } from '../src/formats/tfjs/graph-dataflow.js';
import type { Conv3x3Layer } from '../src/model/conv.js';
import { npyBytes } from './helpers/data-files.js';
import { randomFloats } from './helpers/onnx-builder.js';
import { functionalModel, graphModelFiles, saveLayersModel, seedWeights, sequentialModel, tfjs } from './helpers/tfjs-models.js';
import { tempDir } from './helpers/tmp.js';
import { maxRelDiff } from './helpers/assert-close.js';

const dir = tempDir('kprune-tfjs-engine-');

function npy(name: string, dims: number[], seed: number): string {
  const file = path.join(dir, `${name}.npy`);
  writeFileSync(file, npyBytes('<f4', dims, randomFloats(dims.reduce((a, b) => a * b, 1), seed)));
  return file;
}

async function sameAsRerun(file: string, data: { data: string; calib: number; eval: number; seed: number }): Promise<void> {
  const model = await loadModel(file);
  const reshaped = reshape(model, 'cross');
  const rerun = await recover(model, reshaped, { ...data, propagation: 'rerun' });
  const segments = await recover(model, reshaped, { ...data, propagation: 'segments' });
  assert.equal(rerun.propagation.engine, 'rerun');
  assert.equal(segments.propagation.engine, 'segments', segments.propagation.fallbackReason);
  assert.equal(segments.propagation.passes, 2);
  assert.ok(segments.propagation.maxLiveBytesPerImage! > 0);
  // Every 3x3 layer, and the 1x1 convolutions compensating after depthwise ones.
  assert.equal(segments.layers.length, rerun.layers.length);
  assert.ok(segments.layers.length >= model.layers.length);
  const diff = maxRelDiff(rerun.weights, segments.weights);
  assert.ok(diff < 1e-5, `weights differ by ${diff}`);
  rerun.layers.forEach((l, i) => {
    assert.equal(l.rows, segments.layers[i].rows);
    assert.ok(Math.abs(l.errorAfter - segments.layers[i].errorAfter) < 1e-5, `${l.name}: ${l.errorAfter} vs ${segments.layers[i].errorAfter}`);
  });
  // Reconstruction did something: a layer fits its target better than the masked start.
  assert.ok(segments.layers.some((l) => l.errorAfter < 0.9 * l.errorBefore));
}

test('a TF.js LayersModel is reconstructed segment by segment, with the weights the rerun gives', async () => {
  const tf = await tfjs();
  const m = sequentialModel(tf);
  seedWeights(tf, m, 23);
  // Strided, dilated, depthwise and separable layers, activations inside the layers; NHWC data.
  // Chunks of 32 over 40 images: the last chunk is partial.
  const file = await saveLayersModel(tf, m, path.join(dir, 'seq'), { shardBytes: 512 });
  await sameAsRerun(file, { data: npy('seq', [40, 12, 12, 3], 7), calib: 40, eval: 8, seed: 3 });
});

test('a TF.js GraphModel is reconstructed segment by segment, with the weights the rerun gives', async () => {
  // Fused convolutions with activations (their pre-activation targets come from added nodes),
  // depthwise with explicit pads, float16 weights.
  const file = graphModelFiles(path.join(dir, 'graph'), { quantize: 'float16' });
  await sameAsRerun(file, { data: npy('graph', [48, 8, 8, 3], 11), calib: 48, eval: 8, seed: 3 });
});

test('a TF.js model the segments cannot take reruns and says why', async () => {
  const tf = await tfjs();
  const f = functionalModel(tf);
  seedWeights(tf, f, 29);
  const shared = await loadModel(await saveLayersModel(tf, f, path.join(dir, 'func'), {}));
  const a = await recover(shared, reshape(shared, 'cross'), { data: npy('func', [16, 10, 10, 3], 9), calib: 16, eval: 4, seed: 3 });
  assert.equal(a.propagation.engine, 'rerun');
  assert.match(a.propagation.fallbackReason ?? '', /used by 2 convolutions/);

});

test('NHWC values are handed to the core as NCHW', () => {
  // [1, 2, 2, 3]: value = 100*h + 10*w + c.
  const data = Float32Array.from([0, 1, 2, 10, 11, 12, 100, 101, 102, 110, 111, 112]);
  const a = toNchw({ type: 'float32', dims: [1, 2, 2, 3], data }, 'NHWC');
  assert.deepEqual(a.dims, [1, 3, 2, 2]);
  assert.deepEqual([...a.data], [0, 10, 100, 110, 1, 11, 101, 111, 2, 12, 102, 112]);
  assert.equal(toNchw({ type: 'float32', dims: [1, 2, 2, 3], data }, 'NCHW').data, data);
});

test('a GraphDef is ordered for segments, constants left out, and what TF.js cannot be fed is an obstacle', () => {
  const layer = (node: string) => ({ id: `${node}/w`, uses: [{ node }] }) as unknown as Conv3x3Layer;
  // Listed out of order; the filter reaches the convolutions through an Identity.
  const nodes = [
    { name: 'c2', op: 'Conv2D', input: ['r1', 'w2/read'] },
    { name: 'r1', op: 'Relu', input: ['c1'] },
    { name: 'c1', op: 'Conv2D', input: ['x', 'w1'] },
    { name: 'w2/read', op: 'Identity', input: ['w2'] },
    { name: 'w1', op: 'Const' },
    { name: 'w2', op: 'Const' },
    { name: 'x', op: 'Placeholder' },
    { name: 'out', op: 'Add', input: ['c2', 'x:0'] },
  ];
  const flow = graphDataflow(nodes, [layer('c1'), layer('c2')]);
  assert.ok(!('obstacle' in flow));
  assert.equal(flow.graph.input, 'x:0');
  assert.deepEqual(flow.graph.nodes.map((n) => n.outputs[0]), ['c1:0', 'r1:0', 'c2:0', 'out:0']);
  assert.deepEqual(flow.graph.nodes[0].inputs, ['x:0']);
  assert.deepEqual(flow.cuts, [0, 2]);

  // A Split whose two outputs both cross the cut before c2 and are read after it: TF.js would be
  // fed one of them only.
  const split = [
    { name: 'x', op: 'Placeholder' },
    { name: 'axis', op: 'Const' },
    { name: 'c1', op: 'Conv2D', input: ['x', 'w1'] },
    { name: 's', op: 'Split', input: ['axis', 'c1'], attr: { num_split: { i: '2' } } },
    { name: 'c2', op: 'Conv2D', input: ['s:0', 'w1'] },
    { name: 'sum', op: 'Add', input: ['c2', 's:1'] },
    { name: 'c3', op: 'Conv2D', input: ['sum', 'w1'] },
    { name: 'w1', op: 'Const' },
  ];
  assert.ok(!('obstacle' in graphDataflow(split, [layer('c1'), layer('c2')])), 'nothing after the last cut runs');
  const blocked = graphDataflow(split, [layer('c1'), layer('c2'), layer('c3')]);
  assert.ok('obstacle' in blocked);
  assert.match(blocked.obstacle, /two outputs of node "s"/);

  const loop = graphDataflow([...nodes, { name: 'm', op: 'Merge', input: ['c1', 'c2'] }], [layer('c1')]);
  assert.ok('obstacle' in loop && /control flow \(Merge/.test(loop.obstacle));
  const control = graphDataflow([...nodes, { name: 'after', op: 'Relu', input: ['c2', '^r1'] }], [layer('c1')]);
  assert.ok('obstacle' in control && /control dependency on "r1"/.test(control.obstacle));
});

/** MobileNet-style blocks: depthwise 3x3, ReLU, pointwise 1x1. Input 12x12x3. */
function mobileBlocks(tf: Awaited<ReturnType<typeof tfjs>>) {
  const m = tf.sequential({ name: 'mobile' });
  m.add(tf.layers.conv2d({ inputShape: [12, 12, 3], filters: 8, kernelSize: 3, padding: 'same', activation: 'relu', name: 'stem' }));
  m.add(tf.layers.depthwiseConv2d({ kernelSize: 3, padding: 'same', activation: 'relu', name: 'dw1' }));
  m.add(tf.layers.conv2d({ filters: 12, kernelSize: 1, activation: 'relu', name: 'pw1' }));
  m.add(tf.layers.depthwiseConv2d({ kernelSize: 3, strides: 2, padding: 'same', name: 'dw2' }));
  m.add(tf.layers.activation({ activation: 'relu', name: 'act2' }));
  // A feature map out (not class scores), so the report measures the distance to the original's outputs.
  m.add(tf.layers.conv2d({ filters: 16, kernelSize: 1, name: 'pw2' }));
  return m;
}

test('a TF.js LayersModel compensates downstream: the 1x1 convolutions after reshaped depthwise layers are re-solved and written', async () => {
  const tf = await tfjs();
  const m = mobileBlocks(tf);
  seedWeights(tf, m, 31);
  const file = await saveLayersModel(tf, m, path.join(dir, 'mobile'), { shardBytes: 1024 });
  const data = { data: npy('mobile', [160, 12, 12, 3], 13), calib: 128, eval: 32, seed: 3, occlusion: 0 };
  const model = await loadModel(file);
  const pointwise = (await import('../src/formats/tfjs/read.js')).readTfjsModel;
  const source = await pointwise(file);
  const pw = source.weights.filter((w) => w.shape.length === 4 && w.shape[0] === 1).map((w) => w.name).sort();
  assert.equal(pw.length, 2);

  // Both engines give the same compensated weights.
  const reshaped = reshape(model, 'cross');
  const rerun = await recover(model, reshaped, { ...data, propagation: 'rerun' });
  const segments = await recover(model, reshaped, { ...data, propagation: 'segments' });
  assert.equal(segments.propagation.engine, 'segments', segments.propagation.fallbackReason);
  assert.deepEqual(segments.layers.map((l) => l.layer).filter((id) => pw.includes(id)).sort(), pw, 'the pointwise layers are re-solved');
  assert.ok(maxRelDiff(rerun.weights, segments.weights) < 1e-5);
  for (const l of segments.layers) assert.ok(l.errorAfter <= l.errorBefore * (1 + 1e-6), `${l.name}: ${l.errorAfter} <= ${l.errorBefore}`);

  const out = (name: string) => path.join(dir, name, 'model.json');
  const none = await prune(file, { shape: 'cross', output: out('none'), latencyRuns: 0, data: { ...data, compensate: 'none' } });
  const auto = await prune(file, { shape: 'cross', output: out('auto'), latencyRuns: 0, data });
  assert.equal(none.accuracy.status, 'measured');
  assert.equal(auto.accuracy.status, 'measured');
  if (none.accuracy.status !== 'measured' || auto.accuracy.status !== 'measured') return;
  // The written file carries the re-solved 1x1 kernels, and its outputs are closer to the original's.
  const written = await pointwise(out('auto'));
  const { weightFloats } = await import('../src/formats/tfjs/read.js');
  for (const id of pw) {
    const a = weightFloats(written, written.byName.get(id)!)!;
    const b = segments.weights.get(id)!;
    assert.ok(a.some((v, i) => v !== weightFloats(source, source.byName.get(id)!)![i]), `${id} changed`);
    assert.ok(maxRelDiff(new Map([[id, a]]), new Map([[id, b]])) < 1e-6, `${id} is written as recovered`);
  }
  // Fine-tuning starts from the compensated model and trains the 3x3 kernels only: the written 1x1
  // kernels stay the re-solved ones.
  const tuned = await prune(file, { shape: 'cross', output: out('tuned'), latencyRuns: 0, data: { ...data, calib: 64 }, finetune: { steps: 4, batch: 16, samples: 32 } });
  assert.ok(tuned.finetune, 'fine-tuned');
  const tunedFile = await pointwise(out('tuned'));
  const compensated = await recover(model, reshaped, { ...data, calib: 64 });
  for (const id of pw) assert.ok(maxRelDiff(new Map([[id, weightFloats(tunedFile, tunedFile.byName.get(id)!)!]]), new Map([[id, compensated.weights.get(id)!]])) < 1e-6, `${id} stays compensated`);
  assert.ok(auto.accuracy.written.clean.mse! < 0.9 * none.accuracy.written.clean.mse!, `MSE to the original: compensated ${auto.accuracy.written.clean.mse} vs not ${none.accuracy.written.clean.mse}`);
});

test('a TF.js LayersModel compensates a Dense head on pooled features; Dense layers it cannot re-solve are left alone', async () => {
  const tf = await tfjs();
  const m = tf.sequential({ name: 'headed' });
  m.add(tf.layers.conv2d({ inputShape: [10, 10, 3], filters: 8, kernelSize: 3, padding: 'same', activation: 'relu', name: 'stem' }));
  m.add(tf.layers.depthwiseConv2d({ kernelSize: 3, padding: 'same', activation: 'relu', name: 'dw' }));
  // On the 4-D map (the last axis): not a 2-D input, so not re-solved.
  m.add(tf.layers.dense({ units: 8, name: 'per_pixel' }));
  m.add(tf.layers.globalAveragePooling2d({ name: 'gap' }));
  m.add(tf.layers.dropout({ rate: 0.1, name: 'drop' }));
  // With an activation: its output is not its pre-activation value, so not re-solved.
  m.add(tf.layers.dense({ units: 8, activation: 'relu', name: 'hidden' }));
  m.add(tf.layers.dense({ units: 6, name: 'head' }));
  seedWeights(tf, m, 41);
  const file = await saveLayersModel(tf, m, path.join(dir, 'headed'));
  const data = { data: npy('headed', [160, 10, 10, 3], 17), calib: 128, eval: 32, seed: 5, occlusion: 0 };
  const model = await loadModel(file);
  const dense = (await import('../src/formats/tfjs/read.js')).readTfjsModel;
  const source = await dense(file);
  const head = source.weights.find((w) => w.name.startsWith('head/') && w.shape.length === 2)!.name;
  const linear = model.linearLayers!(new Set(model.layers.map((l) => l.id)));
  assert.deepEqual(linear.map((l) => [l.id, l.linear.kind, l.inChannelsPerGroup, l.outChannels]), [[head, 'gemm', 8, 6]]);

  const reshaped = reshape(model, 'cross');
  const rerun = await recover(model, reshaped, { ...data, propagation: 'rerun', compensate: 'linear' });
  const segments = await recover(model, reshaped, { ...data, propagation: 'segments', compensate: 'linear' });
  assert.equal(segments.propagation.engine, 'segments', segments.propagation.fallbackReason);
  const solved = segments.layers.find((l) => l.layer === head);
  assert.ok(solved && solved.role === 'compensating', 'the head is re-solved');
  assert.ok(solved.errorAfter < solved.errorBefore, `head error ${solved.errorBefore} -> ${solved.errorAfter}`);
  assert.ok(maxRelDiff(rerun.weights, segments.weights) < 1e-5, 'segments give the rerun\'s weights');

  // The compensated head brings the outputs closer to the original's than the uncompensated one,
  // run through the same runner that evaluates and writes (TF.js, the re-solved kernel in place).
  const none = await recover(model, reshaped, { ...data, compensate: 'none' });
  const x = randomFloats(32 * 10 * 10 * 3, 99);
  const outputs = async (weights: ReadonlyMap<string, Float32Array>) => {
    const runner = await model.createRunner(weights, []);
    try {
      return [...(await runner.run(x, [32, 10, 10, 3])).values()][0].data;
    } finally {
      await runner.release();
    }
  };
  const original = await outputs(new Map());
  const mse = (y: Float32Array) => y.reduce((a, v, i) => a + (v - original[i]) ** 2, 0) / y.length;
  const [compensated, uncompensated] = [mse(await outputs(segments.weights)), mse(await outputs(none.weights))];
  assert.ok(compensated < 0.9 * uncompensated, `MSE to the original: compensated ${compensated} vs not ${uncompensated}`);

  const out = path.join(dir, 'head-linear', 'model.json');
  await prune(file, { shape: 'cross', output: out, latencyRuns: 0, data: { ...data, compensate: 'linear' } });
  const { weightFloats } = await import('../src/formats/tfjs/read.js');
  const written = await dense(out);
  assert.ok(maxRelDiff(new Map([[head, weightFloats(written, written.byName.get(head)!)!]]), new Map([[head, segments.weights.get(head)!]])) < 1e-6, 'the head is written as recovered');
});
