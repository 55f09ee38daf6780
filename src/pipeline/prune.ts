/**
 * `kprune <model> --shape S`: load, analyze, plan, reshape, write, measure. Every step is a
 * library call; the CLI only parses options and prints the returned report.
 */
import { analyzeModel, DEFAULT_LOW_THRESHOLD } from '../core/analysis.js';
import { BudgetOf, planMasks, planShapes, PrunePlan } from '../core/plan.js';
import { Mask, ShapeSpec, parseShapeSpec } from '../core/lattice.js';
import { validatePlan } from '../core/plan-validate.js';
import { applyPlan, maskedWeightMap } from '../core/reshape.js';
import { KpruneError, inFile, isKpruneError, reasonOf } from '../errors.js';
import { LoadedModel, WriteResult } from '../models/index.js';
import { pruneReport } from '../report/prune-report.js';
import type { PruneReport } from '../report/report.js';
import { measureBeforeAfter } from './measure.js';
import { Layout, layerOfPiece } from '../model/layout.js';
import { checkThreshold } from './analyze.js';
import { loadPrunable } from './load.js';
import { verifyByReading } from './verify.js';
import { resolveInputShapes, timed, withBatch } from './common.js';
import { checkGate } from './gate.js';
import { reachFromFigures } from './reach.js';
import { autoSizes } from './auto-sizes.js';
import { FinetuneRequest, finetuneSampleCount, finetuneWeights } from './finetune.js';
import type { FinetuneResult } from '../model/finetune.js';
import { checkDevice } from '../runtime/ort/training-session.js';
import { ProgressListener } from './progress.js';
import { DataContext, DataOptions, dataAwareLosses, evaluateQuality, openData, recoverWeights, DEFAULT_RIDGE, DEFAULT_ROWS_PER_IMAGE } from './recover.js';
import { loadModel } from '../models/index.js';
import { LayoutRequest } from '../model/loaded-model.js';
import { layoutRequests as layoutRequestsFor } from './layouts.js';
import type { LayoutTiming } from '../model/layout.js';
import { OutputTransaction } from '../io/transaction.js';
import { RunInput, declareReads, jsonBytes, reportBytes, transact } from './outputs.js';
import { renderHtml } from '../report/html.js';
import { currentRunInfo } from '../report/run-info.js';
import { masksDocument } from '../report/masks.js';

export interface PruneOptions {
  /** A named shape, `qh`, `auto`, or a custom mask such as "010/111/010". Default `cross`. */
  shape?: string | ShapeSpec;
  /** For `auto`: the largest share of 3x3 weights (or MACs, see `budgetOf`) to keep. */
  budget?: number;
  /** For `auto`: count the budget in the 3x3 layers' parameters (default) or MACs. */
  budgetOf?: BudgetOf;
  /**
   * For `auto`: also reshape layers that would save little of the model at a large loss (by
   * default they stay full; see PlanOptions.protectBelow).
   */
  reshapeAll?: boolean;
  /** Per-layer shapes (by node or weight name), overriding `shape`. */
  layerShapes?: Record<string, string>;
  /** Output path; default `<name>.kpruned.onnx` beside the input. */
  output?: string;
  /** `--input-shape` text, for models with dynamic dimensions other than the batch. */
  inputShape?: string;
  threshold?: number;
  /** Replay a plan (from an earlier report) instead of making one. */
  plan?: PrunePlan;
  /**
   * Calibration and evaluation data. With it, kprune reconstructs each reshaped layer from the
   * original's outputs (unless `recover` is 'none') and measures quality before and after.
   */
  data?: DataOptions;
  /** `reconstruct` (default with data) or `none`. */
  recover?: 'reconstruct' | 'none';
  /**
   * How reshaped layers are stored: `decomposed` (the default: a sum of smaller convolutions holding
   * only the kept weights), `masked` (zeros in place: the original structure, for further training),
   * or `sparse` (a Constant node with a COO `sparse_value`).
   */
  layout?: Layout | 'auto';
  /**
   * Batch for `--layout auto` timings and the latency comparison (default 1). The MAC counts are
   * always per the model's own input shape.
   */
  batch?: number;
  /** Timed runs of each model for the latency comparison (default 50; 0 skips it). */
  latencyRuns?: number;
  /** onnxruntime intra-op threads for timings (default: onnxruntime's choice). */
  threads?: number;
  /**
   * `false`: never execute the model, for models too large for a runtime to hold (or where none is
   * at hand). The written model is then checked by reading it back (`verifyByReading`); latency and
   * MACs (which need one run for tensor sizes) are reported unknown; `--layout auto` and data (for
   * recovery or quality) are refused, since they need runs. Default true.
   */
  run?: boolean;
  /**
   * `false`: report file sizes without their gzip sizes (null), which take gzip's time over every
   * byte of input and output: minutes for a model of gigabytes. Default true.
   */
  gzip?: boolean;
  /** TF.js: keep the weights' storage (default) or write float32 (drop quantization). */
  weights?: 'keep' | 'float32';
  /** Brief end-to-end fine-tuning after reconstruction (needs `data`; ONNX models). */
  finetune?: FinetuneRequest;
  /** Quality gate: at most this many points of top-1 (or agreement) lost; see gate.ts. */
  maxDrop?: number;
  /** Progress events for long phases. */
  onProgress?: ProgressListener;
  /** Also write the report: `.html` for the page, else JSON. Committed with the model, or neither is. */
  report?: string;
  /** Also write the chosen masks (`masksDocument`) as JSON, in the same transaction. */
  emitMasks?: string;
  /** Files the caller read for this run (a config or plan file): no output may replace them. */
  otherInputs?: RunInput[];
  /** The command line shown on the report page (default: this process's). */
  commandLine?: string;
}

