/**
 * The GraphDef of a TF.js GraphModel: convolution nodes whose filters are Const nodes stored in the
 * weights manifest, as format-neutral layers; compute nodes for MACs; the Placeholder inputs.
 *
 * Attributes arrive as protobuf JSON (strings base64, int64 as decimal strings) and are decoded once,
 * here, by NodeAttrs. Tensor names are `<node>:<output>`. A fused convolution whose activation is
 * fused in (_FusedConv2D with [BiasAdd, Relu]) has no pre-activation output; the runner adds a copy
 * of it without the activation, `<node>/kprune_linear`, which is what reconstruction fits.
 */
import { Conv3x3Layer, ConvUse, addConvUse } from '../../model/conv.js';
import { KpruneError } from '../../errors.js';
import type { ChannelLayout, ElementType, InputSpec } from '../../model/inputs.js';
import type { ComputeNode } from '../../model/inventory.js';
import type { SkippedConv } from '../../model/conv.js';
import { kernelLayer } from './kernels.js';
import { TfjsModel, WeightEntry, weightFloats } from './read.js';

export interface GraphNodeJson {
  name: string;
  op: string;
  input?: string[];
  attr?: Record<string, AttrJson>;
  device?: string;
  [other: string]: unknown;
}

type AttrJson = {
  s?: string;
  i?: string | number;
  f?: number;
  b?: boolean;
  type?: string;
  shape?: { dim?: { size?: string | number }[]; unknownRank?: boolean };
  list?: { s?: string[]; i?: (string | number)[]; f?: number[]; type?: string[] };
  tensor?: unknown;
};

/**
 * An int64 of protobuf JSON: a number or a decimal string; anything else NaN (Number() would make
 * [] or "" a 0, which TF.js does not read as one).
 */
function integer(v: unknown): number {
  if (typeof v === 'number') return v;
  return typeof v === 'string' && /^-?\d+$/.test(v) ? Number(v) : NaN;
}

/** A node's attributes, decoded on access; a wrong type is a clear error naming the node. */
export class NodeAttrs {
  constructor(private readonly node: GraphNodeJson, private readonly file: string) {}

  private get(name: string): AttrJson | undefined {
    return this.node.attr?.[name];
  }

  private fail(name: string, want: string): never {
    throw new KpruneError('bad-model', `node "${this.node.name}" (${this.node.op}): attribute "${name}" is not ${want}`, { file: this.file, node: this.node.name });
  }

  has(name: string): boolean {
    return this.get(name) !== undefined;
  }

  string(name: string, fallback: string): string {
    const a = this.get(name);
    if (a === undefined) return fallback;
    if (typeof a.s !== 'string') this.fail(name, 'a string');
    return Buffer.from(a.s, 'base64').toString('utf8');
  }

  strings(name: string): string[] {
    const a = this.get(name);
    if (a === undefined) return [];
    return (a.list?.s ?? []).map((s) => Buffer.from(s, 'base64').toString('utf8'));
  }

  int(name: string, fallback: number): number {
    const a = this.get(name);
    if (a === undefined || a.i === undefined) return fallback;
    const v = integer(a.i);
    if (!Number.isInteger(v)) this.fail(name, 'an integer');
    return v;
  }

  ints(name: string, fallback: number[]): number[] {
    const a = this.get(name);
    if (a === undefined) return fallback;
    const v = (a.list?.i ?? []).map(integer);
    if (v.some((x) => !Number.isInteger(x))) this.fail(name, 'a list of integers');
    return v;
  }

  bool(name: string, fallback: boolean): boolean {
    const b = this.get(name)?.b;
    return typeof b === 'boolean' ? b : fallback;
  }

  type(name: string): string | undefined {
    return this.get(name)?.type;
  }

  shape(name: string): number[] | null {
    const s = this.get(name)?.shape;
    if (!s || s.unknownRank) return null;
    return (s.dim ?? []).map((d) => Number(d.size ?? -1));
  }
}

