/**
 * 2-D convolution for the executor, channels-last, with gradients that every backend runs fast.
 *
 * TF.js differentiates conv2d through the Conv2DBackpropInput and Conv2DBackpropFilter kernels. The
 * wasm backend has no Conv2DBackpropFilter (nor the depthwise backprop kernels), its
 * Conv2DBackpropInput is an order of magnitude slower than its forward convolution (XNNPACK), and
 * TF.js refuses gradients of dilated convolutions on every backend. So the `kprune` gradients below
 * are written as *forward* convolutions (tf.customGrad), which every backend runs at full speed:
 *
 * - input gradient, stride 1: the output gradient correlated with the kernel rotated by 180 degrees
 *   (input and output channels swapped), same dilation, padding passed to the convolution;
 * - input gradient, equal strides s > 1: sub-pixel form, one stride-1 convolution of the output
 *   gradient with the kernel's taps packed per phase (s*s times the channels), then depth to space
 *   (as reshape + transpose); unequal strides: the output gradient zero-dilated, then as stride 1;
 * - filter gradient: a convolution whose "batch" is the input channel and whose "channels" are the
 *   samples: input [Cin, H, W, N], filter = output gradient [OH, OW, N, Cout], stride = the
 *   layer's dilation, dilation = the layer's stride; the [Cin, KH, KW, Cout] result is the kernel
 *   gradient. One XNNPACK call, no im2col buffer;
 * - depthwise filter gradient: the same with a depthwise convolution over channels (c, n);
 * - stride and dilation both above 1 (rare): per-tap products.
 *
 * Measured on wasm, batch 64, 28x28, 16 -> 16 channels, machine lightly loaded: forward 9.7 ms;
 * TF.js's Conv2DBackpropInput 101 ms, forward + input gradient here 24 ms; filter gradient by
 * im2col + MatMul 159 ms, forward + filter gradient here 30 ms (bench/finetune.ts, section micro).
 *
 * Only the gradients the graph needs are computed: each call says whether its input and its filter
 * need one (a frozen 1x1 shortcut gets no filter gradient, the first layer no input gradient).
 */
import type * as TF from './tf.js';
import type { Tf } from './backend.js';
import { maxOf, minOf } from '../../util/arrays.js';

export interface Conv2dSpec {
  strides: [number, number];
  dilations: [number, number];
  /** Explicit pads [top, left, bottom, right] (auto_pad already resolved). */
  pads: [number, number, number, number];
  group: number;
}

/** How gradients are computed: kprune's forward-convolution formulas, or TF.js's own kernels. */
export type ConvGradients = 'kprune' | 'tfjs';

export interface GradNeeds {
  x: boolean;
  w: boolean;
}

type T4 = TF.Tensor4D;

function explicit(p: readonly number[]): [[number, number], [number, number], [number, number], [number, number]] {
  return [[0, 0], [p[0], p[2]], [p[1], p[3]], [0, 0]];
}

function bothAboveOne(spec: Conv2dSpec): boolean {
  return spec.strides.some((s) => s > 1) && spec.dilations.some((d) => d > 1);
}

// ---------------------------------------------------------------------------------------- forward

/**
 * Forward convolutions; a constant bias is fused into the kernel (one pass less over the output),
 * it is never trained, so gradients are those of the convolution alone.
 */
function forwardStandard(tf: Tf, x: T4, w: T4, spec: Conv2dSpec, bias?: TF.Tensor): T4 {
  if (!bothAboveOne(spec)) {
    if (bias) return tf.fused.conv2d({ x, filter: w, strides: spec.strides, pad: explicit(spec.pads), dataFormat: 'NHWC', dilations: spec.dilations, bias });
    return tf.conv2d(x, w, spec.strides, explicit(spec.pads), 'NHWC', spec.dilations);
  }
  // TF.js takes strides or dilations, not both: convolve densely, then keep every stride-th output.
  const dense = tf.conv2d(x, w, 1, explicit(spec.pads), 'NHWC', spec.dilations);
  const [n, h, wd, c] = dense.shape;
  const y = tf.stridedSlice(dense, [0, 0, 0, 0], [n, h, wd, c], [1, spec.strides[0], spec.strides[1], 1]) as T4;
  return bias ? tf.add(y, bias) : y;
}

