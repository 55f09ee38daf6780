/**
 * A format-neutral inventory of an ONNX model for the report: its inputs, its weights, and the nodes
 * whose multiply-accumulates we count; plus a probe copy of the model that exposes those nodes'
 * outputs, so one onnxruntime run can tell their sizes.
 */
import { countNonzero } from '../../model/conv.js';
import { InputSpec } from '../../model/inputs.js';
import type { ComputeNode, ModelInventory, WeightInfo } from '../../model/inventory.js';
import { Attributes } from './attributes.js';
import { DATA_TYPES, ValueInfoProto, toNumber } from './proto.js';
import { OnnxModel, externalBytes, readRange, tensorFloats } from './read.js';
import { FLOAT_TYPES, TensorRef, bytesPerElement, bytesToFloats, elementCount } from './tensor.js';
import { countNonzeroStored } from './tensor-bytes.js';

function inputSpec(v: ValueInfoProto): InputSpec {
  const t = v.type?.tensorType;
  const dims = (t?.shape?.dim ?? []).map((d, i) => (d.dimValue !== undefined && d.dimValue !== null && toNumber(d.dimValue) > 0 ? toNumber(d.dimValue) : d.dimParam || `dim${i}`));
  return { name: v.name ?? '', dims, type: DATA_TYPES.get(t?.elemType ?? 1)?.element ?? 'float32' };
}


/** `overrides` gives new values for some weights (the reshaped ones), to count their zeros. */
export function onnxInventory(model: OnnxModel, overrides: ReadonlyMap<string, Float32Array> = new Map(), known: ReadonlyMap<string, number> = new Map()): ModelInventory {
  const weights: WeightInfo[] = [];
  for (const ref of model.constants.values()) {
    if (!FLOAT_TYPES.has(ref.dataType)) continue;
    const values = overrides.get(ref.name);
    // Counted when first asked for (see WeightInfo.nonzero), once.
    let nonzero: number | undefined;
    weights.push({ name: ref.name, elements: elementCount(ref.dims), get nonzero() { return (nonzero ??= values ? countNonzero(values) : known.get(ref.name) ?? storedNonzero(model, ref)); } });
  }
  return { inputs: onnxInputs(model), compute: onnxComputeNodes(model), weights };
}

/**
 * A stored tensor's non-zero count, read from its stored bytes (raw_data or external) without
 * making its float32 copy; other storage (float_data...) and odd cases through tensorFloats, which
 * also reports a size that does not match the shape.
 */
export function storedNonzero(model: OnnxModel, ref: TensorRef): number {
  // A model's stored tensors never change: each is counted once however often the inventory is made.
  let counted = storedCounts.get(model);
  if (!counted) storedCounts.set(model, (counted = new Map()));
  let n = counted.get(ref);
  if (n === undefined) counted.set(ref, (n = countStored(model, ref)));
  return n;
}

const storedCounts = new WeakMap<OnnxModel, Map<TensorRef, number>>();

/**
 * A stored tensor's non-zero count taken elsewhere from its stored bytes: the writer counts the
 * tensors it copies as they pass (write.ts), so measuring never reads them again.
 */
export function recordStoredNonzero(model: OnnxModel, ref: TensorRef, n: number): void {
  let counted = storedCounts.get(model);
  if (!counted) storedCounts.set(model, (counted = new Map()));
  counted.set(ref, n);
}

function countStored(model: OnnxModel, ref: TensorRef): number {
  if (ref.inFile && ref.inFile.length === elementCount(ref.dims) * bytesPerElement(ref.dataType)) {
    const n = countInFile(model.path, ref.inFile.offset, ref.inFile.length, ref.dataType);
    if (n !== null) return n;
  }
  const need = elementCount(ref.dims) * bytesPerElement(ref.dataType);
  const bytes = ref.storage === 'raw_data' ? ref.proto.rawData : ref.storage === 'external' ? externalBytes(model, ref) : undefined;
  const n = bytes && bytes.length === need ? countNonzeroStored(bytes, ref.dataType) : null;
  return n ?? countNonzero(ref.storage === 'external' && bytes ? tensorFloatsOf(bytes, ref) : tensorFloats(model, ref));
}

// A tensor left in the file (a lazy read) is counted this many bytes at a time: memory stays small.
const COUNT_BLOCK = 1 << 24;

function countInFile(file: string, offset: number, length: number, dataType: number): number | null {
  let n = 0;
  for (let at = 0; at < length; at += COUNT_BLOCK) {
    // Blocks are whole elements (COUNT_BLOCK is a multiple of every element size).
    const c = countNonzeroStored(readRange(file, offset + at, Math.min(COUNT_BLOCK, length - at), 'the model', file), dataType);
    if (c === null) return null;
    n += c;
  }
  return n;
}

function tensorFloatsOf(bytes: Uint8Array, ref: TensorRef): Float32Array {
  return bytesToFloats(bytes, ref.dataType, elementCount(ref.dims), ref.name);
}

/** The graph inputs that are fed at run time (initializers listed as inputs excluded). */
export function onnxInputs(model: OnnxModel): InputSpec[] {
  const inits = new Set((model.graph.initializer ?? []).map((t) => t.name ?? ''));
  return (model.graph.input ?? []).filter((v) => !inits.has(v.name ?? '')).map(inputSpec);
}

export function onnxComputeNodes(model: OnnxModel): ComputeNode[] {
  const compute: ComputeNode[] = [];
  (model.graph.node ?? []).forEach((n, i) => {
    const op = n.opType ?? '';
    const weight = n.input?.[1] ?? '';
    const ref = model.constants.get(weight);
    const output = n.output?.[0] ?? '';
    if (!ref || !output || (n.domain && n.domain !== 'ai.onnx')) return;
    const node = n.name || `${op}#${i}`;
    const dims = ref.dims;
    if (op === 'Conv' && dims.length >= 3) {
      compute.push({ node, opType: op, output, weight, macsPerOutput: elementCount(dims.slice(1)) });
    } else if (op === 'Gemm' && dims.length === 2) {
      const transB = new Attributes(n).int('transB', 0);
      compute.push({ node, opType: op, output, weight, macsPerOutput: transB ? dims[1] : dims[0] });
    } else if (op === 'MatMul' && dims.length === 2) {
      compute.push({ node, opType: op, output, weight, macsPerOutput: dims[0] });
    }
  });
  return compute;
}
