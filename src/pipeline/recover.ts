/**
 * The data-driven steps of a prune run: load calibration and evaluation data that fit the model,
 * choose shapes from reconstruction error (`auto`), reconstruct, and measure quality.
 */
import { FULL_MASK, Mask } from '../core/lattice.js';
import { Conv3x3Layer } from '../model/conv.js';
import { LinearLayer, inGraphOrder } from '../core/recover/linear.js';
import { BiasCorrectionMode, LayerRecovery, Objective, candidateLosses, layerSampler, reconstruct, DEFAULT_RIDGE, DEFAULT_ROWS_PER_IMAGE } from '../core/recover/reconstruct.js';
import { LayerwiseSource, PropagationInfo, rerunSource } from '../core/recover/propagation.js';
import { loadData } from '../data/index.js';
import { DEFAULT_OCCLUSION_AREA, occlude } from '../data/occlusion.js';
import { DataSplit, Dataset, PresetName, Preprocess } from '../data/types.js';
import { KpruneError } from '../errors.js';
import { LoadedModel } from '../models/index.js';
import { RunnerCache, collectOutputs, datasetActivationSource } from './evaluate.js';
import { ModelRunner } from '../model/runner.js';
import { OutputSet } from '../model/quality.js';
import { isClassifierOutput, quality } from '../core/metrics.js';
import { ProgressListener } from './progress.js';
import type { MeasuredAccuracy, QualityPair } from '../report/report.js';
import { GramEngine } from '../core/recover/layer-stats.js';
import { createOrtGramEngine } from '../runtime/ort/gram-engine.js';
import { pushAll } from '../util/arrays.js';
import { checkLimit } from '../util/limits.js';

export interface DataOptions {
  /** `fashion-mnist`, an image folder, an .npy/.npz file, or an IDX images file. */
  data: string;
  /** Calibration samples (default 512). */
  calib?: number;
  /** Evaluation samples (default 2000). */
  eval?: number;
  seed?: number;
  preset?: PresetName;
  preprocess?: Partial<Preprocess>;
  /** Share of the image area the occlusion patch covers (default 0.25; 0 turns it off). */
  occlusion?: number;
  /**
   * Extra training samples to load for fine-tuning (drawn with the calibration samples, from the
   * same pool; the first `calib` of them calibrate the reconstruction). 0 when not fine-tuning.
   */
  finetuneSamples?: number;
  /** Ridge strength for reconstruction, relative to the Gram diagonal. */
  ridge?: number;
  /** Output positions per image used as least-squares rows. */
  rowsPerImage?: number;
  /**
   * How reconstruction computes each layer's inputs and targets: `segments` (default) from cached
   * activations, running only the graph between consecutive 3x3 layers; `rerun` runs the whole
   * model twice per layer (the engine before segments; also the fallback where segments cannot run).
   */
  propagation?: 'segments' | 'rerun';
  /** Memory for cached activations during reconstruction, in MiB (default 2048); beyond it, a temporary file. */
  recoverMemory?: number;
  /**
   * Linear layers downstream of reshaped 3x3 layers re-solved (unmasked least squares) to
   * compensate: `linear` (1x1 convolutions and dense layers), `pointwise` (1x1 convolutions only),
   * `auto` (default: `linear`, but only downstream of reshaped depthwise or grouped layers, which
   * have too few weights left to compensate themselves) or `none`. ONNX models, and TF.js
   * LayersModels (their plain 1x1 Conv2D layers).
   */
  compensate?: Compensate;
  /** Fit each reconstructed layer's bias with its weights (ONNX models; default DEFAULT_FIT_BIAS). */
  fitBias?: boolean;
  /** What each layer matches: its output (`output`) or what survives a ReLU after it (`relu`). */
  objective?: Objective;
  /** With the `relu` objective: passes, each from the previous solution (default 1). */
  reluPasses?: number;
  /** Per-channel bias correction after each layer's solve (default DEFAULT_BIAS_CORRECTION). */
  biasCorrection?: BiasCorrectionMode;
}

export const DEFAULT_FIT_BIAS = false;

