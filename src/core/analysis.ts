/**
 * Where a layer's weight magnitude sits on the 3x3 lattice, and how much of it each shape keeps.
 */
import { KpruneError } from '../errors.js';
import { Conv3x3Layer, kernelCount, layerParams } from '../model/conv.js';
import { Mask, NAMED_SHAPE_NAMES, NamedShape, maskCount, maskHas, namedMask } from './lattice.js';
import { maxOf } from '../util/arrays.js';

export interface LayerAnalysis {
  id: string;
  name: string;
  index: number;
  kind: Conv3x3Layer['kind'];
  /** [outChannels, inChannelsPerGroup, 3, 3] */
  shape: [number, number, number, number];
  group: number;
  params: number;
  /** Mean |w| at each of the 9 positions, divided by the largest of the nine (so the max is 1). */
  meanAbs: number[];
  /** Share of the layer's squared-weight energy at each position (sums to 1). */
  energyShare: number[];
  /** Share of energy each named shape keeps. */
  energyKept: Record<NamedShape, number>;
  /** Positions whose normalised mean |w| is below the threshold: candidates to drop. */
  lowPositions: number[];
}

export interface ShapeSummary {
  shape: NamedShape;
  positions: number;
  /** Energy kept over all 3x3 layers, each layer's energy weighted by its parameter count. */
  energyKept: number;
  /** energyKept divided by the share of parameters kept (positions / 9); above 1 beats uniform. */
  energyPerParam: number;
}

export interface ModelAnalysis {
  layers: LayerAnalysis[];
  /** Named shapes, best energy-per-parameter first (`full` is 1 by definition). */
  shapes: ShapeSummary[];
  threshold: number;
  /** Over all layers: share of 3x3 energy at each position, parameter-weighted. */
  energyShare: number[];
}

export const DEFAULT_LOW_THRESHOLD = 0.5;

/** Per-position sums over all kernels of a layer: sum |w| and sum w^2, in float64. */
export function positionSums(layer: Conv3x3Layer): { abs: Float64Array; sq: Float64Array } {
  const abs = new Float64Array(9);
  const sq = new Float64Array(9);
  const w = layer.weights;
  const kernels = kernelCount(layer);
  for (let k = 0; k < kernels; k++) {
    const base = 9 * k;
    for (let p = 0; p < 9; p++) {
      const v = w[base + p];
      abs[p] += Math.abs(v);
      sq[p] += v * v;
    }
  }
  return { abs, sq };
}

export function energyKeptBy(energyShare: ArrayLike<number>, mask: Mask): number {
  let kept = 0;
  for (let p = 0; p < 9; p++) if (maskHas(mask, p)) kept += energyShare[p];
  return kept;
}

export function analyzeLayer(layer: Conv3x3Layer, threshold = DEFAULT_LOW_THRESHOLD): LayerAnalysis {
  const { abs, sq } = positionSums(layer);
  // A NaN or an infinity anywhere makes its position's sum non-finite (float32 squares summed in
  // float64 cannot overflow): such weights cannot be analysed, masked meaningfully or reconstructed.
  if (sq.some((v) => !Number.isFinite(v))) {
    throw new KpruneError('bad-model', `3x3 weight "${layer.id}" (node "${layer.name}") holds NaN or infinite values`, {
      suggestion: 'the model is damaged, or its weights overflowed in training or conversion',
    });
  }
  const kernels = kernelCount(layer);
  const mean = Array.from(abs, (s) => s / Math.max(kernels, 1));
  const maxMean = maxOf(mean);
  const meanAbs = mean.map((m) => (maxMean > 0 ? m / maxMean : 0));
  const total = sq.reduce((a, b) => a + b, 0);
  // A layer of zeros has no preference: treat its energy as uniform rather than divide by zero.
  const energyShare = Array.from(sq, (e) => (total > 0 ? e / total : 1 / 9));
  const energyKept = {} as Record<NamedShape, number>;
  // From the sums themselves (not the shares) so that `full` keeps exactly 1.
  for (const name of NAMED_SHAPE_NAMES) energyKept[name] = total > 0 ? energyKeptBy(sq, namedMask(name)) / total : energyKeptBy(energyShare, namedMask(name));
  const lowPositions: number[] = [];
  for (let p = 0; p < 9; p++) if (meanAbs[p] < threshold) lowPositions.push(p);
  return {
    id: layer.id,
    name: layer.name,
    index: layer.index,
    kind: layer.kind,
    shape: [layer.outChannels, layer.inChannelsPerGroup, 3, 3],
    group: layer.group,
    params: layerParams(layer),
    meanAbs,
    energyShare,
    energyKept,
    lowPositions,
  };
}

export function analyzeModel(layers: Conv3x3Layer[], threshold = DEFAULT_LOW_THRESHOLD): ModelAnalysis {
  const analyses = layers.map((l) => analyzeLayer(l, threshold));
  const totalParams = analyses.reduce((a, l) => a + l.params, 0);
  const energyShare = new Array<number>(9).fill(0);
  for (const l of analyses) for (let p = 0; p < 9; p++) energyShare[p] += (l.energyShare[p] * l.params) / totalParams;
  const shapes: ShapeSummary[] = NAMED_SHAPE_NAMES.map((shape) => {
    const energyKept = analyses.reduce((a, l) => a + (l.energyKept[shape] * l.params) / totalParams, 0);
    const positions = maskCount(namedMask(shape));
    return { shape, positions, energyKept, energyPerParam: energyKept / (positions / 9) };
  });
  shapes.sort((a, b) => b.energyPerParam - a.energyPerParam || b.energyKept - a.energyKept);
  return { layers: analyses, shapes, threshold, energyShare };
}
