/**
 * Layer-wise reconstruction: for each reshaped 3x3 layer in topological order, fit the kept weights
 * so that the layer, fed the activations that arrive through the already reshaped (and already
 * reconstructed) model, reproduces the original model's output of that layer. Errors of earlier
 * layers are thus compensated by later ones. Also: the data-aware losses for `--shape auto`.
 */
import { Conv3x3Layer } from '../../model/conv.js';
import { AUTO_CANDIDATES, Mask, maskPositions, namedMask } from '../lattice.js';
import { GramEngine, LayerStats, RowSampler } from './layer-stats.js';
import { ActivationSource, LayerwiseSource, PropagationInfo } from './propagation.js';
import { CENTRE, fromNine, inGraphOrder, isLinear, toNine } from './linear.js';
import { biasShifts } from './bias-correction.js';

export type { ActivationSource, LayerwiseSource, PropagationInfo };

export interface ReconstructOptions {
  /** Ridge strength relative to the mean diagonal of the Gram matrix. */
  ridge?: number;
  /** Output positions per image used as rows (sampled with the seed when an image has more). */
  rowsPerImage?: number;
  seed?: number;
  /** The matrix products of the statistics (default: plain JavaScript). */
  engine?: GramEngine;
  /**
   * Biases (by value name) that may be fitted with their layer's weights; a layer's bias is fitted
   * when it has one use and its bias is in the set. Fitted biases come back in the weights map.
   */
  fitBias?: ReadonlySet<string>;
  /**
   * `output`: match each layer's output before its activation; `relu`: for a layer whose output
   * only feeds a ReLU, a second pass matches what survives the ReLU (see LayerStats.beginReluPass).
   */
  objective?: Objective;
  /** With the `relu` objective: passes, each from the previous solution (default 1). */
  reluPasses?: number;
  /**
   * After each layer is solved, shift each output channel's bias (see bias-correction.ts): `relu`
   * matches the mean after the ReLU where one follows (else the output's mean), `pre` always the
   * output's mean, `none` leaves biases as solved. Only biases in `adjustableBiases`.
   */
  biasCorrection?: BiasCorrectionMode;
  adjustableBiases?: ReadonlySet<string>;
  onLayer?: (done: number, total: number, name: string) => void;
}

export interface LayerRecovery {
  layer: string;
  name: string;
  /** `reshaped`: a 3x3 layer fitted at its kept positions; `compensating`: a linear layer downstream, re-solved whole. */
  role: 'reshaped' | 'compensating';
  /** Its bias was fitted with the weights (else it stayed exact). */
  biasFitted: boolean;
  /** Solved to match what survives the ReLU after it (the errors stay pre-activation). */
  reluAware: boolean;
  /** Its bias was shifted per channel after the solve (see bias-correction.ts; errors are before the shift). */
  biasCorrected?: boolean;
  /** Relative output error ||Y - Y'|| / ||Y|| on the calibration rows, reshaped without recovery. */
  errorBefore: number;
  /** The same after reconstruction. */
  errorAfter: number;
  rows: number;
  ms: number;
}

export type Objective = 'output' | 'relu';
export type BiasCorrectionMode = 'none' | 'pre' | 'relu';
/**
 * Measured (full Fashion-MNIST test set, 512 calibration images, seed 0), `relu` against `none`:
 * cross VGG 91.60 -> 91.64, ResNet 91.28 -> 91.33, depthwise 84.60 -> 84.66; qh 92.19 -> 92.24,
 * 91.79 -> 91.82, 88.98 -> 88.94; `pre` on cross: 91.62, 91.29. A few images out of 10,000 (within
 * the noise) for one more pass over the calibration rows per layer: off by default.
 */
export const DEFAULT_BIAS_CORRECTION: BiasCorrectionMode = 'none';
/**
 * Measured (full Fashion-MNIST test set, 512 calibration images): relu against output, cross:
 * VGG 91.38 -> 91.60, ResNet 91.35 -> 91.28, depthwise (compensated) 83.95 -> 84.60; qh: 92.18 ->
 * 92.19, 91.74 -> 91.79, 88.83 -> 88.98. A second pass added 0.07 and 0.03 points on VGG and
 * ResNet cross for about 1.6x the time: one pass by default.
 */
export const DEFAULT_OBJECTIVE: Objective = 'relu';
export const DEFAULT_RIDGE = 1e-3;
export const DEFAULT_ROWS_PER_IMAGE = 64;

/** The seeded row sampler of a layer: every source samples a layer's rows the same way. */
export function layerSampler(layer: Conv3x3Layer, options: Pick<ReconstructOptions, 'rowsPerImage' | 'seed'> = {}): RowSampler {
  return new RowSampler(options.rowsPerImage ?? DEFAULT_ROWS_PER_IMAGE, (options.seed ?? 0) * 7919 + layer.index);
}

