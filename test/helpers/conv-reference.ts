/** A plain-loop 2-D convolution (ONNX Conv semantics, NCHW, explicit pads) to check against. */
export interface RefConv {
  weights: Float32Array; // [O, C/g, 3, 3]
  bias?: Float32Array;
  out: number;
  inPerGroup: number;
  group: number;
  stride: [number, number];
  dilation: [number, number];
  pads: [number, number, number, number];
}

export function conv2d(x: Float32Array, dims: number[], c: RefConv): { data: Float32Array; dims: number[] } {
  const [n, ch, h, w] = dims;
  const [sh, sw] = c.stride;
  const [dh, dw] = c.dilation;
  const [pt, pl, pb, pr] = c.pads;
  const ho = Math.floor((h + pt + pb - (2 * dh + 1)) / sh) + 1;
  const wo = Math.floor((w + pl + pr - (2 * dw + 1)) / sw) + 1;
  const outPerGroup = c.out / c.group;
  const y = new Float32Array(n * c.out * ho * wo);
  for (let b = 0; b < n; b++) {
    for (let o = 0; o < c.out; o++) {
      const g = Math.floor(o / outPerGroup);
      for (let oy = 0; oy < ho; oy++) {
        for (let ox = 0; ox < wo; ox++) {
          let s = c.bias ? c.bias[o] : 0;
          for (let ci = 0; ci < c.inPerGroup; ci++) {
            const cin = g * c.inPerGroup + ci;
            for (let ky = 0; ky < 3; ky++) {
              for (let kx = 0; kx < 3; kx++) {
                const iy = oy * sh - pt + ky * dh;
                const ix = ox * sw - pl + kx * dw;
                if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
                s += x[((b * ch + cin) * h + iy) * w + ix] * c.weights[((o * c.inPerGroup + ci) * 3 + ky) * 3 + kx];
              }
            }
          }
          y[((b * c.out + o) * ho + oy) * wo + ox] = s;
        }
      }
    }
  }
  return { data: y, dims: [n, c.out, ho, wo] };
}
