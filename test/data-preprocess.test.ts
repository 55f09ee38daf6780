import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadData, PRESETS } from '../src/data/index.js';
import { KpruneError } from '../src/errors.js';
import { resizeBilinear } from '../src/data/resize.js';
import { resolvePreprocess } from '../src/data/resolve.js';
import { tempDir } from './helpers/tmp.js';
import { jpegBytes, npyBytes, pngBytes, put } from './helpers/data-files.js';

const dir = tempDir('kprune-data-pre-');
const one = { calib: 1, eval: 0, seed: 1 };

// 2x2 -> 4x4 with half-pixel centres: source coordinates 0 (clamped), 0.25, 0.75, 1 (clamped).
//   rows y=0: 0..100, y=1: 200..40, blended by 0, 0.25, 0.75, 1.
const SMALL = [0, 100, 200, 40];
const UPSCALED = [
  0, 25, 75, 100,
  50, 58.75, 76.25, 85,
  150, 126.25, 78.75, 55,
  200, 160, 80, 40,
];

test('bilinear 2x2 -> 4x4 matches the hand-computed half-pixel values', () => {
  assert.deepEqual(Array.from(resizeBilinear(Float64Array.from(SMALL), 2, 2, 1, 4, 4)), UPSCALED);
  // Downscaling 4x4 -> 2x2 samples at 0.5 and 2.5: the mean of each 2x2 block for a linear ramp.
  const ramp = Float64Array.from({ length: 16 }, (_, i) => i);
  assert.deepEqual(Array.from(resizeBilinear(ramp, 4, 4, 1, 2, 2)), [2.5, 4.5, 10.5, 12.5]);
});

test('a float .npy is resized but not rescaled; a uint8 PNG gets scale 1/255', async () => {
  const npy = put(dir, 'small.npy', npyBytes('<f4', [1, 2, 2], SMALL));
  const a = await loadData(npy, { inputDims: ['N', 1, 4, 4], ...one });
  assert.deepEqual(a.calib.sampleDims, [1, 4, 4]);
  assert.deepEqual(Array.from(a.calib.x), UPSCALED);
  assert.equal(a.calib.labels, undefined);

  const png = put(dir, 'small-png/a.png', pngBytes(2, 2, 1, SMALL));
  const b = await loadData(png.replace('/a.png', ''), { inputDims: [1, 1, 4, 4], ...one });
  assert.deepEqual(Array.from(b.calib.x), UPSCALED.map((v) => Math.fround(v / 255)));
});

test('gray -> RGB repeats the channel, in NCHW and NHWC', async () => {
  const png = put(dir, 'gray/g.png', pngBytes(2, 2, 1, [10, 20, 30, 40]));
  const nchw = await loadData(png.replace('/g.png', ''), { inputDims: [1, 3, 2, 2], ...one, preprocess: { scale: 1 } });
  assert.deepEqual(Array.from(nchw.calib.x), [10, 20, 30, 40, 10, 20, 30, 40, 10, 20, 30, 40]);
  const nhwc = await loadData(png.replace('/g.png', ''), { inputDims: [1, 2, 2, 3], ...one, preprocess: { scale: 1 } });
  assert.equal(nhwc.calib.layout, 'NHWC');
  assert.deepEqual(nhwc.calib.sampleDims, [2, 2, 3]);
  assert.deepEqual(Array.from(nhwc.calib.x), [10, 10, 10, 20, 20, 20, 30, 30, 30, 40, 40, 40]);
});

test('RGB -> gray uses BT.601 luma, drops alpha, keeps gray pixels exact', async () => {
  const rgba = [255, 0, 0, 7, 0, 255, 0, 255, 0, 0, 255, 0, 77, 77, 77, 128];
  const png = put(dir, 'rgba/c.png', pngBytes(2, 2, 4, rgba));
  const d = await loadData(png.replace('/c.png', ''), { inputDims: [1, 1, 2, 2], ...one, preprocess: { scale: 1 } });
  assert.deepEqual(Array.from(d.calib.x), [0.299 * 255, 0.587 * 255, 0.114 * 255, 77].map(Math.fround));
});

