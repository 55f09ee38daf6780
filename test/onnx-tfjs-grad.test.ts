/**
 * kprune's convolution gradients (forward convolutions only; conv.ts) against a float64 reference
 * written out as loops, over strides, dilations, asymmetric pads, groups, depthwise multipliers and
 * kernel sizes; and the gradients of whole bundled graphs against TF.js's own backprop kernels on
 * the cpu backend, which has them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import type * as TF from '../src/runtime/tfjs/tf.js';
import { findConv3x3 } from '../src/formats/onnx/convs.js';
import { readOnnxModel } from '../src/formats/onnx/read.js';
import { trainingRuntime } from '../src/runtime/tfjs/training-backend.js';
import { Conv2dSpec, conv2d } from '../src/runtime/tfjs/conv.js';
import { decodeGraph } from '../src/formats/onnx/decode-graph.js';
import { OnnxTfjsGraph } from '../src/runtime/tfjs/onnx/graph.js';
import { mulberry32 } from '../src/util/random.js';
import { FIXTURES } from './helpers/tmp.js';

const rt = await trainingRuntime();
const defaultBackend = rt.backend;
const { tf } = rt;

interface Case {
  x: [number, number, number, number];
  w: [number, number, number, number];
  spec: Conv2dSpec;
}

const spec = (strides: [number, number], dilations: [number, number], pads: [number, number, number, number], group = 1): Conv2dSpec => ({ strides, dilations, pads, group });
const CASES: Case[] = [
  { x: [2, 7, 7, 3], w: [3, 3, 3, 4], spec: spec([1, 1], [1, 1], [1, 1, 1, 1]) },
  { x: [2, 8, 8, 3], w: [3, 3, 3, 4], spec: spec([2, 2], [1, 1], [1, 1, 1, 1]) },
  { x: [2, 7, 9, 3], w: [3, 3, 3, 4], spec: spec([2, 2], [1, 1], [1, 1, 1, 1]) },
  { x: [2, 10, 10, 2], w: [3, 3, 2, 3], spec: spec([3, 3], [1, 1], [0, 2, 1, 0]) },
  { x: [2, 9, 8, 3], w: [3, 3, 3, 4], spec: spec([1, 1], [2, 2], [2, 2, 2, 2]) },
  { x: [2, 9, 9, 3], w: [3, 3, 3, 4], spec: spec([2, 2], [2, 2], [1, 2, 0, 1]) },
  { x: [2, 8, 8, 3], w: [3, 3, 3, 4], spec: spec([3, 2], [1, 1], [0, 1, 2, 0]) },
  { x: [2, 11, 11, 2], w: [5, 5, 2, 3], spec: spec([2, 2], [1, 1], [2, 2, 2, 2]) },
  { x: [2, 10, 10, 2], w: [5, 5, 2, 3], spec: spec([1, 1], [1, 1], [2, 2, 2, 2]) },
  { x: [2, 6, 6, 4], w: [1, 1, 4, 5], spec: spec([2, 2], [1, 1], [0, 0, 0, 0]) },
  { x: [2, 6, 7, 4], w: [3, 3, 1, 4], spec: spec([1, 1], [1, 1], [1, 1, 1, 1], 4) },
  { x: [2, 7, 7, 4], w: [3, 3, 1, 8], spec: spec([2, 2], [1, 1], [1, 1, 1, 1], 4) },
  { x: [2, 9, 9, 4], w: [3, 3, 1, 4], spec: spec([1, 1], [2, 2], [2, 2, 2, 2], 4) },
  { x: [2, 9, 9, 4], w: [3, 3, 1, 4], spec: spec([2, 2], [2, 2], [2, 2, 2, 2], 4) },
  { x: [2, 8, 8, 4], w: [3, 3, 1, 4], spec: spec([3, 2], [1, 1], [1, 0, 1, 1], 4) },
  { x: [2, 6, 6, 4], w: [3, 3, 2, 6], spec: spec([1, 1], [1, 1], [1, 1, 1, 1], 2) },
  { x: [2, 7, 7, 4], w: [3, 3, 2, 6], spec: spec([2, 2], [1, 1], [1, 1, 1, 1], 2) },
];

/** Forward output and gradients of sum(y * r) by direct loops in float64. */
function reference(c: Case, x: Float32Array, w: Float32Array) {
  const [n, h, wd, cin] = c.x;
  const [kh, kw, cpg, cout] = c.w;
  const opg = cout / c.spec.group;
  const [sh, sw] = c.spec.strides;
  const [dh, dw] = c.spec.dilations;
  const [pt, pl, pb, pr] = c.spec.pads;
  const oh = Math.floor((h + pt + pb - ((kh - 1) * dh + 1)) / sh) + 1;
  const ow = Math.floor((wd + pl + pr - ((kw - 1) * dw + 1)) / sw) + 1;
  const rr = mulberry32(99);
  const r = Float32Array.from({ length: n * oh * ow * cout }, () => rr() * 2 - 1);
  const y = new Float64Array(r.length);
  const dx = new Float64Array(x.length);
  const dW = new Float64Array(w.length);
  for (let b = 0; b < n; b++) for (let i = 0; i < oh; i++) for (let j = 0; j < ow; j++) for (let co = 0; co < cout; co++) {
    const g = Math.floor(co / opg);
    const yi = ((b * oh + i) * ow + j) * cout + co;
    for (let u = 0; u < kh; u++) for (let v = 0; v < kw; v++) {
      const hi = i * sh + u * dh - pt;
      const wi = j * sw + v * dw - pl;
      if (hi < 0 || hi >= h || wi < 0 || wi >= wd) continue;
      for (let ci = 0; ci < cpg; ci++) {
        const xi = ((b * h + hi) * wd + wi) * cin + g * cpg + ci;
        const wIdx = ((u * kw + v) * cpg + ci) * cout + co;
        y[yi] += x[xi] * w[wIdx];
        dx[xi] += r[yi] * w[wIdx];
        dW[wIdx] += r[yi] * x[xi];
      }
    }
  }
  return { y, dx, dW, r, outShape: [n, oh, ow, cout] };
}

function relDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < b.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return diff / Math.max(scale, 1e-9);
}

for (const c of CASES) {
  const label = `x ${c.x.join('x')} w ${c.w.join('x')} stride ${c.spec.strides} dilation ${c.spec.dilations} pads ${c.spec.pads} group ${c.spec.group}`;
  test(`conv gradients: ${label}`, async () => {
    const r1 = mulberry32(1);
    const r2 = mulberry32(2);
    const xv = Float32Array.from({ length: c.x.reduce((a, b) => a * b) }, () => r1() * 2 - 1);
    const wv = Float32Array.from({ length: c.w.reduce((a, b) => a * b) }, () => r2() * 2 - 1);
    const ref = reference(c, xv, wv);
    const before = tf.memory().numTensors;
    // Every combination of needed gradients, as the executor asks for them.
    for (const need of [{ x: true, w: true }, { x: true, w: false }, { x: false, w: true }]) {
      const x = tf.tensor4d(xv, c.x);
      const w = tf.tensor4d(wv, c.w);
      const r = tf.tensor(ref.r, ref.outShape);
      const xs = [need.x ? x : null, need.w ? w : null].filter((t): t is TF.Tensor4D => t !== null);
      const { value, grads } = tf.valueAndGrads((...args: TF.Tensor[]) => {
        const xi = need.x ? (args[0] as TF.Tensor4D) : x;
        const wi = need.w ? (args[need.x ? 1 : 0] as TF.Tensor4D) : w;
        return tf.sum(tf.mul(conv2d(tf, xi, wi, c.spec, need), r));
      })(xs);
      const y = tf.tidy(() => conv2d(tf, x, w, c.spec, { x: false, w: false }));
      assert.ok(relDiff(await y.data(), ref.y) < 1e-5, 'forward');
      let k = 0;
      if (need.x) assert.ok(relDiff(await grads[k++].data(), ref.dx) < 1e-5, `input gradient (${JSON.stringify(need)})`);
      if (need.w) assert.ok(relDiff(await grads[k++].data(), ref.dW) < 1e-5, `filter gradient (${JSON.stringify(need)})`);
      tf.dispose([x, w, r, value, y, ...grads]);
    }
    assert.equal(tf.memory().numTensors, before, 'no tensors left behind');
  });
}

async function graphGradients(name: string, gradients: 'kprune' | 'tfjs'): Promise<Map<string, Float32Array>> {
  const model = await readOnnxModel(path.join(FIXTURES, 'models', name));
  const layers = findConv3x3(model).layers;
  const graph = OnnxTfjsGraph.compile(decodeGraph(model), tf, { gradients });
  const weights = graph.loadWeights({ trainable: layers.map((l) => l.id) });
  const rx = mulberry32(3);
  const x = tf.tensor(Float32Array.from({ length: 784 }, () => rx()), [1, 1, 28, 28]);
  const r = tf.tensor(Float32Array.from({ length: 10 }, (_, i) => Math.sin(i)), [1, 10]);
  const { value, grads } = tf.variableGrads(() => tf.sum(tf.mul(graph.run(weights, new Map([['input', x]])).get(graph.outputs[0])!, r)));
  const out = new Map<string, Float32Array>();
  for (const [id, v] of weights.variables) out.set(id, Float32Array.from(await grads[v.name].data()));
  tf.dispose([x, r, value, ...Object.values(grads)]);
  weights.dispose();
  return out;
}

test('whole-graph gradients equal TF.js\'s own backprop kernels (cpu backend): resnet, dwsep', async () => {
  await trainingRuntime('cpu');
  try {
    for (const name of ['resnet-fmnist.onnx', 'dwsep-fmnist.onnx']) {
      const ours = await graphGradients(name, 'kprune');
      const theirs = await graphGradients(name, 'tfjs');
      assert.equal(ours.size, theirs.size);
      for (const [id, g] of ours) assert.ok(relDiff(g, theirs.get(id)!) < 1e-4, `${name} ${id}: ${relDiff(g, theirs.get(id)!)}`);
    }
  } finally {
    await trainingRuntime(defaultBackend);
  }
});