export async function reconstruct(
  layers: Conv3x3Layer[],
  original: ReadonlyMap<string, Float32Array>,
  masks: Map<string, Mask>,
  masked: ReadonlyMap<string, Float32Array>,
  source: LayerwiseSource,
  options: ReconstructOptions = {},
): Promise<{ weights: ReadonlyMap<string, Float32Array>; layers: LayerRecovery[]; propagation: PropagationInfo }> {
  const ridge = options.ridge ?? DEFAULT_RIDGE;
  // A new map per layer: sources may cache work per weight set by identity.
  let current = new Map(masked);
  const report: LayerRecovery[] = [];
  const ordered = inGraphOrder(layers);
  for (let i = 0; i < ordered.length; i++) {
    const layer = ordered[i];
    options.onLayer?.(i, ordered.length, layer.name);
    const t0 = performance.now();
    // A linear layer is solved as a 3x3 one with only its centre tap (see linear.ts).
    const linear = isLinear(layer) ? layer : null;
    const positions = linear ? [CENTRE] : maskPositions(masks.get(layer.id)!);
    const use = layer.uses[0];
    const biasName = layer.uses.length === 1 && use.bias && use.biasValues && options.fitBias?.has(use.bias) ? use.bias : null;
    const stats = new LayerStats(layer, positions, options.engine, biasName !== null);
    await source.layer(layer, current, async (batch) => {
      for (const { use, x, target } of batch) await stats.accumulateRows(x, target, use);
    });
    await stats.flush();
    const stored = layer.weights;
    const prior = linear ? toNine(linear, stored) : stored;
    const before = linear ? toNine(linear, current.get(layer.id) ?? stored) : current.get(layer.id)!;
    let { weights: solved, biasDelta } = await stats.solveWithBias(prior, ridge);
    const reluAware = (options.objective ?? DEFAULT_OBJECTIVE) === 'relu' && layer.uses.length === 1 && use.activation === 'relu';
    for (let pass = 0; reluAware && pass < (options.reluPasses ?? 1); pass++) {
      stats.beginReluPass(solved, biasDelta);
      await source.again(layer, current, async (batch) => {
        for (const b of batch) await stats.accumulateRows(b.x, b.target, b.use);
      });
      await stats.flush();
      ({ weights: solved, biasDelta } = await stats.solveWithBias(prior, ridge));
      stats.endReluPass();
    }
    const errorBefore = await stats.relativeError(before);
    const errorAfter = await stats.relativeError(solved, biasDelta);
    // Least squares minimises the error on these rows; the ridge can only make it slightly worse.
    // Keep the weights it started from in the rare case it did not help.
    const better = errorAfter <= errorBefore;
    const chosen = better ? solved : before;
    current = new Map(current);
    current.set(layer.id, linear ? fromNine(linear, chosen) : chosen);
    if (better && biasName && biasDelta) current.set(biasName, use.biasValues!.map((b, o) => b + biasDelta[o]));
    const correction = options.biasCorrection ?? DEFAULT_BIAS_CORRECTION;
    let biasCorrected = false;
    if (correction !== 'none' && layer.uses.length === 1 && use.bias && use.biasValues && options.adjustableBiases?.has(use.bias)) {
      stats.beginCollectPass(chosen, better ? biasDelta : null);
      await source.again(layer, current, async (batch) => {
        for (const b of batch) await stats.accumulateRows(b.x, b.target, b.use);
      });
      await stats.flush();
      const { pred, target } = stats.endCollectPass();
      const shifts = biasShifts(pred, target, correction === 'relu' && use.activation === 'relu' ? 'relu' : 'pre');
      const base = current.get(use.bias) ?? use.biasValues;
      current.set(use.bias, base.map((b, o) => b + shifts[o]));
      biasCorrected = true;
    }
    report.push({
      layer: layer.id, name: layer.name, role: linear ? 'compensating' : 'reshaped', biasFitted: better && biasName !== null, reluAware, ...(biasCorrected ? { biasCorrected } : {}),
      errorBefore, errorAfter: Math.min(errorAfter, errorBefore), rows: stats.rows, ms: Math.round(performance.now() - t0),
    });
  }
  options.onLayer?.(ordered.length, ordered.length, '');
  return { weights: current, layers: report, propagation: source.info() };
}

/**
 * For each layer, the squared relative error each AUTO_CANDIDATES shape would leave after
 * reconstruction, from one Gram matrix over all 9 positions (inputs and targets from the original
 * model): candidates are compared without running the model again. `source` hands each layer's
 * inputs and targets with the original weights everywhere: from segments (two forward passes in
 * all, linear in depth), or from whole-model runs (one per layer) where segments cannot run.
 */
export async function candidateLosses(
  layers: Conv3x3Layer[],
  original: ReadonlyMap<string, Float32Array>,
  source: LayerwiseSource,
  options: ReconstructOptions = {},
): Promise<Map<string, number[]>> {
  const ridge = options.ridge ?? DEFAULT_RIDGE;
  const losses = new Map<string, number[]>();
  const all = [0, 1, 2, 3, 4, 5, 6, 7, 8];
  const ordered = inGraphOrder(layers);
  for (let i = 0; i < ordered.length; i++) {
    const layer = ordered[i];
    options.onLayer?.(i, ordered.length, layer.name);
    const stats = new LayerStats(layer, all, options.engine);
    await source.layer(layer, original, async (batch) => {
      for (const { use, x, target } of batch) await stats.accumulateRows(x, target, use);
    });
    await stats.flush();
    const candidates: number[] = [];
    for (const name of AUTO_CANDIDATES) {
      const sub = stats.select(maskPositions(namedMask(name)));
      const e = await sub.relativeError(await sub.solve(layer.weights, ridge));
      candidates.push(e * e);
    }
    losses.set(layer.id, candidates);
  }
  options.onLayer?.(ordered.length, ordered.length, '');
  return losses;
}
