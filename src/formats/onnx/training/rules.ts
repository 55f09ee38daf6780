/**
 * The backward rules: one row per ONNX operator, each writing the gradient of its inputs in plain
 * default-domain operators (onnxruntime-node has no training build, so onnxruntime's own contrib
 * gradient kernels - ConvGrad, MaxPoolGrad, ReluGrad... - are not there). The maths follows
 * onnxruntime's gradient builders (orttraining/core/graph/gradient_builder.cc), with static dims:
 *
 * - Conv: dX = ConvTranspose(dY, W) with the forward's strides, dilations, group and pads; dW is a
 *   Conv of X against dY with batch and channels swapped (X as [Cin/g, g*N, H, W], dY as the
 *   weight [Cout, N, Ho, Wo]), strides and dilations exchanged, the forward's pads.
 * - MaxPool: the forward node also returns its Indices; dX = ScatterElements of dY into zeros.
 * - AveragePool: ConvTranspose of dY / (window count) with a depthwise filter of ones.
 * - Broadcasting elementwise operators: the operand's gradient summed over its broadcast axes.
 *
 * Each row is checked against finite differences on a one-operator graph (test/ort-training-rules).
 */
import { GradContext, GradRule, normAxis, product, refuse, resolvePads, sameDims, transposePads, unbroadcast } from './context.js';
import { attr } from './emit.js';
import type { Emitter } from './emit.js';

/** Rows for operators whose gradient is the output gradient reshaped to the input's dims. */
function passThrough(op: string, check?: (c: GradContext) => void): GradRule {
  return {
    op,
    grad(c) {
      check?.(c);
      const dy = c.dy(0);
      if (!dy || !c.needs(0)) return;
      const x = c.dims(c.input(0));
      c.give(0, sameDims(x, c.dims(c.output(0))) ? dy : c.e.reshape(dy, x));
    },
  };
}

/** Rows for elementwise operators of one input: dX = dY * f'(X, Y). */
function unary(op: string, derivative: (c: GradContext, dy: string) => string): GradRule {
  return {
    op,
    grad(c) {
      const dy = c.dy(0);
      if (dy && c.needs(0)) c.give(0, derivative(c, dy));
    },
  };
}

/** Spatial attributes of a 2-D convolution or pool, with defaults and static dims. */
function window(c: GradContext, kernel: number[]) {
  const xDims = c.dims(c.input(0));
  const yDims = c.dims(c.output(0));
  if (xDims.length !== 4) refuse(`only 2-D (4-D tensor) ${c.node.opType} has a backward rule; this one has rank ${xDims.length}`);
  const inSize = xDims.slice(2);
  const outSize = yDims.slice(2);
  const strides = c.attrs.ints('strides', [1, 1]);
  const dilations = c.attrs.ints('dilations', [1, 1]);
  const pads = resolvePads(c.attrs, inSize, kernel, strides, dilations);
  return { xDims, yDims, inSize, outSize, strides, dilations, pads };
}

const conv: GradRule = {
  op: 'Conv',
  grad(c) {
    const dy = c.dy(0);
    if (!dy) return;
    const wDims = c.dims(c.input(1));
    const [co, , kh, kw] = wDims;
    const { xDims, inSize, outSize, strides, dilations, pads } = window(c, [wDims[2], wDims[3]]);
    const group = c.attrs.int('group', 1);
    const e = c.e;
    const flippedPads = [0, 1].map((i) => dilations[i] * ((i === 0 ? kh : kw) - 1) - pads[i]).concat([0, 1].map((i) => dilations[i] * ((i === 0 ? kh : kw) - 1) - pads[i + 2]));
    // Where the weight is larger than dY (deep layers of a large model: 512 channels at 2x2), its
    // flipped and swapped copy costs more than the convolution: ConvTranspose reads it as it is.
    const smallWeight = product(wDims) <= product(c.dims(c.output(0)));
    if (c.needs(0) && smallWeight && strides.every((v) => v === 1) && flippedPads.every((v) => v >= 0)) {
      // Stride 1: dX is a plain convolution of dY with the filter flipped and its channel axes
      // swapped (per group), a little faster in onnxruntime than ConvTranspose (measured on the
      // bundled ResNet: 3-5% of the step).
      const co2 = wDims[0];
      const cpg2 = wDims[1];
      const opg2 = co2 / group;
      const swapped = group === 1
        ? e.transpose(c.input(1), [1, 0, 2, 3])
        : e.reshape(e.transpose(e.reshape(c.input(1), [group, opg2, cpg2, kh, kw]), [0, 2, 1, 3, 4]), [group * cpg2, opg2, kh, kw]);
      const flipped = e.op1('Slice', [swapped, e.ints([-1, -1]), e.ints([-(2 ** 62), -(2 ** 62)]), e.ints([2, 3]), e.ints([-1, -1])], [], 'flip');
      c.give(0, e.op1('Conv', [dy, flipped], [
        attr.int('group', group), attr.ints('kernel_shape', [kh, kw]), attr.ints('strides', [1, 1]),
        attr.ints('dilations', dilations), attr.ints('pads', flippedPads),
      ], 'dX'));
    } else if (c.needs(0)) {
      const t = transposePads(inSize, outSize, [kh, kw], strides, dilations, pads);
      c.give(0, e.op1('ConvTranspose', [dy, c.input(1)], [
        attr.int('group', group), attr.ints('kernel_shape', [kh, kw]), attr.ints('strides', strides),
        attr.ints('dilations', dilations), attr.ints('pads', t.pads),
        ...(t.outputPadding.some((p) => p !== 0) ? [attr.ints('output_padding', t.outputPadding)] : []),
      ], 'dX'));
    }
    if (c.needs(1) && !e.pieceWeight(c.input(1))) {
      c.give(1, filterGrad(e, c.input(0), dy, { xDims, outSize, strides, dilations, pads, group, kh, kw, co }, e.tapHint(c.input(1))));
    }
    if (c.inputCount > 2 && c.input(2) && c.needs(2)) {
      c.give(2, e.reduceSum(dy, [0, 2, 3], false));
    }
  },
};

