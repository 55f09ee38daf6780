/**
 * The prune plan: which mask each 3x3 layer gets. Plain serialisable data, so the report can embed
 * it and it can be replayed on the original model (`applyPlan`).
 */
import { KpruneError } from '../errors.js';
import { allocateBudget, BudgetOption } from './budget.js';
import { Conv3x3Layer, layerParams } from '../model/conv.js';
import { LayerAnalysis, energyKeptBy } from './analysis.js';
import {
  AUTO_CANDIDATES, Mask, ShapeSpec, maskCount, maskName, maskToString, namedMask, parseMask,
} from './lattice.js';
import { minOf } from '../util/arrays.js';

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
  /**
   * How the shape was chosen; `auto-protected`: kept full by `auto`, since its thinnest shape saves
   * little of the model at a large loss (see PlanOptions.protectBelow).
   */
  chosenBy: 'fixed' | 'cycle' | 'auto-weights' | 'auto-data' | 'override' | 'auto-protected';
}

export interface PrunePlan {
  planVersion: 1;
  /** The `--shape` the plan was made from. */
  spec: string;
  /** For `auto`: the largest share of 3x3 weights (or MACs, per `budgetOf`) that may be kept. */
  budget?: number;
  /** For `auto`: what the budget counts (default params). */
  budgetOf?: BudgetOf;
  entries: PlanEntry[];
  /** Kept 3x3 weights over all 3x3 weights. */
  keptFraction: number;
  /** Kept 3x3 MACs over all 3x3 MACs, when the layers' MACs were counted. */
  keptMacsFraction?: number;
}

export type BudgetOf = 'params' | 'macs';

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
  /** What the budget counts: the 3x3 layers' parameters (default) or their MACs. */
  budgetOf?: BudgetOf;
  /** Dense MACs per layer id (needed for `budgetOf: 'macs'`; reported when given). */
  layerMacs?: ReadonlyMap<string, number>;
  /**
   * `auto` keeps a layer full when its thinnest candidate would save less than this share of the
   * whole model (`modelSize`, in the budget's unit) while its best reshaped candidate loses at
   * least PROTECT_LOSS: typically a depthwise layer. 0 turns this off. Default DEFAULT_PROTECT_BELOW.
   */
  protectBelow?: number;
  /** The whole model's parameters or MACs (per `budgetOf`), for `protectBelow`. */
  modelSize?: number;
}

export const DEFAULT_AUTO_BUDGET = 0.6;
export const DEFAULT_PROTECT_BELOW = 0.01;
/**
 * A loss this large (squared relative output error after reconstruction, or share of weight energy
 * dropped without data) marks a reshaping as costly.
 */
export const PROTECT_LOSS = 0.1;

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

