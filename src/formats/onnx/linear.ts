/**
 * The linear layers of an ONNX graph that recovery can re-solve to compensate for reshaped 3x3
 * layers upstream (src/core/recover/linear.ts): 1x1 `Conv` nodes (pointwise after depthwise,
 * shortcut projections, grouped ones too), `Gemm` (alpha = beta = 1, A not transposed) and `MatMul`
 * on a 2-D input, each with a constant float weight that nothing else reads, and each reached from
 * the output of a reshaped layer.
 */
import { Conv3x3Layer, ConvUse, convKind } from '../../model/conv.js';
import { LinearLayer } from '../../core/recover/linear.js';
import { Attributes } from './attributes.js';
import { NodeProto } from './proto.js';
import { OnnxModel, tensorFloats } from './read.js';
import { FLOAT_TYPES } from './tensor.js';

function floatAttr(n: NodeProto, name: string, fallback: number): number {
  const a = (n.attribute ?? []).find((x) => x.name === name);
  return a?.f ?? fallback;
}

/** Linear layers whose input depends on one of `reshaped` (3x3 layers' ids), in graph order. */
export function findLinearLayers(model: OnnxModel, layers: Conv3x3Layer[], reshaped: Set<string>): LinearLayer[] {
  const nodes = model.graph.node ?? [];
  const readers = new Map<string, number>();
  const readerOp = new Map<string, string>();
  for (const n of nodes) {
    for (const v of n.input ?? []) {
      readers.set(v, (readers.get(v) ?? 0) + 1);
      readerOp.set(v, n.opType ?? '');
    }
  }
  const graphOutputs = new Set((model.graph.output ?? []).map((o) => o.name ?? ''));
  // Values downstream of a reshaped layer's output.
  const tainted = new Set(layers.filter((l) => reshaped.has(l.id)).flatMap((l) => l.uses.map((u) => u.output)));
  const found: LinearLayer[] = [];
  nodes.forEach((n, i) => {
    const ins = n.input ?? [];
    const reached = ins.some((v) => tainted.has(v));
    if (reached) for (const o of n.output ?? []) tainted.add(o);
    if (!reached || (n.domain && n.domain !== 'ai.onnx')) return;
    const weight = ins[1] ?? '';
    const ref = model.constants.get(weight);
    if (!ref || !FLOAT_TYPES.has(ref.dataType) || ref.origin.kind === 'sparse' || readers.get(weight) !== 1 || graphOutputs.has(weight)) return;
    if (tainted.has(weight)) return;
    const name = n.name || `${n.opType}#${i}`;
    const biasName = ins[2] || undefined;
    const biasRef = biasName ? model.constants.get(biasName) : undefined;
    if (biasName && (!biasRef || !FLOAT_TYPES.has(biasRef.dataType))) return;
    const attrs = new Attributes(n);
    let kind: LinearLayer['linear']['kind'];
    let outChannels: number;
    let inPerGroup: number;
    let group = 1;
    let transposed = false;
    let strides: [number, number] = [1, 1];
    if (n.opType === 'Conv') {
      if (ref.dims.length !== 4 || ref.dims[2] !== 1 || ref.dims[3] !== 1) return;
      const autoPad = attrs.string('auto_pad', 'NOTSET');
      if (autoPad !== 'NOTSET' && autoPad !== 'VALID') return;
      const p = autoPad === 'VALID' ? [0, 0, 0, 0] : attrs.ints('pads', [0, 0, 0, 0]);
      const d = attrs.ints('dilations', [1, 1]);
      if (p.some((x) => x !== 0) || d.some((x) => x !== 1)) return; // padded 1x1: rare, left alone
      kind = 'conv1x1';
      [outChannels, inPerGroup] = ref.dims;
      group = attrs.int('group', 1);
      const s = attrs.ints('strides', [1, 1]);
      strides = [s[0] ?? 1, s[1] ?? 1];
    } else if (n.opType === 'Gemm') {
      if (ref.dims.length !== 2 || attrs.int('transA', 0) !== 0 || floatAttr(n, 'alpha', 1) !== 1 || floatAttr(n, 'beta', 1) !== 1) return;
      kind = 'gemm';
      transposed = attrs.int('transB', 0) === 0;
      [outChannels, inPerGroup] = transposed ? [ref.dims[1], ref.dims[0]] : ref.dims;
    } else if (n.opType === 'MatMul') {
      if (ref.dims.length !== 2 || biasName) return;
      kind = 'matmul';
      transposed = true;
      [outChannels, inPerGroup] = [ref.dims[1], ref.dims[0]];
    } else {
      return;
    }
    if (biasRef && biasRef.dims.reduce((a, b) => a * b, 1) !== outChannels) return; // a broadcast bias
    // A 1x1 convolution read as a 3x3 one with only the centre tap: one more pixel of padding.
    const use: ConvUse = {
      node: name, input: ins[0], output: n.output?.[0] ?? '',
      ...(biasName ? { bias: biasName } : {}),
      ...(biasRef ? { biasValues: tensorFloats(model, biasRef) } : {}),
      group, strides, dilations: [1, 1], pads: [1, 1, 1, 1], autoPad: 'NOTSET',
      ...(readers.get(n.output?.[0] ?? '') === 1 && readerOp.get(n.output?.[0] ?? '') === 'Relu' && !graphOutputs.has(n.output?.[0] ?? '') ? { activation: 'relu' as const } : {}),
    };
    const base = {
      id: weight, name, index: 100_000 + i, order: i, uses: [use], outChannels, inChannelsPerGroup: inPerGroup, group,
      kind: convKind(group, outChannels, inPerGroup), linear: { kind, transposed },
    };
    found.push(ref.storage === 'external'
      ? { ...base, get weights() { return tensorFloats(model, ref); } }
      : { ...base, weights: tensorFloats(model, ref) });
  });
  return found;
}

/** Float constants that exactly one node input reads and that are no graph output: safe to change. */
export function soleReaderConstants(model: OnnxModel): Set<string> {
  const readers = new Map<string, number>();
  for (const n of model.graph.node ?? []) for (const v of n.input ?? []) readers.set(v, (readers.get(v) ?? 0) + 1);
  const outputs = new Set((model.graph.output ?? []).map((o) => o.name ?? ''));
  const inputs = new Set((model.graph.input ?? []).map((o) => o.name ?? ''));
  return new Set([...model.constants.values()]
    .filter((r) => readers.get(r.name) === 1 && !outputs.has(r.name) && !inputs.has(r.name) && FLOAT_TYPES.has(r.dataType) && r.origin.kind !== 'sparse')
    .map((r) => r.name));
}
