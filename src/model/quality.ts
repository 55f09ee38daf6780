/** Model outputs collected over samples, and the quality figures computed from them (core/metrics.ts). */

export interface OutputSet {
  /** The first output of the model, all samples concatenated. */
  data: Float32Array;
  /** Per-sample dims of that output, e.g. [10] for a classifier. */
  sampleDims: number[];
}

export interface QualityFigures {
  samples: number;
  /** Share of samples whose top-1 class is the label (classifiers with labels). */
  top1?: number;
  /** Share whose label is among the 5 highest scores (more than 5 classes, with labels). */
  top5?: number;
  /** Share whose top-1 class equals the original model's (classifiers; absent for the original). */
  agreement?: number;
  /** Against the original's outputs, for outputs that are not class scores. */
  mse?: number;
  cosine?: number;
  /** 10 log10(range^2 / mse), range = max - min of the original's outputs; null when identical. */
  psnr?: number | null;
}
