/**
 * The decomposed layout for a TF.js GraphModel: a reshaped Conv2D / _FusedConv2D /
 * DepthwiseConv2dNative / FusedDepthwiseConv2dNative node becomes one convolution per piece of an
 * exact cover of its mask (filter rCount x cCount, dilated by the piece's step, padding SAME, VALID
 * or EXPLICIT), inputs cropped by StridedSlice where a piece needs a negative pad (padded by a Pad
 * node first when it needs pads on other sides), an AddN of the
 * pieces, then the fused activation as its own node. The bias is fused into the first piece
 * (_FusedConv2D / FusedDepthwiseConv2dNative with [BiasAdd]); the node that ends the chain keeps the
 * original's name, so consumers, the signature and the output list are untouched. The filter's
 * Const (and any Identity before it) gives way to one Const per piece, `<filter>/kp_r<r0><step><count>c...`
 * (shared by uses with the same piece), stored in the filter's place in the manifest; the
 * StridedSlice bounds and Pad sizes are int32 Consts in the manifest too, as tfjs-converter stores
 * every constant.
 */
import { ConvUse, layerParams } from '../../model/conv.js';
import { Piece } from '../../core/layout/cover.js';
import { LayoutOutcome } from '../../model/layout.js';
import { Mask, maskCount } from '../../core/lattice.js';
import type { LayoutRequest } from '../../model/loaded-model.js';
import { GraphNodeJson, GraphScan, NodeAttrs, nodeOf } from './graph.js';
import { Pads4, describePieces, pieceDilations, piecePads, sameMatches, tfPads, tfjsCover, layoutPrecheck, maskedOutcome } from './pieces.js';
import { TfjsModel } from './read.js';
import { AddedWeight, TopologyRewrite } from './write.js';
import { pushAll } from '../../util/arrays.js';

const b64 = (s: string) => Buffer.from(s).toString('base64');
const intsAttr = (v: number[]) => ({ list: { i: v.map(String) } });

/** The convolution ops decomposed: their kind and the plain and bias-fused ops the pieces use. */
const CONV_OPS: Record<string, { kind: 'conv2d' | 'depthwise'; fused: boolean }> = {
  Conv2D: { kind: 'conv2d', fused: false },
  _FusedConv2D: { kind: 'conv2d', fused: true },
  DepthwiseConv2dNative: { kind: 'depthwise', fused: false },
  FusedDepthwiseConv2dNative: { kind: 'depthwise', fused: true },
};
const PIECE_OPS = {
  conv2d: { plain: 'Conv2D', withBias: '_FusedConv2D' },
  depthwise: { plain: 'DepthwiseConv2dNative', withBias: 'FusedDepthwiseConv2dNative' },
} as const;

/** Activations fused after BiasAdd, as the standalone op applied after the sum. */
const ACTIVATIONS: Record<string, { op: string; extra?: 'alpha-attr' | 'alpha-input' }> = {
  Relu: { op: 'Relu' },
  Relu6: { op: 'Relu6' },
  Elu: { op: 'Elu' },
  Sigmoid: { op: 'Sigmoid' },
  Tanh: { op: 'Tanh' },
  LeakyRelu: { op: 'LeakyRelu', extra: 'alpha-attr' },
  Prelu: { op: 'Prelu', extra: 'alpha-input' },
};

/** How one convolution node is decomposed. */
export interface GraphUseJob {
  node: GraphNodeJson;
  kind: 'conv2d' | 'depthwise';
  fusedOps: string[];
  pads: Pads4;
  strides: [number, number];
  dilations: [number, number];
  pieces: Piece[];
}

