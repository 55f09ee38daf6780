/** Converting a sample to the model's channel count, as an interleaved (HWC) float image. */
import type { RawImage } from './source.js';

// ITU-R BT.601 luma, as PIL's convert('L') and torchvision's rgb_to_grayscale.
const LUMA = [0.299, 0.587, 0.114] as const;

export function toChannels(img: RawImage, channels: number): Float64Array {
  const { height, width, data } = img;
  const n = height * width;
  const from = img.channels;
  // Index of channel k of pixel p, whatever the source order.
  const at = img.order === 'HWC' ? (p: number, k: number) => p * from + k : (p: number, k: number) => k * n + p;
  const out = new Float64Array(n * channels);
  if (from === channels) {
    for (let p = 0; p < n; p++) for (let k = 0; k < channels; k++) out[p * channels + k] = data[at(p, k)];
  } else if (from === 1 && channels === 3) {
    for (let p = 0; p < n; p++) out[p * 3] = out[p * 3 + 1] = out[p * 3 + 2] = data[at(p, 0)];
  } else if (from === 3 && channels === 1) {
    for (let p = 0; p < n; p++) {
      const r = data[at(p, 0)];
      const g = data[at(p, 1)];
      const b = data[at(p, 2)];
      // Gray pixels stored as RGB (gray JPEGs decode that way) stay exact: the weighted sum of three
      // equal values is off by one ulp for some of them.
      out[p] = r === g && g === b ? r : LUMA[0] * r + LUMA[1] * g + LUMA[2] * b;
    }
  } else {
    throw new Error(`cannot convert ${from} channels to ${channels}`); // loaders reject these first
  }
  return out;
}
