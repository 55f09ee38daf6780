/**
 * Every figure of the report against a value computed by hand: top-1, top-5, agreement, MSE,
 * cosine and PSNR (report/metrics.ts), energy kept (core/reshape.ts), parameters and MACs of a
 * model whose every multiply-accumulate is counted below (report/measure.ts, through prune), and
 * the quality gate at, above and below its boundary, with and without labels (pipeline/gate.ts),
 * and file sizes raw and gzip (level 6, as the README states).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import path from 'node:path';
import onnxProto from 'onnx-proto';
import { quality } from '../src/core/metrics.js';
import { checkGate } from '../src/pipeline/gate.js';
import { applyPlan } from '../src/core/reshape.js';
import { Conv3x3Layer, convKind } from '../src/model/conv.js';
import { PrunePlan } from '../src/core/plan.js';
import { prune } from '../src/pipeline/prune.js';
import { concat, convNode, floatTensor, lenField, valueInfo } from './helpers/onnx-builder.js';
import { tempDir } from './helpers/tmp.js';

const { onnx } = onnxProto;
const dir = tempDir('kprune-figures-');

// Seven classes (top-5 is defined above five), four samples. Worked out by hand:
//   s0: label 1, highest score at 1                 -> top-1 hit, top-5 hit
//   s1: label 5, five classes score higher (rank 6) -> top-1 miss, top-5 miss (a top-6 would hit)
//   s2: label 4, two classes score higher (rank 3)  -> top-1 miss, top-5 hit
//   s3: label 6, highest score at 6                 -> top-1 hit, top-5 hit
// The original's top-1 classes are 1, 3, 6, 6; the model's 1, 0, 6, 6: three of four agree.
const SCORES = Float32Array.of(
  0.1, 0.9, 0.3, 0.2, 0.5, 0.4, 0.0,
  7, 6, 5, 4, 3, 2, 1,
  1, 2, 3, 4, 5, 6, 7,
  0, 0, 0, 0, 0, 1, 2,
);
const LABELS = Int32Array.of(1, 5, 4, 6);
const ORIGINAL = Float32Array.of(
  0, 1, 0, 0, 0, 0, 0,
  0, 0, 0, 9, 0, 0, 0,
  0, 0, 0, 0, 0, 0, 1,
  0, 0, 0, 0, 0, 0, 3,
);

test('top-1, top-5 and agreement of a classifier, by hand', () => {
  const q = quality({ data: SCORES, sampleDims: [7] }, LABELS, { data: ORIGINAL, sampleDims: [7] });
  assert.equal(q.samples, 4);
  assert.equal(q.top1, 2 / 4);
  assert.equal(q.top5, 3 / 4);
  assert.equal(q.agreement, 3 / 4);
  assert.equal(q.mse, undefined, 'class scores get no distance figures');
  // The original against itself agrees fully; without labels there is no accuracy.
  const self = quality({ data: ORIGINAL, sampleDims: [7] }, undefined, { data: ORIGINAL, sampleDims: [7] });
  assert.equal(self.agreement, 1);
  assert.equal(self.top1, undefined);
  // Labels that the model gets all right and all wrong: the extremes.
  assert.equal(quality({ data: SCORES, sampleDims: [7] }, Int32Array.of(1, 0, 6, 6)).top1, 1);
  assert.equal(quality({ data: SCORES, sampleDims: [7] }, Int32Array.of(0, 6, 0, 0)).top1, 0);
  // The lowest score of the seven is in no top-5 (s0, s1, s2); in s3 five classes tie at 0 below
  // two higher ones, and each of them is in the top 5 (only strictly higher scores count).
  assert.equal(quality({ data: SCORES, sampleDims: [7] }, Int32Array.of(6, 6, 0, 0)).top5, 1 / 4);
  assert.equal(quality({ data: SCORES, sampleDims: [7] }, Int32Array.of(2, 4, 4, 4)).top5, 1);
});

test('top-5 only with more than five classes; agreement counts disagreements', () => {
  // Five classes: top-5 would be every sample, so it is not reported.
  const five = quality({ data: Float32Array.of(1, 2, 3, 4, 5, 5, 4, 3, 2, 1), sampleDims: [5] }, Int32Array.of(4, 4), { data: Float32Array.of(0, 0, 0, 0, 1, 0, 0, 0, 0, 1), sampleDims: [5] });
  assert.equal(five.top1, 1 / 2);
  assert.equal(five.top5, undefined);
  assert.equal(five.agreement, 1 / 2);
  // Two classes, three samples, one agreement.
  const two = quality({ data: Float32Array.of(1, 0, 0, 1, 0, 1), sampleDims: [2] }, undefined, { data: Float32Array.of(0, 1, 1, 0, 0, 1), sampleDims: [2] });
  assert.equal(two.agreement, 1 / 3);
});

test('MSE, cosine and PSNR of outputs that are not class scores, by hand', () => {
  // Differences 0,0,0,-2, 0,0,-1,0: squared error 5 over 8 values.
  // dot 39, |a|^2 31, |b|^2 52; the original's range is 6 - 0 = 6.
  const out = { data: Float32Array.of(1, 2, 3, 4, 0, 0, 0, 1), sampleDims: [2, 2] };
  const orig = { data: Float32Array.of(1, 2, 3, 6, 0, 0, 1, 1), sampleDims: [2, 2] };
  const q = quality(out, undefined, orig);
  assert.equal(q.samples, 2);
  assert.equal(q.mse, 5 / 8);
  assert.ok(Math.abs(q.cosine! - 39 / Math.sqrt(31 * 52)) < 1e-12, `cosine ${q.cosine}`);
  assert.ok(Math.abs(q.psnr! - 10 * Math.log10(36 / (5 / 8))) < 1e-9, `psnr ${q.psnr}`);
  assert.equal(q.top1, undefined);
  assert.equal(q.agreement, undefined);
  // A range that does not start at zero: original 2..5 (range 3), one value off by 1 of 4.
  const shifted = quality({ data: Float32Array.of(2, 3, 4, 6), sampleDims: [2, 2] }, undefined, { data: Float32Array.of(2, 3, 4, 5), sampleDims: [2, 2] });
  assert.equal(shifted.mse, 1 / 4);
  assert.ok(Math.abs(shifted.psnr! - 10 * Math.log10(9 / 0.25)) < 1e-9, `psnr ${shifted.psnr}`);
  assert.ok(Math.abs(shifted.cosine! - (4 + 9 + 16 + 30) / Math.sqrt((4 + 9 + 16 + 36) * (4 + 9 + 16 + 25))) < 1e-12);
  // Identical outputs: no error, cosine 1, PSNR infinite (null in JSON).
  const same = quality(orig, undefined, orig);
  assert.equal(same.mse, 0);
  assert.ok(Math.abs(same.cosine! - 1) < 1e-12);
  assert.equal(same.psnr, null);
  // Opposite outputs: cosine -1.
  assert.ok(Math.abs(quality({ data: Float32Array.of(-1, -2), sampleDims: [2, 1] }, undefined, { data: Float32Array.of(1, 2), sampleDims: [2, 1] }).cosine! + 1) < 1e-12);
});

const figures = (top1?: number, agreement?: number) => ({ samples: 1000, ...(top1 !== undefined ? { top1 } : {}), ...(agreement !== undefined ? { agreement } : {}) });

test('the gate with labels: top-1 points lost, at, above and below the boundary', () => {
  // 900 -> 890 of 1000 correct: exactly 1 point lost (in floating point 0.9 - 0.89 is not 0.01).
  const at = checkGate(1, figures(0.9), figures(0.89, 0.95));
  assert.equal(at.metric, 'top1', 'labels win over agreement');
  assert.ok(Math.abs(at.drop! - 1) < 1e-9);
  assert.equal(at.passed, true, `a drop of exactly the allowed points passes: ${at.reason}`);
  assert.match(at.reason, /top-1 90\.00% -> 89\.00%: 1\.00 points lost, at most 1 allowed/);
  const above = checkGate(1, figures(0.9), figures(0.889));
  assert.ok(Math.abs(above.drop! - 1.1) < 1e-9);
  assert.equal(above.passed, false, 'one sample more lost fails');
  const below = checkGate(1, figures(0.9), figures(0.891));
  assert.equal(below.passed, true);
  // A model that got better: a negative drop passes even a zero gate.
  const better = checkGate(0, figures(0.5), figures(0.75));
  assert.equal(better.drop, -25);
  assert.equal(better.passed, true);
  assert.equal(checkGate(0, figures(0.75), figures(0.75)).passed, true, 'no loss passes a zero gate');
  assert.equal(checkGate(0, figures(0.75), figures(0.749)).passed, false);
  assert.equal(checkGate(24.9, figures(0.75), figures(0.5)).passed, false);
  assert.equal(checkGate(25, figures(0.75), figures(0.5)).passed, true);
});

test('the gate without labels: points of agreement below 100, at, above and below the boundary', () => {
  const at = checkGate(1, figures(undefined), figures(undefined, 0.99));
  assert.equal(at.metric, 'agreement');
  assert.ok(Math.abs(at.drop! - 1) < 1e-9);
  assert.equal(at.passed, true, at.reason);
  assert.match(at.reason, /agreement with the original 99\.00%, 1\.00 points below 100, at most 1 allowed/);
  assert.equal(checkGate(1, figures(undefined), figures(undefined, 0.989)).passed, false);
  assert.equal(checkGate(1, figures(undefined), figures(undefined, 0.991)).passed, true);
  assert.equal(checkGate(0, figures(undefined), figures(undefined, 1)).passed, true);
  assert.equal(checkGate(0, figures(undefined), figures(undefined, 0.999)).passed, false);
  assert.equal(checkGate(100, figures(undefined), figures(undefined, 0)).passed, true);
});

test('the gate cannot pass what was not measured, and refuses a bad threshold', () => {
  const none = checkGate(100, null, null);
  assert.equal(none.passed, false);
  assert.equal(none.drop, null);
  assert.match(none.reason, /not measured/);
  const notClassifier = checkGate(100, { samples: 4, mse: 0 }, { samples: 4, mse: 0, cosine: 1, psnr: null });
  assert.equal(notClassifier.passed, false);
  assert.equal(notClassifier.drop, null);
  assert.match(notClassifier.reason, /not a classifier/);
  assert.throws(() => checkGate(-1, figures(0.5), figures(0.5)), /--max-drop must be a number of points >= 0, got -1/);
  assert.throws(() => checkGate(NaN, figures(0.5), figures(0.5)), /--max-drop/);
});

/** One layer, one use, weights given: enough for applyPlan. */
function layerOf(id: string, out: number, inPerGroup: number, weights: Float32Array): Conv3x3Layer {
  return {
    id, name: id, index: 0, outChannels: out, inChannelsPerGroup: inPerGroup, group: 1, kind: convKind(1, out, inPerGroup), weights,
    uses: [{ node: id, input: 'x', output: 'y', group: 1, strides: [1, 1], dilations: [1, 1], pads: [1, 1, 1, 1], autoPad: 'NOTSET' }],
  };
}

