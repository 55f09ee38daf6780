/**
 * Writing an edited ONNX model. The original bytes are copied; only the data fields of the tensors
 * that changed (and the locations of external data, which moves to new files beside the output) are
 * re-encoded. Field order, unknown fields, doc strings, metadata and everything else stay
 * byte-identical, because they are never decoded and re-encoded.
 */
import path from 'node:path';
import { Chunk, PendingFile } from '../../io/atomic-write.js';
import { chunkLength } from '../../io/cleanup.js';
import type { FileRange } from '../../io/file-range.js';
import { countAsCopied, streamPayloads } from './stream-payloads.js';
import type { MadeLater } from './decompose.js';
import { OutputTransaction, inTransaction } from '../../io/transaction.js';
import { DataType, NodeProto, TensorProto, onnx } from './proto.js';
import { OnnxModel, assertWhole } from './read.js';
import { FLOAT_TYPES, TensorRef, bytesPerElement, elementCount, floatsToBytes } from './tensor.js';
import {
  Chunks, WIRE_LEN, WireField, coalesce, fieldString, lengthDelimited, packedVarints, scanFields, slice, stringField,
} from './wire.js';
import { floatToBfloat16, floatToHalf } from '../../util/half.js';
import { pushAll } from '../../util/arrays.js';

// Field numbers from onnx.proto.
const MODEL_GRAPH = 7;
const GRAPH_NODE = 1;
const GRAPH_INITIALIZER = 5;
const NODE_OUTPUT = 2;
const NODE_OP_TYPE = 4;
const NODE_ATTRIBUTE = 5;
const ATTR_NAME = 1;
const ATTR_T = 5;
const TENSOR_FLOAT_DATA = 4;
const TENSOR_INT32_DATA = 5;
const TENSOR_NAME = 8;
const TENSOR_RAW_DATA = 9;
const TENSOR_DOUBLE_DATA = 10;
const TENSOR_EXTERNAL_DATA = 13;
const ENTRY_KEY = 1;
const ENTRY_VALUE = 2;
const DATA_FIELDS = new Set([TENSOR_FLOAT_DATA, TENSOR_INT32_DATA, TENSOR_RAW_DATA, TENSOR_DOUBLE_DATA]);

export interface OnnxWriteResult {
  /** Every file written, the model last. */
  files: string[];
  modelBytes: number;
  /** Initializers whose data was copied as read (see WriteResult.copied). */
  copied: string[];
}

/** The new tensor data fields for an inline tensor, in its original storage. */
function encodeInline(ref: TensorRef, values: Float32Array): Chunks {
  switch (ref.storage) {
    case 'raw_data':
      return lengthDelimited(TENSOR_RAW_DATA, [floatsToBytes(values, ref.dataType)]);
    case 'float_data':
      return lengthDelimited(TENSOR_FLOAT_DATA, [floatsToBytes(values, DataType.FLOAT)]);
    case 'double_data':
      return lengthDelimited(TENSOR_DOUBLE_DATA, [floatsToBytes(values, DataType.DOUBLE)]);
    case 'int32_data': {
      const conv = ref.dataType === DataType.BFLOAT16 ? floatToBfloat16 : floatToHalf;
      return packedVarints(TENSOR_INT32_DATA, Array.from(values, conv));
    }
    case 'external':
      throw new Error('encodeInline called on an external tensor');
  }
}

interface TensorEdits {
  /** New values by tensor name (external ones are only looked up, their data is written apart). */
  values: ReadonlyMap<string, Float32Array>;
  refs: Map<string, TensorRef>;
  /** Old external location -> new one. */
  locations: Map<string, string>;
  /** New byte offsets of external tensors in their (compacted) new data files, by tensor name. */
  offsets: Map<string, number>;
  /** Lengths for external tensors that had no length entry and no longer end their file. */
  lengths: Map<string, number>;
}

/** Structural edits of the main graph (the slim layouts). Everything not named stays as it is. */
export interface GraphEdits {
  /** Nodes, by index in the graph's node list, replaced by these nodes (none: removed). */
  replaceNodes: Map<number, NodeProto[]>;
  /** New nodes written just before the node of this index, which itself stays as it is. */
  insertBefore: Map<number, NodeProto[]>;
  /** Initializers removed, by name. */
  dropInitializers: Set<string>;
  addInitializers: TensorProto[];
  /**
   * Added initializers whose data is made when written (decomposed pieces of external weights,
   * which go to the output's data file): they have no data until then.
   */
  madeLater: Map<TensorProto, MadeLater>;
}

