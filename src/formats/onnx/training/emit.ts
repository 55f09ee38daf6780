/**
 * Writing new nodes into an ONNX graph: unique names, typed attributes, constants as initializers,
 * and the few operators whose form changed between opsets (ReduceSum's axes moved from an
 * attribute to an input at 13) written once here, so the backward rules never look at the opset
 * for them. Every helper emits plain default-domain operators that exist from opset 11 on (the
 * oldest a training graph is built for: ScatterElements and Pad's input form arrived at 11).
 */
import { AttributeProto, NodeProto, TensorProto, onnx } from '../proto.js';

const AttrType = onnx.AttributeProto.AttributeType;

export const attr = {
  int: (name: string, i: number): AttributeProto => ({ name, type: AttrType.INT, i }),
  ints: (name: string, ints: number[]): AttributeProto => ({ name, type: AttrType.INTS, ints }),
  float: (name: string, f: number): AttributeProto => ({ name, type: AttrType.FLOAT, f }),
  str: (name: string, s: string): AttributeProto => ({ name, type: AttrType.STRING, s: Buffer.from(s, 'utf8') }),
  tensor: (name: string, t: TensorProto): AttributeProto => ({ name, type: AttrType.TENSOR, t }),
};

/** The oldest default-domain opset a training graph is built for (see the top of this file). */
export const MIN_TRAINING_OPSET = 11;

/** A gradient scattered by MaxUnpool: dX = MaxUnpool(dy, indices, dims) under a MaxPool of `input` to `pooled`. */
export interface Unpooled {
  dy: string;
  indices: string;
  dims: number[];
  kernel: number;
  input: string;
  pooled: string;
}

/** A masked 3x3 convolution computed as pieces: what its weight's gradient is computed from. */
export interface MaskedConv {
  input: string;
  weight: string;
  /** Kept kernel positions: row-major, or in the kept layout's order. */
  taps: number[];
  /** The weight's dims as a 4-D kernel [Cout, Cin/g, kh, kw] (also when it is fed in the kept layout). */
  kernelDims: number[];
  /** The weight is fed in the kept layout [Cout, Cin/g, taps], taps in `taps`' order: its gradient is too. */
  kept?: boolean;
  strides: number[];
  dilations: number[];
  pads: number[];
  group: number;
}

export class Emitter {
  readonly nodes: NodeProto[] = [];
  readonly initializers: TensorProto[] = [];
  private count = 0;
  private readonly cache = new Map<string, string>();
  private readonly constDims = new Map<string, number[]>();
  private readonly intValues = new Map<string, number[]>();

  /** The values of an int64 constant this emitter made. */
  intsOf(name: string): number[] | undefined {
    return this.intValues.get(name);
  }

  /** The dims of a constant this emitter made. */
  dimsOf(name: string): number[] | undefined {
    return this.constDims.get(name);
  }

  constructor(readonly opset: number, private readonly prefix = 'kprune.grad/') {}

  /** A fresh value name, readable in a graph viewer. */
  name(hint: string): string {
    return `${this.prefix}${hint}.${this.count++}`;
  }

  /** Adds one node; returns its output names. */
  op(opType: string, inputs: string[], attributes: AttributeProto[] = [], outputs = 1, hint = opType): string[] {
    const names = Array.from({ length: outputs }, () => this.name(hint));
    this.nodes.push({ name: this.name(`${hint}_node`), opType, domain: '', input: inputs, output: names, attribute: attributes });
    return names;
  }

  op1(opType: string, inputs: string[], attributes: AttributeProto[] = [], hint = opType): string {
    return this.op(opType, inputs, attributes, 1, hint)[0];
  }

  /** An int64 constant (shapes, axes, indices); identical constants are shared. */
  ints(values: number[], dims: number[] = [values.length]): string {
    const key = `i${dims.join('x')}:${values.join(',')}`;
    const hit = this.cache.get(key);
    if (hit) return hit;
    const name = this.name('const');
    const raw = new BigInt64Array(values.map((v) => BigInt(v)));
    this.initializers.push({ name, dims, dataType: 7, rawData: new Uint8Array(raw.buffer) });
    this.constDims.set(name, dims);
    this.intValues.set(name, values);
    this.cache.set(key, name);
    return name;
  }

  /** A float32 constant; identical small constants are shared. */
  floats(values: Float32Array | number[], dims: number[]): string {
    const data = values instanceof Float32Array ? values : Float32Array.from(values);
    const key = data.length <= 16 ? `f${dims.join('x')}:${Array.from(data).join(',')}` : '';
    const hit = key ? this.cache.get(key) : undefined;
    if (hit) return hit;
    const name = this.name('const');
    const copy = new Float32Array(data);
    this.initializers.push({ name, dims, dataType: 1, rawData: new Uint8Array(copy.buffer) });
    this.constDims.set(name, dims);
    if (key) this.cache.set(key, name);
    return name;
  }

  /** A float32 scalar (rank 0), broadcast by the elementwise operators. */
  scalar(v: number): string {
    return this.floats([v], []);
  }

  reshape(x: string, dims: number[]): string {
    return this.op1('Reshape', [x, this.ints(dims)]);
  }

  transpose(x: string, perm: number[]): string {
    return this.op1('Transpose', [x], [attr.ints('perm', perm)]);
  }

