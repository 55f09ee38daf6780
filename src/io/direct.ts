/**
 * Writing and reading a large output around the page cache (O_DIRECT). On the virtual machines
 * kprune is built on, copying into new page-cache pages is sometimes very slow (the kernel's copy
 * into them took 95% of a slow `dd`): the same 553 MB took 0.3 s or 3 s through the page cache,
 * 0.3-0.7 s around it. O_DIRECT wants buffers, offsets and lengths aligned to the disk's blocks:
 * the bytes pass through two page-aligned 4 MiB blocks (a WebAssembly memory is page-aligned;
 * Node's buffers are not), the tail is padded and the file truncated to its length. A file
 * system that refuses O_DIRECT (tmpfs on older kernels, some network file systems) is found by a
 * first aligned write, before a chunk is made; the caller then writes as usual.
 */
import { closeSync, constants, ftruncateSync, openSync, readSync, write, writeSync } from 'node:fs';
import { promisify } from 'node:util';

const writeAsync = promisify(write);

/** 4 MiB, a multiple of every block size O_DIRECT asks for. */
export const DIRECT_BLOCK = 1 << 22;
const ALIGN = 4096;

function alignedBlocks(count: number): Uint8Array[] {
  // WebAssembly pages are 64 KiB and the memory is mapped whole: its start is page-aligned.
  const memory = new WebAssembly.Memory({ initial: (count * DIRECT_BLOCK) / 65536 });
  return Array.from({ length: count }, (_, k) => new Uint8Array(memory.buffer, k * DIRECT_BLOCK, DIRECT_BLOCK));
}

/**
 * A second descriptor of the (created, empty) file `file`, writing around the page cache, or null
 * where the platform or file system does not allow it.
 */
export function openDirectForWriting(file: string): DirectWriter | null {
  const flag = (constants as Record<string, number>).O_DIRECT;
  if (!flag) return null;
  let fd: number;
  try {
    fd = openSync(file, constants.O_WRONLY | flag);
  } catch {
    return null;
  }
  const blocks = alignedBlocks(2);
  try {
    // O_DIRECT is refused by some file systems only at the first write.
    blocks[0].fill(0, 0, ALIGN);
    writeSync(fd, blocks[0], 0, ALIGN, 0);
    ftruncateSync(fd, 0);
  } catch {
    closeSync(fd);
    return null;
  }
  return new DirectWriter(fd, blocks);
}

/** Bytes pushed in order, written a full aligned block at a time while the other one fills. */
export class DirectWriter {
  private turn = 0;
  private fill = 0;
  private at = 0;
  private writing: Promise<unknown> | null = null;

  constructor(private readonly fd: number, private readonly blocks: Uint8Array[]) {}

  async push(bytes: Uint8Array): Promise<void> {
    for (let done = 0; done < bytes.length;) {
      const block = this.blocks[this.turn];
      const n = Math.min(DIRECT_BLOCK - this.fill, bytes.length - done);
      block.set(bytes.subarray(done, done + n), this.fill);
      this.fill += n;
      done += n;
      if (this.fill === DIRECT_BLOCK) await this.flush(DIRECT_BLOCK);
    }
  }

  /** Writes the current block's first `length` bytes (a multiple of ALIGN) and turns to the other. */
  private async flush(length: number): Promise<void> {
    await this.writing;
    const block = this.blocks[this.turn];
    const at = this.at;
    this.writing = writeAll(this.fd, block.subarray(0, length), at);
    this.at += this.fill;
    this.fill = 0;
    this.turn = 1 - this.turn;
  }

  /** Writes the tail (padded to the block size, then cut off) and closes the descriptor. */
  async close(): Promise<void> {
    try {
      const length = this.at + this.fill;
      if (this.fill > 0) {
        const padded = Math.ceil(this.fill / ALIGN) * ALIGN;
        this.blocks[this.turn].fill(0, this.fill, padded);
        await this.flush(padded);
      }
      await this.writing;
      ftruncateSync(this.fd, length);
    } finally {
      closeSync(this.fd);
    }
  }

  /** Closes without finishing (after an error). */
  abandon(): void {
    try {
      closeSync(this.fd);
    } catch {
      // Already closed.
    }
  }
}

async function writeAll(fd: number, bytes: Uint8Array, position: number): Promise<void> {
  for (let done = 0; done < bytes.length;) {
    const { bytesWritten } = await writeAsync(fd, bytes, done, bytes.length - done, position + done);
    done += bytesWritten;
  }
}

/**
 * Reads a file from its start, a block at a time, handing out the bytes in pieces of the sizes
 * asked for: around the page cache (`direct`, aligned blocks) where the file was written so, else
 * through it.
 */
export class SequentialReader {
  private readonly fd: number;
  private readonly block: Uint8Array;
  private base = 0;
  private filled = 0;
  private pos = 0;

  constructor(file: string, direct: boolean) {
    const flag = direct ? (constants as Record<string, number>).O_DIRECT ?? 0 : 0;
    let fd: number | null = null;
    if (flag) {
      try {
        fd = openSync(file, constants.O_RDONLY | flag);
      } catch {
        fd = null;
      }
    }
    this.fd = fd ?? openSync(file, 'r');
    this.block = fd !== null ? alignedBlocks(1)[0] : new Uint8Array(DIRECT_BLOCK);
  }

  /** Up to `max` next bytes (fewer at a block's end; none at the end of the file). */
  take(max: number): Uint8Array {
    if (this.pos >= this.base + this.filled) {
      // From the aligned offset at or before the position (after a skip, the position need not be
      // aligned; after a whole block it is, and this is where the last block ended).
      this.base = this.pos - (this.pos % ALIGN);
      this.filled = 0;
      // Whole blocks at block-aligned offsets: what O_DIRECT allows; short only at the end.
      for (;;) {
        const n = readSync(this.fd, this.block, this.filled, DIRECT_BLOCK - this.filled, this.base + this.filled);
        this.filled += n;
        if (n === 0 || this.filled === DIRECT_BLOCK || this.filled % ALIGN !== 0) break;
      }
    }
    const from = this.pos - this.base;
    const n = Math.min(max, this.filled - from);
    this.pos += n;
    return this.block.subarray(from, from + n);
  }

  /** Moves past the next `length` bytes without reading them. */
  skip(length: number): void {
    this.pos += length;
  }

  close(): void {
    closeSync(this.fd);
  }
}
