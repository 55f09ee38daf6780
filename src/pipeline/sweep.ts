/**
 * `kprune sweep model --data ...`: the trade-off curve a user picks an operating point from. Each
 * point (a fixed shape, or `auto` at a budget) is reshaped and recovered, then measured: quality
 * (top-1 with labels, else agreement with the original), parameters, MACs, file size (written
 * decomposed, staged and discarded) and optionally latency. The Pareto front over quality and kept
 * 3x3 weights is marked, and each point carries the command that reproduces it.
 *
 * Shared between points: the model, its analysis, the data and the original's runner (one set of
 * calibration activations of the original, one run of the original on the evaluation samples), the
 * data-aware shape losses for `auto` (computed once for every budget), and the original's tensor
 * sizes for MACs.
 */
import os from 'node:os';
import path from 'node:path';
import { promises as fs } from 'node:fs';
import { analyzeModel, DEFAULT_LOW_THRESHOLD } from '../core/analysis.js';
import { ShapeSpec, parseMask, parseShapeSpec } from '../core/lattice.js';
import { LoadedModel } from '../models/index.js';
import { declareReads, reportBytes, transact } from './outputs.js';
import { renderSweepHtml } from '../report/sweep.js';
import { currentRunInfo } from '../report/run-info.js';
import { BudgetOf, planMasks, planShapes, PrunePlan } from '../core/plan.js';
import { minOf } from '../util/arrays.js';
import { autoSizes } from './auto-sizes.js';
import { applyPlan, maskedWeightMap } from '../core/reshape.js';
import { KpruneError } from '../errors.js';
import { layoutRequests } from './layouts.js';
import { OutputTransaction } from '../io/transaction.js';
import { measureFiles, measureMacs, measureParams } from '../report/measure.js';
import type { QualityFigures } from '../core/metrics.js';
import { VERSION } from '../version.js';
import { resolveInputShapes, timed, withBatch } from './common.js';
import { loadPrunable } from './load.js';
import { layerOfPiece } from '../model/layout.js';
import { ProgressListener } from './progress.js';
import { DataOptions, dataAwareLosses, evaluateRunners, openData, recoverWeights } from './recover.js';
import type { SweepPoint, SweepReport } from '../report/sweep-report.js';

export interface SweepOptions {
  data: DataOptions;
  /** Fixed shapes to try (each over every layer); default cross, qh, x. */
  shapes?: string[];
  /** Budgets for `auto`; default 0.4, 0.5, 0.6, 0.7. */
  budgets?: number[];
  /** What `auto`'s budgets count: the 3x3 layers' parameters (default) or MACs. */
  budgetOf?: BudgetOf;
  /**
   * The largest drop in points (top-1, or agreement without labels) a point may have: the sweep
   * names the point within it that keeps the fewest MACs (or parameters), or says none is.
   */
  maxDrop?: number;
  inputShape?: string;
  /** Timed runs per point for latency (default 0: not measured; latency needs time per point). */
  latencyRuns?: number;
  batch?: number;
  threads?: number;
  /** How the user spelled the model and data options, for each point's command. */
  commandPrefix?: string;
  onProgress?: ProgressListener;
  /** Also write the sweep: `.html` for the page with the plot, else JSON (checked first, written whole). */
  report?: string;
  /** The command line shown on the page (default: this process's). */
  commandLine?: string;
}

export type { SweepPoint, SweepReport };

function pick(q: QualityFigures | undefined, metric: 'top1' | 'agreement'): number | null {
  if (!q) return null;
  const v = metric === 'top1' ? q.top1 : q.agreement;
  return v === undefined ? null : v;
}

/** Points no other point beats on both quality (higher) and kept parameters (fewer). */
export function markPareto<T extends { quality: number; params: { after: number }; pareto: boolean }>(points: T[]): T[] {
  for (const p of points) {
    p.pareto = !points.some((q) => q !== p && q.quality >= p.quality && q.params.after <= p.params.after && (q.quality > p.quality || q.params.after < p.params.after));
  }
  return points;
}

/**
 * The point within `maxDrop` points of the original that keeps the fewest MACs (parameters where
 * a point's MACs are unknown), ties to the higher quality; null when no point is within it.
 */
export function withinDrop(r: Pick<SweepReport, 'original' | 'points'>, maxDrop: number): NonNullable<SweepReport['withinDrop']> {
  const drop = (p: SweepPoint) => (r.original.quality - p.quality) * 100;
  const by = r.points.every((p) => p.macs !== null) ? 'macs' : 'params';
  const size = (p: SweepPoint) => (by === 'macs' ? p.macs!.after : p.params.after);
  let best: number | null = null;
  r.points.forEach((p, i) => {
    if (!(drop(p) <= maxDrop + 1e-9)) return;
    const b = best === null ? null : r.points[best];
    if (b === null || size(p) < size(b) || (size(p) === size(b) && p.quality > b.quality)) best = i;
  });
  return { maxDrop, point: best, by, smallestDrop: minOf(r.points.map(drop)) };
}

