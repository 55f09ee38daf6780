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

/** Per-position sums over all kernels of a layer (float64): |w|, w^2, and the count of non-zeros. */
export interface PositionStats {
  abs: Float64Array;
  sq: Float64Array;
  nonzero: Float64Array;
}

export interface ModelAnalysis {
  layers: LayerAnalysis[];
  /**
   * Each layer's position sums by layer id, for what a mask keeps (energy, non-zeros) without
   * reading the weights again: a TF.js filter read from its shards is also transposed, at each read.
   */
  positions?: ReadonlyMap<string, PositionStats>;
  /** Named shapes, best energy-per-parameter first (`full` is 1 by definition). */
  shapes: ShapeSummary[];
  threshold: number;
  /** Over all layers: share of 3x3 energy at each position, parameter-weighted. */
  energyShare: number[];
}

export const DEFAULT_LOW_THRESHOLD = 0.5;

/**
 * Per-position sums over all kernels of a layer: sum |w|, sum w^2 and non-zeros, in float64. The
 * nine positions' sums live in locals (registers) rather than in arrays indexed in the loop: an
 * analysis reads every 3x3 weight of the model (14.7 M in a VGG-16), and the indexed form took
 * 1.5-2x as long (same sums: each position is still added in kernel order).
 */
export function positionSums(layer: Conv3x3Layer): PositionStats {
  const w = layer.weights;
  const end = 9 * kernelCount(layer);
  let a0 = 0, a1 = 0, a2 = 0, a3 = 0, a4 = 0, a5 = 0, a6 = 0, a7 = 0, a8 = 0;
  let s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0, s5 = 0, s6 = 0, s7 = 0, s8 = 0;
  let z0 = 0, z1 = 0, z2 = 0, z3 = 0, z4 = 0, z5 = 0, z6 = 0, z7 = 0, z8 = 0;
  for (let b = 0; b < end; b += 9) {
    const v0 = w[b], v1 = w[b + 1], v2 = w[b + 2], v3 = w[b + 3], v4 = w[b + 4], v5 = w[b + 5], v6 = w[b + 6], v7 = w[b + 7], v8 = w[b + 8];
    a0 += Math.abs(v0); a1 += Math.abs(v1); a2 += Math.abs(v2); a3 += Math.abs(v3); a4 += Math.abs(v4);
    a5 += Math.abs(v5); a6 += Math.abs(v6); a7 += Math.abs(v7); a8 += Math.abs(v8);
    s0 += v0 * v0; s1 += v1 * v1; s2 += v2 * v2; s3 += v3 * v3; s4 += v4 * v4;
    s5 += v5 * v5; s6 += v6 * v6; s7 += v7 * v7; s8 += v8 * v8;
    // Zeros are counted (a NaN, never equal to 0, is a non-zero, as countNonzero says), as selects:
    // with ifs, the branch mispredictions took the loop 3-5x as long.
    z0 += v0 === 0 ? 1 : 0; z1 += v1 === 0 ? 1 : 0; z2 += v2 === 0 ? 1 : 0; z3 += v3 === 0 ? 1 : 0; z4 += v4 === 0 ? 1 : 0;
    z5 += v5 === 0 ? 1 : 0; z6 += v6 === 0 ? 1 : 0; z7 += v7 === 0 ? 1 : 0; z8 += v8 === 0 ? 1 : 0;
  }
  const k = end / 9;
  return {
    abs: Float64Array.of(a0, a1, a2, a3, a4, a5, a6, a7, a8),
    sq: Float64Array.of(s0, s1, s2, s3, s4, s5, s6, s7, s8),
    nonzero: Float64Array.of(k - z0, k - z1, k - z2, k - z3, k - z4, k - z5, k - z6, k - z7, k - z8),
  };
}

export function energyKeptBy(energyShare: ArrayLike<number>, mask: Mask): number {
  let kept = 0;
  for (let p = 0; p < 9; p++) if (maskHas(mask, p)) kept += energyShare[p];
  return kept;
}

export function analyzeLayer(layer: Conv3x3Layer, threshold = DEFAULT_LOW_THRESHOLD): LayerAnalysis {
  return analyzeSums(layer, positionSums(layer), threshold);
}

function analyzeSums(layer: Conv3x3Layer, { abs, sq }: PositionStats, threshold: number): LayerAnalysis {
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
  const positions = new Map<string, PositionStats>();
  const analyses = layers.map((l) => {
    const sums = positionSums(l);
    positions.set(l.id, sums);
    return analyzeSums(l, sums, threshold);
  });
  const totalParams = analyses.reduce((a, l) => a + l.params, 0);
  const energyShare = new Array<number>(9).fill(0);
  for (const l of analyses) for (let p = 0; p < 9; p++) energyShare[p] += (l.energyShare[p] * l.params) / totalParams;
  const shapes: ShapeSummary[] = NAMED_SHAPE_NAMES.map((shape) => {
    const energyKept = analyses.reduce((a, l) => a + (l.energyKept[shape] * l.params) / totalParams, 0);
    const positions = maskCount(namedMask(shape));
    return { shape, positions, energyKept, energyPerParam: energyKept / (positions / 9) };
  });
  shapes.sort((a, b) => b.energyPerParam - a.energyPerParam || b.energyKept - a.energyKept);
  return { layers: analyses, positions, shapes, threshold, energyShare };
}
