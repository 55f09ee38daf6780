/**
 * Timing two or more things side by side: warm-up runs, then runs interleaved (A, B, B, A, ...) so
 * that drift in machine load hits all alike; medians and quartiles of the times. One loop for every
 * runtime (onnxruntime sessions, TF.js models, one-layer timing models).
 */

function quantile(sorted: number[], q: number): number {
  const i = (sorted.length - 1) * q;
  const lo = Math.floor(i);
  const hi = Math.ceil(i);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (i - lo);
}

export interface LatencyStats {
  medianMs: number;
  minMs: number;
  maxMs: number;
  /** Interquartile range: the spread of the middle half of the runs. */
  p25Ms: number;
  p75Ms: number;
}

export function stats(times: number[]): LatencyStats {
  const s = [...times].sort((a, b) => a - b);
  return { medianMs: quantile(s, 0.5), minMs: s[0], maxMs: s[s.length - 1], p25Ms: quantile(s, 0.25), p75Ms: quantile(s, 0.75) };
}

/** Runs at least this many rounds even when the time cap is reached first. */
export const MIN_LATENCY_RUNS = 5;
/** Default cap on the time spent measuring latency, so that slow models do not take minutes. */
export const DEFAULT_LATENCY_CAP_MS = 15_000;

/**
 * Times each of `runners`: `warmup` rounds untimed, then up to `runs` timed rounds, in order on
 * even rounds and in reverse on odd ones; after MIN_LATENCY_RUNS rounds, stops once `maxMs` have
 * passed. Returns each runner's times in ms.
 */
export async function timeInterleaved(runners: (() => Promise<unknown>)[], runs: number, warmup: number, maxMs = Infinity): Promise<number[][]> {
  const times = runners.map(() => [] as number[]);
  for (let i = 0; i < warmup; i++) for (const r of runners) await r();
  const start = performance.now();
  for (let i = 0; i < runs; i++) {
    if (i >= MIN_LATENCY_RUNS && performance.now() - start > maxMs) break;
    const order = i % 2 === 0 ? runners.map((_, k) => k) : runners.map((_, k) => runners.length - 1 - k);
    for (const k of order) {
      const t0 = performance.now();
      await runners[k]();
      times[k].push(performance.now() - t0);
    }
  }
  return times;
}

/**
 * Seeded values in [0, 1) for timing inputs (a 32-bit LCG from 12345): speed should not depend on
 * them, but zeros could take shortcuts, and every timing sees the same input.
 */
export function timingValues(): () => number {
  let seed = 12345;
  return () => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed / 4294967296;
  };
}
