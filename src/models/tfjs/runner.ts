/**
 * ModelRunners for TF.js models: a LayersModel run layer by layer (layers-exec.ts) with
 * convolution kernels swapped in as tensors, a GraphModel run by executeAsync with its weights baked
 * into the loaded copy. Values that convolutions read or produce come back NCHW (the core's
 * convention); the model's own inputs and outputs in the model's layout.
 */
import type * as TF from '../../runtime/tfjs/tf.js';
import { KpruneError, reasonOf } from '../../errors.js';
import type { ChannelLayout, InputSpec } from '../../model/inputs.js';
import type { Activation, ModelRunner } from '../../model/runner.js';
import { TfjsRuntime, tfjsRuntime } from '../../runtime/tfjs/backend.js';
import type { KerasPlan } from '../../formats/tfjs/keras-plan.js';
import { executePlan } from './layers-exec.js';
import { memoryHandler, modelArtifacts } from './io.js';
import { TfjsModel, weightFloats } from '../../formats/tfjs/read.js';

export type LoadedTfjs =
  | { kind: 'layers'; model: TF.LayersModel }
  | { kind: 'graph'; model: TF.GraphModel };

/** The first line of what failed; a KpruneError about `file` without the file (the new error names it). */
function why(e: unknown, file?: string): string {
  return reasonOf(e, file).split('\n')[0];
}

/** Loads artifacts in TF.js; a failure is a KpruneError naming what TF.js said. */
export async function loadInTfjs(rt: TfjsRuntime, kind: LoadedTfjs['kind'], handler: TF.io.IOHandler, file: string): Promise<LoadedTfjs> {
  try {
    return kind === 'layers'
      ? { kind, model: await rt.tf.loadLayersModel(handler) }
      : { kind, model: await rt.tf.loadGraphModel(handler) };
  } catch (e) {
    if (e instanceof KpruneError) throw e;
    throw new KpruneError('unsupported', `TF.js cannot load the model: ${why(e, file)}`, {
      file, cause: e, suggestion: /Unknown layer/.test(why(e)) ? 'custom layer classes must be registered with tf.serialization.registerClass in the process that loads the model' : undefined,
    });
  }
}

/**
 * A TF.js model from kprune's reader, with as little of it in memory at once as TF.js allows. A
 * LayersModel whose weights are all float is built from its topology alone, then given its weights
 * one tensor at a time, each read from the shards and dropped once TF.js holds it; TF.js's own
 * loading would hold the whole weight buffer plus a decoded copy of every tensor. Anything else
 * (a GraphModel, integer weights) loads through the whole buffer.
 */
export async function loadTfjsModel(rt: TfjsRuntime, kind: LoadedTfjs['kind'], model: TfjsModel, file: string): Promise<LoadedTfjs> {
  if (kind !== 'layers' || model.weights.some((w) => w.dtype !== 'float32')) {
    return loadInTfjs(rt, kind, memoryHandler(modelArtifacts(model)), file);
  }
  const loaded = await loadInTfjs(rt, 'layers', memoryHandler(modelArtifacts(model, { withoutWeights: true })), file);
  if (loaded.kind !== 'layers') throw new Error('unreachable');
  const variables = loaded.model.weights.map((w) => w.originalName);
  const names = new Set(variables);
  if (names.size !== variables.length || variables.length !== model.weights.length || model.weights.some((w) => !names.has(w.name))) {
    // Names TF.js maps in its own ways (older Keras cell names, shared variables): its own loading.
    loaded.model.dispose();
    return loadInTfjs(rt, kind, memoryHandler(modelArtifacts(model)), file);
  }
  const { tf } = rt;
  try {
    for (const w of model.weights) {
      const t = tf.tensor(weightFloats(model, w)!, w.shape, 'float32');
      try {
        loaded.model.loadWeights({ [w.name]: t }, false);
      } finally {
        t.dispose();
      }
    }
  } catch (e) {
    loaded.model.dispose();
    if (e instanceof KpruneError) throw e;
    throw new KpruneError('unsupported', `TF.js cannot load the model's weights: ${why(e, file)}`, { file, cause: e });
  }
  return loaded;
}