export function emptyGraphEdits(): GraphEdits {
  return { replaceNodes: new Map(), insertBefore: new Map(), dropInitializers: new Set(), addInitializers: [], madeLater: new Map() };
}

function hasGraphEdits(e: GraphEdits): boolean {
  return e.replaceNodes.size + e.insertBefore.size + e.dropInitializers.size + e.addInitializers.length > 0;
}

/** Re-encodes a TensorProto if it changes; null when it stays as it is. */
function rewriteTensor(buf: Uint8Array, start: number, end: number, edits: TensorEdits, nameHint?: string): Chunks | null {
  const fields = scanFields(buf, start, end);
  const nameField = fields.find((f) => f.field === TENSOR_NAME && f.wire === WIRE_LEN);
  const name = nameField ? fieldString(buf, nameField) : nameHint ?? '';
  const ref = edits.refs.get(nameHint ?? name) ?? edits.refs.get(name);
  // External tensors' new values go to the data file; asking for them here would make them twice.
  const values = ref && ref.storage !== 'external' ? edits.values.get(ref.name) : undefined;
  const external = fields.some((f) => f.field === TENSOR_EXTERNAL_DATA);
  if (!values && !(external && edits.locations.size > 0)) return null;
  const out: Chunks = [];
  let dataWritten = false;
  for (const f of fields) {
    if (values && ref && ref.storage !== 'external' && DATA_FIELDS.has(f.field)) {
      if (!dataWritten) pushAll(out, encodeInline(ref, values));
      dataWritten = true;
      continue;
    }
    if (f.field === TENSOR_EXTERNAL_DATA && f.wire === WIRE_LEN) {
      pushAll(out, rewriteExternalEntry(buf, f, edits.locations, edits.offsets.get(name)));
      continue;
    }
    out.push(slice(buf, f));
  }
  if (values && ref && ref.storage !== 'external' && !dataWritten) pushAll(out, encodeInline(ref, values));
  // A tensor that had no offset entry (offset 0) but moved gets one.
  const hadOffset = fields.some((f) => f.field === TENSOR_EXTERNAL_DATA && entryKey(buf, f) === 'offset');
  const moved = edits.offsets.get(name);
  if (external && !hadOffset && moved !== undefined && moved !== 0) {
    pushAll(out, lengthDelimited(TENSOR_EXTERNAL_DATA, [...stringField(ENTRY_KEY, 'offset'), ...stringField(ENTRY_VALUE, String(moved))]));
  }
  // One that ran to the end of its file (no length entry) but is now followed by other data gets one.
  const length = edits.lengths.get(name);
  if (external && length !== undefined && !fields.some((f) => f.field === TENSOR_EXTERNAL_DATA && entryKey(buf, f) === 'length')) {
    pushAll(out, lengthDelimited(TENSOR_EXTERNAL_DATA, [...stringField(ENTRY_KEY, 'length'), ...stringField(ENTRY_VALUE, String(length))]));
  }
  return out;
}

function entryKey(buf: Uint8Array, entry: WireField): string {
  const key = scanFields(buf, entry.dataStart, entry.dataEnd).find((f) => f.field === ENTRY_KEY);
  return key ? fieldString(buf, key) : '';
}

function rewriteExternalEntry(buf: Uint8Array, entry: WireField, locations: Map<string, string>, offset: number | undefined): Chunks {
  const fields = scanFields(buf, entry.dataStart, entry.dataEnd);
  const key = fields.find((f) => f.field === ENTRY_KEY);
  const value = fields.find((f) => f.field === ENTRY_VALUE);
  if (!key || !value) return [slice(buf, entry)];
  const k = fieldString(buf, key);
  const to = k === 'location' ? locations.get(fieldString(buf, value)) : k === 'offset' && offset !== undefined ? String(offset) : undefined;
  if (to === undefined) return [slice(buf, entry)];
  const payload: Chunks = fields.map((f) => (f === value ? stringField(ENTRY_VALUE, to) : [slice(buf, f)])).flat();
  return lengthDelimited(TENSOR_EXTERNAL_DATA, payload);
}