export const DEFAULT_SHAPE = 'cross';

function fixedOverrides(layerShapes: Record<string, string> = {}): Record<string, ShapeSpec & { kind: 'fixed' }> {
  const out: Record<string, ShapeSpec & { kind: 'fixed' }> = {};
  for (const [layer, text] of Object.entries(layerShapes)) {
    const spec = parseShapeSpec(text);
    if (spec.kind !== 'fixed') throw new KpruneError('usage', `--layer-shape ${layer}=${text}: a layer takes one fixed shape, not "${spec.name}"`);
    out[layer] = spec;
  }
  return out;
}

export async function prune(file: string, options: PruneOptions = {}): Promise<PruneReport> {
  const timings: Record<string, number> = {};
  const onPhase = options.onProgress;
  const spec = typeof options.shape === 'object' ? options.shape : parseShapeSpec(options.shape ?? DEFAULT_SHAPE);
  const overrides = fixedOverrides(options.layerShapes);
  const threshold = checkThreshold(options.threshold ?? DEFAULT_LOW_THRESHOLD);
  // An ONNX model is read without its large inline tensors and written by streaming them from the
  // file (formats/onnx/stream-payloads.ts): one pass, memory near the changed tensors. onnxruntime
  // reads them from the file too (models/onnx/probe.ts); only recovery, fine-tuning and the auto
  // layout's timings (segment models, runners over new weights) need the model whole.
  const streamed = options.run === false || (!options.data && !options.finetune && options.layout !== 'auto');
  const model = await timed(timings, 'load', onPhase, () => loadPrunable(file, { weights: options.weights, lazy: streamed, stream: streamed }));
  const outFile = options.output ?? model.defaultOutputPath();

  const recoverMode = options.recover ?? (options.data ? 'reconstruct' : 'none');
  if (options.finetune && !options.data) {
    throw new KpruneError('usage', '--finetune needs training data', { suggestion: 'pass --data (labelled: cross-entropy; unlabelled: distillation from the original)' });
  }
  if (options.finetune?.device && options.finetune.device !== 'cpu') {
    // Before any work: a device this machine's onnxruntime-node cannot offer is refused now.
    if (model.format !== 'onnx' || options.finetune.engine === 'tfjs') {
      throw new KpruneError('usage', `--device ${options.finetune.device} needs the onnxruntime engine, which trains ONNX models only`, { file });
    }
    checkDevice(options.finetune.device, file);
  }
  if (recoverMode === 'reconstruct' && !options.data) {
    throw new KpruneError('usage', '--recover reconstruct needs calibration data', { suggestion: 'pass --data (a folder of images, an .npz, or fashion-mnist)' });
  }
  if (options.run === false) {
    const needsRun = options.data ? '--data' : options.layout === 'auto' ? '--layout auto' : null;
    if (needsRun) throw new KpruneError('usage', `${needsRun} needs to run the model, which --no-run rules out`, { file });
  }
  // Every output of the run, checked against what it reads (and each other) before minutes of
  // work, staged as made, committed together when the run succeeds (src/io/transaction.ts).
  const tx = new OutputTransaction();
  tx.declare({ path: outFile, role: 'the output model', createRoot: model.format !== 'onnx' });
  if (options.report) tx.declare({ path: options.report, role: 'the report' });
  if (options.emitMasks) tx.declare({ path: options.emitMasks, role: 'the masks file' });
  return transact(tx, async () => {
    await declareReads(tx, [[model, 'the input model']], options.data, options.otherInputs);
    await tx.validate();
    // Checked now (again when measuring) so that a bad or oversized input shape, or batch, fails before any work.
    const early = resolveInputShapes(model, options.inputShape, options.data?.preprocess, options.run !== false);
    if (early.inputShapes && (options.layout === 'auto' || (options.run !== false && (options.latencyRuns ?? 50) > 0))) withBatch(early.inputShapes, model, options.batch ?? 1);
    const analysis = await timed(timings, 'analyze', onPhase, () => inFile(file, () => analyzeModel(model.layers, threshold)));
    let ctx: DataContext | null = null;
    try {
      if (options.data) {
        const data = options.finetune ? { ...options.data, finetuneSamples: finetuneSampleCount(options.finetune) } : options.data;
        ctx = await timed(timings, 'data', onPhase, () => openData(model, data));
      }
      const losses = ctx && spec.kind === 'auto' && !options.plan
        ? await timed(timings, 'scoreShapes', onPhase, () => inFile(ctx!.options.data, () => dataAwareLosses(ctx!, model, onPhase)))
        : undefined;
      const plan = options.plan ? validatePlan(options.plan) : planShapes(model.layers, spec, analysis.layers, {
        budget: options.budget, overrides, losses,
        ...(spec.kind === 'auto' ? await timed(timings, 'countMacs', onPhase, () => autoSizes(model, options)) : {}),
      });
      const reshaped = await timed(timings, 'reshape', onPhase, () => inFile(file, () => applyPlan(model.layers, plan, analysis)));
      const maskedWeights = maskedWeightMap(reshaped);
      const masks = planMasks(plan);
      const recovery = ctx && recoverMode === 'reconstruct'
        ? await timed(timings, 'reconstruct', onPhase, () => inFile(ctx!.options.data, () => recoverWeights(ctx!, model, masks, maskedWeights, onPhase)))
        : null;
      const reconstructed = recovery ? recovery.weights : maskedWeights;
      const finetuned = ctx && options.finetune
        ? await timed(timings, 'finetune', onPhase, () => finetuneWeights(ctx!, model, masks, reconstructed, options.finetune!, onPhase))
        : null;
      // Fine-tuning returns the 3x3 layers; weights recovery compensated with stay as they were.
      const newWeights = finetuned ? new Map([...[...reconstructed.keys()].map((k) => [k, reconstructed.get(k)!] as const), ...finetuned.weights]) : reconstructed;
      return await finish({ model, file, outFile, options, plan, masks, analysis, reshaped, maskedWeights, newWeights, recovery, finetuned, ctx, timings, tx });
    } finally {
      await ctx?.runners.release();
      await ctx?.engine.release();
      await ctx?.runner.release();
    }
  });
}

