/**
 * What the fine-tuners share (an ONNX model in TF.js, models/onnx/finetune-in-tfjs.ts; a TF.js
 * model in TF.js, models/tfjs/finetune-in-tfjs.ts): checking the options, the loop run with their
 * defaults, and the result. The types are the contract's (model/finetune.ts).
 */
import type { Conv3x3Layer, Mask } from '../../model/conv.js';
import { layerParams } from '../../model/conv.js';
import type {
  Evaluation, FinetuneData, FinetuneEngine, FinetuneEngineChoice, FinetuneOptions, FinetuneResult, HeldOutFigures, Objective, OptimizerName,
} from '../../model/finetune.js';
// Re-exported for code written against this module before the contract types moved to src/model.
export type { FinetuneData, FinetuneEngine, FinetuneEngineChoice, FinetuneOptions, FinetuneResult, HeldOutFigures };
import type { QualityFigures } from '../../model/quality.js';
import { Trainer, runLoop } from './loop.js';
import { maskHas } from '../lattice.js';
import { KpruneError } from '../../errors.js';

export const DEFAULT_BATCH = 64;
/**
 * Measured on the bundled ResNet and VGG with a cross (bench/finetune.ts --sections recipe, 5,000
 * validation images): 2 beat 4 on VGG by 0.26 points and trailed it on ResNet by 0.16, within the
 * noise; 1 lost a real gain on ResNet to the checkpoint guard.
 */
const DEFAULT_TEMPERATURE = 2;
const DEFAULT_DISTILL_WEIGHT = 0.9;
const DEFAULT_MOMENTUM = 0.9;
const DEFAULT_ADAM_LR = 3e-3;
const DEFAULT_SGD_LR = 1e-2;
export const EVAL_BATCH = 256;
/** The TF.js run of the starting weights must match onnxruntime's this closely before training. */
const AGREEMENT_TOLERANCE = 1e-3;

export function usage(message: string, file: string, suggestion?: string): KpruneError {
  return new KpruneError('usage', message, { file, suggestion });
}

export function checkFinetuneOptions(file: string, layers: Conv3x3Layer[], start: ReadonlyMap<string, Float32Array>, masks: Map<string, Mask>, data: FinetuneData, o: FinetuneOptions): void {
  if (!Number.isInteger(o.steps) || o.steps < 0) throw usage(`--finetune takes a whole number of steps, got ${o.steps}`, file);
  if (o.lr !== undefined && !(o.lr > 0 && Number.isFinite(o.lr))) throw usage(`--lr must be a positive number, got ${o.lr}`, file);
  if (o.batch !== undefined && !(Number.isInteger(o.batch) && o.batch >= 1)) throw usage(`--batch must be a positive whole number, got ${o.batch}`, file);
  if (o.momentum !== undefined && !(o.momentum >= 0 && o.momentum < 1)) throw usage(`momentum must be in [0, 1), got ${o.momentum}`, file);
  if (o.temperature !== undefined && !(o.temperature > 0)) throw usage(`the distillation temperature must be positive, got ${o.temperature}`, file);
  if (o.distillWeight !== undefined && !(o.distillWeight >= 0 && o.distillWeight <= 1)) throw usage(`the distillation weight must be in [0, 1], got ${o.distillWeight}`, file);
  if (o.evalEvery !== undefined && !(Number.isInteger(o.evalEvery) && o.evalEvery >= 1)) throw usage(`evalEvery must be a positive whole number, got ${o.evalEvery}`, file);
  if (o.threads !== undefined && !(Number.isInteger(o.threads) && o.threads >= 0)) throw usage(`--threads must be a whole number >= 0, got ${o.threads}`, file);
  if (data.train.count < 1) throw usage('fine-tuning needs training samples', file);
  if (data.heldOut.count < 1) throw usage('fine-tuning needs held-out samples to choose the checkpoint', file);
  if (o.labels && (!data.train.labels || !data.heldOut.labels)) {
    throw usage('fine-tuning with labels needs labelled training and held-out data', file, 'use a labelled data set, or fine-tune without labels (distillation from the original model)');
  }
  if (layers.length === 0) throw usage('there are no reshaped 3x3 layers to fine-tune', file);
  for (const l of layers) {
    const w = start.get(l.id);
    const mask = masks.get(l.id);
    if (!w || w.length !== layerParams(l)) throw usage(`no starting weights of the right size for layer "${l.name}" (${l.id})`, file);
    if (mask === undefined) throw usage(`no mask for layer "${l.name}" (${l.id})`, file);
    for (let i = 0; i < w.length; i++) {
      if (w[i] !== 0 && !maskHas(mask, i % 9)) throw usage(`the starting weights of layer "${l.name}" are not zero outside its mask`, file);
    }
  }
}

