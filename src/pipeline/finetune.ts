/**
 * The fine-tuning step of a prune run: the training pool (calibration samples plus the extra ones
 * loaded for fine-tuning) is split into training and held-out samples (the evaluation samples are
 * never seen), the reshaped 3x3 weights train briefly, and the best held-out checkpoint is kept.
 */
import { Mask } from '../core/lattice.js';
import { Dataset } from '../model/dataset.js';
import { KpruneError } from '../errors.js';
import { LoadedModel } from '../models/index.js';
import type { FinetuneResult } from '../model/finetune.js';
import type { FinetuneEngineChoice } from '../core/finetune/run.js';
import type { Device } from '../runtime/ort/training-session.js';
import { DataContext } from './recover.js';
import { ProgressListener } from './progress.js';

export interface FinetuneRequest {
  /** Optimiser steps. */
  steps: number;
  lr?: number;
  /** Samples per step (default 64). */
  batch?: number;
  optimizer?: 'sgd' | 'adam';
  /**
   * Training samples (default: one pass, steps x batch, at most 40,000), loaded beside the
   * calibration samples; 1,000 more (or 15%) are held out to choose the checkpoint.
   */
  samples?: number;
  /** Cancels between steps (the CLI's Ctrl-C ends the process and writes nothing). */
  signal?: AbortSignal;
  /** ONNX models: the engine (default auto: onnxruntime when every operator has a backward rule). */
  engine?: FinetuneEngineChoice;
  /** onnxruntime execution provider (default cpu). */
  device?: Device;
  /** onnxruntime intra-op threads (default: its own choice). */
  threads?: number;
  /** onnxruntime on the CPU: worker threads a batch is split over (see FinetuneOptions.workers). */
  workers?: number;
}

/** Held-out samples: enough to rank checkpoints by loss; the rest trains. */
const HELD_OUT_SHARE = 0.15;
const MIN_HELD_OUT = 32;
const MAX_HELD_OUT = 1000;
const DEFAULT_BATCH = 64;
/**
 * Measured with 1,000-1,500 steps on the bundled VGG and ResNet (bench/finetune.ts): 40,000 samples
 * recovered 0.1-0.2 points more on VGG than 20,000; on ResNet the two were within the noise.
 */
const MAX_DEFAULT_SAMPLES = 40_000;

/** Samples to load for fine-tuning, training and held out together. */
export function finetuneSampleCount(r: FinetuneRequest): number {
  const train = r.samples ?? Math.min(MAX_DEFAULT_SAMPLES, r.steps * (r.batch ?? DEFAULT_BATCH));
  return train + Math.min(MAX_HELD_OUT, Math.max(MIN_HELD_OUT, Math.round(train * HELD_OUT_SHARE)));
}

function slice(d: Dataset, from: number, to: number, what: string): Dataset {
  const per = d.sampleDims.reduce((a, b) => a * b, 1);
  return {
    ...d,
    source: `${d.source}; ${what}: samples ${from}..${to - 1}`,
    count: to - from,
    x: d.x.subarray(from * per, to * per),
    ...(d.labels ? { labels: d.labels.subarray(from, to) } : {}),
  };
}

export function splitForFinetune(calib: Dataset): { train: Dataset; heldOut: Dataset } {
  const held = Math.min(MAX_HELD_OUT, Math.max(MIN_HELD_OUT, Math.round(calib.count * HELD_OUT_SHARE)));
  if (calib.count < held + MIN_HELD_OUT) {
    throw new KpruneError('usage', `fine-tuning needs at least ${held + MIN_HELD_OUT} calibration samples (training plus held-out), got ${calib.count}`, { suggestion: 'raise --calib' });
  }
  return { train: slice(calib, 0, calib.count - held, 'fine-tuning'), heldOut: slice(calib, calib.count - held, calib.count, 'held out') };
}

export async function finetuneWeights(
  ctx: DataContext,
  model: LoadedModel,
  masks: Map<string, Mask>,
  start: ReadonlyMap<string, Float32Array>,
  request: FinetuneRequest,
  onProgress?: ProgressListener,
): Promise<FinetuneResult> {
  if (!model.finetune) {
    throw new KpruneError('unsupported', `fine-tuning is not available for ${model.format} models yet`, { file: model.path, suggestion: 'use --recover reconstruct alone' });
  }
  if (!(request.steps > 0)) throw new KpruneError('usage', `--finetune takes a number of steps > 0, got ${request.steps}`);
  const data = splitForFinetune(ctx.split.calib);
  return model.finetune(start, masks, data, {
    steps: request.steps,
    lr: request.lr,
    batch: request.batch,
    optimizer: request.optimizer,
    seed: ctx.options.seed ?? 0,
    labels: data.train.labels !== undefined,
    signal: request.signal,
    engine: request.engine,
    device: request.device,
    threads: request.threads,
    workers: request.workers,
    onStep: (p) => onProgress?.({
      phase: 'fine-tuning', done: p.step, total: p.steps, unit: 'steps',
      detail: `loss ${p.lossAverage.toFixed(4)}, ${Math.round(p.imagesPerSecond)} img/s`,
    }),
  });
}
