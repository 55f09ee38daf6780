/**
 * The report of a prune run: plain data, the same for the terminal, `--json` and `--report`.
 * `schemaVersion` changes whenever a field changes meaning or goes away.
 */
import { LayerAnalysis, ShapeSummary } from '../core/analysis.js';
import { PrunePlan } from '../core/plan.js';
import { SkippedConv } from '../model/conv.js';
import type { Reach } from '../core/reach.js';
import { MacFigures, ParamFigures, SizeFigures } from './measure.js';
import type { Layout } from '../model/layout.js';
import type { LatencyComparison } from '../model/latency.js';
import type { LayoutTiming } from '../model/layout.js';
import type { FinetuneResult } from '../model/finetune.js';
import type { QualityFigures } from '../model/quality.js';
import type { LayerRecovery } from '../core/recover/reconstruct.js';
import type { PropagationInfo } from '../core/recover/propagation.js';

export const REPORT_SCHEMA_VERSION = 1;

export interface ModelFigures {
  size: SizeFigures;
  params: ParamFigures;
  macs: MacFigures;
}

export interface LayerReport {
  id: string;
  name: string;
  kind: LayerAnalysis['kind'];
  shape: LayerAnalysis['shape'];
  group: number;
  /** Nodes that use this weight (more than one when it is shared). */
  nodes: string[];
  chosenShape: string;
  mask: string;
  chosenBy: PrunePlan['entries'][number]['chosenBy'];
  params: number;
  keptParams: number;
  nonzeroBefore: number;
  nonzeroAfter: number;
  /** Share of the layer's squared-weight energy kept. */
  energyKept: number;
  /** Relative output error on calibration data, reshaped (before) and reconstructed (after). */
  reconstructionError: { before: number; after: number } | null;
  /** How the layer is stored in the written file, and why if not as asked. */
  layout: Layout;
  layoutNote?: string;
  storedWeights: number;
  /**
   * Summed over the nodes computing the layer, at the measured input shape; null if unknown.
   * Before: dense. After: as the written file executes (dense), and skipping zero weights.
   */
  macsBefore: number | null;
  macsAfter: number | null;
  macsAfterEffective: number | null;
  meanAbs: number[];
  lowPositions: number[];
}

// The quality gate of a run (`--max-drop`); pipeline/gate.ts decides it.
export interface Gate {
  maxDrop: number;
  metric: 'top1' | 'agreement';
  /** Points (percentage) lost; null when it could not be measured. */
  drop: number | null;
  passed: boolean;
  reason: string;
}

export interface QualityPair {
  clean: QualityFigures;
  /** The same samples with an occluding patch; absent when occlusion is off. */
  occluded?: QualityFigures;
}

/** How quality was measured: common to prune and compare reports. */
export interface EvaluationInfo {
  status: 'measured';
  classifier: boolean;
  labelled: boolean;
  evalSource: string;
  evalSamples: number;
  /** How the occluded copies were made; null when occlusion was off. */
  occlusion: string | null;
  runtime: string;
}

export interface MeasuredAccuracy extends EvaluationInfo {
  /** The input model. */
  original: QualityPair;
  /** Reshaped, before any recovery: what recovery started from. */
  reshaped: QualityPair;
  /** The written model, loaded back from disk (after recovery, when there was one). */
  written: QualityPair;
  /** With fine-tuning: the reconstructed weights before it, so its effect is visible. */
  reconstructed?: QualityPair;
}

export type AccuracyFigures =
  | { status: 'unknown'; reason: string }
  | MeasuredAccuracy;

export interface DataFigures {
  calibSource: string;
  calibSamples: number;
  evalSource: string;
  evalSamples: number;
  labelled: boolean;
  seed: number;
  sampleDims: number[];
  layout: string;
}

/** How fine-tuning went (held-out samples come from the training pool, never the evaluation set). */
export type FinetuneFigures = Pick<FinetuneResult, 'backend' | 'engine' | 'missingOperators' | 'engineNote' | 'objective' | 'steps' | 'bestStep' | 'batch' | 'imagesPerSecond' | 'trainMs' | 'evalMs' | 'heldOut'>;

export interface RecoveryFigures {
  method: 'reconstruct';
  ridge: number;
  rowsPerImage: number;
  /** How each layer's inputs and targets were computed, what was cached, and the cache's memory. */
  propagation: PropagationInfo;
  layers: LayerRecovery[];
}

export interface PruneReport {
  schemaVersion: number;
  kind: 'prune';
  tool: { name: 'kprune'; version: string };
  input: { path: string; format: string; formatInfo: Record<string, string | number> };
  output: { path: string; files: string[]; verified: string };
  plan: PrunePlan;
  /** The share of the model's parameters and MACs in 3x3 layers, per kind: the most reshaping can touch. */
  reach: Reach;
  before: ModelFigures;
  after: ModelFigures;
  /** `--max-drop`: whether the written model lost no more than allowed. */
  gate: Gate | null;
  /** End-to-end latency, original vs written, side by side. */
  latency: LatencyComparison | { status: 'unknown'; reason: string };
  /** With `--layout auto`: each layer's timings in both forms and the choice. */
  layoutTimings: LayoutTiming[] | null;
  /** With `--layout auto`: why the per-layer choices were replaced (the written model was slower), or null. */
  layoutFallback: string | null;
  accuracy: AccuracyFigures;
  data: DataFigures | null;
  recovery: RecoveryFigures | null;
  /** With `--finetune`: how the training went (held-out samples come from the calibration set). */
  finetune: FinetuneFigures | null;
  layers: LayerReport[];
  skipped: SkippedConv[];
  shapeRanking: ShapeSummary[];
  /** How each figure was obtained. */
  method: Record<string, string>;
  /** Wall time per phase, milliseconds. */
  timings: Record<string, number>;
}

export interface AnalyzeReport {
  schemaVersion: number;
  kind: 'analyze';
  tool: { name: 'kprune'; version: string };
  input: { path: string; format: string; formatInfo: Record<string, string | number> };
  threshold: number;
  layers: LayerAnalysis[];
  /** Named shapes, best energy per parameter first. */
  shapes: ShapeSummary[];
  /** Over all 3x3 layers, parameter-weighted share of energy at each position. */
  energyShare: number[];
  /** The share of the model's parameters and MACs in 3x3 layers, per kind: the most reshaping can touch. */
  reach: Reach;
  skipped: SkippedConv[];
  method: Record<string, string>;
}

export interface CompareAccuracy extends EvaluationInfo {
  a: QualityPair;
  /** B, also compared with A (agreement / distance). */
  b: QualityPair;
}

export interface CompareReport {
  schemaVersion: number;
  kind: 'compare';
  tool: { name: 'kprune'; version: string };
  a: { path: string; format: string };
  b: { path: string; format: string };
  before: ModelFigures;
  after: ModelFigures;
  latency: LatencyComparison | { status: 'unknown'; reason: string };
  accuracy: CompareAccuracy | { status: 'unknown'; reason: string };
  gate: Gate | null;
  method: Record<string, string>;
  timings: Record<string, number>;
}
