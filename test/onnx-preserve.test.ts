/**
 * Nothing lost: fields the schema does not know, doc strings, metadata, names and opsets come out
 * as they went in; Constant-node weights and float16 weights are pruned in place.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import onnxProto from 'onnx-proto';
import * as ort from 'onnxruntime-node';
import { prune, KpruneError } from '../src/index.js';
import { readOnnxModel, tensorFloats } from '../src/formats/onnx/read.js';
import { scanFields, fieldString } from '../src/formats/onnx/wire.js';
import { concat, lenField, tinyConvModel, unknownField } from './helpers/onnx-builder.js';
import { tempDir } from './helpers/tmp.js';

const { onnx } = onnxProto;
const dir = tempDir();

function fieldsOf(buf: Uint8Array, start = 0, end = buf.length) {
  return scanFields(buf, start, end);
}

test('fields unknown to the schema survive at model, graph, node and pruned-tensor level', async () => {
  const unknown = {
    model: unknownField(99, 'model-extension'),
    graph: unknownField(70, 'graph-extension'),
    node: unknownField(60, 'node-extension'),
    tensor: unknownField(50, 'tensor-extension'),
  };
  const { bytes, w1 } = tinyConvModel({ unknown });
  const input = path.join(dir, 'unknown.onnx');
  writeFileSync(input, bytes);
  // onnxruntime accepts the file as it is (its protobuf skips unknown fields).
  await (await ort.InferenceSession.create(input)).release();
  const out = path.join(dir, 'unknown.kpruned.onnx');
  await prune(input, { layout: 'masked', shape: 'cross', output: out, inputShape: '1,4,8,8' });
  const buf = readFileSync(out);
  const top = fieldsOf(buf);
  const find = (fs: ReturnType<typeof fieldsOf>, n: number) => fs.filter((f) => f.field === n);
  assert.equal(fieldString(buf, find(top, 99)[0]), 'model-extension');
  const g = find(top, 7)[0];
  const graph = fieldsOf(buf, g.dataStart, g.dataEnd);
  assert.equal(fieldString(buf, find(graph, 70)[0]), 'graph-extension');
  const nodes = find(graph, 1);
  const lastNode = fieldsOf(buf, nodes[nodes.length - 1].dataStart, nodes[nodes.length - 1].dataEnd);
  assert.equal(fieldString(buf, find(lastNode, 60)[0]), 'node-extension');
  const inits = find(graph, 5).map((f) => ({ f, fields: fieldsOf(buf, f.dataStart, f.dataEnd) }));
  const w1Tensor = inits.find((t) => t.fields.some((x) => x.field === 8 && fieldString(buf, x) === 'w1'))!;
  assert.equal(fieldString(buf, find(w1Tensor.fields, 50)[0]), 'tensor-extension');
  // ...and the pruned tensor really was pruned.
  const m = await readOnnxModel(out);
  const v = tensorFloats(m, m.constants.get('w1')!);
  for (let i = 0; i < v.length; i++) assert.equal(v[i], [1, 3, 4, 5, 7].includes(i % 9) ? w1[i] : 0);
  // The rest of the model is as it was.
  const a = onnx.ModelProto.decode(buf);
  assert.equal(a.docString, 'model doc');
  assert.equal(a.producerName, 'kprune-test');
  assert.deepEqual(a.metadataProps.map((p) => [p.key, p.value]), [['author', 'tests']]);
  assert.equal(a.graph!.docString, 'a tiny graph');
  assert.deepEqual((a.graph!.node ?? []).map((n) => n.name), ['conv1', 'relu1', 'conv2']);
  assert.equal(Number(a.opsetImport[0].version), 13);
  assert.equal(Number(a.irVersion), 8);
});

test('weights held by Constant nodes are pruned in the Constant node', async () => {
  const { bytes, w2 } = tinyConvModel({ constants: true, seed: 5 });
  const input = path.join(dir, 'constants.onnx');
  writeFileSync(input, bytes);
  const out = path.join(dir, 'constants.kpruned.onnx');
  const report = await prune(input, { layout: 'masked', shape: 'x', output: out, inputShape: '2,4,8,8' });
  assert.deepEqual(report.plan.entries.map((e) => e.layer), ['w1', 'w2']);
  const m = await readOnnxModel(out);
  assert.equal(m.graph.initializer?.length ?? 0, 0);
  const v = tensorFloats(m, m.constants.get('w2')!);
  for (let i = 0; i < v.length; i++) assert.equal(v[i], [0, 2, 4, 6, 8].includes(i % 9) ? w2[i] : 0);
});

test('float16 weights are read, pruned and written back as float16', async () => {
  const half = (v: number) => {
    const b = Buffer.alloc(2);
    // 1.0 = 0x3c00, -2.0 = 0xc000, 0.5 = 0x3800
    b.writeUInt16LE(v === 1 ? 0x3c00 : v === -2 ? 0xc000 : 0x3800);
    return b;
  };
  const values = Array.from({ length: 4 * 4 * 9 }, (_, i) => [1, -2, 0.5][i % 3]);
  const raw = concat(values.map(half));
  const model = onnx.ModelProto.encode({
    irVersion: 8,
    opsetImport: [{ domain: '', version: 13 }],
    graph: {
      name: 'fp16',
      node: [{ name: 'conv', opType: 'Conv', input: ['x', 'w'], output: ['y'], attribute: [{ name: 'pads', type: 7, ints: [1, 1, 1, 1] }] }],
      initializer: [{ name: 'w', dims: [4, 4, 3, 3], dataType: 10, rawData: raw }],
      input: [{ name: 'x', type: { tensorType: { elemType: 10, shape: { dim: [{ dimValue: 1 }, { dimValue: 4 }, { dimValue: 6 }, { dimValue: 6 }] } } } }],
      output: [{ name: 'y', type: { tensorType: { elemType: 10, shape: { dim: [{ dimValue: 1 }, { dimValue: 4 }, { dimValue: 6 }, { dimValue: 6 }] } } } }],
    },
  }).finish();
  const input = path.join(dir, 'fp16.onnx');
  writeFileSync(input, model);
  const out = path.join(dir, 'fp16.kpruned.onnx');
  await prune(input, { layout: 'masked', shape: 'cross', output: out });
  const m = await readOnnxModel(out);
  const ref = m.constants.get('w')!;
  assert.equal(ref.dataType, 10);
  const v = tensorFloats(m, ref);
  for (let i = 0; i < v.length; i++) assert.equal(v[i], [1, 3, 4, 5, 7].includes(i % 9) ? values[i] : 0);
  assert.equal(readFileSync(out).length, model.length);
});

test('external data that escapes the model folder is refused', async () => {
  for (const location of ['../outside.bin', '/etc/passwd', 'sub/../../outside.bin']) {
    const model = onnx.ModelProto.encode({
      irVersion: 8,
      opsetImport: [{ domain: '', version: 13 }],
      graph: {
        name: 'evil',
        node: [{ name: 'conv', opType: 'Conv', input: ['x', 'w'], output: ['y'] }],
        initializer: [{ name: 'w', dims: [1, 1, 3, 3], dataType: 1, dataLocation: 1, externalData: [{ key: 'location', value: location }, { key: 'offset', value: '0' }, { key: 'length', value: '36' }] }],
        input: [{ name: 'x', type: { tensorType: { elemType: 1, shape: { dim: [{ dimValue: 1 }, { dimValue: 1 }, { dimValue: 5 }, { dimValue: 5 }] } } } }],
        output: [{ name: 'y', type: { tensorType: { elemType: 1 } } }],
      },
    }).finish();
    const input = path.join(dir, 'evil.onnx');
    writeFileSync(input, model);
    await assert.rejects(prune(input, { shape: 'cross', output: path.join(dir, 'evil.out.onnx') }), (e: unknown) => e instanceof KpruneError && e.code === 'unsafe-path' && e.message.includes(location));
  }
});

test('a tensor whose re-encoding changes length (unpacked float_data) is spliced with correct enclosing lengths', async () => {
  // float_data written unpacked, one tag per element, as some old exporters did; kprune writes it
  // back packed, so the tensor, graph and model length prefixes all change.
  const values = Array.from({ length: 2 * 2 * 9 }, (_, i) => i + 1);
  const tensorHead = onnx.TensorProto.encode({ name: 'w', dims: [2, 2, 3, 3], dataType: 1 }).finish();
  const unpacked = concat(values.map((v) => {
    const b = Buffer.alloc(5);
    b[0] = (4 << 3) | 5;
    b.writeFloatLE(v, 1);
    return b;
  }));
  const graphRest = onnx.GraphProto.encode({
    name: 'unpacked',
    node: [{ name: 'conv', opType: 'Conv', input: ['x', 'w'], output: ['y'], attribute: [{ name: 'pads', type: 7, ints: [1, 1, 1, 1] }] }],
    input: [{ name: 'x', type: { tensorType: { elemType: 1, shape: { dim: [{ dimValue: 1 }, { dimValue: 2 }, { dimValue: 5 }, { dimValue: 5 }] } } } }],
    output: [{ name: 'y', type: { tensorType: { elemType: 1, shape: { dim: [{ dimValue: 1 }, { dimValue: 2 }, { dimValue: 5 }, { dimValue: 5 }] } } } }],
  }).finish();
  const graph = concat([graphRest, lenField(5, concat([tensorHead, unpacked]))]);
  const model = concat([onnx.ModelProto.encode({ irVersion: 8, opsetImport: [{ domain: '', version: 13 }] }).finish(), lenField(7, graph), unknownField(99, 'tail')]);
  const input = path.join(dir, 'unpacked.onnx');
  writeFileSync(input, model);
  const out = path.join(dir, 'unpacked.kpruned.onnx');
  await prune(input, { layout: 'masked', shape: 'cross', output: out });
  const buf = readFileSync(out);
  assert.ok(buf.length < model.length);
  const m = await readOnnxModel(out);
  const v = tensorFloats(m, m.constants.get('w')!);
  assert.deepEqual(Array.from(v), values.map((x, i) => ([1, 3, 4, 5, 7].includes(i % 9) ? x : 0)));
  const top = scanFields(buf);
  assert.equal(fieldString(buf, top.find((f) => f.field === 99)!), 'tail');
  await (await ort.InferenceSession.create(out)).release();
});
