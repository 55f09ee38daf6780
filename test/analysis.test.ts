import { test } from 'node:test';
import assert from 'node:assert/strict';
import { analyzeLayer, analyzeModel, Conv3x3Layer } from '../src/index.js';

function layer(kernels: number[][], id = 'w'): Conv3x3Layer {
  return {
    id, name: id, index: 0, uses: [], outChannels: kernels.length, inChannelsPerGroup: 1, group: 1, kind: 'standard',
    weights: Float32Array.from(kernels.flat()),
  };
}

test('mean |w| per position is normalised to the largest, energy shares sum to 1', () => {
  const l = layer([
    [1, 2, 1, 2, 4, 2, 1, 2, 1],
    [-1, -2, -1, -2, -4, -2, -1, -2, -1],
  ]);
  const a = analyzeLayer(l, 0.3);
  assert.deepEqual(a.meanAbs, [0.25, 0.5, 0.25, 0.5, 1, 0.5, 0.25, 0.5, 0.25]);
  const total = 2 * (4 * 1 + 4 * 4 + 16);
  assert.ok(Math.abs(a.energyShare.reduce((x, y) => x + y, 0) - 1) < 1e-12);
  assert.ok(Math.abs(a.energyKept.cross - (2 * (4 * 4 + 16)) / total) < 1e-12);
  assert.ok(Math.abs(a.energyKept.x - (2 * (4 + 16)) / total) < 1e-12);
  assert.equal(a.energyKept.full, 1);
  assert.deepEqual(a.lowPositions, [0, 2, 6, 8]);
});

test('a layer of zeros has uniform energy rather than NaN', () => {
  const a = analyzeLayer(layer([[0, 0, 0, 0, 0, 0, 0, 0, 0]]));
  assert.ok(a.energyShare.every((e) => Math.abs(e - 1 / 9) < 1e-12));
  assert.ok(Math.abs(a.energyKept.cross - 5 / 9) < 1e-12);
});

test('the whole-model ranking puts the shape that keeps most energy per parameter first', () => {
  // All energy on the cross, little at the centre: cross keeps 100% with 5/9 of the parameters.
  const m = analyzeModel([layer([[0, 2, 0, 2, 1, 2, 0, 2, 0]], 'a'), layer([[0, 3, 0, 3, 1, 3, 0, 3, 0]], 'b')]);
  assert.equal(m.shapes[0].shape, 'cross');
  assert.ok(Math.abs(m.shapes[0].energyPerParam - 9 / 5) < 1e-12);
});
