/** `kprune analyze`: where each 3x3 layer's weight magnitude sits, and what each shape keeps. */
import { DEFAULT_LOW_THRESHOLD, analyzeModel } from '../core/analysis.js';
import { KpruneError, inFile } from '../errors.js';
import { AnalyzeReport, REPORT_SCHEMA_VERSION } from '../report/report.js';
import { VERSION } from '../version.js';
import { loadPrunable } from './load.js';
import { LoadedModel } from '../models/index.js';
import { OutputTransaction } from '../io/transaction.js';
import { declareReads, reportBytes, transact } from './outputs.js';
import { renderAnalyzeHtml } from '../report/html-analyze.js';
import { currentRunInfo } from '../report/run-info.js';
import { measureReach } from './reach.js';

export interface AnalyzeOptions {
  /** Positions whose normalised mean |w| is below this are listed as low-magnitude edges. */
  threshold?: number;
  /** Also write the report: `.html` for the page, else JSON (checked first, written whole). */
  report?: string;
  /** The command line shown on the page (default: this process's). */
  commandLine?: string;
  /** `--input-shape` text, for counting MACs of a model with dynamic dimensions other than the batch. */
  inputShape?: string;
  /** `false`: never run the model (MACs are then unknown). Default true. */
  run?: boolean;
}

export function checkThreshold(t: number): number {
  if (!(t >= 0 && t <= 1)) throw new KpruneError('usage', `--threshold must be between 0 and 1, got ${t}`);
  return t;
}

export async function analyze(file: string, options: AnalyzeOptions = {}): Promise<AnalyzeReport> {
  const threshold = checkThreshold(options.threshold ?? DEFAULT_LOW_THRESHOLD);
  // The model is only analyzed, counted, and run once for its tensor sizes (onnxruntime reading the
  // weights from the file, models/onnx/probe.ts): its large tensors can stay in the file.
  const model = await loadPrunable(file, { lazy: true });
  const tx = new OutputTransaction();
  if (options.report) tx.declare({ path: options.report, role: 'the report' });
  return transact(tx, async () => {
    await declareReads(tx, [[model, 'the input model']], undefined);
    await tx.validate();
    const report = await analysisReport(file, model, threshold, options);
    if (options.report) await tx.write(options.report, reportBytes(options.report, () => renderAnalyzeHtml(report, currentRunInfo(options.commandLine)), report));
    return report;
  });
}

async function analysisReport(file: string, model: LoadedModel, threshold: number, options: AnalyzeOptions): Promise<AnalyzeReport> {
  const a = inFile(file, () => analyzeModel(model.layers, threshold));
  const { reach } = await measureReach(model, { inputShape: options.inputShape, run: options.run });
  return {
    schemaVersion: REPORT_SCHEMA_VERSION,
    kind: 'analyze',
    tool: { name: 'kprune', version: VERSION },
    input: { path: file, format: model.format, formatInfo: model.formatInfo },
    threshold,
    layers: a.layers,
    shapes: a.shapes,
    energyShare: a.energyShare,
    reach,
    skipped: model.skipped,
    method: {
      meanAbs: 'mean |w| over all kernels of the layer at each of the 9 positions, divided by the largest of the nine',
      energyKept: 'sum of w^2 at the positions a shape keeps over the sum of w^2 of the layer',
      shapes: 'energy kept over all 3x3 layers (each layer weighted by its parameter count), divided by the share of positions kept',
      reach: 'float weights in the 3x3 layers over all float weights of the model; MACs of the 3x3 layers over all Conv/Gemm/MatMul MACs, from one run at the model\'s input shape; cross saves 4/9 of each',
    },
  };
}