function forwardDepthwise(tf: Tf, x: T4, w: T4, spec: Conv2dSpec, bias?: TF.Tensor): T4 {
  const cin = x.shape[3];
  const f = tf.reshape(w, [w.shape[0], w.shape[1], cin, w.shape[3] / cin]) as T4;
  if (!bothAboveOne(spec)) {
    // Explicit padding works in the fused depthwise op; only its type declaration omits it.
    if (bias) return tf.fused.depthwiseConv2d({ x, filter: f, strides: spec.strides, pad: explicit(spec.pads) as unknown as number, dataFormat: 'NHWC', dilations: spec.dilations, bias });
    return tf.depthwiseConv2d(x, f, spec.strides, explicit(spec.pads), 'NHWC', spec.dilations);
  }
  const dense = tf.depthwiseConv2d(x, f, 1, explicit(spec.pads), 'NHWC', spec.dilations);
  const [n, h, wd, c] = dense.shape;
  const y = tf.stridedSlice(dense, [0, 0, 0, 0], [n, h, wd, c], [1, spec.strides[0], spec.strides[1], 1]) as T4;
  return bias ? tf.add(y, bias) : y;
}

// --------------------------------------------------------------------------------- input gradient

/**
 * The output gradient zero-dilated by the stride, cropped where needed, and the padding that makes
 * a stride-1 correlation with the rotated kernel give the input gradient at the input's size:
 * dX[i] = sum_k U[i + pb - (K-1)d + k d] Wrot[k], U[o s] = dY[o]. The padding goes to the
 * convolution itself (explicit pads), not through a padded copy.
 */
function dilateAndPad(tf: Tf, dy: T4, spec: Conv2dSpec, k: [number, number], inSize: [number, number]): { u: T4; pads: Pads } {
  const [n, oh, ow, c] = dy.shape;
  const [sh, sw] = spec.strides;
  let u: T4 = dy;
  if (sh > 1 || sw > 1) {
    const r = tf.reshape(dy, [n, oh, 1, ow, 1, c]);
    const z = tf.pad(r, [[0, 0], [0, 0], [0, sh - 1], [0, 0], [0, sw - 1], [0, 0]]);
    u = tf.reshape(z, [n, oh * sh, ow * sw, c]) as T4;
  }
  // Along each axis: pad `begin` before and `end` after the dilated length o*s (negative: crop).
  const axis = (o: number, s: number, kk: number, d: number, pb: number, size: number) => ({
    begin: (kk - 1) * d - pb,
    end: size + pb - o * s,
  });
  const ah = axis(oh, sh, k[0], spec.dilations[0], spec.pads[0], inSize[0]);
  const aw = axis(ow, sw, k[1], spec.dilations[1], spec.pads[1], inSize[1]);
  return cropOrPad(tf, u, ah, aw);
}

/** [top, left, bottom, right]. */
type Pads = [number, number, number, number];

/** Crops the negative parts of begin/end per axis, returns the positive parts as pads. */
function cropOrPad(tf: Tf, u: T4, ah: { begin: number; end: number }, aw: { begin: number; end: number }): { u: T4; pads: Pads } {
  const [n, h, w, c] = u.shape;
  const cut = [Math.max(0, -ah.begin), Math.max(0, -aw.begin), Math.max(0, -ah.end), Math.max(0, -aw.end)];
  const v = cut.some((x) => x > 0) ? crop(tf, u, [0, cut[0], cut[1], 0], [n, h - cut[0] - cut[2], w - cut[1] - cut[3], c]) as T4 : u;
  return { u: v, pads: [Math.max(0, ah.begin), Math.max(0, aw.begin), Math.max(0, ah.end), Math.max(0, aw.end)] };
}

