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
  nonzero: number;
}

export interface ModelInventory {
  inputs: InputSpec[];
  compute: ComputeNode[];
  /** Float constant tensors: the model's parameters. */
  weights: WeightInfo[];
}
