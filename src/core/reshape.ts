/**
 * Reshaping: zero every kernel position a layer's mask drops. The result is new weight arrays;
 * the input layers are not modified, so the original stays available for comparison and recovery.
 */
import { KpruneError } from '../errors.js';
import { Conv3x3Layer, kernelCount, layerParams } from '../model/conv.js';
import { FULL_MASK, Mask, maskHas, maskPositions } from './lattice.js';
import { ModelAnalysis, energyKeptBy, positionSums } from './analysis.js';
import { PrunePlan, planMask } from './plan.js';
import { DerivedMap } from '../util/derived-map.js';

export interface ReshapedLayer {
  id: string;
  mask: Mask;
  /** Made from the original at each access (a new array each time). */
  readonly weights: Float32Array;
  /** Share of the layer's squared-weight energy left after masking. */
  energyKept: number;
  /** Non-zero weights of the original, and of the reshaped weights (those at kept positions). */
  nonzero: { before: number; kept: number };
}

export function maskWeights(weights: Float32Array, kernels: number, mask: Mask): Float32Array {
  const out = new Float32Array(weights);
  for (let p = 0; p < 9; p++) {
    if (maskHas(mask, p)) continue;
    for (let k = 0; k < kernels; k++) out[9 * k + p] = 0;
  }
  return out;
}

/**
 * Applies a plan to the layers it was made for (or replays it on the same original model). The
 * reshaped weights are made when asked for (`ReshapedLayer.weights`, `maskedWeightMap`) rather than
 * held. What a mask keeps (energy, non-zeros) comes from the analysis's position sums when given,
 * else from one read of each layer here.
 */
export function applyPlan(layers: Conv3x3Layer[], plan: PrunePlan, analysis?: Pick<ModelAnalysis, 'positions'>): ReshapedLayer[] {
  const byId = new Map(layers.map((l) => [l.id, l]));
  const planned = new Set(plan.entries.map((e) => e.layer));
  const missing = layers.find((l) => !planned.has(l.id));
  if (missing) {
    throw new KpruneError('usage', `the plan has no entry for layer "${missing.id}" (node "${missing.name}"): it was made for another model`, {
      suggestion: 'replay a plan on the model it was made for',
    });
  }
  return plan.entries.map((e) => {
    const layer = byId.get(e.layer);
    if (!layer) {
      throw new KpruneError('usage', `the plan names layer "${e.layer}", which this model does not have`);
    }
    if (layerParams(layer) !== e.params) {
      throw new KpruneError('usage', `the plan was made for a different "${e.layer}" (${e.params} weights, this one has ${layerParams(layer)})`);
    }
    const mask = planMask(e);
    const sums = analysis?.positions?.get(layer.id) ?? positionSums(layer);
    // Per-position sums over the positions a mask keeps (energyKeptBy sums whatever it is given).
    const before = energyKeptBy(sums.sq, FULL_MASK);
    const kept = energyKeptBy(sums.sq, mask);
    return {
      id: layer.id,
      mask,
      get weights() { return maskWeights(layer.weights, kernelCount(layer), mask); },
      energyKept: before > 0 ? kept / before : 1,
      nonzero: { before: energyKeptBy(sums.nonzero, FULL_MASK), kept: energyKeptBy(sums.nonzero, mask) },
    };
  });
}

/**
 * The reshaped weights by layer id, each made from the original when asked for and not kept: a
 * read-only map whose `get` returns a new array every time (callers that change one own it).
 */
export function maskedWeightMap(reshaped: ReshapedLayer[]): ReadonlyMap<string, Float32Array> {
  const byId = new Map(reshaped.map((r) => [r.id, r]));
  return DerivedMap.over(byId.keys(), (id) => byId.get(id)!.weights);
}

/** True if every kernel has zeros outside the mask (the precondition of the structural layouts). */
export function respectsMask(weights: Float32Array, mask: Mask): boolean {
  // One pass, kernel by kernel, looking at the dropped positions only (no i % 9 per element).
  const dropped = maskPositions(FULL_MASK ^ mask);
  for (let b = 0; b < weights.length; b += 9) {
    for (const p of dropped) if (weights[b + p] !== 0) return false;
  }
  return true;
}