function rewriteNode(buf: Uint8Array, start: number, end: number, edits: TensorEdits): Chunks | null {
  const fields = scanFields(buf, start, end);
  const op = fields.find((f) => f.field === NODE_OP_TYPE);
  if (!op || fieldString(buf, op) !== 'Constant') return null;
  const outField = fields.find((f) => f.field === NODE_OUTPUT);
  const output = outField ? fieldString(buf, outField) : '';
  let changed = false;
  const out: Chunks = [];
  for (const f of fields) {
    if (f.field === NODE_ATTRIBUTE && f.wire === WIRE_LEN) {
      const attrFields = scanFields(buf, f.dataStart, f.dataEnd);
      const nameF = attrFields.find((a) => a.field === ATTR_NAME);
      const tF = attrFields.find((a) => a.field === ATTR_T && a.wire === WIRE_LEN);
      if (nameF && tF && fieldString(buf, nameF) === 'value') {
        const t = rewriteTensor(buf, tF.dataStart, tF.dataEnd, edits, output);
        if (t) {
          changed = true;
          pushAll(out, lengthDelimited(NODE_ATTRIBUTE, attrFields.map((a) => (a === tF ? lengthDelimited(ATTR_T, t) : [slice(buf, a)])).flat()));
          continue;
        }
      }
    }
    out.push(slice(buf, f));
  }
  return changed ? out : null;
}

function rewriteGraph(buf: Uint8Array, start: number, end: number, edits: TensorEdits, graph: GraphEdits): Chunks | null {
  let changed = hasGraphEdits(graph);
  const out: Chunks = [];
  let nodeIndex = 0;
  for (const f of scanFields(buf, start, end)) {
    let sub: Chunks | null = null;
    if (f.wire === WIRE_LEN && f.field === GRAPH_NODE) {
      for (const n of graph.insertBefore.get(nodeIndex) ?? []) pushAll(out, lengthDelimited(GRAPH_NODE, [onnx.NodeProto.encode(n).finish()]));
      const replacement = graph.replaceNodes.get(nodeIndex++);
      if (replacement) {
        for (const n of replacement) pushAll(out, lengthDelimited(GRAPH_NODE, [onnx.NodeProto.encode(n).finish()]));
        continue;
      }
      sub = rewriteNode(buf, f.dataStart, f.dataEnd, edits);
    } else if (f.wire === WIRE_LEN && f.field === GRAPH_INITIALIZER) {
      if (graph.dropInitializers.size > 0) {
        const nameField = scanFields(buf, f.dataStart, f.dataEnd).find((t) => t.field === TENSOR_NAME);
        if (nameField && graph.dropInitializers.has(fieldString(buf, nameField))) continue;
      }
      sub = rewriteTensor(buf, f.dataStart, f.dataEnd, edits);
    }
    if (sub) {
      changed = true;
      pushAll(out, lengthDelimited(f.field, sub));
    } else {
      out.push(slice(buf, f));
    }
  }
  for (const t of graph.addInitializers) {
    if (graph.madeLater.has(t) && t.dataLocation !== 1) throw new Error(`internal: the data of "${t.name}" is made when written, but no data file took it`);
    pushAll(out, lengthDelimited(GRAPH_INITIALIZER, [onnx.TensorProto.encode(t).finish()]));
  }
  return changed ? out : null;
}

/**
 * The model's bytes with the edits spliced in. For a model read to stream (read.ts `stream`), the
 * payloads kept as they were are file ranges, copied from the input as written (stream-payloads.ts).
 */
export function rewriteModelBytes(
  model: OnnxModel,
  values: ReadonlyMap<string, Float32Array>,
  locations: Map<string, string>,
  graph: GraphEdits = emptyGraphEdits(),
  offsets: Map<string, number> = new Map(),
  lengths: Map<string, number> = new Map(),
): (Uint8Array | FileRange)[] {
  assertWhole(model, 'writing', true);
  const refs = new Map<string, TensorRef>();
  for (const [name, ref] of model.constants) if (values.has(ref.name)) refs.set(name, ref);
  for (const name of values.keys()) {
    if (!refs.has(name)) throw new Error(`no constant tensor named "${name}" to update`);
  }
  const edits: TensorEdits = { values, refs, locations, offsets, lengths };
  const buf = model.image ?? model.bytes;
  const out: Chunks = [];
  for (const f of scanFields(buf)) {
    const sub = f.field === MODEL_GRAPH && f.wire === WIRE_LEN ? rewriteGraph(buf, f.dataStart, f.dataEnd, edits, graph) : null;
    pushAll(out, sub ? lengthDelimited(MODEL_GRAPH, sub) : [slice(buf, f)]);
  }
  return coalesce<FileRange>(streamPayloads(model, out));
}

