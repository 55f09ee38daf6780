/**
 * `--layout auto` for TF.js models: for each reshaped layer, the masked convolution and its
 * decomposition are each built as a one-layer model of the model's own kind (a LayersModel from the
 * same Keras layers the writer emits, a GraphModel from the same GraphDef nodes), loaded in TF.js and
 * timed at the layer's real input size and the chosen batch: a few warm-up runs, then interleaved
 * runs, medians summed over the layer's uses. The faster form is kept. A layer the writer would keep
 * masked anyway (see decompose-*.ts) is timed masked only, with the writer's reason as its note.
 */
import type * as TF from '../../runtime/tfjs/tf.js';
import { Conv3x3Layer } from '../../model/conv.js';
import { Layout, LayoutOutcome } from '../../model/layout.js';
import { Mask } from '../../core/lattice.js';
import { stats, timeInterleaved, timingValues } from '../../util/timing.js';
import { TfjsRuntime } from '../../runtime/tfjs/backend.js';
import { memoryHandler } from './io.js';
import { LoadedTfjs, executeGraph, loadInTfjs } from './runner.js';
import type { LayoutTiming } from '../../model/layout.js';
import { GraphNodeJson, GraphScan, nodeOf } from '../../formats/tfjs/graph.js';
import { KerasJob, KerasSite, findSites, planKerasJob, replacementLayers } from '../../formats/tfjs/decompose-layers.js';
import { GraphUseJob, graphReplacement, planGraphUse } from '../../formats/tfjs/decompose-graph.js';
import { positionBlock, sliceKernel } from '../../formats/tfjs/pieces.js';
import { TfjsModel, weightFloats } from '../../formats/tfjs/read.js';
import type { AddedWeight } from '../../formats/tfjs/write.js';

type Json = Record<string, unknown>;

interface NamedValues {
  name: string;
  shape: number[];
  values: Float32Array | Int32Array;
}

function artifacts(topology: unknown, format: 'layers-model' | 'graph-model', weights: NamedValues[]): TF.io.ModelArtifacts {
  const data = Buffer.concat(weights.map((w) => Buffer.from(w.values.buffer, w.values.byteOffset, w.values.byteLength)));
  return {
    modelTopology: topology as TF.io.ModelArtifacts['modelTopology'],
    format,
    weightSpecs: weights.map((w) => ({ name: w.name, shape: w.shape, dtype: w.values instanceof Int32Array ? 'int32' as const : 'float32' as const })),
    weightData: data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength) as ArrayBuffer,
  };
}

/** The weights a rewrite adds, as values: pieces cut from the kernel, int32 constants as they are. */
function addedValues(added: AddedWeight[], kernel: Float32Array, kernelShape: number[]): NamedValues[] {
  return added.map((a) => a.kind === 'int32'
    ? { name: a.name, shape: a.shape, values: a.values }
    : { name: a.name, shape: a.shape, values: sliceKernel(kernel, positionBlock(kernelShape), a.positions) });
}

/** One Keras layer alone, masked and decomposed, as LayersModels on an input of `dims`. */
function kerasTimingModels(site: KerasSite, job: KerasJob | null, model: TfjsModel, kernel: Float32Array, dims: number[]): [TF.io.ModelArtifacts, TF.io.ModelArtifacts | null] {
  const name = site.name;
  const cfg = { ...(site.layer.config as Json) };
  for (const k of ['batch_input_shape', 'batch_shape', 'input_shape']) delete cfg[k];
  const input = { class_name: 'InputLayer', name: 'kp_x', config: { batch_input_shape: [null, ...dims.slice(1)], dtype: 'float32', sparse: false, name: 'kp_x' }, inbound_nodes: [] };
  const layer: Json = { class_name: site.layer.class_name, name, config: cfg, inbound_nodes: [[['kp_x', 0, 0, {}]]] };
  const topology = (layers: Json[]) => ({ class_name: 'Model', config: { name: 'kp_timing', layers: [input, ...layers], input_layers: [['kp_x', 0, 0]], output_layers: [[name, 0, 0]] } });
  // In a one-layer model the weights are named after the layer alone.
  const local = { ...site, prefix: '', kernel: `${name}/${site.suffix}`, bias: site.bias ? `${name}/bias` : undefined, pointwise: site.pointwise ? `${name}/pointwise_kernel` : undefined };
  const others: NamedValues[] = [];
  for (const [mine, theirs] of [[local.bias, site.bias], [local.pointwise, site.pointwise]]) {
    const entry = theirs ? model.byName.get(theirs) : undefined;
    if (mine && entry) others.push({ name: mine, shape: entry.shape, values: weightFloats(model, entry)! });
  }
  const masked = artifacts(topology([layer]), 'layers-model', [{ name: local.kernel, shape: site.kernelShape, values: kernel }, ...others]);
  if (!job) return [masked, null];
  const r = replacementLayers(layer, local, job);
  const renamed = others.map((o) => ({ ...o, name: r.rename.get(o.name) ?? o.name }));
  return [masked, artifacts(topology(r.layers), 'layers-model', [...addedValues(r.added, kernel, site.kernelShape), ...renamed])];
}

