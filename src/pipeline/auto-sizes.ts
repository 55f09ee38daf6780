/**
 * What `--shape auto` needs besides the losses: the budget's unit, each layer's MACs, and the
 * whole model's size in that unit (its parameters, or MACs at the input shape). Shared by prune
 * and sweep.
 */
import type { BudgetOf, PlanOptions } from '../core/plan.js';
import { KpruneError } from '../errors.js';
import type { LoadedModel } from '../models/index.js';
import { measureReach } from './reach.js';

export interface AutoSizeOptions {
  budgetOf?: BudgetOf;
  inputShape?: string;
  run?: boolean;
  /** Also reshape the layers `auto` would keep full (they save little at a large loss). */
  reshapeAll?: boolean;
}

export async function autoSizes(model: LoadedModel, options: AutoSizeOptions): Promise<Pick<PlanOptions, 'budgetOf' | 'layerMacs' | 'modelSize' | 'protectBelow'>> {
  const budgetOf = options.budgetOf ?? 'params';
  const { reach, macs } = await measureReach(model, { inputShape: options.inputShape, run: options.run });
  if (budgetOf === 'macs' && macs.status !== 'measured') throw new KpruneError('usage', `--budget-of macs needs the layers' MACs, which were not counted: ${macs.reason}`, { file: model.path });
  const layerMacs = macs.status === 'measured' ? new Map(model.layers.map((l) => [l.id, macs.nodes.filter((n) => n.weight === l.id).reduce((a, n) => a + n.dense, 0)])) : undefined;
  return {
    budgetOf,
    ...(layerMacs ? { layerMacs } : {}),
    modelSize: budgetOf === 'macs' ? reach.macs!.model : reach.params.model,
    ...(options.reshapeAll ? { protectBelow: 0 } : {}),
  };
}