interface ConvGeometry {
  xDims: number[];
  outSize: number[];
  strides: number[];
  dilations: number[];
  pads: number[];
  group: number;
  kh: number;
  kw: number;
  co: number;
}

/**
 * dW one kernel position (tap) at a time: the strided, dilated view of the padded input that the
 * tap sees, [N, g, Cin/g, Ho*Wo], times dY [N, g, Ho*Wo, Cout/g], summed over the batch. Measured
 * on the bundled ResNet against a Conv with dY as its weight (onnxruntime's im2col over a kernel of
 * Ho x Wo: twice as slow), explicit columns (Slice + Concat: slower by the copy), and im2col by a
 * convolution with one-hot filters (no faster): the per-tap products are as fast as any and need
 * no copy of the input beyond the tap's view.
 *
 * `taps`: only these positions are computed, in this order; the result is the whole kernel with
 * zeros elsewhere, or with `kept` the kept positions alone, [Cout, Cin/g, taps] in the order given
 * (a weight fed in the kept layout, pieces.ts).
 */
function filterGrad(e: Emitter, x: string, dy: string, g: ConvGeometry, taps: number[] | undefined, kept = false): string {
  const [n, ci] = g.xDims;
  const cpg = ci / g.group;
  const opg = g.co / g.group;
  const p = g.outSize[0] * g.outSize[1];
  // One padded copy of the input serves every convolution reading it with pads no larger (the
  // pieces of one masked convolution pad differently): onnxruntime's Pad is slow, a copy per piece
  // cost a tenth of a step.
  const canonical = e.padHint(x);
  const base = canonical && canonical.every((v, i) => v >= g.pads[i]) ? canonical : g.pads;
  const shift = [base[0] - g.pads[0], base[1] - g.pads[1]];
  // Made on first use (e.padded keeps one per input and pads): a tap list of only the whole input needs none.
  const padded = () => (base.some((v) => v !== 0) ? e.padded(x, base) : x);
  const depthwise = cpg === 1 && opg === 1;
  if (!depthwise && g.group === 1 && foldBatch(n, cpg, opg, p)) return filterGradFolded(e, x, dy, g, base, shift, taps, kept);
  const dyT = depthwise ? undefined : e.transpose(e.reshape(dy, [n, g.group, opg, p]), [0, 1, 3, 2]); // [N, g, P, opg]
  const dyFlat = depthwise ? e.reshape(dy, [n, ci, p]) : undefined;
  const perTap: string[] = [];
  for (const t of taps ?? Array.from({ length: g.kh * g.kw }, (_, i) => i)) {
    const [ky, kx] = [Math.floor(t / g.kw), t % g.kw];
    const starts = [shift[0] + ky * g.dilations[0], shift[1] + kx * g.dilations[1]];
    const ends = [starts[0] + (g.outSize[0] - 1) * g.strides[0] + 1, starts[1] + (g.outSize[1] - 1) * g.strides[1] + 1];
    // The tap that sees the unpadded input itself (a 3x3's centre at stride 1 with 'same' pads)
    // reads it directly: a Slice is a copy in onnxruntime.
    const whole = g.strides.every((s) => s === 1) && starts[0] === base[0] && starts[1] === base[1]
      && g.outSize[0] === g.xDims[2] && g.outSize[1] === g.xDims[3];
    const view = whole ? x : e.op1('Slice', [padded(), e.ints(starts), e.ints(ends), e.ints([2, 3]), e.ints(g.strides)], [], 'tap');
    // Depthwise: an elementwise product summed over positions, then over the batch (two
    // ReduceSums: onnxruntime sums the contiguous axis faster alone, 0.78-0.88x the time of one
    // over both in bench/micro-dw.ts); else
    // [N, g, cpg, P] x [N, g, P, opg] -> [N, g, cpg, opg], summed over N.
    const r = cpg === 1 && opg === 1
      ? e.reduceSum(e.reduceSum(e.mul(e.reshape(view, [n, ci, p]), dyFlat!), [2], false), [0], false)
      : e.reduceSum(e.op1('MatMul', [e.reshape(view, [n, g.group, cpg, p]), dyT!], [], 'dWtap'), [0], false);
    perTap.push(e.reshape(r, [1, g.group, cpg, opg]));
  }
  const all = perTap.length === 1 ? perTap[0] : e.op1('Concat', perTap, [attr.int('axis', 0)], 'taps'); // [taps, g, cpg, opg]
  const byWeight = e.transpose(all, [1, 3, 2, 0]); // [g, opg, cpg, taps]: the weight's order
  if (!taps) return e.reshape(byWeight, [g.co, cpg, g.kh, g.kw]);
  const k = perTap.length;
  if (kept) return e.reshape(byWeight, [g.co, cpg, k]);
  // Only the kept taps were computed: a one-hot [k, kh*kw] product puts them in place, zeros elsewhere.
  const place = new Float32Array(k * g.kh * g.kw);
  taps.forEach((t, j) => { place[j * g.kh * g.kw + t] = 1; });
  const atTaps = e.reshape(byWeight, [g.co * cpg, k]);
  return e.reshape(e.op1('MatMul', [atTaps, e.floats(place, [k, g.kh * g.kw])], [], 'dWplace'), [g.co, cpg, g.kh, g.kw]);
}

