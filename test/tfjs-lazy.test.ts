/**
 * TF.js weights are read on demand: a LayersModel saved in 40 small shards, with tensors crossing
 * shard ends, is loaded without holding its shards (each tensor read from its shards when asked
 * for, nothing kept), pruned to a cross and loaded back in TF.js with exactly the masked weights,
 * written byte for byte by `--shape full`, and decomposed (re-sharded) into a model that computes
 * what the masked one does. String tensors are sized from the shards. The writer asks the weights
 * map for each layer once.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type * as TF from '../src/runtime/tfjs/tf.js';
import { prune } from '../src/pipeline/prune.js';
import { KpruneError } from '../src/errors.js';
import { loadModel } from '../src/models/index.js';
import { readTfjsModel, readWeightBytes, weightFloats } from '../src/formats/tfjs/read.js';
import { DerivedMap } from '../src/util/derived-map.js';
import { maskWeights } from '../src/core/reshape.js';
import { kernelCount } from '../src/model/conv.js';
import { maskHas, parseMask } from '../src/core/lattice.js';
import { fileHandler } from '../src/models/tfjs/io.js';
import { Tf } from '../src/runtime/tfjs/backend.js';
import { saveLayersModel, seedWeights, tfjs, writeModelFiles } from './helpers/tfjs-models.js';
import { tempDir } from './helpers/tmp.js';
import { randomFloats } from './helpers/onnx-builder.js';
import { assertClose } from './helpers/assert-close.js';

const dir = tempDir('kprune-tfjs-lazy-');
const SHARDS = 40;
const INPUT: [number, number, number] = [16, 16, 8];
const cross = parseMask('010/111/010');

/** Conv2D, strided Conv2D, DepthwiseConv2D, dilated Conv2D, SeparableConv2D, Dense: ~130 KB of weights. */
function biggerModel(tf: Tf): TF.LayersModel {
  const m = tf.sequential({ name: 'lazy' });
  m.add(tf.layers.conv2d({ inputShape: INPUT, filters: 24, kernelSize: 3, padding: 'same', activation: 'relu', name: 'c1' }));
  m.add(tf.layers.conv2d({ filters: 32, kernelSize: 3, strides: 2, padding: 'valid', name: 'c2' }));
  m.add(tf.layers.depthwiseConv2d({ kernelSize: 3, depthMultiplier: 2, padding: 'same', name: 'dw' }));
  m.add(tf.layers.conv2d({ filters: 32, kernelSize: 3, dilationRate: 2, padding: 'same', activation: 'relu', name: 'c3' }));
  m.add(tf.layers.separableConv2d({ filters: 16, kernelSize: 3, padding: 'same', name: 'sep' }));
  m.add(tf.layers.flatten({ name: 'flat' }));
  m.add(tf.layers.dense({ units: 5, name: 'head' }));
  return m;
}

let made: { file: string; original: TF.LayersModel } | undefined;

/** The model in memory and saved as float32 in SHARDS shards of an odd size (tensors cross shard ends). */
async function manyShards(): Promise<{ file: string; original: TF.LayersModel }> {
  if (made) return made;
  const tf = await tfjs();
  const original = biggerModel(tf);
  seedWeights(tf, original, 71);
  const total = original.weights.reduce((a, w) => a + 4 * w.shape.reduce((x, y) => x! * y!, 1)!, 0);
  const shardBytes = Math.ceil(total / SHARDS) | 1;
  made = { file: await saveLayersModel(tf, original, path.join(dir, 'in'), { shardBytes }), original };
  return made;
}

const is3x3 = (shape: number[]) => shape.length === 4 && shape[0] === 3 && shape[1] === 3;

/** Element i of a TF kernel [3][3][a][b] sits at 3x3 position floor(i / (a * b)). */
function maskedTf(values: Float32Array, shape: number[]): Float32Array {
  return values.map((v, i) => (maskHas(cross, Math.floor(i / (shape[2] * shape[3]))) ? v : 0));
}

async function predict(model: TF.LayersModel, seed: number): Promise<Float32Array> {
  const tf = await tfjs();
  const x = tf.tensor(randomFloats(2 * INPUT[0] * INPUT[1] * INPUT[2], seed), [2, ...INPUT]);
  const y = model.predict(x) as TF.Tensor;
  const v = await y.data() as Float32Array;
  x.dispose();
  y.dispose();
  return v;
}

