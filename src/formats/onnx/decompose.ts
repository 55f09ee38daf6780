/**
 * ONNX graph edits for the slim layouts of reshaped 3x3 convolutions:
 * - decomposed: the Conv becomes a Sum of smaller Convs (one per piece of an exact cover of the
 *   mask, src/core/layout/cover.ts), each with its own weights, pads and dilations, so the stored
 *   weights are exactly the kept positions and stock runtimes do fewer multiplications;
 * - sparse: the weight becomes a `Constant` node with a `sparse_value` (COO values + int64 indices).
 */
import { Conv3x3Layer, ConvUse } from '../../model/conv.js';
import { Piece, minimalCover } from '../../core/layout/cover.js';
import { Mask } from '../../core/lattice.js';
import { Attributes } from './attributes.js';
import { NodeProto, SparseTensorProto, TensorProto, onnx } from './proto.js';
import { bytesPerElement, floatsToBytes } from './tensor.js';

const INT = onnx.AttributeProto.AttributeType.INT;
const INTS = onnx.AttributeProto.AttributeType.INTS;
const SPARSE_TENSOR = onnx.AttributeProto.AttributeType.SPARSE_TENSOR;
/** Slice ends past the last element are clamped to the dimension (ONNX Slice spec). */
const TO_END = 2147483647;

export interface DecomposedConv {
  nodes: NodeProto[];
  initializers: TensorProto[];
  /**
   * With `later` given to decomposeConv: the piece weights' data, made when written (see
   * GraphEdits.madeLater); their initializers then have no data of their own.
   */
  madeLater: Map<TensorProto, MadeLater>;
  /** Pieces as kernel sizes, e.g. "3x1 + 1x2 (dilated 1x2)". */
  description: string;
  storedWeights: number;
}

/** A tensor's data made when its turn to be written comes, and its size, known before. */
export interface MadeLater {
  bytes: number;
  make: () => Uint8Array;
}

/**
 * A piece's data, made from the layer's weights when asked. Made here, not inline in decomposeConv:
 * a closure there would share its scope, which holds the layer's weights, and keep every
 * decomposed layer's weights alive until the write ends.
 */
function pieceMaker(layer: Conv3x3Layer, p: Piece, dataType: number, later: () => Float32Array): () => Uint8Array {
  return () => floatsToBytes(pieceWeights(layer, later(), p), dataType);
}

/** The explicit pads of a use, or why they cannot be known without the input size. */
export function explicitPads(use: ConvUse): [number, number, number, number] | string {
  if (use.autoPad === 'NOTSET') return use.pads;
  if (use.autoPad === 'VALID') return [0, 0, 0, 0];
  const [sh, sw] = use.strides;
  const [dh, dw] = use.dilations;
  // With stride 1, SAME pads a 3x3 kernel by its dilation on every side, whatever the input size.
  if (sh === 1 && sw === 1) return [dh, dw, dh, dw];
  return `auto_pad ${use.autoPad} with stride ${sh}x${sw} depends on the input size`;
}

function pieceWeights(layer: Conv3x3Layer, weights: Float32Array, piece: Piece): Float32Array {
  const kernels = layer.outChannels * layer.inChannelsPerGroup;
  const k = piece.positions.length;
  const out = new Float32Array(kernels * k);
  for (let i = 0; i < kernels; i++) for (let j = 0; j < k; j++) out[i * k + j] = weights[i * 9 + piece.positions[j]];
  return out;
}

function pieceName(weight: string, p: Piece): string {
  return `${weight}/kp_r${p.r0}${p.rStep}${p.rCount}c${p.c0}${p.cStep}${p.cCount}`;
}

function describe(pieces: Piece[]): string {
  return pieces.map((p) => {
    const dil = (p.rCount > 1 && p.rStep > 1) || (p.cCount > 1 && p.cStep > 1) ? ` dilated ${p.rCount > 1 ? p.rStep : 1}x${p.cCount > 1 ? p.cStep : 1}` : '';
    return `${p.rCount}x${p.cCount}${dil}`;
  }).join(' + ');
}

/**
 * The nodes replacing one Conv node, and the piece weights (deduplicated by name across uses of a
 * shared weight via `made`).
 */
