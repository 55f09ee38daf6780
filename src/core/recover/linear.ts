/**
 * Linear layers downstream of reshaped 3x3 layers (1x1 convolutions, dense layers), re-solved by
 * unmasked least squares so that they compensate for what the reshaping changed upstream: inputs
 * from the reshaped model, targets from the original. The statistics treat such a layer as a 3x3
 * convolution whose only tap is the centre (a 1x1 convolution with pads p is a 3x3 one with pads
 * p + 1 and the other eight taps zero; a dense layer is a 1x1 convolution on a 1x1 image), so one
 * solver serves both; the weights are converted at the edges.
 */
import { Conv3x3Layer } from '../../model/conv.js';

export type LinearKind = 'conv1x1' | 'gemm' | 'matmul';

export interface LinearLayer extends Conv3x3Layer {
  linear: {
    kind: LinearKind;
    /** The stored weight is [in][out] (Gemm with transB 0, MatMul), not [out][in]. */
    transposed: boolean;
  };
}

export function isLinear(layer: Conv3x3Layer): layer is LinearLayer {
  return (layer as LinearLayer).linear !== undefined;
}

/** The centre tap of a 3x3 kernel. */
export const CENTRE = 4;

/** Stored weights ([out][in], or [in][out] when transposed) as [out][in][9] with only the centre set. */
export function toNine(layer: LinearLayer, stored: Float32Array): Float32Array {
  const outs = layer.outChannels;
  const ins = layer.inChannelsPerGroup;
  const nine = new Float32Array(outs * ins * 9);
  for (let o = 0; o < outs; o++) {
    for (let i = 0; i < ins; i++) nine[(o * ins + i) * 9 + CENTRE] = layer.linear.transposed ? stored[i * outs + o] : stored[o * ins + i];
  }
  return nine;
}

/** The inverse of `toNine`. */
export function fromNine(layer: LinearLayer, nine: Float32Array): Float32Array {
  const outs = layer.outChannels;
  const ins = layer.inChannelsPerGroup;
  const stored = new Float32Array(outs * ins);
  for (let o = 0; o < outs; o++) {
    for (let i = 0; i < ins; i++) {
      const v = nine[(o * ins + i) * 9 + CENTRE];
      if (layer.linear.transposed) stored[i * outs + o] = v;
      else stored[o * ins + i] = v;
    }
  }
  return stored;
}

/** Steps in graph order: 3x3 layers and linear layers merged by their node position. */
export function inGraphOrder(layers: Conv3x3Layer[]): Conv3x3Layer[] {
  return [...layers].sort((a, b) => (a.order ?? a.index) - (b.order ?? b.index));
}
