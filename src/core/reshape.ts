/**
 * Reshaping: zero every kernel position a layer's mask drops. The result is new weight arrays;
 * the input layers are not modified, so the original stays available for comparison and recovery.
 */
import { KpruneError } from '../errors.js';
import { Conv3x3Layer, kernelCount } from './conv.js';
import { Mask, maskHas } from './lattice.js';
import { PrunePlan, planMask } from './plan.js';

export interface ReshapedLayer {
  id: string;
  mask: Mask;
  weights: Float32Array;
  /** Share of the layer's squared-weight energy left after masking. */
  energyKept: number;
}

export function maskWeights(weights: Float32Array, kernels: number, mask: Mask): Float32Array {
  const out = new Float32Array(weights);
  for (let p = 0; p < 9; p++) {
    if (maskHas(mask, p)) continue;
    for (let k = 0; k < kernels; k++) out[9 * k + p] = 0;
  }
  return out;
}

function energy(w: Float32Array): number {
  let e = 0;
  for (let i = 0; i < w.length; i++) e += w[i] * w[i];
  return e;
}

/** Applies a plan to the layers it was made for (or replays it on the same original model). */
export function applyPlan(layers: Conv3x3Layer[], plan: PrunePlan): ReshapedLayer[] {
  const byId = new Map(layers.map((l) => [l.id, l]));
  return plan.entries.map((e) => {
    const layer = byId.get(e.layer);
    if (!layer) {
      throw new KpruneError('usage', `the plan names layer "${e.layer}", which this model does not have`);
    }
    if (layer.weights.length !== e.params) {
      throw new KpruneError('usage', `the plan was made for a different "${e.layer}" (${e.params} weights, this one has ${layer.weights.length})`);
    }
    const mask = planMask(e);
    const weights = maskWeights(layer.weights, kernelCount(layer), mask);
    const before = energy(layer.weights);
    return { id: layer.id, mask, weights, energyKept: before > 0 ? energy(weights) / before : 1 };
  });
}

/** True if every kernel has zeros outside the mask (the precondition of the structural layouts). */
export function respectsMask(weights: Float32Array, mask: Mask): boolean {
  for (let i = 0; i < weights.length; i++) if (weights[i] !== 0 && !maskHas(mask, i % 9)) return false;
  return true;
}
