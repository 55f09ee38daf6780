/**
 * Occluded copies of a data set, for the paper's robustness claim: each sample gets one square
 * patch covering a share of its area, at a seeded random place, filled with the data set's
 * per-channel mean (so the patch carries no information and no out-of-range values).
 */
import { mulberry32 } from '../util/random.js';
import { Dataset } from './types.js';

export const DEFAULT_OCCLUSION_AREA = 0.25;

export function occlude(data: Dataset, area: number, seed: number): Dataset {
  const nchw = data.layout === 'NCHW';
  const [c, h, w] = nchw ? data.sampleDims : [data.sampleDims[2], data.sampleDims[0], data.sampleDims[1]];
  const side = Math.max(1, Math.min(h, w, Math.round(Math.sqrt(area * h * w))));
  const x = Float32Array.from(data.x);
  const per = c * h * w;
  const rand = mulberry32(seed);
  for (let s = 0; s < data.count; s++) {
    const top = Math.floor(rand() * (h - side + 1));
    const left = Math.floor(rand() * (w - side + 1));
    for (let ch = 0; ch < c; ch++) {
      const fill = data.channelMean[ch] ?? 0;
      for (let y = top; y < top + side; y++) {
        for (let xx = left; xx < left + side; xx++) {
          const i = nchw ? ((ch * h) + y) * w + xx : ((y * w) + xx) * c + ch;
          x[s * per + i] = fill;
        }
      }
    }
  }
  return { ...data, x, source: `${data.source}, occluded (${side}x${side} patch of the mean, ${(100 * (side * side) / (h * w)).toFixed(1)}% of the area)` };
}
