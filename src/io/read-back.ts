/**
 * Reading a written file back against what it was written from, streaming, in a few MiB of memory:
 * chunks given as bytes (views into an input: the copied parts of a model) are compared byte for
 * byte (a memcmp: a SHA-256 over all 553 MB of a model on both sides cost ~1.2 s of CPU, this
 * ~0.1 s); chunks made by functions when written (new tensors, shards, external data; the makers
 * may be single-use) by the SHA-256 of the bytes made, taken while they were written; chunks copied
 * from an input file (file-range.ts) against that file, block by block, the same way.
 */
import { createHash } from 'node:crypto';
import { Chunk } from './cleanup.js';
import { COPY_BLOCK, RangeReader, isFileRange } from './file-range.js';
import { SequentialReader } from './direct.js';

const BLOCK = COPY_BLOCK;

/** A chunk made when written: its length and SHA-256. */
export interface MadeChunk {
  length: number;
  sha256: string;
}

export function madeChunk(bytes: Uint8Array): MadeChunk {
  return { length: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') };
}

/**
 * How chunks copied from an input file are checked: `compare`, read back and compared with the
 * input block by block; `stamp`, not read back (the copy read them from the input and wrote them
 * whole; the input's stamp, checked at each block of the copy, is checked again here), so that a
 * reshaped model's read-back reads what kprune changed and its structure, not the hundreds of MB it
 * copied (issue 15: "verification reads back only what changed").
 */
export type CopiedCheck = 'compare' | 'stamp';

/**
 * Whether `file` holds exactly `data`'s chunks, the made ones as recorded in `made` (by index);
 * `direct`: read around the page cache, as it was written (direct.ts).
 */
export function readsBackAs(file: string, data: Uint8Array | Chunk[], made: ReadonlyMap<number, MadeChunk>, direct = false, copied: CopiedCheck = 'compare'): boolean {
  const staged = new SequentialReader(file, direct);
  const inputs = new RangeReader();
  try {
    // The next `length` bytes a piece at a time; false at a short read or when `each` says so.
    const scan = (length: number, each: (piece: Uint8Array, done: number) => boolean): boolean => {
      for (let done = 0; done < length;) {
        const piece = staged.take(Math.min(BLOCK, length - done));
        if (piece.length === 0 || !each(piece, done)) return false;
        done += piece.length;
      }
      return true;
    };
    const same = (a: Uint8Array, b: Uint8Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(b);
    for (const [i, chunk] of (Array.isArray(data) ? data : [data]).entries()) {
      if (isFileRange(chunk) && copied === 'stamp') {
        inputs.check(chunk);
        staged.skip(chunk.length);
        continue;
      }
      if (isFileRange(chunk)) {
        // The input is read again here: a change to it since it was loaded throws (file-range.ts).
        if (!scan(chunk.length, (piece, done) => same(piece, inputs.read(chunk, done, piece.length)))) return false;
        continue;
      }
      if (typeof chunk === 'function') {
        const m = made.get(i);
        if (!m) return false;
        const hash = createHash('sha256');
        if (!scan(m.length, (piece) => (hash.update(piece), true)) || hash.digest('hex') !== m.sha256) return false;
        continue;
      }
      const want = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
      if (!scan(want.length, (piece, done) => same(piece, want.subarray(done, done + piece.length)))) return false;
    }
    // Nothing after the last chunk.
    if (staged.take(1).length !== 0) return false;
    inputs.close();
    return true;
  } finally {
    staged.close();
    try {
      inputs.close();
    } catch {
      // Closed above on success; after a failure, the failure is what counts.
    }
  }
}
