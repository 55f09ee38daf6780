/**
 * The decomposed layout for a TF.js LayersModel: a reshaped Conv2D, DepthwiseConv2D or
 * SeparableConv2D (its depthwise half) becomes, in the Keras topology, one convolution layer per
 * piece of an exact cover of its mask (kernel rCount x cCount, dilated by the piece's step), each fed
 * by ZeroPadding2D / Cropping2D layers that realise the piece's pads (or by the input itself when
 * "same" pads are already right), summed by an Add. The bias rides on the first piece; a non-linear
 * activation is applied after the sum by an Activation layer; a separable layer's pointwise step is
 * a 1x1 Conv2D after the sum. The last layer keeps the original's name, so every reference to the
 * layer (`["conv", node, 0]`) still holds; a shared layer's pieces are shared the same way, one call
 * per original call.
 *
 * Names: pieces are `<layer>/<kernel>/kp_piece<i>` (their kernels `<layer>/<kernel>/kp_piece<i>/<kernel>`,
 * so the report finds them as `<layer id>/kp_...` like ONNX pieces); crops, pads and sums are
 * `<layer>/kp_crop<k>`, `<layer>/kp_pad<k>`, `<layer>/kp_sum`.
 *
 * A Sequential model cannot hold branches: one with a decomposed layer is written as the
 * functional model it is (an InputLayer named as Keras names a Sequential's input, then each layer
 * called on the previous one). A Sequential without an input shape has no such form: its layers
 * stay masked, with a note.
 */
import { Conv3x3Layer, layerParams } from '../../model/conv.js';
import { Piece } from '../../core/layout/cover.js';
import { LayoutOutcome } from '../../model/layout.js';
import { Mask, maskCount } from '../../core/lattice.js';
import type { LayoutRequest } from '../../model/loaded-model.js';
import { findWeight, isBuiltContainer } from './layers.js';
import { Pads4, describePieces, pieceDilations, piecePads, sameMatches, samePads, tfPads, tfjsCover, layoutPrecheck, maskedOutcome } from './pieces.js';
import { TfjsModel } from './read.js';
import { AddedWeight, TopologyRewrite } from './write.js';
import { pushAll } from '../../util/arrays.js';

type Json = Record<string, unknown>;
export type KerasConvType = 'conv2d' | 'depthwise' | 'separable';

const CONV_TYPES: Record<string, KerasConvType> = {
  Conv2D: 'conv2d', Convolution2D: 'conv2d', DepthwiseConv2D: 'depthwise', SeparableConv2D: 'separable', SeparableConvolution2D: 'separable',
};
const CONTAINERS = new Set(['Sequential', 'Model', 'Functional']);
/** Keys of a layer config that only a model's first layer has: they describe the model's input. */
const INPUT_KEYS = ['batch_input_shape', 'batch_shape', 'input_shape', 'input_dim', 'batch_size'];

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

function pair(v: unknown, fallback: number): [number, number] {
  if (typeof v === 'number') return [v, v];
  if (Array.isArray(v) && v.length >= 1) return [Number(v[0]), Number(v[1] ?? v[0])];
  return [fallback, fallback];
}

export function layerName(l: Json): string {
  const cfg = isObject(l.config) ? l.config : {};
  return typeof l.name === 'string' ? l.name : String(cfg.name ?? '');
}

function containerLayers(c: Json): Json[] {
  const cfg = c.config;
  const list = Array.isArray(cfg) ? cfg : isObject(cfg) ? cfg.layers : undefined;
  return Array.isArray(list) ? list as Json[] : [];
}

function withoutInputKeys(cfg: Json): Json {
  const out = { ...cfg };
  for (const k of INPUT_KEYS) delete out[k];
  return out;
}

/** The weights of one convolution layer, by manifest name. */
export interface KerasConvWeights {
  type: KerasConvType;
  /** Manifest name of the 3x3 kernel (the layer id) and its shape [3, 3, a, b]. */
  kernel: string;
  kernelShape: number[];
  /** What comes before `<layer>/` in the layer's weight names (usually nothing). */
  prefix: string;
  suffix: 'kernel' | 'depthwise_kernel';
  bias?: string;
  pointwise?: string;
}

