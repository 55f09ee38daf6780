/**
 * Writing a TF.js model with new values for some weights, in the original storage: each changed
 * tensor is re-encoded in its own dtype (uint8/uint16 re-quantized with a fresh range, float16
 * rounded to nearest even) into a copy of its group's bytes, and the group is cut back into shards
 * of the original sizes and names. model.json is copied as text; only the "min" and "scale" of
 * re-quantized tensors are replaced in place, so every other byte (key order, spacing, fields kprune
 * does not know) stays. With `weights: 'float32'` every weight is stored as float32 instead and the
 * weights manifest is the one part rewritten.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { KpruneError } from '../../errors.js';
import { PendingFile, writeFilesAtomically } from '../../io/atomic-write.js';
import { Storage, decodeFloats, encodeFloats, storageName } from './dtypes.js';
import { TextEdit, applyEdits, jsonSpans, spanAt, stringifyLike } from './json-spans.js';
import { TfjsModel, WeightEntry, modelFiles, resolveInside, weightBytes, weightFloats } from './read.js';

export type WeightStorageOption = 'keep' | 'float32';

export interface TfjsWriteOptions {
  /** `keep` (default): every tensor in its original storage; `float32`: all dequantized. */
  weights?: WeightStorageOption;
}

/** tfjs-converter's default shard size, for re-sharding float32 output. */
const DEFAULT_SHARD_BYTES = 4 * 1024 * 1024;