export type Compensate = 'none' | 'pointwise' | 'linear' | 'auto';
/**
 * Measured (bench:recover, full Fashion-MNIST test set): on the depthwise-separable fixture cross
 * went from 71.71% to 83.95% and qh from 87.13% to 88.83% with `linear`; on the VGG and ResNet
 * fixtures (standard convolutions, whose next 3x3 layer already compensates) it changed top-1 by
 * 0.00 to -0.12 points at up to 2.5x the reconstruction time: hence `auto`.
 */
export const DEFAULT_COMPENSATE: Compensate = 'auto';

export const DEFAULT_RECOVER_MEMORY_MIB = 2048;

export const DEFAULT_CALIB = 512;
export const DEFAULT_EVAL = 2000;

export interface DataContext {
  split: DataSplit;
  /** The calibration samples for reconstruction: the first `calib` of split.calib. */
  calib: Dataset;
  /** The original model, with every compute value that recovery gathers exposed. */
  runner: ModelRunner;
  runners: RunnerCache;
  engine: GramEngine & { release(): Promise<void> };
  /** Class count of a classifier model, when its output says so. */
  classes?: number;
  options: DataOptions;
}

/** Output dims of one sample, from a run on zeros at the model's own input size (if static). */
async function probeOutputDims(model: LoadedModel, runner: ModelRunner): Promise<number[] | undefined> {
  const dims = model.inputs[0]?.dims ?? [];
  const concrete = dims.map((d, i) => (typeof d === 'number' && d > 0 ? d : i === 0 ? 1 : NaN));
  if (concrete.some((d) => Number.isNaN(d))) return undefined;
  const elements = concrete.reduce((a, b) => a * b, 1);
  checkLimit('inputElements', elements, `the model declares input "${model.inputs[0].name}" as [${concrete.join(', ')}]`, model.path);
  const out = (await runner.run(new Float32Array(elements), concrete)).get(runner.outputNames[0]);
  return out?.dims.slice(1);
}

/** One map per model, so the runner cache can recognise the original weights by identity. */
const ORIGINAL_WEIGHTS = new WeakMap<LoadedModel, Map<string, Float32Array>>();

export function originalWeightsOf(model: LoadedModel): ReadonlyMap<string, Float32Array> {
  let w = ORIGINAL_WEIGHTS.get(model);
  if (!w) {
    w = new Map(model.layers.map((l) => [l.id, l.weights]));
    ORIGINAL_WEIGHTS.set(model, w);
  }
  return w;
}

/**
 * A dense layer has one least-squares row per calibration image: with fewer than this many rows per
 * unknown it would fit the calibration images rather than the data (measured: re-solving a
 * 3,136-input head from 512 images cost accuracy), so it is left alone.
 */
export const MIN_ROWS_PER_UNKNOWN = 4;

/** The linear layers recovery compensates with, for the reshaped layers among `reshaped`. */
export function compensatingLayers(model: LoadedModel, reshaped: Set<string>, mode: Compensate, calib = Infinity): LinearLayer[] {
  if (mode === 'none' || !model.linearLayers) return [];
  const from = mode === 'auto' ? new Set(model.layers.filter((l) => reshaped.has(l.id) && l.kind !== 'standard').map((l) => l.id)) : reshaped;
  if (from.size === 0) return [];
  return model.linearLayers(from).filter((l) => l.linear.kind === 'conv1x1' || (mode !== 'pointwise' && calib >= MIN_ROWS_PER_UNKNOWN * l.inChannelsPerGroup));
}