/** Where a convolution layer sits in the topology JSON, and its weights. */
export interface KerasSite extends KerasConvWeights {
  /** The container object ({class_name, config}) listing the layer. */
  container: Json;
  layer: Json;
  name: string;
}

/** Every convolution layer of the topology with a 3x3 kernel in the manifest, by kernel name. */
export function findSites(model: TfjsModel, topology: Json): Map<string, KerasSite> {
  const sites = new Map<string, KerasSite>();
  const root = isObject(topology.model_config) ? topology.model_config : topology;
  const visit = (c: Json, scopes: string[]) => {
    for (const l of containerLayers(c)) {
      if (!isObject(l) || typeof l.class_name !== 'string') continue;
      const name = layerName(l);
      if (CONTAINERS.has(l.class_name)) {
        visit(l, [...scopes, name]);
        continue;
      }
      const type = CONV_TYPES[l.class_name];
      if (!type) continue;
      const suffix = type === 'conv2d' ? 'kernel' : 'depthwise_kernel';
      const kernel = findWeight(model, scopes, name, suffix, l.class_name);
      if (!kernel || kernel.shape[0] !== 3 || kernel.shape[1] !== 3 || sites.has(kernel.name)) continue;
      const end = `${name}/${suffix}`;
      const prefix = kernel.name.endsWith(end) ? kernel.name.slice(0, kernel.name.length - end.length) : '';
      const bias = findWeight(model, scopes, name, 'bias', l.class_name)?.name;
      const pointwise = type === 'separable' ? findWeight(model, scopes, name, 'pointwise_kernel', l.class_name)?.name : undefined;
      sites.set(kernel.name, { container: c, layer: l, name, type, kernel: kernel.name, kernelShape: kernel.shape, prefix, suffix, ...(bias ? { bias } : {}), ...(pointwise ? { pointwise } : {}) });
    }
  };
  const cfg = isObject(root.config) ? root.config : {};
  visit(root, [typeof cfg.name === 'string' ? cfg.name : 'model']);
  return sites;
}

/** How one layer is decomposed: the same pieces and pads for every call of it. */
export interface KerasJob {
  pieces: Piece[];
  pads: Pads4;
  strides: [number, number];
  dilations: [number, number];
}

/**
 * The decomposition of a layer, or why there is none. `inputHW` gives the spatial size of a value
 * (by plan tensor name) when the model fixes it.
 */
export function planKerasJob(site: KerasSite, layer: Conv3x3Layer, mask: Mask, inputHW: (tensor: string) => [number, number] | null): KerasJob | string {
  const cfg = isObject(site.layer.config) ? site.layer.config : {};
  const n = site.name;
  if (site.kernel !== `${site.prefix}${n}/${site.suffix}`) {
    return `its kernel "${site.kernel}" is not named "<layer>/${site.suffix}" (Keras 3 positional weight names are written masked)`;
  }
  // The writer renames these weights to the layers that carry them: their names must be known.
  if (cfg.use_bias !== false && site.bias !== `${site.prefix}${n}/bias`) return `its bias is not stored as "${site.prefix}${n}/bias"`;
  if (site.type === 'separable' && site.pointwise !== `${site.prefix}${n}/pointwise_kernel`) return `its pointwise kernel is not stored as "${site.prefix}${n}/pointwise_kernel"`;
  const padding = cfg.padding === 'valid' ? 'valid' : cfg.padding === 'same' ? 'same' : null;
  if (!padding) return `padding "${String(cfg.padding)}" is not "same" or "valid"`;
  const strides = pair(cfg.strides, 1);
  const dilations = pair(cfg.dilation_rate, 1);
  let pads: Pads4 | null = null;
  for (const use of layer.uses) {
    const p = tfPads(padding, strides, dilations, inputHW(use.input));
    if (typeof p === 'string') return p;
    if (pads && !samePads(pads, p)) return 'its calls see inputs of different sizes, so their "same" pads differ and no one set of pieces serves them all';
    pads = p;
  }
  if (!pads) return 'the layer is not called';
  const undilated = site.type !== 'conv2d';
  if (undilated && (dilations[0] !== 1 || dilations[1] !== 1)) {
    return `dilation_rate ${dilations.join('x')}: TF.js's DepthwiseConv2D layer ignores dilation_rate, so dilated depthwise pieces would not compute what the masked layer does`;
  }
  const pieces = tfjsCover(mask, { pads, dilations }, strides, undilated);
  if (pieces.length === 0) return `no exact cover TF.js can run for this mask (stride ${strides.join('x')}, dilation ${dilations.join('x')})`;
  if (site.container.class_name === 'Sequential' && !sequentialConvertible(site.container)) {
    return `it is in Sequential model "${layerName(site.container) || 'model'}", which has no input shape: a Sequential cannot hold the pieces' branches, and without an input shape it cannot be written as a functional model`;
  }
  const taken = new Set(containerLayers(site.container).map(layerName));
  const clash = [`${n}/kp_sum`, `${n}/kp_crop0`, `${n}/kp_pad0`, `${n}/${site.suffix}/kp_piece0`].find((x) => taken.has(x));
  if (clash) return `the model already has a layer named "${clash}"`;
  return { pieces, pads, strides, dilations };
}