/**
 * When dW is computed with the batch folded into the product (one GEMM per tap, K = N*Ho*Wo)
 * rather than one product per image summed over the batch (K = Ho*Wo, N times the result written
 * and read again). Folding costs a transpose of the input and of dY per layer; the per-image form
 * wastes most where Ho*Wo is small against the channels (a deep layer of a large model: 2x2 or 7x7
 * positions, 256-512 channels), where its products have a tiny K. Measured with
 * bench/micro-dw-fold.ts (one thread, batch 16 and 64, 8-512 channels, 2x2 to 56x56).
 */
export function foldBatch(n: number, cpg: number, opg: number, p: number): boolean {
  return FOLD.rule(n, cpg, opg, p);
}

/**
 * Where an input laid out for a product over the batch puts the batch innermost, [Ci, H, W, N],
 * rather than [Ci, N, H, W]: a tap's view is then runs of Wo*N values instead of Wo, and
 * onnxruntime's Slice and Pad (and the Pads and Slices that differentiate them) cost per run; the
 * transpose that makes it reads with a stride. By output width Wo: bench/ab-deep.ts, ResNet-18,
 * batch 16, the whole training step against [Ci, N, H, W] everywhere, two threads: at 56x56 input
 * (every 3x3 output 14 wide or less) 0.81x, one thread 0.82x; at 112x112 0.92-0.94x with the
 * batch innermost up to 7, 14 or 28 columns; at 224x224 0.98x up to 14, 1.03-1.06x up to 7, 28 or
 * everywhere (noise about 5%); the bundled models (28x28, one thread, bench/ab-step.ts) 0.93-1.00x.
 */
export const BATCH_INNER = { rule: (wo: number): boolean => wo <= 14 };

/** The rule foldBatch applies (a bench swaps it to time both forms on one graph). */
export const FOLD = { rule: (_n: number, cpg: number, opg: number, p: number): boolean => p <= 8 * Math.min(cpg, opg) };

/**
 * dW with the batch folded into the product, group 1: the input as [Ci, N, H, W], or [Ci, H, W, N]
 * where the output is narrow (BATCH_INNER) (one transpose, padded once, shared by every
 * convolution reading it), the kept taps' views of it stacked as [Ci, taps, N*Ho*Wo] (one Concat
 * of contiguous rows), dY as [Co, N*Ho*Wo] in the same order; one Gemm(dY, views,
 * transB) gives [Co, Ci, taps], the weight's own order (per-tap Gemms, [taps, Co, Ci], needed a
 * transpose the size of the weight, which cost as much as the products at 512 channels, 2x2).
 */
function filterGradFolded(e: Emitter, x: string, dy: string, g: ConvGeometry, base: number[], shift: number[], taps: number[] | undefined, kept: boolean): string {
  const [n, ci, h, w] = g.xDims;
  const np = n * g.outSize[0] * g.outSize[1];
  const inner = BATCH_INNER.rule(g.outSize[1]);
  const xT = e.transposedOnce(x, inner ? [1, 2, 3, 0] : [1, 0, 2, 3]); // [Ci, H, W, N] or [Ci, N, H, W]
  const spatial: [number, number] = inner ? [1, 2] : [2, 3];
  const padded = () => (base.some((v) => v !== 0) ? e.padded(xT, base, spatial) : xT);
  const dyT = e.reshape(e.transpose(dy, inner ? [1, 2, 3, 0] : [1, 0, 2, 3]), [g.co, np]); // [Co, Ho*Wo*N] (dY's order as x's)
  const views: string[] = [];
  for (const t of taps ?? Array.from({ length: g.kh * g.kw }, (_, i) => i)) {
    const [ky, kx] = [Math.floor(t / g.kw), t % g.kw];
    const starts = [shift[0] + ky * g.dilations[0], shift[1] + kx * g.dilations[1]];
    const ends = [starts[0] + (g.outSize[0] - 1) * g.strides[0] + 1, starts[1] + (g.outSize[1] - 1) * g.strides[1] + 1];
    const whole = g.strides.every((s) => s === 1) && starts[0] === base[0] && starts[1] === base[1] && g.outSize[0] === h && g.outSize[1] === w;
    const view = whole ? xT : e.op1('Slice', [padded(), e.ints(starts), e.ints(ends), e.ints(spatial), e.ints(g.strides)], [], 'tap');
    views.push(e.reshape(view, [ci, 1, np]));
  }
  const k = views.length;
  const stacked = e.reshape(k === 1 ? views[0] : e.op1('Concat', views, [attr.int('axis', 1)], 'taps'), [ci * k, np]);
  const r = e.op1('Gemm', [dyT, stacked], [attr.int('transB', 1)], 'dW'); // [Co, Ci * taps]
  if (!taps) return e.reshape(r, [g.co, ci, g.kh, g.kw]);
  if (kept) return e.reshape(r, [g.co, ci, k]);
  // Only the kept taps were computed: a one-hot [taps, kh*kw] product puts them in place, zeros elsewhere.
  const place = new Float32Array(k * g.kh * g.kw);
  taps.forEach((t, j) => { place[j * g.kh * g.kw + t] = 1; });
  return e.reshape(e.op1('MatMul', [e.reshape(r, [g.co * ci, k]), e.floats(place, [k, g.kh * g.kw])], [], 'dWplace'), [g.co, ci, g.kh, g.kw]);
}

