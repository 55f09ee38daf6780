/** Progress events from long library calls; the CLI draws them, a pipeline may log or ignore them. */
export interface Progress {
  phase: string;
  /** Units done and total, when the phase has units (layers, batches). */
  done?: number;
  total?: number;
  unit?: string;
  detail?: string;
}

export type ProgressListener = (p: Progress) => void;
