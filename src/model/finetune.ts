/**
 * The fine-tuning contract (LoadedModel.finetune): what a request says, what a run reports while it
 * goes, and what it returns. The loop is core/finetune/; the fine-tuners are in src/models
 * (an ONNX model in TF.js: models/onnx/finetune-in-tfjs.ts; a TF.js model in TF.js:
 * models/tfjs/finetune-in-tfjs.ts).
 */
import type { Dataset } from './dataset.js';
import type { QualityFigures } from './quality.js';

/** onnxruntime execution providers kprune can ask for (onnxruntime-node offers what its build has). */
export type Device = 'cpu' | 'cuda' | 'coreml' | 'dml';

export type OptimizerName = 'sgd' | 'adam';

/** TF.js backends kprune can run on (tfjs-node's is 'tensorflow'). */
export type TfjsBackend = 'tensorflow' | 'wasm' | 'cpu';

/** The learning-rate schedule after warm-up. */
export type Schedule = 'cosine' | 'constant';

/**
 * What training minimises. With labels: cross-entropy, by default together with distillation from
 * the original (`cross-entropy+distill`, Hinton et al.'s combined loss), which recovers more than
 * labels alone; without labels: distillation (softened KL for classifiers, MSE otherwise).
 */
export type Objective = 'cross-entropy' | 'cross-entropy+distill' | 'distill-kl' | 'distill-mse';

/**
 * How checkpoints are compared: by held-out `loss` (ties by score), or by `score` (accuracy,
 * agreement; ties by loss). Loss is the default: on a held-out set of a thousand images, accuracy
 * moves in steps of 0.1 point with a standard error near 0.7, and on images the original was
 * trained on it favours the memorising start; the loss moves with the small real gains that
 * fine-tuning makes (bench/finetune.ts has the measurement).
 */
export type Selection = 'loss' | 'score';

export interface Evaluation<F> {
  /** Higher is better: top-1 accuracy, agreement with the original, or minus a distance. */
  score: number;
  /** Lower is better; breaks ties of `score` (held-out sets are small, ties are common). */
  loss: number;
  figures: F;
  /** Each held-out sample's loss (mean = `loss`), to measure the noise of a comparison. */
  samples?: Float64Array;
}

export interface StepProgress {
  step: number;
  steps: number;
  /** This batch's loss, and an exponential moving average (what a progress bar should show). */
  loss: number;
  lossAverage: number;
  lr: number;
  /** Training images per second so far (steps only, evaluations excluded). */
  imagesPerSecond: number;
  elapsedMs: number;
  /** Remaining time, evaluations included, from the average so far. */
  etaMs: number;
}

export interface EvaluationProgress<F> {
  step: number;
  evaluation: Evaluation<F>;
  /** Is this the best checkpoint so far? */
  best: boolean;
}

export interface FinetuneData {
  /** Samples the filters train on (with labels for cross-entropy). */
  train: Dataset;
  /** Samples that choose the checkpoint; never trained on. */
  heldOut: Dataset;
}