/**
 * A crop of a channels-last tensor that copies long runs: dimensions after the last cropped one are
 * merged into it, because the wasm Slice kernel copies one innermost run at a time (cropping a
 * [64, 30, 30, 16] tensor row by row of 16 values took 5 ms; by rows of 480, a fraction of that).
 */
export function crop(tf: Tf, x: TF.Tensor, begin: number[], size: number[]): TF.Tensor {
  const shape = x.shape;
  let last = shape.length - 1;
  while (last > 0 && begin[last] === 0 && size[last] === shape[last]) last--;
  if (last === 0 && begin[0] === 0 && size[0] === shape[0]) return x;
  const tail = shape.slice(last + 1).reduce((a, b) => a * b, 1);
  const merged = [...shape.slice(0, last), shape[last] * tail];
  const y = tf.slice(tf.reshape(x, merged), [...begin.slice(0, last), begin[last] * tail], [...size.slice(0, last), size[last] * tail]);
  return tf.reshape(y, size);
}

/**
 * Per axis of a strided convolution's input gradient, split by phase r = i mod s: input position
 * i = q s + r receives dY[q + delta] * w[k] for every tap k with (r + pb - k d) divisible by s,
 * delta = (r + pb - k d) / s. Packing the phases' taps into one kernel of `len` taps starting at
 * offset `lmin` turns the gradient into one stride-1 convolution of dY with s^2 times the output
 * channels, followed by depth-to-space: no zero-dilated copy of dY, a quarter of the work at
 * stride 2.
 */
interface PhaseAxis {
  lmin: number;
  len: number;
  /** taps[r][j]: the kernel tap at packed position j for phase r, or -1. */
  taps: number[][];
  /** Phase rows needed: ceil(in / s). */
  q: number;
}

function phaseAxis(k: number, s: number, d: number, pb: number, inSize: number): PhaseAxis {
  const deltas: { r: number; k: number; delta: number }[] = [];
  for (let r = 0; r < s; r++) {
    for (let kk = 0; kk < k; kk++) {
      const num = r + pb - kk * d;
      if (((num % s) + s) % s === 0) deltas.push({ r, k: kk, delta: num / s });
    }
  }
  const lmin = minOf(deltas.map((e) => e.delta));
  const len = maxOf(deltas.map((e) => e.delta)) - lmin + 1;
  const taps = Array.from({ length: s }, () => new Array<number>(len).fill(-1));
  for (const e of deltas) taps[e.r][e.delta - lmin] = e.k;
  return { lmin, len, taps, q: Math.ceil(inSize / s) };
}

const packCache = new Map<string, Int32Array>();

/**
 * Gather indices building the packed kernel [LH, LW, Cout, s*s*m] from the flat HWIO filter (plus
 * one zero at the end): for standard filters m = Cin and the last axis is (phase, ci); for
 * depthwise ones m = 1 and the packed filter is a depthwise filter with multiplier s*s.
 */
function packIndices(ah: PhaseAxis, aw: PhaseAxis, s: number, wShape: number[], depthwise: boolean): Int32Array {
  const key = `${JSON.stringify([ah, aw])}|${s}|${wShape.join(',')}|${depthwise}`;
  let idx = packCache.get(key);
  if (idx) return idx;
  const [kh, kw, cin, cout] = wShape;
  const m = depthwise ? 1 : cin;
  const zero = kh * kw * cin * cout;
  idx = new Int32Array(ah.len * aw.len * cout * s * s * m).fill(zero);
  let at = 0;
  for (let jh = 0; jh < ah.len; jh++) {
    for (let jw = 0; jw < aw.len; jw++) {
      for (let co = 0; co < cout; co++) {
        for (let rh = 0; rh < s; rh++) {
          for (let rw = 0; rw < s; rw++) {
            const th = ah.taps[rh][jh];
            const tw = aw.taps[rw][jw];
            for (let ci = 0; ci < m; ci++, at++) {
              if (th >= 0 && tw >= 0) idx[at] = ((th * kw + tw) * cin + (depthwise ? 0 : ci)) * cout + co;
            }
          }
        }
      }
    }
  }
  if (packCache.size > 256) packCache.clear();
  packCache.set(key, idx);
  return idx;
}

