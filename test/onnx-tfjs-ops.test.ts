/**
 * The operator table against onnxruntime: every row runs in at least one small graph built here,
 * and its TF.js output matches onnxruntime's within 1e-4 relative. Activations enter as NCHW, so
 * rows that see channels-last values (after a Conv) are checked for their axis handling too.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import onnxProto from 'onnx-proto';
import * as ort from 'onnxruntime-node';
import { readOnnxModel } from '../src/formats/onnx/read.js';
import { trainingRuntime } from '../src/runtime/tfjs/training-backend.js';
import { decodeGraph } from '../src/formats/onnx/decode-graph.js';
import { OnnxTfjsGraph } from '../src/runtime/tfjs/onnx/graph.js';
import { OPS } from '../src/runtime/tfjs/onnx/ops.js';
import { activeIn } from '../src/runtime/tfjs/onnx/table.js';
import { KpruneError } from '../src/errors.js';
import { mulberry32 } from '../src/util/random.js';
import { tempDir } from './helpers/tmp.js';

const { onnx } = onnxProto;
const T = onnx.AttributeProto.AttributeType;
const dir = tempDir();

type Attr = onnxProto.onnx.IAttributeProto;
const a = {
  i: (name: string, i: number): Attr => ({ name, type: T.INT, i }),
  is: (name: string, ints: number[]): Attr => ({ name, type: T.INTS, ints }),
  f: (name: string, f: number): Attr => ({ name, type: T.FLOAT, f }),
  fs: (name: string, floats: number[]): Attr => ({ name, type: T.FLOATS, floats }),
  s: (name: string, s: string): Attr => ({ name, type: T.STRING, s: Buffer.from(s) }),
  t: (name: string, t: onnxProto.onnx.ITensorProto): Attr => ({ name, type: T.TENSOR, t }),
};

function floats(n: number, seed: number, scale = 1): Float32Array {
  const r = mulberry32(seed);
  return Float32Array.from({ length: n }, () => (r() * 2 - 1) * scale);
}

function floatTensor(name: string, dims: number[], values: Float32Array): onnxProto.onnx.ITensorProto {
  return { name, dims, dataType: 1, rawData: new Uint8Array(values.buffer.slice(values.byteOffset, values.byteOffset + values.byteLength)) };
}

function int64Tensor(name: string, dims: number[], values: (number | bigint)[]): onnxProto.onnx.ITensorProto {
  return { name, dims, dataType: 7, rawData: new Uint8Array(BigInt64Array.from(values.map((v) => BigInt(v))).buffer) };
}

type Node = onnxProto.onnx.INodeProto;
const node = (opType: string, input: string[], output: string[], attribute: Attr[] = []): Node => ({ name: `${opType}_${output[0]}`, opType, input, output, attribute });

interface Case {
  name: string;
  opset: number;
  /** The data input "x" (NCHW when 4-D). */
  x: number[];
  nodes: Node[];
  inits?: onnxProto.onnx.ITensorProto[];
  /** Default "y". */
  outputs?: string[];
}

function build(c: Case): Uint8Array {
  const vi = (name: string, dims?: number[]) => ({ name, type: { tensorType: { elemType: 1, ...(dims ? { shape: { dim: dims.map((d) => ({ dimValue: d })) } } : {}) } } });
  return onnx.ModelProto.encode({
    irVersion: 8,
    producerName: 'kprune-test',
    opsetImport: [{ domain: '', version: c.opset }],
    graph: { name: c.name, node: c.nodes, initializer: c.inits ?? [], input: [vi('x', c.x)], output: (c.outputs ?? ['y']).map((o) => vi(o)) },
  }).finish();
}

const rt = await trainingRuntime();
const tf = rt.tf;

