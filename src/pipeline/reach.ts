/** The share of a model in its 3x3 layers (src/core/reach.ts), from measured parameters and MACs. */
import { Reach, reachOf } from '../core/reach.js';
import { KpruneError, reasonOf } from '../errors.js';
import { LoadedModel } from '../models/index.js';
import { MacFigures, ParamFigures, measureMacs } from '../report/measure.js';
import { resolveInputShapes } from './common.js';

/** From figures already measured (a prune run's "before"). Only the parameter count is needed. */
export function reachFromFigures(model: LoadedModel, params: Pick<ParamFigures, 'all'>, macs: MacFigures): Reach {
  if (macs.status !== 'measured') return reachOf(model.layers, params.all, { unknown: macs.reason });
  const layerMacs = new Map<string, number>();
  for (const n of macs.nodes) layerMacs.set(n.weight, (layerMacs.get(n.weight) ?? 0) + n.dense);
  return reachOf(model.layers, params.all, { layerMacs, modelMacs: macs.dense });
}

/** Counts parameters, and MACs with one run of the model (unless `run` is false), then the reach. */
export async function measureReach(model: LoadedModel, options: { inputShape?: string; run?: boolean } = {}): Promise<{ reach: Reach; macs: MacFigures }> {
  const ids = new Set(model.layers.map((l) => l.id));
  // Elements only: non-zero counts (which read every weight) are not part of the reach.
  const params = { all: model.inventory().weights.reduce((a, w) => a + w.elements, 0) };
  let macs: MacFigures;
  if (options.run === false) {
    macs = { status: 'unknown', reason: 'not counted: the model was not run (--no-run)' };
  } else {
    const { inputShapes, unknownReason } = resolveInputShapes(model, options.inputShape);
    if (!inputShapes) {
      macs = { status: 'unknown', reason: unknownReason };
    } else {
      try {
        macs = measureMacs(model.inventory(), await model.outputShapes(inputShapes), inputShapes, (w) => ids.has(w));
      } catch (e) {
        if (!(e instanceof KpruneError)) throw e;
        macs = { status: 'unknown', reason: `the model could not be run to count them: ${reasonOf(e, model.path)}` };
      }
    }
  }
  return { reach: reachFromFigures(model, params, macs), macs };
}
