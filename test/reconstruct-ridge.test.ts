/**
 * Reconstruction at the ridge users get (1e-3), against the ridge solution computed here directly:
 * the patch matrix A and the targets Y built by plain loops, the normal equations in float64,
 * (A^T A + lambda I) w = A^T Y + lambda w0 with lambda = ridge x mean diagonal of A^T A and w0 the
 * original weights, solved by Gaussian elimination. The targets come from weights that do not
 * have the shape, so the ridge and its pull towards w0 change the answer (checked below).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Conv3x3Layer, ConvUse, convKind } from '../src/model/conv.js';
import { LayerStats, RowSampler } from '../src/core/recover/layer-stats.js';
import { DEFAULT_RIDGE, layerSampler, reconstruct } from '../src/core/recover/reconstruct.js';
import { ActivationSource, rerunSource } from '../src/core/recover/propagation.js';
import { maskPositions, parseMask } from '../src/core/lattice.js';
import { maskWeights } from '../src/core/reshape.js';
import { conv2d } from './helpers/conv-reference.js';
import { randomFloats } from './helpers/onnx-builder.js';

interface Case { name: string; out: number; inPerGroup: number; group: number; stride: [number, number]; dilation: [number, number]; pads: [number, number, number, number]; h: number; w: number }

const CASES: Case[] = [
  { name: 'standard, 8x7', out: 5, inPerGroup: 3, group: 1, stride: [1, 1], dilation: [1, 1], pads: [1, 1, 1, 1], h: 8, w: 7 },
  { name: 'stride 2, asymmetric pads, 9x8', out: 4, inPerGroup: 3, group: 1, stride: [2, 2], dilation: [1, 1], pads: [0, 1, 1, 0], h: 9, w: 8 },
  { name: 'dilated, 9x7', out: 3, inPerGroup: 2, group: 1, stride: [1, 1], dilation: [2, 2], pads: [2, 2, 2, 2], h: 9, w: 7 },
  { name: 'grouped, 7x9', out: 6, inPerGroup: 2, group: 3, stride: [1, 2], dilation: [1, 1], pads: [1, 1, 1, 1], h: 7, w: 9 },
  { name: 'depthwise, 8x7', out: 4, inPerGroup: 1, group: 4, stride: [2, 1], dilation: [1, 1], pads: [1, 1, 1, 1], h: 8, w: 7 },
];
const MASK = parseMask('010/111/010');
const BATCH = 3;

function layerOf(c: Case, weights: Float32Array, bias: Float32Array): { layer: Conv3x3Layer; use: ConvUse } {
  const use: ConvUse = { node: c.name, input: 'x', output: 'y', group: c.group, strides: c.stride, dilations: c.dilation, pads: c.pads, autoPad: 'NOTSET', biasValues: bias };
  return {
    layer: { id: 'w', name: c.name, index: 0, uses: [use], outChannels: c.out, inChannelsPerGroup: c.inPerGroup, group: c.group, kind: convKind(c.group, c.out, c.inPerGroup), weights },
    use,
  };
}

/** Solves the n x n system m x = b (float64, partial pivoting); m and b are overwritten. */
function gaussSolve(m: Float64Array, b: Float64Array, n: number): Float64Array {
  for (let col = 0; col < n; col++) {
    let p = col;
    for (let r = col + 1; r < n; r++) if (Math.abs(m[r * n + col]) > Math.abs(m[p * n + col])) p = r;
    if (p !== col) {
      for (let k = 0; k < n; k++) [m[col * n + k], m[p * n + k]] = [m[p * n + k], m[col * n + k]];
      [b[col], b[p]] = [b[p], b[col]];
    }
    for (let r = col + 1; r < n; r++) {
      const f = m[r * n + col] / m[col * n + col];
      for (let k = col; k < n; k++) m[r * n + k] -= f * m[col * n + k];
      b[r] -= f * b[col];
    }
  }
  const x = new Float64Array(n);
  for (let r = n - 1; r >= 0; r--) {
    let s = b[r];
    for (let k = r + 1; k < n; k++) s -= m[r * n + k] * x[k];
    x[r] = s / m[r * n + r];
  }
  return x;
}

/**
 * The ridge solution from first principles, every output position of every image a row. `pull`
 * false leaves out lambda w0 (a ridge towards zero), to show the test can tell the two apart.
 */