async function check(c: Case): Promise<void> {
  const bytes = build(c);
  const file = path.join(dir, `${c.name.replace(/[^a-z0-9]+/gi, '_')}.onnx`);
  writeFileSync(file, bytes);
  const x = floats(c.x.reduce((p, q) => p * q, 1), 7, 2);
  const session = await ort.InferenceSession.create(bytes);
  const want = await session.run({ x: new ort.Tensor('float32', x, c.x) });
  await session.release();
  const graph = OnnxTfjsGraph.compile(decodeGraph(await readOnnxModel(file)), tf);
  const weights = graph.loadWeights();
  const before = tf.memory().numTensors;
  const feed = tf.tensor(x, c.x);
  const got = graph.run(weights, new Map([['x', feed]]));
  try {
    // The feed is the caller's and the outputs are handed over; everything else the run made is freed.
    assert.equal(tf.memory().numTensors, before + 1 + got.size, `${c.name}: tensors left behind`);
    for (const name of c.outputs ?? ['y']) {
      const w = want[name] as ort.Tensor;
      const g = got.get(name)!;
      assert.deepEqual(g.shape, [...w.dims], `${c.name}: ${name} shape`);
      const wd = w.data as Float32Array;
      const gd = await g.data();
      let diff = 0;
      let scale = 0;
      for (let i = 0; i < wd.length; i++) {
        diff = Math.max(diff, Math.abs(Number(wd[i]) - Number(gd[i])));
        scale = Math.max(scale, Math.abs(Number(wd[i])));
      }
      assert.ok(diff <= 1e-4 * Math.max(scale, 1e-2), `${c.name}: ${name} differs from onnxruntime by ${diff} (scale ${scale})`);
    }
  } finally {
    for (const t of got.values()) t.dispose();
    feed.dispose();
    weights.dispose();
  }
}

const W = (name: string, dims: number[], seed: number, scale = 0.5) => floatTensor(name, dims, floats(dims.reduce((p, q) => p * q, 1), seed, scale));
const X4 = [2, 4, 7, 6];

