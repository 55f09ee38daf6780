/**
 * From a model, one ONNX graph that computes the forward pass, the loss and the gradients of the
 * trainable weights, with those weights as graph inputs: onnxruntime-node (which has no training
 * API) then runs a training step as one inference call on one session, the weights fed anew each
 * step.
 *
 * Gradients flow only where needed: from the loss back through the nodes that lie on a path from
 * a trainable weight to the head (so the first convolution gets no input gradient, frozen weights
 * get none, and Shape/Gather/... side paths, which carry no float values, are never visited). A
 * node on that path whose operator has no row in rules.ts (or whose row refuses its attributes) is
 * reported as missing, all of them at once, and no graph is built: the caller trains elsewhere.
 *
 * Dims are static, taken from one run of the model at the training batch (`shapes`): the graph
 * is built for that batch.
 */
import { KpruneError } from '../../../errors.js';
import { Attributes } from '../attributes.js';
import { probeModelBytes } from '../probe-bytes.js';
import { GraphProto, ModelProto, NodeProto, TensorProto, ValueInfoProto, onnx, toNumber } from '../proto.js';
import type { OnnxModel } from '../read.js';
import { GradContext, NoGradient } from './context.js';
import { Emitter, MIN_TRAINING_OPSET } from './emit.js';
import { LossInputs, LossSpec, emitLoss } from './loss.js';
import { RULES_BY_OP } from './rules.js';
import { KeptLayout, decomposeMasked } from './pieces.js';
import type { Mask } from '../../../core/lattice.js';

/** A value's dims and onnxruntime element type ('float32', 'int64', ...). */
export interface ValueShape {
  dims: number[];
  type: string;
}

export interface MissingGradient {
  op: string;
  node: string;
  reason: string;
}

export interface TrainingGraphSpec {
  /** Names of the weights to differentiate (initializers or Constant outputs, float32). */
  trainable: string[];
  /** The value the loss reads (the logits, before any final softmax). */
  head: string;
  loss: LossSpec;
  /** Dims and types of every value the model computes, at the training batch. */
  shapes: ReadonlyMap<string, ValueShape>;
  /**
   * Kernel masks of trainable 3x3 weights: their convolutions then compute only the kept positions
   * (pieces.ts), forward and backward, and the gradient is zero at the dropped ones. Without, every
   * position is computed (and has its gradient).
   */
  masks?: ReadonlyMap<string, Mask>;
  /**
   * 'kept': a masked weight read by one convolution alone is fed, and its gradient given, as its
   * kept positions only, [Cout, Cin/g, k] in the order `weights[].positions` names (pieces.ts,
   * KeptLayout): no dropped position is fed, computed or returned. Default 'full': every trainable
   * weight in its own dims.
   */
  layout?: 'full' | 'kept';
}

export interface TrainingGraph {
  bytes: Uint8Array;
  /** The model's data input ('' when every input is trained, as in one-operator test graphs). */
  data: string;
  /**
   * The trainable weights, fed each step, with the output names of their gradients. `positions`:
   * the weight is fed in the kept layout, [Cout, Cin/g, k] = `dims`, holding these 3x3 positions
   * of each kernel in this order (its gradient likewise).
   */
  weights: TrainableInput[];
  /** The scalar loss output. */
  loss: string;
  /** Inputs the loss reads besides the data (one-hot labels, teacher outputs, a given head gradient). */
  lossInputs: LossInputs;
  /** The head as the loss sees it: [batch, values per sample]. */
  flatDims: [number, number];
  /** How many nodes of each operator the gradient passes through. */
  pathOps: Record<string, number>;
}

export interface TrainableInput {
  name: string;
  dims: number[];
  grad: string;
  positions?: number[];
}

export type TrainingBuild = { ok: true; graph: TrainingGraph } | { ok: false; missing: MissingGradient[] };

export const LOSS_OUTPUT = 'kprune.loss';
const gradOutput = (i: number) => `kprune.grad.${i}`;

const FLOAT = onnx.TensorProto.DataType.FLOAT;

function valueInfo(name: string, dims: number[], elemType: number = FLOAT): ValueInfoProto {
  return { name, type: { tensorType: { elemType, shape: { dim: dims.map((d) => ({ dimValue: d })) } } } };
}

function defaultOpset(proto: ModelProto): number {
  const o = (proto.opsetImport ?? []).find((x) => !x.domain || x.domain === 'ai.onnx');
  return o ? toNumber(o.version) : 1;
}

