/**
 * Layer-wise recovery of a TF.js LayersModel, segment by segment: the flattened Keras plan
 * (src/formats/tfjs/keras-plan.ts) is the dataflow graph, layers-exec.ts runs a range of its ops
 * in TF.js on cached values, and the core drives it (src/core/recover/propagation.ts). So a full
 * recovery costs two forward passes plus the solves, as for ONNX, instead of two whole-model runs
 * per layer.
 *
 * A GraphModel likewise: its GraphDef, ordered (src/formats/tfjs/graph-dataflow.ts), is the
 * graph, and TF.js's GraphModel executor runs a segment when fed the cached values by tensor name
 * and the segment's kernels in place of their Const nodes (as fine-tuning feeds them).
 */
import type * as TF from '../../runtime/tfjs/tf.js';
import type { Conv3x3Layer } from '../../model/conv.js';
import type { ChannelLayout } from '../../model/inputs.js';
import type { Activation } from '../../model/runner.js';
import { CachedValue, DataflowGraph, LayerwiseSource, Segment, SegmentExecutor, SegmentedSource, segmentObstacle } from '../../core/recover/propagation.js';
import type { LayerwiseOptions } from '../../core/recover/recoverable.js';
import { SpillStore } from '../../core/recover/spill-store.js';
import { KerasPlan, opOutputs } from '../../formats/tfjs/keras-plan.js';
import { Tf, tfjsRuntime } from '../../runtime/tfjs/backend.js';
import { KpruneError } from '../../errors.js';
import { graphDataflow } from '../../formats/tfjs/graph-dataflow.js';
import type { GraphNodeJson } from '../../formats/tfjs/graph.js';
import { executePlan } from './layers-exec.js';
import { memoryHandler } from './io.js';
import { executeGraph, loadInTfjs } from './runner.js';

export interface KerasLayerwiseSpec {
  artifacts: TF.io.ModelArtifacts;
  plan: KerasPlan;
  kernel: KernelOf;
  file: string;
}

/** A layer's weights (core layout [out][in][9]) as its kernel: TF layout, and the kernel's shape. */
type KernelOf = (id: string, values: Float32Array) => { values: Float32Array; shape: number[] };

/** The plan as the segment planner sees it: ops in execution order, fed by the one model input. */
export function kerasDataflow(plan: KerasPlan): DataflowGraph {
  return { input: plan.inputs[0].tensor, nodes: plan.ops.map((op) => ({ inputs: op.inputs, outputs: opOutputs(op) })) };
}

/** The op of each layer's convolution (undefined where no op computes it). */
export function kerasCuts(plan: KerasPlan, layers: Conv3x3Layer[]): (number | undefined)[] {
  const byKernel = new Map<string, number>();
  plan.ops.forEach((op, i) => {
    const id = op.conv?.kernelId ?? op.dense?.kernelId;
    if (id !== undefined) byKernel.set(id, i);
  });
  return layers.map((l) => byKernel.get(l.id));
}

/** A value in TF.js's layout as the core's float32 NCHW. */
export function toNchw(v: CachedValue, layout: ChannelLayout | undefined): Activation {
  if (v.type !== 'float32') throw new KpruneError('unsupported', `a convolution input of type ${v.type} cannot be reconstructed`);
  const data = v.data as Float32Array;
  if (layout !== 'NHWC' || v.dims.length !== 4) return { dims: v.dims, data };
  const [n, h, w, c] = v.dims;
  const out = new Float32Array(data.length);
  const plane = h * w;
  let src = 0;
  for (let b = 0; b < n; b++) {
    const base = b * c * plane;
    for (let p = 0; p < plane; p++) {
      for (let ch = 0; ch < c; ch++) out[base + ch * plane + p] = data[src++];
    }
  }
  return { dims: [n, c, h, w], data: out };
}

async function cached(t: TF.Tensor): Promise<CachedValue> {
  const dims = [...t.shape];
  switch (t.dtype) {
    case 'float32': return { type: 'float32', dims, data: (await t.data()) as Float32Array };
    case 'int32': return { type: 'int32', dims, data: (await t.data()) as Int32Array };
    case 'bool': return { type: 'bool', dims, data: (await t.data()) as Uint8Array };
    default: throw new KpruneError('unsupported', `a value of type ${t.dtype} cannot be cached between layers`);
  }
}

function dtypeOf(v: CachedValue): 'float32' | 'int32' | 'bool' {
  if (v.type === 'float32' || v.type === 'int32' || v.type === 'bool') return v.type;
  throw new KpruneError('unsupported', `a cached value of type ${v.type} cannot be fed to TF.js`);
}

/** How one kind of TF.js model runs a segment: fed values by name, kernels by layer id. */
interface SegmentRunner {
  run(segment: Segment, inputs: Map<string, TF.Tensor>, kernels: Map<string, TF.Tensor>): Promise<Map<string, TF.Tensor>>;
  layouts: Map<string, ChannelLayout>;
  dispose(): void;
}

