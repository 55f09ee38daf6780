/**
 * The Keras topology of a TF.js LayersModel: Sequential and functional models, nested to any depth,
 * flattened into one graph of layer calls with one name per tensor. From it: the 3x3 convolutions
 * (Conv2D, DepthwiseConv2D, the depthwise half of SeparableConv2D) as format-neutral layers, the
 * compute nodes for MACs, the inputs, and the plan the executor runs.
 *
 * Tensor names: `<scope><layer>:<node>:<tensor>`, node = the index of the layer's call as Keras and
 * TF.js count it (a nested model built from an Input already has node 0, its first call is node 1);
 * scope = the nested models' names, e.g. `encoder/conv1:0:0`, or `encoder#1/` for a model's second
 * call. A convolution's pre-activation value is `<its output>/linear`, a separable convolution's
 * depthwise output `<its output>/depthwise`.
 */
import { Conv3x3Layer, ConvUse, addConvUse } from '../../model/conv.js';
import { KpruneError } from '../../errors.js';
import type { ChannelLayout, ElementType, InputSpec } from '../../model/inputs.js';
import { opOutputs } from './keras-plan.js';
import type { KerasConvSpec, KerasExecOp, KerasPlan } from './keras-plan.js';
import type { ComputeNode } from '../../model/inventory.js';
import type { SkippedConv } from '../../model/conv.js';
import { kernelLayer } from './kernels.js';
import { TfjsModel, WeightEntry, elementCount, weightFloats } from './read.js';

type Json = Record<string, unknown>;

interface Ref {
  layer: string;
  node: number;
  tensor: number;
}

interface NodeDef {
  inputs: Ref[];
  kwargs: Json;
}

interface LayerDef {
  name: string;
  className: string;
  config: Json;
  /** The calls listed in the config (without a nested model's own node 0). */
  nodes: NodeDef[];
  /** Index of the first listed call. */
  firstNode: number;
  container?: ContainerDef;
}

interface ContainerDef {
  name: string;
  className: string;
  layers: LayerDef[];
  inputs: Ref[];
  outputs: Ref[];
}

export interface KerasScan {
  plan: KerasPlan;
  layers: Conv3x3Layer[];
  skipped: SkippedConv[];
  compute: ComputeNode[];
  inputs: InputSpec[];
  /** Every layer class used, for the report. */
  classes: Set<string>;
  /** 1x1 Conv2D and Dense layers recovery may re-solve to compensate (see keras-linear.ts). */
  pointwise: KerasPointwise[];
}

/**
 * A plain 1x1 Conv2D (one group, no dilation, float32 kernel [1, 1, in, out], channels last), or a
 * Dense layer without an activation on a 2-D input (float32 kernel [in, out]).
 */
export interface KerasPointwise {
  kind: 'conv1x1' | 'dense';
  use: ConvUse;
  kernel: WeightEntry;
  /** Its op's position in the plan. */
  op: number;
}

/** Layers whose output is 2-D ([batch, features]) whatever their input's rank. */
const FLATTENING = new Set(['Flatten', 'GlobalAveragePooling2D', 'GlobalMaxPooling2D', 'GlobalAveragePooling1D', 'GlobalMaxPooling1D']);
/** Layers whose output has their input's rank. */
const RANK_KEEPING = new Set(['Dropout', 'Activation', 'ReLU', 'LeakyReLU', 'ELU', 'PReLU', 'BatchNormalization', 'GaussianNoise', 'GaussianDropout', 'AlphaDropout', 'Softmax', 'Dense']);

const CONTAINERS = new Set(['Sequential', 'Model', 'Functional']);
const CONV_CLASSES = new Set(['Conv2D', 'Convolution2D', 'DepthwiseConv2D', 'SeparableConv2D', 'SeparableConvolution2D']);
/** Keras classes kprune knows and deliberately leaves alone when they hold a 3x3 kernel. */
const NOT_PRUNED = new Set(['Conv2DTranspose', 'Conv3D', 'Conv3DTranspose', 'ConvLSTM2D', 'LocallyConnected2D', 'Conv1D']);

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

function pair(v: unknown, fallback: number): [number, number] {
  if (typeof v === 'number') return [v, v];
  if (Array.isArray(v) && v.length >= 1) return [Number(v[0]), Number(v[1] ?? v[0])];
  return [fallback, fallback];
}

class TopologyError extends KpruneError {
  constructor(message: string, file: string, node?: string) {
    super('bad-model', message, { file, node });
  }
}