export async function sweep(file: string, options: SweepOptions): Promise<SweepReport> {
  const timings: Record<string, number> = {};
  const on = options.onProgress;
  const shapes = options.shapes ?? ['cross', 'qh', 'x'];
  const budgets = options.budgets ?? [0.4, 0.5, 0.6, 0.7];
  for (const b of budgets) if (!(b > 0 && b <= 1)) throw new KpruneError('usage', `--budgets takes shares of weights in (0, 1], got ${b}`);
  if (options.maxDrop !== undefined && !(options.maxDrop >= 0)) throw new KpruneError('usage', `--max-drop takes points (0 or more), got ${options.maxDrop}`);
  if (options.budgetOf !== undefined && budgets.length === 0) throw new KpruneError('usage', '--budget-of does nothing here: it applies only to the auto budgets (--budgets)');
  const specs = [
    ...shapes.map((s) => ({ spec: parseShapeSpec(s), shape: s, budget: null as number | null })),
    ...budgets.map((b) => ({ spec: parseShapeSpec('auto'), shape: 'auto', budget: b as number | null })),
  ];
  if (specs.some((s) => s.spec.kind === 'auto' && s.budget === null)) throw new KpruneError('usage', '--shapes lists fixed shapes; give budgets for auto with --budgets');
  if (specs.length === 0) throw new KpruneError('usage', 'nothing to sweep: give --shapes or --budgets');

  const model = await timed(timings, 'load', on, () => loadPrunable(file));
  const tx = new OutputTransaction();
  if (options.report) tx.declare({ path: options.report, role: 'the report' });
  return transact(tx, async () => {
    await declareReads(tx, [[model, 'the input model']], options.data);
    await tx.validate();
    const report = await measurePoints(file, model, specs, budgets, options, timings);
    if (options.maxDrop !== undefined) report.withinDrop = withinDrop(report, options.maxDrop);
    if (options.report) await tx.write(options.report, reportBytes(options.report, () => renderSweepHtml(report, currentRunInfo(options.commandLine)), report));
    return report;
  });
}

