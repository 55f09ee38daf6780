/**
 * Reading a TF.js model.json and its weight shards: detection, the weights manifest (groups of
 * shards, each group one concatenated byte stream), path safety, and decoding weights to floats.
 * Nothing here needs TF.js itself: analysis works on the files alone.
 *
 * Shard bytes are never held: loading checks the manifest against the shards' sizes, and a tensor's
 * bytes are read from its shard(s) when asked for (`readWeightBytes`), so a model of any size is
 * analysed and rewritten in memory near its largest tensor.
 */
import { closeSync, promises as fs, openSync, readSync } from 'node:fs';
import path from 'node:path';
import { isInside } from '../../io/identity.js';
import { MAX_JSON_DEPTH, jsonTooDeep } from '../../util/json-depth.js';
import { KpruneError } from '../../errors.js';
import { Storage, WeightDtype, decodeFloats, elementBytes, isQuantDtype, isWeightDtype, QUANT_DTYPES, WEIGHT_DTYPES } from './dtypes.js';

export type TfjsFormat = 'layers-model' | 'graph-model';

/** One tensor of the manifest: where its bytes are in its group's stream, and how they are stored. */
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
  /** Where the shard starts in its group's stream. */
  offset: number;
}

/** A group's shards, which read one after the other are one byte stream (weights cross shard ends). */
export interface WeightGroup {
  shards: ShardFile[];
  /** The stream's length: the shards' sizes summed. */
  bytes: number;
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
  if (!isInside(dir, target)) throw bad('resolves outside the model\'s folder');
  return target;
}

function shardError(e: unknown, shown: string, modelFile: string): KpruneError {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') {
    return new KpruneError('not-found', `weight shard "${shown}" named by the manifest does not exist`, { file: modelFile, cause: e });
  }
  return new KpruneError('io', `cannot read weight shard "${shown}" (${code ?? String(e)})`, { file: modelFile, cause: e });
}

/** A shard's size; its bytes are read when a tensor in it is asked for. */
async function shardSize(file: string, shown: string, modelFile: string): Promise<number> {
  let stat;
  try {
    stat = await fs.stat(file);
  } catch (e) {
    throw shardError(e, shown, modelFile);
  }
  if (!stat.isFile()) {
    throw new KpruneError('io', `cannot read weight shard "${shown}" (${stat.isDirectory() ? 'EISDIR' : 'not a regular file'})`, { file: modelFile });
  }
  return stat.size;
}