/** Crops dY, and says how to pad it, so that a stride-1 convolution with the packed kernel gives q phase rows. */
function phasePadded(tf: Tf, dy: T4, ah: PhaseAxis, aw: PhaseAxis): { u: T4; pads: Pads } {
  const [, oh, ow] = dy.shape;
  const range = (a: PhaseAxis, o: number) => ({ begin: -a.lmin, end: a.q - 1 + a.lmin + a.len - 1 - (o - 1) });
  return cropOrPad(tf, dy, range(ah, oh), range(aw, ow));
}

/** The packed kernel, built on the host: filters are small, and a gather kernel per step is not. */
function packKernel(tf: Tf, w: T4, idx: Int32Array, shape: [number, number, number, number]): T4 {
  const src = w.dataSync() as Float32Array;
  const out = new Float32Array(idx.length);
  for (let i = 0; i < idx.length; i++) out[i] = idx[i] < src.length ? src[idx[i]] : 0;
  return tf.tensor4d(out, shape);
}

function inputGradPhased(tf: Tf, dy: T4, w: T4, xShape: number[], spec: Conv2dSpec, depthwise: boolean): T4 {
  const s = spec.strides[0];
  const [kh, kw, , cout] = w.shape;
  const cin = xShape[3];
  const ah = phaseAxis(kh, s, spec.dilations[0], spec.pads[0], xShape[1]);
  const aw = phaseAxis(kw, s, spec.dilations[1], spec.pads[1], xShape[2]);
  const idx = packIndices(ah, aw, s, w.shape, depthwise);
  const { u, pads } = phasePadded(tf, dy, ah, aw);
  const [n] = dy.shape;
  let phases: T4;
  if (!depthwise) {
    phases = tf.conv2d(u, packKernel(tf, w, idx, [ah.len, aw.len, cout, s * s * cin]), 1, explicit(pads), 'NHWC');
  } else {
    const g = tf.depthwiseConv2d(u, packKernel(tf, w, idx, [ah.len, aw.len, cout, s * s]), 1, explicit(pads), 'NHWC'); // channel (co, phase)
    const byChannel = tf.reshape(g, [n, ah.q, aw.q, cin, cout / cin, s * s]);
    const summed = cout === cin ? tf.reshape(byChannel, [n, ah.q, aw.q, cin, s * s]) : tf.sum(byChannel, 4);
    phases = tf.reshape(tf.transpose(summed, [0, 1, 2, 4, 3]), [n, ah.q, aw.q, s * s * cin]) as T4;
  }
  // Depth to space: channel (rh, rw, c) of phase row q goes to row q s + rh, column q' s + rw.
  // As reshape + transpose: tf.depthToSpace is ten times slower on wasm (25 ms vs 2 ms at 64x14x14x64).
  const interleaved = tf.transpose(tf.reshape(phases, [n * ah.q, aw.q, s, s * cin]), [0, 2, 1, 3]);
  const full = tf.reshape(interleaved, [n, ah.q * s, aw.q * s, cin]);
  return crop(tf, full, [0, 0, 0, 0], [n, xShape[1], xShape[2], cin]) as T4;
}

function inputGradStandard(tf: Tf, dy: T4, w: T4, xShape: number[], spec: Conv2dSpec): T4 {
  if (spec.strides[0] > 1 && spec.strides[0] === spec.strides[1]) return inputGradPhased(tf, dy, w, xShape, spec, false);
  const rot = tf.transpose(tf.reverse(w, [0, 1]), [0, 1, 3, 2]) as T4;
  const { u, pads } = dilateAndPad(tf, dy, spec, [w.shape[0], w.shape[1]], [xShape[1], xShape[2]]);
  return tf.conv2d(u, rot, 1, explicit(pads), 'NHWC', spec.dilations);
}