/** The convolution ops kprune reads: one row per op, filter layout and whether ops are fused in. */
const CONV_OPS: Record<string, { kind: 'conv2d' | 'depthwise'; fused: boolean; plain: string }> = {
  Conv2D: { kind: 'conv2d', fused: false, plain: 'Conv2D' },
  _FusedConv2D: { kind: 'conv2d', fused: true, plain: 'Conv2D' },
  DepthwiseConv2dNative: { kind: 'depthwise', fused: false, plain: 'DepthwiseConv2dNative' },
  FusedDepthwiseConv2dNative: { kind: 'depthwise', fused: true, plain: 'DepthwiseConv2dNative' },
  _FusedDepthwiseConv2dNative: { kind: 'depthwise', fused: true, plain: 'DepthwiseConv2dNative' },
};
/** Convolutions with a filter that kprune sees but does not prune. */
const OTHER_CONVS = new Set(['Conv2DBackpropInput', 'DepthwiseConv2dNativeBackpropInput', 'Conv3D', 'Conv1D']);
const MATMULS = new Set(['MatMul', '_FusedMatMul']);

const TF_DTYPES: Record<string, ElementType> = {
  DT_FLOAT: 'float32', DT_INT32: 'int32', DT_BOOL: 'bool', DT_HALF: 'float16', DT_DOUBLE: 'float64', DT_INT64: 'int64', DT_UINT8: 'uint8', DT_INT8: 'int8',
};

export interface GraphScan {
  nodes: GraphNodeJson[];
  layers: Conv3x3Layer[];
  skipped: SkippedConv[];
  compute: ComputeNode[];
  inputs: InputSpec[];
  /** Nodes the runner adds to expose pre-activation values. */
  extraNodes: GraphNodeJson[];
  layouts: Map<string, ChannelLayout>;
  ops: Set<string>;
}

/** "x", "x:0", "^x" -> the producing node's name. */
export function nodeOf(input: string): string {
  const s = input.startsWith('^') ? input.slice(1) : input;
  const i = s.lastIndexOf(':');
  return i > 0 && /^\d+$/.test(s.slice(i + 1)) ? s.slice(0, i) : s;
}

/** "x" -> "x:0". */
export function tensorOf(input: string): string {
  return /:\d+$/.test(input) ? input : `${input}:0`;
}