function sameValues(a: Float32Array, b: Float32Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Which weights change, their new bytes and storage; values are in the manifest's own layout. */
function encodeChanges(model: TfjsModel, values: Map<string, Float32Array>): Map<WeightEntry, { bytes: Uint8Array; storage: Storage }> {
  const out = new Map<WeightEntry, { bytes: Uint8Array; storage: Storage }>();
  for (const [name, v] of values) {
    const w = model.byName.get(name);
    if (!w) throw new Error(`no weight "${name}" in the manifest`);
    const old = weightFloats(model, w);
    if (!old || old.length !== v.length) throw new Error(`weight "${name}" is not a float32 tensor of ${v.length} values`);
    if (sameValues(old, v)) continue; // untouched: the original bytes stay, bit for bit
    const enc = encodeFloats(w.storage, v);
    if (enc.bytes.length !== w.byteLength) throw new Error(`re-encoding "${name}" changed its size`);
    out.set(w, enc);
  }
  return out;
}

function numberText(v: number): string {
  if (!Number.isFinite(v)) throw new Error(`quantization range ${v} is not finite`);
  return String(v);
}

/** Cuts data into pieces of the given sizes; the last piece takes the rest. */
function cut(data: Uint8Array, sizes: number[]): Uint8Array[] {
  const out: Uint8Array[] = [];
  let at = 0;
  sizes.forEach((s, i) => {
    const end = i === sizes.length - 1 ? data.length : at + s;
    out.push(data.subarray(at, end));
    at = end;
  });
  return out;
}

interface Planned {
  files: PendingFile[];
  text: string;
}

function planKeep(model: TfjsModel, changes: Map<WeightEntry, { bytes: Uint8Array; storage: Storage }>, outDir: string): Planned {
  const files: PendingFile[] = [];
  model.groups.forEach((g, gi) => {
    let data = g.data;
    const mine = [...changes].filter(([w]) => w.group === gi);
    if (mine.length > 0) {
      data = new Uint8Array(g.data);
      for (const [w, enc] of mine) data.set(enc.bytes, w.offset);
    }
    const pieces = cut(data, g.shards.map((s) => s.bytes));
    g.shards.forEach((s, k) => files.push({ path: resolveInside(outDir, s.relative, `weightsManifest[${gi}] path`, model.path), data: pieces[k] }));
  });
  const edits: TextEdit[] = [];
  const affine = [...changes].filter(([, enc]) => enc.storage.kind === 'affine');
  if (affine.length > 0) {
    const root = jsonSpans(model.text);
    for (const [w, enc] of affine) {
      if (enc.storage.kind !== 'affine') continue;
      for (const key of ['min', 'scale'] as const) {
        const span = spanAt(root, ['weightsManifest', w.group, 'weights', w.index, 'quantization', key]);
        if (!span || span.kind !== 'scalar') throw new Error(`no quantization ${key} for "${w.name}" in model.json`);
        edits.push({ start: span.start, end: span.end, text: numberText(enc.storage[key]) });
      }
    }
  }
  return { files, text: applyEdits(model.text, edits) };
}

function planFloat32(model: TfjsModel, values: Map<string, Float32Array>, outDir: string): Planned {
  const manifest = model.json.weightsManifest as Record<string, unknown>[];
  const files: PendingFile[] = [];
  const groups = manifest.map((group, gi) => {
    const entries = model.weights.filter((w) => w.group === gi);
    const parts: Uint8Array[] = [];
    const specs = (group.weights as Record<string, unknown>[]).map((spec, i) => {
      const w = entries[i];
      const { quantization: _dropped, ...rest } = spec;
      if (w.storage.kind === 'plain') {
        const v = values.get(w.name);
        parts.push(v ? encodeFloats(w.storage, v).bytes : weightBytes(model, w));
        return spec;
      }
      if (w.dtype === 'int32') {
        // Quantized int32 tensors load rounded (tfjs-core decodeWeight): store those integers.
        const f = decodeFloats(w.storage, weightBytes(model, w));
        parts.push(new Uint8Array(Int32Array.from(f, (v) => Math.round(v)).buffer));
        return rest;
      }
      parts.push(encodeFloats({ kind: 'plain', dtype: 'float32' }, values.get(w.name) ?? weightFloats(model, w)!).bytes);
      return rest;
    });
    const data = new Uint8Array(Buffer.concat(parts));
    const old = model.groups[gi].shards;
    const shardBytes = Math.max(...old.map((s) => s.bytes), 0) || DEFAULT_SHARD_BYTES;
    const count = Math.max(1, Math.ceil(data.length / shardBytes));
    const paths = count === old.length ? old.map((s) => s.relative) : Array.from({ length: count }, (_, k) => `group${gi + 1}-shard${k + 1}of${count}.bin`);
    const pieces = cut(data, new Array<number>(count).fill(shardBytes));
    paths.forEach((p, k) => files.push({ path: resolveInside(outDir, p, `weightsManifest[${gi}] path`, model.path), data: pieces[k] }));
    return { ...group, paths, weights: specs };
  });
  const span = spanAt(jsonSpans(model.text), ['weightsManifest']);
  if (!span) throw new Error('model.json has no weightsManifest');
  return { files, text: applyEdits(model.text, [{ start: span.start, end: span.end, text: stringifyLike(groups, model.text) }]) };
}

async function realOrResolved(p: string): Promise<string> {
  const abs = path.resolve(p);
  try {
    return path.join(await fs.realpath(path.dirname(abs)), path.basename(abs));
  } catch {
    return abs;
  }
}

/**
 * Writes the model to `outPath` (a .json file; its folder is created when missing) with new values
 * for some float32 weights, given in the manifest's layout. Returns every file written, the model last.
 */
export async function writeTfjsModel(model: TfjsModel, values: Map<string, Float32Array>, outPath: string, options: TfjsWriteOptions = {}): Promise<{ files: string[]; storage: string }> {
  if (!/\.json$/i.test(outPath)) {
    throw new KpruneError('usage', `output "${outPath}" should be a .json file for a TF.js model`, { suggestion: 'e.g. -o out/model.json' });
  }
  const outDir = path.dirname(path.resolve(outPath));
  const mode = options.weights ?? 'keep';
  const planned = mode === 'keep' ? planKeep(model, encodeChanges(model, values), outDir) : planFloat32(model, values, outDir);
  const pending: PendingFile[] = [...planned.files, { path: path.resolve(outPath), data: new Uint8Array(Buffer.from(planned.text, 'utf8')) }];

  // Never write over an input file (a shard path of the same name in the same folder would be one).
  const inputs = new Set(await Promise.all(modelFiles(model).map(realOrResolved)));
  const seen = new Set<string>();
  for (const f of pending) {
    const real = await realOrResolved(f.path);
    if (inputs.has(real)) {
      throw new KpruneError('unsafe-path', `writing ${f.path} would overwrite a file of the input model`, {
        file: outPath, suggestion: 'write to another folder: the weight shards keep their names',
      });
    }
    if (seen.has(real)) throw new KpruneError('unsafe-path', `two output files would be ${f.path}`, { file: outPath });
    seen.add(real);
  }

  const created: string[] = [];
  try {
    for (const dir of new Set(pending.map((f) => path.dirname(f.path)))) {
      const first = await fs.mkdir(dir, { recursive: true });
      if (first) created.push(first);
    }
    await writeFilesAtomically(pending);
  } catch (e) {
    // Folders made for this output go again; the atomic writer already removed its temporaries.
    for (const dir of created.reverse()) await fs.rm(dir, { recursive: true, force: true });
    if (e instanceof KpruneError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    throw new KpruneError('io', `cannot create the output folder (${code ?? String(e)})`, { file: outPath, cause: e });
  }
  const kinds = new Set(model.weights.map((w) => (mode === 'float32' ? (w.dtype === 'float32' ? 'float32' : w.dtype) : storageName(w.storage))));
  return { files: pending.map((f) => f.path), storage: [...kinds].join(', ') };
}
