/**
 * Kernel layouts. TF stores a convolution filter as HWIO [kh][kw][in][out] and a depthwise filter
 * as [kh][kw][channels][multiplier]; the core wants [out][inPerGroup][9], positions row-major
 * (ONNX's OIHW). A depthwise output channel is c * multiplier + m, as in TF.
 */
import { Conv3x3Layer, ConvUse, layerFields } from '../../model/conv.js';
import { TfjsModel, WeightEntry, weightFloats } from './read.js';

/**
 * A 3x3 kernel as the core's layer: Conv2D [3, 3, in/groups, out] or depthwise [3, 3, channels,
 * multiplier], its weights read from the shards at each access and kept nowhere (src/model/conv.ts).
 */
export function kernelLayer(model: TfjsModel, kernel: WeightEntry, name: string, index: number, use: ConvUse, depthwise: boolean, group: number): Conv3x3Layer {
  const [, , cin, cout] = kernel.shape;
  const outChannels = depthwise ? cin * cout : cout;
  const inChannelsPerGroup = depthwise ? 1 : cin;
  return {
    ...layerFields(kernel.name, name, index, use, outChannels, inChannelsPerGroup, group),
    get weights() {
      const hwio = weightFloats(model, kernel)!;
      return depthwise ? depthwiseToOihw(hwio, cin, cout) : hwioToOihw(hwio, cin, cout);
    },
  };
}

/**
 * Input channels per tile of the two transposes below. Element by element, one side of a transpose
 * is read or written 9 * I floats apart (18 KB at I = 512), a cache miss each: the plain loops ran
 * at ~22 M weights/s, 11 s of a 900 MB model's write. In tiles of TILE input channels, for each
 * output channel the tile's 9 x TILE elements are contiguous on one side, and the 9 x TILE cache
 * lines of the other side are the ones the next output channel reads again.
 */
const TILE = 16;

/** [3][3][I][O] -> [O][I][9]. */
export function hwioToOihw(hwio: Float32Array, inChannels: number, outChannels: number): Float32Array {
  const out = new Float32Array(hwio.length);
  const plane = inChannels * outChannels;
  for (let i0 = 0; i0 < inChannels; i0 += TILE) {
    const i1 = Math.min(inChannels, i0 + TILE);
    for (let o = 0; o < outChannels; o++) {
      let dst = (o * inChannels + i0) * 9;
      for (let i = i0; i < i1; i++) {
        for (let src = i * outChannels + o, p = 0; p < 9; p++, src += plane) out[dst++] = hwio[src];
      }
    }
  }
  return out;
}

/** [O][I][9] -> [3][3][I][O]. */
export function oihwToHwio(oihw: Float32Array, inChannels: number, outChannels: number): Float32Array {
  const out = new Float32Array(oihw.length);
  const plane = inChannels * outChannels;
  for (let i0 = 0; i0 < inChannels; i0 += TILE) {
    const i1 = Math.min(inChannels, i0 + TILE);
    for (let o = 0; o < outChannels; o++) {
      let src = (o * inChannels + i0) * 9;
      for (let i = i0; i < i1; i++) {
        for (let dst = i * outChannels + o, p = 0; p < 9; p++, dst += plane) out[dst] = oihw[src++];
      }
    }
  }
  return out;
}

/**
 * A depthwise filter [3][3][C][M] is, as [3][3][1][C*M] with output channel c * M + m, an HWIO
 * filter with one input channel per group: the same element order. So the HWIO helpers serve it
 * with inChannels 1.
 */
export const depthwiseToOihw = (w: Float32Array, channels: number, multiplier: number) => hwioToOihw(w, 1, channels * multiplier);
export const oihwToDepthwise = (w: Float32Array, channels: number, multiplier: number) => oihwToHwio(w, 1, channels * multiplier);