test('mean and std per channel, and the per-channel mean of the result (imagenet preset)', async () => {
  // One 1x2 RGB image in HWC: pixels (0, 51, 102) and (255, 204, 153).
  const px = [0, 51, 102, 255, 204, 153];
  const npy = put(dir, 'rgb.npy', npyBytes('|u1', [1, 1, 2, 3], px));
  const d = await loadData(npy, { inputDims: ['N', 3, 1, 2], ...one, preset: 'imagenet' });
  const { mean, std } = PRESETS.imagenet as { mean: number[]; std: number[] };
  const want = [0, 1, 2].flatMap((c) => [px[c], px[3 + c]].map((v) => Math.fround((v / 255 - mean[c]) / std[c])));
  assert.deepEqual(Array.from(d.calib.x).map((v) => v.toFixed(6)), want.map((v) => v.toFixed(6)));
  d.calib.channelMean.forEach((m, c) => assert.ok(Math.abs(m - (want[2 * c] + want[2 * c + 1]) / 2) < 1e-6));
});

test('float arrays ignore the preset but not explicit options', async () => {
  const npy = put(dir, 'floats.npy', npyBytes('<f8', [1, 1, 1, 2], [0.5, 1]));
  const preset = await loadData(npy, { inputDims: ['N', 1, 1, 2], ...one, preset: 'imagenet', preprocess: { channels: 1, mean: [0.25], std: [0.5] } });
  assert.deepEqual(Array.from(preset.calib.x), [0.5, 1.5]);
  const plain = await loadData(npy, { inputDims: ['N', 1, 1, 2], ...one, preset: 'fashion-mnist' });
  assert.deepEqual(Array.from(plain.calib.x), [0.5, 1]);
});

test('a solid JPEG decodes to its colour (within JPEG rounding)', async () => {
  const jpg = put(dir, 'jpeg/a.JPG', jpegBytes(8, 8, [200, 100, 50]));
  const d = await loadData(jpg.replace('/a.JPG', ''), { inputDims: [1, 3, 4, 4], ...one, preprocess: { scale: 1 } });
  for (let c = 0; c < 3; c++) {
    for (let p = 0; p < 16; p++) assert.ok(Math.abs(d.calib.x[c * 16 + p] - [200, 100, 50][c]) <= 2, `channel ${c}`);
  }
});

test('defaults from the input dims; presets fill dynamic dims; explicit options cannot contradict the model', () => {
  const r = (inputDims: (number | string)[], extra: Parameters<typeof resolvePreprocess>[0] extends infer T ? Partial<T> : never = {}) =>
    resolvePreprocess({ inputDims, natural: {}, file: 'f', ...extra }).target;
  assert.deepEqual(r([-1, 1, 28, 28]), { height: 28, width: 28, channels: 1, layout: 'NCHW', scale: 1 / 255, mean: [0], std: [1], resize: 'stretch', crop: 1, interpolation: 'bilinear' });
  assert.equal(r(['N', 32, 32, 3]).layout, 'NHWC');
  assert.equal(r(['N', 3, 32, 3]).layout, 'NCHW');
  assert.deepEqual(r(['N', 3, 'H', 'W'], { preset: 'imagenet' }), { height: 224, width: 224, channels: 3, layout: 'NCHW', scale: 1 / 255, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225], resize: 'shorter', crop: 224 / 256, interpolation: 'bilinear' });
  // The model's fixed size wins over the preset's; a single mean/std value is broadcast.
  assert.deepEqual(r(['N', 3, 32, 32], { preset: 'fashion-mnist' }), { height: 32, width: 32, channels: 3, layout: 'NCHW', scale: 1 / 255, mean: [0, 0, 0], std: [1, 1, 1], resize: 'stretch', crop: 1, interpolation: 'bilinear' });
  assert.equal(r(['N', 3, 'H', 'W'], { explicit: { height: 64, width: 48 } }).width, 48);
  assert.throws(() => r(['N', 3, 'H', 'W']), (e: KpruneError) => e.code === 'usage' && /dynamic image size/.test(e.message) && /--size/.test(e.suggestion ?? ''));
  assert.throws(() => r(['N', 3, 32, 32], { explicit: { height: 28 } }), /height 28 was asked for, but the model input .* fixes it at 32/);
  assert.throws(() => r(['N', 1, 28, 28], { preset: 'imagenet' }), /mean has 3 values .* 1 channel/);
  assert.throws(() => r(['N', 4, 28, 28]), (e: KpruneError) => e.code === 'unsupported' && /4 channels/.test(e.message));
  assert.throws(() => r(['N', 784]), /not a 4-D image tensor/);
});