function planOf(entries: { layer: string; mask: string; params: number }[]): PrunePlan {
  return {
    planVersion: 1, spec: 'test', keptFraction: 0,
    entries: entries.map((e) => ({ ...e, name: e.layer, shape: e.mask, positions: [...e.mask].filter((c) => c === '1').length, keptParams: 0, chosenBy: 'fixed' as const })),
  };
}

test('energy kept per layer, by hand', () => {
  // Every kernel 1..9 row-major; the cross keeps positions 1, 3, 4, 5, 7: values 2, 4, 5, 6, 8.
  // Kept energy 4 + 16 + 25 + 36 + 64 = 145 of 1 + 4 + ... + 81 = 285, for any number of kernels.
  const ramp = Float32Array.from({ length: 2 * 3 * 9 }, (_, i) => (i % 9) + 1);
  // Energy only in the corners: the cross keeps none of it; the x keeps all of it.
  const corners = Float32Array.from({ length: 9 }, (_, i) => ([0, 2, 6, 8].includes(i) ? 3 : 0));
  // Two kernels, (1, 0, ..., 0) and (0, 2, 0, ..., 0); the mask 010/010/000 keeps the second's 2:
  // 4 of 1 + 4.
  const mixed = Float32Array.from({ length: 18 }, (_, i) => (i === 0 ? 1 : i === 10 ? 2 : 0));
  const layers = [layerOf('ramp', 2, 3, ramp), layerOf('corners', 1, 1, corners), layerOf('cornersX', 1, 1, corners), layerOf('mixed', 2, 1, mixed)];
  const reshaped = applyPlan(layers, planOf([
    { layer: 'ramp', mask: '010/111/010', params: 54 },
    { layer: 'corners', mask: '010/111/010', params: 9 },
    { layer: 'cornersX', mask: '101/010/101', params: 9 },
    { layer: 'mixed', mask: '010/010/000', params: 18 },
  ]));
  assert.ok(Math.abs(reshaped[0].energyKept - 145 / 285) < 1e-12, `ramp ${reshaped[0].energyKept}`);
  assert.equal(reshaped[1].energyKept, 0);
  assert.equal(reshaped[2].energyKept, 1);
  assert.ok(Math.abs(reshaped[3].energyKept - 4 / 5) < 1e-12, `mixed ${reshaped[3].energyKept}`);
  // And the weights that go with it: zeros exactly where the mask drops.
  assert.deepEqual(Array.from(reshaped[0].weights.subarray(0, 9)), [0, 2, 0, 4, 5, 6, 0, 8, 0]);
});

