/** What bench/worker.ts prints and bench/run.ts reads (kept apart so importing it runs nothing). */

export const RESULT_PREFIX = 'KPRUNE_BENCH ';

export type WorkerOp = 'analyze' | 'prune' | 'baseline';

export interface WorkerResult {
  op: WorkerOp;
  /** Wall time of the library call alone (process start and module loading excluded). */
  ms: number;
  userMs: number;
  systemMs: number;
  /** process.resourceUsage().maxRSS at the end of the call: the process's peak, KiB. */
  maxRssKiB: number;
  /** For prune: the report's per-phase wall times (ms) and a few figures. */
  timings?: Record<string, number>;
  layers?: number;
  sizeBefore?: { bytes: number; gzipBytes: number };
  sizeAfter?: { bytes: number; gzipBytes: number };
  macsDense?: number | null;
  outputFiles?: string[];
}