/** What the first half of a run decided and computed; the second half writes and measures it. */
interface Reshaped {
  model: LoadedModel;
  file: string;
  outFile: string;
  options: PruneOptions;
  plan: PrunePlan;
  /** The plan's masks by layer id. */
  masks: Map<string, Mask>;
  analysis: ReturnType<typeof analyzeModel>;
  reshaped: ReturnType<typeof applyPlan>;
  /** Reshaped, before recovery. */
  maskedWeights: ReadonlyMap<string, Float32Array>;
  /** What gets written: recovered when there was recovery. */
  newWeights: ReadonlyMap<string, Float32Array>;
  recovery: Awaited<ReturnType<typeof recoverWeights>> | null;
  finetuned: FinetuneResult | null;
  ctx: DataContext | null;
  timings: Record<string, number>;
  /** The run's outputs: the model is staged in it, verified there, and committed with the report. */
  tx: OutputTransaction;
}

/** Chooses layouts, writes, verifies, evaluates, measures, and assembles the report. */
async function finish(state: Reshaped): Promise<PruneReport> {
  const { model, file, outFile, options, plan, masks, newWeights, timings, tx } = state;
  const onPhase = options.onProgress;

  const { inputShapes, unknownReason: macsUnknown } = resolveInputShapes(model, options.inputShape, options.data?.preprocess, options.run !== false);

  const timedRuns = options.layout === 'auto' || (options.run !== false && (options.latencyRuns ?? 50) > 0);
  const timingShapes = inputShapes && timedRuns ? withBatch(inputShapes, model, options.batch ?? 1) : null;
  let layoutTimings: LayoutTiming[] | null = null;
  if (options.layout === 'auto') {
    if (!timingShapes) throw new KpruneError('usage', `--layout auto needs the model's input shape: ${macsUnknown}`, { file });
    layoutTimings = await timed(timings, 'chooseLayouts', onPhase, () => model.chooseLayouts(newWeights, masks, timingShapes, (done, total, name) => onPhase?.({ phase: 'timing layouts', done, total, unit: 'layers', detail: name })));
  }
  const chosen = new Map((layoutTimings ?? []).map((t) => [t.layer, t.choice]));
  const requested = options.layout;
  const layoutRequests = requested === 'auto'
    ? new Map(plan.entries.map((e) => [e.layer, { layout: chosen.get(e.layer) ?? 'masked', mask: masks.get(e.layer)! } as LayoutRequest]))
    : layoutRequestsFor(plan, masks, requested);
  // Staged in the run's transaction: verified and measured there, committed by prune().
  let written = await timed(timings, 'write', onPhase, () => model.write(newWeights, outFile, layoutRequests, tx));
  let fallback: string | null = null;
  if (requested === 'auto' && timingShapes && written.layouts.some((o) => o.applied === 'decomposed')) {
    // Per-layer timings can mislead (a busy machine, effects between layers): the whole written
    // model must not be slower than the original. If it is, write the layers masked instead,
    // which computes exactly what the original computes.
    const check = await timed(timings, 'checkAuto', onPhase, () => model.compareLatency(tx.stagedPath(outFile), timingShapes, { runs: 30, threads: options.threads }));
    if (check.ratio > 1) {
      const masked = new Map([...layoutRequests].map(([id, r]) => [id, { ...r, layout: 'masked' as Layout }]));
      written = await timed(timings, 'write', onPhase, () => model.write(newWeights, outFile, masked, tx));
      fallback = `the auto layouts measured ${check.ratio.toFixed(3)}x the original's latency end to end (median of ${check.runs}), so every layer was written masked instead`;
    }
  }
  const report = await afterWrite(state, written, inputShapes, macsUnknown, timingShapes, layoutTimings, fallback);
  // The report and masks join the model in the transaction.
  if (options.report) await tx.write(options.report, reportBytes(options.report, () => renderHtml(report, currentRunInfo(options.commandLine)), report));
  if (options.emitMasks) await tx.write(options.emitMasks, jsonBytes(masksDocument(report)));
  return report;
}

