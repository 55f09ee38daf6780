/**
 * An ONNX graph decoded into plain data (model/graph.ts) for the TF.js executor
 * (runtime/tfjs/onnx/): nodes with their attributes decoded once (names, Long values, enum numbers
 * and raw bytes stay here), and constant tensors as typed arrays. The executor never sees protobuf.
 */
import { KpruneError } from '../../errors.js';
import type { AttrValue, DecodedGraph, DecodedNode, HostTensor } from '../../model/graph.js';
import { decodeAttribute } from './attributes.js';
import { DATA_TYPES, DataType, NodeProto, dataTypeName, dataTypesOf, toNumber } from './proto.js';
import { OnnxModel, externalBytes, tensorFloats } from './read.js';
import { TensorRef, describeTensor, elementCount } from './tensor.js';

const INT_TYPES = dataTypesOf('int');
const FLOAT_TYPES = dataTypesOf('float');
const I32_MAX = 2147483647;
const I32_MIN = -2147483648;

function clampInt(v: number): number {
  return v > I32_MAX ? I32_MAX : v < I32_MIN ? I32_MIN : v;
}

function intBytes(bytes: Uint8Array, dataType: number, count: number, name: string): Int32Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const size = DATA_TYPES.get(dataType)?.bytes ?? 1;
  if (bytes.length !== count * size) throw new KpruneError('bad-model', `tensor "${name}" has ${bytes.length} bytes of data, its shape needs ${count * size}`);
  const out = new Int32Array(count);
  for (let i = 0; i < count; i++) {
    switch (dataType) {
      case DataType.INT64: out[i] = clampInt(Number(view.getBigInt64(8 * i, true))); break;
      case DataType.UINT64: out[i] = clampInt(Number(view.getBigUint64(8 * i, true))); break;
      case DataType.INT32: out[i] = view.getInt32(4 * i, true); break;
      case DataType.UINT32: out[i] = clampInt(view.getUint32(4 * i, true)); break;
      case DataType.INT16: out[i] = view.getInt16(2 * i, true); break;
      case DataType.UINT16: out[i] = view.getUint16(2 * i, true); break;
      case DataType.INT8: out[i] = view.getInt8(i); break;
      default: out[i] = view.getUint8(i);
    }
  }
  return out;
}

/** Integer or bool values of a tensor, wherever the proto keeps them. */
function readInts(model: OnnxModel, ref: TensorRef): Int32Array {
  const count = elementCount(ref.dims);
  const p = ref.proto;
  if (ref.storage === 'external') return intBytes(externalBytes(model, ref), ref.dataType, count, ref.name);
  if (p.rawData && p.rawData.length > 0) return intBytes(p.rawData, ref.dataType === DataType.BOOL ? DataType.UINT8 : ref.dataType, count, ref.name);
  const listed = ref.dataType === DataType.INT64 || ref.dataType === DataType.UINT64 ? p.int64Data ?? p.uint64Data ?? [] : p.int32Data ?? [];
  if (listed.length !== count) throw new KpruneError('bad-model', `tensor "${ref.name}" holds ${listed.length} values, its shape [${ref.dims.join(', ')}] needs ${count}`);
  return Int32Array.from(listed, (v) => clampInt(toNumber(v as number)));
}

function hostTensor(model: OnnxModel, ref: TensorRef): HostTensor {
  if (FLOAT_TYPES.has(ref.dataType)) return { dims: ref.dims, dtype: 'float32', data: tensorFloats(model, ref) };
  if (INT_TYPES.has(ref.dataType)) return { dims: ref.dims, dtype: 'int32', data: readInts(model, ref) };
  if (ref.dataType === DataType.BOOL) return { dims: ref.dims, dtype: 'bool', data: readInts(model, ref) };
  throw new KpruneError('unsupported', `tensor "${ref.name}" has element type ${dataTypeName(ref.dataType)}, which the TF.js executor does not handle`, { file: model.path });
}

function decodeNode(model: OnnxModel, n: NodeProto, index: number): DecodedNode {
  const opType = n.opType ?? '';
  const name = n.name || `${opType}#${index}`;
  const attrs = new Map<string, AttrValue>();
  // A Constant whose tensor read.ts already knows is read from there, once, when it is needed.
  const known = opType === 'Constant' && model.constants.has(n.output?.[0] ?? '');
  for (const a of n.attribute ?? []) {
    if (!a.name) continue;
    attrs.set(a.name, decodeAttribute(a, known ? undefined : (t) => hostTensor(model, describeTensor(t, { kind: 'constant', node: name }, name))));
  }
  return { name, opType, domain: n.domain === 'ai.onnx' ? '' : n.domain ?? '', inputs: [...(n.input ?? [])], outputs: [...(n.output ?? [])], attrs };
}

/** The value a Constant node produces, from whichever attribute it uses (opset 1-21). */
export function constantNodeValue(node: DecodedNode): HostTensor | undefined {
  const a = [...node.attrs.entries()].find(([k]) => k.startsWith('value') || k === 'sparse_value');
  if (!a) return undefined;
  const [, v] = a;
  switch (v.type) {
    case 'tensor': return v.value;
    case 'float': return { dims: [], dtype: 'float32', data: Float32Array.of(v.value) };
    case 'floats': return { dims: [v.value.length], dtype: 'float32', data: Float32Array.from(v.value) };
    case 'int': return { dims: [], dtype: 'int32', data: Int32Array.of(clampInt(v.value)) };
    case 'ints': return { dims: [v.value.length], dtype: 'int32', data: Int32Array.from(v.value, clampInt) };
    default: return undefined;
  }
}

export function decodeGraph(model: OnnxModel): DecodedGraph {
  const graph = model.graph;
  const opset = model.opsets.find((o) => o.domain === '' || o.domain === 'ai.onnx')?.version ?? 0;
  const nodes = (graph.node ?? []).map((n, i) => decodeNode(model, n, i));
  const constantNames = new Set(model.constants.keys());
  const fromNodes = new Map<string, HostTensor>();
  for (const n of nodes) {
    if (n.opType !== 'Constant' || n.domain !== '' || model.constants.has(n.outputs[0] ?? '')) continue;
    const v = constantNodeValue(n);
    if (v && n.outputs[0]) {
      fromNodes.set(n.outputs[0], v);
      constantNames.add(n.outputs[0]);
    }
  }
  const inputs = (graph.input ?? [])
    .filter((i) => i.name && !constantNames.has(i.name))
    .map((i) => ({
      name: i.name!,
      dims: (i.type?.tensorType?.shape?.dim ?? []).map((d) => (d.dimParam ? d.dimParam : d.dimValue !== undefined && d.dimValue !== null ? toNumber(d.dimValue) : '?')),
    }));
  const cache = new Map<string, HostTensor>();
  return {
    file: model.path,
    opset,
    inputs,
    outputs: (graph.output ?? []).map((o) => o.name ?? ''),
    nodes,
    constantNames,
    readConstant(name) {
      let t = cache.get(name) ?? fromNodes.get(name);
      if (t) return t;
      const ref = model.constants.get(name);
      if (!ref) throw new KpruneError('bad-model', `"${name}" is not a constant of the model`, { file: model.path });
      t = hostTensor(model, ref);
      // Float weights are large and read once into TF.js; only small integer tensors are kept.
      if (t.dtype !== 'float32') cache.set(name, t);
      return t;
    },
  };
}
