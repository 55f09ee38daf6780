/**
 * Finding the prunable 3x3 convolutions of an ONNX graph and handing them to the core as
 * format-neutral layers.
 */
import { addConvUse, Conv3x3Layer, ConvUse, layerFields, SkippedConv } from '../../model/conv.js';
import { inFile, KpruneError } from '../../errors.js';
import { Attributes } from './attributes.js';
import { dataTypeName } from './proto.js';
import { OnnxModel, tensorFloats } from './read.js';
import { FLOAT_TYPES } from './tensor.js';

export interface OnnxConvScan {
  layers: Conv3x3Layer[];
  /** 3x3 convolutions kprune found but cannot prune, with why. */
  skipped: SkippedConv[];
  /** Every convolution node in the graph, 3x3 or not. */
  convNodes: number;
}

/** Quantized or vendor convolutions: seen, named in the report, left alone. */
const OTHER_CONVS = new Set(['QLinearConv', 'ConvInteger', 'ConvTranspose', 'FusedConv', 'NhwcConv']);

function isOnnxDomain(domain: string | null | undefined): boolean {
  return !domain || domain === 'ai.onnx';
}

export function findConv3x3(model: OnnxModel): OnnxConvScan {
  const nodes = model.graph.node ?? [];
  const layers = new Map<string, Conv3x3Layer>();
  const skipped: SkippedConv[] = [];
  let convNodes = 0;

  // Which nodes consume each value: a weight that also feeds something other than a Conv weight
  // slot cannot be changed without changing that other computation.
  const consumers = new Map<string, { node: string; opType: string; slot: number }[]>();
  nodes.forEach((n, i) => (n.input ?? []).forEach((v, slot) => {
    if (!v) return;
    const list = consumers.get(v) ?? [];
    list.push({ node: n.name || `#${i}`, opType: n.opType ?? '', slot });
    consumers.set(v, list);
  }));
  const graphOutputs = new Set((model.graph.output ?? []).map((o) => o.name ?? ''));
  const reluOnly = (v: string) => {
    const readers = consumers.get(v) ?? [];
    return readers.length === 1 && readers[0].opType === 'Relu' && !graphOutputs.has(v);
  };

  nodes.forEach((node, i) => {
    const name = node.name || `${node.opType}#${i}`;
    const opType = node.opType ?? '';
    if (OTHER_CONVS.has(opType)) {
      convNodes++;
      skipped.push({ node: name, opType, reason: `${opType} is not pruned by kprune` });
      return;
    }
    if (opType !== 'Conv' || !isOnnxDomain(node.domain)) return;
    convNodes++;
    const weightName = node.input?.[1] ?? '';
    const ref = model.constants.get(weightName);
    const attrs = new Attributes(node);
    const kernelShape = attrs.ints('kernel_shape', []);
    if (!ref) {
      if (kernelShape.length === 2 && kernelShape[0] === 3 && kernelShape[1] === 3) {
        skipped.push({ node: name, opType, reason: `its weight "${weightName}" is computed at run time, not a constant` });
      }
      return;
    }
    if (ref.dims.length !== 4 || ref.dims[2] !== 3 || ref.dims[3] !== 3) return; // not 2-D 3x3
    if (kernelShape.length > 0 && (kernelShape[0] !== 3 || kernelShape[1] !== 3)) {
      throw new KpruneError('bad-model', `Conv "${name}" has kernel_shape [${kernelShape}] but a 3x3 weight`, { file: model.path, node: name });
    }
    if (ref.origin.kind === 'sparse') {
      skipped.push({ node: name, opType, reason: `its weight "${weightName}" is stored sparse (read for measurement, not rewritten)` });
      return;
    }
    if (!FLOAT_TYPES.has(ref.dataType)) {
      skipped.push({ node: name, opType, reason: `its weight is ${dataTypeName(ref.dataType)}, not a float type` });
      return;
    }
    const others = (consumers.get(weightName) ?? []).filter((c) => !(c.opType === 'Conv' && c.slot === 1));
    if (others.length > 0 || graphOutputs.has(weightName)) {
      const who = others.length > 0 ? `${others[0].opType} node "${others[0].node}"` : 'a graph output';
      skipped.push({ node: name, opType, reason: `its weight "${weightName}" is also used by ${who}` });
      return;
    }
    const group = attrs.int('group', 1);
    const strides = attrs.ints('strides', [1, 1]);
    const dilations = attrs.ints('dilations', [1, 1]);
    const biasRef = node.input?.[2] ? model.constants.get(node.input[2]) : undefined;
    if (node.input?.[2] && !biasRef) {
      skipped.push({ node: name, opType, reason: `its bias "${node.input[2]}" is computed at run time, not a constant` });
      return;
    }
    const pads = attrs.ints('pads', [0, 0, 0, 0]);
    const autoPad = attrs.string('auto_pad', 'NOTSET');
    if (!['NOTSET', 'SAME_UPPER', 'SAME_LOWER', 'VALID'].includes(autoPad)) {
      throw new KpruneError('bad-model', `Conv "${name}" has an unknown auto_pad "${autoPad}"`, { file: model.path, node: name });
    }
    const use: ConvUse = {
      node: name,
      input: node.input?.[0] ?? '',
      output: node.output?.[0] ?? '',
      ...(node.input?.[2] ? { bias: node.input[2] } : {}),
      ...(biasRef && FLOAT_TYPES.has(biasRef.dataType) ? { biasValues: tensorFloats(model, biasRef) } : {}),
      pads: [pads[0] ?? 0, pads[1] ?? 0, pads[2] ?? 0, pads[3] ?? 0],
      autoPad: autoPad as ConvUse['autoPad'],
      group,
      strides: [strides[0] ?? 1, strides[1] ?? 1],
      dilations: [dilations[0] ?? 1, dilations[1] ?? 1],
      ...(reluOnly(node.output?.[0] ?? '') ? { activation: 'relu' as const } : {}),
    };
    addConvUse(layers, weightName, use, (index) => {
      const [outChannels, inChannelsPerGroup] = ref.dims;
      if (group < 1 || outChannels % group !== 0) {
        throw new KpruneError('bad-model', `Conv "${name}" has group ${group}, which does not divide its ${outChannels} output channels`, { file: model.path, node: name });
      }
      const layer = { ...layerFields(weightName, name, index, use, outChannels, inChannelsPerGroup, group), order: i };
      // External weights (and those a lazy read left in the file) are read at each use and never
      // held: the model may not fit in memory.
      return ref.storage === 'external' || ref.inFile
        ? { ...layer, get weights() { return inFile(model.path, () => tensorFloats(model, ref)); } }
        : { ...layer, weights: tensorFloats(model, ref) };
    });
  });
  return { layers: [...layers.values()], skipped, convNodes };
}
