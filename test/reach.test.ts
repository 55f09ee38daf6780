/**
 * Saying what a model can give before taking it: the share of parameters and MACs in 3x3 layers
 * per kind, `--budget-of macs`, and `auto` keeping full the layers that would save little of the
 * model at a large loss.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { analyze, analyzeModel, Conv3x3Layer, parseShapeSpec, planShapes, prune } from '../src/index.js';
import { reachOf } from '../src/core/reach.js';
import { randomFloats } from './helpers/onnx-builder.js';
import { FIXTURES, tempDir } from './helpers/tmp.js';

function layer(id: string, out: number, inPg: number, group: number): Conv3x3Layer {
  const kind = group === 1 ? 'standard' : inPg === 1 ? 'depthwise' : 'grouped';
  return { id, name: id, index: 0, uses: [], outChannels: out, inChannelsPerGroup: inPg, group, kind, weights: randomFloats(out * inPg * 9, out + inPg) };
}

test('the reach adds up per kind and says when little can be saved', () => {
  const layers = [layer('s', 8, 4, 1), layer('d', 16, 1, 16)];
  // 288 + 144 weights in 3x3 layers of a 10,000-weight model; MACs 1,000 + 9,000 of 100,000.
  const r = reachOf(layers, 10_000, { layerMacs: new Map([['s', 1000], ['d', 9000]]), modelMacs: 100_000 });
  assert.deepEqual(r.params, { model: 10_000, conv3x3: 432, standard: 288, grouped: 0, depthwise: 144 });
  assert.deepEqual(r.macs, { model: 100_000, conv3x3: 10_000, standard: 1000, grouped: 0, depthwise: 9000 });
  assert.ok(Math.abs(r.crossSaves.macs! - 0.1 * 4 / 9) < 1e-12);
  assert.equal(r.small, true);
  assert.match(r.summary, /4\.3% of the parameters \(standard 2\.9%, depthwise 1\.4%\)/);
  assert.match(r.summary, /little to gain/);
  const big = reachOf(layers, 500, { unknown: 'no run' });
  assert.equal(big.small, false);
  assert.equal(big.macs, null);
  assert.doesNotMatch(big.summary, /little/);
});

test('analyze states the reach of the depthwise fixture, with MACs from one run', async () => {
  const r = await analyze(path.join(FIXTURES, 'models', 'dwsep-fmnist.onnx'));
  assert.ok(r.reach.macs);
  assert.equal(r.reach.params.conv3x3, r.reach.params.standard + r.reach.params.grouped + r.reach.params.depthwise);
  assert.equal(r.reach.params.conv3x3, r.layers.reduce((a, l) => a + l.params, 0));
  assert.ok(r.reach.params.depthwise > 0 && r.reach.macs.depthwise > 0);
  assert.equal(r.reach.small, true);
  const noRun = await analyze(path.join(FIXTURES, 'models', 'dwsep-fmnist.onnx'), { run: false });
  assert.equal(noRun.reach.macs, null);
  assert.match(noRun.reach.macsUnknown ?? '', /not run/);
});

test('--budget-of macs spends the budget on MACs, and auto keeps full what saves little at a large loss', () => {
  // Same weights, but layer "big" computes 100x the MACs: counted in MACs, it is cut first.
  const a = layer('small', 8, 8, 1);
  const b = { ...layer('big', 8, 8, 1), weights: a.weights };
  const layers = [a, b];
  const analyses = analyzeModel(layers).layers;
  const layerMacs = new Map([['small', 100], ['big', 10_000]]);
  const plan = planShapes(layers, parseShapeSpec('auto'), analyses, { budget: 0.7, budgetOf: 'macs', layerMacs, protectBelow: 0 });
  assert.equal(plan.budgetOf, 'macs');
  assert.ok(plan.keptMacsFraction! <= 0.7 + 1e-9);
  assert.equal(plan.entries[0].shape, 'full');
  assert.notEqual(plan.entries[1].shape, 'full');
  // With losses from data: "small" loses a lot whatever its shape and saves under 1% of the model.
  const losses = new Map([['small', [0, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.6, 0.6, 0.7, 0.7, 0.8]], ['big', [0, 0.01, 0.01, 0.01, 0.01, 0.01, 0.01, 0.02, 0.02, 0.05, 0.05, 0.1]]]);
  const kept = planShapes(layers, parseShapeSpec('auto'), analyses, { budget: 0.9, losses, modelSize: 200_000, layerMacs });
  assert.equal(kept.entries[0].chosenBy, 'auto-protected');
  assert.equal(kept.entries[0].shape, 'full');
  const all = planShapes(layers, parseShapeSpec('auto'), analyses, { budget: 0.5, losses, modelSize: 200_000, layerMacs, protectBelow: 0 });
  assert.notEqual(all.entries[0].shape, 'full');
  assert.throws(() => planShapes(layers, parseShapeSpec('auto'), analyses, { budget: 0.5, losses, modelSize: 200_000, layerMacs }), /save little at a large loss/);
});

test('prune with --budget-of macs records the unit and the MACs kept, and reports the reach', async () => {
  const dir = tempDir();
  const r = await prune(path.join(FIXTURES, 'models', 'resnet-fmnist.onnx'), { shape: 'auto', budget: 0.6, budgetOf: 'macs', output: path.join(dir, 'r.onnx'), latencyRuns: 0 });
  assert.equal(r.plan.budgetOf, 'macs');
  assert.ok(r.plan.keptMacsFraction! <= 0.6 + 1e-9);
  assert.ok(r.reach.macs && r.reach.macs.conv3x3 > 0);
  assert.equal(r.reach.small, false);
  assert.equal(r.before.macs.status === 'measured' ? r.before.macs.conv3x3Dense : -1, r.reach.macs.conv3x3);
});
