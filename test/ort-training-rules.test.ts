/**
 * Every backward rule of the onnxruntime training graph (src/formats/onnx/training/rules.ts)
 * against finite differences on a one-operator graph: convolutions over strides, dilations,
 * asymmetric and automatic pads, groups and depthwise multipliers; pools; broadcasting arithmetic;
 * activations at their opsets; shape operators; matrix products; normalisation; softmax; reductions.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RULES } from '../src/formats/onnx/training/index.js';
import { maskHas, parseMask } from '../src/core/lattice.js';
import onnxProto from 'onnx-proto';
import { OpCase, a, checkRule, gradientsOf, int64Tensor, values } from './helpers/ort-training.js';
import { mulberry32 } from '../src/util/random.js';

const size = (d: number[]) => d.reduce((p, q) => p * q, 1);
const operand = (name: string, dims: number[], seed: number, trainable = true, kind: 'any' | 'away' | 'distinct' = 'any') => ({ name, dims, values: values(size(dims), seed, kind), trainable });
const tested = new Set<string>();

async function check(label: string, c: OpCase, o?: Parameters<typeof checkRule>[1]): Promise<void> {
  tested.add(c.op);
  const worst = await checkRule(c, o);
  assert.ok(worst >= 0, label);
}

interface ConvCase { x: number[]; w: number[]; strides?: number[]; dilations?: number[]; pads?: number[]; group?: number; autoPad?: string; bias?: boolean }

const CONVS: ConvCase[] = [
  { x: [2, 3, 7, 7], w: [4, 3, 3, 3], pads: [1, 1, 1, 1], bias: true },
  { x: [2, 3, 8, 8], w: [4, 3, 3, 3], strides: [2, 2], pads: [1, 1, 1, 1] },
  { x: [2, 3, 7, 9], w: [4, 3, 3, 3], strides: [2, 2], pads: [1, 1, 1, 1] },
  { x: [1, 2, 10, 10], w: [3, 2, 3, 3], strides: [3, 3], pads: [0, 2, 1, 0] },
  { x: [2, 3, 9, 8], w: [4, 3, 3, 3], dilations: [2, 2], pads: [2, 2, 2, 2] },
  { x: [1, 3, 9, 9], w: [4, 3, 3, 3], strides: [2, 2], dilations: [2, 2], pads: [1, 2, 0, 1] },
  { x: [1, 3, 8, 8], w: [4, 3, 3, 3], strides: [3, 2], pads: [0, 1, 2, 0] },
  { x: [1, 2, 11, 11], w: [3, 2, 5, 5], strides: [2, 2], pads: [2, 2, 2, 2] },
  { x: [2, 4, 6, 6], w: [5, 4, 1, 1], strides: [2, 2] },
  { x: [2, 4, 6, 7], w: [4, 1, 3, 3], pads: [1, 1, 1, 1], group: 4 },
  { x: [1, 4, 7, 7], w: [8, 1, 3, 3], strides: [2, 2], pads: [1, 1, 1, 1], group: 4 },
  { x: [1, 4, 9, 9], w: [4, 1, 3, 3], strides: [2, 2], dilations: [2, 2], pads: [2, 2, 2, 2], group: 4 },
  { x: [2, 4, 6, 6], w: [6, 2, 3, 3], pads: [1, 1, 1, 1], group: 2 },
  { x: [1, 4, 7, 7], w: [6, 2, 3, 3], strides: [2, 2], pads: [1, 1, 1, 1], group: 2, bias: true },
  { x: [1, 3, 7, 8], w: [4, 3, 3, 3], strides: [2, 2], autoPad: 'SAME_UPPER' },
  { x: [1, 3, 8, 7], w: [4, 3, 3, 3], strides: [2, 2], autoPad: 'SAME_LOWER' },
  { x: [1, 3, 7, 7], w: [4, 3, 3, 3], autoPad: 'VALID' },
];

for (const [i, c] of CONVS.entries()) {
  test(`Conv: x ${c.x} w ${c.w} strides ${c.strides ?? 1} dilations ${c.dilations ?? 1} pads ${c.pads ?? c.autoPad ?? 0} group ${c.group ?? 1}`, async () => {
    const operands = [operand('x', c.x, 10 + i), operand('w', c.w, 50 + i)];
    if (c.bias) operands.push(operand('b', [c.w[0]], 90 + i));
    await check('Conv', {
      op: 'Conv', opset: 13, operands,
      attrs: [
        a.int('group', c.group ?? 1), a.ints('kernel_shape', c.w.slice(2)), a.ints('strides', c.strides ?? [1, 1]), a.ints('dilations', c.dilations ?? [1, 1]),
        ...(c.autoPad ? [a.str('auto_pad', c.autoPad)] : [a.ints('pads', c.pads ?? [0, 0, 0, 0])]),
      ],
    });
  });
}

test('Conv: only the weight trains (no input gradient), as for a model\'s first layer', async () => {
  await check('Conv', { op: 'Conv', opset: 11, operands: [operand('x', [2, 1, 6, 6], 1, false), operand('w', [3, 1, 3, 3], 2)], attrs: [a.ints('pads', [1, 1, 1, 1])] });
});

test('Conv of a masked weight (computed as pieces over its kept positions): cross, x, quasi-hexagonal, with strides, dilations, groups; fed whole and in the kept layout', async () => {
  const shapes = ['010/111/010', '101/010/101', '110/111/011', '011/111/110', '111/111/010'];
  const cases: ConvCase[] = [
    { x: [2, 3, 7, 7], w: [4, 3, 3, 3], pads: [1, 1, 1, 1], bias: true },
    { x: [1, 3, 8, 9], w: [4, 3, 3, 3], strides: [2, 2], pads: [1, 1, 1, 1] },
    { x: [1, 3, 9, 9], w: [4, 3, 3, 3], dilations: [2, 2], pads: [2, 2, 2, 2] },
    { x: [1, 4, 7, 7], w: [4, 1, 3, 3], strides: [2, 2], pads: [1, 1, 1, 1], group: 4 },
    { x: [1, 4, 6, 6], w: [6, 2, 3, 3], pads: [0, 1, 1, 0], group: 2 },
    { x: [1, 3, 7, 7], w: [4, 3, 3, 3], autoPad: 'VALID' },
  ];
  for (const [i, c] of cases.entries()) {
    for (const [j, shape] of shapes.entries()) for (const layout of ['full', 'kept'] as const) {
      const mask = parseMask(shape);
      const w = operand('w', c.w, 200 + 10 * i + j);
      w.values = w.values.map((v, k) => (maskHas(mask, k % 9) ? v : 0));
      const operands = [operand('x', c.x, 100 + i), w];
      if (c.bias) operands.push(operand('b', [c.w[0]], 300 + i));
      await check('Conv', {
        op: 'Conv', opset: 13, operands,
        attrs: [
          a.int('group', c.group ?? 1), a.ints('kernel_shape', [3, 3]), a.ints('strides', c.strides ?? [1, 1]), a.ints('dilations', c.dilations ?? [1, 1]),
          ...(c.autoPad ? [a.str('auto_pad', c.autoPad)] : [a.ints('pads', c.pads ?? [0, 0, 0, 0])]),
        ],
      }, { masks: new Map([['w', mask]]), layout });
    }
  }
});

test('Conv of a masked weight with one input channel (a first layer): one dense Conv of the masked weight, dW at the kept positions only; fed whole and in the kept layout', async () => {
  const shapes = ['010/111/010', '101/010/101', '110/111/011', '111/111/010'];
  for (const [j, shape] of shapes.entries()) for (const layout of ['full', 'kept'] as const) {
    const mask = parseMask(shape);
    for (const [i, c] of [{ x: [2, 1, 7, 7], pads: [1, 1, 1, 1], bias: true, xTrains: true }, { x: [2, 1, 8, 9], pads: [1, 1, 1, 1], strides: [2, 2], xTrains: false }, { x: [1, 1, 9, 9], pads: [2, 2, 2, 2], dilations: [2, 2], xTrains: true }].entries()) {
      const w = operand('w', [4, 1, 3, 3], 400 + 10 * i + j);
      w.values = w.values.map((v, k) => (maskHas(mask, k % 9) ? v : 0));
      const operands = [operand('x', c.x, 500 + i, c.xTrains), w];
      if (c.bias) operands.push(operand('b', [4], 600 + i));
      const op: OpCase = {
        op: 'Conv', opset: 13, operands,
        attrs: [a.ints('kernel_shape', [3, 3]), a.ints('strides', c.strides ?? [1, 1]), a.ints('dilations', c.dilations ?? [1, 1]), a.ints('pads', c.pads)],
      };
      await check('Conv', op, { masks: new Map([['w', mask]]), layout });
      const { forward, graph } = await gradientsOf(op, new Map([['w', mask]]), layout);
      await forward.release();
      const convs = onnxProto.onnx.ModelProto.decode(graph.bytes).graph!.node!.filter((nd) => nd.opType === 'Conv');
      // The forward Conv, and the input gradient's when x trains: no pieces, no Sum.
      assert.equal(convs.length, c.xTrains ? 2 : 1, `${shape}: one dense forward Conv`);
    }
  }
});

test('MaxPool: 2x2 stride 2, 3x3 stride 1, overlapping 3x3 stride 2 pad 1 (opset 16), ceil mode', async () => {
  const x = (seed: number, dims = [2, 3, 8, 8]) => operand('x', dims, seed, true, 'distinct');
  await check('MaxPool', { op: 'MaxPool', opset: 13, operands: [x(1)], attrs: [a.ints('kernel_shape', [2, 2]), a.ints('strides', [2, 2])] });
  await check('MaxPool', { op: 'MaxPool', opset: 13, operands: [x(2, [1, 2, 7, 9])], attrs: [a.ints('kernel_shape', [2, 3]), a.ints('strides', [2, 3])] });
  await check('MaxPool', { op: 'MaxPool', opset: 17, operands: [x(3)], attrs: [a.ints('kernel_shape', [3, 3]), a.ints('strides', [1, 1])] });
  await check('MaxPool', { op: 'MaxPool', opset: 16, operands: [x(4, [1, 3, 9, 9])], attrs: [a.ints('kernel_shape', [3, 3]), a.ints('strides', [2, 2]), a.ints('pads', [1, 1, 1, 1])] });
  await check('MaxPool', { op: 'MaxPool', opset: 13, operands: [x(5, [1, 2, 7, 7])], attrs: [a.ints('kernel_shape', [2, 2]), a.ints('strides', [2, 2]), a.int('ceil_mode', 1)] });
});

test('MaxPool whose windows tile the input (2x2/2, 3x3/3): plain forward, dY to the first maximum of each window, ties included', async () => {
  // Values from {0, 0.5, 1}: most windows hold ties (as ReLU zeros and flat image regions do), and
  // the gradient must land where MaxPool's Indices point (the first maximum, row-major), as before.
  for (const [k, dims] of [[2, [2, 3, 8, 6]], [3, [1, 2, 9, 6]]] as const) {
    tested.add('MaxPool');
    const r = mulberry32(40 + k);
    const xv = Float32Array.from({ length: size([...dims]), }, () => Math.floor(r() * 3) / 2);
    const c: OpCase = { op: 'MaxPool', opset: 13, operands: [{ name: 'x', dims: [...dims], values: xv, trainable: true }], attrs: [a.ints('kernel_shape', [k, k]), a.ints('strides', [k, k])] };
    const { forward, grads, r: dy, graph } = await gradientsOf(c);
    await forward.release();
    const [n, ch, h, w] = dims;
    const expected = new Float32Array(xv.length);
    let ties = 0;
    let o = 0;
    for (let p = 0; p < n * ch; p++) {
      for (let oy = 0; oy < h / k; oy++) {
        for (let ox = 0; ox < w / k; ox++, o++) {
          let best = -1;
          let count = 0;
          for (let j = 0; j < k * k; j++) {
            const at = p * h * w + (oy * k + Math.floor(j / k)) * w + ox * k + (j % k);
            if (best < 0 || xv[at] > xv[best]) { best = at; count = 1; } else if (xv[at] === xv[best]) count++;
          }
          if (count > 1) ties++;
          expected[best] = dy[o];
        }
      }
    }
    assert.ok(ties > 10, 'the case has ties to break');
    assert.deepEqual(Array.from(grads[0]), Array.from(expected), `k ${k}: dX routed to each window's first maximum`);
    // The forward MaxPool keeps one output: onnxruntime's Indices output is the slow part.
    const nodes = onnxProto.onnx.ModelProto.decode(graph.bytes).graph!.node!;
    const pool = nodes.filter((nd) => nd.opType === 'MaxPool');
    assert.equal(pool.length, 1);
    assert.equal(pool[0].output!.length, 1, 'forward MaxPool without its Indices output');
    assert.ok(!nodes.some((nd) => nd.opType === 'ScatterElements'));
  }
});

test('AveragePool: with and without pads counted, strides, ceil mode; GlobalAveragePool', async () => {
  const x = (seed: number, dims = [2, 3, 8, 8]) => operand('x', dims, seed);
  await check('AveragePool', { op: 'AveragePool', opset: 13, operands: [x(1)], attrs: [a.ints('kernel_shape', [2, 2]), a.ints('strides', [2, 2])] });
  for (const include of [0, 1]) {
    await check('AveragePool', { op: 'AveragePool', opset: 13, operands: [x(2 + include, [1, 2, 9, 8])], attrs: [a.ints('kernel_shape', [3, 3]), a.ints('strides', [2, 2]), a.ints('pads', [1, 1, 1, 0]), a.int('count_include_pad', include)] });
    await check('AveragePool', { op: 'AveragePool', opset: 13, operands: [x(4 + include, [1, 2, 7, 7])], attrs: [a.ints('kernel_shape', [3, 3]), a.ints('strides', [2, 2]), a.ints('pads', [1, 1, 1, 1]), a.int('ceil_mode', 1), a.int('count_include_pad', include)] });
  }
  await check('GlobalAveragePool', { op: 'GlobalAveragePool', opset: 13, operands: [x(6, [2, 3, 5, 4])] });
});

test('Add, Sub, Mul, Div, Sum with broadcasting (every operand trained)', async () => {
  const shapes: [number[], number[]][] = [[[2, 3, 4], [2, 3, 4]], [[2, 3, 4], [4]], [[2, 3, 4], [3, 1]], [[1, 3, 1], [2, 1, 4]], [[2, 3, 4], []]];
  for (const op of ['Add', 'Sub', 'Mul', 'Div']) {
    for (const [i, [da, db]] of shapes.entries()) {
      const b = operand('b', db, 20 + i, true, 'away');
      if (op === 'Div') b.values = b.values.map((v) => Math.sign(v) * (0.5 + Math.abs(v)));
      await check(op, { op, opset: 14, operands: [operand('a', da, 10 + i), b] });
    }
  }
  await check('Sum', { op: 'Sum', opset: 13, operands: [operand('a', [2, 3, 4], 30), operand('b', [3, 1], 31), operand('c', [4], 32)] });
  // The same value on both sides: the two contributions add up.
  await check('Mul', { op: 'Mul', opset: 13, operands: [operand('a', [3, 4], 5)], inputOrder: ['a', 'a'] });
});

test('activations: Relu, LeakyRelu, Sigmoid, Tanh, Clip (with and without bounds), HardSigmoid, HardSwish', async () => {
  const x = (seed: number) => operand('x', [2, 3, 4, 5], seed, true, 'away');
  await check('Relu', { op: 'Relu', opset: 14, operands: [x(1)] });
  await check('LeakyRelu', { op: 'LeakyRelu', opset: 13, operands: [x(2)], attrs: [a.float('alpha', 0.1)] });
  await check('Sigmoid', { op: 'Sigmoid', opset: 13, operands: [x(3)] });
  await check('Tanh', { op: 'Tanh', opset: 13, operands: [x(4)] });
  // Clip's bounds at +-0.5 and 0.7: values 0.05 away from the ladder? Use "away" values scaled off the bounds.
  const clipX = operand('x', [2, 3, 4, 5], 5);
  clipX.values = clipX.values.map((v) => (Math.abs(Math.abs(v) - 0.5) < 0.03 || Math.abs(v - 0.7) < 0.03 ? v + 0.1 : v));
  const f32 = (name: string, v: number) => ({ name, dims: [], dataType: 1, rawData: new Uint8Array(new Float32Array([v]).buffer) });
  await check('Clip', { op: 'Clip', opset: 13, operands: [clipX], consts: [f32('lo', -0.5), f32('hi', 0.7)] });
  await check('Clip', { op: 'Clip', opset: 11, operands: [clipX], consts: [f32('lo', -0.5)] });
  await check('Clip', { op: 'Clip', opset: 13, operands: [clipX], consts: [f32('hi', 0.7)], inputOrder: ['x', '', 'hi'] });
  const hx = operand('x', [2, 3, 4, 5], 6);
  hx.values = hx.values.map((v) => v * 5);
  hx.values = hx.values.map((v) => (Math.abs(Math.abs(v) - 2.5) < 0.1 || Math.abs(Math.abs(v) - 3) < 0.1 ? v + 0.3 : v));
  await check('HardSigmoid', { op: 'HardSigmoid', opset: 13, operands: [hx], attrs: [a.float('alpha', 0.2), a.float('beta', 0.5)] });
  await check('HardSwish', { op: 'HardSwish', opset: 14, operands: [hx] });
});

test('BatchNormalization (inference form): the input gradient', async () => {
  const c = 3;
  const pos = (name: string, seed: number) => ({ name, dims: [c], values: values(c, seed).map((v) => 0.5 + Math.abs(v)) });
  await check('BatchNormalization', {
    op: 'BatchNormalization', opset: 15,
    operands: [operand('x', [2, c, 4, 4], 1), { ...operand('scale', [c], 2, false) }, operand('bias', [c], 3, false), operand('mean', [c], 4, false), pos('var', 5)],
    attrs: [a.float('epsilon', 1e-3)],
  });
});

test('Gemm: every transA/transB, alpha, a broadcast C; MatMul: 2-D, batched, broadcast batch', async () => {
  for (const [ta, tb] of [[0, 0], [0, 1], [1, 0], [1, 1]]) {
    const A = ta ? [4, 3] : [3, 4];
    const B = tb ? [5, 4] : [4, 5];
    await check('Gemm', { op: 'Gemm', opset: 13, operands: [operand('A', A, 1 + ta), operand('B', B, 3 + tb), operand('C', [5], 5)], attrs: [a.int('transA', ta), a.int('transB', tb), a.float('alpha', 0.7), a.float('beta', 1.3)] });
  }
  await check('MatMul', { op: 'MatMul', opset: 13, operands: [operand('A', [3, 4], 1), operand('B', [4, 5], 2)] });
  await check('MatMul', { op: 'MatMul', opset: 13, operands: [operand('A', [2, 3, 4], 3), operand('B', [4, 5], 4)] });
  await check('MatMul', { op: 'MatMul', opset: 13, operands: [operand('A', [2, 1, 3, 4], 5), operand('B', [3, 4, 2], 6)] });
});

test('Concat, Split (attribute and input forms), Slice (negative starts, axes), Pad', async () => {
  await check('Concat', { op: 'Concat', opset: 13, operands: [operand('a', [2, 3, 4], 1), operand('b', [2, 2, 4], 2), operand('c', [2, 1, 4], 3, false)], attrs: [a.int('axis', -2)] });
  await check('Split', { op: 'Split', opset: 11, operands: [operand('x', [2, 6, 3], 4)], attrs: [a.int('axis', 1), a.ints('split', [1, 2, 3])], outputs: ['y0', 'y1', 'y2'], head: 'y1' });
  await check('Split', { op: 'Split', opset: 13, operands: [operand('x', [2, 6, 3], 5)], consts: [int64Tensor('split', [4, 2])], attrs: [a.int('axis', 1)], outputs: ['y0', 'y1'], head: 'y0' });
  await check('Slice', { op: 'Slice', opset: 13, operands: [operand('x', [3, 6, 5], 6)], consts: [int64Tensor('starts', [1, -4]), int64Tensor('ends', [3, 100]), int64Tensor('axes', [0, 2])] });
  await check('Slice', { op: 'Slice', opset: 11, operands: [operand('x', [3, 6], 7)], consts: [int64Tensor('starts', [0, 2]), int64Tensor('ends', [2, 5])] });
  await check('Pad', { op: 'Pad', opset: 13, operands: [operand('x', [2, 3, 4], 8)], consts: [int64Tensor('pads', [0, 1, 2, 1, 0, 3])] });
});

test('Reshape, Flatten, Transpose, Squeeze, Unsqueeze (attribute and input forms), Identity, Dropout, Cast', async () => {
  await check('Reshape', { op: 'Reshape', opset: 14, operands: [operand('x', [2, 3, 4], 1)], consts: [int64Tensor('shape', [4, -1])] });
  await check('Flatten', { op: 'Flatten', opset: 13, operands: [operand('x', [2, 3, 2, 2], 2)], attrs: [a.int('axis', 2)] });
  await check('Transpose', { op: 'Transpose', opset: 13, operands: [operand('x', [2, 3, 4], 3)], attrs: [a.ints('perm', [1, 2, 0])] });
  await check('Transpose', { op: 'Transpose', opset: 13, operands: [operand('x', [2, 3, 4], 4)] });
  await check('Squeeze', { op: 'Squeeze', opset: 11, operands: [operand('x', [2, 1, 4], 5)], attrs: [a.ints('axes', [1])] });
  await check('Squeeze', { op: 'Squeeze', opset: 13, operands: [operand('x', [2, 1, 4, 1], 6)], consts: [int64Tensor('axes', [-1])] });
  await check('Unsqueeze', { op: 'Unsqueeze', opset: 11, operands: [operand('x', [2, 4], 7)], attrs: [a.ints('axes', [0, 2])] });
  await check('Unsqueeze', { op: 'Unsqueeze', opset: 13, operands: [operand('x', [2, 4], 8)], consts: [int64Tensor('axes', [1])] });
  await check('Identity', { op: 'Identity', opset: 13, operands: [operand('x', [2, 4], 9)] });
  await check('Dropout', { op: 'Dropout', opset: 13, operands: [operand('x', [2, 4], 10)] });
  await check('Cast', { op: 'Cast', opset: 13, operands: [operand('x', [2, 4], 11)], attrs: [a.int('to', 1)] });
});

test('Softmax, LogSoftmax (before opset 13: over the input coerced to 2-D; from 13: one axis)', async () => {
  for (const op of ['Softmax', 'LogSoftmax']) {
    await check(op, { op, opset: 13, operands: [operand('x', [2, 3, 4], 1)], attrs: [a.int('axis', 1)] });
    await check(op, { op, opset: 11, operands: [operand('x', [2, 3, 4], 2)], attrs: [a.int('axis', 1)] });
    await check(op, { op, opset: 11, operands: [operand('x', [2, 5], 3)] });
  }
});

test('ReduceMean, ReduceSum (axes as attribute and as input, keepdims, all axes)', async () => {
  await check('ReduceMean', { op: 'ReduceMean', opset: 13, operands: [operand('x', [2, 3, 4], 1)], attrs: [a.ints('axes', [1, 2]), a.int('keepdims', 0)] });
  await check('ReduceMean', { op: 'ReduceMean', opset: 18, operands: [operand('x', [2, 3, 4], 2)], consts: [int64Tensor('axes', [-1])] });
  await check('ReduceSum', { op: 'ReduceSum', opset: 11, operands: [operand('x', [2, 3, 4], 3)], attrs: [a.int('keepdims', 1)] });
  await check('ReduceSum', { op: 'ReduceSum', opset: 13, operands: [operand('x', [2, 3, 4], 4)], consts: [int64Tensor('axes', [0])], attrs: [a.int('keepdims', 0)] });
});

test('every row of the table is checked by a test above', () => {
  const untested = RULES.map((r) => r.op).filter((op) => !tested.has(op));
  assert.deepEqual(untested, []);
});

test('Conv on wide layers with few positions: dW folded into one Gemm or per image, from a masked convolution\'s pieces or as one product of its kept columns, the batch outermost or innermost; dX by ConvTranspose where the weight outgrows dY', async () => {
  const { FOLD, foldBatch, BATCH_INNER } = await import('../src/formats/onnx/training/rules.js');
  const { IM2COL } = await import('../src/formats/onnx/training/pieces.js');
  // The rule: fold where positions are few against the channels (deep layers of a large model).
  assert.equal(foldBatch(16, 512, 512, 4), true);
  assert.equal(foldBatch(64, 16, 16, 784), false);
  // The batch innermost where the output is narrow (2x2 to 14x14), not at 28 or 56 columns.
  assert.deepEqual([2, 7, 14, 28, 56].map((wo) => BATCH_INNER.rule(wo)), [true, true, true, false, false]);
  const wide: ConvCase[] = [
    { x: [3, 12, 2, 2], w: [12, 12, 3, 3], pads: [1, 1, 1, 1], bias: true },
    { x: [2, 10, 4, 5], w: [12, 10, 3, 3], strides: [2, 2], pads: [1, 1, 1, 1] },
    { x: [2, 9, 5, 5], w: [11, 9, 3, 3], dilations: [2, 2], pads: [2, 1, 2, 1] },
    { x: [2, 3, 6, 6], w: [4, 3, 3, 3], pads: [1, 1, 1, 1] },
  ];
  const rules = [FOLD.rule, IM2COL.rule, BATCH_INNER.rule] as const;
  try {
    for (const [fold, cols, inner] of [[true, false, false], [true, false, true], [false, false, true], [true, true, false], [true, true, true]]) {
      FOLD.rule = () => fold;
      IM2COL.rule = () => cols;
      BATCH_INNER.rule = () => inner;
      for (const [i, c] of wide.entries()) {
        for (const shape of ['111/111/111', '010/111/010', '101/010/101']) {
          const mask = parseMask(shape);
          const w = operand('w', c.w, 700 + i);
          w.values = w.values.map((v, k) => (maskHas(mask, k % 9) ? v : 0));
          const operands = [operand('x', c.x, 710 + i), w];
          if (c.bias) operands.push(operand('b', [c.w[0]], 720 + i));
          const op: OpCase = {
            op: 'Conv', opset: 13, operands,
            attrs: [a.ints('kernel_shape', [3, 3]), a.ints('strides', c.strides ?? [1, 1]), a.ints('dilations', c.dilations ?? [1, 1]), a.ints('pads', c.pads ?? [0, 0, 0, 0])],
          };
          const masks = shape === '111/111/111' ? undefined : new Map([['w', mask]]);
          await check('Conv', op, { masks });
          // Masked, also in the kept layout, as fine-tuning feeds it.
          if (masks) await check('Conv', op, { masks, layout: 'kept' });
          const { forward, graph } = await gradientsOf(op, masks, 'kept');
          await forward.release();
          const nodes = onnxProto.onnx.ModelProto.decode(graph.bytes).graph!.node!;
          const label = `${c.x} ${shape} fold ${fold} columns ${cols} batch inner ${inner}`;
          // The input laid out for a product over the batch, [Ci, H, W, N] with the batch innermost.
          const batchInner = nodes.some((nd) => nd.opType === 'Transpose' && nd.attribute?.find((at) => at.name === 'perm')?.ints?.map(Number).join() === '1,2,3,0');
          assert.equal(batchInner, inner && (fold || (cols && !!masks && !c.strides)), label);
          if (cols && masks && !c.strides) {
            // A masked stride-1 convolution as one product of its kept columns: no Conv at all.
            assert.equal(nodes.filter((nd) => nd.opType === 'Conv' || nd.opType === 'ConvTranspose').length, 0, label);
            continue;
          }
          // Folded: one Gemm for dW (of the whole 3x3 at the kept positions, for pieces too).
          assert.equal(nodes.filter((nd) => nd.opType === 'Gemm').length, fold ? 1 : 0, label);
          // dX: ConvTranspose when the weight has more elements than dY (12x12x9 against 3x12x2x2).
          if (i === 0) assert.ok(nodes.some((nd) => nd.opType === 'ConvTranspose'), label);
        }
      }
    }
  } finally {
    [FOLD.rule, IM2COL.rule, BATCH_INNER.rule] = rules;
  }
});

test('a forward graph with pieces runs batches of any size: the columns form, whose shapes fix the batch, is left to training graphs', async () => {
  const { IM2COL } = await import('../src/formats/onnx/training/pieces.js');
  const { buildForwardGraph } = await import('../src/formats/onnx/training/build.js');
  const { readOnnxModel } = await import('../src/formats/onnx/read.js');
  const { writeFileSync } = await import('node:fs');
  const { floatTensor, valueInfo } = await import('./helpers/onnx-builder.js');
  const { tempDir } = await import('./helpers/tmp.js');
  const ort = await import('onnxruntime-node');
  const path = await import('node:path');
  const mask = parseMask('010/111/010');
  const w = values(12 * 12 * 9, 901).map((v, k) => (maskHas(mask, k % 9) ? v : 0));
  const graph = {
    name: 'g',
    node: [{ name: 'c', opType: 'Conv', input: ['x', 'w'], output: ['y'], attribute: [a.ints('kernel_shape', [3, 3]), a.ints('pads', [1, 1, 1, 1])] }],
    input: [valueInfo('x', ['N', 12, 2, 2])],
    initializer: [floatTensor('w', [12, 12, 3, 3], w)],
    output: [{ name: 'y' }],
  };
  const bytes = onnxProto.onnx.ModelProto.encode({ irVersion: 8, opsetImport: [{ domain: '', version: 13 }], graph }).finish();
  const file = path.join(tempDir('kprune-forward-'), 'wide.onnx');
  writeFileSync(file, bytes);
  const model = await readOnnxModel(file);
  const rule = IM2COL.rule;
  IM2COL.rule = () => true; // the columns form wherever a training graph would take it
  let built;
  try {
    // Shapes probed at a batch of 2, as fine-tuning probes its training batch.
    built = buildForwardGraph(model, ['w'], ['y'], { masks: new Map([['w', mask]]), shapes: new Map([['x', { dims: [2, 12, 2, 2], type: 'float32' }], ['y', { dims: [2, 12, 2, 2], type: 'float32' }]]) });
  } finally {
    IM2COL.rule = rule;
  }
  const forward = await ort.InferenceSession.create(built.bytes);
  const reference = await ort.InferenceSession.create(bytes);
  for (const n of [2, 5]) {
    const x = new ort.Tensor('float32', values(n * 12 * 4, 902 + n), [n, 12, 2, 2]);
    const got = (await forward.run({ [built.data]: x, w: new ort.Tensor('float32', w, [12, 12, 3, 3]) })).y.data as Float32Array;
    const want = (await reference.run({ x })).y.data as Float32Array;
    assert.equal(got.length, want.length, `batch ${n}`);
    for (let i = 0; i < got.length; i++) assert.ok(Math.abs(got[i] - want[i]) <= 1e-5 * (1 + Math.abs(want[i])), `batch ${n} [${i}]: ${got[i]} vs ${want[i]}`);
  }
  await forward.release();
  await reference.release();
});
