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
