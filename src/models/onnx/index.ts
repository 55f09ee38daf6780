/** The ONNX format behind the LoadedModel contract. */
import path from 'node:path';
import { KpruneError } from '../../errors.js';
import { createSession, outputShapes as runShapes } from '../../runtime/ort/session.js';
import { LoadedModel } from '../../model/loaded-model.js';
import type { Recoverable } from '../../core/recover/recoverable.js';
import { DerivedMap } from '../../util/derived-map.js';
import { findConv3x3 } from '../../formats/onnx/convs.js';
import { onnxComputeNodes, onnxInputs, onnxInventory } from '../../formats/onnx/inventory.js';
import { OnnxModel, readOnnxModel } from '../../formats/onnx/read.js';
import { onnxModelFiles, writeOnnxModel } from '../../formats/onnx/write.js';
import { layoutEdits } from '../../formats/onnx/layouts.js';
import { chooseLayouts } from './auto-layout.js';
import { finetuneOnnx } from './finetune.js';
import { compareLatency } from '../../runtime/ort/latency.js';
import { openProbeSession } from './probe.js';
import { halfToFloat } from '../../util/half.js';
import type * as ort from 'onnxruntime-node';
import { ortApi } from '../../runtime/ort/ort.js';
import { Activation, ModelRunner } from '../../model/runner.js';
import { openOnnxLayerwise } from './layerwise.js';
import { findLinearLayers, soleReaderConstants } from '../../formats/onnx/linear.js';

export { readOnnxModel } from '../../formats/onnx/read.js';
export type { OnnxModel } from '../../formats/onnx/read.js';

export function isOnnxPath(file: string): boolean {
  return /\.onnx$/i.test(file);
}

export function kprunedPath(file: string): string {
  const dir = path.dirname(file);
  const base = path.basename(file).replace(/\.onnx$/i, '');
  return path.join(dir, `${base}.kpruned.onnx`);
}

/**
 * `lazy`: large inline tensors stay in the file (see formats/onnx/skeleton.ts); for checking and
 * measuring only, or (`stream`) for writing too, streaming them from the file as written.
 */
export async function loadOnnx(file: string, options: { lazy?: boolean; stream?: boolean; lazyMinBytes?: number } = {}): Promise<LoadedModel & Recoverable> {
  const model: OnnxModel = await readOnnxModel(file, options);
  const scan = findConv3x3(model);
  return {
    format: 'onnx',
    path: file,
    files: onnxModelFiles(model),
    formatInfo: {
      irVersion: Number(model.proto.irVersion?.toString() ?? 0),
      opsets: model.opsets.map((o) => `${o.domain || 'ai.onnx'}:${o.version}`).join(', '),
      producer: `${model.proto.producerName ?? ''} ${model.proto.producerVersion ?? ''}`.trim(),
    },
    inputs: onnxInputs(model),
    layers: scan.layers,
    skipped: scan.skipped,
    inventory: (overrides, known) => onnxInventory(model, overrides, known),
    async outputShapes(inputShapes) {
      const wanted = onnxComputeNodes(model).map((c) => c.output);
      const session = await openProbeSession(model, new Map(), wanted, { threads: 1 });
      try {
        return await runShapes(session, onnxInputs(model), inputShapes, wanted);
      } finally {
        await session.release();
      }
    },
    defaultOutputPath: () => kprunedPath(file),
    createRunner: (weights, exposed) => createOnnxRunner(model, weights, exposed, file),
    layerwiseSource: (layers, options) => openOnnxLayerwise(model, layers, options),
    linearLayers: (reshaped) => findLinearLayers(model, scan.layers, reshaped),
    adjustableBiases: () => soleReaderConstants(model),
    finetune: (start, masks, data, options) => finetuneOnnx(model, scan.layers, start, masks, data, options),
    chooseLayouts: (weights, masks, inputShapes, onLayer) => chooseLayouts(model, scan.layers, weights, masks, inputShapes, { onLayer }),
    compareLatency: (outPath, inputShapes, options) => compareLatency(file, outPath, onnxInputs(model), inputShapes, options),
    async verifyWritten(outPath, inputShapes) {
      const session = await createSession(outPath, { threads: 1 }, outPath);
      try {
        if (!inputShapes) return 'loaded in onnxruntime-node (not run: the input shape is not known)';
        await runShapes(session, onnxInputs(model), inputShapes, [...session.outputNames]);
        return `loaded and ran once in onnxruntime-node at input shape ${[...inputShapes.values()].map((d) => `[${d.join(',')}]`).join(' ')}`;
      } finally {
        await session.release();
      }
    },
    async write(weights, outPath, layouts = new Map(), tx) {
      if (!isOnnxPath(outPath)) {
        throw new KpruneError('usage', `output "${outPath}" should end in .onnx for an ONNX model`);
      }
      const { edits, outcomes, masked } = layoutEdits(model, scan.layers, weights, layouts);
      // A view, not a copy: the weights may be made on demand, one layer at a time, as written.
      // 3x3 layers written masked, and other weights recovery changed (compensating linear layers).
      const layerIds = new Set(scan.layers.map((l) => l.id));
      const values = DerivedMap.over([...weights.keys()].filter((id) => masked.has(id) || (!layerIds.has(id) && model.constants.has(id))), (id) => weights.get(id)!);
      const result = await writeOnnxModel(model, values, outPath, edits, tx);
      return { files: result.files, layouts: outcomes, copied: result.copied };
    },
  };
}