const maxPool: GradRule = {
  op: 'MaxPool',
  grad(c) {
    const dy = c.dy(0);
    if (!dy || !c.needs(0)) return;
    if (c.attrs.int('storage_order', 0) !== 0) refuse('MaxPool with storage_order 1 (column-major indices) has no backward rule');
    const kernel = c.attrs.ints('kernel_shape', []);
    const { xDims, strides, dilations, pads } = window(c, kernel);
    if (tiles(xDims, kernel, strides, dilations, pads)) {
      c.give(0, tiledMaxPoolGrad(c, dy, xDims, kernel[0]));
      return;
    }
    const overlapping = kernel.some((k, i) => (k - 1) * dilations[i] + 1 > strides[i]);
    // Overlapping windows can pick one input twice: the scatter must add, which ScatterElements
    // can from opset 16 on.
    if (overlapping && c.opset < 16) refuse(`MaxPool with overlapping windows needs opset 16 (ScatterElements with reduction); the model has ${c.opset}`);
    const indices = c.ensureOutput(1);
    const e = c.e;
    const total = product(xDims);
    const flat = e.op1('ScatterElements', [e.zeros([total]), e.reshape(indices, [-1]), e.reshape(dy, [-1])], [
      attr.int('axis', 0), ...(overlapping ? [attr.str('reduction', 'add')] : []),
    ], 'dX');
    c.give(0, e.reshape(flat, xDims));
  },
};

/** Square windows that tile the input exactly (stride = kernel, no pads or dilations, no remainder). */
function tiles(xDims: number[], kernel: number[], strides: number[], dilations: number[], pads: number[]): boolean {
  const k = kernel[0];
  return kernel.length === 2 && kernel[1] === k && k > 1 && strides.every((s) => s === k) && dilations.every((d) => d === 1)
    && pads.every((p) => p === 0) && xDims[2] % k === 0 && xDims[3] % k === 0;
}

/**
 * MaxPool backward when the windows tile the input: the forward keeps its plain MaxPool (without
 * the Indices output, which onnxruntime computes with a slow generic loop: 3-5x the pool alone),
 * and dY goes to the first maximum of each window in row-major order - the element the Indices
 * output names, so ties go where they went before. SpaceToDepth lays each window's k*k elements
 * along one axis ([N, k*k, C*Ho*Wo]), ArgMax picks the first maximum there (select_last_index 0),
 * and its position in the window plus the window's corner is the flat index MaxUnpool scatters dY
 * to. Measured (bench/micro-pool.ts, one thread, batch 64, forward and backward together): 0.54-0.59x
 * the time of MaxPool with Indices + ScatterElements; routing by Equal + Where + DepthToSpace
 * instead of MaxUnpool, 0.68-0.70x; a two-stage ArgMax (within rows, then over rows) without
 * SpaceToDepth, 0.77-0.83x.
 */
function tiledMaxPoolGrad(c: GradContext, dy: string, xDims: number[], k: number): string {
  const e = c.e;
  const [n, ch, h, w] = xDims;
  const [ho, wo] = [h / k, w / k];
  const windows = e.reshape(e.op1('SpaceToDepth', [c.input(0)], [attr.int('blocksize', k)]), [n, k * k, ch * ho * wo]);
  const first = e.reshape(e.op1('ArgMax', [windows], [attr.int('axis', 1), attr.int('keepdims', 0)], 'argmax'), [n * ch, ho * wo]);
  // Flat index = (n*C + c)*H*W (the plane) + oy*k*W + ox*k (the window's corner) + (j / k)*W + j % k.
  const inWindow = e.op1('Gather', [e.ints(Array.from({ length: k * k }, (_, j) => Math.floor(j / k) * w + (j % k))), first]);
  const corners = e.ints(Array.from({ length: ho * wo }, (_, q) => Math.floor(q / wo) * k * w + (q % wo) * k), [1, ho * wo]);
  const planes = e.ints(Array.from({ length: n * ch }, (_, p) => p * h * w), [n * ch, 1]);
  const flat = e.reshape(e.add(e.add(inWindow, corners), planes), [n, ch, ho, wo]);
  const dx = unpool(c, dy, flat, xDims, k);
  e.noteUnpool(dx, { dy, indices: flat, dims: xDims, kernel: k, input: c.input(0), pooled: c.output(0) });
  return dx;
}