/** Verifies, times, evaluates and measures the written model, and assembles the report. */
async function afterWrite(
  state: Reshaped,
  written: WriteResult,
  inputShapes: Map<string, number[]> | null,
  macsUnknown: string,
  timingShapes: Map<string, number[]> | null,
  layoutTimings: LayoutTiming[] | null,
  layoutFallback: string | null,
): Promise<PruneReport> {
  const { model, file, outFile, options, plan, analysis, reshaped, maskedWeights, newWeights, recovery, ctx, timings, tx } = state;
  const onPhase = options.onProgress;
  const run = options.run !== false;
  // Everything below reads the staged output: the files as they will be, before they are in place.
  const staged = tx.stagedPath(outFile);
  const verified = await timed(timings, 'verify', onPhase, async () => {
    if (run) return verifyAgainstInput(model, staged, inputShapes);
    // Not run, only the masked layers are read back as weights, and every file is read back
    // against what it was written from: the bytes kprune made (changed tensors, the structure)
    // compared, the bytes it copied from the input not read again (the input's stamp is).
    const read = await verifyByReading(staged, state.plan, written.layouts);
    for (const f of written.files) await tx.checkStaged(f, 'stamp');
    return `${read}; every file read back as written (what kprune wrote compared byte for byte; what it copied from the unchanged input, by length)`;
  });
  const runs = run ? options.latencyRuns ?? 50 : 0;
  const latency = timingShapes && runs > 0
    ? await timed(timings, 'latency', onPhase, () => model.compareLatency(staged, timingShapes, { runs, threads: options.threads }))
    : null;

  // The written file, read back once for evaluation and measuring (after: as stored and executed).
  let loaded: Promise<LoadedModel> | null = null;
  // Lazily unless evaluated (which runs it with data): measuring runs it from the file.
  const writtenModel = () => (loaded ??= loadModel(staged, { lazy: !ctx }));
  const accuracy = ctx
    ? await timed(timings, 'evaluate', onPhase, async () => evaluateQuality(ctx!, model, maskedWeights, await writtenModel(), onPhase, state.finetuned && state.recovery ? state.recovery.weights : undefined))
    : null;

  const ids = new Set(model.layers.map((l) => l.id));
  // A weight belongs to a reshaped layer if it is the layer's or one of its decomposed pieces.
  const isLayerWeight = (w: string) => ids.has(w) || layerOfPiece(w, ids) !== undefined;
  // Not run, the written model is only counted: read lazily, its large tensors are counted from the
  // staged file a block at a time instead of being held beside the input.
  const figures = await timed(timings, 'measure', onPhase, async () => measureBeforeAfter(model, run ? await writtenModel() : await loadModel(staged, { lazy: true }), written, {
    inputShapes, run, macsUnknown, isLayerWeight, gzip: options.gzip, stagedPath: (f) => tx.stagedPath(f),
  }));

  return pruneReport({
    model, file, outFile, written, verified, plan, analysis, reshaped, newWeights, figures,
    gate: options.maxDrop === undefined ? null : checkGate(options.maxDrop, accuracy?.original.clean ?? null, accuracy?.written.clean ?? null),
    latency: latency ?? { status: 'unknown', reason: !run ? 'not measured: the model was not run (--no-run)' : runs === 0 ? 'not measured (latencyRuns 0)' : macsUnknown },
    layoutTimings, layoutFallback, accuracy, finetuned: state.finetuned,
    data: ctx ? {
      calibSource: ctx.calib.source,
      calibSamples: ctx.calib.count,
      evalSource: ctx.split.eval.source,
      evalSamples: ctx.split.eval.count,
      labelled: ctx.split.eval.labels !== undefined,
      seed: ctx.options.seed ?? 0,
      sampleDims: ctx.split.eval.sampleDims,
      layout: ctx.split.eval.layout,
    } : null,
    recovery: recovery ? {
      method: 'reconstruct',
      ridge: ctx?.options.ridge ?? DEFAULT_RIDGE,
      rowsPerImage: ctx?.options.rowsPerImage ?? DEFAULT_ROWS_PER_IMAGE,
      propagation: recovery.propagation,
      layers: recovery.layers,
    } : null,
    reach: reachFromFigures(model, figures.before.params, figures.before.macs),
    timings,
  });
}

/**
 * Loads and runs the written model; when that fails, the input is tried the same way, so that a
 * model the runtime cannot run in the first place is reported as the input's fault, not the output's.
 */
async function verifyAgainstInput(model: LoadedModel, staged: string, inputShapes: Map<string, number[]> | null): Promise<string> {
  try {
    return await model.verifyWritten(staged, inputShapes);
  } catch (e) {
    const inputFails = await model.verifyWritten(model.path, inputShapes).then(() => null, (f: unknown) => f);
    if (isKpruneError(inputFails)) {
      throw new KpruneError(inputFails.code, `the input model does not run either: ${reasonOf(inputFails, model.path)}`, { file: model.path, suggestion: inputFails.suggestion, cause: inputFails });
    }
    throw e;
  }
}
