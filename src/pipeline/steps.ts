/**
 * The pipeline as separate steps, for callers who want to look at (or change) what happens between
 * them: load -> reshape -> recover -> exportModel. `prune()` is these steps plus measuring and the
 * report; `analyze()` and `compare()` are the other commands.
 */
import { analyzeModel } from '../core/analysis.js';
import { inFile } from '../errors.js';
import { ShapeSpec, parseShapeSpec } from '../core/lattice.js';
import { PlanOptions, PrunePlan, planMasks, planShapes } from '../core/plan.js';
import { applyPlan, maskedWeightMap } from '../core/reshape.js';
import { LayerRecovery } from '../core/recover/reconstruct.js';
import type { PropagationInfo } from '../core/recover/propagation.js';
import { Layout } from '../model/layout.js';
import { LoadedModel, WriteResult } from '../models/index.js';
import { layoutRequests } from './layouts.js';
import { DataOptions, dataAwareLosses, openData, recoverWeights } from './recover.js';
import { ProgressListener } from './progress.js';

export interface Reshaping {
  plan: PrunePlan;
  /** New weights by layer id: zero outside each layer's mask. */
  weights: ReadonlyMap<string, Float32Array>;
}

/** Chooses each 3x3 layer's shape (from weights alone for `auto`) and masks the weights. */
export function reshape(model: LoadedModel, shape: string | ShapeSpec, options: Omit<PlanOptions, 'losses'> = {}): Reshaping {
  const spec = typeof shape === 'string' ? parseShapeSpec(shape) : shape;
  const plan = planShapes(model.layers, spec, inFile(model.path, () => analyzeModel(model.layers)).layers, options);
  return { plan, weights: maskedWeightMap(applyPlan(model.layers, plan)) };
}

/**
 * Layer-wise reconstruction of reshaped weights from calibration data (no labels needed). With
 * `rescore`, `auto` plans are first remade from reconstruction error instead of weight energy.
 */
export async function recover(
  model: LoadedModel,
  reshaped: Reshaping,
  data: DataOptions,
  options: { onProgress?: ProgressListener; rescore?: { budget?: number } } = {},
): Promise<Reshaping & { layers: LayerRecovery[]; propagation: PropagationInfo }> {
  const ctx = await openData(model, data);
  try {
    let current = reshaped;
    if (options.rescore && reshaped.plan.spec === 'auto') {
      const losses = await dataAwareLosses(ctx, model, options.onProgress);
      const plan = planShapes(model.layers, parseShapeSpec('auto'), analyzeModel(model.layers).layers, { budget: options.rescore.budget ?? reshaped.plan.budget, losses });
      current = { plan, weights: maskedWeightMap(applyPlan(model.layers, plan)) };
    }
    const result = await recoverWeights(ctx, model, planMasks(current.plan), current.weights, options.onProgress);
    return { plan: current.plan, weights: result.weights, layers: result.layers, propagation: result.propagation };
  } finally {
    await ctx.runners.release();
    await ctx.engine.release();
    await ctx.runner.release();
  }
}

/**
 * Writes the model with the given weights in its own format, each reshaped layer in `layout`; by
 * default the layout prune() writes (`DEFAULT_LAYOUT`, decomposed: the smaller file), `masked` on
 * request (the original structure, to train further).
 */
export function exportModel(model: LoadedModel, reshaped: Reshaping, outPath: string, layout?: Layout): Promise<WriteResult> {
  return model.write(reshaped.weights, outPath, layoutRequests(reshaped.plan, planMasks(reshaped.plan), layout));
}
