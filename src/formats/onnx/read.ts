/**
 * Reading an ONNX file: detection, decoding, the constant tensors wherever they live (initializers,
 * `Constant` nodes, external data files inside the model's folder), with errors that say which.
 */
import { closeSync, openSync, promises as fs, readSync, realpathSync } from 'node:fs';
import path from 'node:path';
import { KpruneError, reasonOf } from '../../errors.js';
import { isInside } from '../../io/identity.js';
import { GraphProto, ModelProto, TensorProto, onnx, toNumber } from './proto.js';
import { TensorRef, bytesToFloats, describeTensor, elementCount, inlineFloats } from './tensor.js';
import { scanFields } from './wire.js';
import { NESTED, Payload, Skeleton, markedPayload, readSkeleton } from './skeleton.js';
import { checkLimit } from '../../util/limits.js';
import { LITTLE_ENDIAN } from '../../util/float-bytes.js';
import { fileStamp } from '../../io/file-range.js';

export interface OnnxModel {
  format: 'onnx';
  path: string;
  dir: string;
  /** The file's bytes as read; the writer splices edits into them. */
  bytes: Uint8Array;
  proto: ModelProto;
  graph: GraphProto;
  /** Initializers and `Constant` node outputs, by value name. */
  constants: Map<string, TensorRef>;
  /**
   * External data files by their `location`: where each is and how long. Their bytes are read one
   * tensor at a time when asked for (`externalBytes`), never held whole, so a model of any size
   * is pruned in memory near its largest tensor.
   */
  externalFiles: Map<string, ExternalFile>;
  opsets: { domain: string; version: number }[];
  /**
   * Set when the model was read without its large inline payloads (`lazy`, skeleton.ts): `bytes`
   * is then the skeleton, tensors know where their bytes are in the file (`TensorRef.inFile`), and
   * the model can be checked and measured, never written or run.
   */
  payloads?: Payload[];
  /**
   * Set when read with `stream`: the file's bytes at their own offsets, without the payloads
   * (Skeleton.image). The writer walks it as the file and copies the payloads from the file.
   */
  image?: Uint8Array;
  /** With `stream`: the model file's fileStamp when read (io/file-range.ts). */
  stamp?: string;
}

export interface ReadOptions {
  /** Leave inline raw_data of 64 KiB or more in the file, read when asked (see skeleton.ts). */
  lazy?: boolean;
  /**
   * With `lazy`: also keep the file's structure at its own offsets (Skeleton.image), so that the
   * model can be written, streaming its unchanged payloads from the file; it still cannot be run.
   */
  stream?: boolean;
  /** With `lazy`: the smallest raw_data left in the file (default 64 KiB; tests go lower). */
  lazyMinBytes?: number;
}

/** Refuses a model read lazily where the file's own bytes are needed (writing, running it). */
export function assertWhole(model: OnnxModel, what: string, streamed = false): void {
  if (model.payloads && !(streamed && model.image)) throw new Error(`internal: ${what} needs the whole model, which was read without its payloads (lazy)`);
}

export interface ExternalFile {
  /** The resolved (symlink-free) path, checked to lie inside the model's folder. */
  path: string;
  bytes: number;
  /**
   * The file's identity ("device:inode"): two locations spelt differently (`w.bin`, `./w.bin`, a
   * link) that lead to one file share it, and the writer gives them one output data file.
   */
  identity: string;
  /** Its fileStamp when loaded: a data file that changes before it is copied is an error. */
  stamp: string;
}