/** One convolution node alone, masked and decomposed, as GraphModels on an input of `dims`. */
function graphTimingModels(node: GraphNodeJson, job: GraphUseJob | null, model: TfjsModel, byName: Map<string, GraphNodeJson>, filter: string, kernelShape: number[], kernel: Float32Array, dims: number[]): [TF.io.ModelArtifacts, TF.io.ModelArtifacts | null] | string {
  const constValues = (input: string | undefined): Float32Array | null => {
    let n = input === undefined ? undefined : byName.get(nodeOf(input));
    for (let guard = 0; n && n.op === 'Identity' && guard < 64; guard++) n = n.input?.[0] === undefined ? undefined : byName.get(nodeOf(n.input[0]));
    const entry = n?.op === 'Const' ? model.byName.get(n.name) : undefined;
    return entry ? weightFloats(model, entry) : null;
  };
  const floatConst = (name: string, shape: number[]): GraphNodeJson => ({
    name, op: 'Const', attr: { value: { tensor: { dtype: 'DT_FLOAT', tensorShape: { dim: shape.map((d) => ({ size: String(d) })) } } }, dtype: { type: 'DT_FLOAT' } },
  });
  const data = (node.input ?? []).filter((i) => !i.startsWith('^'));
  const extras: NamedValues[] = [];
  const inputs = ['kp_x', filter];
  for (const [k, label] of [[2, 'kp_bias'], [3, 'kp_alpha']] as const) {
    if (data[k] === undefined) continue;
    const v = constValues(data[k]);
    if (!v) return `its ${k === 2 ? 'bias' : 'activation parameter'} "${data[k]}" is not a constant, so the layer cannot be timed alone`;
    extras.push({ name: label, shape: [v.length], values: v });
    inputs.push(label);
  }
  const lone: GraphNodeJson = { ...node, input: inputs };
  const placeholder: GraphNodeJson = { name: 'kp_x', op: 'Placeholder', attr: { dtype: { type: 'DT_FLOAT' }, shape: { shape: { dim: dims.map((d) => ({ size: String(d) })) } } } };
  const graph = (nodes: GraphNodeJson[]) => ({ node: nodes, library: {}, versions: {} });
  const extraNodes = extras.map((e) => floatConst(e.name, e.shape));
  const masked = artifacts(graph([placeholder, floatConst(filter, kernelShape), ...extraNodes, lone]), 'graph-model', [{ name: filter, shape: kernelShape, values: kernel }, ...extras]);
  if (!job) return [masked, null];
  const r = graphReplacement({ ...job, node: lone }, filter, kernelShape, new Set());
  return [masked, artifacts(graph([placeholder, ...r.consts, ...extraNodes, ...r.nodes]), 'graph-model', [...addedValues(r.added, kernel, kernelShape), ...extras])];
}

/** Median ms of each model over `runs` interleaved runs after `warmup` runs each. */
async function timeModels(rt: TfjsRuntime, kind: LoadedTfjs['kind'], models: TF.io.ModelArtifacts[], dims: number[], runs: number, warmup: number): Promise<number[]> {
  const { tf } = rt;
  const loaded: LoadedTfjs[] = [];
  const x = tf.tensor(Float32Array.from({ length: dims.reduce((a, b) => a * b, 1) }, timingValues()), dims);
  try {
    for (const m of models) loaded.push(await loadInTfjs(rt, kind, memoryHandler(m), 'one-layer timing model'));
    const once = async (m: LoadedTfjs) => {
      const y = m.kind === 'layers' ? m.model.predict(x) as TF.Tensor : (await executeGraph(m.model, { kp_x: x }))[0];
      await y.data();
      y.dispose();
    };
    const times = await timeInterleaved(loaded.map((m) => () => once(m)), runs, warmup);
    return times.map((t) => stats(t).medianMs);
  } finally {
    x.dispose();
    for (const m of loaded) m.model.dispose();
  }
}

