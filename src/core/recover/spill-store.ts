/**
 * The chunk cache of layer-wise recovery (src/core/recover/propagation.ts): each chunk's values
 * stay in memory while the total stays within a budget; a chunk that would pass it is written to a
 * temporary file and read back when its turn comes. So memory is bounded by the budget plus the
 * chunk being worked on, whatever the calibration set's size; disk takes the rest.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { CachedValue, ChunkStore } from './propagation.js';
import { onInterrupt } from '../../io/cleanup.js';

/** A spill file an interrupted run removes too; the returned function removes it now. */
function trackTemporary(file: string): () => Promise<void> {
  const unregister = onInterrupt(() => rmSync(file, { force: true }));
  return async () => {
    rmSync(file, { force: true });
    unregister();
  };
}

const ARRAYS: Record<string, new (b: ArrayBuffer) => CachedValue['data']> = {
  float32: Float32Array, float64: Float64Array, float16: Uint16Array, int32: Int32Array, int64: BigInt64Array,
  uint8: Uint8Array, int8: Int8Array, bool: Uint8Array,
};

interface Spilled {
  file: string;
  remove: () => Promise<void>;
  meta: { name: string; type: string; dims: number[]; bytes: number }[];
}

function chunkBytes(values: Map<string, CachedValue>): number {
  let n = 0;
  for (const v of values.values()) n += v.data.byteLength;
  return n;
}

export class SpillStore implements ChunkStore {
  private readonly memory = new Map<number, { values: Map<string, CachedValue>; bytes: number }>();
  private readonly disk = new Map<number, Spilled>();
  private held = 0;
  private peak = 0;
  private spilled = 0;
  private dir: string | null = null;

  /** `budget`: bytes of cached values kept in memory at most. */
  constructor(private readonly budget: number, private readonly tmpRoot = os.tmpdir()) {}

  async put(chunk: number, values: Map<string, CachedValue>): Promise<void> {
    const bytes = chunkBytes(values);
    if (this.held + bytes <= this.budget) {
      this.memory.set(chunk, { values, bytes });
      this.held += bytes;
      this.peak = Math.max(this.peak, this.held);
      return;
    }
    this.dir ??= mkdtempSync(path.join(this.tmpRoot, 'kprune-recover-'));
    const file = path.join(this.dir, `chunk-${chunk}.bin`);
    const remove = trackTemporary(file);
    const meta = [...values].map(([name, v]) => ({ name, type: v.type, dims: v.dims, bytes: v.data.byteLength }));
    writeFileSync(file, Buffer.concat([...values.values()].map((v) => Buffer.from(v.data.buffer, v.data.byteOffset, v.data.byteLength))));
    this.disk.set(chunk, { file, remove, meta });
    this.spilled += bytes;
  }

  async take(chunk: number): Promise<Map<string, CachedValue>> {
    const m = this.memory.get(chunk);
    if (m) {
      this.memory.delete(chunk);
      this.held -= m.bytes;
      return m.values;
    }
    const d = this.disk.get(chunk);
    if (!d) throw new Error(`chunk ${chunk} is not in the cache`);
    const buf = readFileSync(d.file);
    this.disk.delete(chunk);
    await d.remove();
    const values = new Map<string, CachedValue>();
    let at = 0;
    for (const m of d.meta) {
      // A copy into its own ArrayBuffer: typed arrays need aligned offsets.
      const own = buf.buffer.slice(buf.byteOffset + at, buf.byteOffset + at + m.bytes) as ArrayBuffer;
      values.set(m.name, { type: m.type, dims: m.dims, data: new ARRAYS[m.type](own) });
      at += m.bytes;
    }
    return values;
  }

  stats() {
    return { peakBytes: this.peak, spilledBytes: this.spilled, budget: this.budget };
  }

  async release(): Promise<void> {
    for (const d of this.disk.values()) await d.remove();
    this.disk.clear();
    this.memory.clear();
    this.held = 0;
    if (this.dir) rmSync(this.dir, { recursive: true, force: true });
    this.dir = null;
  }
}