/** The decomposition of one use, or why there is none. */
export function planGraphUse(node: GraphNodeJson, use: ConvUse, mask: Mask, inputHW: (tensor: string) => [number, number] | null, file: string): GraphUseJob | string {
  const row = CONV_OPS[node.op];
  if (!row) return `${node.op} nodes are written masked`;
  const attrs = new NodeAttrs(node, file);
  if (attrs.string('data_format', 'NHWC') !== 'NHWC') return 'NCHW convolutions are written masked (TF.js runs NHWC)';
  const fusedOps = row.fused ? attrs.strings('fused_ops') : [];
  if (fusedOps.length > 0 && (fusedOps[0] !== 'BiasAdd' || fusedOps.length > 2 || (fusedOps[1] !== undefined && !ACTIVATIONS[fusedOps[1]]))) {
    return `fused ops [${fusedOps.join(', ')}] are written masked (known: BiasAdd, then ${Object.keys(ACTIVATIONS).join('/')})`;
  }
  const { strides, dilations } = use;
  let pads: Pads4 | string;
  switch (use.autoPad) {
    case 'SAME_UPPER': pads = tfPads('same', strides, dilations, inputHW(use.input)); break;
    case 'VALID': pads = [0, 0, 0, 0]; break;
    default: pads = use.pads;
  }
  if (typeof pads === 'string') return pads;
  const pieces = tfjsCover(mask, { pads, dilations }, strides);
  if (pieces.length === 0) return `no exact cover TF.js can run for this mask (stride ${strides.join('x')}, dilation ${dilations.join('x')})`;
  return { node, kind: row.kind, fusedOps, pads, strides, dilations, pieces };
}

export function pieceConstName(filter: string, p: Piece): string {
  return `${filter}/kp_r${p.r0}${p.rStep}${p.rCount}c${p.c0}${p.cStep}${p.cCount}`;
}

function constNode(name: string, dtype: 'DT_FLOAT' | 'DT_INT32', shape: number[]): GraphNodeJson {
  return { name, op: 'Const', attr: { value: { tensor: { dtype, tensorShape: { dim: shape.map((d) => ({ size: String(d) })) } } }, dtype: { type: dtype } } };
}

/**
 * The nodes replacing one convolution node, the Const nodes and weights they add (pieces already in
 * `made` are shared, not added again).
 */
