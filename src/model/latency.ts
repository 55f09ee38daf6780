/** End-to-end latency of a model and a file it wrote, as LoadedModel.compareLatency measures it. */
import { LatencyStats, stats } from '../util/timing.js';

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

/** The comparison of two models' times (before, after) from one interleaved timing. */
export function latencyComparison(
  times: [number[], number[]],
  run: { runtime: string; threads: number | 'default'; batch: number; warmup: number; inputShapes: Map<string, number[]> },
): LatencyComparison {
  const before = stats(times[0]);
  const after = stats(times[1]);
  return {
    runtime: run.runtime,
    threads: run.threads,
    batch: run.batch,
    runs: times[0].length,
    warmup: run.warmup,
    inputShapes: Object.fromEntries(run.inputShapes),
    before,
    after,
    ratio: after.medianMs / before.medianMs,
  };
}