/** The size of a float tensor's raw little-endian encoding, which is what `floatsToBytes` makes. */
function encodedBytes(ref: TensorRef): number {
  const size = FLOAT_TYPES.has(ref.dataType) ? bytesPerElement(ref.dataType) : 0;
  if (!size) throw new Error(`no raw encoding for data type ${ref.dataType} of "${ref.name}"`);
  return elementCount(ref.dims) * size;
}

/** The size of an external tensor's stored bytes, as its entry (or the end of its file) says. */
function storedBytes(model: OnnxModel, ref: TensorRef): number {
  const ext = ref.external!;
  return ext.length ?? model.externalFiles.get(ext.location)!.bytes - ext.offset;
}

/**
 * The output's data files: one per input data file, however many locations spell it (`w.bin`,
 * `./w.bin`, a link to it: one identity, so one output file; two names for one file must never
 * become two writes of one output file). Each is named `<output stem>.<input data file name>`
 * beside the output model (`.data` appended to a name ending in `.onnx`), and numbered
 * `<stem>.<k>.<name>` when that name is taken: by another data file of the output, or by a file the
 * run reads or another of its outputs (a report). Names are compared ignoring case, for
 * case-insensitive file systems.
 */
export async function outputDataFiles(model: OnnxModel, outPath: string, takenByRun: (file: string) => Promise<boolean>): Promise<Map<string, { name: string; locations: string[] }>> {
  const stem = path.basename(outPath).replace(/\.onnx$/i, '');
  const used = new Set([path.basename(outPath).toLowerCase()]);
  const byFile = new Map<string, { name: string; locations: string[] }>();
  for (const [location, file] of model.externalFiles) {
    const known = byFile.get(file.identity);
    if (known) {
      known.locations.push(location);
      continue;
    }
    // The base name as the location spells it ("a\\w.bin" from a Windows tool: "w.bin"); never a path.
    const spelt = location.replace(/\\/g, '/').split('/').filter((p) => p !== '' && p !== '.' && p !== '..').pop() ?? 'data';
    // A name at the file system's limit (255 bytes) leaves no room for the stem: the input's name
    // must not make the output unwritable.
    const base = Buffer.byteLength(spelt) > 160 ? `data${path.extname(spelt).slice(0, 16)}` : spelt;
    // A data file never ends in .onnx (a location named "onnx" or "x.onnx"): tools would take it for a model.
    const nameFor = (k: number) => `${stem}.${k > 1 ? `${k}.` : ''}${base}${/\.onnx$/i.test(`.${base}`) ? '.data' : ''}`;
    let name = nameFor(1);
    for (let k = 2; used.has(name.toLowerCase()) || await takenByRun(path.join(path.dirname(outPath), name)); k++) name = nameFor(k);
    used.add(name.toLowerCase());
    byFile.set(file.identity, { name, locations: [location] });
  }
  return byFile;
}

/** The files of a loaded ONNX model: the model, then each data file once (by identity). */
export function onnxModelFiles(model: OnnxModel): string[] {
  const seen = new Set<string>();
  const data = [...model.externalFiles].filter(([, f]) => !seen.has(f.identity) && seen.add(f.identity));
  return [model.path, ...data.map(([location]) => path.join(path.dirname(model.path), location))];
}

/**
 * Initializers written with the data they were read with: not replaced, not dropped, and no name an
 * edit (a new node's output, an added initializer) gives to something else. Inline ones are copied
 * field by field, external ones chunk by chunk from their old data file.
 */
function copiedInitializers(model: OnnxModel, values: ReadonlyMap<string, Float32Array>, graph: GraphEdits): string[] {
  const touched = new Set<string>(graph.dropInitializers);
  for (const t of graph.addInitializers) touched.add(t.name ?? '');
  for (const nodes of [...graph.replaceNodes.values(), ...graph.insertBefore.values()]) for (const n of nodes) for (const o of n.output ?? []) touched.add(o);
  return [...model.constants.values()].filter((r) => r.origin.kind === 'initializer' && !values.has(r.name) && !touched.has(r.name)).map((r) => r.name);
}