export function scanGraph(model: TfjsModel): GraphScan {
  const file = model.path;
  const raw = model.topology.node;
  if (!Array.isArray(raw)) throw new KpruneError('bad-model', 'the GraphDef has no node list', { file });
  const nodes = raw as GraphNodeJson[];
  const byName = new Map<string, GraphNodeJson>();
  for (const n of nodes) {
    if (typeof n?.name !== 'string' || typeof n.op !== 'string') throw new KpruneError('bad-model', `a GraphDef node without a name or op: ${JSON.stringify(n).slice(0, 80)}`, { file });
    byName.set(n.name, n);
  }
  // Who reads each node, and in which input slot (control inputs excluded).
  const consumers = new Map<string, { node: GraphNodeJson; slot: number }[]>();
  for (const n of nodes) {
    (n.input ?? []).forEach((inp, slot) => {
      if (inp.startsWith('^')) return;
      const src = nodeOf(inp);
      consumers.set(src, [...(consumers.get(src) ?? []), { node: n, slot }]);
    });
  }
  /** Follows Identity nodes back to a Const: the Const, and the chain walked. */
  const constOf = (input: string | undefined): { node: GraphNodeJson; chain: GraphNodeJson[] } | null => {
    let n = input === undefined ? undefined : byName.get(nodeOf(input));
    const chain: GraphNodeJson[] = [];
    for (let guard = 0; n && guard < 64; guard++) {
      if (n.op === 'Const') return { node: n, chain };
      if (n.op !== 'Identity' || !n.input?.[0]) return null;
      chain.push(n);
      n = byName.get(nodeOf(n.input[0]));
    }
    return null;
  };
  const floatWeight = (input: string | undefined): WeightEntry | undefined => {
    const c = constOf(input);
    return c ? model.byName.get(c.node.name) : undefined;
  };

  const layers = new Map<string, Conv3x3Layer>();
  const skipped: SkippedConv[] = [];
  const compute: ComputeNode[] = [];
  const extraNodes: GraphNodeJson[] = [];
  const layouts = new Map<string, ChannelLayout>();
  const ops = new Set<string>();

  for (const n of topological(nodes, byName)) {
    ops.add(n.op);
    const attrs = new NodeAttrs(n, file);
    if (MATMULS.has(n.op)) {
      const w = floatWeight(n.input?.[1]);
      if (w && w.shape.length === 2) {
        compute.push({ node: n.name, opType: n.op, output: `${n.name}:0`, weight: w.name, macsPerOutput: attrs.bool('transpose_b', false) ? w.shape[1] : w.shape[0] });
      }
      continue;
    }
    if (OTHER_CONVS.has(n.op)) {
      const w = floatWeight(n.input?.[1]);
      if (w && w.shape.length === 4 && w.shape[0] === 3 && w.shape[1] === 3) skipped.push({ node: n.name, opType: n.op, reason: `${n.op} is not pruned by kprune` });
      continue;
    }
    const row = CONV_OPS[n.op];
    if (!row) continue;
    const found = constOf(n.input?.[1]);
    if (!found) {
      skipped.push({ node: n.name, opType: n.op, reason: `its filter "${n.input?.[1] ?? ''}" is computed at run time, not a constant` });
      continue;
    }
    const w = model.byName.get(found.node.name);
    if (!w) {
      skipped.push({ node: n.name, opType: n.op, reason: `its filter "${found.node.name}" is stored inline in the topology, not in the weights manifest` });
      continue;
    }
    if (w.shape.length !== 4) throw new KpruneError('bad-model', `${n.op} "${n.name}" has a filter of rank ${w.shape.length} ([${w.shape}])`, { file, node: n.name });
    const [kh, kw, cin] = w.shape;
    const nchw = attrs.string('data_format', 'NHWC') === 'NCHW';
    const hw = (v: number[]): [number, number] => (nchw ? [v[2] ?? 1, v[3] ?? 1] : [v[1] ?? 1, v[2] ?? 1]);
    const strides = hw(attrs.ints('strides', [1, 1, 1, 1]));
    const dilations = hw(attrs.ints('dilations', [1, 1, 1, 1]));
    compute.push({ node: n.name, opType: n.op, output: `${n.name}:0`, weight: w.name, macsPerOutput: row.kind === 'conv2d' ? kh * kw * cin : kh * kw });
    if (kh !== 3 || kw !== 3) continue;
    if (w.dtype !== 'float32') {
      skipped.push({ node: n.name, opType: n.op, reason: `its filter is ${w.dtype}, not float32` });
      continue;
    }
    // The filter (and any Identity before it) must feed convolution filter slots only.
    const readers = [found.node, ...found.chain].flatMap((x) => consumers.get(x.name) ?? []).filter((c) => !found.chain.includes(c.node));
    const other = readers.find((c) => !(CONV_OPS[c.node.op] && c.slot === 1));
    if (other) {
      skipped.push({ node: n.name, opType: n.op, reason: `its filter "${w.name}" is also read by ${other.node.op} node "${other.node.name}"` });
      continue;
    }
    const fusedOps = row.fused ? attrs.strings('fused_ops') : [];
    if (fusedOps.includes('FusedBatchNorm')) {
      skipped.push({ node: n.name, opType: n.op, reason: 'a batch normalisation is fused into it (TF.js cannot run that either)' });
      continue;
    }
    const padding = attrs.string('padding', 'VALID');
    let pads: [number, number, number, number] = [0, 0, 0, 0];
    let autoPad: ConvUse['autoPad'];
    switch (padding) {
      case 'SAME': autoPad = 'SAME_UPPER'; break;
      case 'VALID': autoPad = 'VALID'; break;
      case 'EXPLICIT': {
        const e = attrs.ints('explicit_paddings', []);
        if (e.length !== 8) throw new KpruneError('bad-model', `${n.op} "${n.name}" has EXPLICIT padding without 8 explicit_paddings`, { file, node: n.name });
        // [top, bottom] and [left, right] of the H and W axes, in the node's data format.
        const [t, b, l, r] = nchw ? e.slice(4, 8) : e.slice(2, 6);
        pads = [t, l, b, r];
        autoPad = 'NOTSET';
        break;
      }
      default:
        throw new KpruneError('unsupported', `${n.op} "${n.name}" has padding "${padding}" (known: SAME, VALID, EXPLICIT)`, { file, node: n.name });
    }
    const hasBias = fusedOps[0] === 'BiasAdd';
    const biasWeight = hasBias ? floatWeight(n.input?.[2]) : undefined;
    const biasValues = biasWeight ? weightFloats(model, biasWeight) ?? undefined : undefined;
    const linearAlready = !row.fused || (fusedOps.length === 1 && hasBias);
    let output = `${n.name}:0`;
    let bias: { bias?: string; biasValues?: Float32Array } = {};
    if (linearAlready && (!hasBias || biasValues)) {
      if (biasValues) bias = { bias: biasWeight!.name, biasValues };
    } else {
      // A copy without the activation: with the constant bias when there is one, else bare.
      const linear = `${n.name}/kprune_linear`;
      const keep = { ...(n.attr ?? {}) };
      delete keep.fused_ops;
      delete keep.num_args;
      delete keep.epsilon;
      delete keep.leakyrelu_alpha;
      extraNodes.push(biasValues
        ? { name: linear, op: n.op, input: [n.input![0], n.input![1], n.input![2]], attr: { ...keep, fused_ops: { list: { s: [Buffer.from('BiasAdd').toString('base64')] } }, num_args: { i: '1' } }, device: n.device }
        : { name: linear, op: row.plain, input: [n.input![0], n.input![1]], attr: keep, device: n.device });
      output = `${linear}:0`;
      if (biasValues) bias = { bias: biasWeight!.name, biasValues };
    }
    const input = tensorOf(n.input![0]);
    layouts.set(input, nchw ? 'NCHW' : 'NHWC');
    layouts.set(output, nchw ? 'NCHW' : 'NHWC');
    const group = row.kind === 'conv2d' ? 1 : cin;
    const use: ConvUse = { node: n.name, input, output, ...bias, group, strides, dilations, pads, autoPad };
    addConvUse(layers, w.name, use, (index) => kernelLayer(model, w, n.name, index, use, row.kind !== 'conv2d', group));
  }

  const inputs: InputSpec[] = nodes.filter((n) => n.op === 'Placeholder').map((n) => {
    const attrs = new NodeAttrs(n, file);
    const shape = attrs.shape('shape');
    return {
      name: n.name,
      dims: (shape ?? [-1]).map((d, k) => (d > 0 ? d : k === 0 ? 'batch' : `dim${k}`)),
      type: TF_DTYPES[attrs.type('dtype') ?? 'DT_FLOAT'] ?? 'float32',
    };
  });
  return { nodes, layers: [...layers.values()], skipped, compute, inputs, extraNodes, layouts, ops };
}

/** Nodes in an order where every node comes after its inputs (file order among the ready ones). */
function topological(nodes: GraphNodeJson[], byName: Map<string, GraphNodeJson>): GraphNodeJson[] {
  const out: GraphNodeJson[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  for (const start of nodes) {
    if (state.has(start.name)) continue;
    // Iterative depth-first search: graphs can be deeper than the call stack.
    const stack: { node: GraphNodeJson; next: number }[] = [{ node: start, next: 0 }];
    state.set(start.name, 'visiting');
    while (stack.length > 0) {
      const top = stack[stack.length - 1];
      const inputs = top.node.input ?? [];
      if (top.next < inputs.length) {
        const dep = byName.get(nodeOf(inputs[top.next++]));
        if (dep && !state.has(dep.name)) {
          state.set(dep.name, 'visiting');
          stack.push({ node: dep, next: 0 });
        }
        continue;
      }
      state.set(top.node.name, 'done');
      out.push(top.node);
      stack.pop();
    }
  }
  return out;
}
