/**
 * Latency of two ONNX models measured side by side in one process: same input, same session
 * options, runs interleaved (A, B, B, A, ...) so that drift in machine load hits both alike.
 */
import * as ort from 'onnxruntime-node';
import type { InputSpec } from '../../model/inputs.js';
import { createSession, zeros } from './session.js';

export interface LatencyStats {
  medianMs: number;
  minMs: number;
  maxMs: number;
  /** Interquartile range: the spread of the middle half of the runs. */
  p25Ms: number;
  p75Ms: number;
}

export interface LatencyComparison {
  runtime: string;
  threads: number | 'default';
  batch: number;
  /** Timed runs per model actually made (fewer than asked when the time cap was reached). */
  runs: number;
  warmup: number;
  inputShapes: Record<string, number[]>;
  before: LatencyStats;
  after: LatencyStats;
  /** after median / before median. */
  ratio: number;
}

function quantile(sorted: number[], q: number): number {
  const i = (sorted.length - 1) * q;
  const lo = Math.floor(i);
  const hi = Math.ceil(i);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (i - lo);
}

export function stats(times: number[]): LatencyStats {
  const s = [...times].sort((a, b) => a - b);
  return { medianMs: quantile(s, 0.5), minMs: s[0], maxMs: s[s.length - 1], p25Ms: quantile(s, 0.25), p75Ms: quantile(s, 0.75) };
}

/** Seeded values in [0, 1): speed should not depend on them, but zeros could take shortcuts. */
function feeds(inputs: InputSpec[], shapes: Map<string, number[]>): Record<string, ort.Tensor> {
  const out: Record<string, ort.Tensor> = {};
  let seed = 12345;
  for (const spec of inputs) {
    const dims = shapes.get(spec.name)!;
    const n = dims.reduce((a, b) => a * b, 1);
    const next = () => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed / 4294967296;
    };
    switch (spec.type) {
      case 'float32': out[spec.name] = new ort.Tensor('float32', Float32Array.from({ length: n }, next), dims); break;
      case 'float64': out[spec.name] = new ort.Tensor('float64', Float64Array.from({ length: n }, next), dims); break;
      // Half-precision bit patterns of values in [2^-7, 1): exponent 8..14, any mantissa.
      case 'float16': out[spec.name] = new ort.Tensor('float16', Uint16Array.from({ length: n }, () => ((8 + Math.floor(next() * 7)) << 10) | Math.floor(next() * 1024)), dims); break;
      default: out[spec.name] = zeros(spec.type, dims);
    }
  }
  return out;
}

/** Runs at least this many rounds even when the time cap is reached first. */
export const MIN_LATENCY_RUNS = 5;
/** Default cap on the time spent measuring latency, so that slow models do not take minutes. */
export const DEFAULT_LATENCY_CAP_MS = 15_000;

export async function timeSessions(
  sessions: ort.InferenceSession[],
  input: Record<string, ort.Tensor>,
  runs: number,
  warmup: number,
  maxMs = Infinity,
): Promise<number[][]> {
  const times = sessions.map(() => [] as number[]);
  for (let i = 0; i < warmup; i++) for (const s of sessions) await s.run(input);
  const start = performance.now();
  for (let i = 0; i < runs; i++) {
    if (i >= MIN_LATENCY_RUNS && performance.now() - start > maxMs) break;
    const order = i % 2 === 0 ? sessions.map((_, k) => k) : sessions.map((_, k) => sessions.length - 1 - k);
    for (const k of order) {
      const t0 = performance.now();
      await sessions[k].run(input);
      times[k].push(performance.now() - t0);
    }
  }
  return times;
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
    const [ta, tb] = await timeSessions([a, b], feeds(inputs, shapes), runs, warmup, options.maxMs ?? DEFAULT_LATENCY_CAP_MS);
    const sa = stats(ta);
    const sb = stats(tb);
    return {
      runtime: `onnxruntime-node ${ort.env.versions.node ?? ''} (CPU)`.trim(),
      threads: options.threads ?? 'default',
      batch: shapes.get(inputs[0]?.name ?? '')?.[0] ?? 1,
      runs: ta.length,
      warmup,
      inputShapes: Object.fromEntries(shapes),
      before: sa,
      after: sb,
      ratio: sb.medianMs / sa.medianMs,
    };
  } finally {
    await a.release();
    await b.release();
  }
}

export { feeds as latencyFeeds };
