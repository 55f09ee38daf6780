/**
 * Writing a TF.js model with new values for some weights, in the original storage: each changed
 * tensor is re-encoded in its own dtype (uint8/uint16 re-quantized with a fresh range, float16
 * rounded to nearest even) in its place in its group's bytes, and the group is cut back into shards
 * of the original sizes and names. model.json is copied as text; only the "min" and "scale" of
 * re-quantized tensors are replaced in place, so every other byte (key order, spacing, fields kprune
 * does not know) stays. With `weights: 'float32'` every weight is stored as float32 instead and the
 * weights manifest is the one part rewritten. A layout rewrite (decomposed layers) replaces the
 * topology and the manifest: a decomposed kernel's entry gives way to its pieces, in the same group
 * and place, sliced from the kernel as re-encoded in its storage (so a piece dequantizes to exactly
 * what the masked kernel would, zero range and all), and a group whose size changed is re-sharded.
 *
 * Streamed: no group's bytes are ever held. A group's output is planned as a list of parts (ranges
 * copied from the input, tensors made anew), whose sizes are known before anything is read; each
 * output shard is then produced when its turn to be written comes, chunk by chunk, from the input's
 * ranges (read from the shards on demand) and the new tensors overlapping it. A new tensor is made
 * once (one `values.get`, which may compute it), kept while its bytes are written (it may cross a
 * shard's end) and dropped. Memory: about one output chunk plus one tensor. model.json is written
 * last, once the quantization ranges of the re-encoded tensors are known.
 */
import path from 'node:path';
import { KpruneError } from '../../errors.js';
import { Chunk, PendingFile } from '../../io/atomic-write.js';
import { OutputTransaction, inTransaction } from '../../io/transaction.js';
import { Storage, decodeFloats, elementBytes, encodeFloats, storageName } from './dtypes.js';
import { JsonSpan, TextEdit, applyEdits, jsonSpans, spanAt, stringifyLike } from './json-spans.js';
import { positionBlock, sliceKernel } from './pieces.js';
import { TfjsModel, WeightEntry, elementCount, modelFiles, readStream, readWeightBytes, resolveInside } from './read.js';
import { maxOf } from '../../util/arrays.js';

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
/** The most bytes of a shard made at once (shards are usually 4 MB; some converters make them larger). */
const CHUNK_BYTES = 4 * 1024 * 1024;

