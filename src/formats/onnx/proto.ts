/**
 * The generated ONNX schema (onnx-proto, ONNX 1.10) and the conversions from its protobuf-isms
 * (Long values, enum numbers) that the rest of the format module uses. Nothing outside
 * src/formats/onnx imports this.
 */
import onnxProto from 'onnx-proto';

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

/** TensorProto.DataType values kprune reads as weights. */
export const DataType = {
  FLOAT: 1,
  UINT8: 2,
  INT8: 3,
  INT32: 6,
  INT64: 7,
  FLOAT16: 10,
  DOUBLE: 11,
  BFLOAT16: 16,
} as const;

export function dataTypeName(t: number): string {
  const names: Record<number, string> = {
    1: 'float32', 2: 'uint8', 3: 'int8', 4: 'uint16', 5: 'int16', 6: 'int32', 7: 'int64', 8: 'string',
    9: 'bool', 10: 'float16', 11: 'float64', 12: 'uint32', 13: 'uint64', 16: 'bfloat16',
  };
  return names[t] ?? `type ${t}`;
}
