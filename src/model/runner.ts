/**
 * The contract for running a model on data during recovery and evaluation: one input batch in,
 * any intermediate values fetched by name.
 */

/** A value fetched from a run: dims and float32 data (NCHW for convolution inputs and outputs). */
export interface Activation {
  dims: number[];
  data: Float32Array;
}

export interface ModelRunner {
  /** What executes the model, for reports (e.g. "onnxruntime-node 1.30.0 (CPU)"). */
  runtime: string;
  /** The model's single data input. */
  inputName: string;
  /** The model's own outputs. */
  outputNames: string[];
  /** The largest batch the model accepts (its batch dim when fixed, else unbounded). */
  maxBatch: number;
  /**
   * Runs one batch `x` (in the model's own input layout) of dims `dims`; returns the fetched values
   * (default: the model's outputs). Convolution inputs and outputs named in a ConvUse come back in
   * NCHW whatever the model's layout (the core's convention), including when the fetched name is
   * the model's input itself.
   */
  run(x: Float32Array, dims: number[], fetch?: string[]): Promise<Map<string, Activation>>;
  release(): Promise<void>;
}
