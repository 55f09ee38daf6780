/**
 * What the report measures of a model, the same for every format: its inputs, its float weights
 * (elements and non-zeros), and the nodes whose multiply-accumulates are counted.
 */
import type { InputSpec } from './inputs.js';

export interface ComputeNode {
  node: string;
  opType: string;
  output: string;
  weight: string;
  /** Multiply-accumulates per output element with a dense weight. */
  macsPerOutput: number;
}

export interface WeightInfo {
  name: string;
  elements: number;
  /**
   * Counting reads every value of the tensor: a reader may make this a getter that counts on first
   * use, so that a caller needing only `elements` (the reach of `analyze`) reads no weights.
   */
  readonly nonzero: number;
}

export interface ModelInventory {
  inputs: InputSpec[];
  compute: ComputeNode[];
  /** Float constant tensors: the model's parameters. */
  weights: WeightInfo[];
}