function parseRef(raw: unknown, file: string, where: string): Ref & { kwargs: Json } {
  if (!Array.isArray(raw) || typeof raw[0] !== 'string' || !Number.isInteger(raw[1]) || !Number.isInteger(raw[2])) {
    throw new TopologyError(`${where}: a reference to a tensor must be [layer, node, tensor], not ${JSON.stringify(raw)}`, file);
  }
  return { layer: raw[0], node: raw[1], tensor: raw[2], kwargs: isObject(raw[3]) ? raw[3] : {} };
}

export function isBuiltContainer(className: string, config: Json): boolean {
  if (className !== 'Sequential') return true;
  const layers = Array.isArray(config) ? config : config.layers;
  if (!Array.isArray(layers) || layers.length === 0) return false;
  const first = layers[0] as Json;
  const cfg = isObject(first.config) ? first.config : {};
  return first.class_name === 'InputLayer' || cfg.batch_input_shape !== undefined || cfg.batch_shape !== undefined || cfg.input_shape !== undefined;
}

function parseContainer(className: string, rawConfig: unknown, fallbackName: string, file: string): ContainerDef {
  if (className === 'Sequential') return parseSequential(rawConfig, fallbackName, file);
  if (!isObject(rawConfig) || !Array.isArray(rawConfig.layers)) throw new TopologyError(`model "${fallbackName}" has no layer list`, file);
  const name = typeof rawConfig.name === 'string' ? rawConfig.name : fallbackName;
  const layers = rawConfig.layers.map((raw, i) => parseLayer(raw, `layer ${i} of "${name}"`, file));
  const refs = (v: unknown, what: string): Ref[] => {
    if (!Array.isArray(v)) throw new TopologyError(`model "${name}" has no ${what}`, file);
    // A single reference may be written bare: ["name", 0, 0].
    const list = typeof v[0] === 'string' ? [v] : v;
    return list.map((r) => parseRef(r, file, `${what} of "${name}"`));
  };
  return { name, className, layers, inputs: refs(rawConfig.input_layers, 'input_layers'), outputs: refs(rawConfig.output_layers, 'output_layers') };
}

/** A Sequential model as the functional graph it is: each layer called once on the previous one. */
function parseSequential(rawConfig: unknown, fallbackName: string, file: string): ContainerDef {
  const list = Array.isArray(rawConfig) ? rawConfig : isObject(rawConfig) ? rawConfig.layers : undefined;
  if (!Array.isArray(list) || list.length === 0) throw new TopologyError(`Sequential model "${fallbackName}" has no layers`, file);
  const name = isObject(rawConfig) && typeof rawConfig.name === 'string' ? rawConfig.name : fallbackName;
  const layers = list.map((raw, i) => parseLayer(raw, `layer ${i} of "${name}"`, file));
  if (layers[0].className !== 'InputLayer') {
    // Keras and TF.js name the implicit input "<first layer>_input".
    const cfg = layers[0].config;
    layers.unshift({
      name: `${layers[0].name}_input`,
      className: 'InputLayer',
      config: { batch_input_shape: cfg.batch_input_shape ?? cfg.batch_shape ?? (Array.isArray(cfg.input_shape) ? [null, ...cfg.input_shape] : undefined), dtype: cfg.dtype },
      nodes: [],
      firstNode: 0,
    });
  }
  for (let i = 1; i < layers.length; i++) {
    const prev = layers[i - 1];
    layers[i].nodes = [{ inputs: [{ layer: prev.name, node: prev.firstNode, tensor: 0 }], kwargs: {} }];
  }
  const last = layers[layers.length - 1];
  return { name, className: 'Sequential', layers, inputs: [{ layer: layers[0].name, node: 0, tensor: 0 }], outputs: [{ layer: last.name, node: last.firstNode, tensor: 0 }] };
}

