/**
 * kprune's wasm kernels for the convolution gradients TF.js's wasm backend lacks
 * (Conv2DBackpropFilter, depthwise backprop filter and input) give what TF.js's cpu backend gives,
 * through TF.js's own gradients of conv2d, fused conv2d and depthwise conv2d.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type * as TF from '../src/runtime/tfjs/tf.js';
import { tfjsRuntime } from '../src/runtime/tfjs/backend.js';
import { registerWasmConvGradients } from '../src/runtime/tfjs/wasm-conv-grads.js';
import { randomFloats } from './helpers/onnx-builder.js';

type Stride = number | [number, number];
/** x is [batch, h, w, 3]; conv filters [3, 3, 3, 4], depthwise [3, 3, 3, 2] (multiplier 2). */
type Case = { kind: 'conv' | 'fused' | 'depthwise'; h: number; w: number; stride: Stride; pad: 'same' | 'valid' };
// Non-square and odd sizes, stride 2 (and 2 x 1), "same" and "valid", for every kernel: on a square
// input with stride 1, top and left pads are equal and height and width interchangeable, so a
// kernel mixing them up would pass. 8x7 at stride 2 "same" pads 0 on top and 1 on the left.
// (No dilation: TF.js has no gradients for dilated convolutions, so these kernels never see one.)
const CASES: Case[] = [
  { kind: 'conv', h: 7, w: 7, stride: 1, pad: 'same' },
  { kind: 'conv', h: 7, w: 7, stride: 2, pad: 'valid' },
  { kind: 'conv', h: 8, w: 7, stride: 2, pad: 'same' },
  { kind: 'conv', h: 8, w: 7, stride: 2, pad: 'valid' },
  { kind: 'conv', h: 9, w: 5, stride: 1, pad: 'same' },
  { kind: 'conv', h: 6, w: 9, stride: [2, 1], pad: 'same' },
  { kind: 'fused', h: 7, w: 7, stride: 2, pad: 'same' },
  { kind: 'fused', h: 8, w: 7, stride: 2, pad: 'same' },
  { kind: 'fused', h: 5, w: 9, stride: 1, pad: 'valid' },
  { kind: 'depthwise', h: 7, w: 7, stride: 1, pad: 'same' },
  { kind: 'depthwise', h: 7, w: 7, stride: 2, pad: 'valid' },
  { kind: 'depthwise', h: 8, w: 7, stride: 2, pad: 'same' },
  { kind: 'depthwise', h: 8, w: 7, stride: 2, pad: 'valid' },
  { kind: 'depthwise', h: 9, w: 5, stride: 1, pad: 'same' },
  { kind: 'depthwise', h: 5, w: 8, stride: [1, 2], pad: 'same' },
];

function gradients(tf: typeof TF, c: Case): Float32Array[] {
  return tf.tidy(() => {
    const x = tf.variable(tf.tensor(randomFloats(2 * c.h * c.w * 3, 1), [2, c.h, c.w, 3]));
    const shape: [number, number, number, number] = c.kind === 'depthwise' ? [3, 3, 3, 2] : [3, 3, 3, 4];
    const w = tf.variable(tf.tensor(randomFloats(shape.reduce((a, b) => a * b, 1), 2), shape));
    const { grads } = tf.variableGrads(() => {
      const y = c.kind === 'depthwise' ? tf.depthwiseConv2d(x as TF.Tensor4D, w as TF.Tensor4D, c.stride, c.pad)
        : c.kind === 'fused' ? tf.fused.conv2d({ x: x as TF.Tensor4D, filter: w as TF.Tensor4D, strides: c.stride, pad: c.pad, bias: tf.ones([4]) })
          : tf.conv2d(x as TF.Tensor4D, w as TF.Tensor4D, c.stride, c.pad);
      // A loss whose gradient differs at every output position.
      return tf.sum(tf.mul(y, tf.sin(tf.reshape(tf.range(0, y.size), y.shape))));
    }, [w, x]);
    const out = [grads[w.name].dataSync() as Float32Array, grads[x.name].dataSync() as Float32Array];
    x.dispose();
    w.dispose();
    return out.map((a) => Float32Array.from(a));
  });
}

test('wasm convolution gradient kernels agree with the cpu backend', async (t) => {
  const { tf, backend } = await tfjsRuntime();
  if (backend !== 'wasm') {
    t.skip(`the TF.js backend here is ${backend}, which has its own kernels`);
    return;
  }
  registerWasmConvGradients(tf);
  try {
    await tf.setBackend('cpu');
    const expected = CASES.map((c) => gradients(tf, c));
    await tf.setBackend('wasm');
    CASES.forEach((c, i) => {
      const got = gradients(tf, c);
      for (const [k, what] of ['filter', 'input'].entries()) {
        const e = expected[i][k];
        const scale = Math.max(...e.map(Math.abs));
        assert.equal(got[k].length, e.length);
        for (let j = 0; j < e.length; j++) assert.ok(Math.abs(got[k][j] - e[j]) <= 1e-5 * scale, `${JSON.stringify(c)} ${what}[${j}]: ${got[k][j]} vs ${e[j]}`);
      }
    });
  } finally {
    await tf.setBackend(backend);
  }
});
