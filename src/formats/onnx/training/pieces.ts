/**
 * Before differentiation, the convolutions of masked trainable weights are rewritten as sums of
 * smaller convolutions over their kept positions (the exact covers of the decomposed layout,
 * core/layout/cover.ts), so that the forward pass, the input gradient and the filter gradient all
 * skip the dropped positions: a cross does 5/9 of a dense 3x3's multiplications in each.
 *
 * The weight stays one graph input in the core's layout [Cout, Cin/g, 3, 3]; each piece's kernel
 * is a product with a constant one-hot selection matrix, Wp = W[., 9] x S [9, k], so its gradient
 * (dW = dWp x S^T, through the MatMul rule) lands on the kept positions and is exactly zero on the
 * dropped ones. Nothing else changes: the generic rules differentiate the rewritten graph.
 *
 * The kept layout (`KeptLayout`): a trainable weight is fed as its kept positions alone, [Cout,
 * Cin/g, k], in an order chosen here so that each piece's kernel is one contiguous run of it (a
 * Slice and a Reshape, no selection product), and its gradient comes out in the same layout. On a
 * large model the selection products, and the scatter of the gradient back into 3x3 kernels, were
 * a seventh of a step (ResNet-18 at 56x56, two threads), and the optimiser then walks every kept
 * weight in order instead of gathering them out of 3x3 kernels.
 */
import { minimalCover } from '../../../core/layout/cover.js';
import { maskPositions } from '../../../core/lattice.js';
import type { Mask } from '../../../core/lattice.js';
import { Attributes } from '../attributes.js';
import type { NodeProto } from '../proto.js';
import { NoGradient, resolvePads } from './context.js';
import { BATCH_INNER } from './rules.js';
import { Emitter, attr } from './emit.js';
import { pushAll } from '../../../util/arrays.js';

/**
 * Which masked weights are fed in the kept layout (`candidates`), and, filled by decomposeMasked,
 * the order of positions each one was given (a candidate whose convolution could not be rewritten
 * stays in its 3x3 layout and gets no entry).
 */
export interface KeptLayout {
  candidates: ReadonlySet<string>;
  orders: Map<string, number[]>;
}

export interface PieceShapes {
  dims(name: string): number[];
  /** Records the dims of a value the rewrite made. */
  set(name: string, dims: number[]): void;
}

/**
 * Returns the graph's nodes with every Conv of a masked weight replaced by its pieces (new nodes
 * are made with `e`, placed where the Conv was; constants go to `e.initializers`). `anyBatch`: the
 * graph must run on batches of any size (a forward graph scoring held-out images in chunks), so no
 * form whose shapes fix the batch (the columns form) is used.
 */
export function decomposeMasked(nodes: NodeProto[], masks: ReadonlyMap<string, Mask>, shapes: PieceShapes, e: Emitter, options: { anyBatch?: boolean; kept?: KeptLayout } = {}): NodeProto[] {
  const out: NodeProto[] = [];
  const state: State = { flat: new Map(), pieceWeights: new Map(), anyBatch: options.anyBatch === true, kept: options.kept };
  for (const node of nodes) {
    const weight = node.input?.[1] ?? '';
    const mask = masks.get(weight);
    if (node.opType !== 'Conv' || (node.domain && node.domain !== 'ai.onnx') || mask === undefined || mask === 0x1ff || mask === 0) {
      out.push(node);
      continue;
    }
    const start = e.nodes.length;
    let replaced: NodeProto[] | null;
    try {
      replaced = decomposeOne(node, weight, mask, shapes, e, state);
    } catch (err) {
      // A value whose dims are unknown, say: this Conv stays dense (its gradient is still right).
      if (!(err instanceof NoGradient)) throw err;
      replaced = null;
    }
    const made = e.nodes.splice(start);
    if (replaced) pushAll(pushAll(out, made), replaced);
    else out.push(node);
  }
  return out;
}

interface State {
  flat: Map<string, string>;
  pieceWeights: Map<string, string>;
  anyBatch: boolean;
  kept?: KeptLayout;
}

