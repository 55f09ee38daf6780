/**
 * An ONNX graph cut into segments for layer-wise recovery (src/core/recover/propagation.ts): the
 * computing nodes in order, where each 3x3 layer's node sits, and a small ONNX model for any range
 * of nodes, fed with named values and returning named values. Constant nodes are not computing
 * nodes: each segment model gets a copy of the ones it reads, so their values never need caching.
 */
import type { Conv3x3Layer } from '../../model/conv.js';
import type { DataflowGraph, Segment } from '../../core/recover/propagation.js';
import { GraphProto, ModelProto, NodeProto, TensorProto, ValueInfoProto, onnx } from './proto.js';
import { OnnxModel, assertWhole, externalBytes } from './read.js';
import { floatsToBytes } from './tensor.js';
import { onnxInputs } from './inventory.js';

export interface OnnxDataflow {
  graph: DataflowGraph;
  /** The computing nodes, in the order of `graph.nodes`. */
  nodes: NodeProto[];
  /** Position of the node producing each value. */
  producer: Map<string, number>;
  /** Constant nodes by the value they produce. */
  constantNodes: Map<string, NodeProto>;
  /** Why segments cannot be run on this model (null: they can). */
  obstacle: string | null;
}

function isConstantNode(n: NodeProto): boolean {
  return n.opType === 'Constant' && (!n.domain || n.domain === 'ai.onnx');
}

export function onnxDataflow(model: OnnxModel): OnnxDataflow {
  const inputs = onnxInputs(model);
  const constantNodes = new Map<string, NodeProto>();
  const nodes: NodeProto[] = [];
  let obstacle: string | null = inputs.length === 1 ? null : `the model has ${inputs.length} inputs`;
  for (const n of model.graph.node ?? []) {
    if ((n.attribute ?? []).some((a) => a.g || (a.graphs && a.graphs.length > 0))) obstacle ??= `node "${n.name || n.opType}" (${n.opType}) has a sub-graph`;
    if (isConstantNode(n)) constantNodes.set(n.output?.[0] ?? '', n);
    else nodes.push(n);
  }
  const isStatic = (v: string) => v === '' || (model.constants.has(v) && !inputs.some((i) => i.name === v));
  const producer = new Map<string, number>();
  const graph: DataflowGraph = {
    input: inputs[0]?.name ?? '',
    nodes: nodes.map((n, i) => {
      for (const o of n.output ?? []) if (o) producer.set(o, i);
      return { inputs: (n.input ?? []).filter((v) => !isStatic(v)), outputs: (n.output ?? []).filter((v) => v !== '') };
    }),
  };
  return { graph, nodes, producer, constantNodes, obstacle };
}

/** Each layer's cut: the position of its (first) convolution node. */
export function layerCuts(flow: OnnxDataflow, layers: Conv3x3Layer[]): (number | undefined)[] {
  return layers.map((l) => flow.producer.get(l.uses[0].output));
}

/** onnxruntime's tensor type names as ONNX TensorProto data types. */
export const ELEM_TYPE: Record<string, number> = {
  float32: 1, uint8: 2, int8: 3, uint16: 4, int16: 5, int32: 6, int64: 7, string: 8, bool: 9, float16: 10, float64: 11, uint32: 12, uint64: 13,
};

function inlined(model: OnnxModel, t: TensorProto, values: Float32Array | undefined): TensorProto {
  if (values) return { ...t, rawData: floatsToBytes(values, t.dataType ?? 1), floatData: [], doubleData: [], int32Data: [], externalData: [], dataLocation: 0 };
  if (t.dataLocation !== 1) return t;
  const ref = model.constants.get(t.name ?? '')!;
  return { ...t, rawData: externalBytes(model, ref), externalData: [], dataLocation: 0 };
}

/**
 * The ONNX model of one segment: its nodes, the constant nodes and initializers they read (3x3
 * weights replaced by `weights`, external data inlined), `reads` as inputs of the given element
 * types, `writes` as outputs.
 */
export function segmentModelBytes(model: OnnxModel, flow: OnnxDataflow, segment: Segment, weights: ReadonlyMap<string, Float32Array>, types: Map<string, string>): Uint8Array {
  assertWhole(model, 'a segment model');
  const nodes = flow.nodes.slice(segment.from, segment.to);
  const used = new Set(nodes.flatMap((n) => n.input ?? []));
  // Constant nodes the segment reads, with replaced weights where they hold some (a weight stored as
  // a Constant node rather than an initializer).
  const constants = [...used].filter((v) => flow.constantNodes.has(v)).map((v) => {
    const node = flow.constantNodes.get(v)!;
    const values = weights.get(v);
    if (!values) return node;
    return { ...node, attribute: (node.attribute ?? []).map((a) => (a.name === 'value' && a.t ? { ...a, t: inlined(model, a.t, values) } : a)) };
  });
  const initializer = (model.graph.initializer ?? []).filter((t) => used.has(t.name ?? '')).map((t) => inlined(model, t, weights.get(t.name ?? '')));
  const sparseInitializer = (model.graph.sparseInitializer ?? []).filter((s) => used.has(s.values?.name ?? ''));
  const vi = (name: string, type?: string): ValueInfoProto => (type ? { name, type: { tensorType: { elemType: ELEM_TYPE[type] ?? 1 } } } : { name });
  const graph: GraphProto = {
    name: `kprune_segment_${segment.from}_${segment.to}`,
    node: [...constants, ...nodes],
    initializer,
    sparseInitializer,
    input: segment.reads.map((v) => vi(v, types.get(v))),
    output: segment.writes.map((v) => vi(v)),
  };
  const proto: ModelProto = model.proto;
  return onnx.ModelProto.encode({
    irVersion: proto.irVersion,
    opsetImport: proto.opsetImport,
    functions: proto.functions,
    graph,
  }).finish();
}
