/**
 * Reading a TF.js model.json and its weight shards: detection, the weights manifest (groups of
 * shards, each group one concatenated byte stream), path safety, and decoding weights to floats.
 * Nothing here needs TF.js itself: analysis works on the files alone.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { KpruneError } from '../../errors.js';
import { Storage, WeightDtype, byteLength, decodeFloats, isQuantDtype, isWeightDtype, QUANT_DTYPES, WEIGHT_DTYPES } from './dtypes.js';

export type TfjsFormat = 'layers-model' | 'graph-model';

/** One tensor of the manifest: where its bytes are in its group's data, and how they are stored. */
export interface WeightEntry {
  name: string;
  shape: number[];
  /** The tensor's dtype once loaded (float32 for quantized float weights). */
  dtype: WeightDtype;
  storage: Storage;
  group: number;
  /** Index in the group's `weights` list. */
  index: number;
  offset: number;
  byteLength: number;
}

export interface ShardFile {
  /** As written in the manifest. */
  relative: string;
  file: string;
  bytes: number;
}

export interface WeightGroup {
  shards: ShardFile[];
  /** The group's shards concatenated. */
  data: Uint8Array;
}

export interface TfjsModel {
  path: string;
  dir: string;
  /** model.json as read, for byte-preserving rewrites. */
  text: string;
  json: Record<string, unknown>;
  format: TfjsFormat;
  topology: Record<string, unknown>;
  groups: WeightGroup[];
  weights: WeightEntry[];
  byName: Map<string, WeightEntry>;
}

export function elementCount(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Which TF.js format a parsed model.json is, or why it is none. `format` is optional in old files:
 * then the topology tells (a GraphDef has `node`, a Keras model a `class_name` or `model_config`).
 */
export function detectTfjs(json: unknown): { format: TfjsFormat } | { error: string } {
  if (!isObject(json)) return { error: 'not a TF.js model.json (the file is JSON, but not an object)' };
  const topology = json.modelTopology;
  const hasManifest = Array.isArray(json.weightsManifest);
  if (!isObject(topology)) {
    return {
      error: hasManifest
        ? 'a weights manifest without a model topology (a weights-only file); kprune needs the model.json that has both'
        : 'not a TF.js model.json: it has neither "modelTopology" nor "weightsManifest"',
    };
  }
  const format = json.format;
  if (format === 'layers-model' || format === 'graph-model') return { format };
  if (format !== undefined) return { error: `unknown TF.js model format "${String(format)}" (known: layers-model, graph-model)` };
  if (Array.isArray(topology.node)) return { format: 'graph-model' };
  if (typeof topology.class_name === 'string' || isObject(topology.model_config)) return { format: 'layers-model' };
  return { error: 'the model topology is neither a Keras model (layers-model) nor a GraphDef (graph-model)' };
}

/** A manifest path must name a file inside the model's folder: relative, no "..", no URL. */
export function resolveInside(dir: string, relative: unknown, where: string, file: string): string {
  const bad = (why: string) => new KpruneError('unsafe-path', `${where} "${String(relative)}" ${why}`, {
    file, suggestion: 'weight files must sit in the model\'s folder (or below it), named by relative paths',
  });
  if (typeof relative !== 'string' || relative === '') throw bad('is not a file name');
  if (relative.includes('\0')) throw bad('contains a NUL byte');
  if (/^[a-z][a-z0-9+.-]*:/i.test(relative) || relative.startsWith('//')) throw bad('is a URL; kprune reads local files only');
  if (path.isAbsolute(relative) || relative.startsWith('\\')) throw bad('is an absolute path');
  const target = path.resolve(dir, relative);
  const rel = path.relative(dir, target);
  if (rel === '' || rel.startsWith('..') || path.isAbsolute(rel)) throw bad('resolves outside the model\'s folder');
  return target;
}

async function readShard(file: string, shown: string, modelFile: string): Promise<Uint8Array> {
  try {
    return new Uint8Array(await fs.readFile(file));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      throw new KpruneError('not-found', `weight shard "${shown}" named by the manifest does not exist`, { file: modelFile, cause: e });
    }
    throw new KpruneError('io', `cannot read weight shard "${shown}" (${code ?? String(e)})`, { file: modelFile, cause: e });
  }
}

/** The symlink-resolved file must still be inside the model's (resolved) folder. */
async function checkRealInside(realDir: string, target: string, shown: string, file: string): Promise<void> {
  let real: string;
  try {
    real = await fs.realpath(target);
  } catch {
    return; // a missing file is reported when it is read
  }
  const rel = path.relative(realDir, real);
  if (rel.startsWith('..') || path.isAbsolute(rel)) {
    throw new KpruneError('unsafe-path', `weight shard "${shown}" is a link to a file outside the model's folder`, { file });
  }
}

function parseStorage(w: Record<string, unknown>, name: string, file: string): { dtype: WeightDtype; storage: Storage } {
  const dtype = w.dtype;
  if (!isWeightDtype(dtype)) {
    throw new KpruneError('unsupported', `weight "${name}" has dtype "${String(dtype)}", which kprune does not know (known: ${WEIGHT_DTYPES.join(', ')})`, { file });
  }
  const q = w.quantization;
  if (q === undefined || q === null) return { dtype, storage: { kind: 'plain', dtype } };
  if (!isObject(q)) throw new KpruneError('bad-model', `weight "${name}" has a malformed "quantization" entry`, { file });
  const qd = q.dtype;
  if (!isQuantDtype(qd)) {
    throw new KpruneError('unsupported', `weight "${name}" is quantized as "${String(qd)}", which kprune does not know (known: ${QUANT_DTYPES.join(', ')})`, { file });
  }
  if (qd === 'float16') {
    if (dtype !== 'float32') throw new KpruneError('bad-model', `weight "${name}" is ${dtype} but stored as float16 (only float32 weights can be)`, { file });
    return { dtype, storage: { kind: 'float16' } };
  }
  if (dtype !== 'float32' && dtype !== 'int32') {
    throw new KpruneError('bad-model', `weight "${name}" is ${dtype} but quantized as ${qd} (only float32 and int32 weights can be)`, { file });
  }
  const min = q.min;
  const scale = q.scale;
  if (typeof min !== 'number' || typeof scale !== 'number' || !Number.isFinite(min) || !Number.isFinite(scale)) {
    throw new KpruneError('bad-model', `weight "${name}" is quantized as ${qd} without a numeric "min" and "scale"`, { file });
  }
  return { dtype, storage: { kind: 'affine', dtype: qd, min, scale } };
}

