/**
 * The ONNX operators the TF.js executor runs: one row each (two where an opset changed the
 * semantics, as Softmax did at 13). A row names its inputs and attributes with their kinds and the
 * opsets they belong to; parameters that moved from attributes to inputs (Clip's min, Squeeze's
 * axes, Slice's starts...) keep one name, so the code reads them the same way in every opset.
 *
 * Layout is not handled here: each row declares its `LayoutClass` and the executor converts (see
 * layout.ts). Rows that map axes use `ctx.axis`.
 */
import type * as TF from '../tf.js';
import { Conv2dSpec, conv2d } from '../conv.js';
import { Value, toPlain } from './layout.js';
import { AttrParam, InputParam, OpContext, OpRow, Params, RunResult } from './table.js';
import type { Tf } from '../backend.js';
import { samePads } from '../../../core/same-pads.js';

/** The newest default-domain opset the rows were checked against. */
export const MAX_OPSET = 22;

// --------------------------------------------------------------------------- row-building helpers

type Range = { since?: number; until?: number };
const tensor = (name: string, o: Range & { optional?: boolean } = {}): InputParam => ({ name, kind: 'tensor', ...o });
const weight = (name: string, o: Range & { optional?: boolean; prepare?: 'conv-filter' } = {}): InputParam => ({ name, kind: 'tensor', weight: true, ...o });
const variadic = (name: string): InputParam => ({ name, kind: 'tensors' });
const intsIn = (name: string, o: Range & { optional?: boolean } = {}): InputParam => ({ name, kind: 'ints', ...o });
const floatIn = (name: string, o: Range & { optional?: boolean } = {}): InputParam => ({ name, kind: 'float', ...o });
const int = (name: string, d?: number, o: Range = {}): AttrParam => ({ name, kind: 'int', default: d, ...o });
const ints = (name: string, d?: number[], o: Range = {}): AttrParam => ({ name, kind: 'ints', default: d, ...o });
const float = (name: string, d?: number, o: Range = {}): AttrParam => ({ name, kind: 'float', default: d, ...o });
const str = (name: string, d?: string, o: Range = {}): AttrParam => ({ name, kind: 'string', default: d, ...o });

function row(op: string, opsets: [number, number], layout: OpRow['layout'], inputs: InputParam[], attrs: AttrParam[], run: OpRow['run'], extra: Partial<OpRow> = {}): OpRow {
  return { op, opsets, layout, inputs, attrs, run, ...extra };
}

function unary(op: string, opsets: [number, number], attrs: AttrParam[], f: (tf: Tf, x: TF.Tensor, p: Params) => TF.Tensor): OpRow {
  return row(op, opsets, 'elementwise', [tensor('X')], attrs, (p, c) => f(c.tf, p.tensor('X'), p));
}

function binary(op: string, f: (tf: Tf, a: TF.Tensor, b: TF.Tensor) => TF.Tensor): OpRow {
  return row(op, [7, MAX_OPSET], 'elementwise', [tensor('A'), tensor('B')], [], (p, c) => f(c.tf, p.tensor('A'), p.tensor('B')));
}

// ------------------------------------------------------------------------------ shared arithmetic

/** [begin, end] pads per spatial axis, in ONNX's [x1_begin, x2_begin, ..., x1_end, ...] order. */
export function resolvePads(ctx: OpContext, p: Params, inSize: number[], k: number[], s: number[], d: number[]): number[] {
  const n = inSize.length;
  const autoPad = p.string('auto_pad');
  switch (autoPad) {
    case 'NOTSET': {
      const pads = p.maybeInts('pads') ?? new Array(2 * n).fill(0);
      if (pads.length !== 2 * n) throw ctx.fail(`pads has ${pads.length} values, expected ${2 * n}`, 'bad-model');
      return pads;
    }
    case 'VALID':
      return new Array(2 * n).fill(0);
    case 'SAME_UPPER':
    case 'SAME_LOWER':
      return samePads(autoPad === 'SAME_UPPER', inSize, k, s, d);
    default:
      throw ctx.fail(`auto_pad "${autoPad}" is not one of NOTSET, SAME_UPPER, SAME_LOWER, VALID`, 'bad-model');
  }
}

