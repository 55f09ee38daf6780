/**
 * Protobuf at the wire level: where each field of a message sits in the bytes. kprune edits an
 * ONNX file by splicing: the fields it changes are re-encoded, every other byte is copied as it
 * was. That is how fields the generated schema does not know (newer ONNX versions, vendor
 * extensions) survive, which decoding and re-encoding with `onnx-proto` would drop.
 */
import protobuf from 'protobufjs/minimal.js';

export const WIRE_VARINT = 0;
export const WIRE_I64 = 1;
export const WIRE_LEN = 2;
export const WIRE_I32 = 5;

export interface WireField {
  field: number;
  wire: number;
  /** The whole field, tag included: [start, end). */
  start: number;
  end: number;
  /** The payload: for length-delimited fields, after the length prefix. */
  dataStart: number;
  dataEnd: number;
}

/** Lists the fields of the message in buf[start, end). Throws RangeError on malformed bytes. */
export function scanFields(buf: Uint8Array, start = 0, end = buf.length): WireField[] {
  const reader = protobuf.Reader.create(buf);
  reader.pos = start;
  reader.len = end;
  const fields: WireField[] = [];
  while (reader.pos < end) {
    const fieldStart = reader.pos;
    const tag = reader.uint32();
    const field = tag >>> 3;
    const wire = tag & 7;
    if (field === 0) throw new RangeError(`invalid field number 0 at byte ${fieldStart}`);
    let dataStart = reader.pos;
    if (wire === WIRE_LEN) {
      const len = reader.uint32();
      dataStart = reader.pos;
      if (len > end - dataStart) throw new RangeError(`field ${field} at byte ${fieldStart} claims ${len} bytes, ${end - dataStart} remain`);
      reader.pos = dataStart + len;
    } else {
      reader.skipType(wire);
    }
    if (reader.pos > end) throw new RangeError(`field ${field} at byte ${fieldStart} runs past the end of its message`);
    fields.push({ field, wire, start: fieldStart, end: reader.pos, dataStart, dataEnd: reader.pos });
  }
  return fields;
}

export function fieldString(buf: Uint8Array, f: WireField): string {
  return Buffer.from(buf.buffer, buf.byteOffset + f.dataStart, f.dataEnd - f.dataStart).toString('utf8');
}

/** A message under construction: a list of byte chunks, concatenated once at the end. */
export type Chunks = Uint8Array[];

export function chunksLength(chunks: Chunks): number {
  let n = 0;
  for (const c of chunks) n += c.length;
  return n;
}

/** Tag and length prefix of a length-delimited field, followed by its payload chunks. */
export function lengthDelimited(field: number, payload: Chunks): Chunks {
  const head = protobuf.Writer.create().uint32((field << 3) | WIRE_LEN).uint32(chunksLength(payload)).finish();
  return [head, ...payload];
}

/**
 * The same bytes in fewer chunks: runs of small chunks are copied together into blocks of at least
 * `block` bytes, large chunks stay as they are (views into the model, not copies), and anything
 * that is not bytes (a file range, copied when written) passes as it is. A graph of 100,000 small
 * fields is then written in a few hundred writes instead of 100,000.
 */
export function coalesce<T = never>(chunks: (Uint8Array | T)[], block = 1 << 16): (Uint8Array | T)[] {
  const out: (Uint8Array | T)[] = [];
  let run: Uint8Array[] = [];
  let runBytes = 0;
  const flush = () => {
    if (run.length === 1) out.push(run[0]);
    else if (run.length > 1) out.push(Buffer.concat(run, runBytes));
    run = [];
    runBytes = 0;
  };
  for (const c of chunks) {
    if (!(c instanceof Uint8Array) || c.length >= block) {
      flush();
      out.push(c);
      continue;
    }
    run.push(c);
    runBytes += c.length;
    if (runBytes >= block) flush();
  }
  flush();
  return out;
}

export function stringField(field: number, value: string): Chunks {
  return lengthDelimited(field, [Buffer.from(value, 'utf8')]);
}

export function packedVarints(field: number, values: ArrayLike<number>): Chunks {
  const w = protobuf.Writer.create();
  for (let i = 0; i < values.length; i++) w.uint32(values[i]);
  return lengthDelimited(field, [w.finish()]);
}

export function slice(buf: Uint8Array, f: WireField): Uint8Array {
  return buf.subarray(f.start, f.end);
}
