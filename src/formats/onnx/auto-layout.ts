/**
 * `--layout auto` for ONNX: for each reshaped layer, time the masked convolution and its
 * decomposition in onnxruntime, each alone in a one-layer model at the layer's real input size and
 * the chosen batch, and keep the faster. Whether a rewrite pays depends on channels, size and batch
 * (field notes: 0.47x to 1.41x of dense for the same shape), so it is measured, never assumed.
 */
import { Conv3x3Layer } from '../../core/conv.js';
import { Layout } from '../../core/layout/layout.js';
import { Mask } from '../../core/lattice.js';
import { createSession, outputShapes } from '../../runtime/onnx-runtime.js';
import { latencyFeeds, stats, timeSessions } from '../../runtime/latency.js';
import { decomposeConv } from './decompose.js';
import { onnxInputs } from './inventory.js';
import { probeModelBytes } from './probe.js';
import { NodeProto, TensorProto, onnx } from './proto.js';
import { OnnxModel } from './read.js';
import { floatsToBytes } from './tensor.js';

export interface LayoutTiming {
  layer: string;
  choice: Layout;
  /** Median ms of the layer (all its uses) in each form. */
  maskedMs: number;
  decomposedMs: number | null;
  note?: string;
}

function oneLayerModel(nodes: NodeProto[], initializers: TensorProto[], input: string, dims: number[], output: string, opset: number): Uint8Array {
  return onnx.ModelProto.encode({
    irVersion: 8,
    opsetImport: [{ domain: '', version: Math.max(opset, 11) }],
    graph: {
      name: 'kprune_layer_timing',
      node: nodes,
      initializer: initializers,
      input: [{ name: input, type: { tensorType: { elemType: 1, shape: { dim: dims.map((d) => ({ dimValue: d })) } } } }],
      output: [{ name: output, type: { tensorType: { elemType: 1 } } }],
    },
  }).finish();
}

export async function chooseLayouts(
  model: OnnxModel,
  layers: Conv3x3Layer[],
  weights: Map<string, Float32Array>,
  masks: Map<string, Mask>,
  inputShapes: Map<string, number[]>,
  options: { runs?: number; onLayer?: (done: number, total: number, name: string) => void } = {},
): Promise<LayoutTiming[]> {
  const runs = options.runs ?? 15;
  const nodes = model.graph.node ?? [];
  const byName = new Map(nodes.map((n, i) => [n.name || `${n.opType}#${i}`, n]));
  const opset = model.opsets.find((o) => o.domain === '' || o.domain === 'ai.onnx')?.version ?? 11;
  // Input sizes of every use, from one run of the model.
  const graphInputs = new Map(onnxInputs(model).map((i) => [i.name, inputShapes.get(i.name)!]));
  const wanted = [...new Set(layers.flatMap((l) => l.uses.map((u) => u.input)))].filter((n) => !graphInputs.has(n));
  const probe = await createSession(probeModelBytes(model, new Map(), wanted), { threads: 1 }, model.path);
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
      const maskedBytes = oneLayerModel([node], [weightInit, ...biasInit], use.input, dims, use.output, opset);
      const d = decomposeConv(node, use, layer, w, mask, 1, Math.max(opset, 11), new Set());
      if (typeof d === 'string') {
        note = d;
        decomposedMs = null;
      }
      const sessions = [await createSession(maskedBytes, {})];
      if (typeof d !== 'string') sessions.push(await createSession(oneLayerModel(d.nodes, [...d.initializers, ...biasInit], use.input, dims, use.output, opset), {}));
      try {
        const times = await timeSessions(sessions, latencyFeeds([{ name: use.input, dims, type: 'float32' }], new Map([[use.input, dims]])), runs, 2);
        maskedMs += stats(times[0]).medianMs;
        if (decomposedMs !== null && times[1]) decomposedMs += stats(times[1]).medianMs;
      } finally {
        for (const s of sessions) await s.release();
      }
    }
    const choice: Layout = decomposedMs !== null && decomposedMs < maskedMs ? 'decomposed' : 'masked';
    result.push({ layer: layer.id, choice, maskedMs, decomposedMs, ...(note ? { note } : {}) });
  }
  options.onLayer?.(layers.length, layers.length, '');
  return result;
}
