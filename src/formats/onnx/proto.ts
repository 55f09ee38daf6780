/**
 * The generated ONNX schema (onnx-proto, ONNX 1.10) and the conversions from its protobuf-isms
 * (Long values, enum numbers) that the rest of the format module uses. Only the ONNX rooms import
 * this: src/formats/onnx, and src/models/onnx where it builds probe and timing copies of a model.
 */
import onnxProto from 'onnx-proto';
import type { ElementType } from '../../model/inputs.js';

export const onnx = onnxProto.onnx;
export type ModelProto = onnxProto.onnx.ModelProto;
export type GraphProto = onnxProto.onnx.IGraphProto;
export type NodeProto = onnxProto.onnx.INodeProto;
export type TensorProto = onnxProto.onnx.ITensorProto;
export type AttributeProto = onnxProto.onnx.IAttributeProto;
export type ValueInfoProto = onnxProto.onnx.IValueInfoProto;
export type SparseTensorProto = onnxProto.onnx.ISparseTensorProto;

/** protobufjs gives int64 fields as Long objects (or numbers); ONNX dims fit in a double. */
export function toNumber(v: number | { toString(): string } | null | undefined): number {
  if (v === null || v === undefined) return 0;
  return typeof v === 'number' ? v : Number(v.toString());
}

/** TensorProto.DataType numbers by name (those kprune reads or writes). */
export const DataType = {
  FLOAT: 1,
  UINT8: 2,
  INT8: 3,
  UINT16: 4,
  INT16: 5,
  INT32: 6,
  INT64: 7,
  STRING: 8,
  BOOL: 9,
  FLOAT16: 10,
  DOUBLE: 11,
  UINT32: 12,
  UINT64: 13,
  BFLOAT16: 16,
} as const;

export interface DataTypeInfo {
  name: string;
  /** Bytes per element in raw_data (0: not fixed, strings). */
  bytes: number;
  /** Floats are weights; integers shapes, axes and indices. */
  kind: 'float' | 'int' | 'bool' | 'string';
  /** The element type of a model input of this type, where kprune feeds one. */
  element?: ElementType;
}

/** The one table of ONNX element types: every other list of them is derived from it. */
export const DATA_TYPES: ReadonlyMap<number, DataTypeInfo> = new Map<number, DataTypeInfo>([
  [DataType.FLOAT, { name: 'float32', bytes: 4, kind: 'float', element: 'float32' }],
  [DataType.UINT8, { name: 'uint8', bytes: 1, kind: 'int', element: 'uint8' }],
  [DataType.INT8, { name: 'int8', bytes: 1, kind: 'int', element: 'int8' }],
  [DataType.UINT16, { name: 'uint16', bytes: 2, kind: 'int' }],
  [DataType.INT16, { name: 'int16', bytes: 2, kind: 'int' }],
  [DataType.INT32, { name: 'int32', bytes: 4, kind: 'int', element: 'int32' }],
  [DataType.INT64, { name: 'int64', bytes: 8, kind: 'int', element: 'int64' }],
  [DataType.STRING, { name: 'string', bytes: 0, kind: 'string' }],
  [DataType.BOOL, { name: 'bool', bytes: 1, kind: 'bool', element: 'bool' }],
  [DataType.FLOAT16, { name: 'float16', bytes: 2, kind: 'float', element: 'float16' }],
  [DataType.DOUBLE, { name: 'float64', bytes: 8, kind: 'float', element: 'float64' }],
  [DataType.UINT32, { name: 'uint32', bytes: 4, kind: 'int' }],
  [DataType.UINT64, { name: 'uint64', bytes: 8, kind: 'int' }],
  [DataType.BFLOAT16, { name: 'bfloat16', bytes: 2, kind: 'float' }],
]);

/** The element types of a kind, e.g. every float type. */
export function dataTypesOf(kind: DataTypeInfo['kind']): ReadonlySet<number> {
  return new Set([...DATA_TYPES].filter(([, d]) => d.kind === kind).map(([t]) => t));
}

export function dataTypeName(t: number): string {
  return DATA_TYPES.get(t)?.name ?? `type ${t}`;
}