function unpool(c: GradContext, dy: string, indices: string, dims: number[], k: number): string {
  return c.e.op1('MaxUnpool', [dy, indices, c.e.ints(dims)], [attr.ints('kernel_shape', [k, k]), attr.ints('strides', [k, k])], 'dX');
}

/**
 * ReLU backward, dY * (Y > 0). When dY is a tiled MaxPool's scattered gradient of this ReLU's
 * output and nothing else (conv, BN, ReLU, pool), it is non-zero only at each window's maximum,
 * where Y equals the pooled value: the mask is applied to the pooled gradient before the scatter,
 * on a tensor k*k times smaller (the scatter of the unmasked one is then unused and pruned).
 */
function reluGrad(c: GradContext, dy: string): string {
  const e = c.e;
  const positive = (y: string) => e.op1('Cast', [e.op1('Greater', [y, e.scalar(0)])], [attr.int('to', 1)]);
  const u = e.unpooled(dy);
  if (u && u.input === c.output(0)) return unpool(c, e.mul(u.dy, positive(u.pooled)), u.indices, u.dims, u.kernel);
  return e.mul(dy, positive(c.output(0)));
}

/** For each output position along one axis: how many window taps the average divides by. */
function windowCounts(inSize: number, outSize: number, k: number, s: number, d: number, begin: number, end: number, includePad: boolean): number[] {
  const counts: number[] = [];
  for (let o = 0; o < outSize; o++) {
    let n = 0;
    for (let j = 0; j < k; j++) {
      const at = o * s - begin + j * d;
      if (includePad ? at >= -begin && at < inSize + end : at >= 0 && at < inSize) n++;
    }
    counts.push(n);
  }
  return counts;
}

const averagePool: GradRule = {
  op: 'AveragePool',
  grad(c) {
    const dy = c.dy(0);
    if (!dy || !c.needs(0)) return;
    const kernel = c.attrs.ints('kernel_shape', []);
    const { xDims, inSize, outSize, strides, dilations, pads } = window(c, kernel);
    const includePad = c.attrs.int('count_include_pad', 0) === 1;
    const rows = windowCounts(inSize[0], outSize[0], kernel[0], strides[0], dilations[0], pads[0], pads[2], includePad);
    const cols = windowCounts(inSize[1], outSize[1], kernel[1], strides[1], dilations[1], pads[1], pads[3], includePad);
    const inverse = new Float32Array(outSize[0] * outSize[1]);
    for (let i = 0; i < outSize[0]; i++) for (let j = 0; j < outSize[1]; j++) inverse[i * outSize[1] + j] = 1 / (rows[i] * cols[j]);
    const e = c.e;
    const channels = xDims[1];
    const ones = e.floats(new Float32Array(channels * kernel[0] * kernel[1]).fill(1), [channels, 1, kernel[0], kernel[1]]);
    const t = transposePads(inSize, outSize, kernel, strides, dilations, pads);
    const scaled = e.mul(dy, e.floats(inverse, [1, 1, outSize[0], outSize[1]]));
    c.give(0, e.op1('ConvTranspose', [scaled, ones], [
      attr.int('group', channels), attr.ints('kernel_shape', kernel), attr.ints('strides', strides),
      attr.ints('dilations', dilations), attr.ints('pads', t.pads),
      ...(t.outputPadding.some((p) => p !== 0) ? [attr.ints('output_padding', t.outputPadding)] : []),
    ], 'dX'));
  },
};

const globalAveragePool: GradRule = {
  op: 'GlobalAveragePool',
  grad(c) {
    const dy = c.dy(0);
    if (!dy || !c.needs(0)) return;
    const x = c.dims(c.input(0));
    const e = c.e;
    c.give(0, e.op1('Expand', [e.scale(dy, 1 / product(x.slice(2))), e.ints(x)], [], 'dX'));
  },
};

/** Add, Sub, Mul, Div with broadcasting. */
function binary(op: 'Add' | 'Sub' | 'Mul' | 'Div'): GradRule {
  return {
    op,
    grad(c) {
      const dy = c.dy(0);
      if (!dy) return;
      const e = c.e;
      const [a, b, y] = [c.input(0), c.input(1), c.output(0)];
      const yDims = c.dims(y);
      const give = (i: number, g: string) => c.give(i, unbroadcast(e, g, yDims, c.dims(c.input(i))));
      if (c.needs(0)) {
        switch (op) {
          case 'Add': case 'Sub': give(0, dy); break;
          case 'Mul': give(0, e.mul(dy, b)); break;
          case 'Div': give(0, e.op1('Div', [dy, b])); break;
        }
      }
      if (c.needs(1)) {
        switch (op) {
          case 'Add': give(1, dy); break;
          case 'Sub': give(1, e.op1('Neg', [dy])); break;
          case 'Mul': give(1, e.mul(dy, a)); break;
          // d(a/b)/db = -a/b^2 = -y/b
          case 'Div': give(1, e.op1('Neg', [e.mul(dy, e.op1('Div', [y, b]))])); break;
        }
      }
    },
  };
}

