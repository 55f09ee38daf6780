/**
 * Layer-wise recovery of an ONNX model in onnxruntime, segment by segment: the ONNX side cuts the
 * graph and builds a model per segment (src/formats/onnx/segments.ts), onnxruntime runs it
 * (src/runtime/ort/segment-session.ts), the core drives it (src/core/recover/propagation.ts).
 */
import type { Conv3x3Layer } from '../../model/conv.js';
import { CachedValue, LayerwiseSource, Segment, SegmentExecutor, SegmentedSource, segmentObstacle } from '../../core/recover/propagation.js';
import type { LayerwiseOptions } from '../../core/recover/recoverable.js';
import { halfToFloat } from '../../util/half.js';
import type { OnnxModel } from '../../formats/onnx/read.js';
import { layerCuts, onnxDataflow, segmentModelBytes } from '../../formats/onnx/segments.js';
import { SpillStore } from '../../core/recover/spill-store.js';
import { SegmentSession, openSegmentSession } from '../../runtime/ort/segment-session.js';
import type { Activation } from '../../model/runner.js';
import { KpruneError } from '../../errors.js';

function toActivation(v: CachedValue): Activation {
  switch (v.type) {
    case 'float32': return { dims: v.dims, data: v.data as Float32Array };
    case 'float64': return { dims: v.dims, data: Float32Array.from(v.data as Float64Array) };
    case 'float16': return { dims: v.dims, data: Float32Array.from(v.data as Uint16Array, halfToFloat) };
    default: throw new KpruneError('unsupported', `a convolution input of type ${v.type} cannot be reconstructed`);
  }
}

/** The segment source for `layers` (topological order), or why the model cannot have one. */
export async function openOnnxLayerwise(model: OnnxModel, layers: Conv3x3Layer[], options: LayerwiseOptions): Promise<LayerwiseSource | { obstacle: string }> {
  const flow = onnxDataflow(model);
  const cuts = layerCuts(flow, layers);
  const obstacle = flow.obstacle ?? segmentObstacle(layers, cuts);
  if (obstacle) return { obstacle };
  let open: { segment: Segment; session: SegmentSession } | null = null;
  const executor: SegmentExecutor = {
    async run(segment, weights, feeds) {
      if (open?.segment !== segment) {
        await open?.session.release();
        open = null;
        const types = new Map([...feeds].map(([name, v]) => [name, v.type]));
        open = { segment, session: await openSegmentSession(segmentModelBytes(model, flow, segment, weights, types), model.path) };
      }
      return open.session.run(feeds, segment.writes);
    },
    activation: toActivation,
    async done(segment) {
      if (open?.segment === segment) {
        await open.session.release();
        open = null;
      }
    },
    async release() {
      await open?.session.release();
      open = null;
    },
  };
  const store = new SpillStore(options.memoryBudget);
  try {
    return await SegmentedSource.open(layers, flow.graph, cuts as number[], executor, store, options);
  } catch (e) {
    await store.release();
    throw e;
  }
}