/** The symlink-resolved file must still be inside the model's (resolved) folder. */
async function checkRealInside(realDir: string, target: string, shown: string, file: string): Promise<void> {
  let real: string;
  try {
    real = await fs.realpath(target);
  } catch {
    return; // a missing file is reported when it is read
  }
  if (!isInside(realDir, real)) {
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
    throw new KpruneError('bad-model', `weight "${name}" is quantized as ${qd} without a finite numeric "min" and "scale" (min ${String(min)}, scale ${String(scale)})`, { file });
  }
  // TF.js dequantizes into float32 (code * scale + min): a range beyond float32 gives infinities.
  const top = min + scale * (qd === 'uint8' ? 255 : 65535);
  if (dtype === 'float32' && !(Number.isFinite(Math.fround(min)) && Number.isFinite(Math.fround(scale)) && Number.isFinite(Math.fround(top)))) {
    throw new KpruneError('bad-model', `weight "${name}" has a quantization range (min ${min}, scale ${scale}) outside what float32 holds`, { file });
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
  if (jsonTooDeep(text)) {
    throw new KpruneError('bad-model', `not a TF.js model.json kprune reads: its JSON nests deeper than ${MAX_JSON_DEPTH} levels`, { file });
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
    let total = 0;
    for (const rel of group.paths as unknown[]) {
      const target = resolveInside(dir, rel, `weightsManifest[${g}] path`, file);
      await checkRealInside(realDir, target, String(rel), file);
      const bytes = await shardSize(target, String(rel), file);
      shards.push({ relative: String(rel), file: target, bytes, offset: total });
      total += bytes;
    }
    const stream: WeightGroup = { shards, bytes: total };
    const scan = new StreamScanner(stream, file);
    let offset = 0;
    const list = group.weights as unknown[];
    list.forEach((raw, index) => {
      if (!isObject(raw) || typeof raw.name !== 'string' || !Array.isArray(raw.shape) || !raw.shape.every((d) => Number.isInteger(d) && (d as number) >= 0)) {
        throw new KpruneError('bad-model', `weightsManifest[${g}].weights[${index}] is not a weight with a name and a shape`, { file });
      }
      const name = raw.name;
      const shape = raw.shape as number[];
      const { dtype, storage } = parseStorage(raw, name, file);
      const length = tensorBytes(storage, elementCount(shape), scan, offset);
      if (length === null || offset + length > total) {
        const need = weightsBytes(list as Record<string, unknown>[], scan, file);
        const listed = shards.map((s) => `${s.relative} ${s.bytes} bytes`).join(', ');
        throw new KpruneError('bad-model', `weight group ${g + 1} is short: its shards (${listed || 'none'}) hold ${total} bytes but its ${list.length} weights need ${need ?? 'more than that'}; "${name}" does not fit`, {
          file, suggestion: 'a shard is truncated or missing from the manifest',
        });
      }
      if (byName.has(name)) throw new KpruneError('bad-model', `the manifest lists weight "${name}" twice`, { file });
      const entry: WeightEntry = { name, shape, dtype, storage, group: g, index, offset, byteLength: length };
      weights.push(entry);
      byName.set(name, entry);
      offset += length;
    });
    groups.push(stream);
  }
  const topologyRaw = doc.modelTopology as Record<string, unknown>;
  return { path: file, dir, text, json: doc, format: detected.format, topology: topologyRaw, groups, weights, byName };
}

/**
 * Bytes a tensor takes in its group's stream from `offset`. A string tensor is a 4-byte
 * little-endian length before each element, so its size is read from the shards; null when the
 * stream ends first.
 */
function tensorBytes(storage: Storage, elements: number, scan: StreamScanner, offset: number): number | null {
  if (storage.kind !== 'plain' || storage.dtype !== 'string') return elements * elementBytes(storage);
  let at = offset;
  for (let i = 0; i < elements; i++) {
    const n = scan.uint32At(at);
    if (n === null) return null;
    at += 4 + n;
  }
  return at - offset;
}

/** Total bytes a group's weights need (null when string lengths run past the data). */
function weightsBytes(list: Record<string, unknown>[], scan: StreamScanner, file: string): number | null {
  let total = 0;
  for (const w of list) {
    const { storage } = parseStorage(w, String(w.name), file);
    const n = tensorBytes(storage, elementCount(w.shape as number[]), scan, total);
    if (n === null) return null;
    total += n;
  }
  return total;
}

/**
 * Little-endian uint32s at any place of a group's stream, through a window of it read on demand:
 * the length prefixes of string tensors, which must be read to know where the next tensor starts.
 */
class StreamScanner {
  private window = new Uint8Array(0);
  private start = 0;

  constructor(private readonly group: WeightGroup, private readonly file: string) {}

  uint32At(at: number): number | null {
    if (at + 4 > this.group.bytes) return null;
    if (at < this.start || at + 4 > this.start + this.window.length) {
      this.start = at;
      this.window = new Uint8Array(Math.min(SCAN_WINDOW, this.group.bytes - at));
      readStream(this.group, at, this.window, this.file);
    }
    const i = at - this.start;
    const w = this.window;
    return (w[i] | (w[i + 1] << 8) | (w[i + 2] << 16)) + w[i + 3] * 0x1000000;
  }
}

const SCAN_WINDOW = 64 * 1024;

/** Fills `out` with the group's stream from `offset`, reading each shard it spans (synchronously). */
export function readStream(group: WeightGroup, offset: number, out: Uint8Array, modelFile: string): void {
  const end = offset + out.length;
  if (offset < 0 || end > group.bytes) throw new Error(`bytes [${offset}, ${end}) lie outside a weight group of ${group.bytes}`);
  // The first shard that ends after `offset` (shards are in stream order; a binary search for many).
  let lo = 0;
  let hi = group.shards.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    const s = group.shards[mid];
    if (s.offset + s.bytes <= offset) lo = mid + 1;
    else hi = mid;
  }
  for (let k = lo; k < group.shards.length && out.length > 0; k++) {
    const s = group.shards[k];
    const from = Math.max(offset, s.offset);
    const to = Math.min(end, s.offset + s.bytes);
    if (from >= to) {
      if (s.offset >= end) break;
      continue;
    }
    readShardRange(s, from - s.offset, out.subarray(from - offset, to - offset), modelFile);
  }
}

function readShardRange(shard: ShardFile, at: number, out: Uint8Array, modelFile: string): void {
  let fd: number;
  try {
    fd = openSync(shard.file, 'r');
  } catch (e) {
    throw shardError(e, shard.relative, modelFile);
  }
  try {
    for (let done = 0; done < out.length;) {
      // readSync reads at most 2 GiB - 1 at a time.
      const n = readSync(fd, out, done, Math.min(out.length - done, 0x40000000), at + done);
      if (n === 0) {
        throw new KpruneError('io', `weight shard "${shard.relative}" ended early: it is shorter than when the model was loaded`, { file: modelFile });
      }
      done += n;
    }
  } catch (e) {
    if (e instanceof KpruneError) throw e;
    throw shardError(e, shard.relative, modelFile);
  } finally {
    closeSync(fd);
  }
}

/**
 * A tensor's bytes as stored, read now from whichever shard(s) hold them (synchronously: layers'
 * weights are getters). Nothing is kept; a caller that needs them twice keeps them.
 */
export function readWeightBytes(model: TfjsModel, w: WeightEntry): Uint8Array {
  const out = new Uint8Array(w.byteLength);
  readStream(model.groups[w.group], w.offset, out, model.path);
  return out;
}

/** A float32 weight's values (dequantized), read now, or null for other dtypes. */
export function weightFloats(model: TfjsModel, w: WeightEntry): Float32Array | null {
  if (w.dtype !== 'float32') return null;
  return decodeFloats(w.storage, readWeightBytes(model, w));
}

/** The files of a model: model.json first, then every shard. */
export function modelFiles(model: TfjsModel): string[] {
  return [model.path, ...model.groups.flatMap((g) => g.shards.map((s) => s.file))];
}
