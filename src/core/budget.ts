/**
 * Choosing one option per layer under a total cost budget (a multiple-choice knapsack), by the
 * Lagrangian greedy: walk each layer's lower convex hull of (cost, loss) and always take the step
 * that adds the least loss per unit of cost saved. The loss can come from weights alone (energy
 * dropped) or, with data, from reconstruction error: this module does not care which.
 */
import { KpruneError } from '../errors.js';
import { minOf } from '../util/arrays.js';

export interface BudgetOption {
  /** Parameters kept by this option. */
  cost: number;
  /** What the option loses; lower is better, the same unit for every layer. */
  loss: number;
}

/** Indices into each layer's option list such that total cost <= budget. */
export function allocateBudget(layers: BudgetOption[][], budget: number): number[] {
  const hulls = layers.map(lowerHull);
  const at = hulls.map(() => 0);
  let total = hulls.reduce((a, h, l) => a + layers[l][h[0]].cost, 0);
  const minimum = layers.reduce((a, opts) => a + minOf(opts.map((o) => o.cost)), 0);
  if (minimum > budget + 1e-9) {
    throw new KpruneError('usage', `the budget cannot be met: the smallest candidate shapes keep ${minimum} parameters, the budget allows ${Math.floor(budget)}`, {
      suggestion: 'raise --budget',
    });
  }
  while (total > budget + 1e-9) {
    let best = -1;
    let bestSlope = Infinity;
    for (let l = 0; l < hulls.length; l++) {
      const h = hulls[l];
      if (at[l] + 1 >= h.length) continue;
      const cur = layers[l][h[at[l]]];
      const next = layers[l][h[at[l] + 1]];
      const slope = (next.loss - cur.loss) / (cur.cost - next.cost);
      if (slope < bestSlope) {
        bestSlope = slope;
        best = l;
      }
    }
    if (best < 0) break; // unreachable given the minimum check above
    const h = hulls[best];
    total -= layers[best][h[at[best]]].cost - layers[best][h[at[best] + 1]].cost;
    at[best]++;
  }
  // The last step may have saved more than needed: spend the slack again, on the steps back up
  // that buy the most loss per unit of cost and still fit.
  for (;;) {
    let best = -1;
    let bestGain = 0;
    for (let l = 0; l < hulls.length; l++) {
      if (at[l] === 0) continue;
      const h = hulls[l];
      const cur = layers[l][h[at[l]]];
      const prev = layers[l][h[at[l] - 1]];
      const extra = prev.cost - cur.cost;
      if (total + extra > budget + 1e-9) continue;
      const gain = (cur.loss - prev.loss) / extra;
      if (gain > bestGain) {
        bestGain = gain;
        best = l;
      }
    }
    if (best < 0) break;
    const h = hulls[best];
    total += layers[best][h[at[best] - 1]].cost - layers[best][h[at[best]]].cost;
    at[best]--;
  }
  return hulls.map((h, l) => h[at[l]]);
}

/**
 * Indices of the options on the lower convex hull, from the most expensive option (cheapest loss
 * first) down to the cheapest; options that are dominated or above the hull are never chosen.
 */
function lowerHull(options: BudgetOption[]): number[] {
  const order = options
    .map((o, i) => ({ o, i }))
    .sort((a, b) => b.o.cost - a.o.cost || a.o.loss - b.o.loss);
  // Keep, per cost, the lowest loss; then drop options whose loss is not below every costlier one.
  const frontier: { o: BudgetOption; i: number }[] = [];
  for (const e of order) {
    const last = frontier[frontier.length - 1];
    if (last && last.o.cost === e.o.cost) continue;
    // A cheaper option with no more loss than a costlier one makes the costlier one pointless.
    while (frontier.length > 0 && frontier[frontier.length - 1].o.loss >= e.o.loss) frontier.pop();
    frontier.push(e);
  }
  // Convexity: slopes (loss added per cost saved) must increase along the walk.
  const hull: { o: BudgetOption; i: number }[] = [];
  for (const e of frontier) {
    while (hull.length >= 2) {
      const a = hull[hull.length - 2].o;
      const b = hull[hull.length - 1].o;
      const s1 = (b.loss - a.loss) / (a.cost - b.cost);
      const s2 = (e.o.loss - b.loss) / (b.cost - e.o.cost);
      if (s2 <= s1) hull.pop();
      else break;
    }
    hull.push(e);
  }
  return hull.map((e) => e.i);
}