/** The pieces of one Conv: nodes left in `e.nodes`, and the final Sum returned (null: keep the Conv). */
function decomposeOne(node: NodeProto, weight: string, mask: Mask, shapes: PieceShapes, e: Emitter, state: State): NodeProto[] | null {
  const { flat, pieceWeights } = state;
  const kept = state.kept?.candidates.has(weight) === true;
  {
    const wDims = shapes.dims(weight);
    const xDims = shapes.dims(node.input![0]);
    const yDims = shapes.dims(node.output![0]);
    if (wDims.length !== 4 || wDims[2] !== 3 || wDims[3] !== 3 || xDims.length !== 4) return null;
    const attrs = new Attributes(node);
    const strides = attrs.ints('strides', [1, 1]);
    const dilations = attrs.ints('dilations', [1, 1]);
    const group = attrs.int('group', 1);
    const pads = resolvePads(attrs, xDims.slice(2), [3, 3], strides, dilations);
    const pieces = minimalCover(mask, { pads: pads as [number, number, number, number], dilations: dilations as [number, number] });
    if (pieces.length === 0) return null;
    // Fed in the kept layout: recorded once the rewrite has succeeded (a NoGradient thrown on the
    // way leaves the weight in its 3x3 layout).
    const keep = (order: number[]) => {
      if (!kept) return;
      state.kept!.orders.set(weight, order);
      shapes.set(weight, [wDims[0], wDims[1], order.length]);
    };
    if (wDims[1] === 1 && group === 1 && pieces.length > 1) {
      const r = denseMasked(node, weight, mask, shapes, e, kept);
      keep(maskPositions(mask));
      return r;
    }
    const [n, , ho, wo] = yDims;
    if (!state.anyBatch && group === 1 && strides.every((s) => s === 1) && IM2COL.rule(n, wDims[1], wDims[0], ho * wo)) {
      const r = columns(node, weight, mask, { xDims, yDims, pads, dilations }, shapes, e, state, kept);
      keep(maskPositions(mask));
      return r;
    }
    // In the kept layout the pieces' positions follow one another: piece i is the run at offsets[i].
    const order = pieces.flatMap((p) => p.positions);
    const offsets = pieces.map((_, i) => pieces.slice(0, i).reduce((a, p) => a + p.positions.length, 0));
    // The pieces' filter gradients can all read one copy of the input padded as the whole 3x3 was.
    e.hintPads(node.input![0], pads);
    const [co, cpg] = wDims;
    if (!kept && !flat.has(weight)) {
      const f = e.reshape(weight, [co * cpg, 9]);
      shapes.set(f, [co * cpg, 9]);
      flat.set(weight, f);
    }
    const results: string[] = [];
    const used: string[] = [];
    const [dh, dw] = dilations;
    pieces.forEach((p, i) => {
      const key = `${weight}\u0000${p.positions.join(',')}`;
      if (!pieceWeights.has(key) && kept) {
        const k = p.positions.length;
        const run = k === order.length ? weight : e.slice(weight, [offsets[i]], [offsets[i] + k], [2]);
        if (run !== weight) shapes.set(run, [co, cpg, k]);
        const w4 = e.reshape(run, [co, cpg, p.rCount, p.cCount]);
        shapes.set(w4, [co, cpg, p.rCount, p.cCount]);
        pieceWeights.set(key, w4);
      } else if (!pieceWeights.has(key)) {
        const k = p.positions.length;
        const select = new Float32Array(9 * k);
        p.positions.forEach((pos, j) => { select[pos * k + j] = 1; });
        const wp = e.op1('MatMul', [flat.get(weight)!, e.floats(select, [9, k])], [], 'piece_w');
        shapes.set(wp, [co * cpg, k]);
        const w4 = e.reshape(wp, [co, cpg, p.rCount, p.cCount]);
        shapes.set(w4, [co, cpg, p.rCount, p.cCount]);
        pieceWeights.set(key, w4);
      }
      const r1 = p.r0 + p.rStep * (p.rCount - 1);
      const c1 = p.c0 + p.cStep * (p.cCount - 1);
      const want = [pads[0] - p.r0 * dh, pads[1] - p.c0 * dw, pads[2] - (2 - r1) * dh, pads[3] - (2 - c1) * dw];
      const crop = want.map((v) => Math.max(0, -v));
      let source = node.input![0];
      if (crop.some((c) => c > 0)) {
        // A window starting inside the 3x3 would need a negative pad: crop the input instead.
        const h = xDims[2] - crop[0] - crop[2];
        const w = xDims[3] - crop[1] - crop[3];
        source = e.slice(source, [crop[0], crop[1]], [crop[0] + h, crop[1] + w], [2, 3]);
        shapes.set(source, [xDims[0], xDims[1], h, w]);
      }
      const bias = i === 0 && node.input?.[2] ? [node.input[2]] : [];
      const y = e.op1('Conv', [source, pieceWeights.get(key)!, ...bias], [
        attr.int('group', group), attr.ints('kernel_shape', [p.rCount, p.cCount]), attr.ints('strides', strides),
        attr.ints('dilations', [dh * (p.rCount > 1 ? p.rStep : 1), dw * (p.cCount > 1 ? p.cStep : 1)]),
        attr.ints('pads', want.map((v) => Math.max(0, v))),
      ], 'piece');
      shapes.set(y, yDims);
      results.push(y);
      used.push(pieceWeights.get(key)!);
    });
    // The weight's gradient: one filter gradient of the whole 3x3 at the kept positions, from the
    // Sum's dY (every piece sees the same dY), instead of one per piece mapped back through its
    // selection (a transpose and a product the size of the weight per piece).
    if (results.length > 1) {
      e.hintMaskedConv(node.output![0], { input: node.input![0], weight, taps: kept ? order : maskPositions(mask), kernelDims: wDims, kept, strides, dilations, pads, group }, used);
    }
    keep(order);
    return [{ name: `${node.name ?? ''}/kp.pieces`, opType: results.length === 1 ? 'Identity' : 'Sum', domain: '', input: results, output: [node.output![0]] }];
  }
}

