/**
 * The prune plan: which mask each 3x3 layer gets. Plain serialisable data, so the report can embed
 * it and it can be replayed on the original model (`applyPlan`).
 */
import { KpruneError } from '../errors.js';
import { allocateBudget, BudgetOption } from './budget.js';
import { Conv3x3Layer, layerParams } from './conv.js';
import { LayerAnalysis, energyKeptBy } from './analysis.js';
import {
  AUTO_CANDIDATES, Mask, ShapeSpec, maskCount, maskName, maskToString, namedMask, parseMask,
} from './lattice.js';

export interface PlanEntry {
  /** The weight tensor's name (the layer's id). */
  layer: string;
  /** The first node using it, for people. */
  name: string;
  /** A named shape, or the mask written out for custom ones. */
  shape: string;
  /** The mask written out, e.g. "010/111/010". */
  mask: string;
  positions: number;
  params: number;
  keptParams: number;
  /** How the shape was chosen. */
  chosenBy: 'fixed' | 'cycle' | 'auto-weights' | 'auto-data' | 'override';
}

export interface PrunePlan {
  planVersion: 1;
  /** The `--shape` the plan was made from. */
  spec: string;
  /** For `auto`: the largest share of 3x3 weights that may be kept. */
  budget?: number;
  entries: PlanEntry[];
  /** Kept 3x3 weights over all 3x3 weights. */
  keptFraction: number;
}

export interface PlanOptions {
  /** For `auto`: keep at most this share of all 3x3 weights (0 < budget <= 1). */
  budget?: number;
  /** Per-layer shapes by layer name or weight name; these win over the spec. */
  overrides?: Record<string, ShapeSpec & { kind: 'fixed' }>;
  /**
   * For `auto` with data: per layer id, the loss of each of AUTO_CANDIDATES (in that order), e.g.
   * the squared relative reconstruction error each shape would leave. Without it, the loss is the
   * share of weight energy a shape drops.
   */
  losses?: Map<string, number[]>;
}

export const DEFAULT_AUTO_BUDGET = 0.6;

function entry(layer: Conv3x3Layer, mask: Mask, chosenBy: PlanEntry['chosenBy']): PlanEntry {
  const positions = maskCount(mask);
  const params = layerParams(layer);
  return {
    layer: layer.id,
    name: layer.name,
    shape: maskName(mask),
    mask: maskToString(mask),
    positions,
    params,
    keptParams: (params / 9) * positions,
    chosenBy,
  };
}

function finish(spec: string, entries: PlanEntry[], budget?: number): PrunePlan {
  const params = entries.reduce((a, e) => a + e.params, 0);
  const kept = entries.reduce((a, e) => a + e.keptParams, 0);
  return { planVersion: 1, spec, ...(budget !== undefined ? { budget } : {}), entries, keptFraction: params > 0 ? kept / params : 1 };
}

/**
 * Makes a plan from a shape spec. `analyses` (same order as `layers`) is needed for `auto`, which
 * here chooses from weights alone: the loss of a shape is the share of the layer's energy it drops.
 */
export function planShapes(
  layers: Conv3x3Layer[],
  spec: ShapeSpec,
  analyses: LayerAnalysis[],
  options: PlanOptions = {},
): PrunePlan {
  const overrides = options.overrides ?? {};
  for (const key of Object.keys(overrides)) {
    if (!layers.some((l) => l.name === key || l.id === key)) {
      throw new KpruneError('usage', `--layer-shape names "${key}", which is not a 3x3 convolution of this model`, {
        suggestion: 'use a node name or weight name from `kprune analyze`',
      });
    }
  }
  const override = (l: Conv3x3Layer) => overrides[l.name] ?? overrides[l.id];
  switch (spec.kind) {
    case 'fixed':
      return finish(spec.name, layers.map((l) => {
        const o = override(l);
        return o ? entry(l, o.mask, 'override') : entry(l, spec.mask, 'fixed');
      }));
    case 'cycle':
      return finish(spec.name, layers.map((l, i) => {
        const o = override(l);
        return o ? entry(l, o.mask, 'override') : entry(l, namedMask(spec.shapes[i % spec.shapes.length]), 'cycle');
      }));
    case 'auto': {
      const budget = options.budget ?? DEFAULT_AUTO_BUDGET;
      if (!(budget > 0 && budget <= 1)) {
        throw new KpruneError('usage', `--budget must be in (0, 1], got ${budget}`);
      }
      const candidates = AUTO_CANDIDATES.map(namedMask);
      const total = layers.reduce((a, l) => a + layerParams(l), 0);
      // Overridden layers spend their own share first; the rest is allocated.
      const free = layers.filter((l) => !override(l));
      const fixedCost = layers.filter((l) => override(l)).reduce((a, l) => a + (layerParams(l) / 9) * maskCount(override(l)!.mask), 0);
      const fromData = options.losses !== undefined;
      const options2: BudgetOption[][] = free.map((l) => {
        const given = options.losses?.get(l.id);
        if (fromData && !given) throw new Error(`no losses for layer ${l.id}`);
        const a = analyses.find((x) => x.id === l.id);
        if (!a) throw new Error(`no analysis for layer ${l.id}`);
        return candidates.map((m, i) => ({ cost: (layerParams(l) / 9) * maskCount(m), loss: given ? given[i] : 1 - energyKeptBy(a.energyShare, m) }));
      });
      const choice = allocateBudget(options2, budget * total - fixedCost);
      const byId = new Map(free.map((l, i) => [l.id, candidates[choice[i]]]));
      return finish('auto', layers.map((l) => {
        const o = override(l);
        return o ? entry(l, o.mask, 'override') : entry(l, byId.get(l.id)!, fromData ? 'auto-data' : 'auto-weights');
      }), budget);
    }
  }
}

export function planMask(e: PlanEntry): Mask {
  return parseMask(e.mask);
}