/** Numbers of a small constant tensor (shapes, axes, bounds). */
function tensorNumbers(t: TensorProto): number[] {
  const raw = t.rawData && t.rawData.length > 0 ? t.rawData : undefined;
  const view = raw ? new DataView(raw.buffer, raw.byteOffset, raw.byteLength) : undefined;
  const read = (size: number, get: (at: number) => number) => Array.from({ length: view!.byteLength / size }, (_, i) => get(i * size));
  switch (t.dataType) {
    case 1: return view ? read(4, (a) => view.getFloat32(a, true)) : (t.floatData ?? []).map(Number);
    case 11: return view ? read(8, (a) => view.getFloat64(a, true)) : (t.doubleData ?? []).map(Number);
    case 7: return view ? read(8, (a) => Number(view.getBigInt64(a, true))) : (t.int64Data ?? []).map(toNumber);
    case 6: return view ? read(4, (a) => view.getInt32(a, true)) : (t.int32Data ?? []).map(Number);
    case 9: return view ? read(1, (a) => view.getUint8(a)) : (t.int32Data ?? []).map(Number);
    default: return [];
  }
}

/**
 * A decoded working copy of the model (external data inlined) with the trainable weights turned
 * into graph inputs.
 */
function prepare(model: OnnxModel, trainable: string[]) {
  const proto: ModelProto = onnx.ModelProto.decode(probeModelBytes(model, new Map(), []));
  const graph: GraphProto = proto.graph!;
  const opset = defaultOpset(proto);
  const initializers = new Map((graph.initializer ?? []).map((t) => [t.name ?? '', t]));
  const constantNodes = new Map<string, TensorProto>();
  for (const n of graph.node ?? []) {
    const t = n.opType === 'Constant' ? (n.attribute ?? []).find((a) => a.name === 'value')?.t : undefined;
    if (t && n.output?.[0]) constantNodes.set(n.output[0], t);
  }
  const weightDims = new Map<string, number[]>();
  const inputs = new Map((graph.input ?? []).map((i) => [i.name ?? '', i]));
  for (const name of trainable) {
    const t = initializers.get(name) ?? constantNodes.get(name);
    const asInput = inputs.get(name);
    if (!t && asInput && !initializers.has(name)) {
      // A graph input (one-operator test graphs differentiate their inputs): its declared dims.
      const tt = asInput.type?.tensorType;
      if (tt?.elemType !== FLOAT) throw new KpruneError('unsupported', `trainable input "${name}" is not float32`, { file: model.path });
      weightDims.set(name, (tt.shape?.dim ?? []).map((d) => toNumber(d.dimValue)));
      continue;
    }
    if (!t) throw new KpruneError('unsupported', `trainable weight "${name}" is not a constant of the graph`, { file: model.path });
    if (t.dataType !== FLOAT) throw new KpruneError('unsupported', `trainable weight "${name}" is not float32`, { file: model.path });
    const dims = (t.dims ?? []).map(toNumber);
    weightDims.set(name, dims);
    if (asInput) graph.input = (graph.input ?? []).filter((i) => i.name !== name);
    graph.input = [...(graph.input ?? []), valueInfo(name, dims)];
  }
  const trained = new Set(trainable);
  graph.initializer = (graph.initializer ?? []).filter((t) => !trained.has(t.name ?? ''));
  graph.node = (graph.node ?? []).filter((n) => !(n.opType === 'Constant' && trained.has(n.output?.[0] ?? '')));
  const constants = new Map([...initializers, ...constantNodes].filter(([k]) => !trained.has(k)));
  const data = (graph.input ?? []).map((i) => i.name ?? '').filter((n) => !initializers.has(n) && !trained.has(n));
  if (data.length > 1) {
    throw new KpruneError('unsupported', `training needs a model with one data input; this one has ${data.length} (${data.join(', ')})`, { file: model.path });
  }
  return { proto, graph, opset, weightDims, constants, data: data[0] ?? '' };
}

/**
 * Masked weights that can be fed in the kept layout: read by exactly one node, as a Conv's weight
 * (one rewrite decides the order of its positions; any other reader would need the 3x3 layout).
 */
function keptCandidates(nodes: NodeProto[], masks: ReadonlyMap<string, Mask>): Set<string> {
  const readers = new Map<string, number>();
  const asConvWeight = new Set<string>();
  for (const n of nodes) {
    (n.input ?? []).forEach((v, k) => {
      if (!masks.has(v)) return;
      readers.set(v, (readers.get(v) ?? 0) + 1);
      if (k === 1 && n.opType === 'Conv' && (!n.domain || n.domain === 'ai.onnx')) asConvWeight.add(v);
    });
  }
  return new Set([...asConvWeight].filter((v) => readers.get(v) === 1 && masks.get(v) !== 0x1ff && masks.get(v) !== 0));
}