/**
 * The segment source over a loaded TF.js model: cached values become tensors for each chunk; the
 * kernels of the segment being run are made once for all its chunks (the weights do not change
 * while one layer's segment runs over the calibration set).
 */
async function openSegments(
  tf: Tf, layers: Conv3x3Layer[], graph: DataflowGraph, cuts: number[], spec: { kernel: KernelOf; file: string }, runner: SegmentRunner, options: LayerwiseOptions,
): Promise<LayerwiseSource> {
  let open: { segment: Segment; kernels: Map<string, TF.Tensor> } | null = null;
  const close = () => {
    open?.kernels.forEach((k) => k.dispose());
    open = null;
  };
  const executor: SegmentExecutor = {
    async run(segment, weights, feeds) {
      if (open?.segment !== segment) {
        close();
        const kernels = new Map<string, TF.Tensor>();
        layers.forEach((l, k) => {
          const values = weights.get(l.id);
          if (cuts[k] < segment.from || cuts[k] >= segment.to || !values) return;
          const kernel = spec.kernel(l.id, values);
          kernels.set(l.id, tf.tensor(kernel.values, kernel.shape, 'float32'));
        });
        open = { segment, kernels };
      }
      const inputs = new Map<string, TF.Tensor>();
      let out = new Map<string, TF.Tensor>();
      try {
        for (const [name, v] of feeds) inputs.set(name, tf.tensor(v.data as Float32Array | Int32Array | Uint8Array, v.dims, dtypeOf(v)));
        try {
          out = await runner.run(segment, inputs, open.kernels);
        } catch (e) {
          throw new KpruneError('runtime', `TF.js failed to run the model: ${e instanceof Error ? e.message.split('\n')[0] : String(e)}`, { file: spec.file, cause: e });
        }
        const result = new Map<string, CachedValue>();
        for (const [name, t] of out) result.set(name, await cached(t));
        return result;
      } finally {
        out.forEach((t) => t.dispose());
        inputs.forEach((t) => t.dispose());
      }
    },
    activation: (v, name) => toNchw(v, runner.layouts.get(name)),
    async done(segment) {
      if (open?.segment === segment) close();
    },
    async release() {
      close();
      runner.dispose();
    },
  };
  const store = new SpillStore(options.memoryBudget);
  try {
    return await SegmentedSource.open(layers, graph, cuts, executor, store, options);
  } catch (e) {
    await store.release();
    await executor.release();
    throw e;
  }
}

/** The segment source of a LayersModel's `layers` (topological order), or why it cannot have one. */
export async function openKerasLayerwise(spec: KerasLayerwiseSpec, layers: Conv3x3Layer[], options: LayerwiseOptions): Promise<LayerwiseSource | { obstacle: string }> {
  const { plan, file } = spec;
  if (plan.inputs.length !== 1) return { obstacle: `the model has ${plan.inputs.length} inputs` };
  const cuts = kerasCuts(plan, layers);
  const obstacle = segmentObstacle(layers, cuts);
  if (obstacle) return { obstacle };
  const rt = await tfjsRuntime();
  const loaded = await loadInTfjs(rt, 'layers', memoryHandler(spec.artifacts), file);
  if (loaded.kind !== 'layers') throw new Error('unreachable');
  const model = loaded.model;
  return openSegments(rt.tf, layers, kerasDataflow(plan), cuts as number[], spec, {
    run: async (segment, inputs, kernels) => executePlan(rt.tf, model, plan, inputs, segment.writes, kernels, undefined, segment),
    layouts: plan.layouts,
    dispose: () => model.dispose(),
  }, options);
}

export interface GraphLayerwiseSpec {
  artifacts: TF.io.ModelArtifacts;
  nodes: GraphNodeJson[];
  layouts: Map<string, ChannelLayout>;
  kernel: KernelOf;
  file: string;
}

/** The segment source of a GraphModel's `layers` (topological order), or why it cannot have one. */
export async function openGraphLayerwise(spec: GraphLayerwiseSpec, layers: Conv3x3Layer[], options: LayerwiseOptions): Promise<LayerwiseSource | { obstacle: string }> {
  const flow = graphDataflow(spec.nodes, layers);
  if ('obstacle' in flow) return flow;
  const obstacle = segmentObstacle(layers, flow.cuts);
  if (obstacle) return { obstacle };
  const rt = await tfjsRuntime();
  const loaded = await loadInTfjs(rt, 'graph', memoryHandler(spec.artifacts), spec.file);
  if (loaded.kind !== 'graph') throw new Error('unreachable');
  const model = loaded.model;
  return openSegments(rt.tf, layers, flow.graph, flow.cuts as number[], spec, {
    async run(segment, inputs, kernels) {
      const feeds: TF.NamedTensorMap = {};
      for (const [name, t] of inputs) feeds[name] = t;
      for (const [id, k] of kernels) feeds[id] = k;
      const out = await executeGraph(model, feeds, segment.writes);
      return new Map(segment.writes.map((name, i) => [name, out[i]]));
    },
    layouts: spec.layouts,
    dispose: () => model.dispose(),
  }, options);
}
