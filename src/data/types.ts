/** The public shapes of the data module: what loadData takes and what it returns. */

import type { Dataset } from '../model/dataset.js';
import type { ChannelLayout } from '../model/inputs.js';

export type { ChannelLayout, Dataset };

export interface Preprocess {
  /** Target size and channel count (1 or 3). */
  height: number;
  width: number;
  channels: number;
  layout: ChannelLayout;
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