function inputGradDepthwise(tf: Tf, dy: T4, w: T4, xShape: number[], spec: Conv2dSpec): T4 {
  if (spec.strides[0] > 1 && spec.strides[0] === spec.strides[1]) return inputGradPhased(tf, dy, w, xShape, spec, true);
  const cin = xShape[3];
  const cout = w.shape[3];
  const rot = tf.reshape(tf.reverse(w, [0, 1]), [w.shape[0], w.shape[1], cout, 1]) as T4;
  const { u, pads } = dilateAndPad(tf, dy, spec, [w.shape[0], w.shape[1]], [xShape[1], xShape[2]]);
  const g = tf.depthwiseConv2d(u, rot, 1, explicit(pads), 'NHWC', spec.dilations);
  if (cout === cin) return g;
  const [n, h, wd] = g.shape;
  return tf.sum(tf.reshape(g, [n, h, wd, cin, cout / cin]), 4) as T4;
}

// -------------------------------------------------------------------------------- filter gradient

/**
 * The part of the input the convolution reads, and its padding: the end padding is reduced (or the
 * input cropped) when the last stride leaves rows or columns unread.
 */
function inputWindow(tf: Tf, x: T4, spec: Conv2dSpec, k: [number, number], out: [number, number]): { x: T4; pads: Pads } {
  const p = spec.pads;
  const needH = (k[0] - 1) * spec.dilations[0] + (out[0] - 1) * spec.strides[0] + 1;
  const needW = (k[1] - 1) * spec.dilations[1] + (out[1] - 1) * spec.strides[1] + 1;
  const { u, pads } = cropOrPad(tf, x, { begin: p[0], end: needH - x.shape[1] - p[0] }, { begin: p[1], end: needW - x.shape[2] - p[1] });
  return { x: u, pads };
}

/** The input padded to exactly the rows and columns the convolution reads. */
function paddedInput(tf: Tf, x: T4, spec: Conv2dSpec, k: [number, number], out: [number, number]): T4 {
  const win = inputWindow(tf, x, spec, k, out);
  return win.pads.some((v) => v !== 0) ? tf.pad(win.x, explicit(win.pads)) : win.x;
}

/** The input values each kernel tap (i, j) multiplies: [N, OH, OW, C]. */
function tapSlice(tf: Tf, xp: T4, i: number, j: number, spec: Conv2dSpec, out: [number, number]): T4 {
  const [n, , , c] = xp.shape;
  const [dh, dw] = spec.dilations;
  const [sh, sw] = spec.strides;
  const b = [0, i * dh, j * dw, 0];
  const e = [n, i * dh + (out[0] - 1) * sh + 1, j * dw + (out[1] - 1) * sw + 1, c];
  return tf.stridedSlice(xp, b, e, [1, sh, sw, 1]) as T4;
}

function filterGradStandard(tf: Tf, x: T4, dy: T4, wShape: number[], spec: Conv2dSpec): T4 {
  const k: [number, number] = [wShape[0], wShape[1]];
  const out: [number, number] = [dy.shape[1], dy.shape[2]];
  const swapped = spec.strides.some((s) => s > 1) && spec.dilations.some((d) => d > 1);
  if (!swapped) {
    const win = inputWindow(tf, x, spec, k, out);
    const xt = tf.transpose(win.x, [3, 1, 2, 0]) as T4; // [Cin, H, W, N]
    const f = tf.transpose(dy, [1, 2, 0, 3]) as T4; // [OH, OW, N, Cout]
    const g = tf.conv2d(xt, f, spec.dilations, explicit(win.pads), 'NHWC', spec.strides); // [Cin, KH, KW, Cout]
    return tf.transpose(g, [1, 2, 0, 3]);
  }
  const xp = paddedInput(tf, x, spec, k, out);
  // Stride and dilation both above 1: one product per tap.
  const [n, oh, ow, cout] = dy.shape;
  const d2 = tf.reshape(dy, [n * oh * ow, cout]) as TF.Tensor2D;
  const taps: TF.Tensor[] = [];
  for (let i = 0; i < k[0]; i++) {
    for (let j = 0; j < k[1]; j++) {
      const xs = tf.reshape(tapSlice(tf, xp, i, j, spec, out), [n * oh * ow, xp.shape[3]]) as TF.Tensor2D;
      taps.push(tf.matMul(xs, d2, true, false));
    }
  }
  return tf.reshape(tf.stack(taps), [wShape[0], wShape[1], wShape[2], wShape[3]]) as T4;
}

