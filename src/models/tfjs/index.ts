/**
 * TF.js models (LayersModel and GraphModel model.json + weight shards) behind the LoadedModel
 * contract. Reading, analysis and writing work on the files alone; running (recovery, measuring,
 * verification, layout timings) goes through TF.js itself (runner.ts, layers-exec.ts, src/runtime/tfjs/). Layers are
 * written masked or decomposed (decompose-layers.ts, decompose-graph.ts); `--layout auto` times both
 * (auto-layout.ts).
 */
import path from 'node:path';
import { Conv3x3Layer, countNonzero, layerParams } from '../../model/conv.js';
import { KpruneError, isKpruneError, reasonOf } from '../../errors.js';
import type { InputSpec } from '../../model/inputs.js';
import type { ModelRunner } from '../../model/runner.js';
import { LatencyComparison, latencyComparison } from '../../model/latency.js';
import { DEFAULT_LATENCY_CAP_MS, timeInterleaved } from '../../util/timing.js';
import type * as TF from '../../runtime/tfjs/tf.js';
import { TfjsRuntime, tfjsRuntime } from '../../runtime/tfjs/backend.js';
import { memoryHandler, modelArtifacts } from './io.js';
import { LoadedTfjs, TfjsFeed, createGraphRunner, createLayersRunner, fetchShapes, loadInTfjs, loadTfjsModel, runOnce } from './runner.js';
import type { ComputeNode, ModelInventory } from '../../model/inventory.js';
import type { SkippedConv } from '../../model/conv.js';
import type { LoadedModel } from '../../model/loaded-model.js';
import type { Recoverable } from '../../core/recover/recoverable.js';
import { openGraphLayerwise, openKerasLayerwise } from './layerwise.js';
import { findKerasLinearLayers } from '../../formats/tfjs/keras-linear.js';
import { scanGraph, GraphScan } from '../../formats/tfjs/graph.js';
import { depthwiseToOihw, hwioToOihw, oihwToDepthwise, oihwToHwio } from '../../formats/tfjs/kernels.js';
import { scanKeras, KerasScan } from '../../formats/tfjs/layers.js';
import { TfjsModel, elementCount, modelFiles, readTfjsModel, weightFloats } from '../../formats/tfjs/read.js';
import { TfjsWriteOptions, writeTfjsModel } from '../../formats/tfjs/write.js';
import { storageName } from '../../formats/tfjs/dtypes.js';
import { decomposeKeras } from '../../formats/tfjs/decompose-layers.js';
import { decomposeGraph } from '../../formats/tfjs/decompose-graph.js';
import { chooseTfjsLayouts } from './auto-layout.js';
import { DerivedMap } from '../../util/derived-map.js';
import { finetuneTfjsInTfjs } from './finetune-in-tfjs.js';
import type { LayoutRequest } from '../../model/loaded-model.js';

export { readTfjsModel, detectTfjs } from '../../formats/tfjs/read.js';
export type { TfjsModel } from '../../formats/tfjs/read.js';
export type { TfjsWriteOptions, WeightStorageOption } from '../../formats/tfjs/write.js';

type Scan =
  | { kind: 'layers'; keras: KerasScan; layers: Conv3x3Layer[]; skipped: SkippedConv[]; compute: ComputeNode[]; inputs: InputSpec[] }
  | { kind: 'graph'; graph: GraphScan; layers: Conv3x3Layer[]; skipped: SkippedConv[]; compute: ComputeNode[]; inputs: InputSpec[] };

function scan(model: TfjsModel): Scan {
  if (model.format === 'layers-model') {
    const keras = scanKeras(model);
    return { kind: 'layers', keras, layers: keras.layers, skipped: keras.skipped, compute: keras.compute, inputs: keras.inputs };
  }
  const graph = scanGraph(model);
  return { kind: 'graph', graph, layers: graph.layers, skipped: graph.skipped, compute: graph.compute, inputs: graph.inputs };
}

/** <dir>/<name>.kpruned/<file>: a folder beside the input, since the shards keep their names. */
export function tfjsKprunedPath(file: string): string {
  const base = path.basename(file);
  return path.join(path.dirname(file), `${base.replace(/\.json$/i, '')}.kpruned`, base);
}

/**
 * The layers' weights (core layout [out][in][9]) in the manifest's layout (HWIO or depthwise),
 * converted when asked for and kept nowhere (each `get` converts again). `only` picks some layers.
 */