export async function openData(model: LoadedModel, options: DataOptions): Promise<DataContext> {
  // Every value recovery may fetch from the original: 3x3 layers' and compensating layers' inputs and outputs.
  const steps = [...model.layers, ...compensatingLayers(model, new Set(model.layers.map((l) => l.id)), options.compensate ?? DEFAULT_COMPENSATE)];
  const exposed = steps.flatMap((l) => l.uses.flatMap((u) => [u.input, u.output]));
  const originalWeights = originalWeightsOf(model);
  const runner = await model.createRunner(originalWeights, exposed);
  try {
    const outDims = await probeOutputDims(model, runner);
    const classes = outDims && isClassifierOutput(outDims) ? outDims[0] : undefined;
    const split = await loadData(options.data, {
      inputDims: model.inputs[0].dims,
      calib: (options.calib ?? DEFAULT_CALIB) + (options.finetuneSamples ?? 0),
      eval: options.eval ?? DEFAULT_EVAL,
      seed: options.seed ?? 0,
      preset: options.preset,
      preprocess: options.preprocess,
      numClasses: classes,
    });
    // One run on real data: a shape mismatch surfaces here as a clear error, not mid-recovery.
    const one: Dataset = { ...split.eval, count: 1, x: split.eval.x.subarray(0, split.eval.sampleDims.reduce((a, b) => a * b, 1)) };
    try {
      await collectOutputs(runner, one);
    } catch (e) {
      throw new KpruneError('bad-data', `the data (samples of dims [${split.eval.sampleDims.join(', ')}]) does not fit the model's input [${model.inputs[0].dims.join(', ')}]`, { file: options.data, cause: e });
    }
    const runners = new RunnerCache((w) => model.createRunner(w, exposed), runner, originalWeights);
    const engine = await createOrtGramEngine();
    const calibCount = Math.min(options.calib ?? DEFAULT_CALIB, split.calib.count);
    const per = split.calib.sampleDims.reduce((a, b) => a * b, 1);
    const calib: Dataset = calibCount === split.calib.count ? split.calib : {
      ...split.calib,
      source: `${split.calib.source}; reconstruction uses the first ${calibCount}`,
      count: calibCount,
      x: split.calib.x.subarray(0, calibCount * per),
      ...(split.calib.labels ? { labels: split.calib.labels.subarray(0, calibCount) } : {}),
    };
    return { split, calib, runner, runners, engine, classes, options };
  } catch (e) {
    await runner.release();
    throw e;
  }
}

function layerProgress(onProgress: ProgressListener | undefined, phase: string) {
  return (done: number, total: number, name: string) => onProgress?.({ phase, done, total, unit: 'layers', detail: name });
}

/** The data-aware losses of `--shape auto`: each layer's candidates scored on the original model. */
export async function dataAwareLosses(ctx: DataContext, model: LoadedModel, onProgress?: ProgressListener): Promise<Map<string, number[]>> {
  const source = await layerwiseSource(ctx, model, inGraphOrder(model.layers));
  try {
    return await candidateLosses(model.layers, originalWeightsOf(model), source, {
      ridge: ctx.options.ridge, rowsPerImage: ctx.options.rowsPerImage, seed: ctx.options.seed, engine: ctx.engine, onLayer: layerProgress(onProgress, 'scoring shapes'),
    });
  } finally {
    await source.release();
  }
}

/** The source of each layer's inputs and targets: segments where the model allows, else reruns. */
async function layerwiseSource(ctx: DataContext, model: LoadedModel, ordered: Conv3x3Layer[]): Promise<LayerwiseSource> {
  const samplerFor = (l: Parameters<typeof layerSampler>[0]) => layerSampler(l, ctx.options);
  const activations = datasetActivationSource(ctx.runners, ctx.calib);
  let reason: string | undefined;
  if ((ctx.options.propagation ?? 'segments') === 'segments') {
    if (!model.layerwiseSource) {
      reason = `segments are not implemented for ${model.format} models`;
    } else {
      const source = await model.layerwiseSource(ordered, {
        x: ctx.calib.x,
        count: ctx.calib.count,
        sampleDims: ctx.calib.sampleDims,
        chunk: activations.batch,
        original: ctx.runner,
        samplerFor,
        memoryBudget: (ctx.options.recoverMemory ?? DEFAULT_RECOVER_MEMORY_MIB) * 2 ** 20,
      });
      if (!('obstacle' in source)) return source;
      reason = source.obstacle;
    }
  }
  return rerunSource(activations, originalWeightsOf(model), samplerFor, reason);
}