function directRidge(c: Case, x: Float32Array, y: { data: Float32Array; dims: number[] }, bias: Float32Array, w0: Float32Array, ridge: number, pull = true): Float32Array {
  const kept = maskPositions(MASK);
  const k = kept.length;
  const cin = c.inPerGroup * c.group;
  const [, , ho, wo] = y.dims;
  const outsPerGroup = c.out / c.group;
  const n = c.inPerGroup * k;
  const result = new Float32Array(w0.length);
  for (let g = 0; g < c.group; g++) {
    const rows: Float64Array[] = [];
    const targets: Float64Array[] = [];
    for (let b = 0; b < BATCH; b++) {
      for (let oy = 0; oy < ho; oy++) {
        for (let ox = 0; ox < wo; ox++) {
          const row = new Float64Array(n);
          for (let ci = 0; ci < c.inPerGroup; ci++) {
            for (let j = 0; j < k; j++) {
              const iy = oy * c.stride[0] - c.pads[0] + Math.floor(kept[j] / 3) * c.dilation[0];
              const ix = ox * c.stride[1] - c.pads[1] + (kept[j] % 3) * c.dilation[1];
              if (iy >= 0 && iy < c.h && ix >= 0 && ix < c.w) row[ci * k + j] = x[((b * cin + g * c.inPerGroup + ci) * c.h + iy) * c.w + ix];
            }
          }
          rows.push(row);
          targets.push(Float64Array.from({ length: outsPerGroup }, (_, o) => {
            const oc = g * outsPerGroup + o;
            return y.data[((b * c.out + oc) * ho + oy) * wo + ox] - bias[oc];
          }));
        }
      }
    }
    const gram = new Float64Array(n * n);
    for (const r of rows) for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) gram[i * n + j] += r[i] * r[j];
    let trace = 0;
    for (let i = 0; i < n; i++) trace += gram[i * n + i];
    const lambda = ridge * (trace / n);
    for (let o = 0; o < outsPerGroup; o++) {
      const oc = g * outsPerGroup + o;
      const idx = (ci: number, p: number) => (oc * c.inPerGroup + ci) * 9 + p;
      const m = Float64Array.from(gram);
      for (let i = 0; i < n; i++) m[i * n + i] += lambda;
      const rhs = new Float64Array(n);
      rows.forEach((r, t) => { for (let i = 0; i < n; i++) rhs[i] += r[i] * targets[t][o]; });
      if (pull) for (let ci = 0; ci < c.inPerGroup; ci++) for (let j = 0; j < k; j++) rhs[ci * k + j] += lambda * w0[idx(ci, kept[j])];
      const sol = gaussSolve(m, rhs, n);
      for (let ci = 0; ci < c.inPerGroup; ci++) for (let j = 0; j < k; j++) result[idx(ci, kept[j])] = sol[ci * k + j];
    }
  }
  return result;
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

function setup(c: Case) {
  const n = c.out * c.inPerGroup * 9;
  const w0 = randomFloats(n, 31); // the original weights: the ridge pulls towards them
  const truth = randomFloats(n, 32); // what produced the targets: not of the shape, not w0
  const bias = randomFloats(c.out, 33);
  const dims = [BATCH, c.inPerGroup * c.group, c.h, c.w];
  const x = randomFloats(dims.reduce((a, b) => a * b, 1), 34);
  const y = conv2d(x, dims, { weights: truth, bias, out: c.out, inPerGroup: c.inPerGroup, group: c.group, stride: c.stride, dilation: c.dilation, pads: c.pads });
  return { w0, bias, dims, x, y };
}

for (const c of CASES) {
  test(`the solve at ridge 1e-3 is the ridge solution towards the original weights: ${c.name}`, async () => {
    const { w0, bias, dims, x, y } = setup(c);
    const { layer, use } = layerOf(c, w0, bias);
    const stats = new LayerStats(layer, maskPositions(MASK));
    await stats.accumulate({ dims, data: x }, y, use, new RowSampler(10_000, 1));
    await stats.flush();
    const got = await stats.solve(w0, 1e-3);
    const want = directRidge(c, x, y, bias, w0, 1e-3);
    const scale = Math.max(...want.map(Math.abs));
    const tol = 1e-5 * scale;
    assert.ok(maxAbsDiff(got, want) <= tol, `largest difference ${maxAbsDiff(got, want)} (scale ${scale})`);
    // The test can tell: a ridge towards zero, or almost no ridge, gives clearly other weights.
    assert.ok(maxAbsDiff(directRidge(c, x, y, bias, w0, 1e-3, false), want) > 30 * tol, 'the pull towards w0 matters here');
    assert.ok(maxAbsDiff(directRidge(c, x, y, bias, w0, 1e-9), want) > 30 * tol, 'the ridge strength matters here');
    // Dropped positions are exactly zero.
    assert.deepEqual(got, maskWeights(got, c.out * c.inPerGroup, MASK));
  });
}

test('reconstruct() without a ridge option solves at the default ridge, towards the original weights', async () => {
  const c = CASES[0]; // 8x7 output: 56 positions per image, all of them rows (the default takes up to 64)
  const { w0, bias, dims, x, y } = setup(c);
  const { layer } = layerOf(c, w0, bias);
  const masked = maskWeights(w0, c.out * c.inPerGroup, MASK);
  const activations: ActivationSource = {
    batch: BATCH,
    async forEachBatch(runs, visit) {
      // One layer: its input does not depend on the weights; its target is the original's output.
      assert.deepEqual(runs.map((r) => r.fetch), [['x'], ['y']]);
      await visit([new Map([['x', { dims, data: x }]]), new Map([['y', y]])]);
    },
  };
  // The whole model per layer (one layer here), with the rows the pipeline would sample by default.
  const source = rerunSource(activations, new Map([['w', w0]]), (l) => layerSampler(l));
  const result = await reconstruct([layer], new Map([['w', w0]]), new Map([['w', MASK]]), new Map([['w', masked]]), source);
  const got = result.weights.get('w')!;
  const want = directRidge(c, x, y, bias, w0, 1e-3);
  const scale = Math.max(...want.map(Math.abs));
  assert.ok(maxAbsDiff(got, want) <= 1e-5 * scale, `largest difference ${maxAbsDiff(got, want)} (scale ${scale})`);
  assert.ok(result.layers[0].errorAfter < result.layers[0].errorBefore);
  assert.equal(result.layers[0].rows, BATCH * 56);
  assert.equal(DEFAULT_RIDGE, 1e-3, 'the default the README and the CLI help state');
});