test('40 shards: shard sizes only at load, each tensor read across shard ends when asked for, nothing kept', async () => {
  const { file } = await manyShards();
  const model = await readTfjsModel(file);
  assert.equal(model.groups.length, 1);
  const g = model.groups[0];
  assert.equal(g.shards.length, SHARDS);
  assert.ok(!('data' in g), 'no group holds its bytes');
  const stream = Buffer.concat(g.shards.map((s) => readFileSync(s.file)));
  assert.equal(g.bytes, stream.length);
  let crossing = 0;
  for (const w of model.weights) {
    const first = g.shards.findIndex((s) => s.offset + s.bytes > w.offset);
    const last = g.shards.findIndex((s) => s.offset + s.bytes >= w.offset + w.byteLength);
    if (last > first) crossing++;
    assert.ok(Buffer.from(readWeightBytes(model, w)).equals(stream.subarray(w.offset, w.offset + w.byteLength)), w.name);
  }
  assert.ok(crossing >= 5, `${crossing} tensors cross a shard end`);

  // A layer's weights are read at each access: a shard changed after loading shows at once.
  const copy = path.join(dir, 'changed');
  cpSync(path.dirname(file), copy, { recursive: true });
  const loaded = await loadModel(path.join(copy, 'model.json'));
  const c3 = loaded.layers.find((l) => l.id === 'c3/kernel')!;
  const before = c3.weights;
  assert.notEqual(c3.weights, before, 'a new array at each access');
  assert.deepEqual(c3.weights, before);
  const entry = model.byName.get('c3/kernel')!;
  const shard = g.shards.find((s) => s.offset <= entry.offset + 40 && entry.offset + 40 < s.offset + s.bytes)!;
  const bytes = readFileSync(path.join(copy, shard.relative));
  bytes.fill(0, entry.offset + 40 - shard.offset, Math.min(bytes.length, entry.offset + 400 - shard.offset));
  writeFileSync(path.join(copy, shard.relative), bytes);
  assert.notDeepEqual(c3.weights, before, 'the changed shard is read again');
});

test('a string tensor\'s length prefixes are read across shard ends to place the tensors after it', async () => {
  const strings = ['a', 'hello world', '', 'x'.repeat(40), 'shard'];
  const text = Buffer.concat(strings.flatMap((t) => {
    const len = Buffer.alloc(4);
    len.writeUInt32LE(Buffer.byteLength(t));
    return [len, Buffer.from(t)];
  }));
  const floats = Float32Array.from({ length: 10 }, (_, i) => i / 4);
  const file = writeModelFiles(path.join(dir, 'strings'), { node: [] }, 'graph-model', [
    { spec: { name: 'vocab', shape: [strings.length], dtype: 'string' }, data: text },
    { spec: { name: 'w', shape: [10], dtype: 'float32' }, data: new Uint8Array(floats.buffer) },
  ], { shardBytes: 7 });
  const model = await readTfjsModel(file);
  assert.ok(model.groups[0].shards.length > 10);
  const vocab = model.byName.get('vocab')!;
  assert.equal(vocab.byteLength, text.length);
  assert.ok(Buffer.from(readWeightBytes(model, vocab)).equals(text));
  assert.deepEqual(weightFloats(model, model.byName.get('w')!), floats);
});

