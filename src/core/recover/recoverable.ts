/**
 * What recovery can ask of a model beyond the contract (src/model/loaded-model.ts): the methods
 * are optional, since only some formats and runtimes offer them (ONNX in onnxruntime today). They
 * live here, not in the contract, because their types are recovery's (the contract sits below
 * core); src/models/index.ts hands out models with both.
 */
import type { Conv3x3Layer } from '../../model/conv.js';
import type { LinearLayer } from './linear.js';
import type { LayerwiseSource, SegmentedOptions } from './propagation.js';

/** What a format's segment-by-segment recovery needs besides the layers. */
export interface LayerwiseOptions extends SegmentedOptions {
  /** Bytes of cached activations kept in memory; beyond, chunks go to a temporary file. */
  memoryBudget: number;
}

export interface Recoverable {
  /**
   * Layer-wise recovery data computed segment by segment from cached activations (two forward
   * passes in all), where the format and its runtime can run a segment of the graph (ONNX today);
   * absent, or an obstacle for this model: the whole model is run again for every layer.
   */
  layerwiseSource?(layers: Conv3x3Layer[], options: LayerwiseOptions): Promise<LayerwiseSource | { obstacle: string }>;
  /**
   * The linear layers (1x1 convolutions, dense layers) downstream of the given reshaped 3x3 layers
   * that recovery may re-solve to compensate (ONNX today; their weights are written by id too).
   */
  linearLayers?(reshaped: Set<string>): LinearLayer[];
  /** Bias tensors (by name) recovery may change: float constants one node reads (ONNX today). */
  adjustableBiases?(): Set<string>;
}