function finish(spec: string, entries: PlanEntry[], budget?: number, options: PlanOptions = {}): PrunePlan {
  const params = entries.reduce((a, e) => a + e.params, 0);
  const kept = entries.reduce((a, e) => a + e.keptParams, 0);
  const macs = options.layerMacs;
  const macsTotal = macs ? entries.reduce((a, e) => a + (macs.get(e.layer) ?? 0), 0) : 0;
  const macsKept = macs ? entries.reduce((a, e) => a + ((macs.get(e.layer) ?? 0) * e.positions) / 9, 0) : 0;
  return {
    planVersion: 1, spec, ...(budget !== undefined ? { budget, budgetOf: options.budgetOf ?? 'params' } : {}), entries,
    keptFraction: params > 0 ? kept / params : 1,
    ...(macs && macsTotal > 0 ? { keptMacsFraction: macsKept / macsTotal } : {}),
  };
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
      }), undefined, options);
    case 'cycle':
      return finish(spec.name, layers.map((l, i) => {
        const o = override(l);
        return o ? entry(l, o.mask, 'override') : entry(l, namedMask(spec.shapes[i % spec.shapes.length]), 'cycle');
      }), undefined, options);
    case 'auto': {
      const budget = options.budget ?? DEFAULT_AUTO_BUDGET;
      if (!(budget > 0 && budget <= 1)) {
        throw new KpruneError('usage', `--budget must be in (0, 1], got ${budget}`);
      }
      const budgetOf = options.budgetOf ?? 'params';
      const macs = options.layerMacs;
      if (budgetOf === 'macs' && !macs) throw new KpruneError('usage', '--budget-of macs needs the layers\' MACs, which need one run of the model at a known input shape');
      const size = (l: Conv3x3Layer) => (budgetOf === 'macs' ? macs!.get(l.id) ?? 0 : layerParams(l));
      const candidates = AUTO_CANDIDATES.map(namedMask);
      const total = layers.reduce((a, l) => a + size(l), 0);
      const fromData = options.losses !== undefined;
      const lossesOf = (l: Conv3x3Layer): number[] => {
        const given = options.losses?.get(l.id);
        if (fromData && !given) throw new Error(`no losses for layer ${l.id}`);
        const a = analyses.find((x) => x.id === l.id);
        if (!a) throw new Error(`no analysis for layer ${l.id}`);
        return candidates.map((m, i) => (given ? given[i] : 1 - energyKeptBy(a.energyShare, m)));
      };
      // Layers whose reshaping would save little of the model at a large loss stay full.
      const protectBelow = options.protectBelow ?? DEFAULT_PROTECT_BELOW;
      const thinnest = minOf(candidates.map(maskCount));
      const protectedIds = new Set(protectBelow > 0 && options.modelSize ? layers.filter((l) => {
        if (override(l)) return false;
        const saving = (size(l) * (9 - thinnest)) / 9 / options.modelSize!;
        const bestLoss = minOf(lossesOf(l).filter((_, i) => maskCount(candidates[i]) < 9));
        return saving < protectBelow && bestLoss >= PROTECT_LOSS;
      }).map((l) => l.id) : []);
      // Overridden and protected layers spend their own share first; the rest is allocated.
      const free = layers.filter((l) => !override(l) && !protectedIds.has(l.id));
      const fixedCost = layers.filter((l) => override(l) || protectedIds.has(l.id))
        .reduce((a, l) => a + (size(l) / 9) * (override(l) ? maskCount(override(l)!.mask) : 9), 0);
      const options2: BudgetOption[][] = free.map((l) => {
        const losses = lossesOf(l);
        return candidates.map((m, i) => ({ cost: (size(l) / 9) * maskCount(m), loss: losses[i] }));
      });
      let choice: number[];
      try {
        choice = allocateBudget(options2, budget * total - fixedCost);
      } catch (e) {
        if (!(e instanceof KpruneError) || protectedIds.size === 0) throw e;
        const names = layers.filter((l) => protectedIds.has(l.id)).map((l) => l.name);
        throw new KpruneError('usage', `the budget cannot be met: no plan keeps at most ${budget} of the 3x3 ${budgetOf} without reshaping layers that save little at a large loss (${names.length} kept full: ${names.slice(0, 3).join(', ')}${names.length > 3 ? ', ...' : ''})`, {
          suggestion: 'raise --budget, or pass --reshape-all to reshape them anyway',
        });
      }
      const byId = new Map(free.map((l, i) => [l.id, candidates[choice[i]]]));
      return finish('auto', layers.map((l) => {
        const o = override(l);
        if (o) return entry(l, o.mask, 'override');
        if (protectedIds.has(l.id)) return entry(l, candidates[0], 'auto-protected');
        return entry(l, byId.get(l.id)!, fromData ? 'auto-data' : 'auto-weights');
      }), budget, options);
    }
  }
}

export function planMask(e: PlanEntry): Mask {
  return parseMask(e.mask);
}

/** Every layer's mask by layer id: the plan's strings parsed once, for the steps that need masks. */
export function planMasks(plan: PrunePlan): Map<string, Mask> {
  return new Map(plan.entries.map((e) => [e.layer, planMask(e)]));
}