/**
 * input [1,3,9,7]
 *  -> conv1: 3->4, 3x3, stride 2, pads 1: output [1,4,5,4] = 80 values x 3*9 = 2160 MACs
 *  -> conv2: 4->6, 3x3, group 2, no pads: output [1,6,3,2] = 36 values x 2*9 = 648 MACs
 *  -> Flatten [1,36] -> Gemm with B [10,36], transB: 10 values x 36 = 360 MACs
 *  -> MatMul with [10,5]: 5 values x 10 = 50 MACs
 * Dense 3218, of which 2808 in 3x3 convolutions. Parameters: 108 + 4 (bias) + 108 + 360 + 50 = 630.
 */
function countedModel(): Uint8Array {
  const ones = (n: number, v = 0.5) => Float32Array.from({ length: n }, (_, i) => v + (i % 7) * 0.125);
  const tensors = [
    floatTensor('w1', [4, 3, 3, 3], ones(108)), floatTensor('b1', [4], ones(4)), floatTensor('w2', [6, 2, 3, 3], ones(108, -1)),
    floatTensor('fc', [10, 36], ones(360)), floatTensor('mm', [10, 5], ones(50)),
    { name: 'flat_shape', dims: [2], dataType: 7, int64Data: [1, 36] },
  ];
  const nodes = [
    convNode({ name: 'conv1', input: 'input', output: 'h1', weight: 'w1', bias: 'b1', strides: [2, 2], pads: [1, 1, 1, 1] }),
    { name: 'relu', opType: 'Relu', input: ['h1'], output: ['h2'] },
    convNode({ name: 'conv2', input: 'h2', output: 'h3', weight: 'w2', group: 2, pads: [0, 0, 0, 0] }),
    { name: 'flatten', opType: 'Reshape', input: ['h3', 'flat_shape'], output: ['h4'] },
    { name: 'gemm', opType: 'Gemm', input: ['h4', 'fc'], output: ['h5'], attribute: [{ name: 'transB', type: onnx.AttributeProto.AttributeType.INT, i: 1 }] },
    { name: 'matmul', opType: 'MatMul', input: ['h5', 'mm'], output: ['output'] },
  ];
  const graph = onnx.GraphProto.encode({
    name: 'counted', node: nodes, initializer: tensors,
    input: [valueInfo('input', [1, 3, 9, 7])], output: [valueInfo('output', [1, 5])],
  }).finish();
  const head = onnx.ModelProto.encode({ irVersion: 8, producerName: 'kprune-test', opsetImport: [{ domain: '', version: 13 }] }).finish();
  return concat([head, lenField(7, graph)]);
}