function parseLayer(raw: unknown, where: string, file: string): LayerDef {
  if (!isObject(raw) || typeof raw.class_name !== 'string') throw new TopologyError(`${where} is not a layer with a class_name`, file);
  const className = raw.class_name;
  const config = isObject(raw.config) ? raw.config : {};
  const name = typeof raw.name === 'string' ? raw.name : typeof config.name === 'string' ? config.name : '';
  if (!name) throw new TopologyError(`${where} (${className}) has no name`, file);
  const nodes: NodeDef[] = [];
  const inbound = raw.inbound_nodes ?? [];
  if (!Array.isArray(inbound)) throw new TopologyError(`layer "${name}" has malformed inbound_nodes`, file, name);
  for (const node of inbound) {
    if (isObject(node)) {
      throw new KpruneError('unsupported', `layer "${name}" is in the Keras 3 topology format (inbound_nodes with args/kwargs), which TF.js does not load either`, {
        file, node: name, suggestion: 'save the model with Keras 2 (tf.keras) and convert it again',
      });
    }
    if (!Array.isArray(node)) throw new TopologyError(`layer "${name}" has a malformed inbound node`, file, name);
    const refs = node.map((r) => parseRef(r, file, `inbound node of "${name}"`));
    nodes.push({ inputs: refs, kwargs: refs.length > 0 ? refs[refs.length - 1].kwargs : {} });
  }
  const container = CONTAINERS.has(className) ? parseContainer(className, raw.config, name, file) : undefined;
  const firstNode = container && isBuiltContainer(className, raw.config as Json) ? 1 : 0;
  return { name, className, config, nodes, firstNode, container };
}

/** Topological order of the calls (layer, listed node) inside one container; config order breaks ties. */
function orderCalls(c: ContainerDef, file: string): { layer: LayerDef; j: number }[] {
  const byName = new Map(c.layers.map((l) => [l.name, l]));
  const key = (layer: string, node: number) => `${layer}\u0000${node}`;
  // Writers disagree on whether an unbuilt nested model has a node 0; the references tell.
  const allRefs = [...c.layers.flatMap((l) => l.nodes.flatMap((n) => n.inputs)), ...c.outputs];
  for (const l of c.layers) {
    if (!l.container) continue;
    const used = allRefs.filter((r) => r.layer === l.name).map((r) => r.node);
    const fits = (first: number) => used.every((n) => n >= first && n < first + l.nodes.length);
    if (!fits(l.firstNode) && fits(1 - l.firstNode)) l.firstNode = 1 - l.firstNode;
  }
  const calls: { layer: LayerDef; j: number; deps: string[] }[] = [];
  const checkRef = (r: Ref, who: string) => {
    const l = byName.get(r.layer);
    if (!l) throw new TopologyError(`${who} reads layer "${r.layer}", which model "${c.name}" does not have`, file, who);
    const count = l.className === 'InputLayer' ? 1 : l.nodes.length;
    if (r.node < l.firstNode || r.node >= l.firstNode + count) {
      throw new TopologyError(`${who} reads call ${r.node} of layer "${r.layer}", which is called ${count} time(s)`, file, who);
    }
  };
  for (const layer of c.layers) {
    if (layer.className === 'InputLayer') continue;
    layer.nodes.forEach((n, j) => {
      n.inputs.forEach((r) => checkRef(r, layer.name));
      calls.push({ layer, j, deps: n.inputs.filter((r) => byName.get(r.layer)?.className !== 'InputLayer').map((r) => key(r.layer, r.node)) });
    });
  }
  c.outputs.forEach((r) => checkRef(r, `the outputs of "${c.name}"`));
  const done = new Set<string>();
  const out: { layer: LayerDef; j: number }[] = [];
  let pending = calls;
  while (pending.length > 0) {
    const next = pending.filter((call) => {
      if (!call.deps.every((d) => done.has(d))) return true;
      out.push(call);
      done.add(key(call.layer.name, call.layer.firstNode + call.j));
      return false;
    });
    if (next.length === pending.length) {
      throw new TopologyError(`model "${c.name}" has a cycle or a dangling reference around layer "${next[0].layer.name}"`, file, next[0].layer.name);
    }
    pending = next;
  }
  return out;
}

/**
 * Keras 3 names a layer's variables by position ("conv/0"); TF.js loads those too. The positions of
 * the variables kprune reads, per class.
 */
const KERAS3_INDEX: Record<string, Record<string, number>> = {
  Conv2D: { kernel: 0, bias: 1 },
  Dense: { kernel: 0, bias: 1 },
  DepthwiseConv2D: { depthwise_kernel: 0, bias: 1 },
  SeparableConv2D: { depthwise_kernel: 0, pointwise_kernel: 1, bias: 2 },
};

