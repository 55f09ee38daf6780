/** The public shapes of the data module: what loadData takes and what it returns. */

/** Where the channel axis sits in the model's input tensor. */
export type Layout = 'NCHW' | 'NHWC';

export interface Preprocess {
  /** Target size and channel count (1 or 3). */
  height: number;
  width: number;
  channels: number;
  layout: Layout;
  /** Multiplies raw 0..255 pixel values (default 1/255). */
  scale: number;
  /** Per channel, subtracted after scaling (default zeros). */
  mean: number[];
  /** Per channel, divided after the mean (default ones). */
  std: number[];
  /**
   * How an image reaches height x width: `stretch` (default) resizes each axis to (size / crop);
   * `shorter` keeps the aspect ratio, scaling so the image covers (size / crop); then the centre
   * height x width is cut out.
   */
  resize: ResizeMode;
  /** Share of the resized image the centre crop keeps, 0 < crop <= 1 (default 1: no crop). */
  crop: number;
  /** Resampling filter (default bilinear); downscaling is antialiased (the filter widens). */
  interpolation: Interpolation;
}

import type { Interpolation, ResizeMode } from './resize.js';
export type { Interpolation, ResizeMode };

export type PresetName = 'imagenet' | 'fashion-mnist';

export interface Dataset {
  /** For the report, e.g. "fashion-mnist (test split, /usr/share/datasets/fashion-mnist)". */
  source: string;
  count: number;
  /** Per-sample dims after preprocessing in the model's layout, e.g. [1,28,28] (NCHW) or [28,28,3] (NHWC). */
  sampleDims: number[];
  layout: Layout;
  /** count * prod(sampleDims), preprocessed, ready to feed. */
  x: Float32Array;
  /** Present only when the source has labels. */
  labels?: Int32Array;
  /** Class folder names, for image folders. */
  classNames?: string[];
  /** Per-channel mean of the preprocessed values (used to fill occlusion patches). */
  channelMean: number[];
}

export interface DataSplit {
  calib: Dataset;
  eval: Dataset;
}

export interface LoadDataOptions {
  /** The model input's dims, e.g. [-1 or 'N', 1, 28, 28]; dynamic dims are strings or non-positive numbers. */
  inputDims: (number | string)[];
  /** Wanted calibration sample count. */
  calib: number;
  /** Wanted evaluation sample count. */
  eval: number;
  seed: number;
  preset?: PresetName;
  /** Explicit options win over the preset, which wins over defaults from inputDims. */
  preprocess?: Partial<Preprocess>;
  /** Number of classes of the model (outputs of a classifier), to reject labels outside it. */
  numClasses?: number;
}