/**
 * GraphModel.execute, or executeAsync when the graph has control flow or dynamic shapes (execute
 * refuses those; executeAsync on a graph without them prints a console warning, so it is not the default).
 */
export async function executeGraph(model: TF.GraphModel, feeds: TF.NamedTensorMap, outputs?: string[]): Promise<TF.Tensor[]> {
  let r: TF.Tensor | TF.Tensor[];
  try {
    r = model.execute(feeds, outputs);
  } catch (e) {
    if (!/executeAsync/.test(why(e))) throw e;
    r = await model.executeAsync(feeds, outputs);
  }
  return Array.isArray(r) ? r : [r];
}

export interface TfjsFeed {
  /** The input's name (a GraphModel is fed by it). */
  name: string;
  /** Its tensor name in a LayersModel plan. */
  tensor: string;
  dims: number[];
  dtype: 'float32' | 'int32';
}

/** The shapes of some values in one run on zeros (a LayersModel through its plan: any value, nested ones too). */
export async function fetchShapes(rt: TfjsRuntime, loaded: LoadedTfjs, plan: KerasPlan | null, inputs: TfjsFeed[], wanted: string[], file: string): Promise<Map<string, number[]>> {
  const { tf } = rt;
  const feeds = inputs.map((i) => tf.zeros(i.dims, i.dtype));
  let results: TF.Tensor[] = [];
  try {
    if (loaded.kind === 'layers') {
      const got = executePlan(tf, loaded.model, plan!, new Map(inputs.map((i, k) => [i.tensor, feeds[k]])), wanted, new Map());
      results = wanted.map((n) => got.get(n)!);
    } else {
      results = await executeGraph(loaded.model, Object.fromEntries(inputs.map((i, k) => [i.name, feeds[k]])), wanted);
    }
    return new Map(wanted.map((n, k) => [n, [...results[k].shape]]));
  } catch (e) {
    if (e instanceof KpruneError) throw e;
    throw new KpruneError('runtime', `TF.js failed to run the model: ${why(e, file)}`, { file, cause: e });
  } finally {
    tf.dispose([...feeds, ...results.filter((r) => !feeds.includes(r))]);
  }
}

/** Runs a loaded model once on the given input (predict / execute) and disposes everything. */
export async function runOnce(rt: TfjsRuntime, loaded: LoadedTfjs, inputs: TfjsFeed[]): Promise<number[][]> {
  const { tf } = rt;
  const feeds = inputs.map((i) => tf.zeros(i.dims, i.dtype));
  try {
    const out = loaded.kind === 'layers'
      ? loaded.model.predict(feeds.length === 1 ? feeds[0] : feeds)
      : await executeGraph(loaded.model, Object.fromEntries(inputs.map((i, k) => [i.name, feeds[k]])));
    const list = Array.isArray(out) ? out : [out as TF.Tensor];
    const shapes: number[][] = [];
    for (const t of list) {
      const v = await t.data();
      shapes.push(t.shape);
      t.dispose();
      if (t.dtype === 'float32' && !(v as Float32Array).every(Number.isFinite)) throw new Error('an output is not finite');
    }
    return shapes;
  } finally {
    feeds.forEach((f) => f.dispose());
  }
}

async function toActivation(tf: TfjsRuntime['tf'], t: TF.Tensor, layout: ChannelLayout | undefined): Promise<Activation> {
  const nchw = layout === 'NHWC' && t.rank === 4 ? tf.transpose(t, [0, 3, 1, 2]) : t;
  try {
    const data = nchw.dtype === 'float32' ? (await nchw.data()) as Float32Array : Float32Array.from(await nchw.data() as ArrayLike<number>);
    return { dims: [...nchw.shape], data };
  } finally {
    if (nchw !== t) nchw.dispose();
  }
}

function maxBatch(input: InputSpec): number {
  const b = input.dims[0];
  return typeof b === 'number' && b > 0 ? b : Number.MAX_SAFE_INTEGER;
}