/** The manifest weight `<suffix>` of a layer, preferring names scoped by its enclosing models. */
export function findWeight(model: TfjsModel, scopes: string[], layer: string, suffix: string, className: string): WeightEntry | undefined {
  const k3 = KERAS3_INDEX[className.replace('Convolution', 'Conv')]?.[suffix];
  for (const s of k3 === undefined ? [suffix] : [suffix, String(k3)]) {
    for (let k = scopes.length; k >= 0; k--) {
      const prefix = scopes.slice(scopes.length - k).join('/');
      const w = model.byName.get(`${prefix ? `${prefix}/` : ''}${layer}/${s}`);
      if (w) return w;
    }
  }
  return undefined;
}

/** Every manifest weight under a layer's name (for layers kprune does not know). */
function weightsUnder(model: TfjsModel, scopes: string[], layer: string): WeightEntry[] {
  const prefixes = scopes.map((_, k) => `${scopes.slice(k).join('/')}/${layer}/`).concat(`${layer}/`);
  return model.weights.filter((w) => prefixes.some((p) => w.name.startsWith(p)));
}

const DTYPES: Record<string, ElementType> = { float32: 'float32', int32: 'int32', bool: 'bool', float16: 'float16', float64: 'float64' };

export function scanKeras(model: TfjsModel): KerasScan {
  const file = model.path;
  const topo = isObject(model.topology.model_config) ? model.topology.model_config : model.topology;
  if (typeof topo.class_name !== 'string' || !CONTAINERS.has(topo.class_name)) {
    throw new KpruneError('unsupported', `the model topology is a "${String(topo.class_name)}", not a Sequential or functional model`, { file });
  }
  const top = parseContainer(topo.class_name, topo.config, 'model', file);

  const ops: KerasExecOp[] = [];
  const layouts = new Map<string, ChannelLayout>();
  const alias = new Map<string, string>();
  const resolve = (n: string): string => {
    let x = n;
    while (alias.has(x)) x = alias.get(x)!;
    return x;
  };
  const convs = new Map<string, Conv3x3Layer>();
  const pointwise: KerasPointwise[] = [];
  const skipped: SkippedConv[] = [];
  const compute: ComputeNode[] = [];
  const inputs: InputSpec[] = [];
  const planInputs: { name: string; tensor: string }[] = [];
  const classes = new Set<string>();
  const skippedLayers = new Set<string>();

  // How many outputs each call has: one more than the highest tensor index anyone reads.
  const outputCounts = new Map<string, number>();
  const countRefs = (c: ContainerDef, scope: string) => {
    const see = (r: Ref) => {
      const k = `${scope}${r.layer}:${r.node}`;
      outputCounts.set(k, Math.max(outputCounts.get(k) ?? 1, r.tensor + 1));
    };
    c.layers.forEach((l) => l.nodes.forEach((n) => n.inputs.forEach(see)));
    c.outputs.forEach(see);
  };

  const expand = (c: ContainerDef, scope: string, scopes: string[], layerPath: string[], bound: string[] | null): string[] => {
    countRefs(c, scope);
    const tname = (r: Ref) => `${scope}${r.layer}:${r.node}:${r.tensor}`;
    c.inputs.forEach((r, i) => {
      const name = tname(r);
      if (bound) {
        if (bound[i] === undefined) throw new TopologyError(`model "${c.name}" is called with fewer inputs than it has`, file, c.name);
        alias.set(name, bound[i]);
        return;
      }
      const def = c.layers.find((l) => l.name === r.layer);
      const shape = def?.config.batch_input_shape ?? def?.config.batch_shape;
      const dims = Array.isArray(shape) ? shape.map((d, k) => (typeof d === 'number' && d > 0 ? d : k === 0 ? 'batch' : `dim${k}`)) : ['batch'];
      inputs.push({ name: r.layer, dims, type: DTYPES[String(def?.config.dtype ?? 'float32')] ?? 'float32' });
      planInputs.push({ name: r.layer, tensor: name });
    });
    for (const { layer, j } of orderCalls(c, file)) {
      classes.add(layer.className);
      const nodeIndex = layer.firstNode + j;
      const base = `${scope}${layer.name}:${nodeIndex}`;
      const callName = `${scope}${layer.name}${j === 0 ? '' : `#${j}`}`;
      const ins = layer.nodes[j].inputs.map((r) => resolve(tname(r)));
      if (layer.container) {
        const outs = expand(layer.container, `${callName}/`, [...scopes, layer.name], [...layerPath, layer.name], ins);
        outs.forEach((o, t) => alias.set(`${base}:${t}`, o));
        continue;
      }
      const op: KerasExecOp = {
        kind: 'layer', layerPath: [...layerPath, layer.name], className: layer.className, inputs: ins,
        outputBase: base, outputCount: outputCounts.get(base) ?? 1, kwargs: layer.nodes[j].kwargs,
      };
      visitLayer(layer, op, callName, scopes);
      ops.push(op);
    }
    return c.outputs.map((r) => resolve(tname(r)));
  };

  // Whether a value is 2-D: made by a flattening layer, through layers that keep the rank.
  const isTwoD = (value: string | undefined): boolean => {
    for (let v = value, hops = 0; v !== undefined && hops < 64; hops++) {
      const producer = ops.find((o) => opOutputs(o).includes(v!));
      if (!producer) return false;
      if (FLATTENING.has(producer.className)) return true;
      if (!RANK_KEEPING.has(producer.className)) return false;
      v = producer.inputs[0];
    }
    return false;
  };

  const visitLayer = (layer: LayerDef, op: KerasExecOp, callName: string, scopes: string[]) => {
    const cfg = layer.config;
    const out = `${op.outputBase}:0`;
    const weight = (suffix: string) => findWeight(model, scopes, layer.name, suffix, layer.className);
    if (layer.className === 'Dense') {
      const k = weight('kernel');
      if (k && k.shape.length === 2) compute.push({ node: callName, opType: 'Dense', output: out, weight: k.name, macsPerOutput: k.shape[0] });
      // Re-solvable when its output is its pre-activation value and its input is known to be 2-D
      // (Dense on a 4-D input applies to the last axis: NHWC pixels, which the statistics would
      // read as NCHW).
      const activation = String(cfg.activation ?? 'linear');
      if (k && k.shape.length === 2 && k.dtype === 'float32' && (activation === 'linear' || activation === 'None') && isTwoD(op.inputs[0])) {
        const bias = cfg.use_bias === false ? undefined : weight('bias');
        op.dense = { kernelId: k.name };
        pointwise.push({
          kind: 'dense',
          kernel: k,
          op: ops.length,
          use: {
            node: callName, input: op.inputs[0], output: out,
            ...(bias ? { bias: bias.name, biasValues: weightFloats(model, bias) ?? undefined } : {}),
            group: 1, strides: [1, 1], dilations: [1, 1], pads: [1, 1, 1, 1], autoPad: 'NOTSET',
          },
        });
      }
      return;
    }
    if (layer.className === 'Conv1D' || layer.className === 'Conv3D') {
      const k = weight('kernel');
      if (k && k.shape.length >= 3) compute.push({ node: callName, opType: layer.className, output: out, weight: k.name, macsPerOutput: elementCount(k.shape.slice(0, -1)) });
    }
    if (!CONV_CLASSES.has(layer.className)) {
      const layerKey = [...scopes, layer.name].join('/');
      if (skippedLayers.has(layerKey)) return;
      const threeByThree = weightsUnder(model, scopes, layer.name).find((w) => w.shape.length === 4 && w.shape[0] === 3 && w.shape[1] === 3);
      if (threeByThree) {
        skippedLayers.add(layerKey);
        skipped.push({
          node: callName,
          opType: layer.className,
          reason: NOT_PRUNED.has(layer.className)
            ? `${layer.className} is not pruned by kprune (its 3x3 kernel "${threeByThree.name}" is left as it is)`
            : `layer class "${layer.className}" is unknown to kprune; its 3x3 kernel "${threeByThree.name}" is left as it is`,
        });
      }
      return;
    }
    const type: KerasConvSpec['type'] = layer.className.startsWith('Separable') ? 'separable' : layer.className === 'DepthwiseConv2D' ? 'depthwise' : 'conv2d';
    const kernel = weight(type === 'conv2d' ? 'kernel' : 'depthwise_kernel');
    const [kh, kw] = pair(cfg.kernel_size, 1);
    if (!kernel) {
      throw new TopologyError(`${layer.className} "${callName}" has no ${type === 'conv2d' ? 'kernel' : 'depthwise_kernel'} in the weights manifest`, file, callName);
    }
    if (kernel.shape.length !== 4 || kernel.shape[0] !== kh || kernel.shape[1] !== kw) {
      throw new TopologyError(`${layer.className} "${callName}" has kernel_size [${kh}, ${kw}] but its kernel "${kernel.name}" is [${kernel.shape}]`, file, callName);
    }
    const padding = cfg.padding === 'valid' ? 'valid' : cfg.padding === 'same' ? 'same' : null;
    if (!padding) throw new KpruneError('unsupported', `${layer.className} "${callName}" has padding "${String(cfg.padding)}" (known: same, valid)`, { file, node: callName });
    const channelsFirst = cfg.data_format === 'channels_first';
    const spec: KerasConvSpec = {
      type, kernelId: kernel.name, strides: pair(cfg.strides, 1), dilations: pair(cfg.dilation_rate, 1), padding, channelsFirst,
      inner: `${out}/${type === 'separable' ? 'depthwise' : 'linear'}`,
    };
    op.kind = 'conv';
    op.conv = spec;
    op.outputCount = 1;
    const [, , cin, cout] = kernel.shape;
    const groups = type === 'conv2d' ? Number(cfg.groups ?? 1) : 1;
    if (type === 'conv2d') {
      compute.push({ node: callName, opType: layer.className, output: out, weight: kernel.name, macsPerOutput: kh * kw * cin });
    } else {
      compute.push({ node: callName, opType: type === 'separable' ? `${layer.className}/depthwise` : layer.className, output: type === 'separable' ? spec.inner : out, weight: kernel.name, macsPerOutput: kh * kw });
      const pw = type === 'separable' ? weight('pointwise_kernel') : undefined;
      if (pw) compute.push({ node: callName, opType: `${layer.className}/pointwise`, output: out, weight: pw.name, macsPerOutput: pw.shape[2] });
    }
    if (kh === 1 && kw === 1 && type === 'conv2d' && groups === 1 && !channelsFirst && spec.dilations.every((d) => d === 1) && kernel.dtype === 'float32') {
      const bias = cfg.use_bias === false ? undefined : weight('bias');
      layouts.set(op.inputs[0], 'NHWC');
      layouts.set(spec.inner, 'NHWC');
      // Read as a 3x3 convolution with only its centre tap: one more pixel of padding (a 1x1
      // kernel has no padding in TF, "same" or "valid").
      pointwise.push({
        kind: 'conv1x1',
        kernel,
        op: ops.length,
        use: {
          node: callName, input: op.inputs[0], output: spec.inner,
          ...(bias ? { bias: bias.name, biasValues: weightFloats(model, bias) ?? undefined } : {}),
          group: 1, strides: spec.strides, dilations: [1, 1], pads: [1, 1, 1, 1], autoPad: 'NOTSET',
        },
      });
    }
    if (kh !== 3 || kw !== 3) return;
    if (kernel.dtype !== 'float32') {
      skipped.push({ node: callName, opType: layer.className, reason: `its kernel "${kernel.name}" is ${kernel.dtype}, not float32` });
      return;
    }
    // Keras: Conv2D kernel [3,3,in/groups,out]; depthwise [3,3,channels,multiplier].
    const outChannels = type === 'conv2d' ? cout : cin * cout;
    const group = type === 'conv2d' ? groups : cin;
    if (!Number.isInteger(group) || group < 1 || outChannels % group !== 0) {
      throw new TopologyError(`${layer.className} "${callName}" has groups ${String(cfg.groups)}, which does not divide its ${outChannels} filters`, file, callName);
    }
    const bias = type === 'separable' || cfg.use_bias === false ? undefined : weight('bias');
    const inputLayout: ChannelLayout = channelsFirst ? 'NCHW' : 'NHWC';
    layouts.set(op.inputs[0], inputLayout);
    layouts.set(spec.inner, 'NHWC');
    const use: ConvUse = {
      node: callName,
      input: op.inputs[0],
      output: spec.inner,
      ...(bias ? { bias: bias.name, biasValues: weightFloats(model, bias) ?? undefined } : {}),
      group,
      strides: spec.strides,
      dilations: spec.dilations,
      pads: [0, 0, 0, 0],
      // TF's "same" puts the odd pad at the end (bottom, right): ONNX's SAME_UPPER.
      autoPad: padding === 'same' ? 'SAME_UPPER' : 'VALID',
    };
    // Its op's position orders it among the layers recovery compensates with (core/recover/linear.ts).
    const order = ops.length;
    addConvUse(convs, kernel.name, use, (index) => Object.assign(kernelLayer(model, kernel, callName, index, use, type !== 'conv2d', group), { order }));
  };

  const outputs = expand(top, '', [top.name], [], null);
  return { plan: { inputs: planInputs, outputs, ops, layouts }, layers: [...convs.values()], skipped, compute, inputs, classes, pointwise };
}