/**
 * Depthwise filter gradient as one depthwise convolution: channels (c, n) of the padded input
 * [1, H, W, C*N] against the output gradient as a per-channel filter [OH, OW, C*N, multiplier],
 * stride and dilation swapped as for standard filters; the samples n are summed afterwards.
 * (Strided slices per kernel tap were 50 ms each on wasm at 64x29x29x32, stride 2.)
 */
function filterGradDepthwise(tf: Tf, x: T4, dy: T4, wShape: number[], spec: Conv2dSpec): T4 {
  const k: [number, number] = [wShape[0], wShape[1]];
  const out: [number, number] = [dy.shape[1], dy.shape[2]];
  const [n, oh, ow] = dy.shape;
  const c = x.shape[3];
  const cout = wShape[3];
  const mult = cout / c;
  if (spec.strides.some((s) => s > 1) && spec.dilations.some((d) => d > 1)) return filterGradDepthwiseTaps(tf, x, dy, wShape, spec);
  const win = inputWindow(tf, x, spec, k, out);
  const [, hn, wn] = win.x.shape;
  const xt = tf.reshape(tf.transpose(win.x, [1, 2, 3, 0]), [1, hn, wn, c * n]) as T4;
  const f = tf.reshape(tf.transpose(tf.reshape(dy, [n, oh, ow, c, mult]), [1, 2, 3, 0, 4]), [oh, ow, c * n, mult]) as T4;
  const g = tf.depthwiseConv2d(xt, f, spec.dilations, explicit(win.pads), 'NHWC', spec.strides); // [1, KH, KW, C*N*mult]
  const summed = tf.sum(tf.reshape(g, [k[0], k[1], c, n, mult]), 3);
  return tf.reshape(summed, [k[0], k[1], 1, cout]) as T4;
}

/** Depthwise filter gradient per kernel tap: a strided slice times the output gradient, summed. */
function filterGradDepthwiseTaps(tf: Tf, x: T4, dy: T4, wShape: number[], spec: Conv2dSpec): T4 {
  const k: [number, number] = [wShape[0], wShape[1]];
  const out: [number, number] = [dy.shape[1], dy.shape[2]];
  const xp = paddedInput(tf, x, spec, k, out);
  const cin = x.shape[3];
  const cout = wShape[3];
  const [n, oh, ow] = dy.shape;
  const dyr = cout === cin ? dy : tf.reshape(dy, [n, oh, ow, cin, cout / cin]);
  const taps: TF.Tensor[] = [];
  for (let i = 0; i < k[0]; i++) {
    for (let j = 0; j < k[1]; j++) {
      const xs: TF.Tensor = tapSlice(tf, xp, i, j, spec, out);
      const prod = cout === cin ? tf.mul(xs, dyr) : tf.mul(tf.expandDims(xs, 4), dyr);
      taps.push(tf.reshape(tf.sum(prod, [0, 1, 2]), [cout]));
    }
  }
  return tf.reshape(tf.stack(taps), [wShape[0], wShape[1], wShape[2], wShape[3]]) as T4;
}

// ----------------------------------------------------------------------------------------- entry

