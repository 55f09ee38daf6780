/**
 * The layout reshaped layers are written in when the caller names none, in one place for every
 * library call that writes a model: prune(), exportModel() and sweep() (whose points must be the
 * files their reproducing commands write) cannot drift apart.
 */
import type { Mask } from '../core/lattice.js';
import type { PrunePlan } from '../core/plan.js';
import type { Layout } from '../model/layout.js';
import type { LayoutRequest } from '../model/loaded-model.js';

/**
 * `decomposed` by default: exact (the same outputs as masked, up to float rounding), and the file
 * is smaller (0.56-0.71x on the models measured) where `masked` keeps the original's size, the
 * commonest complaint about pruning tools. `masked` on request, for training the result further in
 * its original structure.
 */
export const DEFAULT_LAYOUT: Layout = 'decomposed';

/**
 * The layout of one reshaped layer: the one requested, else the default for a layer that lost
 * positions, and masked (the layer as it was) for one that keeps all 9: nothing to decompose.
 */
export function layoutFor(mask: string, requested?: Layout): Layout {
  if (requested) return requested;
  return mask.includes('0') ? DEFAULT_LAYOUT : 'masked';
}

/** Every planned layer's layout request, by layer id (`requested` undefined: the default). */
export function layoutRequests(plan: PrunePlan, masks: ReadonlyMap<string, Mask>, requested?: Layout): Map<string, LayoutRequest> {
  return new Map(plan.entries.map((e) => [e.layer, { layout: layoutFor(e.mask, requested), mask: masks.get(e.layer)! }]));
}