async function measurePoints(
  file: string,
  model: LoadedModel,
  specs: { spec: ShapeSpec; shape: string; budget: number | null }[],
  budgets: number[],
  options: SweepOptions,
  timings: Record<string, number>,
): Promise<SweepReport> {
  const on = options.onProgress;
  const analysis = analyzeModel(model.layers, DEFAULT_LOW_THRESHOLD);
  const ids = new Set(model.layers.map((l) => l.id));
  const isLayerWeight = (w: string) => ids.has(w) || layerOfPiece(w, ids) !== undefined;
  const { inputShapes, unknownReason } = resolveInputShapes(model, options.inputShape, options.data.preprocess);
  const ctx = await timed(timings, 'data', on, () => openData(model, options.data));
  const work = await fs.mkdtemp(path.join(os.tmpdir(), 'kprune-sweep-'));
  try {
    const losses = budgets.length > 0 ? await timed(timings, 'scoreShapes', on, () => dataAwareLosses(ctx, model, on)) : undefined;
    const sizes = budgets.length > 0 ? await timed(timings, 'countMacs', on, () => autoSizes(model, { budgetOf: options.budgetOf, inputShape: options.inputShape })) : {};
    const paramsBefore = measureParams(model.inventory(), isLayerWeight);
    const shapesBefore = inputShapes ? await model.outputShapes(inputShapes) : null;
    const macsBefore = inputShapes && shapesBefore ? measureMacs(model.inventory(), shapesBefore, inputShapes, isLayerWeight) : null;
    const sizeBefore = await measureFiles(model.files, { gzip: false });

    interface Made { plan: PrunePlan; weights: ReadonlyMap<string, Float32Array>; shape: string; budget: number | null }
    const made: Made[] = [];
    for (const [i, s] of specs.entries()) {
      on?.({ phase: 'sweeping', done: i, total: specs.length, unit: 'points', detail: s.budget === null ? s.shape : `auto ${s.budget}` });
      const plan = planShapes(model.layers, s.spec, analysis.layers, s.spec.kind === 'auto' ? { budget: s.budget ?? undefined, losses, ...sizes } : {});
      const masks = new Map(plan.entries.map((e) => [e.layer, parseMask(e.mask)]));
      const masked = maskedWeightMap(applyPlan(model.layers, plan));
      const rec = await timed(timings, `reconstruct ${s.budget === null ? s.shape : `auto ${s.budget}`}`, undefined, () => recoverWeights(ctx, model, masks, masked));
      made.push({ plan, weights: rec.weights, shape: s.shape, budget: s.budget });
    }
    // The original runs once on the evaluation samples, with every point beside it.
    const runners = await Promise.all(made.map((m) => model.createRunner(m.weights, [])));
    let evaluated;
    try {
      evaluated = await timed(timings, 'evaluate', on, () => evaluateRunners(ctx, [ctx.runner, ...runners], on));
    } finally {
      for (const r of runners) await r.release();
    }
    const labelled = ctx.split.eval.labels !== undefined;
    const metric: 'top1' | 'agreement' = labelled && pick(evaluated.pairs[0].clean, 'top1') !== null ? 'top1' : 'agreement';
    if (!evaluated.classifier) throw new KpruneError('usage', 'sweep compares classifiers (top-1 or agreement); this model\'s output is not class scores', { file });

    const points: SweepPoint[] = [];
    for (const [i, m] of made.entries()) {
      const pair = evaluated.pairs[i + 1];
      const params = measureParams(model.inventory(m.weights), isLayerWeight);
      const macs = macsBefore?.status === 'measured' && shapesBefore && inputShapes
        ? measureMacs(model.inventory(m.weights), shapesBefore, inputShapes, isLayerWeight) : null;
      // File size and latency: the point written decomposed, staged in a transaction never committed.
      const out = path.join(work, `point-${i}${path.extname(model.files[0]) || '.onnx'}`);
      const tx = new OutputTransaction();
      tx.declare({ path: out, role: 'the output model', createRoot: model.format !== 'onnx' });
      let bytes = 0;
      let latencyRatio: number | null = null;
      try {
        await tx.validate();
        // The default layout: the file the point's reproducing command (no --layout) writes.
        const written = await model.write(m.weights, out, layoutRequests(m.plan, planMasks(m.plan)), tx);
        bytes = (await measureFiles(written.files.map((f) => tx.stagedPath(f)), { gzip: false })).bytes;
        if ((options.latencyRuns ?? 0) > 0 && inputShapes) {
          const l = await model.compareLatency(tx.stagedPath(out), withBatch(inputShapes, model, options.batch ?? 1), { runs: options.latencyRuns, threads: options.threads });
          latencyRatio = l.ratio;
        }
      } finally {
        tx.abort();
      }
      const prefix = options.commandPrefix ?? `kprune ${file} --data ${options.data.data}`;
      points.push({
        shape: m.shape,
        budget: m.budget,
        keptFraction: m.plan.keptFraction,
        metric,
        quality: pick(pair.clean, metric) ?? NaN,
        occludedQuality: pick(pair.occluded, metric),
        params: { after: params.nonzero, before: paramsBefore.nonzero, ratio: params.nonzero / paramsBefore.nonzero },
        macs: macs?.status === 'measured' && macsBefore?.status === 'measured' ? { after: macs.effective, before: macsBefore.effective, ratio: macs.effective / macsBefore.effective } : null,
        fileBytes: { after: bytes, before: sizeBefore.bytes, ratio: bytes / sizeBefore.bytes },
        latencyRatio,
        pareto: false,
        command: `${prefix} --shape ${m.shape}${m.budget === null ? '' : ` --budget ${m.budget}${options.budgetOf === 'macs' ? ' --budget-of macs' : ''}`}`,
      });
    }
    on?.({ phase: 'sweeping', done: specs.length, total: specs.length, unit: 'points' });
    return {
      schemaVersion: 1,
      kind: 'sweep',
      tool: { name: 'kprune', version: VERSION },
      input: { path: file, format: model.format },
      original: {
        metric,
        quality: metric === 'agreement' ? 1 : pick(evaluated.pairs[0].clean, 'top1') ?? NaN,
        occludedQuality: metric === 'agreement' ? (evaluated.pairs[0].occluded ? 1 : null) : pick(evaluated.pairs[0].occluded, 'top1'),
      },
      evalSamples: ctx.split.eval.count,
      calibSamples: ctx.calib.count,
      points: markPareto(points),
      method: {
        quality: `${metric === 'top1' ? 'top-1 against labels' : 'top-1 agreement with the original (no labels)'} on the evaluation samples, after layer-wise reconstruction on the calibration samples; each point's weights run masked, which computes what the decomposed file computes`,
        params: 'non-zero elements of all float weight tensors, before and after',
        macs: inputShapes ? 'multiply-accumulates skipping zero weights, at the model\'s input shape (what the decomposed file executes)' : `unknown: ${unknownReason}`,
        fileBytes: 'the point written with the decomposed layout (staged in a temporary folder, then removed), bytes on disk',
        latency: (options.latencyRuns ?? 0) > 0 ? `written point against the original, median of ${options.latencyRuns} interleaved runs` : 'not measured (--latency-runs 0)',
        pareto: 'a point is on the front when no other point has both higher-or-equal quality and fewer-or-equal parameters (one of them strictly)',
      },
      timings,
    };
  } finally {
    await ctx.runners.release();
    await ctx.engine.release();
    await ctx.runner.release();
    await fs.rm(work, { recursive: true, force: true });
  }
}