/**
 * When a masked convolution runs as one product of its kept columns: where its positions are at
 * most a sixteenth of its channels (bench/micro-cols.ts, one thread: columns / pieces 0.43 at 512
 * channels 2x2, 0.81-0.90 at 256-512 channels 4x4, 0.97-1.23 at 7x7 to 28x28 and on the fixtures).
 * A bench swaps the rule.
 */
export const IM2COL = { rule: (_n: number, cpg: number, co: number, p: number): boolean => 16 * p <= Math.min(cpg, co) };

/**
 * A masked convolution (stride 1, group 1) where the positions are few against the channels (deep
 * layers of a large model: 512 channels at 2x2) as one matrix product over the whole batch: the
 * input as [Ci, N, H, W] or [Ci, H, W, N] (rules.ts, BATCH_INNER), padded, the kept taps' views
 * stacked as columns [Ci * taps, N*Ho*Wo], Y^T = W[kept] [Co, Ci * taps] x columns. onnxruntime's Conv (and ConvTranspose for dX) run one
 * im2col + GEMM per image, whose GEMM has only Ho*Wo columns there; the generic rules differentiate
 * this form (dW = dY^T x columns^T, dX = the columns' gradient added back through Slice and Pad).
 */
function columns(node: NodeProto, weight: string, mask: Mask, g: { xDims: number[]; yDims: number[]; pads: number[]; dilations: number[] },
  shapes: PieceShapes, e: Emitter, state: State, kept: boolean): NodeProto[] {
  const [n, ci, h, w] = g.xDims;
  const [, co, ho, wo] = g.yDims;
  const np = n * ho * wo;
  const taps = maskPositions(mask);
  const k = taps.length;
  const made = (name: string, dims: number[]) => { shapes.set(name, dims); return name; };
  // The input as [Ci, H, W, N] where the output is narrow (rules.ts, BATCH_INNER: a tap's view is
  // then runs of Wo*N values, not of Wo, 2 at 2x2), else [Ci, N, H, W]; shared with a folded filter
  // gradient of the same input. (Cached by the emitter: nothing below may throw NoGradient, which
  // would drop these nodes.)
  const inner = BATCH_INNER.rule(wo);
  const xT = made(e.transposedOnce(node.input![0], inner ? [1, 2, 3, 0] : [1, 0, 2, 3]), inner ? [ci, h, w, n] : [ci, n, h, w]);
  const [t, l, b, r] = g.pads;
  const spatial: [number, number] = inner ? [1, 2] : [2, 3];
  const padded = g.pads.some((v) => v !== 0)
    ? made(e.padded(xT, g.pads, spatial), inner ? [ci, h + t + b, w + l + r, n] : [ci, n, h + t + b, w + l + r])
    : xT;
  const views = taps.map((pos) => {
    const starts = [Math.floor(pos / 3) * g.dilations[0], (pos % 3) * g.dilations[1]];
    const whole = starts[0] === t && starts[1] === l && ho === h && wo === w;
    const view = whole ? xT : made(e.slice(padded, starts, [starts[0] + ho, starts[1] + wo], spatial), inner ? [ci, ho, wo, n] : [ci, n, ho, wo]);
    return made(e.reshape(view, [ci, 1, np]), [ci, 1, np]);
  });
  const stacked = k === 1 ? views[0] : made(e.op1('Concat', views, [attr.int('axis', 1)], 'columns'), [ci, k, np]);
  const cols = made(e.reshape(stacked, [ci * k, np]), [ci * k, np]);
  // The kept layout is already W[kept] (taps in mask order); else a selection product makes it.
  let wk: string;
  if (kept) {
    wk = made(e.reshape(weight, [co, ci * k]), [co, ci * k]);
  } else {
    if (!state.flat.has(weight)) state.flat.set(weight, made(e.reshape(weight, [co * ci, 9]), [co * ci, 9]));
    const select = new Float32Array(9 * k);
    taps.forEach((pos, j) => { select[pos * k + j] = 1; });
    const atTaps = made(e.op1('MatMul', [state.flat.get(weight)!, e.floats(select, [9, k])], [], 'kept_w'), [co * ci, k]);
    wk = made(e.reshape(atTaps, [co, ci * k]), [co, ci * k]);
  }
  const yT = made(e.op1('MatMul', [wk, cols], [], 'yT'), [co, np]);
  const y4 = made(e.reshape(yT, inner ? [co, ho, wo, n] : [co, n, ho, wo]), inner ? [co, ho, wo, n] : [co, n, ho, wo]);
  const back = inner ? [3, 0, 1, 2] : [1, 0, 2, 3];
  const out = node.output![0];
  const bias = node.input?.[2];
  if (!bias) return [{ name: `${node.name ?? ''}/kp.columns`, opType: 'Transpose', domain: '', input: [y4], output: [out], attribute: [attr.ints('perm', back)] }];
  const y = made(e.transpose(y4, back), [n, co, ho, wo]);
  const b4 = made(e.reshape(bias, [1, co, 1, 1]), [1, co, 1, 1]);
  return [{ name: `${node.name ?? ''}/kp.columns`, opType: 'Add', domain: '', input: [y, b4], output: [out] }];
}

