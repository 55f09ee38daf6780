import { test } from 'node:test';
import assert from 'node:assert/strict';
import { analyzeModel, applyPlan, Conv3x3Layer, parseShapeSpec, planShapes, KpruneError } from '../src/index.js';
import { allocateBudget } from '../src/core/budget.js';
import { randomFloats } from './helpers/onnx-builder.js';

function layer(id: string, index: number, out: number, inPg: number, seed: number): Conv3x3Layer {
  return { id, name: `node_${id}`, index, uses: [], outChannels: out, inChannelsPerGroup: inPg, group: 1, kind: 'standard', weights: randomFloats(out * inPg * 9, seed) };
}

const layers = [layer('a', 0, 8, 4, 1), layer('b', 1, 16, 8, 2), layer('c', 2, 16, 16, 3), layer('d', 3, 4, 16, 4), layer('e', 4, 4, 4, 5)];
const analyses = analyzeModel(layers).layers;

test('qh assigns the four orientations in topological order, cycling', () => {
  const plan = planShapes(layers, parseShapeSpec('qh'), analyses);
  assert.deepEqual(plan.entries.map((e) => e.shape), ['qh-right', 'qh-left', 'qh-up', 'qh-down', 'qh-right']);
  assert.ok(Math.abs(plan.keptFraction - 7 / 9) < 1e-12);
});

test('auto stays within the budget and spends it where energy is', () => {
  for (const budget of [0.3, 0.5, 0.55, 0.6, 0.7, 0.8, 1]) {
    const plan = planShapes(layers, parseShapeSpec('auto'), analyses, { budget });
    assert.ok(plan.keptFraction <= budget + 1e-9, `budget ${budget}: kept ${plan.keptFraction}`);
    assert.ok(plan.entries.every((e) => e.chosenBy === 'auto-weights'));
  }
  assert.ok(planShapes(layers, parseShapeSpec('auto'), analyses, { budget: 1 }).entries.every((e) => e.shape === 'full'));
  assert.throws(() => planShapes(layers, parseShapeSpec('auto'), analyses, { budget: 0.1 }), /budget cannot be met/);
  assert.throws(() => planShapes(layers, parseShapeSpec('auto'), analyses, { budget: 1.5 }), KpruneError);
});

test('the budget allocator is optimal on a small case it can be checked by hand', () => {
  // Layer 0 loses a lot when cut, layer 1 little: the cut goes to layer 1.
  const choice = allocateBudget([
    [{ cost: 9, loss: 0 }, { cost: 5, loss: 0.9 }],
    [{ cost: 9, loss: 0 }, { cost: 5, loss: 0.1 }],
  ], 14);
  assert.deepEqual(choice, [0, 1]);
  // Slack left by the last cut is spent again. Greedy cuts A to 5 (slope 0.01), then B to 1 (total 6,
  // budget 11): the 5 left over buy A's full kernel back, a loss of 0.1 instead of 0.14.
  assert.deepEqual(allocateBudget([
    [{ cost: 9, loss: 0 }, { cost: 5, loss: 0.04 }, { cost: 1, loss: 0.2 }],
    [{ cost: 9, loss: 0 }, { cost: 1, loss: 0.1 }],
  ], 11), [0, 1]);
  // A cheaper option with no more loss dominates.
  assert.deepEqual(allocateBudget([[{ cost: 9, loss: 0.2 }, { cost: 7, loss: 0.1 }]], 9), [1]);
});

test('per-layer overrides win, unknown layer names are errors', () => {
  const spec = parseShapeSpec('cross');
  const plan = planShapes(layers, spec, analyses, { overrides: { node_c: { kind: 'fixed', name: 'x', mask: parseShapeSpec('x').kind === 'fixed' ? (parseShapeSpec('x') as { mask: number }).mask : 0 } } });
  assert.deepEqual(plan.entries.map((e) => e.shape), ['cross', 'cross', 'x', 'cross', 'cross']);
  assert.equal(plan.entries[2].chosenBy, 'override');
  assert.throws(() => planShapes(layers, spec, analyses, { overrides: { nope: { kind: 'fixed', name: 'x', mask: 0 } } }), /"nope"/);
});

test('applying a plan zeroes exactly the dropped positions and leaves the input alone', () => {
  const plan = planShapes(layers, parseShapeSpec('011/111/110'), analyses);
  const before = layers.map((l) => Float32Array.from(l.weights));
  const out = applyPlan(layers, plan);
  out.forEach((r, i) => {
    assert.deepEqual(layers[i].weights, before[i]);
    for (let k = 0; k < r.weights.length; k++) {
      const p = k % 9;
      const kept = [1, 2, 3, 4, 5, 6, 7].includes(p);
      assert.equal(r.weights[k], kept ? before[i][k] : 0);
    }
    assert.ok(r.energyKept > 0 && r.energyKept < 1);
  });
});
