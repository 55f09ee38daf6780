/**
 * TF.js IO handlers over kprune's own reader: model.json and shards read with node:fs (paths
 * checked to stay in the model's folder), handed to tf.loadLayersModel / tf.loadGraphModel as
 * ModelArtifacts. No network, no file:// handler of tfjs-node.
 */
import type * as TF from '../../runtime/tfjs/tf.js';
import { encodeFloats } from '../../formats/tfjs/dtypes.js';
import { TfjsModel, readTfjsModel, readWeightBytes } from '../../formats/tfjs/read.js';

export interface ArtifactOptions {
  /** New float32 values for some weights, in the manifest's layout; they are handed over as float32. */
  replace?: ReadonlyMap<string, Float32Array>;
  /** GraphDef nodes to add (a GraphModel runner's pre-activation copies). */
  extraNodes?: unknown[];
}

/** The model as TF.js ModelArtifacts: every group's weights in manifest order, one buffer. */
export function modelArtifacts(model: TfjsModel, options: ArtifactOptions & { withoutWeights?: boolean } = {}): TF.io.ModelArtifacts {
  if (options.withoutWeights) return withTopology(model, options, {});
  const replace = options.replace ?? new Map<string, Float32Array>();
  const manifest = model.json.weightsManifest as { weights: TF.io.WeightsManifestEntry[] }[];
  const specs: TF.io.WeightsManifestEntry[] = [];
  // Sizes first, then one buffer filled tensor by tensor: the model is held once here, not as
  // parts plus their concatenation plus a copy.
  const sizes = model.weights.map((w) => {
    const v = replace.get(w.name);
    specs.push(v ? { name: w.name, shape: w.shape, dtype: 'float32' } : manifest[w.group].weights[w.index]);
    return v ? v.length * 4 : w.byteLength;
  });
  const weightData = new ArrayBuffer(sizes.reduce((a, b) => a + b, 0));
  const data = new Uint8Array(weightData);
  let at = 0;
  model.weights.forEach((w, i) => {
    const v = replace.get(w.name);
    data.set(v ? encodeFloats({ kind: 'plain', dtype: 'float32' }, v).bytes : readWeightBytes(model, w), at);
    at += sizes[i];
  });
  return withTopology(model, options, { weightSpecs: specs, weightData });
}

/** The artifacts around some weights: the topology and the optional fields. */
function withTopology(model: TfjsModel, options: ArtifactOptions, weights: Pick<TF.io.ModelArtifacts, 'weightSpecs' | 'weightData'>): TF.io.ModelArtifacts {
  const json = model.json;
  let topology = json.modelTopology as Record<string, unknown>;
  if (options.extraNodes && options.extraNodes.length > 0) {
    topology = { ...topology, node: [...(topology.node as unknown[]), ...options.extraNodes] };
  }
  const artifacts: TF.io.ModelArtifacts = {
    modelTopology: topology as TF.io.ModelArtifacts['modelTopology'],
    ...weights,
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