const CASES: Case[] = [
  // Conv: explicit, auto and asymmetric pads, stride with dilation, groups, depthwise with multiplier.
  { name: 'Conv 3x3 pads', opset: 13, x: X4, inits: [W('w', [5, 4, 3, 3], 1), W('b', [5], 2)], nodes: [node('Conv', ['x', 'w', 'b'], ['y'], [a.is('pads', [1, 1, 1, 1])])] },
  { name: 'Conv SAME_UPPER stride 2', opset: 13, x: X4, inits: [W('w', [3, 4, 3, 3], 3)], nodes: [node('Conv', ['x', 'w'], ['y'], [a.s('auto_pad', 'SAME_UPPER'), a.is('strides', [2, 2])])] },
  { name: 'Conv SAME_LOWER 2x2', opset: 11, x: X4, inits: [W('w', [3, 4, 2, 2], 4)], nodes: [node('Conv', ['x', 'w'], ['y'], [a.s('auto_pad', 'SAME_LOWER')])] },
  { name: 'Conv VALID 5x5', opset: 13, x: [1, 2, 9, 8], inits: [W('w', [3, 2, 5, 5], 5)], nodes: [node('Conv', ['x', 'w'], ['y'], [a.s('auto_pad', 'VALID')])] },
  { name: 'Conv stride and dilation', opset: 13, x: [2, 3, 11, 10], inits: [W('w', [4, 3, 3, 3], 6), W('b', [4], 7)], nodes: [node('Conv', ['x', 'w', 'b'], ['y'], [a.is('strides', [2, 2]), a.is('dilations', [2, 2]), a.is('pads', [1, 2, 0, 1])])] },
  { name: 'Conv groups', opset: 13, x: X4, inits: [W('w', [6, 2, 3, 3], 8), W('b', [6], 9)], nodes: [node('Conv', ['x', 'w', 'b'], ['y'], [a.i('group', 2), a.is('pads', [1, 1, 1, 1])])] },
  { name: 'Conv depthwise multiplier 2', opset: 13, x: X4, inits: [W('w', [8, 1, 3, 3], 10), W('b', [8], 11)], nodes: [node('Conv', ['x', 'w', 'b'], ['y'], [a.i('group', 4), a.is('strides', [2, 2]), a.is('pads', [1, 1, 1, 1])])] },
  // BatchNormalization and activations, on channels-last values (after a Conv) and on plain ones.
  {
    name: 'BatchNormalization after Conv', opset: 15, x: X4,
    inits: [W('w', [3, 4, 1, 1], 12), W('s', [3], 13), W('bb', [3], 14), W('m', [3], 15), floatTensor('v', [3], Float32Array.of(0.5, 1, 2))],
    nodes: [node('Conv', ['x', 'w'], ['c']), node('BatchNormalization', ['c', 's', 'bb', 'm', 'v'], ['y'], [a.f('epsilon', 1e-3)])],
  },
  { name: 'BatchNormalization 2-D', opset: 9, x: [3, 4], inits: [W('s', [4], 16), W('bb', [4], 17), W('m', [4], 18), floatTensor('v', [4], Float32Array.of(1, 2, 3, 4))], nodes: [node('BatchNormalization', ['x', 's', 'bb', 'm', 'v'], ['y'])] },
  { name: 'Relu', opset: 13, x: X4, nodes: [node('Relu', ['x'], ['y'])] },
  { name: 'LeakyRelu', opset: 13, x: X4, nodes: [node('LeakyRelu', ['x'], ['y'], [a.f('alpha', 0.2)])] },
  { name: 'Clip opset 6', opset: 6, x: X4, nodes: [node('Clip', ['x'], ['y'], [a.f('min', -0.5), a.f('max', 0.7)])] },
  { name: 'Clip opset 13 max only', opset: 13, x: X4, inits: [floatTensor('hi', [], Float32Array.of(0.3))], nodes: [node('Clip', ['x', '', 'hi'], ['y'])] },
  { name: 'Clip opset 13 both', opset: 13, x: X4, inits: [floatTensor('lo', [], Float32Array.of(0)), floatTensor('hi', [], Float32Array.of(6))], nodes: [node('Clip', ['x', 'lo', 'hi'], ['y'])] },
  { name: 'Sigmoid', opset: 13, x: X4, nodes: [node('Sigmoid', ['x'], ['y'])] },
  { name: 'Tanh', opset: 13, x: X4, nodes: [node('Tanh', ['x'], ['y'])] },
  { name: 'HardSigmoid', opset: 13, x: X4, nodes: [node('HardSigmoid', ['x'], ['y'], [a.f('alpha', 0.3), a.f('beta', 0.4)])] },
  { name: 'HardSwish', opset: 14, x: X4, nodes: [node('HardSwish', ['x'], ['y'])] },
  // Broadcasting against channels-last activations: [1, C, 1, 1], [C, 1, 1], a scalar, a full tensor.
  {
    name: 'Add/Sub/Mul/Div broadcast after Conv', opset: 13, x: X4,
    inits: [W('w', [3, 4, 3, 3], 19), W('a', [1, 3, 1, 1], 20), W('b', [3, 1, 1], 21), floatTensor('s', [], Float32Array.of(2.5)), W('f', [2, 3, 5, 4], 22)],
    nodes: [
      node('Conv', ['x', 'w'], ['c']), node('Add', ['c', 'a'], ['c1']), node('Mul', ['c1', 'b'], ['c2']), node('Sub', ['s', 'c2'], ['c3']),
      node('Div', ['c3', 's'], ['c4']), node('Add', ['c4', 'f'], ['y']),
    ],
  },
  { name: 'Add plain 2-D broadcast', opset: 13, x: [3, 5], inits: [W('r', [5], 23)], nodes: [node('Add', ['x', 'r'], ['y'])] },
  // Pools.
  { name: 'MaxPool pads stride 1', opset: 12, x: X4, nodes: [node('MaxPool', ['x'], ['y'], [a.is('kernel_shape', [3, 3]), a.is('pads', [1, 1, 1, 1])])] },
  { name: 'MaxPool ceil_mode', opset: 12, x: [2, 3, 7, 7], nodes: [node('MaxPool', ['x'], ['y'], [a.is('kernel_shape', [2, 2]), a.is('strides', [2, 2]), a.i('ceil_mode', 1)])] },
  { name: 'MaxPool SAME_UPPER', opset: 12, x: [2, 3, 7, 6], nodes: [node('MaxPool', ['x'], ['y'], [a.is('kernel_shape', [3, 3]), a.is('strides', [2, 2]), a.s('auto_pad', 'SAME_UPPER')])] },
  { name: 'AveragePool exclude pad', opset: 11, x: X4, nodes: [node('AveragePool', ['x'], ['y'], [a.is('kernel_shape', [3, 3]), a.is('pads', [1, 1, 1, 1]), a.is('strides', [2, 2])])] },
  { name: 'AveragePool include pad', opset: 11, x: X4, nodes: [node('AveragePool', ['x'], ['y'], [a.is('kernel_shape', [3, 3]), a.is('pads', [1, 1, 1, 1]), a.i('count_include_pad', 1)])] },
  { name: 'AveragePool ceil_mode', opset: 11, x: [2, 3, 7, 7], nodes: [node('AveragePool', ['x'], ['y'], [a.is('kernel_shape', [2, 2]), a.is('strides', [2, 2]), a.i('ceil_mode', 1)])] },
  { name: 'GlobalAveragePool + Flatten', opset: 13, x: X4, nodes: [node('GlobalAveragePool', ['x'], ['g']), node('Flatten', ['g'], ['y'])] },
  { name: 'GlobalMaxPool', opset: 13, x: X4, nodes: [node('GlobalMaxPool', ['x'], ['y'])] },
  // Reshaping, with values coming from channels-last storage.
  { name: 'Flatten axis 2 after Conv', opset: 13, x: X4, inits: [W('w', [3, 4, 1, 1], 24)], nodes: [node('Conv', ['x', 'w'], ['c']), node('Flatten', ['c'], ['y'], [a.i('axis', 2)])] },
  {
    name: 'PyTorch flatten: Shape/Gather/Unsqueeze/Concat/Reshape', opset: 11, x: X4,
    inits: [W('w', [3, 4, 3, 3], 25), int64Tensor('zero', [], [0]), int64Tensor('minus1', [1], [-1])],
    nodes: [
      node('Conv', ['x', 'w'], ['c']), node('Shape', ['c'], ['s']), node('Gather', ['s', 'zero'], ['n'], [a.i('axis', 0)]),
      node('Unsqueeze', ['n'], ['n1'], [a.is('axes', [0])]), node('Concat', ['n1', 'minus1'], ['shape'], [a.i('axis', 0)]), node('Reshape', ['c', 'shape'], ['y']),
    ],
  },
  { name: 'Reshape 0 and -1', opset: 13, x: X4, inits: [int64Tensor('shape', [3], [0, -1, 6])], nodes: [node('Reshape', ['x', 'shape'], ['y'])] },
  { name: 'Reshape allowzero', opset: 14, x: [2, 3, 4], inits: [int64Tensor('shape', [2], [4, 6])], nodes: [node('Reshape', ['x', 'shape'], ['y'], [a.i('allowzero', 1)])] },
  { name: 'Gemm transB alpha beta', opset: 13, x: [3, 5], inits: [W('b', [4, 5], 26), W('c', [4], 27)], nodes: [node('Gemm', ['x', 'b', 'c'], ['y'], [a.i('transB', 1), a.f('alpha', 0.5), a.f('beta', 2)])] },
  { name: 'Gemm transA', opset: 11, x: [5, 3], inits: [W('b', [5, 4], 28)], nodes: [node('Gemm', ['x', 'b'], ['y'], [a.i('transA', 1)])] },
  { name: 'MatMul batched', opset: 13, x: [2, 3, 5], inits: [W('b', [5, 4], 29)], nodes: [node('MatMul', ['x', 'b'], ['y'])] },
  { name: 'MatMul vector', opset: 13, x: [3, 5], inits: [W('v', [5], 30)], nodes: [node('MatMul', ['x', 'v'], ['y'])] },
  { name: 'Concat channels after Conv', opset: 13, x: X4, inits: [W('w', [3, 4, 1, 1], 31)], nodes: [node('Conv', ['x', 'w'], ['c']), node('Concat', ['c', 'x', 'c'], ['y'], [a.i('axis', 1)])] },
  { name: 'Concat mixed layouts', opset: 13, x: X4, inits: [W('w', [4, 4, 1, 1], 32)], nodes: [node('Conv', ['x', 'w'], ['c']), node('Concat', ['c', 'x'], ['y'], [a.i('axis', -1)])] },
  { name: 'Transpose after Conv', opset: 13, x: X4, inits: [W('w', [3, 4, 1, 1], 33)], nodes: [node('Conv', ['x', 'w'], ['c']), node('Transpose', ['c'], ['y'], [a.is('perm', [0, 2, 3, 1])])] },
  { name: 'Transpose default', opset: 13, x: [2, 3, 4], nodes: [node('Transpose', ['x'], ['y'])] },
  { name: 'Pad constant opset 11', opset: 11, x: X4, inits: [int64Tensor('p', [8], [0, 0, 1, 2, 0, 0, 2, -1]), floatTensor('v', [], Float32Array.of(0.25))], nodes: [node('Pad', ['x', 'p', 'v'], ['y'])] },
  { name: 'Pad reflect after Conv', opset: 13, x: X4, inits: [W('w', [3, 4, 1, 1], 34), int64Tensor('p', [8], [0, 0, 1, 2, 0, 0, 2, 1])], nodes: [node('Conv', ['x', 'w'], ['c']), node('Pad', ['c', 'p'], ['y'], [a.s('mode', 'reflect')])] },
  { name: 'Pad edge opset 10 (attributes)', opset: 10, x: X4, nodes: [node('Pad', ['x'], ['y'], [a.s('mode', 'edge'), a.is('pads', [0, 0, 2, 1, 0, 0, 1, 3])])] },
  { name: 'Squeeze/Unsqueeze opset 11', opset: 11, x: [2, 1, 3, 1], nodes: [node('Squeeze', ['x'], ['s'], [a.is('axes', [1, 3])]), node('Unsqueeze', ['s'], ['y'], [a.is('axes', [0, -1])])] },
  { name: 'Squeeze/Unsqueeze opset 13', opset: 13, x: [2, 1, 3, 1], inits: [int64Tensor('ax', [1], [1]), int64Tensor('ux', [1], [2])], nodes: [node('Squeeze', ['x'], ['s']), node('Unsqueeze', ['s', 'ux'], ['y'])] },
  { name: 'Slice steps and negatives after Conv', opset: 13, x: X4, inits: [W('w', [5, 4, 1, 1], 35), int64Tensor('st', [3], [1, -1, 0]), int64Tensor('en', [3], [4, -100, 9223372036854775807n]), int64Tensor('ax', [3], [1, 3, 2]), int64Tensor('sp', [3], [2, -2, 3])], nodes: [node('Conv', ['x', 'w'], ['c']), node('Slice', ['c', 'st', 'en', 'ax', 'sp'], ['y'])] },
  { name: 'Slice opset 9', opset: 9, x: X4, nodes: [node('Slice', ['x'], ['y'], [a.is('starts', [1, 2]), a.is('ends', [3, 100]), a.is('axes', [1, 3])])] },
  { name: 'Gather negative index', opset: 13, x: [4, 3], inits: [int64Tensor('i', [2], [-1, 1])], nodes: [node('Gather', ['x', 'i'], ['y'], [a.i('axis', 0)])] },
  { name: 'ReduceMean keepdims after Conv', opset: 13, x: X4, inits: [W('w', [3, 4, 1, 1], 36)], nodes: [node('Conv', ['x', 'w'], ['c']), node('ReduceMean', ['c'], ['y'], [a.is('axes', [2, 3])])] },
  { name: 'ReduceMean no keepdims after Conv', opset: 13, x: X4, inits: [W('w', [3, 4, 1, 1], 37)], nodes: [node('Conv', ['x', 'w'], ['c']), node('ReduceMean', ['c'], ['y'], [a.is('axes', [-1, 2]), a.i('keepdims', 0)])] },
  { name: 'ReduceMean opset 18 axes input', opset: 18, x: X4, inits: [int64Tensor('ax', [1], [1])], nodes: [node('ReduceMean', ['x', 'ax'], ['y'], [a.i('keepdims', 0)])] },
  { name: 'Softmax opset 11 coerced', opset: 11, x: X4, nodes: [node('Softmax', ['x'], ['y'], [a.i('axis', 2)])] },
  { name: 'Softmax opset 13 channels after Conv', opset: 13, x: X4, inits: [W('w', [3, 4, 1, 1], 38)], nodes: [node('Conv', ['x', 'w'], ['c']), node('Softmax', ['c'], ['y'], [a.i('axis', 1)])] },
  { name: 'LogSoftmax', opset: 13, x: [3, 5], nodes: [node('LogSoftmax', ['x'], ['y'])] },
  { name: 'LogSoftmax opset 11', opset: 11, x: [2, 3, 4], nodes: [node('LogSoftmax', ['x'], ['y'], [a.i('axis', 1)])] },
  { name: 'Dropout and Identity', opset: 13, x: X4, inits: [floatTensor('r', [], Float32Array.of(0.3))], nodes: [node('Dropout', ['x', 'r'], ['d']), node('Identity', ['d'], ['y'])] },
  {
    name: 'Constant nodes and Cast', opset: 13, x: [3, 4],
    nodes: [
      node('Constant', [], ['k'], [a.f('value_float', 1.5)]), node('Constant', [], ['v'], [a.t('value', floatTensor('', [4], Float32Array.of(1, 2, 3, 4)))]),
      node('Mul', ['x', 'k'], ['m']), node('Add', ['m', 'v'], ['c']), node('Cast', ['c'], ['i'], [a.i('to', 6)]), node('Cast', ['i'], ['y'], [a.i('to', 1)]),
    ],
  },
  { name: 'Conv opset 1-era model', opset: 7, x: X4, inits: [W('w', [2, 4, 3, 3], 39)], nodes: [node('Conv', ['x', 'w'], ['c'], [a.is('kernel_shape', [3, 3])]), node('Relu', ['c'], ['y'])] },
];

