/**
 * What a backward rule sees: the forward node (its attributes decoded once), the static dims of
 * every value at the training batch, which inputs need a gradient, the gradients arriving at its
 * outputs, and an emitter for new nodes. A rule gives each input that needs one its gradient, or
 * refuses with a reason (the engine choice then names the operator).
 */
import { Attributes } from '../attributes.js';
import type { NodeProto } from '../proto.js';
import type { Emitter } from './emit.js';
import { samePads } from '../../../core/same-pads.js';

export interface GradContext {
  node: NodeProto;
  attrs: Attributes;
  /** The default-domain opset of the model. */
  opset: number;
  e: Emitter;
  /** Forward input / output value names ('' when an optional one is omitted). */
  input(i: number): string;
  output(i: number): string;
  inputCount: number;
  /** Static dims of a value at the training batch (from a run of the model, or a constant's dims). */
  dims(name: string): number[];
  /** Does forward input `i` need a gradient (does a trainable weight reach it, and it the loss)? */
  needs(i: number): boolean;
  /** The gradient of the loss with respect to output `i`, if any reaches it. */
  dy(i: number): string | undefined;
  /** Adds `grad` to the gradient of input `i` (contributions from several consumers are summed). */
  give(i: number, grad: string): void;
  /**
   * Adds `grad` to the gradient of a value upstream of this node (ignored unless that value needs
   * one): a masked convolution's pieces give their weight's gradient once, from their Sum.
   */
  giveTo(value: string, grad: string): void;
  /** The values of a constant input (an initializer or a Constant node's value), if it is one. */
  constant(name: string): number[] | undefined;
  /** The name of forward output `i`, adding it to the node if the model left it out (MaxPool's Indices). */
  ensureOutput(i: number): string;
}

/** A rule's refusal: this node, in this form, has no backward rule. */
export class NoGradient extends Error {}

export function refuse(reason: string): never {
  throw new NoGradient(reason);
}

export interface GradRule {
  op: string;
  /** Emits the backward nodes of one forward node. */
  grad(ctx: GradContext): void;
}

/**
 * The gradient of a broadcasting operand: summed over the axes it was broadcast along, then shaped
 * as the operand (onnxruntime's HandleBroadcasting, with static dims).
 */
export function unbroadcast(e: Emitter, grad: string, outDims: number[], inDims: number[]): string {
  const r = outDims.length;
  const k = inDims.length;
  const axes: number[] = [];
  for (let i = 0; i < r; i++) {
    const d = i < r - k ? 1 : inDims[i - (r - k)];
    if (d === 1 && outDims[i] !== 1) axes.push(i);
  }
  let out = axes.length > 0 ? e.reduceSum(grad, axes, true) : grad;
  if (r !== k) out = e.reshape(out, inDims);
  return out;
}

export function sameDims(a: number[], b: number[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

export function product(dims: number[]): number {
  return dims.reduce((a, b) => a * b, 1);
}

/** ONNX's negative axis, counted from the end. */
export function normAxis(axis: number, rank: number): number {
  return axis < 0 ? axis + rank : axis;
}

/**
 * Explicit [begin..., end...] pads of a convolution or pool, `auto_pad` resolved with the static
 * input dims (the arithmetic of the ONNX spec, as the TF.js executor does it).
 */
export function resolvePads(attrs: Attributes, inSize: number[], k: number[], s: number[], d: number[]): number[] {
  const n = inSize.length;
  const autoPad = attrs.string('auto_pad', 'NOTSET');
  switch (autoPad) {
    case 'NOTSET': {
      const pads = attrs.ints('pads', new Array(2 * n).fill(0));
      if (pads.length !== 2 * n) refuse(`pads has ${pads.length} values, expected ${2 * n}`);
      return pads;
    }
    case 'VALID':
      return new Array(2 * n).fill(0);
    case 'SAME_UPPER':
    case 'SAME_LOWER':
      return samePads(autoPad === 'SAME_UPPER', inSize, k, s, d);
    default:
      return refuse(`unknown auto_pad "${autoPad}"`);
  }
}

/**
 * ConvTranspose attributes that undo a strided window over an input of `inSize`: the forward's
 * begin pads, and end pads (or output_padding) chosen so the result has exactly `inSize` (rows a
 * strided window never reached get zeros).
 */
export function transposePads(inSize: number[], outSize: number[], k: number[], s: number[], d: number[], pads: number[]): { pads: number[]; outputPadding: number[] } {
  const n = inSize.length;
  const begin = pads.slice(0, n);
  const end: number[] = [];
  const outputPadding: number[] = [];
  for (let i = 0; i < n; i++) {
    const full = (outSize[i] - 1) * s[i] + (k[i] - 1) * d[i] + 1;
    const excess = full - begin[i] - inSize[i];
    end.push(Math.max(0, excess));
    outputPadding.push(Math.max(0, -excess));
  }
  return { pads: [...begin, ...end], outputPadding };
}