/** The file's bytes (the first `limit` of them when given), with errors that say why not. */
async function readBytes(file: string, limit?: number): Promise<Uint8Array> {
  try {
    const stat = await fs.stat(file);
    if (stat.isDirectory()) throw new KpruneError('usage', 'is a directory, not an ONNX file', { file });
    if (limit !== undefined) return readRange(file, 0, Math.min(limit, stat.size), 'the model', file);
    return await fs.readFile(file);
  } catch (e) {
    if (e instanceof KpruneError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new KpruneError('not-found', 'no such file', { file, cause: e });
    throw new KpruneError('io', `cannot read (${code ?? String(e)})`, { file, cause: e });
  }
}

/**
 * The messages the byte-splicing writer walks into (NESTED, skeleton.ts), checked once here, so
 * that a malformed nested message is a clear error at load, never a crash at write.
 */
function checkWire(bytes: Uint8Array, start: number, end: number, kind: string): void {
  for (const f of scanFields(bytes, start, end)) {
    const child = NESTED[kind][f.field];
    if (child && f.wire === 2) checkWire(bytes, f.dataStart, f.dataEnd, child);
  }
}

function decode(bytes: Uint8Array, file: string): ModelProto {
  if (bytes.length === 0) throw new KpruneError('bad-model', 'empty file, not an ONNX model', { file });
  let proto: ModelProto;
  try {
    // A wire-level walk first: it catches truncation and damage precisely, and the writer relies on it.
    checkWire(bytes, 0, bytes.length, 'model');
    proto = onnx.ModelProto.decode(bytes);
  } catch (e) {
    // A ModelProto starts with ir_version (field 1, varint): tag byte 0x08.
    const looksOnnx = bytes[0] === 0x08;
    const why = reasonOf(e, file);
    throw new KpruneError('bad-model', looksOnnx ? `truncated or corrupt ONNX file (${why})` : `not an ONNX model (the bytes are not a protobuf ModelProto: ${why})`, { file, cause: e });
  }
  if (!proto.graph || toNumber(proto.irVersion) <= 0) {
    throw new KpruneError('bad-model', 'not an ONNX model (no graph or no IR version)', { file });
  }
  if (!proto.opsetImport || proto.opsetImport.length === 0) {
    throw new KpruneError('bad-model', 'truncated or corrupt ONNX file (no opset import)', { file });
  }
  return proto;
}

/** Resolves an external data location inside the model's folder, refusing anything that escapes it. */
export function resolveInside(dir: string, location: string, file: string): string {
  const unsafe = (why: string) => new KpruneError('unsafe-path', `external data location "${location}" ${why}`, {
    file, suggestion: 'external data must be a relative path inside the model\'s folder',
  });
  if (path.isAbsolute(location) || /^[a-zA-Z]:[\\/]/.test(location)) throw unsafe('is absolute');
  const resolved = path.resolve(dir, location);
  if (!isInside(dir, resolved)) throw unsafe('escapes the model\'s folder');
  let real: string;
  try {
    real = realpathSync(resolved);
  } catch (e) {
    throw new KpruneError('bad-model', `external data file "${location}" is missing`, { file, cause: e });
  }
  const realDir = realpathSync(dir);
  if (!isInside(realDir, real)) throw unsafe('resolves through a link outside the model\'s folder');
  return real;
}

/**
 * One value name, one tensor. Two initializers (or an initializer and a Constant node) of one name
 * are ambiguous: onnx.checker refuses such a graph, onnxruntime runs the first, and a map keyed by
 * name would keep the last, so kprune would prune a tensor the runtime never uses.
 */
function addConstant(constants: Map<string, TensorRef>, name: string, ref: TensorRef | { node: string; opType?: string }, file: string): void {
  const first = constants.get(name);
  if (first) {
    const where = (r: TensorRef) => (r.origin.kind === 'constant' ? `Constant node "${r.origin.node}"` : r.origin.kind === 'sparse' ? 'a sparse tensor' : 'an initializer');
    const second = 'node' in ref ? `${ref.opType ?? 'Constant'} node "${ref.node}"` : where(ref);
    const which = where(first) === second && !second.includes(' node "') ? `${second.replace(/^an? /, 'two ')}s` : `${where(first)} and ${second}`;
    throw new KpruneError('bad-model', `tensor "${name}" is defined twice (${which}); a value name must be defined once`, {
      file, suggestion: 'onnx.checker refuses this model too; rename or remove one of them',
    });
  }
  if (!('node' in ref)) constants.set(name, ref);
}

/** describeTensor, with a skeleton's marker resolved to where the bytes are in the file. */
function describeStored(proto: TensorProto, origin: TensorRef['origin'], fallbackName: string, payloads: Payload[] | undefined): TensorRef {
  const ref = describeTensor(proto, origin, fallbackName);
  const inFile = payloads && ref.storage === 'raw_data' ? markedPayload(proto.rawData, payloads) : undefined;
  return inFile ? { ...ref, inFile } : ref;
}

function collectConstants(graph: GraphProto, file: string, payloads?: Payload[]): Map<string, TensorRef> {
  const constants = new Map<string, TensorRef>();
  for (const init of graph.initializer ?? []) {
    const ref = describeStored(init, { kind: 'initializer' }, '', payloads);
    if (!ref.name) throw new KpruneError('bad-model', 'an initializer has no name', { file });
    addConstant(constants, ref.name, ref, file);
  }
  for (const sparse of graph.sparseInitializer ?? []) {
    const ref = densifySparse(sparse, file);
    addConstant(constants, ref.name, ref, file);
  }
  for (const node of graph.node ?? []) {
    if (node.opType !== 'Constant' || (node.domain && node.domain !== 'ai.onnx')) continue;
    const value = (node.attribute ?? []).find((a) => a.name === 'value');
    const out = node.output?.[0];
    const sparse = (node.attribute ?? []).find((a) => a.name === 'sparse_value')?.sparseTensor;
    if (sparse && out) {
      addConstant(constants, out, densifySparse(sparse, file, out), file);
      continue;
    }
    if (!value?.t || !out) {
      // value_float, value_ints...: scalars, never conv weights; but never a second definition either.
      if (out) addConstant(constants, out, { node: node.name || out }, file);
      continue;
    }
    addConstant(constants, out, describeStored(value.t, { kind: 'constant', node: node.name || out }, out, payloads), file);
  }
  // Any other node writing one of these names makes it just as ambiguous (which value does a Conv read?).
  for (const node of graph.node ?? []) {
    if (node.opType === 'Constant' && (!node.domain || node.domain === 'ai.onnx')) continue;
    for (const out of node.output ?? []) {
      if (out && constants.has(out)) addConstant(constants, out, { node: node.name || out, opType: node.opType ?? '' }, file);
    }
  }
  return constants;
}

/**
 * A sparse initializer or Constant `sparse_value` (COO: values [nnz], indices int64 [nnz] linear or [nnz, rank]) as a dense
 * tensor, for analysis and measurement. Such weights are read, never rewritten in place.
 */
function densifySparse(sparse: NonNullable<GraphProto['sparseInitializer']>[number], file: string, valueName?: string): TensorRef {
  const values = sparse.values;
  const name = valueName ?? values?.name ?? '';
  const dims = (sparse.dims ?? []).map(toNumber);
  if (!values || !sparse.indices || !name) throw new KpruneError('bad-model', 'a sparse initializer lacks values, indices or a name', { file });
  const vref = describeTensor(values, { kind: 'initializer' }, name);
  const v = inlineFloats(vref);
  const idxRef = sparse.indices;
  const raw = idxRef.rawData && idxRef.rawData.length > 0 ? idxRef.rawData : null;
  if (dims.some((d) => !Number.isSafeInteger(d) || d < 0)) {
    throw new KpruneError('bad-model', `sparse tensor "${name}" has an invalid shape [${dims.join(', ')}]`, { file });
  }
  const count = elementCount(dims);
  // Made dense here: the file's few bytes may declare any size.
  checkLimit('tensorBytes', count * 4, `sparse tensor "${name}" of shape [${dims.join(', ')}] made dense`, file);
  const nnz = v.length;
  const rank = (idxRef.dims ?? []).length === 2 ? dims.length : 1;
  const index = (i: number, k: number): number => {
    const j = i * rank + k;
    if (raw) return Number(new DataView(raw.buffer, raw.byteOffset, raw.byteLength).getBigInt64(8 * j, true));
    return toNumber(idxRef.int64Data?.[j]);
  };
  const dense = new Float32Array(count);
  for (let i = 0; i < nnz; i++) {
    let flat = 0;
    if (rank === 1) flat = index(i, 0);
    else for (let k = 0; k < rank; k++) flat = flat * dims[k] + index(i, k);
    if (!(flat >= 0 && flat < count)) throw new KpruneError('bad-model', `sparse initializer "${name}" has an index outside its shape`, { file });
    dense[flat] = v[i];
  }
  const proto = { name, dims, dataType: 1, rawData: new Uint8Array(dense.buffer) };
  return { name, dims, dataType: 1, origin: { kind: 'sparse' }, storage: 'raw_data', proto };
}

export async function readOnnxModel(file: string, options: ReadOptions = {}): Promise<OnnxModel> {
  const skeleton = options.lazy ? await readSkeletonOf(file, options.lazyMinBytes, options.stream === true) : null;
  const bytes = skeleton ? skeleton.bytes : await readBytes(file);
  const proto = decode(bytes, file);
  const graph = proto.graph!;
  const dir = path.dirname(path.resolve(file));
  const constants = collectConstants(graph, file, skeleton?.payloads);
  const externalFiles = new Map<string, ExternalFile>();
  for (const ref of constants.values()) {
    if (ref.storage !== 'external') continue;
    const loc = ref.external!.location;
    if (!externalFiles.has(loc)) {
      const real = resolveInside(dir, loc, file);
      externalFiles.set(loc, { path: real, ...await fileSize(real, loc, file) });
    }
    const size = externalFiles.get(loc)!.bytes;
    const { offset, length } = ref.external!;
    if (offset + (length ?? 0) > size) {
      throw new KpruneError('bad-model', `tensor "${ref.name}" lies past the end of external file "${loc}" (needs ${offset + (length ?? 0)} bytes, has ${size})`, { file });
    }
  }
  const opsets = (proto.opsetImport ?? []).map((o) => ({ domain: o.domain ?? '', version: toNumber(o.version) }));
  return { format: 'onnx', path: file, dir, bytes, proto, graph, constants, externalFiles, opsets, ...(skeleton ? { payloads: skeleton.payloads, stamp: skeleton.stamp } : {}), ...(skeleton?.image ? { image: skeleton.image } : {}) };
}

/** The skeleton (skeleton.ts), with the errors readBytes and decode give for the whole file. */
async function readSkeletonOf(file: string, minBytes: number | undefined, image: boolean): Promise<Skeleton> {
  const head = await readBytes(file, 1);
  try {
    return readSkeleton(file, minBytes, { image });
  } catch (e) {
    if (!(e instanceof RangeError)) throw new KpruneError('io', `cannot read (${(e as NodeJS.ErrnoException).code ?? String(e)})`, { file, cause: e });
    const looksOnnx = head[0] === 0x08;
    throw new KpruneError('bad-model', looksOnnx ? `truncated or corrupt ONNX file (${e.message})` : `not an ONNX model (the bytes are not a protobuf ModelProto: ${e.message})`, { file, cause: e });
  }
}

/**
 * A model from bytes already in memory whose tensors are all inline (no external data), e.g. a
 * copy with some weights replaced (probe-bytes.ts): `file` is the model it came from, for errors.
 */
export function onnxModelFromBytes(bytes: Uint8Array, file: string): OnnxModel {
  const proto = decode(bytes, file);
  const graph = proto.graph!;
  const constants = collectConstants(graph, file);
  const external = [...constants.values()].find((r) => r.storage === 'external');
  if (external) throw new Error(`onnxModelFromBytes: tensor "${external.name}" has external data`);
  const opsets = (proto.opsetImport ?? []).map((o) => ({ domain: o.domain ?? '', version: toNumber(o.version) }));
  return { format: 'onnx', path: file, dir: path.dirname(path.resolve(file)), bytes, proto, graph, constants, externalFiles: new Map(), opsets };
}

async function fileSize(real: string, location: string, file: string): Promise<{ bytes: number; identity: string; stamp: string }> {
  try {
    const stat = await fs.stat(real, { bigint: true });
    if (!stat.isFile()) throw new KpruneError('bad-model', `external data "${location}" is not a regular file`, { file });
    return { bytes: Number(stat.size), identity: `${stat.dev}:${stat.ino}`, stamp: fileStamp(stat) };
  } catch (e) {
    if (e instanceof KpruneError) throw e;
    throw new KpruneError('io', `cannot read external data file "${location}" (${(e as NodeJS.ErrnoException).code ?? String(e)})`, { file, cause: e });
  }
}

/**
 * The bytes of an external tensor, read from its file now (synchronously: layers' weights are
 * getters). Nothing is cached; a caller that needs them twice keeps them.
 */
export function externalBytes(model: OnnxModel, ref: TensorRef): Uint8Array {
  const ext = ref.external!;
  const data = model.externalFiles.get(ext.location)!;
  const length = ext.length ?? data.bytes - ext.offset;
  return readRange(data.path, ext.offset, length, `external data file "${ext.location}"`, model.path);
}

/** Reads `length` bytes at `offset`; a file that shrank since loading is an error, not short data. */
export function readRange(real: string, offset: number, length: number, what: string, file: string, into?: Uint8Array): Uint8Array {
  const out = into ?? new Uint8Array(length);
  let fd: number;
  try {
    fd = openSync(real, 'r');
  } catch (e) {
    throw new KpruneError('io', `cannot open ${what} (${(e as NodeJS.ErrnoException).code ?? String(e)})`, { file, cause: e });
  }
  try {
    let done = 0;
    while (done < length) {
      // readSync reads at most 2 GiB - 1 at a time.
      const n = readSync(fd, out, done, Math.min(length - done, 0x40000000), offset + done);
      if (n === 0) throw new KpruneError('bad-model', `${what} ended early (changed since it was loaded?)`, { file });
      done += n;
    }
  } finally {
    closeSync(fd);
  }
  return out;
}

/** A constant tensor's values as float32 (float32, float16, bfloat16 and float64 tensors). */
export function tensorFloats(model: OnnxModel, ref: TensorRef): Float32Array {
  if (ref.inFile) {
    const count = elementCount(ref.dims);
    if (ref.dataType === onnx.TensorProto.DataType.FLOAT && LITTLE_ENDIAN && ref.inFile.length === count * 4) {
      // Read straight into the array: one copy of the bytes instead of two (the 3x3 weights an
      // analysis reads are most of its time).
      const values = new Float32Array(count);
      readRange(model.path, ref.inFile.offset, ref.inFile.length, 'the model', model.path, new Uint8Array(values.buffer));
      return values;
    }
    return bytesToFloats(readRange(model.path, ref.inFile.offset, ref.inFile.length, 'the model', model.path), ref.dataType, count, ref.name);
  }
  if (ref.storage === 'external') return bytesToFloats(externalBytes(model, ref), ref.dataType, elementCount(ref.dims), ref.name);
  return inlineFloats(ref);
}
