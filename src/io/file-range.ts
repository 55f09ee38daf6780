/**
 * A run of bytes written by copying it from an input file when its turn comes, through one small
 * reused buffer: how a model's unchanged tensors reach its output without ever being held whole
 * (a VGG-16's 411 MB Gemm weight passes through 4 MiB at a time). The bytes are read again at
 * write time (and at read-back), so the file must still be what it was when loaded: its stamp
 * (size, times, identity) is checked when it is opened and again when the copy is done, and a file
 * that changed is a clear error, never another model's bytes in the output.
 */
import { BigIntStats, closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { KpruneError } from '../errors.js';

export interface FileRange {
  kind: 'file-range';
  /** The input file, and where the bytes are in it. */
  file: string;
  offset: number;
  length: number;
  /** The file's `fileStamp` when it was loaded. */
  stamp: string;
  /**
   * Sees each block as it passes, in order (a copied tensor's non-zero count, taken in the same
   * pass). Blocks start at multiples of COPY_BLOCK from `offset`, so they hold whole elements.
   */
  onBlock?: (block: Uint8Array) => void;
}

/** 4 MiB: large enough that a write costs little per byte, small enough to stay in the caches. */
export const COPY_BLOCK = 1 << 22;

export function isFileRange(c: unknown): c is FileRange {
  return typeof c === 'object' && c !== null && (c as FileRange).kind === 'file-range';
}

/** What says a file is unchanged: identity, size, and the times of its last change (ns). */
export function fileStamp(st: BigIntStats): string {
  return `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
}

function changed(file: string, cause?: unknown): KpruneError {
  return new KpruneError('io', 'the input changed while kprune was reading it (its size or modification time is no longer what it was when loaded); nothing was written', {
    file, suggestion: 'run again once nothing else writes the input', cause,
  });
}

/**
 * Reads file ranges a block at a time, each input opened once (and its stamp checked then and at
 * `close`). Two buffers, used in turn: a block can be written while the next one is read.
 */
export class RangeReader {
  private readonly fds = new Map<string, { fd: number; stamp: string }>();
  private readonly buffers = [Buffer.allocUnsafe(COPY_BLOCK), Buffer.allocUnsafe(COPY_BLOCK)];
  private turn = 0;

  /** The next `min(max, range.length - done)` bytes of the range (max at most COPY_BLOCK), in the next buffer. */
  read(range: FileRange, done: number, max = COPY_BLOCK): Buffer {
    const fd = this.open(range);
    const buf = this.buffers[(this.turn = 1 - this.turn)];
    const want = Math.min(max, COPY_BLOCK, range.length - done);
    for (let got = 0; got < want;) {
      let n: number;
      try {
        n = readSync(fd, buf, got, want - got, range.offset + done + got);
      } catch (e) {
        throw new KpruneError('io', `cannot read (${(e as NodeJS.ErrnoException).code ?? String(e)})`, { file: range.file, cause: e });
      }
      if (n === 0) throw changed(range.file);
      got += n;
    }
    return buf.subarray(0, want);
  }

  /** Throws, naming the file, if the range's input changed since it was stamped (no bytes read). */
  check(range: FileRange): void {
    this.open(range);
  }

  private open(range: FileRange): number {
    const known = this.fds.get(range.file);
    if (known) {
      if (known.stamp !== range.stamp) throw changed(range.file);
      return known.fd;
    }
    let fd: number;
    try {
      fd = openSync(range.file, 'r');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw changed(range.file, e);
      throw new KpruneError('io', `cannot open (${(e as NodeJS.ErrnoException).code ?? String(e)})`, { file: range.file, cause: e });
    }
    this.fds.set(range.file, { fd, stamp: range.stamp });
    if (fileStamp(fstatSync(fd, { bigint: true })) !== range.stamp) throw changed(range.file);
    return fd;
  }

  /** Closes every input, checking first that none changed while it was read. */
  close(): void {
    let failed: unknown;
    for (const [file, { fd, stamp }] of this.fds) {
      try {
        if (!failed && fileStamp(fstatSync(fd, { bigint: true })) !== stamp) failed = changed(file);
      } finally {
        closeSync(fd);
      }
    }
    this.fds.clear();
    if (failed) throw failed;
  }
}