export interface LayersRunnerSpec {
  artifacts: TF.io.ModelArtifacts;
  plan: KerasPlan;
  input: InputSpec;
  /** Replacement kernels by manifest name: values in the kernel's TF layout, and its shape. */
  kernels: Map<string, { values: Float32Array; shape: number[] }>;
  file: string;
}

export async function createLayersRunner(spec: LayersRunnerSpec): Promise<ModelRunner> {
  const rt = await tfjsRuntime();
  const { tf } = rt;
  const loaded = await loadInTfjs(rt, 'layers', memoryHandler(spec.artifacts), spec.file);
  if (loaded.kind !== 'layers') throw new Error('unreachable');
  const model = loaded.model;
  const kernels = new Map([...spec.kernels].map(([id, k]) => [id, tf.tensor(k.values, k.shape, 'float32')]));
  const planInput = spec.plan.inputs.find((i) => i.name === spec.input.name)!;
  return {
    runtime: rt.description,
    inputName: spec.input.name,
    outputNames: spec.plan.outputs,
    maxBatch: maxBatch(spec.input),
    async run(x, dims, fetch = spec.plan.outputs) {
      const feed = tf.tensor(x, dims, 'float32');
      const wanted = fetch.filter((n) => n !== spec.input.name);
      let values = new Map<string, TF.Tensor>();
      try {
        try {
          values = executePlan(tf, model, spec.plan, new Map([[planInput.tensor, feed]]), wanted, kernels);
        } catch (e) {
          throw new KpruneError('runtime', `TF.js failed to run the model: ${why(e, spec.file)}`, { file: spec.file, cause: e });
        }
        const out = new Map<string, Activation>();
        for (const name of fetch) {
          out.set(name, name === spec.input.name ? { dims, data: x } : await toActivation(tf, values.get(name)!, spec.plan.layouts.get(name)));
        }
        return out;
      } finally {
        for (const v of values.values()) if (v !== feed) v.dispose();
        feed.dispose();
      }
    },
    async release() {
      kernels.forEach((k) => k.dispose());
      model.dispose();
    },
  };
}

export interface GraphRunnerSpec {
  artifacts: TF.io.ModelArtifacts;
  input: InputSpec;
  layouts: Map<string, ChannelLayout>;
  file: string;
}

export async function createGraphRunner(spec: GraphRunnerSpec): Promise<ModelRunner> {
  const rt = await tfjsRuntime();
  const { tf } = rt;
  const loaded = await loadInTfjs(rt, 'graph', memoryHandler(spec.artifacts), spec.file);
  if (loaded.kind !== 'graph') throw new Error('unreachable');
  const model = loaded.model;
  const outputNames = [...model.outputNodes];
  const inputTensor = `${spec.input.name}:0`;
  return {
    runtime: rt.description,
    inputName: spec.input.name,
    outputNames,
    maxBatch: maxBatch(spec.input),
    async run(x, dims, fetch = outputNames) {
      const feed = tf.tensor(x, dims, 'float32');
      const wanted = [...new Set(fetch.filter((n) => n !== spec.input.name && n !== inputTensor))];
      let results: TF.Tensor[] = [];
      try {
        if (wanted.length > 0) {
          try {
            results = await executeGraph(model, { [spec.input.name]: feed }, wanted);
          } catch (e) {
            throw new KpruneError('runtime', `TF.js failed to run the model: ${why(e, spec.file)}`, { file: spec.file, cause: e });
          }
        }
        const byName = new Map(wanted.map((n, i) => [n, results[i]]));
        const out = new Map<string, Activation>();
        for (const name of fetch) {
          if (name === spec.input.name) out.set(name, { dims, data: x });
          else out.set(name, await toActivation(tf, name === inputTensor ? feed : byName.get(name)!, spec.layouts.get(name)));
        }
        return out;
      } finally {
        results.forEach((t) => t.dispose());
        feed.dispose();
      }
    },
    async release() {
      model.dispose();
    },
  };
}