test('a shard linked from outside the folder is refused at load; a link inside it is read through', async () => {
  const { file } = await manyShards();
  const outside = path.join(dir, 'outside');
  cpSync(path.dirname(file), outside, { recursive: true });
  const linked = path.join(dir, 'linked');
  cpSync(path.dirname(file), linked, { recursive: true });
  const shard = 'group1-shard7of40.bin';
  rmSync(path.join(linked, shard));
  symlinkSync(path.join(outside, shard), path.join(linked, shard));
  await assert.rejects(readTfjsModel(path.join(linked, 'model.json')), (e: unknown) => e instanceof KpruneError && e.code === 'unsafe-path'
    && /weight shard "group1-shard7of40\.bin" is a link to a file outside the model's folder/.test(e.message));
  rmSync(path.join(linked, shard));
  renameSync(path.join(linked, 'group1-shard8of40.bin'), path.join(linked, 'moved.bin'));
  symlinkSync('moved.bin', path.join(linked, 'group1-shard8of40.bin'));
  cpSync(path.join(outside, shard), path.join(linked, shard));
  const model = await readTfjsModel(path.join(linked, 'model.json'));
  const original = await readTfjsModel(file);
  for (const w of original.weights) assert.deepEqual(readWeightBytes(model, model.byName.get(w.name)!), readWeightBytes(original, w), w.name);
});

test('40 shards, --shape cross: loads back in TF.js with exactly the masked weights, same shards', async () => {
  const tf = await tfjs();
  const { file, original } = await manyShards();
  const out = path.join(dir, 'cross', 'model.json');
  const report = await prune(file, { layout: 'masked', shape: 'cross', output: out, latencyRuns: 0 });
  assert.match(report.output.verified, /loaded and ran once in TF\.js/);
  assert.equal(report.plan.entries.length, 5);
  const before = await readTfjsModel(file);
  const after = await readTfjsModel(out);
  assert.deepEqual(after.groups[0].shards.map((s) => [s.relative, s.bytes]), before.groups[0].shards.map((s) => [s.relative, s.bytes]));
  assert.equal(after.text, before.text, 'model.json byte-identical (float32: no range to change)');

  const loaded = await tf.loadLayersModel(fileHandler(out));
  let pruned = 0;
  for (const layer of original.layers) {
    const want = layer.getWeights();
    const got = loaded.getLayer(layer.name).getWeights();
    assert.equal(got.length, want.length, layer.name);
    want.forEach((w, i) => {
      const shape = w.shape as number[];
      const values = w.dataSync() as Float32Array;
      if (is3x3(shape)) pruned++;
      assert.deepEqual(got[i].dataSync(), is3x3(shape) ? maskedTf(values, shape) : values, `${layer.name} weight ${i}`);
    });
  }
  assert.equal(pruned, 5);
  // And it computes what the original does with its kernels masked.
  const masked = biggerModel(tf);
  masked.setWeights(original.getWeights().map((w) => (is3x3(w.shape as number[]) ? tf.tensor(maskedTf(w.dataSync() as Float32Array, w.shape as number[]), w.shape) : w.clone())));
  assertClose(await predict(loaded, 5), await predict(masked, 5), 1e-5, 'prediction');
  loaded.dispose();
  masked.dispose();
});

test('40 shards, --shape full: every shard and model.json byte-identical', async () => {
  const { file } = await manyShards();
  const out = path.join(dir, 'full', 'model.json');
  await prune(file, { layout: 'masked', shape: 'full', output: out, latencyRuns: 0 });
  const before = await readTfjsModel(file);
  for (const f of [file, ...before.groups[0].shards.map((s) => s.file)]) {
    assert.ok(readFileSync(path.join(path.dirname(out), path.basename(f))).equals(readFileSync(f)), path.basename(f));
  }
});

test('40 shards, uint8, decomposed: re-sharded, computes what the masked model computes', async () => {
  const tf = await tfjs();
  const { original } = await manyShards();
  const input = await saveLayersModel(tf, original, path.join(dir, 'uint8'), { shardBytes: 811, quantize: 'uint8' });
  const maskedOut = path.join(dir, 'uint8.masked', 'model.json');
  const decOut = path.join(dir, 'uint8.dec', 'model.json');
  await prune(input, { layout: 'masked', shape: 'cross', output: maskedOut, latencyRuns: 0 });
  const report = await prune(input, { shape: 'cross', output: decOut, layout: 'decomposed', latencyRuns: 0 });
  assert.ok(report.layers.every((l) => l.layout === 'decomposed'), JSON.stringify(report.layers.map((l) => [l.id, l.layoutNote])));
  const before = await readTfjsModel(input);
  const dec = await readTfjsModel(decOut);
  const shardsBefore = before.groups[0].shards.length;
  const shardsAfter = dec.groups[0].shards;
  assert.ok(shardsAfter.length < shardsBefore, `${shardsAfter.length} shards, was ${shardsBefore}`);
  assert.deepEqual(shardsAfter.map((s) => s.relative), shardsAfter.map((_, k) => `group1-shard${k + 1}of${shardsAfter.length}.bin`));
  assert.ok(shardsAfter.slice(0, -1).every((s) => s.bytes === 811));
  assert.ok(dec.weights.every((w) => w.storage.kind === 'affine' && w.storage.dtype === 'uint8'));
  const a = await tf.loadLayersModel(fileHandler(decOut));
  const b = await tf.loadLayersModel(fileHandler(maskedOut));
  assertClose(await predict(a, 9), await predict(b, 9), 1e-5, 'prediction');
  // Both near the input with its kernels masked (re-quantizing moves each value by half a step).
  const reference = await tf.loadLayersModel(fileHandler(input));
  reference.setWeights(reference.getWeights().map((w) => (is3x3(w.shape as number[]) ? tf.tensor(maskedTf(w.dataSync() as Float32Array, w.shape as number[]), w.shape) : w.clone())));
  assertClose(await predict(b, 9), await predict(reference, 9), 0.05, 'prediction near the masked input');
  a.dispose();
  b.dispose();
  reference.dispose();
});

test('the writer asks the weights map for each layer once (twice when a layout check reads it first)', async () => {
  const { file } = await manyShards();
  const model = await loadModel(file);
  const calls = new Map<string, number>();
  const weights = DerivedMap.over(model.layers.map((l) => l.id), (id) => {
    const layer = model.layers.find((l) => l.id === id)!;
    calls.set(id, (calls.get(id) ?? 0) + 1);
    return maskWeights(layer.weights, kernelCount(layer), cross);
  });
  await model.write(weights, path.join(dir, 'counted', 'model.json'));
  assert.deepEqual([...calls.values()], model.layers.map(() => 1));
  calls.clear();
  const layouts = new Map(model.layers.map((l) => [l.id, { layout: 'decomposed' as const, mask: cross }]));
  const written = await model.write(weights, path.join(dir, 'counted-dec', 'model.json'), layouts);
  assert.ok(written.layouts.every((o) => o.applied === 'decomposed'));
  assert.deepEqual([...calls.values()], model.layers.map(() => 2));
});