/** Sum of any number of (broadcasting) inputs: each gets dY, summed over its broadcast axes. */
const sum: GradRule = {
  op: 'Sum',
  grad(c) {
    const dy = c.dy(0);
    if (!dy) return;
    const yDims = c.dims(c.output(0));
    for (let i = 0; i < c.inputCount; i++) if (c.needs(i)) c.give(i, unbroadcast(c.e, dy, yDims, c.dims(c.input(i))));
    const m = c.e.maskedConv(c.output(0));
    if (m) {
      // The pieces of a masked convolution (pieces.ts): its weight's gradient at the kept positions.
      const [co, , kh, kw] = m.kernelDims;
      const xDims = c.dims(m.input);
      c.giveTo(m.weight, filterGrad(c.e, m.input, dy, { xDims, outSize: yDims.slice(2), strides: m.strides, dilations: m.dilations, pads: m.pads, group: m.group, kh, kw, co }, m.taps, m.kept === true));
    }
  },
};

/** Clip-style masks match the TF.js path: the gradient passes at the bounds themselves. */
function inside(c: GradContext, x: string, lo: number | undefined, hi: number | undefined): string | undefined {
  const e = c.e;
  const parts: string[] = [];
  if (lo !== undefined) parts.push(e.op1('Not', [e.op1('Less', [x, e.scalar(lo)])]));
  if (hi !== undefined) parts.push(e.op1('Not', [e.op1('Greater', [x, e.scalar(hi)])]));
  if (parts.length === 0) return undefined;
  return parts.length === 1 ? parts[0] : e.op1('And', parts);
}

function clipBound(c: GradContext, attrName: 'min' | 'max', input: number): number | undefined {
  if (c.opset < 11) return c.attrs.has(attrName) ? c.attrs.float(attrName, 0) : undefined;
  const name = c.inputCount > input ? c.input(input) : '';
  if (!name) return undefined;
  const v = c.constant(name);
  if (!v || v.length !== 1) return refuse(`Clip's ${attrName} is computed at run time, not a constant`);
  return v[0];
}

const gemm: GradRule = {
  op: 'Gemm',
  grad(c) {
    const dy = c.dy(0);
    if (!dy) return;
    const e = c.e;
    const alpha = c.attrs.float('alpha', 1);
    const beta = c.attrs.float('beta', 1);
    const ta = c.attrs.int('transA', 0) === 1;
    const tb = c.attrs.int('transB', 0) === 1;
    const [a, b] = [c.input(0), c.input(1)];
    const g = (x: string, y: string, transA: boolean, transB: boolean) => e.op1('Gemm', [x, y], [
      attr.float('alpha', alpha), attr.int('transA', transA ? 1 : 0), attr.int('transB', transB ? 1 : 0),
    ], 'dGemm');
    // Y = alpha op(A) op(B) + beta C (onnxruntime's GetGemmGradient, case by case).
    if (c.needs(0)) c.give(0, ta ? g(b, dy, tb, true) : g(dy, b, false, !tb));
    if (c.needs(1)) c.give(1, tb ? g(dy, a, true, ta) : g(a, dy, !ta, false));
    if (c.inputCount > 2 && c.input(2) && c.needs(2)) {
      c.give(2, unbroadcast(e, e.scale(dy, beta), c.dims(c.output(0)), c.dims(c.input(2))));
    }
  },
};

const matMul: GradRule = {
  op: 'MatMul',
  grad(c) {
    const dy = c.dy(0);
    if (!dy) return;
    const e = c.e;
    const [a, b] = [c.input(0), c.input(1)];
    const [ad, bd, yd] = [c.dims(a), c.dims(b), c.dims(c.output(0))];
    if (ad.length < 2 || bd.length < 2) refuse('MatMul with a 1-D operand has no backward rule');
    const swap = (r: number) => [...Array.from({ length: r - 2 }, (_, i) => i), r - 1, r - 2];
    if (c.needs(0)) {
      const full = e.op1('MatMul', [dy, e.transpose(b, swap(bd.length))], [], 'dA');
      c.give(0, unbroadcast(e, full, [...yd.slice(0, -2), ad[ad.length - 2], ad[ad.length - 1]], ad));
    }
    if (c.needs(1)) {
      const full = e.op1('MatMul', [e.transpose(a, swap(ad.length)), dy], [], 'dB');
      c.give(1, unbroadcast(e, full, [...yd.slice(0, -2), bd[bd.length - 2], bd[bd.length - 1]], bd));
    }
  },
};

const batchNorm: GradRule = {
  op: 'BatchNormalization',
  grad(c) {
    if (c.attrs.int('training_mode', 0) !== 0 || c.node.output!.filter((o) => o).length > 1) {
      refuse('BatchNormalization in training mode has no backward rule (only the inference form)');
    }
    const dy = c.dy(0);
    if (!dy) return;
    if ([1, 2, 3, 4].some((i) => c.needs(i))) refuse('BatchNormalization parameters are frozen; only its input gets a gradient');
    if (!c.needs(0)) return;
    const e = c.e;
    const x = c.dims(c.input(0));
    const eps = c.attrs.float('epsilon', 1e-5);
    // dX = dY * scale / sqrt(var + eps), per channel.
    const factor = e.op1('Div', [c.input(1), e.op1('Sqrt', [e.add(c.input(4), e.scalar(eps))])]);
    c.give(0, e.mul(dy, e.reshape(factor, [1, x[1], ...x.slice(2).map(() => 1)])));
  },
};

