/**
 * A worker thread of the data-parallel training pool (train-pool.ts): it holds one-thread
 * onnxruntime sessions of training graphs (one per shard size, opened on first use) and runs a
 * shard's step on the feeds it is sent, handing back the loss and the gradients. Two sessions in
 * one thread do not overlap in onnxruntime-node; sessions in two workers do.
 */
import { parentPort } from 'node:worker_threads';
import * as ort from 'onnxruntime-node';

export interface WorkerRun {
  id: number;
  /** The training graph's key (its shard size) and, the first time the worker sees it, its bytes. */
  key: number;
  bytes?: Uint8Array;
  feeds: Record<string, { data: Float32Array; dims: number[] }>;
  fetch: string[];
}

export type WorkerReply = { id: number; ok: true; outputs: Float32Array[] } | { id: number; ok: false; error: string };

const sessions = new Map<number, Promise<ort.InferenceSession>>();

function session(key: number, bytes: Uint8Array | undefined): Promise<ort.InferenceSession> {
  let s = sessions.get(key);
  if (!s) {
    if (!bytes) throw new Error(`no training graph for shards of ${key}`);
    s = ort.InferenceSession.create(bytes, {
      intraOpNumThreads: 1, interOpNumThreads: 1, logSeverityLevel: 4, graphOptimizationLevel: 'all',
      extra: { session: { intra_op: { allow_spinning: '0' } } },
    });
    sessions.set(key, s);
  }
  return s;
}

parentPort?.on('message', async (m: WorkerRun) => {
  try {
    const s = await session(m.key, m.bytes);
    const feeds: Record<string, ort.Tensor> = {};
    for (const [name, f] of Object.entries(m.feeds)) feeds[name] = new ort.Tensor('float32', f.data, f.dims);
    const r = await s.run(feeds, m.fetch);
    const outputs = m.fetch.map((name) => {
      const t = r[name] as ort.Tensor;
      if (t.type !== 'float32') throw new Error(`training graph output "${name}" is ${t.type}, not float32`);
      return t.data as Float32Array;
    });
    parentPort!.postMessage({ id: m.id, ok: true, outputs } satisfies WorkerReply, outputs.map((o) => o.buffer as ArrayBuffer));
  } catch (e) {
    parentPort!.postMessage({ id: m.id, ok: false, error: e instanceof Error ? e.message.split('\n')[0] : String(e) } satisfies WorkerReply);
  }
});
