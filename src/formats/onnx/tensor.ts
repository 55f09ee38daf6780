/**
 * ONNX weight tensors: where their numbers are (inline in one of several fields, or in an external
 * file) and conversions between their stored element type and float32.
 */
import { KpruneError } from '../../errors.js';
import { bfloat16ToFloat, floatToBfloat16, floatToHalf, halfToFloat } from '../../util/half.js';
import { DATA_TYPES, DataType, TensorProto, dataTypeName, dataTypesOf, toNumber } from './proto.js';
import { fastBytesToFloats, fastFloat32Bytes } from './tensor-bytes.js';

export type TensorStorage = 'raw_data' | 'float_data' | 'double_data' | 'int32_data' | 'external';

export interface ExternalLocation {
  location: string;
  offset: number;
  /** Bytes; absent in the file means "to the end of the file". */
  length?: number;
}

/** A constant tensor of the graph: an initializer or the value of a `Constant` node. */
export interface TensorRef {
  name: string;
  dims: number[];
  dataType: number;
  origin: { kind: 'initializer' } | { kind: 'constant'; node: string } | { kind: 'sparse' };
  storage: TensorStorage;
  external?: ExternalLocation;
  /**
   * raw_data left in the file by a lazy read (skeleton.ts): where its bytes are. `proto.rawData`
   * is then only a marker.
   */
  inFile?: { offset: number; length: number };
  proto: TensorProto;
}

export const FLOAT_TYPES: ReadonlySet<number> = dataTypesOf('float');

export function elementCount(dims: number[]): number {
  return dims.reduce((a, b) => a * b, 1);
}

/** Bytes per element in raw_data (0 for strings and unknown types). */
export function bytesPerElement(dataType: number): number {
  return DATA_TYPES.get(dataType)?.bytes ?? 0;
}

export function describeTensor(proto: TensorProto, origin: TensorRef['origin'], fallbackName: string): TensorRef {
  const dims = (proto.dims ?? []).map(toNumber);
  const dataType = proto.dataType ?? 0;
  const name = proto.name || fallbackName;
  if (proto.dataLocation === 1) {
    const entries = new Map((proto.externalData ?? []).map((e) => [e.key ?? '', e.value ?? '']));
    const location = entries.get('location');
    if (!location) throw new KpruneError('bad-model', `tensor "${name}" is stored externally but names no location`);
    const offset = entries.has('offset') ? Number(entries.get('offset')) : 0;
    const length = entries.has('length') ? Number(entries.get('length')) : undefined;
    if (!Number.isSafeInteger(offset) || offset < 0 || (length !== undefined && (!Number.isSafeInteger(length) || length < 0))) {
      throw new KpruneError('bad-model', `tensor "${name}" has an invalid external offset or length`);
    }
    return { name, dims, dataType, origin, storage: 'external', external: { location, offset, length }, proto };
  }
  let storage: TensorStorage = 'raw_data';
  if (proto.rawData && proto.rawData.length > 0) storage = 'raw_data';
  else if (proto.floatData && proto.floatData.length > 0) storage = 'float_data';
  else if (proto.doubleData && proto.doubleData.length > 0) storage = 'double_data';
  else if (proto.int32Data && proto.int32Data.length > 0) storage = 'int32_data';
  return { name, dims, dataType, origin, storage, proto };
}

/** Decodes little-endian stored bytes of a float tensor to float32. */
export function bytesToFloats(bytes: Uint8Array, dataType: number, count: number, name: string): Float32Array {
  const need = count * bytesPerElement(dataType);
  if (bytes.length !== need) {
    throw new KpruneError('bad-model', `tensor "${name}" has ${bytes.length} bytes of data, its shape needs ${need}`);
  }
  const fast = fastBytesToFloats(bytes, dataType, count);
  if (fast) return fast;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float32Array(count);
  switch (dataType) {
    case DataType.FLOAT:
      for (let i = 0; i < count; i++) out[i] = view.getFloat32(4 * i, true);
      break;
    case DataType.DOUBLE:
      for (let i = 0; i < count; i++) out[i] = view.getFloat64(8 * i, true);
      break;
    case DataType.FLOAT16:
      for (let i = 0; i < count; i++) out[i] = halfToFloat(view.getUint16(2 * i, true));
      break;
    case DataType.BFLOAT16:
      for (let i = 0; i < count; i++) out[i] = bfloat16ToFloat(view.getUint16(2 * i, true));
      break;
    default:
      throw new KpruneError('unsupported', `tensor "${name}" has element type ${dataTypeName(dataType)}, not a float type`);
  }
  return out;
}

/** Encodes float32 values as little-endian bytes of the given float type. */
export function floatsToBytes(values: Float32Array, dataType: number): Uint8Array {
  const fast = dataType === DataType.FLOAT ? fastFloat32Bytes(values) : null;
  if (fast) return fast;
  const out = new Uint8Array(values.length * bytesPerElement(dataType));
  const view = new DataView(out.buffer);
  switch (dataType) {
    case DataType.FLOAT:
      for (let i = 0; i < values.length; i++) view.setFloat32(4 * i, values[i], true);
      break;
    case DataType.DOUBLE:
      for (let i = 0; i < values.length; i++) view.setFloat64(8 * i, values[i], true);
      break;
    case DataType.FLOAT16:
      for (let i = 0; i < values.length; i++) view.setUint16(2 * i, floatToHalf(values[i]), true);
      break;
    case DataType.BFLOAT16:
      for (let i = 0; i < values.length; i++) view.setUint16(2 * i, floatToBfloat16(values[i]), true);
      break;
    default:
      throw new KpruneError('unsupported', `cannot store weights as ${dataTypeName(dataType)}`);
  }
  return out;
}

/** Float values of an inline tensor (external ones are read by the model, which owns the files). */
export function inlineFloats(ref: TensorRef): Float32Array {
  const count = elementCount(ref.dims);
  const p = ref.proto;
  switch (ref.storage) {
    case 'raw_data':
      return bytesToFloats(p.rawData ?? new Uint8Array(0), ref.dataType, count, ref.name);
    case 'float_data':
      if (ref.dataType !== DataType.FLOAT) break;
      if (p.floatData!.length !== count) break;
      return Float32Array.from(p.floatData!);
    case 'double_data':
      if (p.doubleData!.length !== count) break;
      return Float32Array.from(p.doubleData!);
    case 'int32_data': {
      // float16 and bfloat16 keep their 16 bits in int32_data (onnx.proto, TensorProto.int32_data).
      if (p.int32Data!.length !== count) break;
      const conv = ref.dataType === DataType.BFLOAT16 ? bfloat16ToFloat : halfToFloat;
      if (ref.dataType !== DataType.FLOAT16 && ref.dataType !== DataType.BFLOAT16) break;
      return Float32Array.from(p.int32Data!, (v) => conv(v & 0xffff));
    }
    case 'external':
      throw new Error('inlineFloats called on an external tensor');
  }
  throw new KpruneError('bad-model', `tensor "${ref.name}" holds data that does not match its shape [${ref.dims.join(', ')}] and type ${dataTypeName(ref.dataType)}`);
}