export function graphReplacement(job: GraphUseJob, filter: string, kernelShape: number[], made: Set<string>): { nodes: GraphNodeJson[]; consts: GraphNodeJson[]; added: AddedWeight[] } {
  const n = job.node;
  const name = n.name;
  const inputs = n.input ?? [];
  const x = inputs[0];
  const controls = inputs.filter((i) => i.startsWith('^'));
  const data = inputs.filter((i) => !i.startsWith('^'));
  const T = n.attr?.T ?? { type: 'DT_FLOAT' };
  const plainAttr = { ...(n.attr ?? {}) };
  for (const k of ['fused_ops', 'num_args', 'epsilon', 'leakyrelu_alpha', 'padding', 'explicit_paddings', 'dilations']) delete plainAttr[k];
  const device = n.device !== undefined ? { device: n.device } : {};
  const { pieces, pads, strides, dilations, fusedOps } = job;
  const single = pieces.length === 1;
  const hasBias = fusedOps[0] === 'BiasAdd';
  const activation = fusedOps[1] !== undefined ? ACTIVATIONS[fusedOps[1]] : undefined;
  const nodes: GraphNodeJson[] = [];
  const consts: GraphNodeJson[] = [];
  const added: AddedWeight[] = [];
  const crops = new Map<string, string>();
  const outputs: string[] = [];

  pieces.forEach((p, i) => {
    const want = piecePads(p, { pads, dilations });
    const crop = want.map((v) => Math.max(0, -v));
    const pad = want.map((v) => Math.max(0, v)) as Pads4;
    let source = x;
    let convPads = pad;
    if (crop.some((c) => c > 0)) {
      // A piece that is both padded and cropped is padded first: cropping first could leave nothing
      // of a small input (a 1x1 or 2x2 map under "same" pads), which TF.js cannot convolve.
      const padFirst = pad.some((v) => v > 0);
      const key = `${crop.join(',')}|${padFirst ? pad.join(',') : ''}`;
      if (!crops.has(key)) {
        const k = crops.size;
        let from = x;
        if (padFirst) {
          const padName = `${name}/kp_pad${k}`;
          consts.push(constNode(`${padName}/paddings`, 'DT_INT32', [4, 2]));
          added.push({ kind: 'int32', name: `${padName}/paddings`, shape: [4, 2], values: Int32Array.from([0, 0, pad[0], pad[2], pad[1], pad[3], 0, 0]) });
          nodes.push({ name: padName, op: 'Pad', input: [x, `${padName}/paddings`, ...controls], ...device, attr: { T, Tpaddings: { type: 'DT_INT32' } } });
          from = padName;
        }
        const slice = `${name}/kp_crop${k}`;
        // NHWC: crop rows and columns; a side not cropped runs to the end (its end_mask bit).
        const bounds: [string, number[]][] = [['begin', [0, crop[0], crop[1], 0]], ['end', [0, -crop[2], -crop[3], 0]], ['strides', [1, 1, 1, 1]]];
        for (const [what, values] of bounds) {
          consts.push(constNode(`${slice}/${what}`, 'DT_INT32', [4]));
          added.push({ kind: 'int32', name: `${slice}/${what}`, shape: [4], values: Int32Array.from(values) });
        }
        const endMask = 1 | 8 | (crop[2] === 0 ? 2 : 0) | (crop[3] === 0 ? 4 : 0);
        nodes.push({
          name: slice, op: 'StridedSlice', input: [from, `${slice}/begin`, `${slice}/end`, `${slice}/strides`, ...(padFirst ? [] : controls)], ...device,
          attr: { T, Index: { type: 'DT_INT32' }, begin_mask: { i: '9' }, end_mask: { i: String(endMask) }, ellipsis_mask: { i: '0' }, new_axis_mask: { i: '0' }, shrink_axis_mask: { i: '0' } },
        });
        crops.set(key, slice);
      }
      source = crops.get(key)!;
      if (padFirst) convPads = [0, 0, 0, 0];
    }
    const [dh, dw] = pieceDilations(p, dilations);
    const padding = sameMatches(p, dilations, strides, want) ? 'SAME' : convPads.every((v) => v === 0) ? 'VALID' : 'EXPLICIT';
    const geometry = {
      padding: { s: b64(padding) },
      explicit_paddings: padding === 'EXPLICIT' ? intsAttr([0, 0, convPads[0], convPads[2], convPads[1], convPads[3], 0, 0]) : { list: {} },
      dilations: intsAttr([1, dh, dw, 1]),
    };
    const w = pieceConstName(filter, p);
    if (!made.has(w)) {
      made.add(w);
      const shape = [p.rCount, p.cCount, kernelShape[2], kernelShape[3]];
      consts.push(constNode(w, 'DT_FLOAT', shape));
      added.push({ kind: 'piece', name: w, shape, of: filter, positions: p.positions });
    }
    const pieceName = single ? name : `${name}/kp_piece${i}`;
    outputs.push(pieceName);
    if (single) {
      // One piece: the node itself with its filter, pads and dilations changed; fused ops stay.
      nodes.push({ ...n, input: [source, w, ...data.slice(2), ...controls], attr: { ...(n.attr ?? {}), ...geometry } });
    } else if (i === 0 && hasBias) {
      nodes.push({
        name: pieceName, op: PIECE_OPS[job.kind].withBias, input: [source, w, data[2], ...controls], ...device,
        attr: { ...plainAttr, ...geometry, fused_ops: { list: { s: [b64('BiasAdd')] } }, num_args: { i: '1' }, ...(n.attr?.epsilon ? { epsilon: n.attr.epsilon } : {}) },
      });
    } else {
      nodes.push({ name: pieceName, op: PIECE_OPS[job.kind].plain, input: [source, w, ...controls], ...device, attr: { ...plainAttr, ...geometry } });
    }
  });
  if (!single) {
    const sum = activation ? `${name}/kp_sum` : name;
    nodes.push({ name: sum, op: 'AddN', input: outputs, ...device, attr: { T, N: { i: String(outputs.length) } } });
    if (activation) {
      const attr: Record<string, unknown> = { T };
      if (activation.extra === 'alpha-attr') attr.alpha = { f: n.attr?.leakyrelu_alpha?.f ?? 0.2 };
      nodes.push({ name, op: activation.op, input: activation.extra === 'alpha-input' ? [sum, data[3]] : [sum], ...device, attr: attr as GraphNodeJson['attr'] });
    }
  }
  return { nodes, consts, added };
}

