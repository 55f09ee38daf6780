/**
 * TF.js models (LayersModel and GraphModel model.json + weight shards) behind the LoadedModel
 * contract. Reading, analysis and writing work on the files alone; running (recovery, measuring,
 * verification, layout timings) goes through TF.js itself (src/runtime/tfjs-*.ts). Layers are
 * written masked or decomposed (decompose-layers.ts, decompose-graph.ts); `--layout auto` times both
 * (auto-layout.ts).
 */
import path from 'node:path';
import { Conv3x3Layer, countNonzero } from '../../core/conv.js';
import { KpruneError, isKpruneError } from '../../errors.js';
import type { InputSpec } from '../../runtime/onnx-runtime.js';
import type { ModelRunner } from '../../runtime/model-runner.js';
import type { LatencyComparison } from '../../runtime/latency.js';
import { DEFAULT_LATENCY_CAP_MS, MIN_LATENCY_RUNS, stats } from '../../runtime/latency.js';
import { tfjsRuntime } from '../../runtime/tfjs-backend.js';
import { fileHandler, memoryHandler, modelArtifacts } from '../../runtime/tfjs-io.js';
import { LoadedTfjs, TfjsFeed, createGraphRunner, createLayersRunner, fetchShapes, loadInTfjs, runOnce } from '../../runtime/tfjs-runner.js';
import type { ComputeNode, ModelInventory } from '../onnx/inventory.js';
import type { SkippedConv } from '../onnx/convs.js';
import type { LoadedModel } from '../model.js';
import { scanGraph, GraphScan } from './graph.js';
import { oihwToDepthwise, oihwToHwio } from './kernels.js';
import { scanKeras, KerasScan } from './layers.js';
import { TfjsModel, elementCount, modelFiles, readTfjsModel, weightFloats } from './read.js';
import { TfjsWriteOptions, writeTfjsModel } from './write.js';
import { storageName } from './dtypes.js';
import { decomposeKeras } from './decompose-layers.js';
import { decomposeGraph } from './decompose-graph.js';
import { chooseTfjsLayouts } from './auto-layout.js';
import type { LayoutRequest } from '../model.js';

export { readTfjsModel, detectTfjs } from './read.js';
export type { TfjsModel } from './read.js';
export type { TfjsWriteOptions, WeightStorageOption } from './write.js';

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

