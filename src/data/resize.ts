/**
 * Bilinear resize of an interleaved (HWC) image with half-pixel centres and edge clamping, as
 * torch's interpolate(mode='bilinear', align_corners=False, antialias=False). For upscaling this is
 * also exactly PIL's bilinear; for downscaling PIL and torchvision (antialias=True) average over a
 * wider window, so results differ there (documented, not emulated: calibration only needs the
 * model's input size, not bit-identical training pixels).
 */
export function resizeBilinear(src: Float64Array, height: number, width: number, channels: number, outHeight: number, outWidth: number): Float64Array {
  if (height === outHeight && width === outWidth) return src;
  const xs = taps(width, outWidth);
  const ys = taps(height, outHeight);
  const out = new Float64Array(outHeight * outWidth * channels);
  for (let oy = 0; oy < outHeight; oy++) {
    const r0 = ys.lo[oy] * width;
    const r1 = ys.hi[oy] * width;
    const fy = ys.frac[oy];
    for (let ox = 0; ox < outWidth; ox++) {
      const fx = xs.frac[ox];
      const a = (r0 + xs.lo[ox]) * channels;
      const b = (r0 + xs.hi[ox]) * channels;
      const c = (r1 + xs.lo[ox]) * channels;
      const d = (r1 + xs.hi[ox]) * channels;
      const o = (oy * outWidth + ox) * channels;
      for (let k = 0; k < channels; k++) {
        const top = src[a + k] + (src[b + k] - src[a + k]) * fx;
        const bottom = src[c + k] + (src[d + k] - src[c + k]) * fx;
        out[o + k] = top + (bottom - top) * fy;
      }
    }
  }
  return out;
}

/** For each output coordinate: the two source coordinates and the weight of the second. */
function taps(size: number, outSize: number): { lo: Int32Array; hi: Int32Array; frac: Float64Array } {
  const lo = new Int32Array(outSize);
  const hi = new Int32Array(outSize);
  const frac = new Float64Array(outSize);
  const ratio = size / outSize;
  for (let o = 0; o < outSize; o++) {
    // Centre of output pixel o in source coordinates; clamped at 0 like torch (negative -> edge pixel).
    const s = Math.max(0, (o + 0.5) * ratio - 0.5);
    const i = Math.min(Math.floor(s), size - 1);
    lo[o] = i;
    hi[o] = Math.min(i + 1, size - 1);
    frac[o] = hi[o] === i ? 0 : s - i;
  }
  return { lo, hi, frac };
}

export type Interpolation = 'bilinear' | 'nearest' | 'area';

/** Per output index along one axis: the first source index, how many, and their weights. */
interface AxisWeights {
  start: Int32Array;
  count: Int32Array;
  /** outSize x width, row per output index. */
  weights: Float64Array;
  width: number;
}

/**
 * Filter weights along one axis, as PIL's resampling does (and torchvision with antialias=True):
 * when downscaling, the filter widens by the scale, so every source pixel contributes (no
 * aliasing). bilinear: triangle filter; area: box filter (the exact area average); nearest: the
 * source pixel under the output pixel's centre.
 */
function axisWeights(size: number, outSize: number, kind: Interpolation): AxisWeights {
  const scale = size / outSize;
  const stretch = Math.max(scale, 1);
  const support = kind === 'bilinear' ? stretch : kind === 'area' ? 0.5 * stretch : 0.5;
  const width = kind === 'nearest' ? 1 : Math.ceil(support) * 2 + 1;
  const start = new Int32Array(outSize);
  const count = new Int32Array(outSize);
  const weights = new Float64Array(outSize * width);
  for (let o = 0; o < outSize; o++) {
    const centre = (o + 0.5) * scale;
    if (kind === 'nearest') {
      start[o] = Math.min(Math.floor(centre), size - 1);
      count[o] = 1;
      weights[o * width] = 1;
      continue;
    }
    const lo = Math.max(Math.floor(centre - support), 0);
    const hi = Math.min(Math.ceil(centre + support), size);
    let total = 0;
    let n = 0;
    for (let i = lo; i < hi && n < width; i++, n++) {
      const x = (i + 0.5 - centre) / stretch;
      const w = kind === 'bilinear' ? Math.max(0, 1 - Math.abs(x)) : x >= -0.5 && x < 0.5 ? 1 : 0;
      weights[o * width + n] = w;
      total += w;
    }
    for (let j = 0; j < n; j++) weights[o * width + j] /= total || 1;
    start[o] = lo;
    count[o] = n;
  }
  return { start, count, weights, width };
}