/** Keeps only the nodes and initializers the outputs depend on. */
function prune(graph: GraphProto): void {
  const wanted = new Set((graph.output ?? []).map((o) => o.name ?? ''));
  const keep: NodeProto[] = [];
  const nodes = graph.node ?? [];
  for (let i = nodes.length - 1; i >= 0; i--) {
    const n = nodes[i];
    if (!(n.output ?? []).some((o) => wanted.has(o))) continue;
    keep.push(n);
    for (const v of n.input ?? []) if (v) wanted.add(v);
  }
  graph.node = keep.reverse();
  graph.initializer = (graph.initializer ?? []).filter((t) => wanted.has(t.name ?? ''));
}

/** The value the loss reads: the model's first output, or the input of a final (log-)softmax. */
export function headValue(model: OnnxModel): string {
  const out = model.graph.output?.[0]?.name ?? '';
  const producer = (model.graph.node ?? []).find((n) => (n.output ?? []).includes(out));
  if (producer && (producer.opType === 'Softmax' || producer.opType === 'LogSoftmax') && !producer.domain) return producer.input?.[0] ?? out;
  return out;
}

/** Names of every value the model's nodes compute: what a run must expose to give `shapes`. */
export function computedValues(model: OnnxModel): string[] {
  const out: string[] = [];
  for (const n of model.graph.node ?? []) for (const o of n.output ?? []) if (o) out.push(o);
  return out;
}

/**
 * The model with some weights as graph inputs and chosen values as its outputs (held-out scoring);
 * with `masks` (and the dims of the model's values), the masked weights' convolutions as pieces.
 */
export function buildForwardGraph(model: OnnxModel, trainable: string[], outputs: string[], pieces?: { masks: ReadonlyMap<string, Mask>; shapes: ReadonlyMap<string, ValueShape> }): { bytes: Uint8Array; data: string } {
  const p = prepare(model, trainable);
  if (pieces) {
    const made = new Map<string, number[]>();
    const e = new Emitter(defaultOpset(p.proto));
    const dims = (name: string): number[] => {
      const d = made.get(name) ?? e.dimsOf(name) ?? pieces.shapes.get(name)?.dims ?? p.weightDims.get(name) ?? p.constants.get(name)?.dims?.map(toNumber);
      if (!d) throw new NoGradient(`the dims of "${name}" are not known`);
      return d;
    };
    p.graph.node = decomposeMasked(p.graph.node ?? [], pieces.masks, { dims, set: (n, d) => made.set(n, d) }, e, { anyBatch: true });
    p.graph.initializer = [...(p.graph.initializer ?? []), ...e.initializers];
  }
  p.graph.output = outputs.map((name) => ({ name }));
  prune(p.graph);
  return { bytes: onnx.ModelProto.encode(p.proto).finish(), data: p.data };
}