/** A runner over an in-memory copy of the model with the given weights (see probe.ts). */
async function createOnnxRunner(model: OnnxModel, weights: ReadonlyMap<string, Float32Array>, exposed: string[], file: string): Promise<ModelRunner> {
  const inputs = onnxInputs(model);
  if (inputs.length !== 1) {
    throw new KpruneError('unsupported', `running with data needs a model with one input; this one has ${inputs.length} (${inputs.map((i) => i.name).join(', ')})`, { file });
  }
  const input = inputs[0];
  const session = await openProbeSession(model, weights, exposed, {});
  const outputNames = (model.graph.output ?? []).map((o) => o.name ?? '');
  const batchDim = input.dims[0];
  return {
    runtime: `onnxruntime-node ${ortApi().env.versions.node ?? ''} (CPU)`,
    inputName: input.name,
    outputNames,
    maxBatch: typeof batchDim === 'number' && batchDim > 0 ? batchDim : Number.MAX_SAFE_INTEGER,
    async run(x, dims, fetch = outputNames) {
      const feeds: Record<string, ort.Tensor> = { [input.name]: new (ortApi().Tensor)('float32', x, dims) };
      const wanted = fetch.filter((f) => f !== input.name);
      let results: ort.InferenceSession.OnnxValueMapType = {};
      try {
        // Fetching only the data input (the first layer's input) needs no run at all.
        if (wanted.length > 0) results = await session.run(feeds, wanted);
      } catch (e) {
        const why = e instanceof Error ? e.message.split('\n')[0] : String(e);
        throw new KpruneError('runtime', `onnxruntime failed to run the model: ${why}`, { file, cause: e });
      }
      const out = new Map<string, Activation>();
      for (const name of fetch) {
        if (name === input.name) {
          out.set(name, { dims, data: x });
          continue;
        }
        const t = results[name] as ort.Tensor;
        out.set(name, { dims: [...t.dims], data: toFloat32(t) });
      }
      return out;
    },
    release: () => session.release(),
  };
}

function toFloat32(t: ort.Tensor): Float32Array {
  switch (t.type) {
    case 'float32': return t.data as Float32Array;
    case 'float64': return Float32Array.from(t.data as Float64Array);
    case 'float16': return Float32Array.from(t.data as Uint16Array, halfToFloat);
    default: throw new KpruneError('unsupported', `model output of type ${t.type} cannot be evaluated`);
  }
}
