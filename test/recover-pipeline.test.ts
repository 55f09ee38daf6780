/**
 * Recovery end to end on a bundled model and the bundled Fashion-MNIST subset: reconstruction must
 * beat reshaping alone by a clear margin, and the accuracy the report gives for the written model
 * must match an independent evaluation of the written file in onnxruntime.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { prune, KpruneError } from '../src/index.js';
import type { MeasuredAccuracy } from '../src/index.js';
import { loadData } from '../src/data/index.js';
import { FIXTURES, tempDir } from './helpers/tmp.js';
import { readFileSync, writeFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { npyBytes, npzBytes, pngBytes, put } from './helpers/data-files.js';

const dir = tempDir();
const SUBSET = path.join(FIXTURES, 'data', 'fashion-mnist', 't10k-images-idx3-ubyte.gz');
const data = { data: SUBSET, calib: 128, eval: 300, seed: 3 };

test('reconstruction recovers most of what reshaping to a cross cost, and the report matches onnxruntime', async () => {
  const input = path.join(FIXTURES, 'models', 'resnet-fmnist.onnx');
  const out = path.join(dir, 'resnet.cross.onnx');
  const report = await prune(input, { shape: 'cross', output: out, data });
  assert.equal(report.accuracy.status, 'measured');
  const acc = report.accuracy as MeasuredAccuracy;
  assert.equal(acc.evalSamples, 300);
  assert.equal(report.data?.calibSamples, 128);
  const o = acc.original.clean.top1!;
  const reshaped = acc.reshaped.clean.top1!;
  const written = acc.written.clean.top1!;
  assert.ok(written > reshaped + 0.2, `reconstructed ${written} vs reshaped ${reshaped}`);
  assert.ok(written > o - 0.05, `reconstructed ${written} vs original ${o}`);
  assert.ok(acc.written.clean.agreement! > acc.reshaped.clean.agreement!);
  assert.ok(acc.written.occluded!.top1! <= o + 0.05);
  for (const l of report.recovery!.layers) assert.ok(l.errorAfter < l.errorBefore, `${l.name}: ${l.errorBefore} -> ${l.errorAfter}`);
  // The kept positions only: masks hold after reconstruction.
  for (const l of report.layers) assert.equal(l.nonzeroAfter <= l.keptParams, true);

  // Independent check: the same evaluation samples through the written file in a plain session.
  const split = await loadData(SUBSET, { inputDims: ['N', 1, 28, 28], calib: 128, eval: 300, seed: 3, numClasses: 10 });
  const session = await ort.InferenceSession.create(out);
  const y = (await session.run({ [session.inputNames[0]]: new ort.Tensor('float32', split.eval.x, [300, 1, 28, 28]) }))[session.outputNames[0]].data as Float32Array;
  await session.release();
  let correct = 0;
  for (let s = 0; s < 300; s++) {
    let best = 0;
    for (let k = 1; k < 10; k++) if (y[s * 10 + k] > y[s * 10 + best]) best = k;
    if (best === split.eval.labels![s]) correct++;
  }
  assert.equal(correct / 300, written);
});

test('auto with data chooses shapes from reconstruction error within the budget', async () => {
  const input = path.join(FIXTURES, 'models', 'vgg-fmnist.onnx');
  const report = await prune(input, { shape: 'auto', budget: 0.7, output: path.join(dir, 'vgg.auto.onnx'), data: { ...data, eval: 100 } });
  assert.ok(report.plan.keptFraction <= 0.7);
  assert.ok(report.plan.entries.every((e) => e.chosenBy === 'auto-data'));
  assert.ok(new Set(report.plan.entries.map((e) => e.positions)).size >= 1);
});

test('--recover none measures the reshaped model without changing it', async () => {
  const input = path.join(FIXTURES, 'models', 'vgg-fmnist.onnx');
  const report = await prune(input, { shape: 'cross', output: path.join(dir, 'vgg.none.onnx'), data: { ...data, eval: 100 }, recover: 'none' });
  const acc = report.accuracy as MeasuredAccuracy;
  assert.equal(report.recovery, null);
  assert.deepEqual(acc.written.clean, acc.reshaped.clean);
});

test('data that does not fit the model is a clear error and nothing is written', async () => {
  const npy = path.join(dir, 'two-channel.npy');
  writeFileSync(npy, npyBytes('<f4', [4, 2, 28, 28], new Float32Array(4 * 2 * 28 * 28)));
  const out = path.join(dir, 'never.onnx');
  await assert.rejects(
    prune(path.join(FIXTURES, 'models', 'vgg-fmnist.onnx'), { shape: 'cross', output: out, data: { data: npy } }),
    (e: unknown) => e instanceof KpruneError && /two-channel\.npy/.test(e.oneLine()),
  );
  await assert.rejects(import('node:fs/promises').then((fs) => fs.stat(out)));
});

/** The first n subset test images as raw 28x28 pixels with labels, read straight from the IDX files. */
function subsetImages(n: number): { pixels: Uint8Array[]; labels: number[] } {
  const images = gunzipSync(readFileSync(SUBSET));
  const labels = gunzipSync(readFileSync(SUBSET.replace('images-idx3', 'labels-idx1')));
  return {
    pixels: Array.from({ length: n }, (_, i) => images.subarray(16 + i * 784, 16 + (i + 1) * 784)),
    labels: Array.from({ length: n }, (_, i) => labels[8 + i]),
  };
}

