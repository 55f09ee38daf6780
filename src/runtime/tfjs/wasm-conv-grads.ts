/**
 * The convolution gradient kernels TF.js's wasm backend lacks — Conv2DBackpropFilter and the two
 * depthwise backprop kernels — as plain loops over the backend's memory, registered once. With
 * them, TF.js's own convolution ops (as a GraphModel runs them, fused or not) can be differentiated
 * on wasm. They are direct loops, slower than kprune's forward-convolution gradients
 * (conv.ts), which the ONNX and Keras executors use; these serve code that goes through
 * TF.js's own gradients. Channels-last only, as TF.js's graph ops run them.
 */
import type * as TF from './tf.js';
import type { Tf } from './backend.js';

interface WasmBackend {
  typedArrayFromHeap(t: TF.TensorInfo): Float32Array;
  makeOutput(shape: number[], dtype: 'float32', memoryOffset?: number, values?: Float32Array): TF.TensorInfo;
}

type Info = ReturnType<Tf['backend_util']['computeConv2DInfo']>;

function convInfo(tf: Tf, xShape: number[], filterShape: number[], attrs: Record<string, unknown>, depthwise: boolean): Info {
  if (attrs.dataFormat !== undefined && attrs.dataFormat !== 'NHWC' && attrs.dataFormat !== 'channelsLast') {
    throw new Error(`kprune's wasm convolution gradients take NHWC data, not ${String(attrs.dataFormat)}`);
  }
  return tf.backend_util.computeConv2DInfo(
    xShape as [number, number, number, number], filterShape as [number, number, number, number],
    attrs.strides as [number, number], (attrs.dilations ?? 1) as [number, number],
    attrs.pad as 'same' | 'valid', attrs.dimRoundingMode as 'floor' | undefined, depthwise,
  );
}

/**
 * Calls `visit(xBase, dyBase, wBase)` for every output position and filter tap that reads an input
 * position inside the image: the offsets of that input pixel's channels, that output pixel's
 * channels, and that tap's filter elements (`perTap` of them: the filter's last two dims).
 */
function forEachTap(c: Info, perTap: number, visit: (xBase: number, dyBase: number, wBase: number) => void): void {
  for (let n = 0; n < c.batchSize; n++) {
    for (let oh = 0; oh < c.outHeight; oh++) {
      for (let kh = 0; kh < c.filterHeight; kh++) {
        const ih = oh * c.strideHeight + kh * c.dilationHeight - c.padInfo.top;
        if (ih < 0 || ih >= c.inHeight) continue;
        for (let ow = 0; ow < c.outWidth; ow++) {
          const dyBase = ((n * c.outHeight + oh) * c.outWidth + ow) * c.outChannels;
          for (let kw = 0; kw < c.filterWidth; kw++) {
            const iw = ow * c.strideWidth + kw * c.dilationWidth - c.padInfo.left;
            if (iw < 0 || iw >= c.inWidth) continue;
            visit(((n * c.inHeight + ih) * c.inWidth + iw) * c.inChannels, dyBase, (kh * c.filterWidth + kw) * perTap);
          }
        }
      }
    }
  }
}

type KernelArgs = { inputs: Record<string, TF.TensorInfo>; backend: unknown; attrs?: Record<string, unknown> };

/** dW[kh][kw][ci][co] = sum of x[n][ih][iw][ci] * dy[n][oh][ow][co] over the taps. */
function conv2dBackpropFilter(tf: Tf) {
  return ({ inputs, backend, attrs }: KernelArgs): TF.TensorInfo => {
    const b = backend as WasmBackend;
    const filterShape = attrs!.filterShape as number[];
    const c = convInfo(tf, inputs.x.shape, filterShape, attrs!, false);
    const x = b.typedArrayFromHeap(inputs.x);
    const dy = b.typedArrayFromHeap(inputs.dy);
    const ci = c.inChannels;
    const co = c.outChannels;
    const out = new Float32Array(filterShape.reduce((a, d) => a * d, 1));
    forEachTap(c, ci * co, (xBase, dyBase, wBase) => {
      for (let i = 0; i < ci; i++) {
        const v = x[xBase + i];
        if (v === 0) continue;
        const row = wBase + i * co;
        for (let o = 0; o < co; o++) out[row + o] += v * dy[dyBase + o];
      }
    });
    return b.makeOutput(filterShape, 'float32', undefined, out);
  };
}

/**
 * Depthwise filter [kh][kw][C][M], output channel c * M + m: per tap, the C * M filter elements
 * line up with the C * M output channels, so both kernels walk them together.
 */
function depthwiseBackpropFilter(tf: Tf) {
  return ({ inputs, backend, attrs }: KernelArgs): TF.TensorInfo => {
    const b = backend as WasmBackend;
    const filterShape = attrs!.filterShape as number[];
    const c = convInfo(tf, inputs.x.shape, filterShape, attrs!, true);
    const x = b.typedArrayFromHeap(inputs.x);
    const dy = b.typedArrayFromHeap(inputs.dy);
    const m = filterShape[3];
    const out = new Float32Array(filterShape.reduce((a, d) => a * d, 1));
    forEachTap(c, c.outChannels, (xBase, dyBase, wBase) => {
      for (let ch = 0; ch < c.inChannels; ch++) {
        const v = x[xBase + ch];
        for (let k = ch * m; k < (ch + 1) * m; k++) out[wBase + k] += v * dy[dyBase + k];
      }
    });
    return b.makeOutput(filterShape, 'float32', undefined, out);
  };
}

/** dX[n][ih][iw][c] = sum of dy[n][oh][ow][c * M + m] * W[kh][kw][c][m] over the taps. */
function depthwiseBackpropInput(tf: Tf) {
  return ({ inputs, backend, attrs }: KernelArgs): TF.TensorInfo => {
    const b = backend as WasmBackend;
    const inputShape = attrs!.inputShape as number[];
    const filterShape = inputs.filter.shape;
    const c = convInfo(tf, inputShape, filterShape, attrs!, true);
    const dy = b.typedArrayFromHeap(inputs.dy);
    const w = b.typedArrayFromHeap(inputs.filter);
    const m = filterShape[3];
    const out = new Float32Array(inputShape.reduce((a, d) => a * d, 1));
    forEachTap(c, c.outChannels, (xBase, dyBase, wBase) => {
      for (let ch = 0; ch < c.inChannels; ch++) {
        let sum = 0;
        for (let k = ch * m; k < (ch + 1) * m; k++) sum += dy[dyBase + k] * w[wBase + k];
        out[xBase + ch] += sum;
      }
    });
    return b.makeOutput(inputShape, 'float32', undefined, out);
  };
}

/** Registers the kernels on the wasm backend where it has none of its own (once; harmless to repeat). */
export function registerWasmConvGradients(tf: Tf): void {
  const kernels: [string, (tf: Tf) => TF.KernelFunc][] = [
    ['Conv2DBackpropFilter', conv2dBackpropFilter as (tf: Tf) => TF.KernelFunc],
    ['DepthwiseConv2dNativeBackpropFilter', depthwiseBackpropFilter as (tf: Tf) => TF.KernelFunc],
    ['DepthwiseConv2dNativeBackpropInput', depthwiseBackpropInput as (tf: Tf) => TF.KernelFunc],
  ];
  for (const [kernelName, make] of kernels) {
    if (!tf.getKernel(kernelName, 'wasm')) tf.registerKernel({ kernelName, backendName: 'wasm', kernelFunc: make(tf) });
  }
}