export interface FinetuneOptions {
  /** Optimiser steps (0: only evaluate the starting weights). */
  steps: number;
  /** Base learning rate (default 3e-3 for Adam, 1e-2 for SGD), warmed up then cosine-decayed. */
  lr?: number;
  /** Samples per step (default 64). */
  batch?: number;
  /** Default 'adam'. */
  optimizer?: OptimizerName;
  /** SGD momentum (default 0.9). */
  momentum?: number;
  /** Batch order (default 0). Same seed, data and options: the same weights, bit for bit. */
  seed?: number;
  /** Train on labels (cross-entropy); false: distil from the original model. */
  labels: boolean;
  /**
   * With labels, also distil from the original (default true): loss = (1 - w) CE + w T^2 KL with
   * w = `distillWeight`. Labels alone recovered nothing on the bundled ResNet (see bench/finetune.ts).
   */
  distill?: boolean;
  /** Weight w of the distillation term next to cross-entropy (default 0.9, Hinton et al.'s usual share). */
  distillWeight?: number;
  /** Softening temperature of distillation for classifiers (default 2). */
  temperature?: number;
  /** Evaluate the held-out set every this many steps (default: 10 times per run, at least every 10 steps). */
  evalEvery?: number;
  /** Default 'cosine'. */
  schedule?: Schedule;
  /** How the checkpoint is chosen on held-out data: by the objective's loss (default) or by accuracy/agreement. */
  select?: Selection;
  /** A trained checkpoint must beat the start's held-out loss by this many standard errors (default 2; 0: any improvement). */
  minImprovementSE?: number;
  /** A TF.js backend to use instead of kprune's choice (benchmarks, tests). */
  backend?: TfjsBackend;
  /**
   * ONNX models: 'auto' (default) trains in onnxruntime when every operator on the gradient path
   * has a backward rule, else in TF.js; 'onnxruntime' or 'tfjs' insists on one.
   */
  engine?: FinetuneEngineChoice;
  /** onnxruntime execution provider (default cpu). */
  device?: Device;
  /** onnxruntime intra-op threads (default: its own choice, one per physical core). */
  threads?: number;
  /**
   * onnxruntime on the CPU: split each batch over this many worker threads, each with a one-thread
   * session (runtime/ort/train-pool.ts); 0 or 1: one session with `threads` threads. Default:
   * `threads` when given, else the machine's cores (up to 8).
   */
  workers?: number;
  /**
   * ONNX in onnxruntime: the value the loss reads (default: the model's output, before any final
   * softmax). An intermediate value (distilled by mean squared error) trains a block of layers
   * against the original's output of that block (measured in bench/block-recon.ts).
   */
  head?: string;
  onStep?: (p: StepProgress) => void;
  onEvaluate?: (e: EvaluationProgress<QualityFigures>) => void;
  /** Each evaluated checkpoint's weights (benchmarks score them on more data). */
  onCheckpoint?: (step: number, weights: ReadonlyMap<string, Float32Array>) => Promise<void>;
  /** Aborting stops between steps; the promise then rejects with the signal's reason. */
  signal?: AbortSignal;
}

export interface HeldOutFigures extends QualityFigures {
  /** The objective's loss on the held-out samples (cross-entropy, KL or MSE). */
  loss: number;
}

export interface FinetuneResult {
  /** The best checkpoint's filters by layer id (every layer given; zero outside each mask). */
  weights: ReadonlyMap<string, Float32Array>;
  /** What ran the training, e.g. "TF.js 4.22.0 (wasm backend)". */
  backend: string;
  /** The engine that trained: onnxruntime (a training graph kprune built) or TF.js. */
  engine: FinetuneEngine;
  /**
   * Why an ONNX model trained in TF.js rather than onnxruntime: the operators on the gradient
   * path without a backward rule, as "Op (node): reason". Empty when onnxruntime trained, or for
   * TF.js models.
   */
  missingOperators: string[];
  /** Another reason an ONNX model trained in TF.js rather than onnxruntime, when there was one. */
  engineNote?: string;
  objective: Objective;
  steps: number;
  /** The step of the checkpoint returned (0: the starting weights stayed best). */
  bestStep: number;
  batch: number;
  /** Training images per second (training steps only). */
  imagesPerSecond: number;
  trainMs: number;
  evalMs: number;
  wallMs: number;
  heldOut: {
    samples: number;
    /** The score: top-1 with labels, agreement with the original without, MSE otherwise. */
    metric: 'top1' | 'agreement' | 'mse';
    /** What chose the checkpoint: the held-out loss or that score. */
    selectedBy: Selection;
    before: HeldOutFigures;
    after: HeldOutFigures;
    /**
     * The chosen checkpoint's held-out loss below the start's and the standard error of that
     * difference (paired over the samples): the noise of the choice.
     */
    improvement?: { loss: number; stdError: number };
    /**
     * The best trained checkpoint when its improvement was under two standard errors and the start
     * was kept instead (the difference being what another held-out draw could undo).
     */
    notSignificant?: { step: number; improvement: { loss: number; stdError: number } };
  };
  history: { step: number; score: number; loss: number }[];
}

export type FinetuneEngine = 'onnxruntime' | 'tfjs';

export type FinetuneEngineChoice = 'auto' | FinetuneEngine;

/**
 * How far the chosen checkpoint's held-out loss is below the start's, and the standard error of
 * that difference (paired over the same samples): an improvement of a few standard errors is a
 * real one; one within about two is what a different draw of held-out samples could undo.
 */
export interface Improvement {
  loss: number;
  stdError: number;
}
