/**
 * The contract between the format modules and the rest of kprune: a loaded model exposes its 3x3
 * convolutions as format-neutral layers, an inventory for measurement, and a writer that takes new
 * weights by layer id. ONNX implements it today; TF.js formats plug in beside it.
 */
import { Conv3x3Layer, Mask, SkippedConv } from './conv.js';
import { Layout, LayoutOutcome, LayoutTiming } from './layout.js';
import type { LatencyComparison } from './latency.js';
import type { FinetuneData, FinetuneOptions, FinetuneResult } from './finetune.js';
import { ModelInventory } from './inventory.js';
import { InputSpec } from './inputs.js';
import { ModelRunner } from './runner.js';
import type { OutputTransaction } from '../io/transaction.js';

export type ModelFormat = 'onnx' | 'tfjs-layers' | 'tfjs-graph';

export interface WriteResult {
  /** Every file written, the model file last. */
  files: string[];
  /** Per layer, the layout applied. */
  layouts: LayoutOutcome[];
  /**
   * Float weights the writer copied byte for byte as it read them (not replaced, not touched by a
   * layout's edits), by name: the written model's counts of them are the input's, not re-read.
   */
  copied?: string[];
}

/** A layout asked for one layer, with the mask its weights respect. */
export interface LayoutRequest {
  layout: Layout;
  mask: Mask;
}

export interface LoadedModel {
  format: ModelFormat;
  path: string;
  /** The files the model consists of (the model file first, then data files). */
  files: string[];
  /** Opsets or format versions, for the report. */
  formatInfo: Record<string, string | number>;
  /** Inputs fed at run time. */
  inputs: InputSpec[];
  layers: Conv3x3Layer[];
  skipped: SkippedConv[];
  /**
   * Inventory with some weights (by tensor name = layer id) replaced; `known` gives non-zero counts
   * already counted (by weight name), which a reader may use instead of counting again.
   */
  inventory(overrides?: ReadonlyMap<string, Float32Array>, known?: ReadonlyMap<string, number>): ModelInventory;
  /**
   * Output sizes of the inventory's compute nodes from one run of the model at the given input
   * shapes (dims by input name).
   */
  outputShapes(inputShapes: Map<string, number[]>): Promise<Map<string, number[]>>;
  /**
   * A runner for the model with some weights (by layer id) replaced, that can also fetch the
   * `exposed` intermediate values.
   */
  createRunner(weights: ReadonlyMap<string, Float32Array>, exposed: string[]): Promise<ModelRunner>;
  /**
   * Brief end-to-end fine-tuning of the reshaped 3x3 weights (only their kept positions train),
   * where the format supports it (ONNX today); absent otherwise.
   */
  finetune?(start: ReadonlyMap<string, Float32Array>, masks: Map<string, Mask>, data: FinetuneData, options: FinetuneOptions): Promise<FinetuneResult>;
  /** The default output path for a slimmed copy. */
  defaultOutputPath(): string;
  /**
   * Writes the model with new weights (by layer id), each layer in its requested layout (default
   * masked): staged in the run's transaction `tx` (committed with the run's other outputs), or
   * without one committed at once. `WriteResult.files` are the final paths either way.
   */
  write(weights: ReadonlyMap<string, Float32Array>, outPath: string, layouts?: Map<string, LayoutRequest>, tx?: OutputTransaction): Promise<WriteResult>;
  /**
   * For `--layout auto`: time each layer masked and decomposed in the format's runtime at the given
   * input shapes, and say which is faster.
   */
  chooseLayouts(weights: ReadonlyMap<string, Float32Array>, masks: Map<string, Mask>, inputShapes: Map<string, number[]>, onLayer?: (done: number, total: number, name: string) => void): Promise<LayoutTiming[]>;
  /** End-to-end latency of this model and a file it wrote, side by side in one process. */
  compareLatency(outPath: string, inputShapes: Map<string, number[]>, options: { runs?: number; threads?: number; maxMs?: number }): Promise<LatencyComparison>;
  /**
   * Loads a file this model wrote in the format's own runtime and runs it once on zeros at the
   * given input shapes (only loads it when they are unknown); says what was done, throws if it fails.
   */
  verifyWritten(outPath: string, inputShapes: Map<string, number[]> | null): Promise<string>;
}