function sameValues(a: Float32Array, b: Float32Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function numberText(v: number): string {
  if (!Number.isFinite(v)) throw new Error(`quantization range ${v} is not finite`);
  return String(v);
}

/** One run of a group's output: bytes of the input's stream copied as they are, or a tensor made in turn. */
type Part =
  | { kind: 'copy'; offset: number; bytes: number }
  | { kind: 'make'; bytes: number; make: () => Uint8Array };

/** A group of the output: its parts in order, and the shards (paths, sizes) they are cut into. */
interface GroupPlan {
  group: number;
  parts: Part[];
  paths: string[];
  sizes: number[];
}

interface Planned {
  groups: GroupPlan[];
  /** model.json, asked for once every part has been made. */
  text: () => string;
}

/** Adds a copied range, joined to the previous one when they touch. */
function pushCopy(parts: Part[], offset: number, bytes: number): void {
  if (bytes <= 0) return;
  const last = parts[parts.length - 1];
  if (last?.kind === 'copy' && last.offset + last.bytes === offset) last.bytes += bytes;
  else parts.push({ kind: 'copy', offset, bytes });
}

/**
 * A group's output stream, produced front to back as the chunks of its shards are written: copied
 * ranges are read straight into the chunk, a made tensor is kept until its last byte is given out.
 */
class PartStream {
  private part = 0;
  /** Bytes of the current part already given out. */
  private at = 0;
  private made: Uint8Array | null = null;
  private position = 0;

  constructor(private readonly model: TfjsModel, private readonly plan: GroupPlan) {}

  /** The `n` bytes at `position`, which must be where the previous call ended. */
  take(position: number, n: number): Uint8Array {
    if (position !== this.position) throw new Error(`weight group ${this.plan.group + 1}: output chunks made out of order (at ${this.position}, asked for ${position})`);
    const out = new Uint8Array(n);
    for (let filled = 0; filled < n;) {
      const p = this.plan.parts[this.part];
      if (!p) throw new Error(`weight group ${this.plan.group + 1}: the output ended ${n - filled} bytes early`);
      const k = Math.min(n - filled, p.bytes - this.at);
      if (p.kind === 'copy') {
        readStream(this.model.groups[this.plan.group], p.offset + this.at, out.subarray(filled, filled + k), this.model.path);
      } else if (k > 0) {
        out.set(this.current(p).subarray(this.at, this.at + k), filled);
      }
      filled += k;
      this.at += k;
      if (this.at === p.bytes) this.next();
    }
    this.position += n;
    return out;
  }

  /** After the last chunk: every part made (empty ones too), none left over. */
  finish(): void {
    while (this.part < this.plan.parts.length) {
      const p = this.plan.parts[this.part];
      if (p.bytes !== this.at) throw new Error(`weight group ${this.plan.group + 1}: ${p.bytes - this.at} bytes of output were never written`);
      this.next();
    }
  }

  private current(p: Part & { kind: 'make' }): Uint8Array {
    if (!this.made) {
      this.made = p.make();
      if (this.made.length !== p.bytes) throw new Error(`weight group ${this.plan.group + 1}: a tensor planned as ${p.bytes} bytes came out as ${this.made.length}`);
    }
    return this.made;
  }

  private next(): void {
    const p = this.plan.parts[this.part];
    if (p.kind === 'make') this.current(p); // an empty tensor is made all the same (its spec may wait for it)
    this.made = null;
    this.at = 0;
    this.part++;
  }
}

function checkValues(model: TfjsModel, values: ReadonlyMap<string, Float32Array>): void {
  for (const name of values.keys()) {
    const w = model.byName.get(name);
    if (!w) throw new Error(`no weight "${name}" in the manifest`);
    if (w.dtype !== 'float32') throw new Error(`weight "${name}" is not a float32 tensor`);
  }
}

/**
 * Keep mode: every group keeps its size, shards and their names; a changed tensor's bytes are
 * re-encoded in place and, when re-quantized, its "min" and "scale" replaced in model.json.
 */
function planKeep(model: TfjsModel, values: ReadonlyMap<string, Float32Array>): Planned {
  const edits: TextEdit[] = [];
  let root: JsonSpan | null = null;
  const make = (w: WeightEntry) => (): Uint8Array => {
    const v = values.get(w.name)!;
    const bytes = readWeightBytes(model, w);
    const old = decodeFloats(w.storage, bytes);
    if (old.length !== v.length) throw new Error(`weight "${w.name}" is not a float32 tensor of ${v.length} values`);
    if (sameValues(old, v)) return bytes; // untouched: the original bytes stay, bit for bit
    const enc = encodeFloats(w.storage, v);
    if (enc.bytes.length !== w.byteLength) throw new Error(`re-encoding "${w.name}" changed its size`);
    if (enc.storage.kind === 'affine') {
      root ??= jsonSpans(model.text);
      for (const key of ['min', 'scale'] as const) {
        const span = spanAt(root, ['weightsManifest', w.group, 'weights', w.index, 'quantization', key]);
        if (!span || span.kind !== 'scalar') throw new Error(`no quantization ${key} for "${w.name}" in model.json`);
        edits.push({ start: span.start, end: span.end, text: numberText(enc.storage[key]) });
      }
    }
    return enc.bytes;
  };
  const groups = model.groups.map((g, gi): GroupPlan => {
    const parts: Part[] = [];
    let at = 0;
    for (const w of model.weights) {
      if (w.group !== gi || !values.has(w.name)) continue;
      pushCopy(parts, at, w.offset - at);
      parts.push({ kind: 'make', bytes: w.byteLength, make: make(w) });
      at = w.offset + w.byteLength;
    }
    // The rest, bytes after the last weight included: an untouched group is its shards, byte for byte.
    pushCopy(parts, at, g.bytes - at);
    return { group: gi, parts, paths: g.shards.map((s) => s.relative), sizes: g.shards.map((s) => s.bytes) };
  });
  return { groups, text: () => applyEdits(model.text, edits) };
}

/**
 * A group's new size cut into shards of its largest original shard size: the original names when
 * the count is unchanged, else tfjs-converter's "group<g>-shard<k>of<n>.bin".
 */
function reshard(model: TfjsModel, gi: number, parts: Part[]): GroupPlan {
  const total = parts.reduce((a, p) => a + p.bytes, 0);
  const old = model.groups[gi].shards;
  const shardBytes = Math.max(maxOf(old.map((s) => s.bytes)), 0) || DEFAULT_SHARD_BYTES;
  const count = Math.max(1, Math.ceil(total / shardBytes));
  const paths = count === old.length ? old.map((s) => s.relative) : Array.from({ length: count }, (_, k) => `group${gi + 1}-shard${k + 1}of${count}.bin`);
  const sizes = Array.from({ length: count }, (_, k) => (k === count - 1 ? total - k * shardBytes : shardBytes));
  return { group: gi, parts, paths, sizes };
}

function quantizationOf(s: Storage): Record<string, unknown> | undefined {
  switch (s.kind) {
    case 'plain': return undefined;
    case 'affine': return { dtype: s.dtype, min: s.min, scale: s.scale };
    case 'float16': return { dtype: 'float16' };
  }
}

/** Whether a tensor's bytes are written as they are, unless it gets new values. */
const keepsBytes = (w: WeightEntry, mode: WeightStorageOption) => mode === 'keep' || w.storage.kind === 'plain';

/** A tensor's size as written: its own in its own storage (`keep`, or plain), else 4 bytes a value. */
function writtenBytes(w: WeightEntry, mode: WeightStorageOption): number {
  return keepsBytes(w, mode) ? w.byteLength : elementCount(w.shape) * 4;
}

/**
 * A tensor's bytes and storage as written: in its own storage (`keep`; untouched values keep their
 * bytes) or float32. Quantized int32 tensors become the integers TF.js loads (tfjs-core decodeWeight).
 */
function encoded(model: TfjsModel, w: WeightEntry, v: Float32Array | undefined, mode: WeightStorageOption): { bytes: Uint8Array; storage: Storage } {
  const bytes = readWeightBytes(model, w);
  if (keepsBytes(w, mode)) {
    if (!v || w.dtype !== 'float32' || sameValues(decodeFloats(w.storage, bytes), v)) return { bytes, storage: w.storage };
    return encodeFloats(mode === 'keep' ? w.storage : { kind: 'plain', dtype: 'float32' }, v);
  }
  if (w.dtype === 'int32') {
    const f = decodeFloats(w.storage, bytes);
    return { bytes: new Uint8Array(Int32Array.from(f, (x) => Math.round(x)).buffer), storage: { kind: 'plain', dtype: 'int32' } };
  }
  return encodeFloats({ kind: 'plain', dtype: 'float32' }, v ?? decodeFloats(w.storage, bytes));
}

/**
 * A manifest entry's part: its input bytes when they stay, else the tensor made when its turn
 * comes; `stored` hears the storage it was written in (then, not before).
 */
function entryPart(model: TfjsModel, w: WeightEntry, values: ReadonlyMap<string, Float32Array>, mode: WeightStorageOption, stored: (s: Storage) => void): Part {
  if (!values.has(w.name) && keepsBytes(w, mode)) {
    stored(w.storage);
    return { kind: 'copy', offset: w.offset, bytes: w.byteLength };
  }
  return {
    kind: 'make',
    bytes: writtenBytes(w, mode),
    make: () => {
      const enc = encoded(model, w, values.get(w.name), mode);
      stored(enc.storage);
      return enc.bytes;
    },
  };
}

/**
 * A decomposed kernel's part: its pieces (cut from the kernel encoded once, so that pieces share
 * its range and each value is the masked kernel's) and the int32 constants of the rewrite, in the
 * manifest's order. The pieces' specs get their quantization when the kernel is made.
 */
function replacedPart(model: TfjsModel, w: WeightEntry, rest: Record<string, unknown>, added: AddedWeight[], values: ReadonlyMap<string, Float32Array>, mode: WeightStorageOption, specs: Record<string, unknown>[]): Part {
  const block = positionBlock(w.shape);
  const bytesPerValue = mode === 'keep' ? elementBytes(w.storage) : 4;
  const pieceSpecs: Record<string, unknown>[] = [];
  let total = 0;
  for (const a of added) {
    if (a.kind === 'int32') {
      specs.push({ name: a.name, shape: a.shape, dtype: 'int32' });
      total += a.values.byteLength;
      continue;
    }
    if (a.of !== w.name) throw new Error(`piece "${a.name}" is cut from "${a.of}" but replaces "${w.name}"`);
    const spec = { ...rest, name: a.name, shape: a.shape };
    specs.push(spec);
    pieceSpecs.push(spec);
    total += a.positions.length * block * bytesPerValue;
  }
  return {
    kind: 'make',
    bytes: total,
    make: () => {
      const out = new Uint8Array(total);
      let at = 0;
      let kernel: { bytes: Uint8Array; storage: Storage } | null = null;
      let piece = 0;
      for (const a of added) {
        if (a.kind === 'int32') {
          out.set(new Uint8Array(a.values.buffer, a.values.byteOffset, a.values.byteLength), at);
          at += a.values.byteLength;
          continue;
        }
        kernel ??= encoded(model, w, values.get(w.name), mode);
        const q = quantizationOf(kernel.storage);
        if (q) pieceSpecs[piece].quantization = q;
        piece++;
        const bytes = sliceKernel(kernel.bytes, block, a.positions, elementBytes(kernel.storage));
        if (at + bytes.length > total) throw new Error(`the pieces of "${w.name}" are larger than planned`);
        out.set(bytes, at);
        at += bytes.length;
      }
      if (at !== total) throw new Error(`the pieces of "${w.name}" are ${at} bytes, not ${total}`);
      return out;
    },
  };
}

/** The manifest and shards for a layout rewrite; model.json keeps every field but the two replaced. */
function planRewrite(model: TfjsModel, values: ReadonlyMap<string, Float32Array>, rewrite: TopologyRewrite, mode: WeightStorageOption): Planned {
  const manifest = model.json.weightsManifest as Record<string, unknown>[];
  const specsOf: Record<string, unknown>[][] = [];
  const plans = manifest.map((group, gi) => {
    const entries = model.weights.filter((w) => w.group === gi);
    const parts: Part[] = [];
    const specs: Record<string, unknown>[] = [];
    (group.weights as Record<string, unknown>[]).forEach((spec, i) => {
      const w = entries[i];
      const { quantization: old, ...rest } = spec;
      const added = rewrite.replace.get(w.name);
      if (added) {
        parts.push(replacedPart(model, w, rest, added, values, mode, specs));
        return;
      }
      const out: Record<string, unknown> = { ...rest, name: rewrite.rename.get(w.name) ?? w.name };
      specs.push(out);
      const part = entryPart(model, w, values, mode, (s) => {
        const q = quantizationOf(s);
        // A range that stays keeps the entry's other quantization fields.
        if (q) out.quantization = { ...(typeof old === 'object' && old ? old : {}), ...q };
      });
      if (part.kind === 'copy') pushCopy(parts, part.offset, part.bytes);
      else parts.push(part);
    });
    specsOf.push(specs);
    return reshard(model, gi, parts);
  });
  const text = () => {
    const groups = manifest.map((group, gi) => ({ ...group, paths: plans[gi].paths, weights: specsOf[gi] }));
    const root = jsonSpans(model.text);
    const edits: TextEdit[] = [];
    for (const [key, value] of [['modelTopology', rewrite.topology], ['weightsManifest', groups]] as const) {
      const span = spanAt(root, [key]);
      if (!span) throw new Error(`model.json has no ${key}`);
      edits.push({ start: span.start, end: span.end, text: stringifyLike(value, model.text) });
    }
    return applyEdits(model.text, edits);
  };
  return { groups: plans, text };
}

/** Every weight stored as float32: plain tensors keep their spec, quantized ones lose "quantization". */
function planFloat32(model: TfjsModel, values: ReadonlyMap<string, Float32Array>): Planned {
  const manifest = model.json.weightsManifest as Record<string, unknown>[];
  const specsOf: Record<string, unknown>[][] = [];
  const plans = manifest.map((group, gi) => {
    const entries = model.weights.filter((w) => w.group === gi);
    const parts: Part[] = [];
    specsOf.push((group.weights as Record<string, unknown>[]).map((spec, i) => {
      const w = entries[i];
      const part = entryPart(model, w, values, 'float32', () => {});
      if (part.kind === 'copy') pushCopy(parts, part.offset, part.bytes);
      else parts.push(part);
      if (w.storage.kind === 'plain') return spec;
      const { quantization: _dropped, ...rest } = spec;
      return rest;
    }));
    return reshard(model, gi, parts);
  });
  const text = () => {
    const groups = manifest.map((group, gi) => ({ ...group, paths: plans[gi].paths, weights: specsOf[gi] }));
    const span = spanAt(jsonSpans(model.text), ['weightsManifest']);
    if (!span) throw new Error('model.json has no weightsManifest');
    return applyEdits(model.text, [{ start: span.start, end: span.end, text: stringifyLike(groups, model.text) }]);
  };
  return { groups: plans, text };
}

/**
 * Writes the model to `outPath` (a .json file; its folder is created when missing) with new values
 * for some float32 weights, given in the manifest's layout, and a layout rewrite if any. Returns
 * every file written, the model last.
 */
export async function writeTfjsModel(model: TfjsModel, values: ReadonlyMap<string, Float32Array>, outPath: string, options: TfjsWriteOptions = {}, rewrite: TopologyRewrite | null = null, tx?: OutputTransaction): Promise<{ files: string[]; storage: string }> {
  if (!/\.json$/i.test(outPath)) {
    throw new KpruneError('usage', `output "${outPath}" should be a .json file for a TF.js model`, { suggestion: 'e.g. -o out/model.json' });
  }
  const outDir = path.dirname(path.resolve(outPath));
  const mode = options.weights ?? 'keep';
  checkValues(model, values);
  const planned = rewrite ? planRewrite(model, values, rewrite, mode) : mode === 'keep' ? planKeep(model, values) : planFloat32(model, values);

  const pending: PendingFile[] = [];
  const streams: PartStream[] = [];
  for (const g of planned.groups) {
    const stream = new PartStream(model, g);
    streams.push(stream);
    let start = 0;
    g.paths.forEach((p, k) => {
      const chunks: Chunk[] = [];
      for (let done = 0; done < g.sizes[k]; done += CHUNK_BYTES) {
        const at = start + done;
        const n = Math.min(CHUNK_BYTES, g.sizes[k] - done);
        chunks.push(() => stream.take(at, n));
      }
      start += g.sizes[k];
      pending.push({ path: resolveInside(outDir, p, `weightsManifest[${g.group}] path`, model.path), data: chunks, role: 'a weight shard of the output model' });
    });
  }
  // model.json last: by then every shard is written and every new quantization range known.
  pending.push({
    path: path.resolve(outPath),
    data: [() => {
      for (const s of streams) s.finish();
      return new Uint8Array(Buffer.from(planned.text(), 'utf8'));
    }],
  });

  // The run's transaction checks that no file written is one read (a shard of the same name in
  // the input's folder would be), creates the output folder when missing, and removes it on failure.
  await inTransaction(tx, modelFiles(model), async (t) => {
    t.dropGroup('model');
    for (const f of pending) t.declare({ path: f.path, role: f.role ?? 'the output model', root: outDir, createRoot: true, group: 'model' });
    // An error while making a chunk (a bug, a shard that changed) comes out as it was thrown.
    for (const f of pending) await t.write(f.path, f.data);
  });
  const kinds = new Set(model.weights.map((w) => (mode === 'float32' ? (w.dtype === 'float32' ? 'float32' : w.dtype) : storageName(w.storage))));
  return { files: pending.map((f) => f.path), storage: [...kinds].join(', ') };
}
