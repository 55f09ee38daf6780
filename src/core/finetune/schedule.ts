/**
 * Learning-rate schedule and batch order for fine-tuning: plain functions of the step and the seed,
 * so that a run can be repeated exactly.
 */
import type { Schedule } from '../../model/finetune.js';
import { permutation } from '../../util/random.js';

/**
 * The learning rate at `step` (1-based) of `steps`: a short linear warm-up (5% of the steps, at
 * most 20) so that Adam's first, noisy moments do not throw the reshaped weights off, then
 * `cosine` decay to zero or `constant`.
 */
export function learningRate(schedule: Schedule, base: number, step: number, steps: number): number {
  const warmup = Math.min(20, Math.floor(steps * 0.05));
  if (step <= warmup) return (base * step) / (warmup + 1);
  switch (schedule) {
    case 'constant': return base;
    case 'cosine': {
      const t = (step - warmup - 1) / Math.max(1, steps - warmup);
      return base * 0.5 * (1 + Math.cos(Math.PI * t));
    }
  }
}

/**
 * Batches of sample indices: each epoch a fresh seeded permutation of the data set, cut into
 * batches; a batch never spans two epochs (the last, short one is dropped unless the data set is
 * smaller than a batch).
 */
export class BatchSampler {
  private order: Uint32Array = new Uint32Array(0);
  private at = 0;
  private epoch = 0;

  constructor(private readonly count: number, private readonly batch: number, private readonly seed: number) {
    if (count <= 0) throw new Error('BatchSampler over an empty data set');
  }

  /** The batch size actually drawn (the data set may be smaller than asked). */
  get size(): number {
    return Math.min(this.batch, this.count);
  }

  next(): Uint32Array {
    if (this.at + this.size > this.order.length) {
      // Seeds per epoch: distinct, and reproducible from the run's seed.
      this.order = permutation(this.count, (this.seed * 1000003 + this.epoch++) >>> 0);
      this.at = 0;
    }
    const b = this.order.subarray(this.at, this.at + this.size);
    this.at += this.size;
    return b;
  }
}