export function decomposeConv(
  node: NodeProto,
  use: ConvUse,
  layer: Conv3x3Layer,
  weights: Float32Array,
  mask: Mask,
  dataType: number,
  opset: number,
  made: Set<string>,
  later?: () => Float32Array,
): DecomposedConv | string {
  const pads = explicitPads(use);
  if (typeof pads === 'string') return pads;
  const [dh, dw] = use.dilations;
  const pieces = minimalCover(mask, { pads, dilations: use.dilations });
  if (pieces.length === 0) return 'no exact cover for this mask';
  const name = node.name || use.output;
  const input = node.input![0];
  const bias = node.input?.[2];
  const attrs = new Attributes(node);
  const strides = attrs.ints('strides', [1, 1]);
  const nodes: NodeProto[] = [];
  const initializers: TensorProto[] = [];
  const madeLater = new Map<TensorProto, MadeLater>();
  const crops = new Map<string, string>();
  const outputs: string[] = [];
  const base = { domain: node.domain ?? '', docString: node.docString ?? '' };
  const i64 = (tname: string, values: number[]): TensorProto => ({ name: tname, dims: [values.length], dataType: 7, rawData: new Uint8Array(BigInt64Array.from(values.map(BigInt)).buffer) });

  pieces.forEach((p, i) => {
    const r1 = p.r0 + p.rStep * (p.rCount - 1);
    const c1 = p.c0 + p.cStep * (p.cCount - 1);
    const want = [pads[0] - p.r0 * dh, pads[1] - p.c0 * dw, pads[2] - (2 - r1) * dh, pads[3] - (2 - c1) * dw];
    const crop = want.map((v) => Math.max(0, -v));
    const pad = want.map((v) => Math.max(0, v));
    let source = input;
    if (crop.some((c) => c > 0)) {
      // A piece whose window starts or ends inside the 3x3 would need a negative pad: crop instead.
      const key = crop.join(',');
      if (!crops.has(key)) {
        const out = `${use.output}/kp_crop${crops.size}`;
        const starts = [crop[0], crop[1]];
        const ends = [crop[2] > 0 ? -crop[2] : TO_END, crop[3] > 0 ? -crop[3] : TO_END];
        const sliceName = `${name}/kp_crop${crops.size}`;
        if (opset >= 10) {
          initializers.push(i64(`${sliceName}/starts`, starts), i64(`${sliceName}/ends`, ends), i64(`${sliceName}/axes`, [2, 3]));
          nodes.push({ name: sliceName, opType: 'Slice', input: [input, `${sliceName}/starts`, `${sliceName}/ends`, `${sliceName}/axes`], output: [out], domain: base.domain });
        } else {
          nodes.push({
            name: sliceName, opType: 'Slice', input: [input], output: [out], domain: base.domain,
            attribute: [{ name: 'starts', type: INTS, ints: starts }, { name: 'ends', type: INTS, ints: ends }, { name: 'axes', type: INTS, ints: [2, 3] }],
          });
        }
        crops.set(key, out);
      }
      source = crops.get(key)!;
    }
    const wName = pieceName(layer.id, p);
    if (!made.has(wName)) {
      made.add(wName);
      const dims = [layer.outChannels, layer.inChannelsPerGroup, p.rCount, p.cCount];
      if (later) {
        const t: TensorProto = { name: wName, dims, dataType };
        madeLater.set(t, { bytes: dims.reduce((a, d) => a * d, 1) * bytesPerElement(dataType), make: pieceMaker(layer, p, dataType, later) });
        initializers.push(t);
      } else {
        initializers.push({ name: wName, dims, dataType, rawData: floatsToBytes(pieceWeights(layer, weights, p), dataType) });
      }
    }
    const out = pieces.length === 1 ? use.output : `${use.output}/kp_piece${i}`;
    outputs.push(out);
    nodes.push({
      ...base,
      name: pieces.length === 1 ? name : `${name}/kp_piece${i}`,
      opType: 'Conv',
      input: i === 0 && bias ? [source, wName, bias] : [source, wName],
      output: [out],
      attribute: [
        { name: 'kernel_shape', type: INTS, ints: [p.rCount, p.cCount] },
        { name: 'strides', type: INTS, ints: strides },
        { name: 'dilations', type: INTS, ints: [dh * (p.rCount > 1 ? p.rStep : 1), dw * (p.cCount > 1 ? p.cStep : 1)] },
        { name: 'pads', type: INTS, ints: pad },
        { name: 'group', type: INT, i: use.group },
      ],
    });
  });
  if (pieces.length > 1) {
    nodes.push({ ...base, name: `${name}/kp_sum`, opType: 'Sum', input: outputs, output: [use.output] });
  }
  const storedWeights = pieces.reduce((a, p) => a + p.positions.length, 0) * layer.outChannels * layer.inChannelsPerGroup;
  return { nodes, initializers, madeLater, description: describe(pieces), storedWeights };
}

/**
 * A `Constant` node whose `sparse_value` (COO: float values [nnz], linear int64 indices [nnz]) is
 * the weight: onnxruntime densifies it at load, and unlike a sparse_initializer its output is an
 * ordinary dense tensor to ONNX's shape inference, so the full checker accepts the model.
 */
export function sparseConstant(name: string, nodeName: string, dims: number[], weights: Float32Array, dataType: number): NodeProto {
  const idx: number[] = [];
  for (let i = 0; i < weights.length; i++) if (weights[i] !== 0) idx.push(i);
  const values = Float32Array.from(idx, (i) => weights[i]);
  const sparse: SparseTensorProto = {
    values: { name, dims: [idx.length], dataType, rawData: floatsToBytes(values, dataType) },
    indices: { dims: [idx.length], dataType: 7, rawData: new Uint8Array(BigInt64Array.from(idx.map(BigInt)).buffer) },
    dims,
  };
  return { name: nodeName, opType: 'Constant', input: [], output: [name], attribute: [{ name: 'sparse_value', type: SPARSE_TENSOR, sparseTensor: sparse }] };
}
