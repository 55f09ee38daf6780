/**
 * The contract for running a model on data during recovery and evaluation: one input batch, the
 * prunable weights fed by the caller, any intermediate values fetched by name.
 */
import type { Activation } from '../core/recover/layer-stats.js';

export type { Activation };

export interface ModelRunner {
  /** The model's single data input. */
  inputName: string;
  /** The model's own outputs. */
  outputNames: string[];
  /** The largest batch the model accepts (its batch dim when fixed, else unbounded). */
  maxBatch: number;
  /**
   * Runs one batch `x` of dims `dims` with the given weights (by layer id; all prunable weights must
   * be given) and returns the fetched values (default: the model's outputs).
   */
  run(x: Float32Array, dims: number[], weights: Map<string, Float32Array>, fetch?: string[]): Promise<Map<string, Activation>>;
  release(): Promise<void>;
}
