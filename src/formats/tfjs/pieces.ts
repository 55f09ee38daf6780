/**
 * What the TF.js decomposed layouts (decompose-layers.ts, decompose-graph.ts) share: the exact cover
 * of a mask TF.js can run, each piece's pads relative to the input, TF's "same" pads, and slicing a
 * kernel stored [3][3][a][b] (HWIO, or depthwise [3][3][channels][multiplier]) into piece kernels
 * [rCount][cCount][a][b]. Both kernel layouts keep one 3x3 position's a*b values together, so a
 * piece is a concatenation of whole position blocks.
 */
import { CoverGeometry, Piece, minimalCover } from '../../core/layout/cover.js';
import { Mask } from '../../core/lattice.js';
import { respectsMask } from '../../core/reshape.js';
import { Conv3x3Layer, layerParams } from '../../model/conv.js';
import type { LayoutOutcome } from '../../model/layout.js';
import type { LayoutRequest } from '../../model/loaded-model.js';

export type Pads4 = [number, number, number, number];

/** Element i of position block p in an [3][3][a][b] kernel sits at p * a * b + i. */
export function positionBlock(shape: number[]): number {
  return shape[2] * shape[3];
}

/** A piece's kernel from a full [3][3][a][b] kernel (any element type). */
export function sliceKernel(full: Float32Array, block: number, positions: number[]): Float32Array;
export function sliceKernel(full: Uint8Array, block: number, positions: number[], bytesPerElement: number): Uint8Array;
export function sliceKernel(full: Float32Array | Uint8Array, block: number, positions: number[], bytesPerElement = 1): Float32Array | Uint8Array {
  const b = block * bytesPerElement;
  const out = full instanceof Float32Array ? new Float32Array(positions.length * b) : new Uint8Array(positions.length * b);
  positions.forEach((p, j) => out.set(full.subarray(p * b, (p + 1) * b), j * b));
  return out;
}

/** The dilation a piece runs with: the original's, times its step along an axis with two taps or more. */
export function pieceDilations(p: Piece, dilations: [number, number]): [number, number] {
  return [dilations[0] * (p.rCount > 1 ? p.rStep : 1), dilations[1] * (p.cCount > 1 ? p.cStep : 1)];
}

/**
 * The pads [top, left, bottom, right] a piece needs so that its output lines up with the original's
 * (negative: that many rows or columns cropped from the input instead).
 */
export function piecePads(p: Piece, g: CoverGeometry): Pads4 {
  const [pt, pl, pb, pr] = g.pads;
  const [dh, dw] = g.dilations;
  const r1 = p.r0 + p.rStep * (p.rCount - 1);
  const c1 = p.c0 + p.cStep * (p.cCount - 1);
  return [pt - p.r0 * dh, pl - p.c0 * dw, pb - (2 - r1) * dh, pr - (2 - c1) * dw];
}

/** TF's "same" pads along one axis (the odd one at the end): ONNX SAME_UPPER. */
export function samePadsAlong(size: number, stride: number, effectiveKernel: number): [number, number] {
  const out = Math.ceil(size / stride);
  const total = Math.max((out - 1) * stride + effectiveKernel - size, 0);
  return [Math.floor(total / 2), total - Math.floor(total / 2)];
}

/**
 * Explicit pads of a 3x3 convolution with TF padding "same" or "valid", or why they cannot be known:
 * with a stride above 1, "same" pads depend on the input size.
 */
export function tfPads(padding: 'same' | 'valid', strides: [number, number], dilations: [number, number], inputHW: [number, number] | null): Pads4 | string {
  if (padding === 'valid') return [0, 0, 0, 0];
  const [dh, dw] = dilations;
  if (strides[0] === 1 && strides[1] === 1) return [dh, dw, dh, dw];
  if (!inputHW) return `padding "same" with stride ${strides[0]}x${strides[1]} depends on the input size, which the model does not fix`;
  const [t, b] = samePadsAlong(inputHW[0], strides[0], 2 * dh + 1);
  const [l, r] = samePadsAlong(inputHW[1], strides[1], 2 * dw + 1);
  return [t, l, b, r];
}

/** True when a stride-1 "same" convolution with the piece's kernel pads exactly `want`. */
export function sameMatches(p: Piece, dilations: [number, number], strides: [number, number], want: Pads4): boolean {
  if (strides[0] !== 1 || strides[1] !== 1) return false;
  const [dh, dw] = pieceDilations(p, dilations);
  const [t, b] = samePadsAlong(1, 1, (p.rCount - 1) * dh + 1);
  const [l, r] = samePadsAlong(1, 1, (p.cCount - 1) * dw + 1);
  return want[0] === t && want[1] === l && want[2] === b && want[3] === r;
}

/**
 * An exact cover TF.js can run. tfjs-core refuses a convolution with both a stride and a dilation
 * above 1 (conv2d: "Either strides or dilations must be 1"), and tfjs-layers' DepthwiseConv2D
 * ignores its dilation_rate (its call passes none), so a strided layer, or one whose pieces are
 * DepthwiseConv2D layers (`undilated`), is covered by undilated pieces only (a cross then takes
 * three pieces instead of two); otherwise the core's minimal cover.
 */
export function tfjsCover(mask: Mask, g: CoverGeometry, strides: [number, number], undilated = false): Piece[] {
  if (!undilated && strides[0] === 1 && strides[1] === 1) return minimalCover(mask, g);
  if (g.dilations[0] !== 1 || g.dilations[1] !== 1) return [];
  return minimalCover(mask, g, (p) => !(p.rCount > 1 && p.rStep > 1) && !(p.cCount > 1 && p.cStep > 1));
}

/** "1x3 + 2x1 dilated 2x1", as the ONNX writer describes its pieces. */
export function describePieces(pieces: Piece[]): string {
  return pieces.map((p) => {
    const dil = (p.rCount > 1 && p.rStep > 1) || (p.cCount > 1 && p.cStep > 1) ? ` dilated ${p.rCount > 1 ? p.rStep : 1}x${p.cCount > 1 ? p.cStep : 1}` : '';
    return `${p.rCount}x${p.cCount}${dil}`;
  }).join(' + ');
}

export function samePads(a: Pads4, b: Pads4): boolean {
  return a.every((v, i) => v === b[i]);
}

/** The outcome of a layer written masked after all (with why, when it was asked otherwise). */
export function maskedOutcome(layer: Conv3x3Layer, req: LayoutRequest, note?: string): LayoutOutcome {
  return { layer: layer.id, requested: req.layout, applied: 'masked', ...(note ? { note } : {}), storedWeights: layerParams(layer) };
}

/**
 * The checks every TF.js decomposition starts with: null to go on, else why the layer is written
 * masked (undefined: it was asked to be).
 */
export function layoutPrecheck(req: LayoutRequest, weights: Float32Array): string | undefined | null {
  if (req.layout === 'masked') return undefined;
  if (req.layout === 'sparse') return 'the sparse layout is ONNX only (TF.js has no sparse weights); written masked';
  if (!respectsMask(weights, req.mask)) return 'weights are not zero outside the mask';
  return null;
}
