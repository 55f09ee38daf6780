/**
 * Preprocessing that matches how models are evaluated: antialiased downscaling (PIL's and
 * torchvision's antialias=True filter), area and nearest filters, resize of the shorter side and
 * the centre crop (torchvision's Resize(256) + CenterCrop(224) as the imagenet preset).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fitImage, resample, resizeBilinear, resizedSize } from '../src/data/resize.js';
import { resolvePreprocess } from '../src/data/resolve.js';

const close = (a: ArrayLike<number>, b: number[], eps = 1e-9) => {
  assert.equal(a.length, b.length);
  for (let i = 0; i < b.length; i++) assert.ok(Math.abs(a[i] - b[i]) < eps, `${i}: ${a[i]} vs ${b[i]}`);
};

test('bilinear downscaling is antialiased as PIL does it: the triangle filter widens by the scale', () => {
  // One row 0, 10, 20, 30 to two pixels: weights .75 .75 .25 (normalised) and .25 .75 .75.
  const out = resample(Float64Array.from([0, 10, 20, 30]), 1, 4, 1, 1, 2, 'bilinear');
  close(out, [12.5 / 1.75, 40 / 1.75]);
  // A one-pixel checkerboard halves to flat grey instead of aliasing to black or white.
  const board = Float64Array.from({ length: 64 }, (_, i) => ((Math.floor(i / 8) + (i % 8)) % 2) * 255);
  const grey = resample(board, 8, 8, 1, 4, 4, 'bilinear');
  for (const v of grey) assert.ok(Math.abs(v - 127.5) < 40, `${v}`);
  const nearest = resample(board, 8, 8, 1, 4, 4, 'nearest');
  for (const v of nearest) assert.ok(v === 0 || v === 255);
});

test('area averages whole blocks; every filter keeps a flat image flat; upscaling stays torch bilinear', () => {
  const img = Float64Array.from([1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31]);
  close(resample(img, 4, 4, 1, 2, 2, 'area'), [(1 + 3 + 9 + 11) / 4, (5 + 7 + 13 + 15) / 4, (17 + 19 + 25 + 27) / 4, (21 + 23 + 29 + 31) / 4]);
  for (const kind of ['bilinear', 'nearest', 'area'] as const) {
    for (const [h, w] of [[3, 5], [7, 2], [11, 13]]) {
      for (const v of resample(new Float64Array(20 * 30 * 3).fill(42), 20, 30, 3, h, w, kind)) assert.ok(Math.abs(v - 42) < 1e-9);
    }
  }
  const small = Float64Array.from([0, 100, 50, 25]);
  assert.deepEqual(resample(small, 2, 2, 1, 5, 3, 'bilinear'), resizeBilinear(small, 2, 2, 1, 5, 3));
});

test('shorter side to size / crop, the longer rounded down, then the centre crop (torchvision)', () => {
  // Resize(256) on a 500 x 375 image: 341 x 256 (int(256 * 500 / 375) = 341).
  assert.deepEqual(resizedSize(500, 375, 224, 224, 'shorter', 224 / 256), [341, 256]);
  assert.deepEqual(resizedSize(375, 500, 224, 224, 'shorter', 224 / 256), [256, 341]);
  assert.deepEqual(resizedSize(500, 375, 224, 224, 'stretch', 1), [224, 224]);
  assert.deepEqual(resizedSize(28, 28, 28, 28, 'stretch', 1), [28, 28]);
  // A 4 x 6 ramp, shorter side to 2 / 0.5 = 4 (no change), cropped to the centre 2 x 2: rows 1-2, columns 2-3.
  const ramp = Float64Array.from({ length: 24 }, (_, i) => i);
  close(fitImage(ramp, 4, 6, 1, 2, 2, 'shorter', 0.5, 'nearest'), [8, 9, 14, 15]);
});

test('the imagenet preset resizes the shorter side to 256 and crops 224; explicit options win', () => {
  const base = { inputDims: [1, 3, 224, 224], natural: {}, file: 'x' };
  const r = resolvePreprocess({ ...base, preset: 'imagenet' });
  assert.equal(r.target.resize, 'shorter');
  assert.equal(Math.round(224 / r.target.crop), 256);
  assert.equal(r.target.interpolation, 'bilinear');
  const plain = resolvePreprocess(base);
  assert.deepEqual([plain.target.resize, plain.target.crop, plain.target.interpolation], ['stretch', 1, 'bilinear']);
  const mine = resolvePreprocess({ ...base, preset: 'imagenet', explicit: { resize: 'stretch', crop: 1, interpolation: 'area' } });
  assert.deepEqual([mine.target.resize, mine.target.crop, mine.target.interpolation], ['stretch', 1, 'area']);
  assert.throws(() => resolvePreprocess({ ...base, explicit: { crop: 1.5 } }), /crop must be a share/);
});
