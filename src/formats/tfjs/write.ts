/**
 * Writing a TF.js model with new values for some weights, in the original storage: each changed
 * tensor is re-encoded in its own dtype (uint8/uint16 re-quantized with a fresh range, float16
 * rounded to nearest even) into a copy of its group's bytes, and the group is cut back into shards
 * of the original sizes and names. model.json is copied as text; only the "min" and "scale" of
 * re-quantized tensors are replaced in place, so every other byte (key order, spacing, fields kprune
 * does not know) stays. With `weights: 'float32'` every weight is stored as float32 instead and the
 * weights manifest is the one part rewritten. A layout rewrite (decomposed layers) replaces the
 * topology and the manifest: a decomposed kernel's entry gives way to its pieces, in the same group
 * and place, sliced from the kernel as re-encoded in its storage (so a piece dequantizes to exactly
 * what the masked kernel would, zero range and all), and a group whose size changed is re-sharded.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { KpruneError } from '../../errors.js';
import { PendingFile, writeFilesAtomically } from '../../io/atomic-write.js';
import { Storage, decodeFloats, elementBytes, encodeFloats, storageName } from './dtypes.js';
import { TextEdit, applyEdits, jsonSpans, spanAt, stringifyLike } from './json-spans.js';
import { positionBlock, sliceKernel } from './pieces.js';
import { TfjsModel, WeightEntry, modelFiles, resolveInside, weightBytes, weightFloats } from './read.js';

export type WeightStorageOption = 'keep' | 'float32';

export interface TfjsWriteOptions {
  /** `keep` (default): every tensor in its original storage; `float32`: all dequantized. */
  weights?: WeightStorageOption;
}

/** A weight a layout rewrite adds: a piece of a rewritten 3x3 kernel, or a small int32 constant. */
export type AddedWeight =
  | { kind: 'piece'; name: string; shape: number[]; /** the kernel it is cut from */ of: string; positions: number[] }
  | { kind: 'int32'; name: string; shape: number[]; values: Int32Array };

/** A new topology and the manifest changes that go with it. */
export interface TopologyRewrite {
  topology: unknown;
  /** Weights removed, each with the weights that take its place (same group, same position). */
  replace: Map<string, AddedWeight[]>;
  /** Weights kept under a new name (a bias moving to the piece that carries it). */
  rename: Map<string, string>;
}

/** tfjs-converter's default shard size, for re-sharding float32 output. */
const DEFAULT_SHARD_BYTES = 4 * 1024 * 1024;