function sequentialConvertible(c: Json): boolean {
  return isBuiltContainer('Sequential', isObject(c.config) || Array.isArray(c.config) ? c.config as Json : {});
}

/**
 * Rewrites a Sequential container object in place as the functional model it computes. Its input
 * is named as Keras and TF.js name a Sequential's implicit input, `<first layer>_input`.
 */
function sequentialToFunctional(c: Json): void {
  const layers = containerLayers(c).map((l) => ({ ...l }));
  const cfg = isObject(c.config) ? c.config : {};
  const name = typeof cfg.name === 'string' ? cfg.name : layerName(c);
  const out: Json[] = [];
  let inputName: string;
  if (layers[0].class_name === 'InputLayer') {
    const first = layers.shift()!;
    inputName = layerName(first);
    out.push({ ...first, name: inputName, inbound_nodes: [] });
  } else {
    const fc = isObject(layers[0].config) ? layers[0].config : {};
    inputName = `${layerName(layers[0])}_input`;
    const shape = fc.batch_input_shape ?? fc.batch_shape ?? (Array.isArray(fc.input_shape) ? [null, ...fc.input_shape] : undefined);
    out.push({ name: inputName, class_name: 'InputLayer', config: { batch_input_shape: shape, dtype: fc.dtype ?? 'float32', sparse: false, name: inputName }, inbound_nodes: [] });
    layers[0] = { ...layers[0], config: withoutInputKeys(fc) };
  }
  let prev: [string, number] = [inputName, 0];
  for (const l of layers) {
    const n = layerName(l);
    out.push({ ...l, name: n, inbound_nodes: [[[prev[0], prev[1], 0, {}]]] });
    const nested = typeof l.class_name === 'string' && CONTAINERS.has(l.class_name);
    prev = [n, nested && isBuiltContainer(l.class_name as string, (l.config ?? {}) as Json) ? 1 : 0];
  }
  c.class_name = 'Model';
  c.config = { name, layers: out, input_layers: [[inputName, 0, 0]], output_layers: [[prev[0], prev[1], 0]] };
}

function isLinear(activation: unknown): boolean {
  return activation === undefined || activation === null || activation === 'linear';
}

/** Only the keys of `cfg` that exist, under (possibly) new names. */
function pick(cfg: Json, keys: [string, string][]): Json {
  const out: Json = {};
  for (const [from, to] of keys) if (cfg[from] !== undefined) out[to] = cfg[from];
  return out;
}

/**
 * The layers replacing one convolution layer of a functional container (its `inbound_nodes` are
 * the calls), and the weights they need.
 */
