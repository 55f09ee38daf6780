/**
 * A computation graph as plain data: what a format decodes (formats/onnx/decode-graph.ts) and an
 * executor runs (runtime/tfjs/onnx/). Nodes carry ONNX's operator names and attribute names, with
 * every value already decoded; no protobuf, no runtime.
 */

/** A decoded attribute value. Tensor attributes (Constant's `value`) become host tensors. */
export type AttrValue =
  | { type: 'int'; value: number }
  | { type: 'ints'; value: number[] }
  | { type: 'float'; value: number }
  | { type: 'floats'; value: number[] }
  | { type: 'string'; value: string }
  | { type: 'strings'; value: string[] }
  | { type: 'tensor'; value: HostTensor }
  | { type: 'other'; value: null };

export type AttrType = AttrValue['type'];

/** Element types the executor distinguishes: floats compute, integers describe shapes and indices. */
export type HostDtype = 'float32' | 'int32' | 'bool';

/**
 * A constant tensor's values. Integer tensors (int64 included) are int32 here: they are shapes,
 * axes and indices; values beyond the int32 range (Slice's "to the end" INT64_MAX) are clamped.
 */
export interface HostTensor {
  dims: number[];
  dtype: HostDtype;
  data: Float32Array | Int32Array;
}

export interface DecodedNode {
  /** The node's name, or `<opType>#<index>` when it has none. */
  name: string;
  opType: string;
  domain: string;
  /** Input value names in order; '' marks an omitted optional input. */
  inputs: string[];
  outputs: string[];
  attrs: Map<string, AttrValue>;
}

export interface DecodedGraph {
  file: string;
  /** The default-domain opset. */
  opset: number;
  /** Graph inputs that are fed at run time (initializers listed as inputs are constants). */
  inputs: { name: string; dims: (number | string)[] }[];
  outputs: string[];
  nodes: DecodedNode[];
  /** Initializers and Constant node outputs. Float tensors are read lazily by name. */
  constantNames: Set<string>;
  /** Reads a constant (float32 for float types, int32 for integer types). */
  readConstant(name: string): HostTensor;
}