test('parameters and MACs of a hand-counted model, before and after the cross', async () => {
  const file = path.join(dir, 'counted.onnx');
  writeFileSync(file, countedModel());
  const report = await prune(file, { shape: 'cross', layout: 'masked', output: path.join(dir, 'counted.kpruned.onnx'), latencyRuns: 0 });
  const { before, after } = report;
  assert.equal(before.macs.status, 'measured');
  assert.equal(after.macs.status, 'measured');
  if (before.macs.status !== 'measured' || after.macs.status !== 'measured') return;
  const byNode = (m: typeof before.macs & { status: 'measured' }) => Object.fromEntries(m.nodes.map((n) => [n.node, [n.dense, n.effective, n.outputShape.join('x')]]));
  assert.deepEqual(byNode(before.macs), { conv1: [2160, 2160, '1x4x5x4'], conv2: [648, 648, '1x6x3x2'], gemm: [360, 360, '1x10'], matmul: [50, 50, '1x5'] });
  assert.equal(before.macs.dense, 3218);
  assert.equal(before.macs.effective, 3218);
  assert.equal(before.macs.conv3x3Dense, 2808);
  assert.equal(before.macs.conv3x3Effective, 2808);
  // The cross keeps 5 of 9 taps of every kernel: 2160 * 5/9 = 1200, 648 * 5/9 = 360.
  assert.deepEqual(byNode(after.macs), { conv1: [2160, 1200, '1x4x5x4'], conv2: [648, 360, '1x6x3x2'], gemm: [360, 360, '1x10'], matmul: [50, 50, '1x5'] });
  assert.equal(after.macs.dense, 3218, 'masked: the file still computes every tap');
  assert.equal(after.macs.effective, 1200 + 360 + 360 + 50);
  assert.equal(after.macs.conv3x3Effective, 1560);
  assert.deepEqual(before.params, { all: 630, conv3x3: 216, nonzero: 630, conv3x3Nonzero: 216 });
  assert.deepEqual(after.params, { all: 630, conv3x3: 216, nonzero: 630 - 96, conv3x3Nonzero: 120 });
  // Per layer: MACs and kept weights as counted above.
  const layer = Object.fromEntries(report.layers.map((l) => [l.id, l]));
  assert.deepEqual([layer.w1.macsBefore, layer.w1.macsAfterEffective, layer.w1.keptParams, layer.w1.nonzeroAfter], [2160, 1200, 60, 60]);
  assert.deepEqual([layer.w2.macsBefore, layer.w2.macsAfterEffective, layer.w2.keptParams, layer.w2.nonzeroAfter], [648, 360, 60, 60]);
  // Sizes: each file's bytes, and its gzip at level 6 (gzip's default, the README's figure).
  for (const [which, size] of [['before', before.size], ['after', after.size]] as const) {
    assert.equal(size.files.length, 1, which);
    const f = size.files[0];
    assert.equal(f.bytes, statSync(f.path).size, `${which} bytes`);
    assert.equal(f.gzipBytes, gzipSync(readFileSync(f.path), { level: 6 }).length, `${which} gzip`);
    assert.equal(size.bytes, f.bytes);
    assert.equal(size.gzipBytes, f.gzipBytes);
  }
});