for (const c of CASES) test(`${c.name} matches onnxruntime`, () => check(c));

test('every operator row is exercised by a case at one of its opsets', () => {
  for (const row of OPS) {
    const covered = CASES.some((c) => c.opset >= row.opsets[0] && c.opset <= row.opsets[1] && c.nodes.some((n) => n.opType === row.op));
    assert.ok(covered, `row ${row.op} (opsets ${row.opsets.join('-')}) has no case`);
  }
});

test('the table is consistent: opset ranges do not overlap, variadic inputs come last, parameter names are unique per opset', () => {
  for (const row of OPS) {
    assert.ok(row.opsets[0] <= row.opsets[1], row.op);
    for (const other of OPS) {
      if (other === row || other.op !== row.op) continue;
      assert.ok(row.opsets[1] < other.opsets[0] || other.opsets[1] < row.opsets[0], `${row.op}: overlapping rows`);
    }
    for (let opset = row.opsets[0]; opset <= row.opsets[1]; opset++) {
      const inputs = row.inputs.filter((i) => activeIn(i, opset));
      const v = inputs.findIndex((i) => i.kind === 'tensors');
      assert.ok(v === -1 || v === inputs.length - 1, `${row.op}@${opset}: variadic input not last`);
      const names = [...inputs, ...row.attrs.filter((x) => activeIn(x, opset))].map((x) => x.name);
      assert.equal(new Set(names).size, names.length, `${row.op}@${opset}: duplicate parameter names ${names.join(', ')}`);
    }
  }
});

