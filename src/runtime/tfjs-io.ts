/**
 * TF.js IO handlers over kprune's own reader: model.json and shards read with node:fs (paths
 * checked to stay in the model's folder), handed to tf.loadLayersModel / tf.loadGraphModel as
 * ModelArtifacts. No network, no file:// handler of tfjs-node.
 */
import type * as TF from '@tensorflow/tfjs';
import { encodeFloats } from '../formats/tfjs/dtypes.js';
import { TfjsModel, readTfjsModel, weightBytes } from '../formats/tfjs/read.js';

export interface ArtifactOptions {
  /** New float32 values for some weights, in the manifest's layout; they are handed over as float32. */
  replace?: ReadonlyMap<string, Float32Array>;
  /** GraphDef nodes to add (a GraphModel runner's pre-activation copies). */
  extraNodes?: unknown[];
}

/** The model as TF.js ModelArtifacts: every group's weights in manifest order, one buffer. */
export function modelArtifacts(model: TfjsModel, options: ArtifactOptions = {}): TF.io.ModelArtifacts {
  const replace = options.replace ?? new Map<string, Float32Array>();
  const specs: TF.io.WeightsManifestEntry[] = [];
  const parts: Uint8Array[] = [];
  for (const w of model.weights) {
    const manifest = model.json.weightsManifest as { weights: TF.io.WeightsManifestEntry[] }[];
    const spec = manifest[w.group].weights[w.index];
    const v = replace.get(w.name);
    if (v) {
      specs.push({ name: w.name, shape: w.shape, dtype: 'float32' });
      parts.push(encodeFloats({ kind: 'plain', dtype: 'float32' }, v).bytes);
    } else {
      specs.push(spec);
      parts.push(weightBytes(model, w));
    }
  }
  const data = Buffer.concat(parts);
  const json = model.json;
  let topology = json.modelTopology as Record<string, unknown>;
  if (options.extraNodes && options.extraNodes.length > 0) {
    topology = { ...topology, node: [...(topology.node as unknown[]), ...options.extraNodes] };
  }
  const artifacts: TF.io.ModelArtifacts = {
    modelTopology: topology as TF.io.ModelArtifacts['modelTopology'],
    weightSpecs: specs,
    weightData: data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength) as ArrayBuffer,
  };
  // The optional fields tf.io's own JSON handlers pass on.
  const pass = ['format', 'generatedBy', 'convertedBy', 'trainingConfig', 'signature', 'userDefinedMetadata', 'modelInitializer', 'initializerSignature'] as const;
  const target = artifacts as unknown as Record<string, unknown>;
  for (const key of pass) if (json[key] !== undefined) target[key] = json[key];
  return artifacts;
}

/** An IOHandler serving ready artifacts. */
export function memoryHandler(artifacts: TF.io.ModelArtifacts): TF.io.IOHandler {
  return { load: async () => artifacts };
}

/** An IOHandler reading a model.json and its shards from disk, through kprune's reader. */
export function fileHandler(file: string): TF.io.IOHandler {
  return { load: async () => modelArtifacts(await readTfjsModel(file)) };
}
