/**
 * ONNX stored tensor bytes <-> float32 at memory speed (src/util/float-bytes.ts), and non-zero
 * counts straight from the stored bytes. A DataView getter per element ran at ~40 M values/s; a
 * VGG-16 (138 M weights) spent 11 s counting. A count reads the stored bits without making a
 * Float32Array at all (a 411 MB Gemm weight is not copied to be counted). Results are identical to
 * the element-by-element definitions in tensor.ts.
 */
import { bfloat16FromLE, countBitsLE, countFloat64LE, float32FromLE, float32ToLE, float64FromLE, halfFromLE } from '../../util/float-bytes.js';
import { DataType } from './proto.js';

/**
 * Little-endian stored floats as a new Float32Array, or null where this fast path does not apply
 * (a big-endian platform, or a type other than float32/float64/float16/bfloat16).
 */
export function fastBytesToFloats(bytes: Uint8Array, dataType: number, count: number): Float32Array | null {
  switch (dataType) {
    case DataType.FLOAT: return float32FromLE(bytes, count);
    case DataType.DOUBLE: return float64FromLE(bytes, count);
    case DataType.FLOAT16: return halfFromLE(bytes, count);
    case DataType.BFLOAT16: return bfloat16FromLE(bytes, count);
    default: return null;
  }
}

/** float32 values as little-endian float32 bytes (a copy), or null on a big-endian platform. */
export function fastFloat32Bytes(values: Float32Array): Uint8Array | null {
  return float32ToLE(values);
}

/**
 * Elements that are not zero once read as float32, counted on the stored bytes: the same number as
 * counting the decoded Float32Array (NaN counts, -0 does not; a float64 too small for float32 is
 * zero). null where this fast path does not apply (see fastBytesToFloats).
 */
export function countNonzeroStored(bytes: Uint8Array, dataType: number): number | null {
  switch (dataType) {
    case DataType.FLOAT: return countBitsLE(bytes, 4, 0x7fffffff);
    case DataType.FLOAT16:
    case DataType.BFLOAT16: return countBitsLE(bytes, 2, 0x7fff);
    case DataType.DOUBLE: return countFloat64LE(bytes);
    default: return null;
  }
}
