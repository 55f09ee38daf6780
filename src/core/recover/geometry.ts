/** Where a 3x3 convolution reads its input, per the ONNX Conv spec (pads, auto_pad, strides, dilations). */
import { ConvUse } from '../../model/conv.js';

export interface ConvGeometry {
  padTop: number;
  padLeft: number;
  strideH: number;
  strideW: number;
  dilH: number;
  dilW: number;
}

function samePad(inSize: number, stride: number, dilation: number): number {
  const out = Math.ceil(inSize / stride);
  return Math.max(0, (out - 1) * stride + 2 * dilation + 1 - inSize);
}

export function geometry(use: ConvUse, inH: number, inW: number): ConvGeometry {
  const [sh, sw] = use.strides;
  const [dh, dw] = use.dilations;
  let padTop = use.pads[0];
  let padLeft = use.pads[1];
  if (use.autoPad === 'VALID') {
    padTop = 0;
    padLeft = 0;
  } else if (use.autoPad === 'SAME_UPPER' || use.autoPad === 'SAME_LOWER') {
    const th = samePad(inH, sh, dh);
    const tw = samePad(inW, sw, dw);
    // SAME_UPPER puts the extra padding at the end, SAME_LOWER at the beginning.
    padTop = use.autoPad === 'SAME_UPPER' ? Math.floor(th / 2) : Math.ceil(th / 2);
    padLeft = use.autoPad === 'SAME_UPPER' ? Math.floor(tw / 2) : Math.ceil(tw / 2);
  }
  return { padTop, padLeft, strideH: sh, strideW: sw, dilH: dh, dilW: dw };
}
