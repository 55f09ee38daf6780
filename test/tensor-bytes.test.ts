/**
 * The typed-array paths of src/formats/onnx/tensor-bytes.ts against the element-by-element
 * definitions (a DataView read per value, a count of `v !== 0` over the decoded floats), on seeded
 * values that include the awkward ones (NaN, -0, infinities, float64 values too small for float32,
 * subnormal halves), at aligned and unaligned offsets.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { countNonzeroStored, fastBytesToFloats, fastFloat32Bytes } from '../src/formats/onnx/tensor-bytes.js';
import { bytesToFloats, floatsToBytes } from '../src/formats/onnx/tensor.js';
import { countNonzero } from '../src/model/conv.js';
import { bfloat16ToFloat, halfToFloat } from '../src/util/half.js';
import { mulberry32 } from '../src/util/random.js';

const FLOAT = 1;
const FLOAT16 = 10;
const DOUBLE = 11;
const BFLOAT16 = 16;
const SIZE: Record<number, number> = { [FLOAT]: 4, [FLOAT16]: 2, [DOUBLE]: 8, [BFLOAT16]: 2 };

/** The reference decode: one DataView read per element. */
function slowDecode(bytes: Uint8Array, dataType: number, count: number): Float32Array {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) {
    if (dataType === FLOAT) out[i] = v.getFloat32(4 * i, true);
    else if (dataType === DOUBLE) out[i] = v.getFloat64(8 * i, true);
    else if (dataType === FLOAT16) out[i] = halfToFloat(v.getUint16(2 * i, true));
    else out[i] = bfloat16ToFloat(v.getUint16(2 * i, true));
  }
  return out;
}

/** Stored bytes of `count` seeded values (a quarter zeros, some specials) at byte offset `shift` of a larger buffer. */
function stored(dataType: number, count: number, shift: number, seed: number): Uint8Array {
  const r = mulberry32(seed);
  const size = SIZE[dataType];
  const buf = new Uint8Array(shift + count * size + 3);
  const v = new DataView(buf.buffer, shift);
  const specials = [0, -0, NaN, Infinity, -Infinity, 1e-300, -1e-300, 6e-8, 65504, 1e-45];
  for (let i = 0; i < count; i++) {
    const x = r();
    const val = x < 0.25 ? 0 : x < 0.3 ? specials[Math.floor(r() * specials.length)] : (r() - 0.5) * 4;
    if (dataType === FLOAT) v.setFloat32(4 * i, val, true);
    else if (dataType === DOUBLE) v.setFloat64(8 * i, val, true);
    else v.setUint16(2 * i, x < 0.25 ? (r() < 0.5 ? 0 : 0x8000) : Math.floor(r() * 65536), true);
  }
  return buf.subarray(shift, shift + count * size);
}

function assertSameFloats(a: Float32Array, b: Float32Array): void {
  assert.equal(a.length, b.length);
  const ua = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const ub = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < a.length; i++) {
    if (ua[i] !== ub[i] && !(Number.isNaN(a[i]) && Number.isNaN(b[i]))) assert.fail(`element ${i}: ${a[i]} (0x${ua[i].toString(16)}) != ${b[i]} (0x${ub[i].toString(16)})`);
  }
}

for (const dataType of [FLOAT, DOUBLE, FLOAT16, BFLOAT16]) {
  for (const shift of [0, 1, 2, 3]) {
    test(`data type ${dataType}, byte offset ${shift}: decode and non-zero count match the element-by-element definitions`, () => {
      // More than one 64 KiB block, so that unaligned counting crosses block boundaries.
      const count = 40_003;
      const bytes = stored(dataType, count, shift, 1000 * dataType + shift);
      const slow = slowDecode(bytes, dataType, count);
      const fast = fastBytesToFloats(bytes, dataType, count)!;
      assert.ok(fast, 'the fast path applies on this (little-endian) platform');
      // Bit for bit, except NaN payloads (which the element-by-element path itself quiets or not,
      // depending on how V8 compiled it).
      assertSameFloats(fast, slow);
      assertSameFloats(bytesToFloats(bytes, dataType, count, 't'), slow);
      const expected = countNonzero(slow);
      assert.ok(expected > 0 && expected < count);
      assert.equal(countNonzeroStored(bytes, dataType), expected);
    });
  }
}

test('float32 values encode to the bytes a DataView writes, also from a view into a larger array', () => {
  const r = mulberry32(7);
  const whole = Float32Array.from({ length: 1001 }, () => (r() < 0.3 ? 0 : r() - 0.5));
  whole[5] = NaN;
  whole[6] = -0;
  const values = whole.subarray(1);
  const slow = new Uint8Array(values.length * 4);
  const v = new DataView(slow.buffer);
  for (let i = 0; i < values.length; i++) v.setFloat32(4 * i, values[i], true);
  assert.deepEqual(fastFloat32Bytes(values), slow);
  assert.deepEqual(floatsToBytes(values, FLOAT), slow);
  // A copy: writing it does not change the values.
  const out = floatsToBytes(values, FLOAT);
  out[0] ^= 0xff;
  assert.equal(values[0], whole[1]);
});

test('an unknown data type is left to the slow path', () => {
  assert.equal(countNonzeroStored(new Uint8Array(8), 6), null);
  assert.equal(fastBytesToFloats(new Uint8Array(8), 6, 2), null);
});
