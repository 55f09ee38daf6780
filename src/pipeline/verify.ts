/**
 * Checking a written model without executing it, for `run: false` (models too large for a runtime
 * to hold, or none at hand): kprune's own reader loads the written files, which proves they parse
 * and every external reference resolves, and each layer written masked must hold exactly zero
 * outside its mask. Weights are read one layer at a time.
 */
import { KpruneError } from '../errors.js';
import { LayoutOutcome } from '../model/layout.js';
import { PrunePlan, planMasks } from '../core/plan.js';
import { respectsMask } from '../core/reshape.js';
import { loadModel } from '../models/index.js';

export async function verifyByReading(outFile: string, plan: PrunePlan, layouts: LayoutOutcome[]): Promise<string> {
  // Lazily: each masked layer's weights are read from the file when checked, nothing else is held.
  const written = await loadModel(outFile, { lazy: true });
  const byId = new Map(written.layers.map((l) => [l.id, l]));
  const applied = new Map(layouts.map((o) => [o.layer, o.applied]));
  const masks = planMasks(plan);
  let checked = 0;
  for (const e of plan.entries) {
    if ((applied.get(e.layer) ?? 'masked') !== 'masked') continue;
    const layer = byId.get(e.layer);
    if (!layer) throw new KpruneError('runtime', `the written model has no 3x3 layer "${e.layer}"`, { file: outFile });
    if (!respectsMask(layer.weights, masks.get(e.layer)!)) {
      throw new KpruneError('runtime', `layer "${e.layer}" of the written model has weights outside its mask ${e.mask}`, { file: outFile });
    }
    checked++;
  }
  const others = plan.entries.length - checked;
  return `read back by kprune, not run (run: false): ${checked} masked layer(s) zero exactly outside their masks${others ? `, ${others} in other layouts parsed` : ''}`;
}