function sameValues(a: Float32Array, b: Float32Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Which weights change, their new bytes and storage; values are in the manifest's own layout. */
function encodeChanges(model: TfjsModel, values: ReadonlyMap<string, Float32Array>): Map<WeightEntry, { bytes: Uint8Array; storage: Storage }> {
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

/**
 * A group's new bytes as shards of its largest original shard size: the original names when the
 * count is unchanged, else tfjs-converter's "group<g>-shard<k>of<n>.bin".
 */
function reshard(model: TfjsModel, gi: number, data: Uint8Array, outDir: string, files: PendingFile[]): string[] {
  const old = model.groups[gi].shards;
  const shardBytes = Math.max(...old.map((s) => s.bytes), 0) || DEFAULT_SHARD_BYTES;
  const count = Math.max(1, Math.ceil(data.length / shardBytes));
  const paths = count === old.length ? old.map((s) => s.relative) : Array.from({ length: count }, (_, k) => `group${gi + 1}-shard${k + 1}of${count}.bin`);
  const pieces = cut(data, new Array<number>(count).fill(shardBytes));
  paths.forEach((p, k) => files.push({ path: resolveInside(outDir, p, `weightsManifest[${gi}] path`, model.path), data: pieces[k] }));
  return paths;
}

function quantizationOf(s: Storage): Record<string, unknown> | undefined {
  switch (s.kind) {
    case 'plain': return undefined;
    case 'affine': return { dtype: s.dtype, min: s.min, scale: s.scale };
    case 'float16': return { dtype: 'float16' };
  }
}

/**
 * A tensor's bytes and storage as written: in its own storage (`keep`; untouched values keep their
 * bytes) or float32. Quantized int32 tensors become the integers TF.js loads (tfjs-core decodeWeight).
 */
function encoded(model: TfjsModel, w: WeightEntry, v: Float32Array | undefined, mode: WeightStorageOption): { bytes: Uint8Array; storage: Storage } {
  if (mode === 'keep' || w.storage.kind === 'plain') {
    const old = weightFloats(model, w);
    if (!v || (old && sameValues(old, v)) || w.storage.kind === 'plain' && w.dtype !== 'float32') return { bytes: weightBytes(model, w), storage: w.storage };
    return encodeFloats(mode === 'keep' ? w.storage : { kind: 'plain', dtype: 'float32' }, v);
  }
  if (w.dtype === 'int32') {
    const f = decodeFloats(w.storage, weightBytes(model, w));
    return { bytes: new Uint8Array(Int32Array.from(f, (x) => Math.round(x)).buffer), storage: { kind: 'plain', dtype: 'int32' } };
  }
  return encodeFloats({ kind: 'plain', dtype: 'float32' }, v ?? weightFloats(model, w)!);
}

/** The manifest and shards for a layout rewrite; model.json keeps every field but the two replaced. */
function planRewrite(model: TfjsModel, values: ReadonlyMap<string, Float32Array>, rewrite: TopologyRewrite, outDir: string, mode: WeightStorageOption): Planned {
  const manifest = model.json.weightsManifest as Record<string, unknown>[];
  const files: PendingFile[] = [];
  const groups = manifest.map((group, gi) => {
    const entries = model.weights.filter((w) => w.group === gi);
    const parts: Uint8Array[] = [];
    const specs: Record<string, unknown>[] = [];
    (group.weights as Record<string, unknown>[]).forEach((spec, i) => {
      const w = entries[i];
      const { quantization: _old, ...rest } = spec;
      const added = rewrite.replace.get(w.name);
      if (!added) {
        const enc = encoded(model, w, values.get(w.name), mode);
        const q = quantizationOf(enc.storage);
        // A range that stays keeps the entry's other quantization fields.
        specs.push({ ...rest, name: rewrite.rename.get(w.name) ?? w.name, ...(q ? { quantization: { ...(typeof _old === 'object' && _old ? _old : {}), ...q } } : {}) });
        parts.push(enc.bytes);
        return;
      }
      for (const a of added) {
        if (a.kind === 'int32') {
          specs.push({ name: a.name, shape: a.shape, dtype: 'int32' });
          parts.push(new Uint8Array(a.values.buffer, a.values.byteOffset, a.values.byteLength));
          continue;
        }
        if (a.of !== w.name) throw new Error(`piece "${a.name}" is cut from "${a.of}" but replaces "${w.name}"`);
        // The whole kernel encoded once, then cut: pieces share its range, so each value is the masked kernel's.
        const enc = encoded(model, w, values.get(w.name), mode);
        const q = quantizationOf(enc.storage);
        specs.push({ ...rest, name: a.name, shape: a.shape, ...(q ? { quantization: q } : {}) });
        parts.push(sliceKernel(enc.bytes, positionBlock(w.shape), a.positions, elementBytes(enc.storage)));
      }
    });
    const paths = reshard(model, gi, new Uint8Array(Buffer.concat(parts)), outDir, files);
    return { ...group, paths, weights: specs };
  });
  const root = jsonSpans(model.text);
  const edits: TextEdit[] = [];
  for (const [key, value] of [['modelTopology', rewrite.topology], ['weightsManifest', groups]] as const) {
    const span = spanAt(root, [key]);
    if (!span) throw new Error(`model.json has no ${key}`);
    edits.push({ start: span.start, end: span.end, text: stringifyLike(value, model.text) });
  }
  return { files, text: applyEdits(model.text, edits) };
}

function planFloat32(model: TfjsModel, values: ReadonlyMap<string, Float32Array>, outDir: string): Planned {
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
    const paths = reshard(model, gi, new Uint8Array(Buffer.concat(parts)), outDir, files);
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
 * for some float32 weights, given in the manifest's layout, and a layout rewrite if any. Returns
 * every file written, the model last.
 */
export async function writeTfjsModel(model: TfjsModel, values: ReadonlyMap<string, Float32Array>, outPath: string, options: TfjsWriteOptions = {}, rewrite: TopologyRewrite | null = null): Promise<{ files: string[]; storage: string }> {
  if (!/\.json$/i.test(outPath)) {
    throw new KpruneError('usage', `output "${outPath}" should be a .json file for a TF.js model`, { suggestion: 'e.g. -o out/model.json' });
  }
  const outDir = path.dirname(path.resolve(outPath));
  const mode = options.weights ?? 'keep';
  const planned = rewrite ? planRewrite(model, values, rewrite, outDir, mode)
    : mode === 'keep' ? planKeep(model, encodeChanges(model, values), outDir) : planFloat32(model, values, outDir);
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