function spatial4(ctx: OpContext, x: TF.Tensor, what: string): TF.Tensor4D {
  if (x.rank !== 4) throw ctx.fail(`only 2-D ${what} (4-D input) is supported; this input has rank ${x.rank}`, 'unsupported');
  return x as TF.Tensor4D;
}

function onesOr(p: Params, name: string, n: number): number[] {
  return p.maybeInts(name) ?? new Array(n).fill(1);
}

/** Pool geometry: explicit pads plus the extra end padding ceil_mode needs (ONNX / PyTorch rule). */
function poolPads(ctx: OpContext, p: Params, x: TF.Tensor4D, k: number[], s: number[]): { pads: number[]; extra: number[] } {
  const inSize = [x.shape[1], x.shape[2]];
  const pads = resolvePads(ctx, p, inSize, k, s, [1, 1]);
  const extra = [0, 0];
  if (p.int('ceil_mode') === 1) {
    for (let i = 0; i < 2; i++) {
      const span = inSize[i] + pads[i] + pads[i + 2] - k[i];
      let out = Math.ceil(span / s[i]) + 1;
      // The last window must start inside the input or its begin padding.
      if ((out - 1) * s[i] >= inSize[i] + pads[i]) out--;
      extra[i] = Math.max(0, (out - 1) * s[i] + k[i] - (inSize[i] + pads[i] + pads[i + 2]));
    }
  }
  return { pads, extra };
}

function poolChecks(ctx: OpContext, p: Params): void {
  const d = p.maybeInts('dilations');
  if (d && d.some((v) => v !== 1)) throw ctx.fail('pooling with dilations is not supported', 'unsupported');
}

/** Softmax along one stored axis, differentiable on every backend. */
function softmaxAlong(tf: Tf, x: TF.Tensor, axis: number, log: boolean): TF.Tensor {
  if (axis === x.rank - 1) return log ? tf.logSoftmax(x) : tf.softmax(x);
  const shifted = tf.sub(x, tf.max(x, axis, true));
  if (log) return tf.sub(shifted, tf.log(tf.sum(tf.exp(shifted), axis, true)));
  const e = tf.exp(shifted);
  return tf.div(e, tf.sum(e, axis, true));
}

/** Softmax before opset 13: the input as a 2-D matrix split at `axis`, normalised per row. */
function softmaxCoerced(tf: Tf, x: TF.Tensor, axisAttr: number, log: boolean): TF.Tensor {
  const axis = axisAttr < 0 ? axisAttr + x.rank : axisAttr;
  const rows = x.shape.slice(0, axis).reduce((a, b) => a * b, 1);
  const flat = tf.reshape(x, [rows, x.size / Math.max(rows, 1)]);
  return tf.reshape(log ? tf.logSoftmax(flat) : tf.softmax(flat), x.shape);
}

/**
 * ONNX Slice on stored axes: clamping per the spec (negative starts and ends count from the end;
 * negative steps walk backwards), computed as reverse + strided slice.
 */
function sliceAxes(tf: Tf, x: TF.Tensor, parts: { axis: number; start: number; end: number; step: number }[]): TF.Tensor {
  const begin = new Array(x.rank).fill(0);
  const end = [...x.shape];
  const strides = new Array(x.rank).fill(1);
  const reversed: number[] = [];
  for (const { axis, start, end: e0, step } of parts) {
    if (step === 0) throw new Error('Slice step 0');
    const n = x.shape[axis];
    let s = start < 0 ? start + n : start;
    let e = e0 < 0 ? e0 + n : e0;
    let count: number;
    if (step > 0) {
      s = Math.min(Math.max(s, 0), n);
      e = Math.min(Math.max(e, 0), n);
      count = Math.max(0, Math.ceil((e - s) / step));
      begin[axis] = s;
    } else {
      s = Math.min(Math.max(s, 0), n - 1);
      e = Math.min(Math.max(e, -1), n - 1);
      count = Math.max(0, Math.ceil((e - s) / step));
      reversed.push(axis);
      begin[axis] = n - 1 - s;
    }
    strides[axis] = Math.abs(step);
    end[axis] = count === 0 ? begin[axis] : begin[axis] + (count - 1) * Math.abs(step) + 1;
  }
  const src = reversed.length > 0 ? tf.reverse(x, reversed) : x;
  if (parts.some((q) => end[q.axis] === begin[q.axis])) {
    return tf.slice(src, begin, x.shape.map((d, i) => (parts.some((q) => q.axis === i) ? end[i] - begin[i] : d)));
  }
  return tf.stridedSlice(src, begin, end, strides);
}

