import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  NAMED_SHAPES, QH_CYCLE, maskCount, maskHas, maskToString, namedMask, parseMask, parseShapeSpec, KpruneError,
} from '../src/index.js';

test('named shapes have the masks of the paper and its relatives', () => {
  // Field notes: the authors' four base orientations and the opposite-corner variants.
  assert.equal(NAMED_SHAPES['qh-right'], '110/111/110');
  assert.equal(NAMED_SHAPES['qh-left'], '011/111/011');
  assert.equal(NAMED_SHAPES['qh-up'], '010/111/111');
  assert.equal(NAMED_SHAPES['qh-down'], '111/111/010');
  assert.equal(NAMED_SHAPES['qh-cw'], '011/111/110');
  assert.equal(NAMED_SHAPES['qh-ccw'], '110/111/011');
  assert.equal(NAMED_SHAPES.cross, '010/111/010');
  assert.equal(NAMED_SHAPES.x, '101/010/101');
  assert.equal(maskCount(namedMask('full')), 9);
  assert.equal(maskCount(namedMask('cross')), 5);
  assert.equal(maskCount(namedMask('x')), 5);
  for (const n of ['qh-right', 'qh-left', 'qh-up', 'qh-down', 'qh-cw', 'qh-ccw'] as const) assert.equal(maskCount(namedMask(n)), 7, n);
  assert.equal(maskCount(namedMask('line-v')), 3);
  assert.equal(maskCount(namedMask('line-h')), 3);
  assert.equal(maskCount(namedMask('centre')), 1);
});

test('positions are row-major: bit 3*row+col', () => {
  const m = parseMask('100/010/001');
  assert.deepEqual([0, 1, 2, 3, 4, 5, 6, 7, 8].filter((p) => maskHas(m, p)), [0, 4, 8]);
  assert.equal(maskToString(parseMask('011/111/110')), '011/111/110');
});

test('qh cycles the four orientations in the order right, left, up, down', () => {
  const spec = parseShapeSpec('qh');
  assert.equal(spec.kind, 'cycle');
  assert.deepEqual(QH_CYCLE, ['qh-right', 'qh-left', 'qh-up', 'qh-down']);
});

test('custom masks parse; malformed ones and ones without the centre are errors', () => {
  const spec = parseShapeSpec('010/111/011');
  assert.equal(spec.kind, 'fixed');
  if (spec.kind === 'fixed') assert.equal(maskToString(spec.mask), '010/111/011');
  for (const bad of ['010/111', '010/121/010', '0101/111/010', '010-111-010', '']) {
    assert.throws(() => parseShapeSpec(bad), (e: unknown) => e instanceof KpruneError && e.code === 'bad-shape', bad);
  }
  assert.throws(() => parseShapeSpec('111/101/111'), /drops the centre/);
  assert.throws(() => parseShapeSpec('hexagon'), /unknown shape "hexagon"/);
});