function toManifestLayout(model: TfjsModel, layers: Conv3x3Layer[], weights: ReadonlyMap<string, Float32Array>, only?: (id: string) => boolean, linear: ReadonlySet<string> = new Set()): ReadonlyMap<string, Float32Array> {
  const byId = new Map(layers.map((l) => [l.id, l]));
  const ids = [...weights.keys()].filter((id) => !only || only(id));
  for (const id of ids) {
    if (!(byId.has(id) || linear.has(id)) || !model.byName.has(id)) throw new KpruneError('usage', `no 3x3 layer "${id}" in this model`);
  }
  return DerivedMap.over(ids, (id) => (byId.has(id) ? toModelLayout(model, byId.get(id)!, weights.get(id)!) : ownLayout(model, id, weights.get(id)!)));
}

/** A compensated linear layer's weights: recovery keeps them in the file's layout ([1, 1, in, out]). */
function ownLayout(model: TfjsModel, id: string, values: Float32Array): Float32Array {
  const n = elementCount(model.byName.get(id)!.shape);
  if (values.length !== n) throw new KpruneError('usage', `weight "${id}" has ${n} values, not ${values.length}`);
  return values;
}

/** A layer's weights [out][inPerGroup][9] in its kernel's own layout (HWIO, or depthwise [3, 3, C, M]). */
function toModelLayout(model: TfjsModel, layer: Conv3x3Layer, values: Float32Array): Float32Array {
  if (values.length !== layerParams(layer)) throw new KpruneError('usage', `layer "${layer.id}" has ${layerParams(layer)} weights, not ${values.length}`);
  const [, , cin, cout] = model.byName.get(layer.id)!.shape;
  // A Conv2D kernel's third dim is the layer's inputs per group; a depthwise kernel's is its channels.
  return layer.inChannelsPerGroup === cin ? oihwToHwio(values, cin, cout) : oihwToDepthwise(values, cin, cout);
}

/** The inverse of `toModelLayout`. */
function fromModelLayout(model: TfjsModel, layer: Conv3x3Layer, values: Float32Array): Float32Array {
  const [, , cin, cout] = model.byName.get(layer.id)!.shape;
  return layer.inChannelsPerGroup === cin ? hwioToOihw(values, cin, cout) : depthwiseToOihw(values, cin, cout);
}

function singleInput(inputs: InputSpec[], file: string): InputSpec {
  if (inputs.length !== 1) {
    throw new KpruneError('unsupported', `running a TF.js model needs one input; this one has ${inputs.length} (${inputs.map((i) => i.name).join(', ')})`, { file });
  }
  return inputs[0];
}

