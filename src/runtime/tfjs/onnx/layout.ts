/**
 * The one place where ONNX's channels-first layout meets TF.js's channels-last kernels.
 *
 * ONNX activations are NCHW (channels at axis 1); TF.js convolutions and pools on the cpu and wasm
 * backends take NHWC only. A value in the executor is stored either `plain` (exactly the ONNX
 * tensor) or `channels-last` (the ONNX tensor with axis 1 moved to the end: NCHW stored as NHWC,
 * NCW as NWC). Every operator row declares which kind of input it wants (see `LayoutClass`), and
 * the executor converts with the functions below; no operator transposes for layout on its own
 * (one exception: ReduceMean without keepdims returns its result plain, see ops.ts).
 * Consecutive convolutions, pools, activations and additions therefore stay channels-last, and a
 * value is transposed back only where an operator needs ONNX's own axis order (Flatten, Reshape,
 * Gemm...).
 */
import type * as TF from '../tf.js';
import type { Tf } from '../backend.js';

export type StoredLayout = 'plain' | 'channels-last';

export interface Value {
  t: TF.Tensor;
  layout: StoredLayout;
  /** The values on the host, when known without a read (constants, Shape). */
  host?: Int32Array | Float32Array;
}

/**
 * What an operator wants of its data inputs:
 * - `channels-last`: the first input channels-last (rank >= 3); the output is channels-last.
 * - `elementwise`: any layout; when one input is channels-last, the others are broadcast-aligned to
 *   it (numpy rank extension, then the same permutation), and the output is channels-last.
 * - `axis`: inputs keep their layout when they all share it; the operator maps ONNX axes with
 *   `ctx.axis` and its output has the inputs' layout. Mixed layouts are made plain first.
 * - `plain`: every input in ONNX's own axis order; the output is plain.
 * - `shape`: the input is not touched; the operator reads its ONNX dims with `ctx.dims`.
 */
export type LayoutClass = 'channels-last' | 'elementwise' | 'axis' | 'plain' | 'shape';

/** Permutation from ONNX axes to channels-last storage: [0, 2, ..., r-1, 1]. */
export function toChannelsLastPerm(rank: number): number[] {
  return [0, ...Array.from({ length: rank - 2 }, (_, i) => i + 2), 1];
}

/** Permutation from channels-last storage back to ONNX axes: [0, r-1, 1, ..., r-2]. */
export function toPlainPerm(rank: number): number[] {
  return [0, rank - 1, ...Array.from({ length: rank - 2 }, (_, i) => i + 1)];
}

/** Where ONNX axis `a` (negative allowed) lives in a value of this layout and rank. */
export function storedAxis(layout: StoredLayout, rank: number, a: number): number {
  const axis = a < 0 ? a + rank : a;
  if (layout === 'plain' || rank < 3) return axis;
  if (axis === 0) return 0;
  if (axis === 1) return rank - 1;
  return axis - 1;
}

/** The ONNX dims of a value, whatever its storage. */
export function logicalDims(v: Value): number[] {
  const s = v.t.shape;
  if (v.layout === 'plain' || s.length < 3) return s;
  return toPlainPerm(s.length).map((p) => s[p]);
}

/** True when moving axis 1 does not reorder memory (every spatial dim, or the channel dim, is 1). */
function moveIsReshape(storedShape: number[], layout: StoredLayout): boolean {
  const r = storedShape.length;
  const channels = layout === 'plain' ? storedShape[1] : storedShape[r - 1];
  const spatial = layout === 'plain' ? storedShape.slice(2) : storedShape.slice(1, r - 1);
  return channels === 1 || spatial.every((d) => d === 1);
}

export function toPlain(tf: Tf, v: Value): TF.Tensor {
  const r = v.t.rank;
  if (v.layout === 'plain' || r < 3) return v.t;
  const dims = logicalDims(v);
  if (moveIsReshape(v.t.shape, v.layout)) return tf.reshape(v.t, dims);
  return tf.transpose(v.t, toPlainPerm(r));
}

export function toChannelsLast(tf: Tf, v: Value): TF.Tensor {
  const r = v.t.rank;
  if (v.layout === 'channels-last' || r < 3) return v.t;
  if (moveIsReshape(v.t.shape, v.layout)) return tf.reshape(v.t, toChannelsLastPerm(r).map((p) => v.t.shape[p]));
  return tf.transpose(v.t, toChannelsLastPerm(r));
}

/** A plain value made to broadcast against a channels-last value of rank `rank`. */
export function alignToChannelsLast(tf: Tf, t: TF.Tensor, rank: number): TF.Tensor {
  if (t.rank === 0 || rank < 3) return t;
  // numpy broadcasting aligns trailing axes: extend to the full rank first, then permute.
  return tf.tidy(() => {
    const full = t.rank < rank ? tf.reshape(t, [...Array(rank - t.rank).fill(1), ...t.shape]) : t;
    return toChannelsLast(tf, { t: full, layout: 'plain' });
  });
}

/** The layout a set of data inputs is run in, for an `axis` operator. */
export function commonLayout(values: Value[]): StoredLayout {
  const ranks = new Set(values.map((v) => v.t.rank));
  return values.length > 0 && ranks.size === 1 && values.every((v) => v.layout === 'channels-last' && v.t.rank >= 3) ? 'channels-last' : 'plain';
}
