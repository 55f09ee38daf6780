/**
 * Layer-wise reconstruction on synthetic layers where the answer is known: when the target was
 * produced by weights that already have the shape, least squares must find them again, for plain,
 * grouped, depthwise, strided and dilated convolutions; and the errors it reports must match a
 * direct computation.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Conv3x3Layer, ConvUse, convKind } from '../src/model/conv.js';
import { LayerStats, RowSampler, jsGramEngine } from '../src/core/recover/layer-stats.js';
import { maskPositions, parseMask } from '../src/core/lattice.js';
import { maskWeights } from '../src/core/reshape.js';
import { createOrtGramEngine } from '../src/runtime/ort/gram-engine.js';
import { conv2d } from './helpers/conv-reference.js';
import { randomFloats } from './helpers/onnx-builder.js';

interface Case { name: string; out: number; inPerGroup: number; group: number; stride: [number, number]; dilation: [number, number]; pads: [number, number, number, number] }

const cases: Case[] = [
  { name: 'standard', out: 6, inPerGroup: 4, group: 1, stride: [1, 1], dilation: [1, 1], pads: [1, 1, 1, 1] },
  { name: 'strided, asymmetric pads', out: 5, inPerGroup: 3, group: 1, stride: [2, 2], dilation: [1, 1], pads: [0, 1, 1, 0] },
  { name: 'dilated', out: 4, inPerGroup: 3, group: 1, stride: [1, 1], dilation: [2, 2], pads: [2, 2, 2, 2] },
  { name: 'grouped', out: 6, inPerGroup: 2, group: 3, stride: [1, 1], dilation: [1, 1], pads: [1, 1, 1, 1] },
  { name: 'depthwise', out: 4, inPerGroup: 1, group: 4, stride: [2, 1], dilation: [1, 1], pads: [1, 1, 1, 1] },
];

function layerOf(c: Case, weights: Float32Array): { layer: Conv3x3Layer; use: ConvUse } {
  const use: ConvUse = { node: c.name, input: 'x', output: 'y', group: c.group, strides: c.stride, dilations: c.dilation, pads: c.pads, autoPad: 'NOTSET' };
  return {
    layer: { id: 'w', name: c.name, index: 0, uses: [use], outChannels: c.out, inChannelsPerGroup: c.inPerGroup, group: c.group, kind: convKind(c.group, c.out, c.inPerGroup), weights },
    use,
  };
}

for (const c of cases) {
  test(`reconstruction finds weights that already have the shape: ${c.name}`, async () => {
    const mask = parseMask('010/111/010');
    const n = c.out * c.inPerGroup * 9;
    const truth = maskWeights(randomFloats(n, 11), c.out * c.inPerGroup, mask);
    const bias = randomFloats(c.out, 12);
    const original = randomFloats(n, 13); // what the model had before: not the truth
    const dims = [3, c.inPerGroup * c.group, 9, 8];
    const x = randomFloats(dims.reduce((a, b) => a * b, 1), 14);
    const ref = { weights: truth, bias, out: c.out, inPerGroup: c.inPerGroup, group: c.group, stride: c.stride, dilation: c.dilation, pads: c.pads };
    const y = conv2d(x, dims, ref);
    const { layer, use } = layerOf(c, original);
    use.biasValues = bias;
    const stats = new LayerStats(layer, maskPositions(mask));
    await stats.accumulate({ dims, data: x }, y, use, new RowSampler(1000, 1));
    await stats.flush();
    const solved = await stats.solve(original, 1e-9);
    for (let i = 0; i < n; i++) assert.ok(Math.abs(solved[i] - truth[i]) < 1e-4, `${i}: ${solved[i]} vs ${truth[i]}`);
    assert.ok(await stats.relativeError(solved) < 1e-5);
    // The reported error of other weights equals the directly computed one.
    const masked = maskWeights(original, c.out * c.inPerGroup, mask);
    const yMasked = conv2d(x, dims, { ...ref, weights: masked });
    let num = 0;
    let den = 0;
    for (let i = 0; i < y.data.length; i++) {
      num += (y.data[i] - yMasked.data[i]) ** 2;
      den += y.data[i] ** 2;
    }
    assert.ok(Math.abs(await stats.relativeError(masked) - Math.sqrt(num / den)) < 1e-6);
  });
}

test('sub-statistics for fewer positions equal statistics gathered for them directly', async () => {
  const c = cases[0];
  const w = randomFloats(c.out * c.inPerGroup * 9, 3);
  const { layer, use } = layerOf(c, w);
  const dims = [2, 4, 7, 7];
  const x = randomFloats(2 * 4 * 49, 4);
  const y = conv2d(x, dims, { weights: w, out: c.out, inPerGroup: c.inPerGroup, group: 1, stride: [1, 1], dilation: [1, 1], pads: [1, 1, 1, 1] });
  const all = new LayerStats(layer, [0, 1, 2, 3, 4, 5, 6, 7, 8]);
  await all.accumulate({ dims, data: x }, y, use, new RowSampler(1000, 1));
  await all.flush();
  const positions = maskPositions(parseMask('110/111/110'));
  const direct = new LayerStats(layer, positions);
  await direct.accumulate({ dims, data: x }, y, use, new RowSampler(1000, 1));
  await direct.flush();
  const sub = all.select(positions);
  assert.deepEqual(Array.from(sub.groups[0].gram).map((v) => v.toFixed(6)), Array.from(direct.groups[0].gram).map((v) => v.toFixed(6)));
  assert.deepEqual(Array.from(sub.groups[0].cross).map((v) => v.toFixed(6)), Array.from(direct.groups[0].cross).map((v) => v.toFixed(6)));
});

test('the onnxruntime Gram engine agrees with the JavaScript one', async () => {
  const engine = await createOrtGramEngine();
  try {
    const n = 17;
    const o = 5;
    const r = 300;
    const at = Float64Array.from(randomFloats(n * r, 21));
    const yt = Float64Array.from(randomFloats(o * r, 22));
    const a = await engine.product(at, yt, n, o, r);
    const b = await jsGramEngine.product(at, yt, n, o, r);
    for (let i = 0; i < a.gram.length; i++) assert.ok(Math.abs(a.gram[i] - b.gram[i]) < 1e-9);
    for (let i = 0; i < a.cross.length; i++) assert.ok(Math.abs(a.cross[i] - b.cross[i]) < 1e-9);
  } finally {
    await engine.release();
  }
});

test('row sampling is seeded and bounded', () => {
  const a = new RowSampler(10, 5).positions(100);
  const b = new RowSampler(10, 5).positions(100);
  const c = new RowSampler(10, 6).positions(100);
  assert.deepEqual(a, b);
  assert.notDeepEqual(a, c);
  assert.equal(a.length, 10);
  assert.equal(new Set(a).size, 10);
  assert.equal(new RowSampler(10, 5).positions(7).length, 7);
});