export function replacementLayers(l: Json, w: KerasConvWeights, job: KerasJob): { layers: Json[]; added: AddedWeight[]; rename: Map<string, string> } {
  const name = layerName(l);
  const cfg = withoutInputKeys(isObject(l.config) ? l.config : {});
  const calls = (Array.isArray(l.inbound_nodes) ? l.inbound_nodes : []) as unknown[][];
  const refs = (from: string) => calls.map((_, j) => [[from, j, 0, {}]]);
  const base = (n: string): Json => ({ name: n, trainable: cfg.trainable ?? true, ...(cfg.dtype !== undefined ? { dtype: cfg.dtype } : {}) });
  const dataFormat = cfg.data_format ?? 'channels_last';
  const { pieces, pads, strides, dilations } = job;
  const single = pieces.length === 1 && w.type !== 'separable';
  const useBias = cfg.use_bias !== false;
  const layers: Json[] = [];
  const added: AddedWeight[] = [];
  const rename = new Map<string, string>();
  const sources = new Map<string, string>();
  const pieceNames = pieces.map((_, i) => (single ? name : `${name}/${w.suffix}/kp_piece${i}`));

  pieces.forEach((p, i) => {
    const want = piecePads(p, { pads, dilations });
    let padding: 'same' | 'valid' = 'valid';
    let inbound: unknown[] = calls;
    if (sameMatches(p, dilations, strides, want)) {
      padding = 'same';
    } else if (want.some((v) => v !== 0)) {
      const crop = want.map((v) => Math.max(0, -v));
      const pad = want.map((v) => Math.max(0, v));
      const key = `${crop.join(',')}|${pad.join(',')}`;
      let src = sources.get(key);
      if (!src) {
        const k = sources.size;
        let from: unknown[] = calls;
        // Padding a side and cropping another commute; padding goes first, since cropping first
        // could leave nothing of a small input (a 1x1 or 2x2 map under "same" pads). Both as
        // [[top, bottom], [left, right]].
        if (pad.some((c) => c > 0)) {
          src = `${name}/kp_pad${k}`;
          layers.push({ class_name: 'ZeroPadding2D', name: src, config: { ...base(src), padding: [[pad[0], pad[2]], [pad[1], pad[3]]], data_format: dataFormat }, inbound_nodes: from });
          from = refs(src);
        }
        if (crop.some((c) => c > 0)) {
          src = `${name}/kp_crop${k}`;
          layers.push({ class_name: 'Cropping2D', name: src, config: { ...base(src), cropping: [[crop[0], crop[2]], [crop[1], crop[3]]], data_format: dataFormat }, inbound_nodes: from });
        }
        sources.set(key, src!);
      }
      inbound = refs(src!);
    }
    const pn = pieceNames[i];
    const geometry = { kernel_size: [p.rCount, p.cCount], dilation_rate: pieceDilations(p, dilations), padding };
    let config: Json;
    let className: string;
    if (w.type === 'separable') {
      className = 'DepthwiseConv2D';
      config = {
        ...base(pn),
        ...pick(cfg, [['strides', 'strides'], ['data_format', 'data_format'], ['depthwise_initializer', 'depthwise_initializer'], ['depthwise_regularizer', 'depthwise_regularizer'], ['depthwise_constraint', 'depthwise_constraint']]),
        ...geometry, depth_multiplier: cfg.depth_multiplier ?? 1, activation: 'linear', use_bias: false,
      };
    } else {
      className = String(l.class_name);
      config = { ...cfg, name: pn, ...geometry, use_bias: useBias && i === 0, activation: single ? cfg.activation ?? 'linear' : 'linear' };
    }
    const { inbound_nodes: _calls, config: _config, name: _name, class_name: _class, ...extra } = l;
    layers.push({ ...(w.type === 'separable' ? {} : extra), class_name: className, name: pn, config, inbound_nodes: inbound });
    added.push({ kind: 'piece', name: `${w.prefix}${pn}/${w.suffix}`, shape: [p.rCount, p.cCount, w.kernelShape[2], w.kernelShape[3]], of: w.kernel, positions: p.positions });
  });

  if (w.type === 'separable') {
    let last = pieceNames[0];
    if (pieces.length > 1) {
      last = `${name}/kp_sum`;
      layers.push({ class_name: 'Add', name: last, config: base(last), inbound_nodes: calls.map((_, j) => pieceNames.map((pn) => [pn, j, 0, {}])) });
    }
    // The pointwise step: a 1x1 Conv2D under the layer's own name, with its bias and activation.
    layers.push({
      class_name: 'Conv2D', name,
      config: {
        ...base(name),
        ...pick(cfg, [['filters', 'filters'], ['data_format', 'data_format'], ['activation', 'activation'], ['use_bias', 'use_bias'], ['pointwise_initializer', 'kernel_initializer'], ['bias_initializer', 'bias_initializer'],
          ['pointwise_regularizer', 'kernel_regularizer'], ['bias_regularizer', 'bias_regularizer'], ['activity_regularizer', 'activity_regularizer'], ['pointwise_constraint', 'kernel_constraint'], ['bias_constraint', 'bias_constraint']]),
        kernel_size: [1, 1], strides: [1, 1], padding: 'valid', dilation_rate: [1, 1],
      },
      inbound_nodes: refs(last),
    });
    if (w.pointwise) rename.set(w.pointwise, `${w.prefix}${name}/kernel`);
    return { layers, added, rename };
  }
  if (!single) {
    const linear = isLinear(cfg.activation);
    const sum = linear ? name : `${name}/kp_sum`;
    layers.push({ class_name: 'Add', name: sum, config: base(sum), inbound_nodes: calls.map((_, j) => pieceNames.map((pn) => [pn, j, 0, {}])) });
    if (!linear) layers.push({ class_name: 'Activation', name, config: { ...base(name), activation: cfg.activation }, inbound_nodes: refs(sum) });
    if (useBias && w.bias) rename.set(w.bias, `${w.prefix}${pieceNames[0]}/bias`);
  }
  return { layers, added, rename };
}

