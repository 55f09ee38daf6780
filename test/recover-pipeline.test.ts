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
import { writeFileSync } from 'node:fs';
import { npyBytes } from './helpers/data-files.js';

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
