/**
 * What an interrupted run must remove, and creating files so that nothing escapes it.
 *
 * A signal handler runs between two turns of the event loop and cannot wait, so removal is
 * synchronous. It sees every file kprune is writing only if a file never exists unregistered: an
 * asynchronous open still in flight when the handler runs would create its file after the handler
 * removed the name (a 0-byte temporary left behind while the handler said none was). So every file
 * and folder kprune writes through is registered first, then created synchronously; only the
 * writing of bytes is asynchronous, and bytes written to a removed file go nowhere.
 */
import { closeSync, fsync, openSync, rmSync, write } from 'node:fs';
import { promisify } from 'node:util';
import { FileRange, RangeReader, isFileRange } from './file-range.js';
import type { DirectWriter } from './direct.js';

const pending = new Set<() => void>();

/**
 * Registers a synchronous removal to run if the process is interrupted; the returned function
 * unregisters it (once the thing is gone or committed).
 */
export function onInterrupt(remove: () => void): () => void {
  pending.add(remove);
  return () => {
    pending.delete(remove);
  };
}

/**
 * Removes everything of writes in progress, synchronously: for signal handlers (SIGINT/SIGTERM),
 * which must leave no partial output behind. The library never installs them itself; the CLI does.
 */
export function removeWritesInProgress(): void {
  for (const remove of [...pending]) {
    try {
      remove();
    } catch {
      // Best effort: the next removal still runs.
    }
  }
  pending.clear();
}

/**
 * A new file, created exclusively ('wx': never an existing name, nor a link's target) and
 * synchronously, registered for removal on interruption before it exists. `remove` deletes it and
 * unregisters; `keep` only unregisters (it was renamed away or is removed with its folder).
 */
export function createExclusive(file: string): { fd: number; remove(): void; keep(): void } {
  const removeNow = () => rmSync(file, { force: true });
  const unregister = onInterrupt(removeNow);
  let fd: number;
  try {
    fd = openSync(file, 'wx');
  } catch (e) {
    unregister();
    throw e;
  }
  return {
    fd,
    remove: () => {
      removeNow();
      unregister();
    },
    keep: unregister,
  };
}

const writeAsync = promisify(write);
const fsyncAsync = promisify(fsync);

/** Writes all of `bytes` at the current position (a write may take less than asked, and at most 2 GiB). */
export async function writeAll(fd: number, bytes: Uint8Array): Promise<void> {
  for (let at = 0; at < bytes.length;) {
    const { bytesWritten } = await writeAsync(fd, bytes, at, Math.min(bytes.length - at, 0x40000000), null);
    at += bytesWritten;
  }
}

/**
 * A chunk given as a function is made only when its turn to be written comes, then dropped; one
 * given as a file range is copied from that file then, a few MiB at a time (file-range.ts).
 */
export type Chunk = Uint8Array | (() => Uint8Array) | FileRange;

/** A chunk's length in bytes, where it is known before writing (not for a function's). */
export function chunkLength(chunk: Chunk): number {
  if (typeof chunk === 'function') throw new Error('the length of a chunk made when written is not known before');
  return chunk.length;
}

/** An error from making a chunk (a bug, or an input that changed) rather than from writing it. */
export class ChunkError extends Error {
  constructor(readonly inner: unknown) {
    super('making a chunk failed');
  }
}

/**
 * Writes the chunks to a file descriptor, flushes it to disk (unless `sync` is false: a temporary
 * that is never kept) and closes it.
 */
export async function writeChunks(fd: number, data: Uint8Array | Chunk[], options: { sync?: boolean } = {}): Promise<void> {
  try {
    await writeEach((bytes) => writeAll(fd, bytes), data);
    if (options.sync !== false) await fsyncAsync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * Writes the chunks, then flushes the file to disk and closes it in the background: the flush of a
 * large file takes as long as the disk needs (seconds for hundreds of MB), and what comes next
 * (verifying the staged copy, which the page cache holds) need not wait for it. `synced` settles
 * when the file is on disk, to null or to the flush's error (never rejects: the transaction awaits
 * it before its commit).
 */
export async function writeChunksSyncLater(
  fd: number,
  data: Uint8Array | Chunk[],
  onMade?: (index: number, bytes: Uint8Array) => void,
  direct?: DirectWriter | null,
): Promise<{ synced: Promise<unknown> }> {
  try {
    if (direct) {
      // Around the page cache (direct.ts); `fd` is kept for the flush, which covers the file.
      try {
        await writeEach((bytes) => direct.push(bytes), data, onMade);
        await direct.close();
      } catch (e) {
        direct.abandon();
        throw e;
      }
    } else {
      await writeEach((bytes) => writeAll(fd, bytes), data, onMade);
    }
  } catch (e) {
    closeSync(fd);
    throw e;
  }
  // Wrapped: an async function returning a promise would wait for it.
  return { synced: fsyncAsync(fd).then(() => null, (e: unknown) => e ?? new Error('fsync failed')).finally(() => closeQuietly(fd)) };
}

function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // Nothing to do: the flush's outcome is what the transaction reports.
  }
}

/**
 * `onMade` sees each chunk made by a function (index, bytes) while it is being written. File ranges
 * are copied block by block, the next block read while the last one is being written.
 */
async function writeEach(sink: Sink, data: Uint8Array | Chunk[], onMade?: (index: number, bytes: Uint8Array) => void): Promise<void> {
  const reader = new RangeReader();
  try {
    await writeEachWith(reader, sink, data, onMade);
  } catch (e) {
    try {
      reader.close();
    } catch {
      // The first error is the one to report.
    }
    throw e;
  }
  try {
    reader.close();
  } catch (e) {
    throw new ChunkError(e);
  }
}

/** Where bytes go; the bytes may be reused once the promise settles. */
type Sink = (bytes: Uint8Array) => Promise<void>;

async function writeEachWith(reader: RangeReader, sink: Sink, data: Uint8Array | Chunk[], onMade?: (index: number, bytes: Uint8Array) => void): Promise<void> {
  for (const [i, chunk] of (Array.isArray(data) ? data : [data]).entries()) {
    if (isFileRange(chunk)) {
      let writing: Promise<void> | null = null;
      for (let done = 0; done < chunk.length;) {
        let block: Uint8Array;
        try {
          block = reader.read(chunk, done);
          chunk.onBlock?.(block);
        } catch (e) {
          await writing?.catch(() => undefined);
          throw new ChunkError(e);
        }
        await writing;
        writing = sink(block);
        done += block.length;
      }
      await writing;
      continue;
    }
    let bytes: Uint8Array;
    try {
      bytes = typeof chunk === 'function' ? chunk() : chunk;
    } catch (e) {
      throw new ChunkError(e);
    }
    const written = sink(bytes);
    if (typeof chunk === 'function') onMade?.(i, bytes);
    await written;
  }
}