export interface TfjsLayoutInputs {
  rt: TfjsRuntime;
  model: TfjsModel;
  scan: { kind: 'layers' } | { kind: 'graph'; graph: GraphScan };
  layers: Conv3x3Layer[];
  /** Final kernels by layer id, in the manifest's layout. */
  kernels: ReadonlyMap<string, Float32Array>;
  masks: Map<string, Mask>;
  /** Input dims of every use (by tensor name) at the timing input shapes, batch included. */
  useDims: Map<string, number[]>;
  /** What the writer does with each layer when asked for `decomposed`. */
  written: Map<string, LayoutOutcome>;
  /** Activation layout of a use's input. */
  channelsFirst: (tensor: string) => boolean;
  runs?: number;
  warmup?: number;
  onLayer?: (done: number, total: number, name: string) => void;
}

export async function chooseTfjsLayouts(p: TfjsLayoutInputs): Promise<LayoutTiming[]> {
  const runs = p.runs ?? 15;
  const warmup = p.warmup ?? 3;
  const hw = (tensor: string): [number, number] | null => {
    const d = p.useDims.get(tensor);
    if (!d || d.length !== 4) return null;
    return p.channelsFirst(tensor) ? [d[2], d[3]] : [d[1], d[2]];
  };
  const sites = p.scan.kind === 'layers' ? findSites(p.model, structuredClone(p.model.topology) as Json) : new Map<string, KerasSite>();
  const byName = p.scan.kind === 'graph' ? new Map(p.scan.graph.nodes.map((n) => [n.name, n])) : new Map<string, GraphNodeJson>();
  const result: LayoutTiming[] = [];
  const targets = p.layers.filter((l) => p.masks.has(l.id));
  for (let li = 0; li < targets.length; li++) {
    const layer = targets[li];
    p.onLayer?.(li, targets.length, layer.name);
    const mask = p.masks.get(layer.id)!;
    const kernel = p.kernels.get(layer.id)!;
    const outcome = p.written.get(layer.id);
    let note = outcome?.applied === 'decomposed' ? undefined : outcome?.note ?? 'not decomposable';
    const decompose = note === undefined;
    let maskedMs = 0;
    let decomposedMs: number | null = decompose ? 0 : null;
    const kernelShape = p.model.byName.get(layer.id)!.shape;
    const site = sites.get(layer.id);
    const kerasJob = site && decompose ? planKerasJob(site, layer, mask, hw) : null;
    for (const use of layer.uses) {
      const dims = p.useDims.get(use.input);
      if (!dims) throw new Error(`no input size for "${use.input}"`);
      let pair: [TF.io.ModelArtifacts, TF.io.ModelArtifacts | null] | string;
      if (p.scan.kind === 'layers') {
        if (!site) throw new Error(`layer "${layer.id}" not found in the topology`);
        pair = kerasTimingModels(site, typeof kerasJob === 'object' ? kerasJob : null, p.model, kernel, dims);
        if (typeof kerasJob === 'string') note = kerasJob;
      } else {
        const node = byName.get(use.node)!;
        const job = decompose ? planGraphUse(node, use, mask, hw, p.model.path) : null;
        if (typeof job === 'string') note = job;
        pair = graphTimingModels(node, typeof job === 'object' ? job : null, p.model, byName, layer.id, kernelShape, kernel, dims);
      }
      if (typeof pair === 'string') {
        note = pair;
        maskedMs = 0;
        decomposedMs = null;
        break;
      }
      const times = await timeModels(p.rt, p.scan.kind, pair[1] ? [pair[0], pair[1]] : [pair[0]], dims, runs, warmup);
      maskedMs += times[0];
      if (pair[1] && decomposedMs !== null) decomposedMs += times[1];
      else decomposedMs = null;
    }
    const choice: Layout = decomposedMs !== null && decomposedMs < maskedMs ? 'decomposed' : 'masked';
    result.push({ layer: layer.id, choice, maskedMs, decomposedMs, ...(note ? { note } : {}) });
  }
  p.onLayer?.(targets.length, targets.length, '');
  return result;
}

