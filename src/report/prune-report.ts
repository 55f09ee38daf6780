/**
 * The prune report assembled from what a run decided, wrote and measured: one row per reshaped
 * layer, and how each figure was obtained. The pipeline measures (pipeline/prune.ts,
 * pipeline/measure.ts); this file only words and arranges.
 */
import type { ModelAnalysis } from '../core/analysis.js';
import type { PrunePlan } from '../core/plan.js';
import type { ReshapedLayer } from '../core/reshape.js';
import { countNonzero } from '../model/conv.js';
import type { FinetuneResult } from '../model/finetune.js';
import type { LayoutTiming } from '../model/layout.js';
import { layerOfPiece } from '../model/layout.js';
import type { LoadedModel, WriteResult } from '../model/loaded-model.js';
import { DEFAULT_LATENCY_CAP_MS } from '../util/timing.js';
import { VERSION } from '../version.js';
import type { MacFigures } from './measure.js';
import { DataFigures, Gate, LayerReport, MeasuredAccuracy, ModelFigures, PruneReport, REPORT_SCHEMA_VERSION, RecoveryFigures } from './report.js';

export interface PruneRun {
  model: LoadedModel;
  file: string;
  outFile: string;
  written: WriteResult;
  /** What verifying the written model did. */
  verified: string;
  plan: PrunePlan;
  analysis: ModelAnalysis;
  reshaped: ReshapedLayer[];
  /** The weights written, by layer id. */
  newWeights: ReadonlyMap<string, Float32Array>;
  figures: { before: ModelFigures; after: ModelFigures };
  gate: Gate | null;
  latency: PruneReport['latency'];
  layoutTimings: LayoutTiming[] | null;
  layoutFallback: string | null;
  /** null: no evaluation data. */
  accuracy: MeasuredAccuracy | null;
  finetuned: FinetuneResult | null;
  /** null: no data. */
  data: DataFigures | null;
  recovery: RecoveryFigures | null;
  /** What any shape could save of this model (from the input's measured figures). */
  reach: PruneReport['reach'];
  timings: Record<string, number>;
}

export function pruneReport(run: PruneRun): PruneReport {
  const { model, file, outFile, written, verified, plan, analysis, reshaped, newWeights, figures, gate, latency, layoutTimings, layoutFallback, accuracy, finetuned, data, recovery, reach, timings } = run;
  const ids = new Set(model.layers.map((l) => l.id));
  const runtime = model.format === 'onnx' ? 'onnxruntime-node' : 'TensorFlow.js';
  const byId = new Map(analysis.layers.map((a) => [a.id, a]));
  const entries = new Map(plan.entries.map((e) => [e.layer, e]));
  const recoveryById = new Map((recovery?.layers ?? []).map((r) => [r.layer, r]));
  const reshapedById = new Map(reshaped.map((r) => [r.id, r]));
  const layoutById = new Map(written.layouts.map((o) => [o.layer, o]));
  const layers: LayerReport[] = model.layers.map((l) => {
    const a = byId.get(l.id)!;
    const e = entries.get(l.id)!;
    const r = reshapedById.get(l.id)!;
    const nodeMacs = (f: MacFigures, k: 'dense' | 'effective') => f.status === 'measured'
      ? f.nodes.filter((n) => n.weight === l.id || layerOfPiece(n.weight, ids) === l.id).reduce((s, n) => s + n[k], 0) : null;
    const lo = layoutById.get(l.id);
    return {
      id: l.id,
      name: l.name,
      kind: l.kind,
      shape: a.shape,
      group: l.group,
      nodes: l.uses.map((u) => u.node),
      chosenShape: e.shape,
      mask: e.mask,
      chosenBy: e.chosenBy,
      layout: lo?.applied ?? 'masked',
      ...(lo?.note ? { layoutNote: lo.note } : {}),
      storedWeights: lo?.storedWeights ?? e.params,
      params: e.params,
      keptParams: e.keptParams,
      // From the reshaping's counts when the written weights are the reshaped ones (no recovery, no
      // fine-tuning): counting them again would read each layer twice more.
      nonzeroBefore: r.nonzero.before,
      nonzeroAfter: recovery || finetuned ? countNonzero(newWeights.get(l.id)!) : r.nonzero.kept,
      energyKept: r.energyKept,
      reconstructionError: recoveryById.get(l.id) ? { before: recoveryById.get(l.id)!.errorBefore, after: recoveryById.get(l.id)!.errorAfter } : null,
      macsBefore: nodeMacs(figures.before.macs, 'dense'),
      macsAfter: nodeMacs(figures.after.macs, 'dense'),
      macsAfterEffective: nodeMacs(figures.after.macs, 'effective'),
      meanAbs: a.meanAbs,
      lowPositions: a.lowPositions,
    };
  });

  return {
    schemaVersion: REPORT_SCHEMA_VERSION,
    kind: 'prune',
    tool: { name: 'kprune', version: VERSION },
    input: { path: file, format: model.format, formatInfo: model.formatInfo },
    output: { path: outFile, files: written.files, verified },
    plan,
    reach,
    before: figures.before,
    after: figures.after,
    gate,
    latency,
    layoutTimings,
    layoutFallback,
    accuracy: accuracy ?? { status: 'unknown', reason: 'no evaluation data was given, so accuracy was not measured' },
    finetune: finetuned ? {
      backend: finetuned.backend,
      engine: finetuned.engine,
      missingOperators: finetuned.missingOperators,
      ...(finetuned.engineNote ? { engineNote: finetuned.engineNote } : {}),
      objective: finetuned.objective,
      steps: finetuned.steps,
      bestStep: finetuned.bestStep,
      batch: finetuned.batch,
      imagesPerSecond: finetuned.imagesPerSecond,
      trainMs: finetuned.trainMs,
      evalMs: finetuned.evalMs,
      heldOut: finetuned.heldOut,
    } : null,
    data,
    recovery,
    layers,
    skipped: model.skipped,
    shapeRanking: analysis.shapes,
    method: {
      size: `bytes on disk of every file of the model (${model.format === 'onnx' ? 'model and external data' : 'model.json and weight shards'}); gzip: node:zlib at level 6 (the gzip default)`,
      params: 'elements of all float weight tensors (initializers and Constant nodes); non-zero: elements not exactly 0',
      macs: `multiply-accumulates of convolution and dense/matmul nodes with constant weights, output sizes from one ${runtime} run at the stated input shape (of the written model, or of the original when every layer is written masked: the same graph); effective skips multiplications by weights that are exactly 0`,
      energyKept: 'sum of w^2 after reshaping over sum of w^2 before, per weight tensor',
      accuracy: data
        ? `top-1/top-5 against labels and top-1 agreement with the original, in ${runtime} on the evaluation samples; "written" is the output file loaded back from disk; occluded: the same samples with one seeded square patch filled with the data set mean`
        : 'not measured without data',
      latency: `wall time of one inference in ${runtime}, original and written model loaded in the same process and run interleaved on the same seeded random input; median and quartiles over the stated runs after warm-up (at most ${DEFAULT_LATENCY_CAP_MS / 1000} s of timing)`,
      reconstruction: 'per layer in graph order, least squares for the kept weights (ridge towards the original weights, float64, one solve per group with every output channel at once); with the relu objective, a layer whose output only feeds a ReLU is solved again to match what survives the ReLU; compensating linear layers (1x1 convolutions, dense layers) are re-solved whole; error = ||Y - Y\'|| / ||Y|| of the layer output before its activation on the calibration rows, inputs from the already reshaped model, targets from the original',
    },
    timings,
  };
}