test('operators outside the table are refused up front, each named with its nodes', async () => {
  const c: Case = {
    name: 'unsupported', opset: 13, x: X4,
    nodes: [node('Relu', ['x'], ['r']), node('Resize', ['r'], ['a']), node('NonZero', ['a'], ['b']), node('Resize', ['b'], ['y']), { ...node('Foo', ['y'], ['z']), domain: 'com.example' }],
  };
  const file = path.join(dir, 'unsupported.onnx');
  writeFileSync(file, build(c));
  const model = await readOnnxModel(file);
  assert.throws(() => OnnxTfjsGraph.compile(decodeGraph(model), tf), (e: unknown) => {
    assert.ok(e instanceof KpruneError);
    assert.equal(e.code, 'unsupported');
    assert.match(e.message, /Resize \(nodes "Resize_a", "Resize_y"\)/);
    assert.match(e.message, /NonZero \(node "NonZero_b"\)/);
    assert.match(e.message, /com\.example\.Foo/);
    assert.match(e.suggestion ?? '', /Conv/);
    return true;
  });
});

test('an operator at an opset its rows do not cover is refused with the supported range', async () => {
  const file = path.join(dir, 'old-hardswish.onnx');
  writeFileSync(file, build({ name: 'x', opset: 13, x: X4, nodes: [node('HardSwish', ['x'], ['y'])] }));
  const model = await readOnnxModel(file);
  assert.throws(() => OnnxTfjsGraph.compile(decodeGraph(model), tf), /HardSwish at opset 13 \(supported: 14-/);
});

test('an output the executor does not produce is refused (MaxPool indices)', async () => {
  const file = path.join(dir, 'maxpool-indices.onnx');
  writeFileSync(file, build({ name: 'x', opset: 13, x: X4, outputs: ['y', 'i'], nodes: [node('MaxPool', ['x'], ['y', 'i'], [a.is('kernel_shape', [2, 2])])] }));
  const model = await readOnnxModel(file);
  assert.throws(() => OnnxTfjsGraph.compile(decodeGraph(model), tf), (e: unknown) => e instanceof KpruneError && e.code === 'unsupported' && /output 1/.test(e.message));
});
