/**
 * Running a Keras (TF.js LayersModel) graph op by op, so that any intermediate value can be
 * fetched: also values inside nested models, and the pre-activation output of a convolution (the
 * value layer-wise reconstruction fits). The graph arrives flattened (a KerasPlan, src/formats/tfjs/keras-plan.ts):
 * nested models are expanded into their layers, every tensor has one name.
 *
 * Convolution layers are computed here from their kernels (so that a runner can swap kernels
 * without reloading); every other layer is the loaded TF.js layer's own `apply`.
 */
import type * as TF from '../../runtime/tfjs/tf.js';
import type { Tf } from '../../runtime/tfjs/backend.js';
import { ConvGradients, conv2d } from '../../runtime/tfjs/conv.js';
import { KerasConvSpec, KerasPlan, opOutputs } from '../../formats/tfjs/keras-plan.js';

interface LayerLike {
  apply(inputs: TF.Tensor | TF.Tensor[], kwargs?: Record<string, unknown>): TF.Tensor | TF.Tensor[] | unknown;
  weights: { originalName: string; read(): TF.Tensor }[];
  getLayer?(name: string): LayerLike;
  activation?: { apply(x: TF.Tensor): TF.Tensor };
}

/** The loaded TF.js layer at a path of names. */
export function layerAt(model: TF.LayersModel, layerPath: string[]): LayerLike {
  let current = model as unknown as LayerLike;
  for (const name of layerPath) {
    if (!current.getLayer) throw new Error(`"${name}" is looked up inside a layer that is not a model`);
    current = current.getLayer(name);
  }
  return current;
}

function weightBySuffix(layer: LayerLike, suffix: string): TF.Tensor | undefined {
  return layer.weights.find((w) => w.originalName === suffix || w.originalName.endsWith(`/${suffix}`))?.read();
}

/** Explicit pads [top, left, bottom, right] of a Keras padding, as TF computes "same" (the extra one after). */
function explicitPads(spec: KerasConvSpec, input: TF.Tensor4D, kernel: TF.Tensor): [number, number, number, number] {
  if (spec.padding === 'valid') return [0, 0, 0, 0];
  const total = (axis: 0 | 1) => {
    const size = input.shape[1 + axis];
    const s = spec.strides[axis];
    const k = ((kernel.shape[axis] ?? 1) - 1) * spec.dilations[axis] + 1;
    return Math.max((Math.ceil(size / s) - 1) * s + k - size, 0);
  };
  const [h, w] = [total(0), total(1)];
  return [Math.floor(h / 2), Math.floor(w / 2), h - Math.floor(h / 2), w - Math.floor(w / 2)];
}

/**
 * A trained kernel's convolution through kprune's forward-convolution gradients (what the wasm
 * backend lacks or runs slowly: see runtime/tfjs/conv.ts). A depthwise kernel [3, 3, C, M] is, in
 * that order, the grouped [3, 3, 1, C * M].
 */
function trainedConv(tf: Tf, spec: KerasConvSpec, input: TF.Tensor4D, kernel: TF.Tensor, gradients: ConvGradients): TF.Tensor4D {
  const depthwise = spec.type !== 'conv2d';
  const [kh, kw, c, m] = kernel.shape as [number, number, number, number];
  const w = (depthwise ? tf.reshape(kernel, [kh, kw, 1, c * m]) : kernel) as TF.Tensor4D;
  const convSpec = { strides: spec.strides, dilations: spec.dilations, pads: explicitPads(spec, input, kernel), group: depthwise ? input.shape[3] : 1 };
  return conv2d(tf, input, w, convSpec, { x: true, w: true }, gradients);
}

/** One convolution layer, as tfjs-layers computes it (channels_first goes through NHWC). */
function runConv(tf: Tf, layer: LayerLike, spec: KerasConvSpec, x: TF.Tensor, kernel: TF.Tensor, gradients?: ConvGradients): { out: TF.Tensor; inner: TF.Tensor } {
  let input = x as TF.Tensor4D;
  if (spec.channelsFirst) input = tf.transpose(input, [0, 2, 3, 1]);
  const { strides, dilations, padding } = spec;
  let y: TF.Tensor4D;
  let inner: TF.Tensor4D;
  switch (spec.type) {
    case 'conv2d':
      y = gradients ? trainedConv(tf, spec, input, kernel, gradients) : tf.conv2d(input, kernel as TF.Tensor4D, strides, padding, 'NHWC', dilations);
      break;
    case 'depthwise':
      y = gradients ? trainedConv(tf, spec, input, kernel, gradients) : tf.depthwiseConv2d(input, kernel as TF.Tensor4D, strides, padding, 'NHWC', dilations);
      break;
    case 'separable': {
      const pointwise = weightBySuffix(layer, 'pointwise_kernel');
      if (!pointwise) throw new Error('the separable convolution has no pointwise kernel');
      inner = gradients ? trainedConv(tf, spec, input, kernel, gradients) : tf.depthwiseConv2d(input, kernel as TF.Tensor4D, strides, padding, 'NHWC', dilations);
      y = tf.conv2d(inner, pointwise as TF.Tensor4D, 1, 'valid');
      break;
    }
  }
  const bias = weightBySuffix(layer, 'bias');
  if (bias) y = tf.add(y, bias);
  if (spec.type !== 'separable') inner = y;
  let out: TF.Tensor = layer.activation ? layer.activation.apply(y) : y;
  if (spec.channelsFirst) out = tf.transpose(out, [0, 3, 1, 2]);
  return { out, inner: inner! };
}