function figuresOf(e: Evaluation<QualityFigures>): HeldOutFigures {
  return { ...e.figures, loss: e.loss };
}

/**
 * Before training, the path that trains must compute what the model computes (`reference`), or the
 * training would optimise a different function than the one written. Throws, saying `what`, if not.
 */
export function checkAgreement(trained: Float32Array, reference: Float32Array, what: string, file: string): void {
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < reference.length; i++) {
    diff = Math.max(diff, Math.abs(trained[i] - reference[i]));
    scale = Math.max(scale, Math.abs(reference[i]));
  }
  // Written so that NaN fails too.
  if (trained.length !== reference.length || !(diff <= AGREEMENT_TOLERANCE * Math.max(scale, 1e-6))) {
    throw new KpruneError('runtime', `${what} (largest difference ${diff.toPrecision(3)} at output scale ${scale.toPrecision(3)}); fine-tuning would train a different function`, { file });
  }
}

/** The optimiser and loss settings of a run, defaults filled in (what TfjsTrainer takes). */
export function trainSettings(o: FinetuneOptions): { optimizer: OptimizerName; temperature: number; distillWeight: number; momentum: number } {
  return {
    optimizer: o.optimizer ?? 'adam',
    temperature: o.temperature ?? DEFAULT_TEMPERATURE,
    distillWeight: o.distillWeight ?? DEFAULT_DISTILL_WEIGHT,
    momentum: o.momentum ?? DEFAULT_MOMENTUM,
  };
}

/** What one fine-tuner brings to the shared loop. */
export interface LoopParts {
  trainer: Trainer;
  /** Scores weights (by layer id, the core's layout) on the held-out samples. */
  evaluate(weights: ReadonlyMap<string, Float32Array>): Promise<Evaluation<QualityFigures>>;
  /** What ran the training, e.g. "TF.js 4.22.0 (wasm backend)". */
  backend: string;
  /** Default 'tfjs'. */
  engine?: FinetuneEngine;
  objective: Objective;
  batch: number;
  optimizer: OptimizerName;
}

/** Runs the loop with the options' defaults and assembles the result. */
export async function runFinetuneLoop(parts: LoopParts, start: ReadonlyMap<string, Float32Array>, data: FinetuneData, options: FinetuneOptions, began: number): Promise<FinetuneResult> {
  const result = await runLoop(parts.trainer, { evaluate: (w) => parts.evaluate(w) }, start, {
    steps: options.steps,
    lr: options.lr ?? (parts.optimizer === 'adam' ? DEFAULT_ADAM_LR : DEFAULT_SGD_LR),
    batch: parts.batch,
    seed: options.seed ?? 0,
    schedule: options.schedule ?? 'cosine',
    select: options.select ?? 'loss',
    minImprovementSE: options.minImprovementSE,
    evalEvery: options.evalEvery ?? Math.max(10, Math.ceil(options.steps / 10)),
    trainCount: data.train.count,
    onStep: options.onStep,
    onEvaluate: options.onEvaluate,
    onCheckpoint: options.onCheckpoint,
    signal: options.signal,
  });
  return {
    weights: result.weights,
    backend: parts.backend,
    engine: parts.engine ?? 'tfjs',
    missingOperators: [],
    objective: parts.objective,
    steps: result.steps,
    bestStep: result.bestStep,
    batch: parts.batch,
    imagesPerSecond: result.imagesPerSecond,
    trainMs: result.trainMs,
    evalMs: result.evalMs,
    wallMs: performance.now() - began,
    heldOut: {
      samples: data.heldOut.count,
      metric: parts.objective === 'distill-kl' ? 'agreement' : parts.objective === 'distill-mse' ? 'mse' : 'top1',
      selectedBy: options.select ?? 'loss',
      before: figuresOf(result.before),
      after: figuresOf(result.after),
      ...(result.improvement ? { improvement: result.improvement } : {}),
      ...(result.notSignificant ? { notSignificant: result.notSignificant } : {}),
    },
    history: result.history,
  };
}