const concat: GradRule = {
  op: 'Concat',
  grad(c) {
    const dy = c.dy(0);
    if (!dy) return;
    const rank = c.dims(c.output(0)).length;
    const axis = normAxis(c.attrs.int('axis', 0), rank);
    let at = 0;
    for (let i = 0; i < c.inputCount; i++) {
      const size = c.dims(c.input(i))[axis];
      if (c.needs(i)) c.give(i, c.e.slice(dy, [at], [at + size], [axis]));
      at += size;
    }
  },
};

const split: GradRule = {
  op: 'Split',
  grad(c) {
    if (!c.needs(0)) return;
    const rank = c.dims(c.input(0)).length;
    const axis = normAxis(c.attrs.int('axis', 0), rank);
    const parts: string[] = [];
    let any = false;
    for (let i = 0; i < c.node.output!.length; i++) {
      const dy = c.dy(i);
      any ||= dy !== undefined;
      parts.push(dy ?? c.e.zeros(c.dims(c.output(i))));
    }
    if (any) c.give(0, c.e.op1('Concat', parts, [attr.int('axis', axis)], 'dX'));
  },
};

/** Slice with steps of 1: the gradient is dY padded back to the input's dims. */
const slice: GradRule = {
  op: 'Slice',
  grad(c) {
    const dy = c.dy(0);
    if (!dy || !c.needs(0)) return;
    const x = c.dims(c.input(0));
    const y = c.dims(c.output(0));
    const read = (i: number, what: string): number[] | undefined => {
      const name = c.inputCount > i ? c.input(i) : '';
      if (!name) return undefined;
      const v = c.constant(name);
      if (!v) refuse(`Slice's ${what} are computed at run time, not constants`);
      return v;
    };
    const starts = read(1, 'starts')!;
    const axes = (read(3, 'axes') ?? starts.map((_, i) => i)).map((a) => normAxis(a, x.length));
    const steps = read(4, 'steps');
    if (steps && steps.some((s) => s !== 1)) refuse('Slice with steps other than 1 has no backward rule');
    const pads = new Array(2 * x.length).fill(0);
    axes.forEach((a, i) => {
      let s = starts[i] < 0 ? starts[i] + x[a] : starts[i];
      s = Math.min(Math.max(s, 0), x[a]);
      pads[a] = s;
      pads[x.length + a] = x[a] - s - y[a];
    });
    c.give(0, c.e.op1('Pad', [dy, c.e.ints(pads)], [attr.str('mode', 'constant')], 'dX'));
  },
};

const pad: GradRule = {
  op: 'Pad',
  grad(c) {
    const dy = c.dy(0);
    if (!dy || !c.needs(0)) return;
    if (c.attrs.string('mode', 'constant') !== 'constant') refuse('Pad in reflect/edge mode has no backward rule');
    if (c.inputCount > 3 && c.input(3)) refuse('Pad with an axes input has no backward rule');
    const pads = c.opset < 11 ? c.attrs.ints('pads', []) : c.constant(c.input(1));
    if (!pads) return refuse("Pad's pads are computed at run time, not a constant");
    if (pads.some((p) => p < 0)) refuse('Pad with negative pads (cropping) has no backward rule');
    const x = c.dims(c.input(0));
    const begin = pads.slice(0, x.length);
    c.give(0, c.e.slice(dy, begin, begin.map((b, i) => b + x[i]), x.map((_, i) => i)));
  },
};

const transpose: GradRule = {
  op: 'Transpose',
  grad(c) {
    const dy = c.dy(0);
    if (!dy || !c.needs(0)) return;
    const rank = c.dims(c.input(0)).length;
    const perm = c.attrs.ints('perm', Array.from({ length: rank }, (_, i) => rank - 1 - i));
    const inverse = new Array<number>(rank);
    perm.forEach((p, i) => { inverse[p] = i; });
    c.give(0, c.e.transpose(dy, inverse));
  },
};

/** Softmax and LogSoftmax along one axis (before opset 13: over the input coerced to 2-D). */
function softmaxFamily(op: 'Softmax' | 'LogSoftmax'): GradRule {
  return {
    op,
    grad(c) {
      const dy = c.dy(0);
      if (!dy || !c.needs(0)) return;
      const e = c.e;
      const x = c.dims(c.input(0));
      let axis = normAxis(c.attrs.int('axis', c.opset < 13 ? 1 : -1), x.length);
      let [g, y] = [dy, c.output(0)];
      const coerce = c.opset < 13 && axis !== x.length - 1;
      if (coerce) {
        const shape2 = [product(x.slice(0, axis)), product(x.slice(axis))];
        [g, y, axis] = [e.reshape(dy, shape2), e.reshape(y, shape2), 1];
      }
      // Softmax: y (dy - sum(dy y)); LogSoftmax: dy - exp(y) sum(dy).
      const out = op === 'Softmax'
        ? e.mul(y, e.sub(g, e.reduceSum(e.mul(g, y), [axis], true)))
        : e.sub(g, e.mul(e.op1('Exp', [y]), e.reduceSum(g, [axis], true)));
      c.give(0, coerce ? e.reshape(out, x) : out);
    },
  };
}

