/**
 * kprune as a library. Every CLI command is one of these calls.
 */
export { analyze } from './pipeline/analyze.js';
export type { AnalyzeOptions } from './pipeline/analyze.js';
export { prune, DEFAULT_SHAPE, DEFAULT_LAYOUT } from './pipeline/prune.js';
export type { PruneOptions } from './pipeline/prune.js';
export type { RunInput } from './pipeline/outputs.js';
export { removeWritesInProgress } from './io/cleanup.js';
export type { Progress, ProgressListener } from './pipeline/progress.js';
export type { DataOptions } from './pipeline/recover.js';
export { compare } from './pipeline/compare.js';
export { reshape, recover, exportModel } from './pipeline/steps.js';
export type { Reshaping } from './pipeline/steps.js';
export type { CompareOptions } from './pipeline/compare.js';
export { loadModel, defaultOutputPath } from './models/index.js';
export type { LoadedModel } from './models/index.js';
export * from './core/lattice.js';
export { analyzeModel, analyzeLayer } from './core/analysis.js';
export type { LayerAnalysis, ModelAnalysis, ShapeSummary } from './core/analysis.js';
export { planShapes } from './core/plan.js';
export { planFromDocument, validatePlan } from './core/plan-validate.js';
export { LIMITS, limitValue } from './util/limits.js';
export type { LimitName, LimitSpec } from './util/limits.js';
export { MAX_JSON_DEPTH, jsonTooDeep } from './util/json-depth.js';
export type { PrunePlan, PlanEntry, PlanOptions } from './core/plan.js';
export { applyPlan, maskWeights, maskedWeightMap } from './core/reshape.js';
export { layerParams } from './model/conv.js';
export type { Conv3x3Layer, ConvUse } from './model/conv.js';
export { KpruneError, isKpruneError } from './errors.js';
export type { ErrorCode } from './errors.js';
export type { PruneReport, AnalyzeReport, CompareReport, LayerReport, ModelFigures, Gate, MeasuredAccuracy } from './report/report.js';
export { REPORT_SCHEMA_VERSION } from './report/report.js';
export { renderAnalyze, renderPrune, renderShapes, renderCompare, ANSI, PLAIN } from './report/text.js';
export type { Style } from './report/text.js';
export { masksDocument, torchModuleFromNode } from './report/masks.js';
export { renderHtml } from './report/html.js';
export { terminalSafe } from './report/terminal-safe.js';
export { renderCompareHtml } from './report/html-compare.js';
export { renderAnalyzeHtml } from './report/html-analyze.js';
export { sweep, markPareto } from './pipeline/sweep.js';
export type { SweepOptions, SweepPoint, SweepReport } from './pipeline/sweep.js';
export { renderSweep, renderSweepHtml } from './report/sweep.js';
export { currentRunInfo, shellQuote } from './report/run-info.js';
export type { RunInfo } from './report/run-info.js';
export type { MasksDocument, MaskEntry } from './report/masks.js';
export { VERSION } from './version.js';
// For programs that write files the way kprune does (the CLI's --json/--report files, Ctrl-C cleanup).
export { writeFilesAtomically } from './io/atomic-write.js';
