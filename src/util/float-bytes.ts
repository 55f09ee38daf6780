/**
 * Little-endian stored floats <-> Float32Array at memory speed, for every format's weights: one
 * copy for float32, one table lookup per value for float16, a shift for bfloat16. A DataView getter
 * per element ran at ~40 M values/s; these run at memory speed. null where they do not apply (a
 * big-endian platform: typed arrays use the platform's byte order).
 */
import { halfToFloat } from './half.js';

export const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

let halfTable: Float32Array | null = null;

/** float16 -> float32 for all 65,536 bit patterns (256 KB, made on first use). */
function halfToFloatTable(): Float32Array {
  return (halfTable ??= Float32Array.from({ length: 65536 }, (_, h) => halfToFloat(h)));
}

/** `bytes` as a Uint16Array: a view when aligned, else a copy. */
function u16(bytes: Uint8Array): Uint16Array {
  if (bytes.byteOffset % 2 === 0) return new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.length >> 1);
  return new Uint16Array(new Uint8Array(bytes).buffer);
}

/** Stored little-endian float32 as a new Float32Array of `count` values (bytes must hold them). */
export function float32FromLE(bytes: Uint8Array, count = bytes.length >> 2): Float32Array | null {
  if (!LITTLE_ENDIAN) return null;
  const out = new Float32Array(count);
  new Uint8Array(out.buffer).set(bytes.subarray(0, count * 4));
  return out;
}

export function float64FromLE(bytes: Uint8Array, count = bytes.length >> 3): Float32Array | null {
  if (!LITTLE_ENDIAN) return null;
  const d = new Float64Array(count);
  new Uint8Array(d.buffer).set(bytes.subarray(0, count * 8));
  return Float32Array.from(d);
}

/** Stored little-endian float16 as float32 (halfToFloat's values). */
export function halfFromLE(bytes: Uint8Array, count = bytes.length >> 1): Float32Array | null {
  if (!LITTLE_ENDIAN) return null;
  const out = new Float32Array(count);
  const t = halfToFloatTable();
  const h = u16(bytes);
  for (let i = 0; i < count; i++) out[i] = t[h[i]];
  return out;
}

/** Stored little-endian bfloat16 as float32: the top half of each float32, bit for bit (NaN payloads too). */
export function bfloat16FromLE(bytes: Uint8Array, count = bytes.length >> 1): Float32Array | null {
  if (!LITTLE_ENDIAN) return null;
  const out = new Float32Array(count);
  const o = new Uint32Array(out.buffer);
  const h = u16(bytes);
  for (let i = 0; i < count; i++) o[i] = h[i] << 16;
  return out;
}

/** float32 values as little-endian float32 bytes (a copy). */
export function float32ToLE(values: Float32Array): Uint8Array | null {
  if (!LITTLE_ENDIAN) return null;
  return new Uint8Array(values.buffer.slice(values.byteOffset, values.byteOffset + values.byteLength));
}

// Unaligned stored bytes are counted through this aligned block, 64 KiB at a time.
const BLOCK = 1 << 16;
const scratch = new Uint8Array(BLOCK);

/**
 * Elements of `size` bytes with any bit of `mask` set, on little-endian stored bytes: with the
 * sign bit left out of the mask, the non-zero floats (NaN counts, -0 does not).
 */
export function countBitsLE(bytes: Uint8Array, size: 2 | 4, mask: number): number | null {
  if (!LITTLE_ENDIAN) return null;
  // One monomorphic loop per element size: V8 compiles each to a tight loop over one array type.
  const count = (b: Uint8Array, len: number) => (size === 4
    ? count32(new Uint32Array(b.buffer, b.byteOffset, len >> 2), mask)
    : count16(new Uint16Array(b.buffer, b.byteOffset, len >> 1), mask));
  if (bytes.byteOffset % size === 0) return count(bytes, bytes.length - (bytes.length % size));
  let n = 0;
  for (let at = 0; at < bytes.length; at += BLOCK) {
    const len = Math.min(BLOCK, bytes.length - at);
    scratch.set(bytes.subarray(at, at + len));
    n += count(scratch, len - (len % size));
  }
  return n;
}

function count32(v: Uint32Array, mask: number): number {
  let n = 0;
  for (let i = 0; i < v.length; i++) if ((v[i] & mask) !== 0) n++;
  return n;
}

function count16(v: Uint16Array, mask: number): number {
  let n = 0;
  for (let i = 0; i < v.length; i++) if ((v[i] & mask) !== 0) n++;
  return n;
}

/** Non-zero float64 values once rounded to float32 (a value too small for float32 is zero). */
export function countFloat64LE(bytes: Uint8Array): number | null {
  if (!LITTLE_ENDIAN) return null;
  let n = 0;
  const d = new Float64Array(scratch.buffer);
  for (let at = 0; at < bytes.length; at += BLOCK) {
    const len = Math.min(BLOCK, bytes.length - at);
    scratch.set(bytes.subarray(at, at + len));
    for (let i = 0; i < len >> 3; i++) if (Math.fround(d[i]) !== 0) n++;
  }
  return n;
}