function storageSummary(model: TfjsModel): string {
  const counts = new Map<string, number>();
  for (const w of model.weights) counts.set(storageName(w.storage), (counts.get(storageName(w.storage)) ?? 0) + 1);
  return [...counts].map(([k, n]) => `${k} (${n})`).join(', ');
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The class of every Keras layer in a topology, nested models and wrapped layers included. */
function kerasClasses(layer: unknown, out = new Set<string>()): Set<string> {
  if (!isObject(layer)) return out;
  if (typeof layer.class_name === 'string') out.add(layer.class_name);
  const cfg = layer.config;
  // A Sequential's config may be its list of layers (old files); a wrapper's layer is config.layer.
  const inner = Array.isArray(cfg) ? cfg : isObject(cfg) && Array.isArray(cfg.layers) ? cfg.layers : [];
  for (const l of inner) kerasClasses(l, out);
  if (isObject(cfg) && isObject(cfg.layer)) kerasClasses(cfg.layer, out);
  return out;
}

/**
 * Would TF.js load the model? Asked without its weights, which would make the check as large as the
 * model: a LayersModel's layer classes must be registered in TF.js (what it reports as "Unknown
 * layer" otherwise); a GraphModel's topology must load (unknown ops only fail when run). Anything
 * else TF.js refuses is found when the written model is verified.
 */
async function probeLoadable(rt: TfjsRuntime, model: TfjsModel, kind: Scan['kind']): Promise<void> {
  if (kind === 'layers') {
    const known = rt.tf.serialization.SerializationMap.getMap().classNameMap;
    const topology = isObject(model.topology.model_config) ? model.topology.model_config : model.topology;
    for (const c of kerasClasses(topology)) {
      if (!(c in known)) {
        throw new KpruneError('unsupported', `TF.js cannot load the model: Unknown layer: ${c} (no layer class of that name is registered in TF.js)`, {
          file: model.path, suggestion: 'custom layer classes must be registered with tf.serialization.registerClass in the process that loads the model',
        });
      }
    }
    return;
  }
  const topologyOnly: TF.io.ModelArtifacts = { modelTopology: model.topology as TF.io.ModelArtifacts['modelTopology'], format: model.format, weightSpecs: [], weightData: new ArrayBuffer(0) };
  const loaded = await loadInTfjs(rt, 'graph', memoryHandler(topologyOnly), model.path);
  await thenDispose([loaded], model.path, async () => {});
}

/** The first line of what failed; a KpruneError about `file` without the file (the new error names it). */
const firstLine = (e: unknown, file?: string) => reasonOf(e, file).split('\n')[0];

/**
 * Runs `f`, then disposes models loaded in TF.js (those in `models` by then). A run that failed in
 * the wasm backend can leave its memory broken so that disposing throws as well: the run's error is
 * then the one to report; after a run that went well, a failed dispose is a runtime error.
 */
async function thenDispose<T>(models: LoadedTfjs[], file: string, f: () => Promise<T>): Promise<T> {
  let ok = false;
  let failed: unknown;
  try {
    const result = await f();
    ok = true;
    return result;
  } finally {
    for (const m of models) {
      try {
        m.model.dispose();
      } catch (e) {
        failed ??= e;
      }
    }
    // Only when f returned: throwing here replaces its result, and would replace its error.
    // eslint-disable-next-line no-unsafe-finally
    if (ok && failed !== undefined) throw new KpruneError('runtime', `TF.js failed to release a model: ${firstLine(failed, file)}`, { file, cause: failed });
  }
}

export interface TfjsLoadOptions {
  /** How write() stores weights: as they were (default) or all float32. */
  write?: TfjsWriteOptions;
}

/**
 * model.json is untrusted JSON: a value of the wrong type deep in a topology (a number where a list
 * belongs, null where a node was) surfaces as a TypeError in the readers. At this boundary such an
 * error becomes what it is, a malformed model, with the reader's message kept.
 */
async function asBadModel<T>(file: string, f: () => Promise<T> | T): Promise<T> {
  try {
    return await f();
  } catch (e) {
    if (isKpruneError(e)) throw e;
    const why = e instanceof Error ? e.message : String(e);
    throw new KpruneError('bad-model', `model.json does not have the structure of a TF.js model (${why})`, { file, cause: e });
  }
}

export async function loadTfjs(file: string, options: TfjsLoadOptions = {}): Promise<LoadedModel & Recoverable> {
  const model = await asBadModel(file, () => readTfjsModel(file));
  const s = await asBadModel(file, () => scan(model));
  // 1x1 Conv2D kernels recovery may re-solve (compensation), written in their own layout.
  const pointwise = new Set(s.kind === 'layers' ? s.keras.pointwise.map((p) => p.kernel.name) : []);
  const runnerFor = async (weights: ReadonlyMap<string, Float32Array>): Promise<ModelRunner> => {
    const input = singleInput(s.inputs, file);
    const replace = toManifestLayout(model, s.layers, weights, undefined, pointwise);
    if (s.kind === 'layers') {
      const kernels = new Map([...replace].map(([id, values]) => [id, { values, shape: model.byName.get(id)!.shape }]));
      return createLayersRunner({ artifacts: modelArtifacts(model), plan: s.keras.plan, input, kernels, file });
    }
    return createGraphRunner({ artifacts: modelArtifacts(model, { replace, extraNodes: s.graph.extraNodes }), input, layouts: s.graph.layouts, file });
  };
  const feedsOf = (shapes: Map<string, number[]>): TfjsFeed[] => s.inputs.map((i) => ({
    name: i.name,
    // Inside a LayersModel plan an input is a tensor name; a GraphModel is fed by Placeholder name.
    tensor: s.kind === 'layers' ? s.keras.plan.inputs.find((p) => p.name === i.name)!.tensor : i.name,
    dims: shapes.get(i.name)!,
    dtype: i.type === 'int32' ? 'int32' as const : 'float32' as const,
  }));
  /** The input dims of every convolution use (by tensor name), from one run at the given input shapes. */
  const useInputDims = async (shapes: Map<string, number[]>): Promise<Map<string, number[]>> => {
    const feeds = feedsOf(shapes);
    const missing = feeds.find((f) => !f.dims);
    if (missing) throw new KpruneError('usage', `no shape given for input "${missing.name}"`, { file });
    // A use reading a model input: a plan tensor in a LayersModel, "<Placeholder>:0" in a GraphModel.
    const fed = new Map(feeds.map((f) => [s.kind === 'layers' ? f.tensor : `${f.name}:0`, f.dims]));
    const wanted = [...new Set(s.layers.flatMap((l) => l.uses.map((u) => u.input)))].filter((t) => !fed.has(t));
    const out = new Map(fed);
    if (wanted.length === 0) return out;
    const rt = await tfjsRuntime();
    const loaded = await loadTfjsModel(rt, s.kind, model, file);
    for (const [k, v] of await thenDispose([loaded], file, () => fetchShapes(rt, loaded, s.kind === 'layers' ? s.keras.plan : null, feeds, wanted, file))) out.set(k, v);
    return out;
  };
  const channelsFirst = (tensor: string) => (s.kind === 'layers' ? s.keras.plan.layouts : s.graph.layouts).get(tensor) === 'NCHW';
  /**
   * The layout rewrite for some requests. "same" pads with a stride above 1 depend on the input
   * size: they are computed from the model's own input shape when it fixes one (batch aside).
   */
  const layoutPlan = async (weights: ReadonlyMap<string, Float32Array>, requests: Map<string, LayoutRequest>) => {
    const sizeDependent = s.layers.some((l) => requests.get(l.id)?.layout === 'decomposed' && l.uses.some((u) => u.autoPad === 'SAME_UPPER' && (u.strides[0] > 1 || u.strides[1] > 1)));
    const fixed = s.inputs.every((i) => i.dims.slice(1).every((d) => typeof d === 'number' && d > 0));
    const dims = sizeDependent && fixed ? await useInputDims(new Map(s.inputs.map((i) => [i.name, [1, ...i.dims.slice(1) as number[]]]))) : new Map<string, number[]>();
    const hw = (tensor: string): [number, number] | null => {
      const d = dims.get(tensor);
      if (!d || d.length !== 4) return null;
      return channelsFirst(tensor) ? [d[2], d[3]] : [d[1], d[2]];
    };
    return s.kind === 'layers' ? decomposeKeras(model, s.layers, weights, requests, hw) : decomposeGraph(model, s.graph, weights, requests, hw);
  };
  const loadWritten = async (outPath: string): Promise<{ loaded: LoadedTfjs; backend: string }> => {
    const rt = await tfjsRuntime();
    return { loaded: await loadTfjsModel(rt, s.kind, await asBadModel(outPath, () => readTfjsModel(outPath)), outPath), backend: rt.description };
  };

  return {
    format: model.format === 'layers-model' ? 'tfjs-layers' : 'tfjs-graph',
    path: file,
    files: modelFiles(model),
    formatInfo: {
      format: model.format,
      ...(typeof model.json.generatedBy === 'string' ? { generatedBy: model.json.generatedBy } : {}),
      ...(typeof model.json.convertedBy === 'string' ? { convertedBy: model.json.convertedBy } : {}),
      weights: storageSummary(model),
      shards: model.groups.reduce((n, g) => n + g.shards.length, 0),
    },
    inputs: s.inputs,
    layers: s.layers,
    skipped: s.skipped,
    inventory(overrides = new Map()): ModelInventory {
      // One tensor at a time, read (or computed) for its count and dropped.
      const weights = model.weights.filter((w) => w.dtype === 'float32').map((w) => {
        const values = overrides.get(w.name) ?? weightFloats(model, w)!;
        return { name: w.name, elements: elementCount(w.shape), nonzero: countNonzero(values) };
      });
      return { inputs: s.inputs, compute: s.compute, weights };
    },
    async outputShapes(inputShapes) {
      const rt = await tfjsRuntime();
      const feeds = feedsOf(inputShapes);
      const missing = feeds.find((f) => !f.dims);
      if (missing) throw new KpruneError('usage', `no shape given for input "${missing.name}"`, { file });
      const wanted = [...new Set(s.compute.map((c) => c.output))];
      const loaded = s.kind === 'graph'
        ? await loadInTfjs(rt, 'graph', memoryHandler(modelArtifacts(model, { extraNodes: s.graph.extraNodes })), file)
        : await loadTfjsModel(rt, 'layers', model, file);
      return thenDispose([loaded], file, () => fetchShapes(rt, loaded, s.kind === 'layers' ? s.keras.plan : null, feeds, wanted, file));
    },
    createRunner: (weights) => runnerFor(weights),
    ...(s.kind === 'layers' ? { linearLayers: (reshaped: Set<string>) => findKerasLinearLayers(model, s.keras, reshaped) } : {}),
    // Segment by segment: a LayersModel's plan, or a GraphModel's GraphDef, is the dataflow graph.
    layerwiseSource(layers, options) {
      const byId = new Map(s.layers.map((l) => [l.id, l]));
      const kernel = (id: string, values: Float32Array) => ({
        values: byId.has(id) ? toModelLayout(model, byId.get(id)!, values) : ownLayout(model, id, values), shape: model.byName.get(id)!.shape,
      });
      return s.kind === 'layers'
        ? openKerasLayerwise({ artifacts: modelArtifacts(model), plan: s.keras.plan, kernel, file }, layers, options)
        : openGraphLayerwise({ artifacts: modelArtifacts(model), nodes: s.graph.nodes, layouts: s.graph.layouts, kernel, file }, layers, options);
    },
    finetune(start, masks, data, options) {
      const byId = new Map(s.layers.map((l) => [l.id, l]));
      // Compensated 1x1 kernels are part of the starting model: they train as they were re-solved.
      const compensated = new Map([...start].filter(([id]) => pointwise.has(id)));
      return finetuneTfjsInTfjs({
        artifacts: modelArtifacts(model, { replace: compensated }),
        model: s.kind === 'layers' ? { kind: 'layers', plan: s.keras.plan } : { kind: 'graph' },
        input: singleInput(s.inputs, file),
        file,
        layers: s.layers,
        kernelShape: (id) => model.byName.get(id)!.shape,
        toModelLayout: (id, values) => toModelLayout(model, byId.get(id)!, values),
        fromModelLayout: (id, values) => fromModelLayout(model, byId.get(id)!, values),
      }, start, masks, data, options);
    },
    defaultOutputPath: () => tfjsKprunedPath(file),
    async write(weights, outPath, layouts = new Map(), tx) {
      // A model TF.js cannot load (a layer class it does not know) could not be verified after
      // writing, so nothing is written for it.
      await probeLoadable(await tfjsRuntime(), model, s.kind);
      const plan = await layoutPlan(weights, layouts);
      const result = await writeTfjsModel(model, toManifestLayout(model, s.layers, weights, undefined, pointwise), outPath, options.write, plan.rewrite, tx);
      return { files: result.files, layouts: plan.outcomes };
    },
    async chooseLayouts(weights, masks, inputShapes, onLayer) {
      const rt = await tfjsRuntime();
      const requests = new Map([...masks].map(([id, mask]) => [id, { layout: 'decomposed' as const, mask }]));
      const written = new Map((await layoutPlan(weights, requests)).outcomes.map((o) => [o.layer, o]));
      return chooseTfjsLayouts({
        rt, model, scan: s.kind === 'graph' ? { kind: 'graph', graph: s.graph } : { kind: 'layers' }, layers: s.layers,
        kernels: toManifestLayout(model, s.layers, weights, (id) => masks.has(id)),
        masks, useDims: await useInputDims(inputShapes), written, channelsFirst, onLayer,
      });
    },
    async compareLatency(outPath, inputShapes, opts): Promise<LatencyComparison> {
      const rt = await tfjsRuntime();
      const a = await loadTfjsModel(rt, s.kind, model, file);
      const loaded = [a];
      const runs = opts.runs ?? 20;
      const warmup = 2;
      return thenDispose(loaded, file, async () => {
        const b = await loadTfjsModel(rt, s.kind, await asBadModel(outPath, () => readTfjsModel(outPath)), outPath);
        loaded.push(b);
        const feeds = feedsOf(inputShapes);
        const [ta, tb] = await timeInterleaved([a, b].map((m) => () => runOnce(rt, m, feeds)), runs, warmup, opts.maxMs ?? DEFAULT_LATENCY_CAP_MS);
        return latencyComparison([ta, tb], { runtime: rt.description, threads: 'default', batch: feeds[0]?.dims[0] ?? 1, warmup, inputShapes });
      });
    },
    async verifyWritten(outPath, inputShapes) {
      const { loaded, backend } = await loadWritten(outPath);
      return thenDispose([loaded], outPath, async () => {
        try {
          if (!inputShapes) return `loaded in ${backend} (not run: the input shape is not known)`;
          await runOnce(await tfjsRuntime(), loaded, feedsOf(inputShapes));
          return `loaded and ran once in ${backend} at input shape ${[...inputShapes.values()].map((d) => `[${d.join(',')}]`).join(' ')}`;
        } catch (e) {
          if (e instanceof KpruneError) throw e;
          throw new KpruneError('runtime', `the written model does not run in TF.js: ${firstLine(e, outPath)}`, { file: outPath, cause: e });
        }
      });
    },
  };
}
