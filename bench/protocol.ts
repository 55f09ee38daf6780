/** What bench/worker.ts prints and bench/run.ts reads (kept apart so importing it runs nothing). */

import type { MeasuredAccuracy, PruneReport } from '../src/index.js';

export const RESULT_PREFIX = 'KPRUNE_BENCH ';

export type WorkerOp = 'analyze' | 'prune' | 'baseline' | 'recover' | 'reconstruct';

/** What bench/recover.ts keeps of one data-driven prune report (op `recover`). */
export interface RecoverFigures {
  accuracy: MeasuredAccuracy;
  data: PruneReport['data'];
  plan: PruneReport['plan'];
  recovery: NonNullable<PruneReport['recovery']>['layers'] | null;
}

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
  sizeBefore?: { bytes: number; gzipBytes: number | null };
  sizeAfter?: { bytes: number; gzipBytes: number | null };
  macsDense?: number | null;
  outputFiles?: string[];
  /** For recover: accuracy, plan and per-layer recovery from the report. */
  recover?: RecoverFigures;
  /** For reconstruct: per-layer recovery and what the engine cached. */
  reconstruct?: { layers: NonNullable<PruneReport['recovery']>['layers']; propagation: NonNullable<PruneReport['recovery']>['propagation'] | null; ms: number };
  /** For recover: the prune call failed with a KpruneError (e.g. a budget that cannot be met). */
  error?: { code: string; message: string; suggestion?: string };
}
