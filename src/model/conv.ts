/**
 * The format-neutral view of a model's 3x3 convolutions. Format readers (ONNX, later TF.js) produce
 * these; the analysis, the planner and the reshaping see nothing else.
 */

/**
 * A set of 3x3 kernel positions as a 9-bit integer: bit p is position p, row-major (p = 3 * row +
 * column), the order of the last two axes of an ONNX OIHW weight. Shapes and their names are the
 * core's (core/lattice.ts).
 */
export type Mask = number;

/** One place a weight tensor is used as a convolution (a weight can feed several). */
export interface ConvUse {
  /** The node (or layer) name in the model. */
  node: string;
  /** The value the convolution reads (NCHW activations). */
  input: string;
  /** The name of the value the convolution produces, to look up its spatial size. */
  output: string;
  /** The bias, if the convolution has one (it stays exact during recovery). */
  bias?: string;
  biasValues?: Float32Array;
  group: number;
  strides: [number, number];
  dilations: [number, number];
  /** Explicit pads [top, left, bottom, right]; with `autoPad` other than NOTSET they are computed. */
  pads: [number, number, number, number];
  autoPad: 'NOTSET' | 'SAME_UPPER' | 'SAME_LOWER' | 'VALID';
  /** `relu`: the output's only reader is a ReLU (recovery can then match what survives it). */
  activation?: 'relu';
}

export type ConvKind = 'standard' | 'depthwise' | 'grouped';

/**
 * A 3x3 convolution weight tensor and every convolution using it. Pruning works per weight tensor,
 * so a tensor shared by two convolutions is pruned once, consistently.
 */
export interface Conv3x3Layer {
  /** Stable key: the weight tensor's name in the model. */
  id: string;
  /** For people: the first using node's name. */
  name: string;
  /** Position in topological order among the model's 3x3 layers. */
  index: number;
  /**
   * Position of its (first) node among all the graph's nodes, where the format knows it: orders
   * 3x3 layers and the linear layers recovery compensates with (src/core/recover/linear.ts).
   */
  order?: number;
  uses: ConvUse[];
  outChannels: number;
  inChannelsPerGroup: number;
  group: number;
  kind: ConvKind;
  /**
   * The weights as [outChannels][inChannelsPerGroup][9]: every kernel's 9 values contiguous, positions
   * row-major. ONNX's OIHW is exactly this; other layouts are converted by their format reader.
   *
   * For weights stored outside the model file (ONNX external data, TF.js shards) this is a getter
   * that reads the tensor from disk at each access and keeps nothing, so that a model far larger
   * than memory can be pruned one tensor at a time: read it once per use, and use
   * `layerParams(layer)` for its size.
   */
  readonly weights: Float32Array;
}

// A 3x3 convolution found but not pruned, with why (named in the report).
export interface SkippedConv {
  node: string;
  opType: string;
  reason: string;
}

/** A layer's fields but its weights, which each format reads its own way (see `weights` above). */
export function layerFields(id: string, name: string, index: number, use: ConvUse, outChannels: number, inChannelsPerGroup: number, group: number): Omit<Conv3x3Layer, 'weights'> {
  return { id, name, index, uses: [use], outChannels, inChannelsPerGroup, group, kind: convKind(group, outChannels, inChannelsPerGroup) };
}

/**
 * A layer is a weight tensor: the first convolution using a weight makes its layer (`make`, given
 * the layer's index); later ones join it as further uses, so that a shared weight gets one mask.
 */
export function addConvUse(layers: Map<string, Conv3x3Layer>, weight: string, use: ConvUse, make: (index: number) => Conv3x3Layer): void {
  const existing = layers.get(weight);
  if (existing) existing.uses.push(use);
  else layers.set(weight, make(layers.size));
}

/** The number of weights of a layer, without reading them. */
export function layerParams(layer: Conv3x3Layer): number {
  return layer.outChannels * layer.inChannelsPerGroup * 9;
}

export function kernelCount(layer: Conv3x3Layer): number {
  return layer.outChannels * layer.inChannelsPerGroup;
}

export function convKind(group: number, outChannels: number, inChannelsPerGroup: number): ConvKind {
  if (group === 1) return 'standard';
  if (inChannelsPerGroup === 1 && outChannels % group === 0) return 'depthwise';
  return 'grouped';
}

export function countNonzero(values: Float32Array): number {
  let n = 0;
  // A select, not a branch: on weights with zeros scattered among them (a masked layer) the branch
  // mispredicts often, and the loop took 3-5x as long.
  for (let i = 0; i < values.length; i++) n += values[i] !== 0 ? 1 : 0;
  return n;
}