  mul(a: string, b: string): string {
    return this.op1('Mul', [a, b]);
  }

  add(a: string, b: string): string {
    return this.op1('Add', [a, b]);
  }

  sub(a: string, b: string): string {
    return this.op1('Sub', [a, b]);
  }

  scale(x: string, factor: number): string {
    return factor === 1 ? x : this.mul(x, this.scalar(factor));
  }

  /** Sum over `axes` (all axes when none are given). */
  reduceSum(x: string, axes: number[] | undefined, keepdims: boolean): string {
    const keep = attr.int('keepdims', keepdims ? 1 : 0);
    if (axes === undefined) return this.op1('ReduceSum', [x], [keep]);
    if (this.opset >= 13) return this.op1('ReduceSum', [x, this.ints(axes)], [keep]);
    return this.op1('ReduceSum', [x], [attr.ints('axes', axes), keep]);
  }

  /** Slice with steps of 1 (the input form, opset 10 on). */
  slice(x: string, starts: number[], ends: number[], axes: number[]): string {
    return this.op1('Slice', [x, this.ints(starts), this.ints(ends), this.ints(axes)]);
  }

  private readonly padHints = new Map<string, number[]>();
  private readonly pads = new Map<string, string>();

  /** Declares the largest pads [top, left, bottom, right] 2-D convolutions read `x` with. */
  hintPads(x: string, pads: number[]): void {
    const old = this.padHints.get(x);
    this.padHints.set(x, old ? old.map((v, i) => Math.max(v, pads[i])) : [...pads]);
  }

  padHint(x: string): number[] | undefined {
    return this.padHints.get(x);
  }

  /**
   * `x` [N, C, H, W] zero-padded by [top, left, bottom, right], made once per (x, pads); `axes`:
   * the rows and columns axes when they are elsewhere (a layout [C, H, W, N] pads 1 and 2).
   */
  padded(x: string, pads: number[], axes: [number, number] = [2, 3]): string {
    const key = `${x}\u0000${pads.join(',')}\u0000${axes.join(',')}`;
    let out = this.pads.get(key);
    if (!out) {
      const all = new Array<number>(8).fill(0);
      [all[axes[0]], all[axes[1]], all[4 + axes[0]], all[4 + axes[1]]] = pads;
      out = this.op1('Pad', [x, this.ints(all)], [attr.str('mode', 'constant')]);
      this.pads.set(key, out);
    }
    return out;
  }

  private readonly transposes = new Map<string, string>();

  /** Transpose of `x` by `perm`, made once per (x, perm): the layouts several rules read. */
  transposedOnce(x: string, perm: number[]): string {
    const key = `${x}\u0000${perm.join(',')}`;
    let out = this.transposes.get(key);
    if (!out) {
      out = this.transpose(x, perm);
      this.transposes.set(key, out);
    }
    return out;
  }

  private readonly maskedConvs = new Map<string, MaskedConv>();
  private readonly pieceWeights = new Set<string>();

  /**
   * Records that `y` is the Sum of the pieces of a masked convolution (pieces.ts): its weight's
   * gradient is computed there, once, at the kept positions, and not through each piece's kernel
   * (`pieceWeight`).
   */
  hintMaskedConv(y: string, conv: MaskedConv, pieceWeights: string[]): void {
    this.maskedConvs.set(y, conv);
    for (const w of pieceWeights) this.pieceWeights.add(w);
  }

  maskedConv(y: string): MaskedConv | undefined {
    return this.maskedConvs.get(y);
  }

  /** Is `w` a piece's kernel, whose weight gets its gradient from the pieces' Sum? */
  pieceWeight(w: string): boolean {
    return this.pieceWeights.has(w);
  }

  private readonly tapHints = new Map<string, number[]>();

  /**
   * Declares that only kernel positions `taps` (row-major in the kernel) of the 4-D weight value
   * `w` can be non-zero: a convolution's filter gradient is then computed at those positions only,
   * and exactly zero at the others.
   */
  hintTaps(w: string, taps: number[]): void {
    this.tapHints.set(w, [...taps]);
  }

  tapHint(w: string): number[] | undefined {
    return this.tapHints.get(w);
  }

  private readonly unpools = new Map<string, Unpooled>();

  /** Records that `dx` is MaxUnpool of a pooled gradient (a tiled MaxPool's backward). */
  noteUnpool(dx: string, how: Unpooled): void {
    this.unpools.set(dx, how);
  }

  unpooled(dx: string): Unpooled | undefined {
    return this.unpools.get(dx);
  }

  /** A float32 tensor of zeros, made at run time (no bytes in the file). */
  zeros(dims: number[]): string {
    const zero = { dims: [1], dataType: 1, rawData: new Uint8Array(4) };
    return this.op1('ConstantOfShape', [this.ints(dims)], [attr.tensor('value', zero)], 'zeros');
  }

  /** dY where `cond` holds, else 0. */
  where(cond: string, dy: string): string {
    return this.op1('Where', [cond, dy, this.scalar(0)]);
  }

  /** Sum of several gradient contributions (one value passes through). */
  sum(values: string[]): string {
    if (values.length === 1) return values[0];
    return this.op1('Sum', values, [], 'accumulate');
  }
}
