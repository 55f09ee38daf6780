/**
 * Data-parallel training steps: a batch split into shards, each run by a one-thread onnxruntime
 * session in its own worker thread (train-worker.ts), the shards' losses and gradients averaged
 * by their sizes. The training graph's loss is a mean over its batch and BatchNormalization runs in
 * inference form, so the shards are independent and the average is the whole batch's gradient.
 *
 * Why: onnxruntime's intra-op threads gain little on the small convolutions of a training step
 * (1.07-1.20x from a second thread on the bundled models), and two sessions in one thread run one
 * after the other; workers put each core on its own shard.
 */
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { KpruneError } from '../../errors.js';
import { PACKAGE_ROOT } from '../../version.js';
import type { WorkerReply, WorkerRun } from './train-worker.js';

/**
 * The worker's own module graph, as tsc emitted it: found from the package root, not from this
 * module, which may be part of the bundled command line (dist/cli/kprune.js).
 */
const WORKER_SCRIPT = path.join(PACKAGE_ROOT, 'dist', 'src', 'runtime', 'ort', 'train-worker.js');

export class TrainPool {
  private nextId = 0;
  private readonly pending = new Map<number, { resolve: (v: Float32Array[]) => void; reject: (e: Error) => void }>();
  /** Per worker: the graph keys it has been sent. */
  private readonly known: Set<number>[];

  private constructor(private readonly workers: Worker[], private readonly file?: string) {
    this.known = workers.map(() => new Set());
    for (const w of workers) {
      w.on('message', (r: WorkerReply) => {
        const p = this.pending.get(r.id);
        if (!p) return;
        this.pending.delete(r.id);
        if (r.ok) p.resolve(r.outputs);
        else p.reject(new KpruneError('runtime', `onnxruntime failed to run the training graph: ${r.error}`, { file: this.file }));
      });
      w.on('error', (e) => {
        for (const p of this.pending.values()) p.reject(new KpruneError('runtime', `a training worker failed: ${e.message}`, { file: this.file, cause: e }));
        this.pending.clear();
      });
    }
  }

  static open(count: number, file?: string): TrainPool {
    const workers = Array.from({ length: count }, () => new Worker(WORKER_SCRIPT));
    // Idle workers must not keep a finished process alive.
    for (const w of workers) w.unref();
    return new TrainPool(workers, file);
  }

  get size(): number {
    return this.workers.length;
  }

  /** Runs shard `k`'s step on worker k; `bytes` gives the graph of `key` the first time worker k needs it. */
  run(k: number, key: number, bytes: () => Uint8Array, feeds: WorkerRun['feeds'], fetch: string[]): Promise<Float32Array[]> {
    const id = this.nextId++;
    const first = !this.known[k].has(key);
    this.known[k].add(key);
    const message: WorkerRun = { id, key, feeds, fetch, ...(first ? { bytes: bytes() } : {}) };
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.workers[k].postMessage(message);
    });
  }

  async release(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