/** Separable resampling of an interleaved (HWC) image with the given filter (see axisWeights). */
export function resample(src: Float64Array, height: number, width: number, channels: number, outHeight: number, outWidth: number, kind: Interpolation): Float64Array {
  if (height === outHeight && width === outWidth) return src;
  // Upscaling (or equal) bilinearly: the half-pixel bilinear above, which is torch's exactly.
  if (kind === 'bilinear' && outHeight >= height && outWidth >= width) return resizeBilinear(src, height, width, channels, outHeight, outWidth);
  const xs = axisWeights(width, outWidth, kind);
  const ys = axisWeights(height, outHeight, kind);
  const mid = new Float64Array(height * outWidth * channels);
  for (let y = 0; y < height; y++) {
    for (let ox = 0; ox < outWidth; ox++) {
      const o = (y * outWidth + ox) * channels;
      for (let j = 0; j < xs.count[ox]; j++) {
        const w = xs.weights[ox * xs.width + j];
        const s = (y * width + xs.start[ox] + j) * channels;
        for (let k = 0; k < channels; k++) mid[o + k] += src[s + k] * w;
      }
    }
  }
  const out = new Float64Array(outHeight * outWidth * channels);
  for (let oy = 0; oy < outHeight; oy++) {
    for (let j = 0; j < ys.count[oy]; j++) {
      const w = ys.weights[oy * ys.width + j];
      const row = (ys.start[oy] + j) * outWidth * channels;
      const o = oy * outWidth * channels;
      for (let i = 0; i < outWidth * channels; i++) out[o + i] += mid[row + i] * w;
    }
  }
  return out;
}

export type ResizeMode = 'stretch' | 'shorter';

/**
 * The size an image is resized to before the centre crop of outHeight x outWidth: `stretch` to
 * (out / crop) on each axis; `shorter` keeping the aspect ratio, scaled so that the image just
 * covers (out / crop): for a square output, the shorter side becomes out / crop (torchvision's
 * Resize(256) + CenterCrop(224) is crop 0.875 at 224), the longer side rounded down as torchvision does.
 */
export function resizedSize(height: number, width: number, outHeight: number, outWidth: number, mode: ResizeMode, crop: number): [number, number] {
  const th = Math.round(outHeight / crop);
  const tw = Math.round(outWidth / crop);
  if (mode === 'stretch') return [th, tw];
  const scale = Math.max(th / height, tw / width);
  return [Math.max(th, Math.floor(height * scale + 1e-9)), Math.max(tw, Math.floor(width * scale + 1e-9))];
}

/** Resize (per mode and crop) and centre-crop an HWC image to outHeight x outWidth. */
export function fitImage(src: Float64Array, height: number, width: number, channels: number, outHeight: number, outWidth: number, mode: ResizeMode, crop: number, kind: Interpolation): Float64Array {
  const [ih, iw] = resizedSize(height, width, outHeight, outWidth, mode, crop);
  const resized = resample(src, height, width, channels, ih, iw, kind);
  if (ih === outHeight && iw === outWidth) return resized;
  // Centre crop, offsets rounded as torchvision's CenterCrop does.
  const top = Math.round((ih - outHeight) / 2);
  const left = Math.round((iw - outWidth) / 2);
  const out = new Float64Array(outHeight * outWidth * channels);
  for (let y = 0; y < outHeight; y++) {
    const s = ((top + y) * iw + left) * channels;
    out.set(resized.subarray(s, s + outWidth * channels), y * outWidth * channels);
  }
  return out;
}
