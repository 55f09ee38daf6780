/**
 * The internal contract between the loaders (IDX, npy/npz, image folders) and the sampler: a pool
 * of samples that are read one at a time, so only the drawn samples are decoded and preprocessed.
 */
import type { Preprocess } from './types.js';

/** One sample before preprocessing. */
export interface RawImage {
  height: number;
  width: number;
  /** 1 or 3: decoders drop alpha, array loaders reject other counts before reading. */
  channels: number;
  /** Interleaved (HWC, as decoders and NHWC arrays give it) or planar (CHW, as NCHW arrays give it). */
  order: 'HWC' | 'CHW';
  data: ArrayLike<number>;
}

/**
 * 'pixels': raw 0..255 values that get scale/mean/std. 'values': floats already in the model's
 * range, normalised only by options the user gave explicitly.
 */
export type ValueKind = 'pixels' | 'values';

export interface Source {
  /** What and where, for Dataset.source, e.g. "npz /data/x.npz". */
  description: string;
  /** The file errors name. */
  file: string;
  count: number;
  kind: ValueKind;
  labels?: Int32Array;
  classNames?: string[];
  /** The source's own size and channel count when uniform: the fallback for dynamic model dims. */
  natural: Partial<Pick<Preprocess, 'height' | 'width' | 'channels'>>;
  /** Checks the source against the resolved target (throws 'bad-data' if it cannot fit) and returns a reader. */
  bind(target: Preprocess): (index: number) => RawImage | Promise<RawImage>;
}
