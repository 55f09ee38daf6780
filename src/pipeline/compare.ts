/**
 * `kprune compare A B`: the before/after report for any two models of the same task, measured side
 * by side on the same samples (a slimmed model against its original, or a model fine-tuned
 * elsewhere with kprune's masks against the masked one).
 */
import { KpruneError } from '../errors.js';
import { LoadedModel, loadModel } from '../models/index.js';
import { measureFiles } from '../report/measure.js';
import { countFigures } from './measure.js';
import { CompareReport, ModelFigures, REPORT_SCHEMA_VERSION } from '../report/report.js';
import { DataOptions, openData, evaluateRunners, DataContext } from './recover.js';
import { ProgressListener } from './progress.js';
import { resolveInputShapes, timed, withBatch } from './common.js';
import { VERSION } from '../version.js';
import { checkGate } from './gate.js';
import { layerOfPiece } from '../model/layout.js';
import { OutputTransaction } from '../io/transaction.js';
import { RunInput, declareReads, reportBytes, transact } from './outputs.js';
import { renderCompareHtml } from '../report/html-compare.js';
import { currentRunInfo } from '../report/run-info.js';

export interface CompareOptions {
  data?: DataOptions;
  inputShape?: string;
  batch?: number;
  latencyRuns?: number;
  threads?: number;
  /** `false`: sizes without gzip sizes (null), as `prune`'s `gzip` option. Default true. */
  gzip?: boolean;
  /** Fail the gate when B's top-1 (or agreement, without labels) is more than this many points below A's. */
  maxDrop?: number;
  onProgress?: ProgressListener;
  /** Also write the report: `.html` for the page, else JSON (checked before measuring, written whole or not at all). */
  report?: string;
  /** Files the caller read for this run (a config file): the report may not replace them. */
  otherInputs?: RunInput[];
  /** The command line shown on the report page (default: this process's). */
  commandLine?: string;
}

async function figures(m: LoadedModel, shapes: Map<string, number[]> | null, unknown: string, gzip?: boolean, otherIds: Iterable<string> = []): Promise<ModelFigures> {
  const conv = new Set([...m.layers.map((l) => l.id), ...otherIds]);
  // A decomposed model's 3x3 weights are its pieces ("<weight>/kp_..."): they count as the 3x3
  // weights they replace, so that a decomposed B is not reported as having none.
  const isConv = (w: string) => conv.has(w) || layerOfPiece(w, conv) !== undefined;
  const { params, macs } = countFigures(m, shapes ? await m.outputShapes(shapes) : null, shapes, isConv, unknown);
  return { size: await measureFiles(m.files, { gzip }), params, macs };
}

export async function compare(fileA: string, fileB: string, options: CompareOptions = {}): Promise<CompareReport> {
  const timings: Record<string, number> = {};
  const on = options.onProgress;
  const [a, b] = await timed(timings, 'load', on, () => Promise.all([loadModel(fileA), loadModel(fileB)]));
  const tx = new OutputTransaction();
  if (options.report) tx.declare({ path: options.report, role: 'the report' });
  return transact(tx, async () => {
    await declareReads(tx, [[a, 'model A'], [b, 'model B']], options.data, options.otherInputs);
    await tx.validate();
    const report = await measureBoth(a, b, fileA, fileB, options, timings);
    if (options.report) await tx.write(options.report, reportBytes(options.report, () => renderCompareHtml(report, currentRunInfo(options.commandLine)), report));
    return report;
  });
}

async function measureBoth(a: LoadedModel, b: LoadedModel, fileA: string, fileB: string, options: CompareOptions, timings: Record<string, number>): Promise<CompareReport> {
  const on = options.onProgress;
  const sa = resolveInputShapes(a, options.inputShape, options.data?.preprocess);
  const sb = resolveInputShapes(b, options.inputShape, options.data?.preprocess);
  const sameInputs = JSON.stringify(a.inputs.map((i) => i.dims.length)) === JSON.stringify(b.inputs.map((i) => i.dims.length));
  if (!sameInputs) {
    throw new KpruneError('usage', `the two models do not take the same inputs (${a.inputs.length} vs ${b.inputs.length} inputs, or different ranks)`, { file: fileB });
  }
  const [before, after] = await timed(timings, 'measure', on, async () => [
    await figures(a, sa.inputShapes, sa.unknownReason, options.gzip),
    await figures(b, sb.inputShapes, sb.unknownReason, options.gzip, a.layers.map((l) => l.id)),
  ]);
  const runs = options.latencyRuns ?? 50;
  let latency: CompareReport['latency'] = { status: 'unknown', reason: runs === 0 ? 'not measured (latencyRuns 0)' : sa.unknownReason };
  if (runs > 0 && sa.inputShapes) {
    if (a.format !== b.format) latency = { status: 'unknown', reason: `the models run in different runtimes (${a.format}, ${b.format}); latencies are only compared within one` };
    else latency = await timed(timings, 'latency', on, () => a.compareLatency(fileB, withBatch(sa.inputShapes!, a, options.batch ?? 1), { runs, threads: options.threads }));
  }
  let accuracy: CompareReport['accuracy'] = { status: 'unknown', reason: 'no evaluation data was given, so accuracy was not measured' };
  if (options.data) {
    let ctx: DataContext | null = null;
    const runnerB = await b.createRunner(new Map(), []);
    try {
      ctx = await timed(timings, 'data', on, () => openData(a, { ...options.data!, calib: 0 }));
      const { pairs, classifier, occlusion } = await timed(timings, 'evaluate', on, () => evaluateRunners(ctx!, [ctx!.runner, runnerB], on));
      accuracy = {
        status: 'measured', classifier, labelled: ctx.split.eval.labels !== undefined, evalSource: ctx.split.eval.source,
        evalSamples: ctx.split.eval.count, occlusion, a: pairs[0], b: pairs[1], runtime: ctx.runner.runtime === runnerB.runtime ? ctx.runner.runtime : `A: ${ctx.runner.runtime}; B: ${runnerB.runtime}`,
      };
    } finally {
      await runnerB.release();
      await ctx?.runners.release();
      await ctx?.engine.release();
      await ctx?.runner.release();
    }
  }
  const gate = options.maxDrop === undefined ? null : checkGate(options.maxDrop, accuracy.status === 'measured' ? accuracy.a.clean : null, accuracy.status === 'measured' ? accuracy.b.clean : null);
  return {
    schemaVersion: REPORT_SCHEMA_VERSION,
    kind: 'compare',
    tool: { name: 'kprune', version: VERSION },
    a: { path: fileA, format: a.format },
    b: { path: fileB, format: b.format },
    before,
    after,
    latency,
    accuracy,
    gate,
    method: {
      size: 'bytes on disk of every file of each model; gzip: node:zlib at level 6 (the gzip default)',
      params: 'elements of all float weight tensors; "in 3x3 convs": the 3x3 convolution weights of each model',
      macs: 'Conv/Gemm/MatMul with constant weights, output sizes from one run of each model at its input shape; effective skips zero weights',
      latency: 'both models in one process, interleaved runs on the same seeded input; median and quartiles',
      accuracy: 'both models on the same evaluation samples (and the same occluded copies); B is also compared with A',
    },
    timings,
  };
}
