/**
 * Every bundled fixture through prune: the output loads and runs in onnxruntime, its 3x3 weights are
 * the input's times the mask, bit for bit, and everything else is unchanged.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import onnxProto from 'onnx-proto';
import * as ort from 'onnxruntime-node';
import { prune, maskHas, parseMask } from '../src/index.js';
import { readOnnxModel, tensorFloats } from '../src/formats/onnx/read.js';
import { findConv3x3 } from '../src/formats/onnx/convs.js';
import { FIXTURES, tempDir } from './helpers/tmp.js';

const { onnx } = onnxProto;
const MODELS = ['vgg-fmnist.onnx', 'resnet-fmnist.onnx', 'dwsep-fmnist.onnx', 'misc-fmnist.onnx', 'vgg-fmnist-constants.onnx', 'vgg-fmnist-external/model.onnx'];
const dir = tempDir();

async function run(file: string, x: Float32Array): Promise<Float32Array> {
  const s = await ort.InferenceSession.create(file);
  const out = await s.run({ [s.inputNames[0]]: new ort.Tensor('float32', x, [2, 1, 28, 28]) });
  await s.release();
  return out[s.outputNames[0]].data as Float32Array;
}

const x = Float32Array.from({ length: 2 * 28 * 28 }, (_, i) => ((i * 7919) % 256) / 255);

for (const name of MODELS) {
  test(`${name}: cross output is the input with exactly the masked positions zeroed`, async () => {
    const input = path.join(FIXTURES, 'models', name);
    const out = path.join(dir, name.replace(/\//g, '_').replace('.onnx', '.cross.onnx'));
    const report = await prune(input, { layout: 'masked', shape: 'cross', output: out });
    const before = await readOnnxModel(input);
    const after = await readOnnxModel(out);
    const layers = findConv3x3(before).layers;
    assert.ok(layers.length > 0);
    const cross = parseMask('010/111/010');
    const pruned = new Set(layers.map((l) => l.id));
    for (const [tname, ref] of before.constants) {
      const a = after.constants.get(tname);
      assert.ok(a, `tensor ${tname} kept`);
      assert.deepEqual(a.dims, ref.dims);
      assert.equal(a.dataType, ref.dataType);
      if (ref.dataType !== 1) continue;
      const va = tensorFloats(after, a);
      const vb = tensorFloats(before, ref);
      if (!pruned.has(tname)) {
        assert.deepEqual(va, vb, `${tname} unchanged`);
        continue;
      }
      for (let i = 0; i < vb.length; i++) {
        assert.equal(va[i], maskHas(cross, i % 9) ? vb[i] : 0, `${tname}[${i}]`);
      }
    }
    // Everything but the weights: decode both, put the original weights back, compare.
    const strip = (m: typeof before) => {
      const p = onnx.ModelProto.decode(m.bytes);
      for (const t of p.graph!.initializer ?? []) { t.rawData = new Uint8Array(0); t.floatData = []; t.externalData = (t.externalData ?? []).filter((e) => e.key !== 'location'); }
      for (const n of p.graph!.node ?? []) for (const at of n.attribute ?? []) if (at.t) { at.t.rawData = new Uint8Array(0); at.t.floatData = []; }
      return onnx.ModelProto.toObject(p, { longs: String, bytes: String });
    };
    assert.deepEqual(strip(after), strip(before));
    assert.equal(report.plan.entries.length, layers.length);
    assert.match(report.output.verified, /ran once in onnxruntime-node/);
    const y = await run(out, x);
    assert.equal(y.length, 20);
    assert.ok(y.every(Number.isFinite));
  });
}

test('--shape full writes every fixture back identical: the same bytes, or for external data the same message but for the data file name', async () => {
  for (const name of MODELS) {
    const input = path.join(FIXTURES, 'models', name);
    const out = path.join(dir, name.replace(/\//g, '_').replace('.onnx', '.full.onnx'));
    await prune(input, { layout: 'masked', shape: 'full', output: out, latencyRuns: 0 });
    if (!name.includes('external')) {
      assert.ok(Buffer.from(readFileSync(out)).equals(readFileSync(input)), name);
      continue;
    }
    const decoded = (file: string) => {
      const p = onnx.ModelProto.decode(readFileSync(file));
      for (const t of p.graph!.initializer ?? []) for (const e of t.externalData ?? []) if (e.key === 'location') e.value = 'LOCATION';
      return onnx.ModelProto.toObject(p, { longs: String, bytes: String, defaults: false });
    };
    assert.deepEqual(decoded(out), decoded(input), name);
    assert.ok(readFileSync(out.replace('.onnx', '.weights.bin')).equals(readFileSync(path.join(path.dirname(input), 'weights.bin'))));
  }
});

test('external data goes to a new file beside the output; the input and its data stay untouched', async () => {
  const input = path.join(FIXTURES, 'models', 'vgg-fmnist-external', 'model.onnx');
  const dataBefore = readFileSync(path.join(FIXTURES, 'models', 'vgg-fmnist-external', 'weights.bin'));
  const modelBefore = readFileSync(input);
  const out = path.join(dir, 'ext.onnx');
  const report = await prune(input, { layout: 'masked', shape: 'qh', output: out });
  assert.deepEqual(report.output.files.map((f) => path.basename(f)), ['ext.weights.bin', 'ext.onnx']);
  const after = await readOnnxModel(out);
  assert.deepEqual([...after.externalFiles.keys()], ['ext.weights.bin']);
  assert.ok(readFileSync(input).equals(modelBefore));
  assert.ok(readFileSync(path.join(FIXTURES, 'models', 'vgg-fmnist-external', 'weights.bin')).equals(dataBefore));
  assert.equal(readFileSync(path.join(dir, 'ext.weights.bin')).length, dataBefore.length);
});

test('a weight shared by two convolutions is pruned once, with both uses listed', async () => {
  const input = path.join(FIXTURES, 'models', 'misc-fmnist.onnx');
  const report = await prune(input, { layout: 'masked', shape: 'qh', output: path.join(dir, 'misc.qh.onnx') });
  const shared = report.layers.filter((l) => l.nodes.length > 1);
  assert.equal(shared.length, 1);
  assert.equal(new Set(report.plan.entries.map((e) => e.layer)).size, report.plan.entries.length);
  // MACs of the shared weight count both uses.
  const m = report.before.macs;
  assert.equal(m.status, 'measured');
  if (m.status === 'measured') {
    const uses = m.nodes.filter((n) => n.weight === shared[0].id);
    assert.equal(uses.length, 2);
    assert.equal(shared[0].macsBefore, uses[0].dense + uses[1].dense);
  }
  // 5x5 and 1x1 convolutions are not touched.
  assert.ok(report.layers.every((l) => l.shape[2] === 3 && l.shape[3] === 3));
});