/**
 * Writes the model with new values for some float tensors (same shapes, same element types) to
 * outPath with its external data (if any) copied beside it under new names: staged in the run's
 * transaction `tx`, or committed at once in a transaction of its own.
 */
export async function writeOnnxModel(model: OnnxModel, values: ReadonlyMap<string, Float32Array>, outPath: string, graph: GraphEdits = emptyGraphEdits(), tx?: OutputTransaction): Promise<OnnxWriteResult> {
  const out = path.resolve(outPath);
  return inTransaction(tx, onnxModelFiles(model), async (t) => {
    // A second write of the model in one run (the auto layout's fallback) replaces the first.
    t.dropGroup('model');
    const locations = new Map<string, string>();
    const offsets = new Map<string, number>();
    const lengths = new Map<string, number>();
    const pending: (PendingFile & { role: string })[] = [];
    const droppedExternal = [...graph.dropInitializers].map((n) => model.constants.get(n)).filter((r) => r?.storage === 'external');
    for (const { name, locations: locs } of (await outputDataFiles(model, out, (f) => t.taken(f, 'model'))).values()) {
      for (const loc of locs) locations.set(loc, name);
      // The new data file holds the tensors that remain, packed in their old order, plus the data of
      // tensors added in place of external ones (decomposed pieces): nothing dropped is carried along.
      // Each new tensor is made from its new values only when written; the others are copied from
      // the input file a few MiB at a time, their non-zeros counted as they pass: memory stays near
      // the changed tensors whatever the size of the file.
      const chunks: Chunk[] = [];
      let at = 0;
      const kept = [...model.constants.values()]
        .filter((r) => r.storage === 'external' && locs.includes(r.external!.location) && !graph.dropInitializers.has(r.name))
        .sort((a, b) => a.external!.offset - b.external!.offset);
      for (const ref of kept) {
        const replaced = values.has(ref.name);
        offsets.set(ref.name, at);
        const stored = storedBytes(model, ref);
        const data = model.externalFiles.get(ref.external!.location)!;
        chunks.push(replaced ? () => floatsToBytes(values.get(ref.name)!, ref.dataType) : {
          kind: 'file-range', file: data.path, offset: ref.external!.offset, length: stored, stamp: data.stamp, onBlock: countAsCopied(model, ref, stored),
        });
        at += replaced ? encodedBytes(ref) : stored;
        if (ref.external!.length === undefined) lengths.set(ref.name, at - offsets.get(ref.name)!);
      }
      for (const added of graph.addInitializers) {
        const from = droppedExternal.find((r) => locs.includes(r!.external!.location) && (added.name ?? '').startsWith(`${r!.name}/kp_`));
        const later = graph.madeLater.get(added);
        if (!from || (!added.rawData && !later)) continue;
        const bytes = later ? later.bytes : added.rawData!.length;
        added.externalData = [{ key: 'location', value: name }, { key: 'offset', value: String(at) }, { key: 'length', value: String(bytes) }];
        added.dataLocation = 1;
        chunks.push(later ? later.make : added.rawData!);
        at += bytes;
        added.rawData = new Uint8Array(0);
      }
      // A tensor without a length entry runs to the end of its file: it keeps that form only while
      // it is still last in the new file.
      for (const ref of kept) if (ref.external!.length === undefined && offsets.get(ref.name)! + lengths.get(ref.name)! === at) lengths.delete(ref.name);
      pending.push({ path: path.join(path.dirname(out), name), data: chunks, role: 'a data file of the output model' });
    }
    pending.push({ path: out, data: rewriteModelBytes(model, values, locations, graph, offsets, lengths), role: 'the output model' });
    for (const p of pending) t.declare({ path: p.path, role: p.role, group: 'model' });
    for (const p of pending) await t.write(p.path, p.data);
    const modelBytes = (pending[pending.length - 1].data as Chunk[]).reduce((a, c) => a + chunkLength(c), 0);
    return { files: pending.map((p) => p.path), modelBytes, copied: copiedInitializers(model, values, graph) };
  });
}