/** The layers' weights (core layout [out][in][9]) in the manifest's layout (HWIO or depthwise). */
function toManifestLayout(model: TfjsModel, layers: Conv3x3Layer[], weights: ReadonlyMap<string, Float32Array>): ReadonlyMap<string, Float32Array> {
  const byId = new Map(layers.map((l) => [l.id, l]));
  const out = new Map<string, Float32Array>();
  for (const [id, values] of weights) {
    const layer = byId.get(id);
    const entry = model.byName.get(id);
    if (!layer || !entry) throw new KpruneError('usage', `no 3x3 layer "${id}" in this model`);
    if (values.length !== layer.weights.length) throw new KpruneError('usage', `layer "${id}" has ${layer.weights.length} weights, not ${values.length}`);
    const [, , cin, cout] = entry.shape;
    // A Conv2D kernel's third dim is the layer's inputs per group; a depthwise kernel's is its channels.
    out.set(id, layer.inChannelsPerGroup === cin ? oihwToHwio(values, cin, cout) : oihwToDepthwise(values, cin, cout));
  }
  return out;
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

export async function loadTfjs(file: string, options: TfjsLoadOptions = {}): Promise<LoadedModel> {
  const model = await asBadModel(file, () => readTfjsModel(file));
  const s = await asBadModel(file, () => scan(model));
  const runnerFor = async (weights: ReadonlyMap<string, Float32Array>): Promise<ModelRunner> => {
    const input = singleInput(s.inputs, file);
    const replace = toManifestLayout(model, s.layers, weights);
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
    const loaded = await loadInTfjs(rt, s.kind, memoryHandler(modelArtifacts(model)), file);
    try {
      for (const [k, v] of await fetchShapes(rt, loaded, s.kind === 'layers' ? s.keras.plan : null, feeds, wanted, file)) out.set(k, v);
    } finally {
      loaded.model.dispose();
    }
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
    return { loaded: await loadInTfjs(rt, s.kind, fileHandler(outPath), outPath), backend: rt.description };
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
      const artifacts = modelArtifacts(model, s.kind === 'graph' ? { extraNodes: s.graph.extraNodes } : {});
      const loaded = await loadInTfjs(rt, s.kind, memoryHandler(artifacts), file);
      try {
        return await fetchShapes(rt, loaded, s.kind === 'layers' ? s.keras.plan : null, feeds, wanted, file);
      } finally {
        loaded.model.dispose();
      }
    },
    createRunner: (weights) => runnerFor(weights),
    defaultOutputPath: () => tfjsKprunedPath(file),
    async write(weights, outPath, layouts = new Map()) {
      // Loading the input in TF.js first: a model TF.js cannot load (a layer class it does not
      // know) could not be verified after writing, so nothing is written for it.
      const rt = await tfjsRuntime();
      const probe = await loadInTfjs(rt, s.kind, memoryHandler(modelArtifacts(model)), file);
      probe.model.dispose();
      const plan = await layoutPlan(weights, layouts);
      const result = await writeTfjsModel(model, toManifestLayout(model, s.layers, weights), outPath, options.write, plan.rewrite);
      return { files: result.files, layouts: plan.outcomes };
    },
    async chooseLayouts(weights, masks, inputShapes, onLayer) {
      const rt = await tfjsRuntime();
      const requests = new Map([...masks].map(([id, mask]) => [id, { layout: 'decomposed' as const, mask }]));
      const written = new Map((await layoutPlan(weights, requests)).outcomes.map((o) => [o.layer, o]));
      return chooseTfjsLayouts({
        rt, model, scan: s.kind === 'graph' ? { kind: 'graph', graph: s.graph } : { kind: 'layers' }, layers: s.layers,
        kernels: toManifestLayout(model, s.layers, new Map([...weights].filter(([id]) => masks.has(id)))),
        masks, useDims: await useInputDims(inputShapes), written, channelsFirst, onLayer,
      });
    },
    async compareLatency(outPath, inputShapes, opts): Promise<LatencyComparison> {
      const rt = await tfjsRuntime();
      const a = await loadInTfjs(rt, s.kind, memoryHandler(modelArtifacts(model)), file);
      let b: LoadedTfjs | undefined;
      const runs = opts.runs ?? 20;
      const warmup = 2;
      try {
        b = await loadInTfjs(rt, s.kind, fileHandler(outPath), outPath);
        const feeds = feedsOf(inputShapes);
        const times: number[][] = [[], []];
        const both = [a, b];
        for (let i = 0; i < warmup; i++) for (const m of both) await runOnce(rt, m, feeds);
        const start = performance.now();
        const cap = opts.maxMs ?? DEFAULT_LATENCY_CAP_MS;
        for (let i = 0; i < runs; i++) {
          if (i >= MIN_LATENCY_RUNS && performance.now() - start > cap) break;
          for (const k of i % 2 === 0 ? [0, 1] : [1, 0]) {
            const t0 = performance.now();
            await runOnce(rt, both[k], feeds);
            times[k].push(performance.now() - t0);
          }
        }
        const sa = stats(times[0]);
        const sb = stats(times[1]);
        return {
          runtime: rt.description,
          threads: 'default',
          batch: feeds[0]?.dims[0] ?? 1,
          runs: times[0].length,
          warmup,
          inputShapes: Object.fromEntries(inputShapes),
          before: sa,
          after: sb,
          ratio: sb.medianMs / sa.medianMs,
        };
      } finally {
        a.model.dispose();
        b?.model.dispose();
      }
    },
    async verifyWritten(outPath, inputShapes) {
      const { loaded, backend } = await loadWritten(outPath);
      try {
        if (!inputShapes) return `loaded in ${backend} (not run: the input shape is not known)`;
        await runOnce(await tfjsRuntime(), loaded, feedsOf(inputShapes));
        return `loaded and ran once in ${backend} at input shape ${[...inputShapes.values()].map((d) => `[${d.join(',')}]`).join(' ')}`;
      } catch (e) {
        if (e instanceof KpruneError) throw e;
        throw new KpruneError('runtime', `the written model does not run in TF.js: ${e instanceof Error ? e.message.split('\n')[0] : String(e)}`, { file: outPath, cause: e });
      } finally {
        loaded.model.dispose();
      }
    },
  };
}