export async function readTfjsModel(file: string): Promise<TfjsModel> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new KpruneError('not-found', 'no such file', { file, cause: e });
    throw new KpruneError('io', `cannot read the model (${code ?? String(e)})`, { file, cause: e });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new KpruneError('bad-model', `not a TF.js model.json: not valid JSON (${e instanceof Error ? e.message : String(e)})`, { file, cause: e });
  }
  const detected = detectTfjs(json);
  if ('error' in detected) throw new KpruneError('bad-model', detected.error, { file });
  const doc = json as Record<string, unknown>;
  const dir = path.dirname(path.resolve(file));
  const realDir = await fs.realpath(dir).catch(() => dir);
  const manifest = doc.weightsManifest ?? [];
  if (!Array.isArray(manifest)) throw new KpruneError('bad-model', '"weightsManifest" is not a list of groups', { file });

  const groups: WeightGroup[] = [];
  const weights: WeightEntry[] = [];
  const byName = new Map<string, WeightEntry>();
  for (let g = 0; g < manifest.length; g++) {
    const group = manifest[g] as unknown;
    if (!isObject(group) || !Array.isArray(group.paths) || !Array.isArray(group.weights)) {
      throw new KpruneError('bad-model', `weightsManifest[${g}] is not a group with "paths" and "weights"`, { file });
    }
    const shards: ShardFile[] = [];
    const parts: Uint8Array[] = [];
    for (const rel of group.paths as unknown[]) {
      const target = resolveInside(dir, rel, `weightsManifest[${g}] path`, file);
      await checkRealInside(realDir, target, String(rel), file);
      const bytes = await readShard(target, String(rel), file);
      shards.push({ relative: String(rel), file: target, bytes: bytes.length });
      parts.push(bytes);
    }
    const data = parts.length === 1 ? parts[0] : new Uint8Array(Buffer.concat(parts));
    let offset = 0;
    const list = group.weights as unknown[];
    list.forEach((raw, index) => {
      if (!isObject(raw) || typeof raw.name !== 'string' || !Array.isArray(raw.shape) || !raw.shape.every((d) => Number.isInteger(d) && (d as number) >= 0)) {
        throw new KpruneError('bad-model', `weightsManifest[${g}].weights[${index}] is not a weight with a name and a shape`, { file });
      }
      const name = raw.name;
      const shape = raw.shape as number[];
      const { dtype, storage } = parseStorage(raw, name, file);
      const length = byteLength(storage, elementCount(shape), data, offset);
      if (length === null || offset + length > data.length) {
        const need = weightsBytes(list as Record<string, unknown>[], data, file);
        const listed = shards.map((s) => `${s.relative} ${s.bytes} bytes`).join(', ');
        throw new KpruneError('bad-model', `weight group ${g + 1} is short: its shards (${listed || 'none'}) hold ${data.length} bytes but its ${list.length} weights need ${need ?? 'more than that'}; "${name}" does not fit`, {
          file, suggestion: 'a shard is truncated or missing from the manifest',
        });
      }
      if (byName.has(name)) throw new KpruneError('bad-model', `the manifest lists weight "${name}" twice`, { file });
      const entry: WeightEntry = { name, shape, dtype, storage, group: g, index, offset, byteLength: length };
      weights.push(entry);
      byName.set(name, entry);
      offset += length;
    });
    groups.push({ shards, data });
  }
  const topologyRaw = doc.modelTopology as Record<string, unknown>;
  return { path: file, dir, text, json: doc, format: detected.format, topology: topologyRaw, groups, weights, byName };
}

/** Total bytes a group's weights need (null when string lengths run past the data). */
function weightsBytes(list: Record<string, unknown>[], data: Uint8Array, file: string): number | null {
  let total = 0;
  for (const w of list) {
    const { storage } = parseStorage(w, String(w.name), file);
    const n = byteLength(storage, elementCount(w.shape as number[]), data, total);
    if (n === null) return null;
    total += n;
  }
  return total;
}

export function weightBytes(model: TfjsModel, w: WeightEntry): Uint8Array {
  return model.groups[w.group].data.subarray(w.offset, w.offset + w.byteLength);
}

const floatCache = new WeakMap<WeightEntry, Float32Array>();

/** A float32 weight's values (dequantized), or null for other dtypes. Cached per entry. */
export function weightFloats(model: TfjsModel, w: WeightEntry): Float32Array | null {
  if (w.dtype !== 'float32') return null;
  let v = floatCache.get(w);
  if (!v) {
    v = decodeFloats(w.storage, weightBytes(model, w));
    floatCache.set(w, v);
  }
  return v;
}

/** The files of a model: model.json first, then every shard. */
export function modelFiles(model: TfjsModel): string[] {
  return [model.path, ...model.groups.flatMap((g) => g.shards.map((s) => s.file))];
}