/**
 * Runs the ops needed for `fetch` and returns those values (the caller disposes them). `kernels`
 * replaces convolution kernels by manifest name (in the layer's own TF layout). Values are
 * disposed as soon as no later op needs them, so memory stays at what one batch needs.
 */
export function executePlan(
  tf: Tf,
  model: TF.LayersModel,
  plan: KerasPlan,
  feeds: Map<string, TF.Tensor>,
  fetch: string[],
  kernels: Map<string, TF.Tensor>,
  /** When kernels train: how convolution gradients are computed (see runtime/tfjs/conv.ts). */
  gradients?: ConvGradients,
  /**
   * Only ops [from, to) may run (a segment of layer-wise recovery): whatever they read from
   * before `from` must be in `feeds`.
   */
  range?: { from: number; to: number },
): Map<string, TF.Tensor> {
  const wanted = new Set(fetch);
  // Backwards: which ops are needed, and the last op that reads each value.
  const needed: boolean[] = new Array(plan.ops.length).fill(false);
  const live = new Set(wanted);
  const first = range?.from ?? 0;
  for (let i = (range?.to ?? plan.ops.length) - 1; i >= first; i--) {
    const op = plan.ops[i];
    if (opOutputs(op).some((n) => live.has(n))) {
      needed[i] = true;
      // A fed value is not computed again (a segment is fed the values computed before it).
      for (const n of op.inputs) if (!feeds.has(n)) live.add(n);
    }
  }
  const lastUse = new Map<string, number>();
  plan.ops.forEach((op, i) => {
    if (needed[i]) for (const n of op.inputs) lastUse.set(n, i);
  });

  const values = new Map<string, TF.Tensor>(feeds);
  const release = (name: string) => {
    if (wanted.has(name) || feeds.has(name)) return;
    values.get(name)?.dispose();
    values.delete(name);
  };
  try {
    for (let i = 0; i < plan.ops.length; i++) {
      if (!needed[i]) continue;
      const op = plan.ops[i];
      const inputs = op.inputs.map((n) => {
        const v = values.get(n);
        if (!v) throw new Error(`value "${n}" needed by layer "${op.layerPath.join('/')}" was not computed`);
        return v;
      });
      const layer = layerAt(model, op.layerPath);
      const produced = tf.tidy(() => {
        if (op.conv) {
          const kernel = kernels.get(op.conv.kernelId) ?? weightBySuffix(layer, op.conv.type === 'conv2d' ? 'kernel' : 'depthwise_kernel');
          if (!kernel) throw new Error(`layer "${op.layerPath.join('/')}" has no kernel`);
          const { out, inner } = runConv(tf, layer, op.conv, inputs[0], kernel, gradients);
          // A linear activation hands back its input: two names, two disposable tensors.
          return [out, inner === out ? tf.clone(inner) : inner];
        }
        const dense = op.dense ? kernels.get(op.dense.kernelId) : undefined;
        if (dense) {
          // A re-solved Dense layer (linear, 2-D input: see KerasExecOp.dense): x W + b.
          const bias = weightBySuffix(layer, 'bias');
          const y = tf.matMul(inputs[0] as TF.Tensor2D, dense as TF.Tensor2D);
          return [bias ? tf.add(y, bias) : y];
        }
        const r = layer.apply(inputs.length === 1 ? inputs[0] : inputs, op.kwargs) as TF.Tensor | TF.Tensor[];
        // A layer may hand back its input (Dropout at inference): a clone keeps the two disposable apart.
        return (Array.isArray(r) ? r : [r]).map((t) => (inputs.includes(t) ? tf.clone(t) : t));
      });
      const names = op.conv ? [`${op.outputBase}:0`, op.conv.inner] : produced.map((_, t) => `${op.outputBase}:${t}`);
      names.forEach((n, t) => values.set(n, produced[t]));
      for (let t = names.length; t < produced.length; t++) produced[t].dispose();
      for (const n of new Set(op.inputs)) if (lastUse.get(n) === i) release(n);
      for (const n of names) if (!lastUse.has(n)) release(n);
    }
    const out = new Map<string, TF.Tensor>();
    for (const n of fetch) {
      const v = values.get(n);
      if (!v) throw new Error(`value "${n}" is not produced by the model`);
      out.set(n, v);
    }
    return out;
  } catch (e) {
    for (const [n, v] of values) if (!feeds.has(n)) v.dispose();
    throw e;
  } finally {
    for (const [n, v] of values) if (!wanted.has(n) && !feeds.has(n) && !v.isDisposed) v.dispose();
  }
}