/**
 * A convolution of one input channel (a model's first layer on grey images) stays one dense Conv,
 * of the weight times its constant mask: its pieces would each write the whole output and a Sum
 * add them, and with one input channel the multiplications saved are fewer than those passes cost
 * (bench/micro-conv.ts, X [64, 1, 28, 28] -> 16, one thread: the pieces take 1.21-1.24x the dense
 * Conv). The filter gradient is still computed at the kept positions only (Emitter.hintTaps), and
 * the product with the mask makes it exactly zero at the dropped ones.
 */
function denseMasked(node: NodeProto, weight: string, mask: Mask, shapes: PieceShapes, e: Emitter, kept: boolean): NodeProto[] {
  const taps = maskPositions(mask);
  const wDims = shapes.dims(weight);
  let masked: string;
  if (kept) {
    // From the kept layout: a one-hot [k, 9] product places the kept positions (a small layer).
    const [co, cpg] = wDims;
    const place = new Float32Array(taps.length * 9);
    taps.forEach((t, j) => { place[j * 9 + t] = 1; });
    const flat = e.reshape(weight, [co * cpg, taps.length]);
    shapes.set(flat, [co * cpg, taps.length]);
    const placed = e.op1('MatMul', [flat, e.floats(place, [taps.length, 9])], [], 'placed_w');
    shapes.set(placed, [co * cpg, 9]);
    masked = e.reshape(placed, wDims);
  } else {
    const m = new Float32Array(9);
    for (const p of taps) m[p] = 1;
    masked = e.mul(weight, e.floats(m, [1, 1, 3, 3]));
  }
  shapes.set(masked, wDims);
  e.hintTaps(masked, taps);
  const input = [...(node.input ?? [])];
  input[1] = masked;
  return [{ ...node, input }];
}
