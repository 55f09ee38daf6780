/**
 * Latency of two ONNX models measured side by side in one process: same input, same session
 * options, runs interleaved (util/timing.ts) so that drift in machine load hits both alike.
 */
import type * as ort from 'onnxruntime-node';
import { ortApi } from './ort.js';
import type { InputSpec } from '../../model/inputs.js';
import { LatencyComparison, latencyComparison } from '../../model/latency.js';
import { DEFAULT_LATENCY_CAP_MS, timeInterleaved, timingValues } from '../../util/timing.js';
import { createSession, zeros } from './session.js';

/** Seeded values in [0, 1) (util/timing.ts) for every input; other element types get zeros. */
export function latencyFeeds(inputs: InputSpec[], shapes: Map<string, number[]>): Record<string, ort.Tensor> {
  const out: Record<string, ort.Tensor> = {};
  const next = timingValues();
  for (const spec of inputs) {
    const dims = shapes.get(spec.name)!;
    const n = dims.reduce((a, b) => a * b, 1);
    switch (spec.type) {
      case 'float32': out[spec.name] = new (ortApi().Tensor)('float32', Float32Array.from({ length: n }, next), dims); break;
      case 'float64': out[spec.name] = new (ortApi().Tensor)('float64', Float64Array.from({ length: n }, next), dims); break;
      // Half-precision bit patterns of values in [2^-7, 1): exponent 8..14, any mantissa.
      case 'float16': out[spec.name] = new (ortApi().Tensor)('float16', Uint16Array.from({ length: n }, () => ((8 + Math.floor(next() * 7)) << 10) | Math.floor(next() * 1024)), dims); break;
      default: out[spec.name] = zeros(spec.type, dims);
    }
  }
  return out;
}

/** Times sessions on one input (see timeInterleaved). */
export function timeSessions(sessions: ort.InferenceSession[], input: Record<string, ort.Tensor>, runs: number, warmup: number, maxMs = Infinity): Promise<number[][]> {
  return timeInterleaved(sessions.map((s) => () => s.run(input)), runs, warmup, maxMs);
}

export async function compareLatency(
  before: string | Uint8Array,
  after: string | Uint8Array,
  inputs: InputSpec[],
  shapes: Map<string, number[]>,
  options: { runs?: number; warmup?: number; threads?: number; maxMs?: number } = {},
): Promise<LatencyComparison> {
  const runs = options.runs ?? 20;
  const warmup = options.warmup ?? 3;
  const a = await createSession(before, { threads: options.threads });
  const b = await createSession(after, { threads: options.threads });
  try {
    const [ta, tb] = await timeSessions([a, b], latencyFeeds(inputs, shapes), runs, warmup, options.maxMs ?? DEFAULT_LATENCY_CAP_MS);
    return latencyComparison([ta, tb], {
      runtime: `onnxruntime-node ${ortApi().env.versions.node ?? ''} (CPU)`.trim(),
      threads: options.threads ?? 'default',
      batch: shapes.get(inputs[0]?.name ?? '')?.[0] ?? 1,
      warmup,
      inputShapes: shapes,
    });
  } finally {
    await a.release();
    await b.release();
  }
}