function normAxis(a: number, rank: number): number {
  return a < 0 ? a + rank : a;
}

/** Pad with the `edge` or `wrap` rule along one axis: a gather with clamped or wrapped indices. */
function gatherPad(tf: Tf, x: TF.Tensor, axis: number, before: number, after: number, mode: 'edge' | 'wrap'): TF.Tensor {
  const n = x.shape[axis];
  const idx = Int32Array.from({ length: n + before + after }, (_, i) => {
    const j = i - before;
    return mode === 'edge' ? Math.min(Math.max(j, 0), n - 1) : ((j % n) + n) % n;
  });
  return tf.gather(x, tf.tensor1d(idx, 'int32'), axis);
}

function castType(ctx: OpContext, to: number): 'float32' | 'int32' | 'bool' {
  if ([1, 10, 11, 16].includes(to)) return 'float32';
  if ([2, 3, 4, 5, 6, 7, 12, 13].includes(to)) return 'int32';
  if (to === 9) return 'bool';
  throw ctx.fail(`Cast to element type ${to} is not supported`, 'unsupported');
}

const plainValue = (t: TF.Tensor): Value => ({ t, layout: 'plain' });

// ------------------------------------------------------------------------------------ the table

export const OPS: readonly OpRow[] = [
  row('Conv', [1, MAX_OPSET], 'channels-last',
    [tensor('X'), weight('W', { prepare: 'conv-filter' }), weight('B', { optional: true })],
    [str('auto_pad', 'NOTSET'), ints('dilations'), int('group', 1), ints('kernel_shape'), ints('pads'), ints('strides')],
    (p, ctx) => {
      const x = spatial4(ctx, p.tensor('X'), 'convolution');
      const w = p.tensor('W') as TF.Tensor4D;
      const k = [w.shape[0], w.shape[1]];
      const ks = p.maybeInts('kernel_shape');
      if (ks && (ks.length !== 2 || ks[0] !== k[0] || ks[1] !== k[1])) throw ctx.fail(`kernel_shape [${ks.join(', ')}] does not match the weight`, 'bad-model');
      const s = onesOr(p, 'strides', 2);
      const d = onesOr(p, 'dilations', 2);
      const pads = resolvePads(ctx, p, [x.shape[1], x.shape[2]], k, s, d);
      const group = p.int('group');
      if (x.shape[3] !== w.shape[2] * group) throw ctx.fail(`input has ${x.shape[3]} channels, the weight expects ${w.shape[2] * group}`, 'bad-model');
      const spec: Conv2dSpec = { strides: [s[0], s[1]], dilations: [d[0], d[1]], pads: [pads[0], pads[1], pads[2], pads[3]], group };
      return conv2d(ctx.tf, x, w, spec, { x: ctx.needsGrad('X'), w: ctx.needsGrad('W') }, ctx.gradients, p.maybeTensor('B'));
    }),

  row('BatchNormalization', [6, MAX_OPSET], 'channels-last',
    [tensor('X'), weight('scale'), weight('B'), weight('input_mean'), weight('input_var')],
    [float('epsilon', 1e-5), float('momentum', 0.9), int('training_mode', 0, { since: 14 }), int('spatial', 1, { until: 8 }), int('is_test', 0, { until: 6 })],
    (p, ctx) => {
      const { tf } = ctx;
      if (p.has('training_mode') && p.int('training_mode') === 1) throw ctx.fail('training-mode BatchNormalization is not supported (statistics stay frozen)', 'unsupported');
      const scale = p.tensor('scale');
      if (scale.rank !== 1) throw ctx.fail('non-spatial BatchNormalization (per-position statistics) is not supported', 'unsupported');
      // Statistics stay frozen: y = x * a + b with a = scale / sqrt(var + eps), b = B - mean * a.
      const a = tf.div(scale, tf.sqrt(tf.add(p.tensor('input_var'), p.float('epsilon'))));
      const b = tf.sub(p.tensor('B'), tf.mul(p.tensor('input_mean'), a));
      return tf.add(tf.mul(p.tensor('X'), a), b);
    }),

  unary('Relu', [1, MAX_OPSET], [], (tf, x) => tf.relu(x)),
  unary('LeakyRelu', [1, MAX_OPSET], [float('alpha', 0.01)], (tf, x, p) => tf.leakyRelu(x, p.float('alpha'))),
  unary('Sigmoid', [1, MAX_OPSET], [], (tf, x) => tf.sigmoid(x)),
  unary('Tanh', [1, MAX_OPSET], [], (tf, x) => tf.tanh(x)),
  unary('HardSigmoid', [1, MAX_OPSET], [float('alpha', 0.2), float('beta', 0.5)], (tf, x, p) => tf.clipByValue(tf.add(tf.mul(x, p.float('alpha')), p.float('beta')), 0, 1)),
  unary('HardSwish', [14, MAX_OPSET], [], (tf, x) => tf.mul(x, tf.clipByValue(tf.add(tf.div(x, 6), 0.5), 0, 1))),
  unary('Identity', [1, MAX_OPSET], [], (_tf, x) => x),
  row('Cast', [6, MAX_OPSET], 'elementwise', [tensor('input')], [int('to'), int('saturate', 1, { since: 19 })],
    (p, ctx) => ctx.tf.cast(p.tensor('input'), castType(ctx, p.int('to')))),

  row('Clip', [6, MAX_OPSET], 'elementwise',
    [tensor('X'), floatIn('min', { optional: true, since: 11 }), floatIn('max', { optional: true, since: 11 })],
    [float('min', -Infinity, { until: 10 }), float('max', Infinity, { until: 10 })],
    (p, { tf }) => {
      const x = p.tensor('X');
      const lo = p.maybeNumbers('min')?.[0] ?? -Infinity;
      const hi = p.maybeNumbers('max')?.[0] ?? Infinity;
      if (Number.isFinite(lo) && Number.isFinite(hi)) return tf.clipByValue(x, lo, hi);
      const l = Number.isFinite(lo) ? tf.maximum(x, lo) : x;
      return Number.isFinite(hi) ? tf.minimum(l, hi) : l;
    }),

  row('Dropout', [1, MAX_OPSET], 'elementwise',
    [tensor('data'), floatIn('ratio', { optional: true, since: 12 }), intsIn('training_mode', { optional: true, since: 12 })],
    [float('ratio', 0.5, { until: 11 }), int('is_test', 0, { until: 6 })],
    // Inference: the identity (and an all-true mask when the graph asks for it).
    (p, { tf }) => {
      const x = p.tensor('data');
      return [x, tf.cast(tf.onesLike(x), 'bool')];
    }, { outputs: 2 }),

  binary('Add', (tf, a, b) => tf.add(a, b)),
  binary('Sub', (tf, a, b) => tf.sub(a, b)),
  binary('Mul', (tf, a, b) => tf.mul(a, b)),
  // Integer division truncates in ONNX; shape arithmetic divides non-negative numbers, where floor agrees.
  binary('Div', (tf, a, b) => (a.dtype === 'int32' && b.dtype === 'int32' ? tf.floorDiv(a, b) : tf.div(a, b))),

  row('MaxPool', [1, MAX_OPSET], 'channels-last',
    [tensor('X')],
    [str('auto_pad', 'NOTSET'), int('ceil_mode', 0), ints('dilations'), ints('kernel_shape'), ints('pads'), int('storage_order', 0), ints('strides')],
    (p, ctx) => {
      poolChecks(ctx, p);
      const x = spatial4(ctx, p.tensor('X'), 'pooling');
      const k = p.ints('kernel_shape');
      const s = onesOr(p, 'strides', 2);
      const { pads, extra } = poolPads(ctx, p, x, k, s);
      // TF.js pools skip padded positions: exactly ONNX's max over the valid ones.
      return ctx.tf.maxPool(x, [k[0], k[1]], [s[0], s[1]], [[0, 0], [pads[0], pads[2] + extra[0]], [pads[1], pads[3] + extra[1]], [0, 0]]);
    }),

  row('AveragePool', [1, MAX_OPSET], 'channels-last',
    [tensor('X')],
    [str('auto_pad', 'NOTSET'), int('ceil_mode', 0), int('count_include_pad', 0), ints('dilations'), ints('kernel_shape'), ints('pads'), ints('strides')],
    (p, ctx) => {
      poolChecks(ctx, p);
      const { tf } = ctx;
      let x = spatial4(ctx, p.tensor('X'), 'pooling');
      const k = p.ints('kernel_shape');
      const s = onesOr(p, 'strides', 2);
      const { pads, extra } = poolPads(ctx, p, x, k, s);
      // TF.js averages over valid positions only (count_include_pad 0). To count the explicit pads,
      // pad with zeros first; the ceil_mode overhang stays uncounted either way, as in onnxruntime.
      if (p.int('count_include_pad') === 1 && pads.some((v) => v > 0)) {
        x = tf.pad(x, [[0, 0], [pads[0], pads[2]], [pads[1], pads[3]], [0, 0]]);
        return tf.avgPool(x, [k[0], k[1]], [s[0], s[1]], [[0, 0], [0, extra[0]], [0, extra[1]], [0, 0]]);
      }
      return tf.avgPool(x, [k[0], k[1]], [s[0], s[1]], [[0, 0], [pads[0], pads[2] + extra[0]], [pads[1], pads[3] + extra[1]], [0, 0]]);
    }),

  row('GlobalAveragePool', [1, MAX_OPSET], 'channels-last', [tensor('X')], [],
    (p, { tf }) => {
      const x = p.tensor('X');
      return tf.mean(x, Array.from({ length: x.rank - 2 }, (_, i) => i + 1), true);
    }),

  row('GlobalMaxPool', [1, MAX_OPSET], 'channels-last', [tensor('X')], [],
    (p, { tf }) => {
      const x = p.tensor('X');
      return tf.max(x, Array.from({ length: x.rank - 2 }, (_, i) => i + 1), true);
    }),

  row('Flatten', [1, MAX_OPSET], 'plain', [tensor('input')], [int('axis', 1)],
    (p, { tf }) => {
      const x = p.tensor('input');
      const axis = normAxis(p.int('axis'), x.rank);
      const rows = x.shape.slice(0, axis).reduce((a, b) => a * b, 1);
      return tf.reshape(x, [rows, rows === 0 ? 0 : x.size / rows]);
    }),

  row('Reshape', [5, MAX_OPSET], 'plain', [tensor('data'), intsIn('shape')], [int('allowzero', 0, { since: 14 })],
    (p, ctx) => {
      const x = p.tensor('data');
      const allowZero = p.has('allowzero') && p.int('allowzero') === 1;
      const shape = p.ints('shape').map((d, i) => (d === 0 && !allowZero ? x.shape[i] : d));
      if (shape.filter((d) => d === -1).length > 1) throw ctx.fail('Reshape with more than one -1', 'bad-model');
      return ctx.tf.reshape(x, shape);
    }),

  row('Gemm', [7, MAX_OPSET], 'plain', [tensor('A'), tensor('B'), tensor('C', { optional: true })],
    [float('alpha', 1), float('beta', 1), int('transA', 0), int('transB', 0)],
    (p, { tf }) => {
      let y: TF.Tensor = tf.matMul(p.tensor('A') as TF.Tensor2D, p.tensor('B') as TF.Tensor2D, p.int('transA') === 1, p.int('transB') === 1);
      if (p.float('alpha') !== 1) y = tf.mul(y, p.float('alpha'));
      const c = p.maybeTensor('C');
      if (c) y = tf.add(y, p.float('beta') === 1 ? c : tf.mul(c, p.float('beta')));
      return y;
    }),

  row('MatMul', [1, MAX_OPSET], 'plain', [tensor('A'), tensor('B')], [],
    (p, { tf }) => {
      // numpy semantics: 1-D operands are promoted to matrices, then the added axis removed.
      let a = p.tensor('A');
      let b = p.tensor('B');
      const va = a.rank === 1;
      const vb = b.rank === 1;
      if (va) a = tf.expandDims(a, 0);
      if (vb) b = tf.expandDims(b, 1);
      let y: TF.Tensor = tf.matMul(a, b);
      if (va) y = tf.squeeze(y, [y.rank - 2]);
      if (vb) y = tf.squeeze(y, [y.rank - 1]);
      return y;
    }),

  row('Concat', [4, MAX_OPSET], 'axis', [variadic('inputs')], [int('axis')],
    (p, ctx) => ctx.tf.concat(p.tensors('inputs'), ctx.axis(p.int('axis')))),

  row('Transpose', [1, MAX_OPSET], 'plain', [tensor('data')], [ints('perm')],
    (p, { tf }) => {
      const x = p.tensor('data');
      return tf.transpose(x, p.maybeInts('perm') ?? x.shape.map((_, i) => x.rank - 1 - i));
    }),

  row('Pad', [2, MAX_OPSET], 'axis',
    [tensor('data'), intsIn('pads', { since: 11 }), floatIn('constant_value', { optional: true, since: 11 }), intsIn('axes', { optional: true, since: 18 })],
    [str('mode', 'constant'), ints('pads', undefined, { until: 10 }), float('value', 0, { until: 10 })],
    (p, ctx) => {
      const { tf } = ctx;
      let x = p.tensor('data');
      const axes = (p.maybeInts('axes') ?? Array.from({ length: x.rank }, (_, i) => i)).map((a) => normAxis(a, x.rank));
      const pads = p.ints('pads');
      if (pads.length !== 2 * axes.length) throw ctx.fail(`pads has ${pads.length} values for ${axes.length} axes`, 'bad-model');
      const before = new Array(x.rank).fill(0);
      const after = new Array(x.rank).fill(0);
      axes.forEach((a, i) => {
        before[ctx.axis(a)] = pads[i];
        after[ctx.axis(a)] = pads[i + axes.length];
      });
      // Negative pads crop.
      if (before.some((v) => v < 0) || after.some((v) => v < 0)) {
        x = tf.slice(x, before.map((v) => Math.max(0, -v)), x.shape.map((d, i) => d - Math.max(0, -before[i]) - Math.max(0, -after[i])));
      }
      const pb = before.map((v) => Math.max(0, v));
      const pa = after.map((v) => Math.max(0, v));
      const mode = p.string('mode');
      const value = p.maybeNumbers('constant_value')?.[0] ?? (p.has('value') ? p.float('value') : 0);
      switch (mode) {
        case 'constant': return tf.pad(x, pb.map((b, i) => [b, pa[i]] as [number, number]), value);
        case 'reflect': return tf.mirrorPad(x, pb.map((b, i) => [b, pa[i]] as [number, number]), 'reflect');
        case 'edge':
        case 'wrap':
          for (let i = 0; i < x.rank; i++) if (pb[i] || pa[i]) x = gatherPad(tf, x, i, pb[i], pa[i], mode);
          return x;
        default: throw ctx.fail(`Pad mode "${mode}" is not supported`, 'unsupported');
      }
    }),

  row('Squeeze', [1, MAX_OPSET], 'plain', [tensor('data'), intsIn('axes', { optional: true, since: 13 })], [ints('axes', undefined, { until: 12 })],
    (p, { tf }) => {
      const x = p.tensor('data');
      const axes = p.maybeInts('axes');
      return tf.reshape(x, x.shape.filter((d, i) => (axes ? !axes.map((a) => normAxis(a, x.rank)).includes(i) : d !== 1)));
    }),

  row('Unsqueeze', [1, MAX_OPSET], 'plain', [tensor('data'), intsIn('axes', { since: 13 })], [ints('axes', undefined, { until: 12 })],
    (p, { tf }) => {
      const x = p.tensor('data');
      const rank = x.rank + p.ints('axes').length;
      const axes = new Set(p.ints('axes').map((a) => normAxis(a, rank)));
      const dims: number[] = [];
      let j = 0;
      for (let i = 0; i < rank; i++) dims.push(axes.has(i) ? 1 : x.shape[j++]);
      return tf.reshape(x, dims);
    }),

  row('Shape', [1, MAX_OPSET], 'shape', [tensor('data')], [int('start', 0, { since: 15 }), int('end', undefined, { since: 15 })],
    (p, ctx): Value[] => {
      const dims = ctx.dims('data');
      const r = dims.length;
      const clamp = (v: number) => Math.min(Math.max(v < 0 ? v + r : v, 0), r);
      const start = clamp(p.has('start') ? p.int('start') : 0);
      const end = clamp(p.has('end') ? p.int('end') : r);
      const host = Int32Array.from(dims.slice(start, end));
      return [{ t: ctx.tf.tensor1d(host, 'int32'), layout: 'plain', host }];
    }),

  row('Gather', [1, MAX_OPSET], 'plain', [tensor('data'), tensor('indices')], [int('axis', 0)],
    (p, ctx) => {
      const { tf } = ctx;
      const x = p.tensor('data');
      const axis = normAxis(p.int('axis'), x.rank);
      const n = x.shape[axis];
      const v = p.value('indices')!;
      // Negative indices count from the end.
      const idx = v.host
        ? tf.tensor(Int32Array.from(v.host, (i) => (i < 0 ? i + n : i)), v.t.shape, 'int32')
        : tf.where(tf.less(v.t, tf.scalar(0, 'int32')), tf.add(v.t, tf.scalar(n, 'int32')), v.t);
      return tf.gather(x, tf.cast(idx, 'int32'), axis);
    }),

  row('Slice', [1, MAX_OPSET], 'axis',
    [tensor('data'), intsIn('starts', { since: 10 }), intsIn('ends', { since: 10 }), intsIn('axes', { optional: true, since: 10 }), intsIn('steps', { optional: true, since: 10 })],
    [ints('starts', undefined, { until: 9 }), ints('ends', undefined, { until: 9 }), ints('axes', undefined, { until: 9 })],
    (p, ctx) => {
      const x = p.tensor('data');
      const starts = p.ints('starts');
      const ends = p.ints('ends');
      const axes = p.maybeInts('axes') ?? starts.map((_, i) => i);
      const steps = p.maybeInts('steps') ?? starts.map(() => 1);
      if (steps.some((s) => s === 0)) throw ctx.fail('Slice step 0', 'bad-model');
      return sliceAxes(ctx.tf, x, axes.map((a, i) => ({ axis: ctx.axis(a), start: starts[i], end: ends[i], step: steps[i] })));
    }),

  row('ReduceMean', [1, MAX_OPSET], 'axis',
    [tensor('data'), intsIn('axes', { optional: true, since: 18 })],
    [ints('axes', undefined, { until: 17 }), int('keepdims', 1), int('noop_with_empty_axes', 0, { since: 18 })],
    (p, ctx): RunResult => {
      const { tf } = ctx;
      const x = p.tensor('data');
      let axes = p.maybeInts('axes') ?? [];
      if (axes.length === 0) {
        if (p.has('noop_with_empty_axes') && p.int('noop_with_empty_axes') === 1) return x;
        axes = x.shape.map((_, i) => i);
      }
      const logicalAxes = axes.map((a) => normAxis(a, x.rank));
      const kept = tf.mean(x, logicalAxes.map((a) => ctx.axis(a)), true);
      if (p.int('keepdims') === 1) return kept;
      // Reduced axes are 1 now: back to ONNX order (a reshape), then drop them.
      const plain = toPlain(tf, { t: kept, layout: ctx.layout });
      return [plainValue(tf.reshape(plain, plain.shape.filter((_, i) => !logicalAxes.includes(i))))];
    }),

  row('Softmax', [1, 12], 'plain', [tensor('input')], [int('axis', 1)], (p, ctx) => softmaxCoerced(ctx.tf, p.tensor('input'), p.int('axis'), false)),
  row('Softmax', [13, MAX_OPSET], 'axis', [tensor('input')], [int('axis', -1)], (p, ctx) => softmaxAlong(ctx.tf, p.tensor('input'), ctx.axis(p.int('axis')), false)),
  row('LogSoftmax', [1, 12], 'plain', [tensor('input')], [int('axis', 1)], (p, ctx) => softmaxCoerced(ctx.tf, p.tensor('input'), p.int('axis'), true)),
  row('LogSoftmax', [13, MAX_OPSET], 'axis', [tensor('input')], [int('axis', -1)], (p, ctx) => softmaxAlong(ctx.tf, p.tensor('input'), ctx.axis(p.int('axis')), true)),

  // Constant nodes are read once with the weights (formats/onnx/decode-graph.ts: value, value_float(s), value_int(s)).
  row('Constant', [1, MAX_OPSET], 'plain', [], [],
    (_p, ctx) => { throw ctx.fail('Constant nodes are evaluated when the weights are loaded'); },
    { constant: true }),
];

export function findRow(op: string, opset: number): OpRow | undefined {
  return OPS.find((r) => r.op === op && opset >= r.opsets[0] && opset <= r.opsets[1]);
}
