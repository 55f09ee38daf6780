/**
 * Reading an ONNX file's structure without its large inline payloads, for checking and measuring a
 * model (the read-back of a written model, `analyze --no-run`) in memory near its largest tensor
 * instead of its whole size: a VGG-16 with inline weights is 553 MB, of which 411 MB is one Gemm.
 *
 * The file is walked at the wire level through a small window (never read whole), into the
 * messages of the reader's NESTED table (model -> graph -> node -> attribute -> tensor, graph ->
 * initializer). Every field is copied as it is, except a tensor's raw_data of `minBytes` or more,
 * which becomes a 16-byte marker naming an entry of `payloads` (where the bytes are in the file);
 * the enclosing length prefixes are re-encoded. The result decodes with onnx-proto like the file,
 * and read.ts resolves the markers to file ranges (`TensorRef.inFile`), read when asked. Tensors
 * of sparse values keep their bytes (they are made dense at load anyway).
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { fileStamp } from '../../io/file-range.js';
import { WIRE_I32, WIRE_I64, WIRE_LEN, WIRE_VARINT, Chunks, chunksLength, lengthDelimited } from './wire.js';

export interface Payload {
  /** Byte offset of the raw_data payload in the file, and its length. */
  offset: number;
  length: number;
}

export interface Skeleton {
  /** A ModelProto: the file with each large raw_data replaced by a marker. */
  bytes: Uint8Array;
  /** In file order. */
  payloads: Payload[];
  /** The file's fileStamp (io/file-range.ts) when it was opened. */
  stamp: string;
  /**
   * With `image`: the file's bytes at their own offsets, except the payloads, whose bytes are never
   * read. The array is the file's size, but the pages behind the payloads are never touched, so
   * they cost address space, not memory: the byte-splicing writer walks this as it would the file,
   * and copies the payloads from the file as it writes (write.ts).
   */
  image?: Uint8Array;
}

const TENSOR_RAW_DATA = 9;
/** 12 bytes of magic, then the payload's index (uint32 little-endian). */
const MAGIC = Buffer.from('\0kprune-lazy', 'latin1');
const MARKER_BYTES = MAGIC.length + 4;

/** Which fields hold which messages (read.ts walks the same ones). */
export const NESTED: Record<string, Record<number, string>> = {
  model: { 7: 'graph' },
  graph: { 1: 'node', 5: 'tensor', 15: 'sparse' },
  node: { 5: 'attribute' },
  attribute: { 5: 'tensor', 10: 'tensor', 22: 'sparse', 23: 'sparse' },
  tensor: { 13: 'entry' },
  sparse: { 1: 'tensor', 2: 'tensor' },
  entry: {},
};

/** The payload a raw_data field stands for, if it is a marker of this skeleton. */
export function markedPayload(raw: Uint8Array | undefined | null, payloads: Payload[]): Payload | undefined {
  if (!raw || raw.length !== MARKER_BYTES) return undefined;
  for (let i = 0; i < MAGIC.length; i++) if (raw[i] !== MAGIC[i]) return undefined;
  return payloads[Buffer.from(raw.buffer, raw.byteOffset + MAGIC.length, 4).readUInt32LE(0)];
}

/** Random access to a file through one window of `size` bytes. */
class Window {
  private readonly buf: Buffer;
  private base = 0;
  private filled = 0;

  constructor(private readonly fd: number, readonly fileSize: number, size = 1 << 20) {
    this.buf = Buffer.alloc(size);
  }

  private at(pos: number): number {
    if (pos < this.base || pos >= this.base + this.filled) {
      this.base = pos;
      this.filled = readSync(this.fd, this.buf, 0, this.buf.length, pos);
      if (this.filled === 0) throw new RangeError(`unexpected end of file at byte ${pos}`);
    }
    return this.buf[pos - this.base];
  }