export async function recoverWeights(
  ctx: DataContext,
  model: LoadedModel,
  masks: Map<string, Mask>,
  masked: ReadonlyMap<string, Float32Array>,
  onProgress?: ProgressListener,
): Promise<{ weights: ReadonlyMap<string, Float32Array>; layers: LayerRecovery[]; propagation: PropagationInfo }> {
  const reshaped = new Set([...masks].filter(([, m]) => m !== FULL_MASK).map(([id]) => id));
  const steps = inGraphOrder([...model.layers, ...compensatingLayers(model, reshaped, ctx.options.compensate ?? DEFAULT_COMPENSATE, ctx.calib.count)]);
  const source = await layerwiseSource(ctx, model, steps);
  try {
    const fitBias = (ctx.options.fitBias ?? DEFAULT_FIT_BIAS) && model.adjustableBiases ? model.adjustableBiases() : undefined;
    return await reconstruct(steps, originalWeightsOf(model), masks, masked, source, {
      fitBias,
      objective: ctx.options.objective,
      biasCorrection: ctx.options.biasCorrection,
      adjustableBiases: model.adjustableBiases?.(),
      reluPasses: ctx.options.reluPasses,
      ridge: ctx.options.ridge, rowsPerImage: ctx.options.rowsPerImage, seed: ctx.options.seed, engine: ctx.engine, onLayer: layerProgress(onProgress, 'reconstructing'),
    });
  } finally {
    await source.release();
  }
}

/** The evaluation samples, clean and (unless turned off) occluded. */
export function evaluationSets(ctx: DataContext): { sets: Dataset[]; occlusion: string | null } {
  const area = ctx.options.occlusion ?? DEFAULT_OCCLUSION_AREA;
  const clean = ctx.split.eval;
  const occluded = area > 0 ? occlude(clean, area, (ctx.options.seed ?? 0) + 1) : null;
  return { sets: occluded ? [clean, occluded] : [clean], occlusion: occluded ? occluded.source.slice(clean.source.length + 2) : null };
}

/**
 * Runs every runner on the same evaluation samples (clean and occluded). The first is the
 * reference: each of the others is also compared with it (agreement, or distance for outputs that
 * are not class scores).
 */
export async function evaluateRunners(ctx: DataContext, runners: ModelRunner[], onProgress?: ProgressListener): Promise<{ pairs: QualityPair[]; classifier: boolean; occlusion: string | null }> {
  const { sets, occlusion } = evaluationSets(ctx);
  const labels = ctx.split.eval.labels;
  const total = runners.length * sets.length;
  let done = 0;
  const reference: OutputSet[] = [];
  const pairs: QualityPair[] = [];
  for (const [k, runner] of runners.entries()) {
    const outs: OutputSet[] = [];
    for (const set of sets) {
      outs.push(await collectOutputs(runner, set));
      onProgress?.({ phase: 'evaluating', done: ++done, total, unit: 'passes' });
    }
    if (k === 0) pushAll(reference, outs);
    const vs = (i: number) => (k === 0 ? undefined : reference[i]);
    pairs.push({ clean: quality(outs[0], labels, vs(0)), ...(outs[1] ? { occluded: quality(outs[1], labels, vs(1)) } : {}) });
  }
  return { pairs, classifier: isClassifierOutput(reference[0]?.sampleDims ?? []), occlusion };
}

/** Evaluates the original and the reshaped weights in memory, and the written file from disk. */
export async function evaluateQuality(
  ctx: DataContext,
  model: LoadedModel,
  reshaped: ReadonlyMap<string, Float32Array>,
  written: LoadedModel,
  onProgress?: ProgressListener,
  reconstructed?: ReadonlyMap<string, Float32Array>,
): Promise<MeasuredAccuracy> {
  const writtenRunner = await written.createRunner(new Map(), []);
  const reshapedRunner = await model.createRunner(reshaped, []);
  const reconstructedRunner = reconstructed ? await model.createRunner(reconstructed, []) : null;
  try {
    const runners = [ctx.runner, reshapedRunner, writtenRunner, ...(reconstructedRunner ? [reconstructedRunner] : [])];
    const { pairs, classifier, occlusion } = await evaluateRunners(ctx, runners, onProgress);
    return {
      status: 'measured',
      classifier,
      labelled: ctx.split.eval.labels !== undefined,
      evalSource: ctx.split.eval.source,
      evalSamples: ctx.split.eval.count,
      occlusion,
      original: pairs[0],
      reshaped: pairs[1],
      written: pairs[2],
      ...(pairs[3] ? { reconstructed: pairs[3] } : {}),
      runtime: ctx.runner.runtime,
    };
  } finally {
    await writtenRunner.release();
    await reshapedRunner.release();
    await reconstructedRunner?.release();
  }
}

export { DEFAULT_RIDGE, DEFAULT_ROWS_PER_IMAGE };
