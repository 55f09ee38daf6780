/**
 * The fine-tuning loop, independent of model format and runtime: draw a seeded batch, let the
 * trainer take one step, evaluate on held-out data every so often, keep the best checkpoint.
 *
 * What is returned is the best checkpoint on held-out data (by loss, or by score: accuracy,
 * agreement with the original, negative distance), the starting weights included: fine-tuning never
 * returns weights that did worse on the held-out data than what it was given. An aborted run rejects with the signal's
 * reason and returns nothing, so that nothing partial can be written.
 */
import type { Evaluation, EvaluationProgress, Improvement, Schedule, Selection, StepProgress } from '../../model/finetune.js';
import { BatchSampler, learningRate } from './schedule.js';

export type { Evaluation, EvaluationProgress, Improvement, Selection, StepProgress };

/** The chosen checkpoint's held-out loss below the start's, with the paired standard error. */
export function pairedImprovement(start: Evaluation<unknown>, chosen: Evaluation<unknown>): Improvement | undefined {
  const a = start.samples;
  const b = chosen.samples;
  if (!a || !b || a.length !== b.length || a.length < 2) return undefined;
  let mean = 0;
  for (let i = 0; i < a.length; i++) mean += a[i] - b[i];
  mean /= a.length;
  let v = 0;
  for (let i = 0; i < a.length; i++) v += (a[i] - b[i] - mean) ** 2;
  return { loss: mean, stdError: Math.sqrt(v / (a.length - 1) / a.length) };
}

export interface Trainer {
  /** One optimisation step on these training-sample indices; resolves with the batch's loss. */
  step(indices: Uint32Array, lr: number): Promise<number>;
  /** The trainable weights as they are now: copies, in the model's own layout, by layer id. */
  snapshot(): ReadonlyMap<string, Float32Array>;
}

export interface Evaluator<F> {
  evaluate(weights: ReadonlyMap<string, Float32Array>): Promise<Evaluation<F>>;
}

export interface LoopOptions<F> {
  steps: number;
  /** Default 'loss'. */
  select?: Selection;
  lr: number;
  batch: number;
  seed: number;
  schedule: Schedule;
  /** Evaluate every this many steps (and after the last). */
  evalEvery: number;
  trainCount: number;
  onStep?: (p: StepProgress) => void;
  onEvaluate?: (e: EvaluationProgress<F>) => void;
  /**
   * With 'loss' selection: a trained checkpoint replaces the start only if its held-out loss is
   * lower by at least this many standard errors of the paired difference (default 2); otherwise
   * the start is kept, the difference being what another draw of held-out samples could undo.
   */
  minImprovementSE?: number;
  /** Each evaluated checkpoint's weights (benchmarks score them on more data). */
  onCheckpoint?: (step: number, weights: ReadonlyMap<string, Float32Array>) => Promise<void>;
  signal?: AbortSignal;
}

export interface LoopResult<F> {
  /** The best checkpoint's weights (the starting weights when no step improved on them). */
  weights: ReadonlyMap<string, Float32Array>;
  /** 0 when the starting weights stayed best. */
  bestStep: number;
  steps: number;
  before: Evaluation<F>;
  after: Evaluation<F>;
  imagesPerSecond: number;
  /** The chosen checkpoint's held-out loss improvement over the start, with its standard error. */
  improvement?: Improvement;
  /** The best trained checkpoint, when its improvement was too small to trust and the start was kept. */
  notSignificant?: { step: number; improvement: Improvement };
  /** Time in training steps and in held-out evaluations. */
  trainMs: number;
  evalMs: number;
  history: { step: number; score: number; loss: number }[];
}

/** Lets signal handlers (Ctrl-C) run between steps, which are otherwise synchronous work. */
function yieldToEvents(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

function better<F>(a: Evaluation<F>, b: Evaluation<F>, select: Selection): boolean {
  if (select === 'loss') return a.loss < b.loss || (a.loss === b.loss && a.score > b.score);
  return a.score > b.score || (a.score === b.score && a.loss < b.loss);
}

export async function runLoop<F>(trainer: Trainer, evaluator: Evaluator<F>, start: ReadonlyMap<string, Float32Array>, o: LoopOptions<F>): Promise<LoopResult<F>> {
  const sampler = new BatchSampler(o.trainCount, o.batch, o.seed);
  o.signal?.throwIfAborted();
  let evalMs = 0;
  const evaluate = async (weights: ReadonlyMap<string, Float32Array>) => {
    const t0 = performance.now();
    const e = await evaluator.evaluate(weights);
    evalMs += performance.now() - t0;
    return e;
  };
  const before = await evaluate(start);
  await o.onCheckpoint?.(0, start);
  const history = [{ step: 0, score: before.score, loss: before.loss }];
  let best = { step: 0, weights: start, evaluation: before };
  o.onEvaluate?.({ step: 0, evaluation: before, best: true });

  const evaluations = Math.ceil(o.steps / o.evalEvery);
  let trainMs = 0;
  let images = 0;
  let average = NaN;
  const began = performance.now();
  for (let step = 1; step <= o.steps; step++) {
    await yieldToEvents();
    o.signal?.throwIfAborted();
    const lr = learningRate(o.schedule, o.lr, step, o.steps);
    const indices = sampler.next();
    const t0 = performance.now();
    const loss = await trainer.step(indices, lr);
    trainMs += performance.now() - t0;
    images += indices.length;
    if (!Number.isFinite(loss)) throw new Error(`the loss became ${loss} at step ${step} (learning rate ${lr.toPrecision(3)} too high?)`);
    average = Number.isNaN(average) ? loss : 0.9 * average + 0.1 * loss;
    const evalsLeft = evaluations - Math.floor(step / o.evalEvery);
    const perEval = evalMs / history.length;
    o.onStep?.({
      step, steps: o.steps, loss, lossAverage: average, lr,
      imagesPerSecond: images / (trainMs / 1000),
      elapsedMs: performance.now() - began,
      etaMs: (trainMs / step) * (o.steps - step) + perEval * evalsLeft,
    });
    if (step % o.evalEvery === 0 || step === o.steps) {
      await yieldToEvents();
      o.signal?.throwIfAborted();
      const weights = trainer.snapshot();
      const evaluation = await evaluate(weights);
      await o.onCheckpoint?.(step, weights);
      history.push({ step, score: evaluation.score, loss: evaluation.loss });
      const isBest = better(evaluation, best.evaluation, o.select ?? 'loss');
      if (isBest) best = { step, weights, evaluation };
      o.onEvaluate?.({ step, evaluation, best: isBest });
    }
  }
  let notSignificant: LoopResult<F>['notSignificant'];
  const guard = o.minImprovementSE ?? 2;
  if ((o.select ?? 'loss') === 'loss' && best.step !== 0 && guard > 0) {
    const imp = pairedImprovement(before, best.evaluation);
    if (imp && !(imp.loss >= guard * imp.stdError)) {
      notSignificant = { step: best.step, improvement: imp };
      best = { step: 0, weights: start, evaluation: before };
    }
  }
  return {
    notSignificant,
    weights: best.weights,
    bestStep: best.step,
    steps: o.steps,
    before,
    after: best.evaluation,
    improvement: best.step === 0 ? undefined : pairedImprovement(before, best.evaluation),
    imagesPerSecond: trainMs > 0 ? images / (trainMs / 1000) : 0,
    trainMs,
    evalMs,
    history,
  };
}
