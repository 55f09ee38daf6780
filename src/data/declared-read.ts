/**
 * Reading a stretch of a data file (optionally inflating it) whose size is declared by its own
 * first bytes: an .npy header, an IDX header. The header is read first, the declared size checked
 * against the data limit (src/util/limits.ts), and only then is memory of that size allocated; the
 * inflation streams, and stops as soon as the declared bytes are in. A 2 MB zip bomb therefore
 * costs at most the limit, and a file that inflates to more than its header declares costs no more
 * than the header says.
 */
import { createReadStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { createGunzip, createInflateRaw } from 'node:zlib';
import { KpruneError } from '../errors.js';
import { checkLimit } from '../util/limits.js';
import { fsError } from './read-file.js';

export type Compression = 'none' | 'deflate' | 'gzip';

/** The stored bytes to read: [start, end) of the file. */
export interface Stretch {
  start: number;
  end: number;
  compression: Compression;
}

/**
 * What the first bytes declare. `total`: the bytes wanted from the start of the (inflated) stream,
 * header included; undefined while the head is too short to tell. May throw for a bad header.
 */
export type Declared = (head: Uint8Array) => number | undefined;

/** Headers longer than this are not headers (an .npy header is typically 128 bytes). */
const MAX_HEAD = 1 << 20;

/**
 * The first `total` bytes of the stretch (inflated), `total` being what `declared` reads from its
 * head; fewer when the data ends early (the caller's parser reports the truncation). `what` names
 * the array for messages, e.g. 'array x'.
 */
export async function readDeclared(file: string, stretch: Stretch, declared: Declared, what: string): Promise<Uint8Array> {
  // An empty file or entry: nothing to read (the caller's parser says it is truncated).
  if (stretch.end <= stretch.start) return new Uint8Array(0);
  const head: Buffer[] = [];
  let headBytes = 0;
  let out: Uint8Array | null = null;
  let filled = 0;
  let complete = false;
  const take = (chunk: Buffer): void => {
    if (out === null) {
      head.push(chunk);
      headBytes += chunk.length;
      const bytes = Buffer.concat(head);
      const total = declared(bytes);
      if (total === undefined) {
        if (headBytes > MAX_HEAD) throw new KpruneError('bad-data', `${what}: no complete header in its first ${MAX_HEAD} bytes`, { file });
        return;
      }
      checkLimit('dataBytes', total, `${what} declares its data as`, file);
      out = new Uint8Array(total);
      const n = Math.min(total, bytes.length);
      out.set(bytes.subarray(0, n));
      filled = n;
    } else {
      const n = Math.min(out.length - filled, chunk.length);
      out.set(chunk.subarray(0, n), filled);
      filled += n;
    }
    if (out.length === filled) complete = true;
  };
  const input = createReadStream(file, { start: stretch.start, end: stretch.end - 1, highWaterMark: 1 << 16 });
  let failure: unknown;
  const sink = async (source: AsyncIterable<Buffer>): Promise<void> => {
    for await (const chunk of source) {
      try {
        take(chunk);
      } catch (e) {
        failure = e; // the pipeline reports its own abort instead
        throw e;
      }
      if (complete) break; // the rest is never inflated
    }
  };
  try {
    if (stretch.compression === 'none') await pipeline(input, sink);
    else await pipeline(input, stretch.compression === 'gzip' ? createGunzip() : createInflateRaw(), sink);
  } catch (e) {
    if (failure !== undefined) throw failure;
    if (e instanceof KpruneError) throw e;
    // Stopping early aborts the pipeline: that is the success case.
    if (!complete) {
      const code = (e as NodeJS.ErrnoException).code ?? '';
      if (code.startsWith('Z_') || code === 'ERR_STREAM_PREMATURE_CLOSE') {
        const kind = stretch.compression === 'gzip' ? 'gzip' : 'deflate';
        throw new KpruneError('bad-data', `${what}: corrupt or truncated ${kind} data: ${(e as Error).message}`, { file, cause: e });
      }
      throw fsError(e, file);
    }
  }
  if (out === null) return Buffer.concat(head);
  return (out as Uint8Array).subarray(0, filled);
}