/** ReduceMean / ReduceSum: dY spread back over the reduced axes (divided by their size for the mean). */
function reduce(op: 'ReduceMean' | 'ReduceSum', axesInputSince: number): GradRule {
  return {
    op,
    grad(c) {
      const dy = c.dy(0);
      if (!dy || !c.needs(0)) return;
      const x = c.dims(c.input(0));
      let axes: number[] | undefined;
      if (c.opset < axesInputSince) {
        axes = c.attrs.has('axes') ? c.attrs.ints('axes', []) : undefined;
      } else if (c.inputCount > 1 && c.input(1)) {
        axes = c.constant(c.input(1));
        if (!axes) refuse(`${op}'s axes are computed at run time, not a constant`);
      }
      if ((!axes || axes.length === 0) && c.attrs.int('noop_with_empty_axes', 0) === 1) {
        c.give(0, dy);
        return;
      }
      const reduced = (axes && axes.length > 0 ? axes : x.map((_, i) => i)).map((a) => normAxis(a, x.length));
      const kept = x.map((d, i) => (reduced.includes(i) ? 1 : d));
      const e = c.e;
      const count = product(reduced.map((a) => x[a]));
      const g = e.reshape(dy, kept);
      c.give(0, e.op1('Expand', [op === 'ReduceMean' ? e.scale(g, 1 / count) : g, e.ints(x)], [], 'dX'));
    },
  };
}

function dropoutCheck(c: GradContext): void {
  const mode = c.inputCount > 2 ? c.input(2) : '';
  if (!mode) return;
  const v = c.constant(mode);
  if (!v || v[0] !== 0) refuse('Dropout in training mode has no backward rule');
}

function castCheck(c: GradContext): void {
  if (c.attrs.int('to', 1) !== 1) refuse('Cast to a type other than float32 on the gradient path');
}

export const RULES: readonly GradRule[] = [
  conv,
  maxPool,
  averagePool,
  globalAveragePool,
  binary('Add'), binary('Sub'), binary('Mul'), binary('Div'),
  sum,
  // dY times the 0/1 mask (Y > 0) as float: onnxruntime's Where runs on one thread; Cast and Mul
  // split over the pool. Measured on [64, 32, 28, 28] (bench/micro-ops.ts): 0.84x the time of
  // Where(Y > 0, dY, 0) on one thread, 0.51x on two.
  unary('Relu', reluGrad),
  unary('LeakyRelu', (c, dy) => c.e.op1('Where', [
    c.e.op1('Greater', [c.input(0), c.e.scalar(0)]), dy, c.e.scale(dy, c.attrs.float('alpha', 0.01)),
  ])),
  unary('Sigmoid', (c, dy) => c.e.mul(dy, c.e.mul(c.output(0), c.e.sub(c.e.scalar(1), c.output(0))))),
  unary('Tanh', (c, dy) => c.e.mul(dy, c.e.sub(c.e.scalar(1), c.e.mul(c.output(0), c.output(0))))),
  unary('Clip', (c, dy) => {
    const mask = inside(c, c.input(0), clipBound(c, 'min', 1), clipBound(c, 'max', 2));
    return mask ? c.e.where(mask, dy) : dy;
  }),
  unary('HardSigmoid', (c, dy) => {
    const alpha = c.attrs.float('alpha', 0.2);
    const z = c.e.add(c.e.scale(c.input(0), alpha), c.e.scalar(c.attrs.float('beta', 0.5)));
    return c.e.where(inside(c, z, 0, 1)!, c.e.scale(dy, alpha));
  }),
  // y = x hs(x), hs = clip(x / 6 + 1/2, 0, 1): dy/dx = hs(x) + x / 6 inside the clip.
  unary('HardSwish', (c, dy) => {
    const e = c.e;
    const x = c.input(0);
    const z = e.add(e.scale(x, 1 / 6), e.scalar(0.5));
    const hs = e.op1('HardSigmoid', [x], [attr.float('alpha', 1 / 6), attr.float('beta', 0.5)]);
    const slope = e.op1('Where', [inside(c, z, 0, 1)!, e.scale(x, 1 / 6), e.scalar(0)]);
    return e.mul(dy, e.add(hs, slope));
  }),
  batchNorm,
  gemm,
  matMul,
  concat,
  split,
  slice,
  pad,
  transpose,
  passThrough('Reshape'),
  passThrough('Flatten'),
  passThrough('Squeeze'),
  passThrough('Unsqueeze'),
  passThrough('Identity'),
  passThrough('Dropout', dropoutCheck),
  passThrough('Cast', castCheck),
  softmaxFamily('Softmax'),
  softmaxFamily('LogSoftmax'),
  reduce('ReduceMean', 18),
  reduce('ReduceSum', 13),
];

export const RULES_BY_OP: ReadonlyMap<string, GradRule> = new Map(RULES.map((r) => [r.op, r]));
