/**
 * A Keras (TF.js LayersModel) graph flattened for running op by op: nested models expanded into
 * their layers, every tensor one name, each convolution's spec (scanKeras in layers.ts makes it;
 * models/tfjs/layers-exec.ts runs it in TF.js).
 */
import type { ChannelLayout } from '../../model/inputs.js';

export interface KerasConvSpec {
  type: 'conv2d' | 'depthwise' | 'separable';
  /** Manifest name of the kernel (the depthwise kernel of a separable convolution). */
  kernelId: string;
  strides: [number, number];
  dilations: [number, number];
  padding: 'same' | 'valid';
  channelsFirst: boolean;
  /**
   * Name of the value before the activation (conv2d, depthwise: convolution plus bias) or before
   * the pointwise step (separable: the depthwise output), always NHWC.
   */
  inner: string;
}

export interface KerasExecOp {
  kind: 'layer' | 'conv';
  /** Layer names from the top model down to this layer, to find the loaded TF.js layer. */
  layerPath: string[];
  className: string;
  inputs: string[];
  /** Output t is named `${outputBase}:${t}`. */
  outputBase: string;
  outputCount: number;
  kwargs: Record<string, unknown>;
  conv?: KerasConvSpec;
  /**
   * A Dense layer without an activation on a 2-D input, which recovery may re-solve: the manifest
   * name of its kernel, so that a run can use re-solved values in place of the layer's own.
   */
  dense?: { kernelId: string };
}

export interface KerasPlan {
  /** The model's inputs: the name users see, and the tensor name inside the plan. */
  inputs: { name: string; tensor: string }[];
  /** Tensor names of the model's outputs. */
  outputs: string[];
  /** In execution order. */
  ops: KerasExecOp[];
  /** Layout of the values convolutions read and produce, for fetching them as NCHW. */
  layouts: Map<string, ChannelLayout>;
}

export function opOutputs(op: KerasExecOp): string[] {
  const names = Array.from({ length: op.outputCount }, (_, t) => `${op.outputBase}:${t}`);
  if (op.conv) names.push(op.conv.inner);
  return names;
}