export interface KerasLayoutPlan {
  rewrite: TopologyRewrite | null;
  outcomes: LayoutOutcome[];
}

/**
 * The topology rewrite for the requested layouts (null when every layer stays masked), and each
 * layer's outcome. `weights` are the final values by layer id, in the core's layout.
 */
export function decomposeKeras(
  model: TfjsModel,
  layers: Conv3x3Layer[],
  weights: ReadonlyMap<string, Float32Array>,
  requests: Map<string, LayoutRequest>,
  inputHW: (tensor: string) => [number, number] | null,
): KerasLayoutPlan {
  const topology = structuredClone(model.topology) as Json;
  const sites = findSites(model, topology);
  const outcomes: LayoutOutcome[] = [];
  const jobs: { site: KerasSite; job: KerasJob; layer: Conv3x3Layer; mask: Mask }[] = [];
  for (const layer of layers) {
    const req = requests.get(layer.id);
    if (!req) continue;
    const masked = (note?: string) => outcomes.push(maskedOutcome(layer, req, note));
    // Read once here to check the mask, and once more by the writer: neither copy is kept.
    const why = layoutPrecheck(req, weights.get(layer.id) ?? layer.weights);
    if (why !== null) {
      masked(why);
      continue;
    }
    const site = sites.get(layer.id);
    if (!site) {
      masked('its layer was not found in the topology');
      continue;
    }
    const job = planKerasJob(site, layer, req.mask, inputHW);
    if (typeof job === 'string') {
      masked(job);
      continue;
    }
    jobs.push({ site, job, layer, mask: req.mask });
  }
  if (jobs.length === 0) return { rewrite: null, outcomes };

  const replace = new Map<string, AddedWeight[]>();
  const rename = new Map<string, string>();
  const converted = new Set<Json>();
  for (const { site, job, layer, mask } of jobs) {
    let note = describePieces(job.pieces);
    if (site.container.class_name === 'Sequential' || converted.has(site.container)) {
      if (!converted.has(site.container)) sequentialToFunctional(site.container);
      converted.add(site.container);
      note += `; Sequential model "${layerName(site.container) || String((site.container.config as Json).name ?? 'model')}" written as a functional model`;
    }
    const list = containerLayers(site.container);
    const index = list.findIndex((l) => layerName(l) === site.name);
    const r = replacementLayers(list[index], site, job);
    const after = list.splice(index);
    pushAll(list, r.layers);
    pushAll(list, after.slice(1));
    replace.set(site.kernel, r.added);
    for (const [a, b] of r.rename) rename.set(a, b);
    outcomes.push({ layer: layer.id, requested: 'decomposed', applied: 'decomposed', note, storedWeights: (layerParams(layer) / 9) * maskCount(mask) });
  }
  return { rewrite: { topology, replace, rename }, outcomes };
}
