/**
 * `--layout auto` for ONNX: for each reshaped layer, time the masked convolution and its
 * decomposition in onnxruntime, each alone in a small model at the layer's real input size and
 * the chosen batch, and keep the faster (decomposed on a near tie: it stores fewer weights). Whether a rewrite pays depends on channels, size and batch
 * (field notes: 0.47x to 1.41x of dense for the same shape), so it is measured, never assumed.
 */
import { Conv3x3Layer } from '../../model/conv.js';
import { Mask } from '../../model/conv.js';
import { Layout, LayoutTiming } from '../../model/layout.js';
import { createSession, outputShapes } from '../../runtime/ort/session.js';
import { latencyFeeds, timeSessions } from '../../runtime/ort/latency.js';
import { stats } from '../../util/timing.js';
import { decomposeConv } from '../../formats/onnx/decompose.js';
import { onnxInputs } from '../../formats/onnx/inventory.js';
import { openProbeSession } from './probe.js';
import { NodeProto, TensorProto, onnx } from '../../formats/onnx/proto.js';
import { OnnxModel } from '../../formats/onnx/read.js';
import { floatsToBytes } from '../../formats/onnx/tensor.js';

/**
 * A model that computes the layer `copies` times side by side on the same input (summed), so that
 * the fixed cost of one session.run, which dominates a single small convolution, is amortised:
 * the timing then says which form of the layer computes faster. Copies share the weights.
 */
function layerTimingModel(nodes: NodeProto[], initializers: TensorProto[], input: string, dims: number[], output: string, opset: number, copies: number): Uint8Array {
  const rename = (v: string, k: number) => (v === input || initializers.some((t) => t.name === v) ? v : `${v}#${k}`);
  const all: NodeProto[] = [];
  for (let k = 0; k < copies; k++) {
    for (const n of nodes) all.push({ ...n, name: `${n.name}#${k}`, input: (n.input ?? []).map((v) => rename(v, k)), output: (n.output ?? []).map((v) => rename(v, k)) });
  }
  const outs = Array.from({ length: copies }, (_, k) => `${output}#${k}`);
  all.push({ name: 'kprune_sum', opType: 'Sum', input: outs, output: ['kprune_out'] });
  return onnx.ModelProto.encode({
    irVersion: 8,
    opsetImport: [{ domain: '', version: Math.max(opset, 11) }],
    graph: {
      name: 'kprune_layer_timing',
      node: all,
      initializer: initializers,
      input: [{ name: input, type: { tensorType: { elemType: 1, shape: { dim: dims.map((d) => ({ dimValue: d })) } } } }],
      output: [{ name: 'kprune_out', type: { tensorType: { elemType: 1 } } }],
    },
  }).finish();
}

/** Copies per timing model: enough work (about 20 M multiply-accumulates) to swamp the call overhead. */
function copiesFor(layer: Conv3x3Layer, inputDims: number[], stride: [number, number]): number {
  const [n, , h, w] = inputDims;
  const macs = n * layer.outChannels * layer.inChannelsPerGroup * 9 * Math.ceil(h / stride[0]) * Math.ceil(w / stride[1]);
  return Math.max(1, Math.min(32, Math.round(20e6 / Math.max(macs, 1))));
}

/** Decomposed wins unless masked is clearly faster (by 10%): it stores fewer weights, and single-layer timings on a busy machine are noisy. */
const DECOMPOSED_MARGIN = 1.1;

export async function chooseLayouts(
  model: OnnxModel,
  layers: Conv3x3Layer[],
  weights: ReadonlyMap<string, Float32Array>,
  masks: Map<string, Mask>,
  inputShapes: Map<string, number[]>,
  options: { runs?: number; onLayer?: (done: number, total: number, name: string) => void } = {},
): Promise<LayoutTiming[]> {
  const runs = options.runs ?? 25;
  const nodes = model.graph.node ?? [];
  const byName = new Map(nodes.map((n, i) => [n.name || `${n.opType}#${i}`, n]));
  const opset = model.opsets.find((o) => o.domain === '' || o.domain === 'ai.onnx')?.version ?? 11;
  // Input sizes of every use, from one run of the model.
  const graphInputs = new Map(onnxInputs(model).map((i) => [i.name, inputShapes.get(i.name)!]));
  const wanted = [...new Set(layers.flatMap((l) => l.uses.map((u) => u.input)))].filter((n) => !graphInputs.has(n));
  const probe = await openProbeSession(model, new Map(), wanted, { threads: 1 });
  let shapes: Map<string, number[]>;
  try {
    shapes = await outputShapes(probe, onnxInputs(model), inputShapes, wanted);
  } finally {
    await probe.release();
  }
  for (const [k, v] of graphInputs) shapes.set(k, v);

  const result: LayoutTiming[] = [];
  for (let li = 0; li < layers.length; li++) {
    const layer = layers[li];
    options.onLayer?.(li, layers.length, layer.name);
    const w = weights.get(layer.id)!;
    const mask = masks.get(layer.id)!;
    let maskedMs = 0;
    let decomposedMs: number | null = 0;
    let note: string | undefined;
    for (const use of layer.uses) {
      const node = byName.get(use.node)!;
      const dims = shapes.get(use.input)!;
      const bias = node.input?.[2];
      const biasInit: TensorProto[] = bias && use.biasValues ? [{ name: bias, dims: [use.biasValues.length], dataType: 1, rawData: floatsToBytes(use.biasValues, 1) }] : [];
      const weightInit: TensorProto = { name: layer.id, dims: [layer.outChannels, layer.inChannelsPerGroup, 3, 3], dataType: 1, rawData: floatsToBytes(w, 1) };
      const copies = copiesFor(layer, dims, use.strides);
      const maskedBytes = layerTimingModel([node], [weightInit, ...biasInit], use.input, dims, use.output, opset, copies);
      const d = decomposeConv(node, use, layer, w, mask, 1, Math.max(opset, 11), new Set());
      if (typeof d === 'string') {
        note = d;
        decomposedMs = null;
      }
      const sessions = [await createSession(maskedBytes, {})];
      if (typeof d !== 'string') sessions.push(await createSession(layerTimingModel(d.nodes, [...d.initializers, ...biasInit], use.input, dims, use.output, opset, copies), {}));
      try {
        const times = await timeSessions(sessions, latencyFeeds([{ name: use.input, dims, type: 'float32' }], new Map([[use.input, dims]])), runs, 2);
        maskedMs += stats(times[0]).medianMs / copies;
        if (decomposedMs !== null && times[1]) decomposedMs += stats(times[1]).medianMs / copies;
      } finally {
        for (const s of sessions) await s.release();
      }
    }
    const choice: Layout = decomposedMs !== null && decomposedMs <= maskedMs * DECOMPOSED_MARGIN ? 'decomposed' : 'masked';
    result.push({ layer: layer.id, choice, maskedMs, decomposedMs, ...(note ? { note } : {}) });
  }
  options.onLayer?.(layers.length, layers.length, '');
  return result;
}
