/**
 * A real TF.js model: @upscalerjs/esrgan-slim x2 (MIT; a Keras functional LayersModel, 8 3x3
 * convolutions, dynamic input [null, null, null, 3], pixels 0..255 in and out). Pruned with cross,
 * its fidelity to the original is measured as PSNR on the package's fixture image (128x128), before
 * and after recovery. Recovery calibrates on crops of another image, so the fixture is held out.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { PNG } from 'pngjs';
import type * as TF from '../src/runtime/tfjs/tf.js';
import { prune } from '../src/pipeline/prune.js';
import { analyze } from '../src/pipeline/analyze.js';
import { fileHandler } from '../src/models/tfjs/io.js';
import { tfjsRuntime } from '../src/runtime/tfjs/backend.js';
import { tempDir } from './helpers/tmp.js';

// The package exports only its JavaScript entry points; its models and assets are found on disk.
const PACKAGE = path.resolve(new URL('../../node_modules/@upscalerjs/esrgan-slim', import.meta.url).pathname);
const MODEL = path.join(PACKAGE, 'models', 'x2', 'model.json');
const dir = tempDir('kprune-esrgan-');

function readRgb(file: string): { width: number; height: number; rgb: Float32Array } {
  const png = PNG.sync.read(readFileSync(file));
  const rgb = new Float32Array(png.width * png.height * 3);
  for (let p = 0; p < png.width * png.height; p++) for (let c = 0; c < 3; c++) rgb[p * 3 + c] = png.data[p * 4 + c];
  return { width: png.width, height: png.height, rgb };
}

/** The model's output for one image, clipped to 0..255 as an image. */
async function upscale(file: string, image: ReturnType<typeof readRgb>): Promise<Float32Array> {
  const { tf } = await tfjsRuntime();
  const model = await tf.loadLayersModel(fileHandler(file));
  const y = tf.tidy(() => tf.clipByValue(model.predict(tf.tensor(image.rgb, [1, image.height, image.width, 3])) as TF.Tensor, 0, 255));
  const v = await y.data() as Float32Array;
  y.dispose();
  model.dispose();
  return v;
}

function psnr(a: Float32Array, b: Float32Array): number {
  let se = 0;
  for (let i = 0; i < a.length; i++) se += (a[i] - b[i]) ** 2;
  return 10 * Math.log10((255 * 255) / (se / a.length));
}

/** 128x128 crops of the package's 2x sample result: calibration images that are not the fixture. */
function calibrationFolder(): string {
  const big = PNG.sync.read(readFileSync(path.join(PACKAGE, 'assets', 'samples', '2x', 'result.png')));
  const folder = path.join(dir, 'calib');
  mkdirSync(folder);
  for (let k = 0; k < 4; k++) {
    const [ox, oy] = [(k % 2) * 128, Math.floor(k / 2) * 128];
    const crop = new PNG({ width: 128, height: 128 });
    for (let y = 0; y < 128; y++) for (let x = 0; x < 128; x++) for (let c = 0; c < 4; c++) crop.data[(y * 128 + x) * 4 + c] = big.data[((oy + y) * big.width + ox + x) * 4 + c];
    writeFileSync(path.join(folder, `crop${k}.png`), PNG.sync.write(crop));
  }
  return folder;
}

test('esrgan-slim x2: cross, PSNR against the original on the fixture before and after recovery', async (t) => {
  const a = await analyze(MODEL);
  assert.equal(a.input.format, 'tfjs-layers');
  assert.equal(a.layers.length, 8);
  assert.deepEqual(a.skipped, []);

  const fixture = readRgb(path.join(PACKAGE, 'assets', 'fixture.png'));
  const original = await upscale(MODEL, fixture);

  const maskedOut = path.join(dir, 'masked', 'model.json');
  mkdirSync(path.dirname(maskedOut));
  const masked = await prune(MODEL, { layout: 'masked', shape: 'cross', output: maskedOut, inputShape: '1,64,64,3', latencyRuns: 0 });
  assert.match(masked.output.verified, /loaded and ran once in TF\.js/);
  assert.equal(masked.before.macs.status, 'measured');
  const psnrMasked = psnr(await upscale(maskedOut, fixture), original);

  const recoveredOut = path.join(dir, 'recovered', 'model.json');
  mkdirSync(path.dirname(recoveredOut));
  const recovered = await prune(MODEL, { layout: 'masked',
    shape: 'cross', output: recoveredOut, inputShape: '1,64,64,3', latencyRuns: 0,
    // Pixels 0..255 (UpscalerJS's inputRange for this model); 64x64 calibration crops for speed.
    data: { data: calibrationFolder(), calib: 3, eval: 1, preprocess: { height: 64, width: 64, scale: 1 }, occlusion: 0, rowsPerImage: 1024 },
  });
  const psnrRecovered = psnr(await upscale(recoveredOut, fixture), original);
  assert.ok(recovered.recovery);
  for (const l of recovered.recovery.layers) assert.ok(l.errorAfter <= l.errorBefore, `${l.name}: ${l.errorAfter} <= ${l.errorBefore}`);
  assert.equal(recovered.accuracy.status, 'measured');

  // A real functional model with residual blocks: reconstructed segment by segment.
  assert.equal(recovered.recovery.propagation.engine, 'segments', recovered.recovery.propagation.fallbackReason);
  assert.equal(recovered.recovery.propagation.passes, 2);
  t.diagnostic(`fixture PSNR vs the original (peak 255): cross masked ${psnrMasked.toFixed(2)} dB, cross + recovery ${psnrRecovered.toFixed(2)} dB`);
  if (recovered.accuracy.status === 'measured') {
    t.diagnostic(`pipeline's eval image: reshaped PSNR ${recovered.accuracy.reshaped.clean.psnr?.toFixed(2)} dB, written ${recovered.accuracy.written.clean.psnr?.toFixed(2)} dB (${recovered.accuracy.runtime})`);
  }
  t.diagnostic(`3x3 weights ${masked.before.params.conv3x3} -> ${masked.after.params.conv3x3Nonzero} non-zero; gzip ${masked.before.size.gzipBytes} -> ${masked.after.size.gzipBytes} bytes; timings ${JSON.stringify(recovered.timings)}`);
  assert.ok(Number.isFinite(psnrMasked));
  assert.ok(psnrRecovered > psnrMasked + 10, `recovery helps: ${psnrRecovered} vs ${psnrMasked}`);
  assert.ok(psnrRecovered > 30, `recovered PSNR ${psnrRecovered}`);
});
