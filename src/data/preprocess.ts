/** One raw sample to model-ready floats: channels, size, normalisation, layout, in that order. */
import { toChannels } from './channels.js';
import type { Norm } from './resolve.js';
import { fitImage } from './resize.js';
import type { RawImage } from './source.js';
import type { ChannelLayout, Preprocess } from './types.js';

export function sampleDims(target: Preprocess): number[] {
  const { channels: c, height: h, width: w } = target;
  return target.layout === 'NCHW' ? [c, h, w] : [h, w, c];
}

/** Writes one preprocessed sample into out at offset (prod(sampleDims) floats). */
export function writeSample(img: RawImage, target: Preprocess, norm: Norm, out: Float32Array, offset: number): void {
  const { channels: c, height: h, width: w } = target;
  // Channels before resizing: both are linear, and this way the resize runs on fewer channels when
  // RGB goes to gray.
  const hwc = fitImage(toChannels(img, c), img.height, img.width, c, h, w, target.resize, target.crop, target.interpolation);
  const n = h * w;
  for (let k = 0; k < c; k++) {
    const { scale } = norm;
    const mean = norm.mean[k];
    const std = norm.std[k];
    for (let p = 0; p < n; p++) {
      const v = (hwc[p * c + k] * scale - mean) / std;
      out[offset + (target.layout === 'NCHW' ? k * n + p : p * c + k)] = v;
    }
  }
}

/** Per-channel mean of count preprocessed samples (zeros when there are none). */
export function channelMean(x: Float32Array, count: number, dims: number[], layout: ChannelLayout): number[] {
  const c = layout === 'NCHW' ? dims[0] : dims[2];
  const sums = new Float64Array(c);
  const per = dims[0] * dims[1] * dims[2];
  const plane = per / c;
  for (let s = 0; s < count; s++) {
    const base = s * per;
    for (let p = 0; p < plane; p++) {
      for (let k = 0; k < c; k++) sums[k] += x[base + (layout === 'NCHW' ? k * plane + p : p * c + k)];
    }
  }
  const total = count * plane;
  return Array.from(sums, (v) => (total > 0 ? v / total : 0));
}