test('a folder of PNG images with class sub-folders, a flat unlabelled folder, and an .npz all work as data', async () => {
  const { pixels, labels } = subsetImages(60);
  const classes = ['0-tshirt', '1-trouser', '2-pullover', '3-dress', '4-coat', '5-sandal', '6-shirt', '7-sneaker', '8-bag', '9-boot'];
  const labelled = path.join(dir, 'labelled');
  const flat = path.join(dir, 'flat');
  pixels.forEach((p, i) => {
    put(labelled, `${classes[labels[i]]}/img${i}.png`, pngBytes(28, 28, 1, p));
    put(flat, `img${i}.png`, pngBytes(28, 28, 1, p));
  });
  const npz = path.join(dir, 'subset.npz');
  writeFileSync(npz, npzBytes({
    x: npyBytes('|u1', [60, 28, 28], Uint8Array.from(pixels.flatMap((p) => Array.from(p)))),
    y: npyBytes('<i8', [60], labels),
  }));
  const input = path.join(FIXTURES, 'models', 'vgg-fmnist.onnx');
  for (const [source, hasLabels] of [[labelled, true], [flat, false], [npz, true]] as const) {
    const report = await prune(input, { shape: 'cross', output: path.join(dir, 'vgg.data.onnx'), data: { data: source, calib: 30, eval: 30 }, latencyRuns: 0 });
    const acc = report.accuracy as MeasuredAccuracy;
    assert.equal(acc.labelled, hasLabels, source);
    assert.equal(acc.written.clean.top1 !== undefined, hasLabels, source);
    assert.ok(acc.written.clean.agreement! >= acc.reshaped.clean.agreement!, source);
    assert.equal(report.data?.calibSamples, 30);
  }
  // Decoded PNGs and raw npz pixels are images the original model recognises.
  const viaPng = await prune(input, { shape: 'cross', output: path.join(dir, 'vgg.png.onnx'), data: { data: labelled, calib: 30, eval: 30, seed: 5 }, latencyRuns: 0 });
  const viaNpz = await prune(input, { shape: 'cross', output: path.join(dir, 'vgg.npz.onnx'), data: { data: npz, calib: 30, eval: 30, seed: 5 }, latencyRuns: 0 });
  assert.ok((viaPng.accuracy as MeasuredAccuracy).original.clean.top1! > 0.5);
  assert.ok((viaNpz.accuracy as MeasuredAccuracy).original.clean.top1! > 0.5);
});

test('--finetune trains only the kept positions after reconstruction and reports both stages', async () => {
  const input = path.join(FIXTURES, 'models', 'vgg-fmnist.onnx');
  const out = path.join(dir, 'vgg.ft.onnx');
  const report = await prune(input, { shape: 'cross', output: out, data: { ...data, calib: 96, eval: 60 }, finetune: { steps: 6, batch: 16 }, latencyRuns: 0 });
  assert.ok(report.finetune);
  assert.equal(report.finetune!.steps, 6);
  assert.equal(report.finetune!.engine, 'onnxruntime', 'every operator of the VGG-style model has a backward rule');
  assert.deepEqual(report.finetune!.missingOperators, []);
  assert.match(report.finetune!.backend, /^onnxruntime-node /);
  const acc = report.accuracy as MeasuredAccuracy;
  assert.ok(acc.reconstructed, 'the reconstructed stage is measured too');
  for (const l of report.layers) assert.ok(l.nonzeroAfter <= l.keptParams, `${l.name}: masks hold after fine-tuning`);
  await assert.rejects(prune(input, { shape: 'cross', output: path.join(dir, 'never.onnx'), finetune: { steps: 5 } }), /--finetune needs training data/);
});