test('non-zero counts and kept energy: from the analysis\'s position sums, equal to counting the weights', async () => {
  const { loadModel } = await import('../src/models/index.js');
  const { analyzeModel } = await import('../src/core/analysis.js');
  const { countNonzero, kernelCount } = await import('../src/model/conv.js');
  const { maskWeights } = await import('../src/core/reshape.js');
  const { FIXTURES } = await import('./helpers/tmp.js');
  // A model whose 3x3 kernels already have zeros (corners dropped), reshaped again to keep the corners.
  const crossed = path.join(dir, 'crossed.onnx');
  await prune(path.join(FIXTURES, 'models', 'vgg-fmnist.onnx'), { shape: 'cross', layout: 'masked', output: crossed, latencyRuns: 0, gzip: false });
  const r = await prune(crossed, { shape: 'x', layout: 'masked', output: path.join(dir, 'x.onnx'), latencyRuns: 0, gzip: false });
  const model = await loadModel(crossed);
  const analysis = analyzeModel(model.layers);
  const fromSums = applyPlan(model.layers, r.plan, analysis);
  const fromReads = applyPlan(model.layers, r.plan);
  for (const l of model.layers) {
    const mask = r.plan.entries.find((e) => e.layer === l.id)!;
    const masked = maskWeights(l.weights, kernelCount(l), (await import('../src/core/plan.js')).planMask(mask));
    const expected = { before: countNonzero(l.weights), kept: countNonzero(masked) };
    assert.ok(expected.kept < expected.before && expected.kept > 0, 'the corners were zero: only the centres are left');
    assert.deepEqual(fromSums.find((x) => x.id === l.id)!.nonzero, expected);
    assert.deepEqual(fromReads.find((x) => x.id === l.id)!.nonzero, expected);
    const energy = (w: Float32Array) => w.reduce((a, v) => a + v * v, 0);
    const kept = energy(masked) / energy(l.weights);
    assert.ok(Math.abs(fromSums.find((x) => x.id === l.id)!.energyKept - kept) < 1e-9);
    const reported = r.layers.find((x) => x.id === l.id)!;
    assert.deepEqual([reported.nonzeroBefore, reported.nonzeroAfter], [expected.before, expected.kept], `${l.name} as reported`);
  }
});