type Kind = 'standard' | 'depthwise';

function withGradients(tf: Tf, kind: Kind, x: T4, w: T4, spec: Conv2dSpec, need: GradNeeds, bias?: TF.Tensor): T4 {
  const fwd = kind === 'standard' ? forwardStandard : forwardDepthwise;
  const dX = kind === 'standard' ? inputGradStandard : inputGradDepthwise;
  const dW = kind === 'standard' ? filterGradStandard : filterGradDepthwise;
  const xShape = x.shape;
  const wShape = w.shape;
  if (need.x && need.w) {
    return tf.customGrad((...args: (TF.Tensor | TF.GradSaveFunc)[]) => {
      const [xi, wi, save] = args as [T4, T4, TF.GradSaveFunc];
      save([xi, wi]);
      return { value: fwd(tf, xi, wi, spec, bias), gradFunc: (dy: T4, saved: TF.Tensor[]) => [dX(tf, dy, saved[1] as T4, xShape, spec), dW(tf, saved[0] as T4, dy, wShape, spec)] };
    })(x, w) as T4;
  }
  if (need.x) {
    return tf.customGrad((...args: (TF.Tensor | TF.GradSaveFunc)[]) => {
      const [xi, save] = args as [T4, TF.GradSaveFunc];
      save([w]);
      return { value: fwd(tf, xi, w, spec, bias), gradFunc: (dy: T4, saved: TF.Tensor[]) => [dX(tf, dy, saved[0] as T4, xShape, spec)] };
    })(x) as T4;
  }
  return tf.customGrad((...args: (TF.Tensor | TF.GradSaveFunc)[]) => {
    const [wi, save] = args as [T4, TF.GradSaveFunc];
    save([x]);
    return { value: fwd(tf, x, wi, spec, bias), gradFunc: (dy: T4, saved: TF.Tensor[]) => [dW(tf, saved[0] as T4, dy, wShape, spec)] };
  })(w) as T4;
}

/** TF.js differentiates these itself only without dilation. */
function tfjsCanDifferentiate(spec: Conv2dSpec): boolean {
  return spec.dilations.every((d) => d === 1);
}

function convOneGroup(tf: Tf, kind: Kind, x: T4, w: T4, spec: Conv2dSpec, need: GradNeeds, gradients: ConvGradients, bias?: TF.Tensor): T4 {
  const fwd = kind === 'standard' ? forwardStandard : forwardDepthwise;
  if (!need.x && !need.w) return fwd(tf, x, w, spec, bias);
  if (gradients === 'tfjs' && tfjsCanDifferentiate(spec)) return fwd(tf, x, w, spec, bias);
  return withGradients(tf, kind, x, w, spec, need, bias);
}

/**
 * Convolution of x [N, H, W, Cin] with w [KH, KW, Cin/group, Cout] (HWIO; for depthwise,
 * [KH, KW, 1, Cin * multiplier] in ONNX's output-channel order), plus an optional constant bias
 * [Cout].
 */
export function conv2d(tf: Tf, x: T4, w: T4, spec: Conv2dSpec, need: GradNeeds, gradients: ConvGradients = 'kprune', bias?: TF.Tensor): T4 {
  const cin = x.shape[3];
  const g = spec.group;
  if (g === 1) return convOneGroup(tf, 'standard', x, w, spec, need, gradients, bias);
  if (w.shape[2] === 1 && g === cin) return convOneGroup(tf, 'depthwise', x, w, spec, need, gradients, bias);
  // Grouped: one convolution per group; gradients flow through the split and the concatenation.
  const xs = tf.split(x, g, 3) as T4[];
  const ws = tf.split(w, g, 3) as T4[];
  const bs = bias ? tf.split(bias, g, 0) : [];
  return tf.concat(xs.map((xi, i) => convOneGroup(tf, 'standard', xi, ws[i], { ...spec, group: 1 }, need, gradients, bs[i])), 3);
}