export function buildTrainingGraph(model: OnnxModel, spec: TrainingGraphSpec): TrainingBuild {
  const p = prepare(model, spec.trainable);
  const { graph, opset } = p;
  if (opset < MIN_TRAINING_OPSET) {
    return { ok: false, missing: [{ op: `opset ${opset}`, node: '', reason: `training graphs are built for opset ${MIN_TRAINING_OPSET} and later` }] };
  }
  // Values the rewrites below make (all float32), with their dims.
  const made = new Map<string, number[]>();
  const e = new Emitter(opset);
  const dims = (name: string): number[] => {
    const d = made.get(name) ?? e.dimsOf(name) ?? spec.shapes.get(name)?.dims ?? p.weightDims.get(name) ?? p.constants.get(name)?.dims?.map(toNumber);
    if (!d) throw new NoGradient(`the dims of "${name}" are not known`);
    return d;
  };
  const kept: KeptLayout = { candidates: new Set(), orders: new Map() };
  if (spec.masks && spec.masks.size > 0) {
    const masks = new Map([...spec.masks].filter(([k]) => p.weightDims.has(k)));
    if (spec.layout === 'kept') kept.candidates = keptCandidates(graph.node ?? [], masks);
    graph.node = decomposeMasked(graph.node ?? [], masks, { dims, set: (n, d) => made.set(n, d) }, e, { kept });
    for (const [name, order] of kept.orders) {
      const input = (graph.input ?? []).find((i) => i.name === name)!;
      Object.assign(input, valueInfo(name, [...dims(name).slice(0, 2), order.length]));
    }
  }
  const nodes = graph.node ?? [];
  const isFloat = (name: string) => {
    if (made.has(name)) return true;
    const s = spec.shapes.get(name);
    if (s) return s.type === 'float32';
    return p.weightDims.has(name) || p.constants.get(name)?.dataType === FLOAT;
  };

  // Values a trainable weight reaches (float ones: integer values carry no gradient)...
  const live = new Set(spec.trainable);
  for (const n of nodes) {
    if (!(n.input ?? []).some((v) => live.has(v))) continue;
    for (const o of n.output ?? []) if (o && isFloat(o)) live.add(o);
  }
  if (!live.has(spec.head)) {
    throw new KpruneError('unsupported', `the model's output "${spec.head}" does not depend on the weights to train`, { file: model.path });
  }
  // ...and of those, the ones the head depends on.
  const needed = new Set([spec.head]);
  for (let i = nodes.length - 1; i >= 0; i--) {
    const n = nodes[i];
    if (!(n.output ?? []).some((o) => needed.has(o))) continue;
    for (const v of n.input ?? []) if (live.has(v)) needed.add(v);
  }

  const loss = emitLoss(e, spec.head, dims(spec.head), spec.loss);
  const contributions = new Map<string, string[]>([[spec.head, [loss.dhead]]]);
  const summed = new Map<string, string>();
  const gradOf = (v: string): string | undefined => {
    if (summed.has(v)) return summed.get(v);
    const list = contributions.get(v);
    if (!list) return undefined;
    const g = e.sum(list);
    summed.set(v, g);
    return g;
  };

  const missing: MissingGradient[] = [];
  const pathOps: Record<string, number> = {};
  for (let i = nodes.length - 1; i >= 0; i--) {
    const node = nodes[i];
    const inputs = node.input ?? [];
    const outputs = node.output ?? [];
    if (!outputs.some((o) => needed.has(o)) || !inputs.some((v) => needed.has(v) && live.has(v))) continue;
    const op = node.opType ?? '';
    const nodeName = node.name || `${op}#${i}`;
    pathOps[op] = (pathOps[op] ?? 0) + 1;
    const rule = node.domain && node.domain !== 'ai.onnx' ? undefined : RULES_BY_OP.get(op);
    if (!rule) {
      missing.push({ op: node.domain ? `${node.domain}.${op}` : op, node: nodeName, reason: 'no backward rule' });
      continue;
    }
    const ctx: GradContext = {
      node,
      attrs: new Attributes(node),
      opset,
      e,
      input: (k) => inputs[k] ?? '',
      output: (k) => outputs[k] ?? '',
      inputCount: inputs.length,
      dims,
      needs: (k) => !!inputs[k] && needed.has(inputs[k]) && live.has(inputs[k]),
      dy: (k) => (outputs[k] && needed.has(outputs[k]) ? gradOf(outputs[k]) : undefined),
      give: (k, g) => {
        const list = contributions.get(inputs[k]) ?? [];
        list.push(g);
        contributions.set(inputs[k], list);
      },
      giveTo: (v, g) => {
        if (!needed.has(v) || !live.has(v)) return;
        const list = contributions.get(v) ?? [];
        list.push(g);
        contributions.set(v, list);
      },
      constant: (name) => {
        const t = p.constants.get(name);
        return t ? tensorNumbers(t) : e.intsOf(name);
      },
      ensureOutput: (k) => {
        const out = node.output ?? [];
        while (out.length <= k) out.push('');
        if (!out[k]) out[k] = e.name(`${op}.output${k}`);
        node.output = out;
        return out[k];
      },
    };
    try {
      rule.grad(ctx);
    } catch (err) {
      if (!(err instanceof NoGradient)) throw err;
      missing.push({ op, node: nodeName, reason: err.message });
    }
  }
  if (missing.length > 0) return { ok: false, missing };

  const headFlat = loss.flatDims;
  const weights = spec.trainable.map((name, i): TrainableInput => {
    const wd = dims(name);
    const g = gradOf(name) ?? e.zeros(wd);
    e.nodes.push({ name: `kprune.grad_out.${i}`, opType: 'Identity', domain: '', input: [g], output: [gradOutput(i)] });
    const positions = kept.orders.get(name);
    return { name, dims: wd, grad: gradOutput(i), ...(positions ? { positions } : {}) };
  });
  e.nodes.push({ name: 'kprune.loss_out', opType: 'Identity', domain: '', input: [loss.loss], output: [LOSS_OUTPUT] });
  graph.node = [...nodes, ...e.nodes];
  graph.initializer = [...(graph.initializer ?? []), ...e.initializers];
  for (const name of Object.values(loss.inputs)) graph.input = [...(graph.input ?? []), valueInfo(name, headFlat)];
  graph.output = [valueInfo(LOSS_OUTPUT, []), ...weights.map((w) => valueInfo(w.grad, w.dims))];
  prune(graph);
  return {
    ok: true,
    graph: {
      bytes: onnx.ModelProto.encode(p.proto).finish(),
      data: p.data,
      weights,
      loss: LOSS_OUTPUT,
      lossInputs: loss.inputs,
      flatDims: headFlat,
      pathOps,
    },
  };
}