export interface GraphLayoutPlan {
  rewrite: TopologyRewrite | null;
  outcomes: LayoutOutcome[];
}

/** The Identity nodes between a filter input and its Const. */
function identityChain(input: string | undefined, byName: Map<string, GraphNodeJson>): string[] {
  const chain: string[] = [];
  let n = input === undefined ? undefined : byName.get(nodeOf(input));
  while (n && n.op === 'Identity' && chain.length < 64) {
    chain.push(n.name);
    n = n.input?.[0] === undefined ? undefined : byName.get(nodeOf(n.input[0]));
  }
  return chain;
}

/**
 * The GraphDef rewrite for the requested layouts (null when every layer stays masked), and each
 * layer's outcome. A layer is decomposed only if every node using its filter can be.
 */
export function decomposeGraph(
  model: TfjsModel,
  scan: GraphScan,
  weights: ReadonlyMap<string, Float32Array>,
  requests: Map<string, LayoutRequest>,
  inputHW: (tensor: string) => [number, number] | null,
): GraphLayoutPlan {
  const byName = new Map(scan.nodes.map((n) => [n.name, n]));
  const outcomes: LayoutOutcome[] = [];
  const replaceNodes = new Map<string, GraphNodeJson[]>();
  const drop = new Set<string>();
  const replace = new Map<string, AddedWeight[]>();
  for (const layer of scan.layers) {
    const req = requests.get(layer.id);
    if (!req) continue;
    const masked = (note?: string) => outcomes.push(maskedOutcome(layer, req, note));
    // Read once here to check the mask, and once more by the writer: neither copy is kept.
    const why = layoutPrecheck(req, weights.get(layer.id) ?? layer.weights);
    if (why !== null) {
      masked(why);
      continue;
    }
    const entry = model.byName.get(layer.id)!;
    const jobs: GraphUseJob[] = [];
    let failure = '';
    for (const use of layer.uses) {
      const node = byName.get(use.node);
      const job = node ? planGraphUse(node, use, req.mask, inputHW, model.path) : `node "${use.node}" not found`;
      if (typeof job === 'string') {
        failure = `node "${use.node}": ${job}`;
        break;
      }
      jobs.push(job);
    }
    if (failure) {
      masked(failure);
      continue;
    }
    const made = new Set<string>();
    const consts: GraphNodeJson[] = [];
    const added: AddedWeight[] = [];
    for (const job of jobs) {
      const r = graphReplacement(job, layer.id, entry.shape, made);
      replaceNodes.set(job.node.name, r.nodes);
      pushAll(consts, r.consts);
      pushAll(added, r.added);
      for (const id of identityChain(job.node.input?.[1], byName)) drop.add(id);
    }
    // The pieces' Consts go where the filter's was; int32 bounds after the pieces in the manifest.
    replaceNodes.set(layer.id, consts);
    replace.set(layer.id, [...added.filter((a) => a.kind === 'piece'), ...added.filter((a) => a.kind === 'int32')]);
    outcomes.push({ layer: layer.id, requested: 'decomposed', applied: 'decomposed', note: describePieces(jobs[0].pieces), storedWeights: (layerParams(layer) / 9) * maskCount(req.mask) });
  }
  if (replace.size === 0) return { rewrite: null, outcomes };
  const nodes = scan.nodes.flatMap((n) => (drop.has(n.name) ? [] : replaceNodes.get(n.name) ?? [n]));
  return { rewrite: { topology: { ...model.topology, node: nodes }, replace, rename: new Map() }, outcomes };
}

