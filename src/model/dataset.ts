/** Samples ready to feed a model: what the data module (src/data) loads and what runners and trainers read. */
import type { ChannelLayout } from './inputs.js';

export interface Dataset {
  /** For the report, e.g. "fashion-mnist (test split, /usr/share/datasets/fashion-mnist)". */
  source: string;
  count: number;
  /** Per-sample dims after preprocessing in the model's layout, e.g. [1,28,28] (NCHW) or [28,28,3] (NHWC). */
  sampleDims: number[];
  layout: ChannelLayout;
  /** count * prod(sampleDims), preprocessed, ready to feed. */
  x: Float32Array;
  /** Present only when the source has labels. */
  labels?: Int32Array;
  /** Class folder names, for image folders. */
  classNames?: string[];
  /** Per-channel mean of the preprocessed values (used to fill occlusion patches). */
  channelMean: number[];
}