  /** A varint at pos: its value (up to 2^53) and the position after it. */
  varint(pos: number): [number, number] {
    let value = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      const b = this.at(pos++);
      value += (b & 0x7f) * scale;
      if (b < 0x80) return [value, pos];
      scale *= 128;
    }
    throw new RangeError(`invalid varint at byte ${pos - 10}`);
  }

  /** A copy of [start, end). */
  bytes(start: number, end: number): Uint8Array {
    const out = new Uint8Array(end - start);
    for (let done = 0; done < out.length;) {
      if (start + done >= this.base && end <= this.base + this.filled) {
        out.set(this.buf.subarray(start + done - this.base, end - this.base), done);
        break;
      }
      const n = readSync(this.fd, out, done, out.length - done, start + done);
      if (n === 0) throw new RangeError(`unexpected end of file at byte ${start + done}`);
      done += n;
    }
    return out;
  }
}

/** Reads the skeleton of the ONNX file at `file`. Throws RangeError on malformed bytes. */
export function readSkeleton(file: string, minBytes = 1 << 16, options: { image?: boolean } = {}): Skeleton {
  const fd = openSync(file, 'r');
  try {
    const stat = fstatSync(fd, { bigint: true });
    const w = new Window(fd, Number(stat.size));
    const payloads: Payload[] = [];
    const message = (kind: string, start: number, end: number, elide: boolean): Chunks => {
      const out: Chunks = [];
      for (let pos = start; pos < end;) {
        const fieldStart = pos;
        const [tag, afterTag] = w.varint(pos);
        const field = Math.floor(tag / 8);
        const wire = tag % 8;
        if (field === 0) throw new RangeError(`invalid field number 0 at byte ${fieldStart}`);
        pos = afterTag;
        if (wire === WIRE_LEN) {
          const [len, dataStart] = w.varint(pos);
          if (len > end - dataStart) throw new RangeError(`field ${field} at byte ${fieldStart} claims ${len} bytes, ${end - dataStart} remain`);
          pos = dataStart + len;
          const child = NESTED[kind][field];
          if (kind === 'tensor' && field === TENSOR_RAW_DATA && elide && len >= minBytes) {
            const marker = Buffer.alloc(MARKER_BYTES);
            MAGIC.copy(marker);
            marker.writeUInt32LE(payloads.push({ offset: dataStart, length: len }) - 1, MAGIC.length);
            for (const c of lengthDelimited(field, [marker])) out.push(c);
          } else if (child) {
            for (const c of lengthDelimited(field, message(child, dataStart, pos, elide && kind !== 'sparse'))) out.push(c);
          } else {
            out.push(w.bytes(fieldStart, pos));
          }
          continue;
        }
        if (wire === WIRE_VARINT) pos = w.varint(pos)[1];
        else if (wire === WIRE_I64) pos += 8;
        else if (wire === WIRE_I32) pos += 4;
        else throw new RangeError(`unsupported wire type ${wire} at byte ${fieldStart}`);
        if (pos > end) throw new RangeError(`field ${field} at byte ${fieldStart} runs past the end of its message`);
        out.push(w.bytes(fieldStart, pos));
      }
      return out;
    };
    const chunks = message('model', 0, w.fileSize, true);
    const skeleton: Skeleton = { bytes: Buffer.concat(chunks, chunksLength(chunks)), payloads, stamp: fileStamp(stat) };
    if (options.image) skeleton.image = imageOf(fd, w.fileSize, payloads);
    return skeleton;
  } finally {
    closeSync(fd);
  }
}

/** The file's bytes between the payloads, at their offsets in an array of the file's size. */
function imageOf(fd: number, size: number, payloads: Payload[]): Uint8Array {
  // Zero-filled and untouched: the kernel gives such pages memory only when written.
  const image = new Uint8Array(size);
  const fill = (start: number, end: number) => {
    for (let at = start; at < end;) {
      const n = readSync(fd, image, at, Math.min(end - at, 0x40000000), at);
      if (n === 0) throw new RangeError(`unexpected end of file at byte ${at}`);
      at += n;
    }
  };
  let at = 0;
  for (const p of payloads) {
    fill(at, p.offset);
    at = p.offset + p.length;
  }
  fill(at, size);
  return image;
}
