/**
 * TF.js weight storage: the dtypes a weights manifest names, and the quantized encodings
 * (tfjs-core io_utils decodeWeight; tfjs-converter quantization.py), as one table each.
 */
import { float32FromLE, float32ToLE, halfFromLE } from '../../util/float-bytes.js';
import { floatToHalf, halfToFloat } from '../../util/half.js';

/** The dtypes of TF.js tensors in a manifest; string tensors are length-prefixed (read.ts). */
export type WeightDtype = 'float32' | 'int32' | 'bool' | 'complex64' | 'string';
export type QuantDtype = 'uint8' | 'uint16' | 'float16';

const VALUE_BYTES: Record<Exclude<WeightDtype, 'string'>, number> = { float32: 4, int32: 4, bool: 1, complex64: 8 };
export const QUANT_BYTES: Record<QuantDtype, number> = { uint8: 1, uint16: 2, float16: 2 };

export const WEIGHT_DTYPES = ['float32', 'int32', 'bool', 'complex64', 'string'] as const;
export const QUANT_DTYPES = ['uint8', 'uint16', 'float16'] as const;

export function isWeightDtype(s: unknown): s is WeightDtype {
  return typeof s === 'string' && (WEIGHT_DTYPES as readonly string[]).includes(s);
}

export function isQuantDtype(s: unknown): s is QuantDtype {
  return typeof s === 'string' && (QUANT_DTYPES as readonly string[]).includes(s);
}

/** How one tensor is stored: its own dtype, or a quantized encoding with its affine range. */
export type Storage =
  | { kind: 'plain'; dtype: WeightDtype }
  | { kind: 'affine'; dtype: 'uint8' | 'uint16'; min: number; scale: number }
  | { kind: 'float16' };

export function storageName(s: Storage): string {
  switch (s.kind) {
    case 'plain': return s.dtype;
    case 'affine': return `${s.dtype} quantized`;
    case 'float16': return 'float16';
  }
}

/** Bytes per element of a non-string storage. */
export function elementBytes(s: Storage): number {
  switch (s.kind) {
    case 'plain': return s.dtype === 'string' ? NaN : VALUE_BYTES[s.dtype];
    case 'affine': return QUANT_BYTES[s.dtype];
    case 'float16': return 2;
  }
}

/** The float values of a float32 tensor, dequantized exactly as TF.js does when it loads the model. */
export function decodeFloats(s: Storage, bytes: Uint8Array): Float32Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  switch (s.kind) {
    case 'plain': {
      const fast = float32FromLE(bytes);
      if (fast) return fast;
      const out = new Float32Array(bytes.length / 4);
      for (let i = 0; i < out.length; i++) out[i] = view.getFloat32(4 * i, true);
      return out;
    }
    case 'affine': {
      const n = bytes.length / QUANT_BYTES[s.dtype];
      const out = new Float32Array(n);
      // v * scale + min in float64, rounded once to float32: tfjs-core's decodeWeight.
      for (let i = 0; i < n; i++) out[i] = (s.dtype === 'uint8' ? bytes[i] : view.getUint16(2 * i, true)) * s.scale + s.min;
      return out;
    }
    case 'float16': {
      const fast = halfFromLE(bytes);
      if (fast) return fast;
      const out = new Float32Array(bytes.length / 2);
      for (let i = 0; i < out.length; i++) out[i] = halfToFloat(view.getUint16(2 * i, true));
      return out;
    }
  }
}

/** numpy's np.round: halves go to the even neighbour. */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * Affine quantization as tfjs-converter's quantize_weights does it: scale = (max - min) / (2^bits - 1),
 * and when the range covers 0 it is nudged so that 0 is a code exactly (min = -zeroPoint * scale), so
 * that pruned weights dequantize to exactly 0 (zeroPoint * scale + min is x + -x in float64).
 */
export function quantizeAffine(values: Float32Array, dtype: 'uint8' | 'uint16'): { codes: Uint8Array | Uint16Array; min: number; scale: number } {
  const qmax = dtype === 'uint8' ? 255 : 65535;
  const codes = dtype === 'uint8' ? new Uint8Array(values.length) : new Uint16Array(values.length);
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < values.length; i++) {
    if (values[i] < lo) lo = values[i];
    if (values[i] > hi) hi = values[i];
  }
  if (values.length === 0) return { codes, min: 0, scale: 1 };
  if (lo === hi) return { codes, min: lo, scale: 1 };
  const scale = (hi - lo) / qmax;
  let min = lo;
  let max = hi;
  if (lo <= 0 && 0 <= hi) {
    const zeroPoint = roundHalfEven((0 - lo) / scale);
    min = -zeroPoint * scale;
    max = qmax * scale + min;
  }
  for (let i = 0; i < values.length; i++) {
    const v = Math.min(Math.max(values[i], min), max);
    codes[i] = Math.min(qmax, Math.max(0, roundHalfEven((v - min) / scale)));
  }
  return { codes, min, scale };
}

/** Encodes float32 values in a storage; affine storages get a fresh range (returned). */
export function encodeFloats(s: Storage, values: Float32Array): { bytes: Uint8Array; storage: Storage } {
  switch (s.kind) {
    case 'plain': {
      if (s.dtype !== 'float32') throw new Error(`cannot encode floats as ${s.dtype}`);
      const fast = float32ToLE(values);
      if (fast) return { bytes: fast, storage: s };
      const bytes = new Uint8Array(values.length * 4);
      const view = new DataView(bytes.buffer);
      for (let i = 0; i < values.length; i++) view.setFloat32(4 * i, values[i], true);
      return { bytes, storage: s };
    }
    case 'affine': {
      const q = quantizeAffine(values, s.dtype);
      const bytes = new Uint8Array(q.codes.length * QUANT_BYTES[s.dtype]);
      const view = new DataView(bytes.buffer);
      for (let i = 0; i < q.codes.length; i++) {
        if (s.dtype === 'uint8') bytes[i] = q.codes[i];
        else view.setUint16(2 * i, q.codes[i], true);
      }
      return { bytes, storage: { kind: 'affine', dtype: s.dtype, min: q.min, scale: q.scale } };
    }
    case 'float16': {
      const bytes = new Uint8Array(values.length * 2);
      const view = new DataView(bytes.buffer);
      for (let i = 0; i < values.length; i++) view.setUint16(2 * i, floatToHalf(values[i]), true);
      return { bytes, storage: s };
    }
  }
}
