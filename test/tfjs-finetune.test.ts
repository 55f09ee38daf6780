/**
 * Fine-tuning a TF.js LayersModel in TF.js itself (issue #5, recovery on TF.js models): the
 * reshaped kernels train through kprune's forward-convolution gradients, pruned positions stay
 * exactly zero, the checkpoint chosen on held-out data is what gets written, and the written model,
 * loaded back in TF.js, computes what the report measured.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { prune } from '../src/pipeline/prune.js';
import { loadModel } from '../src/models/index.js';
import { npyBytes } from './helpers/data-files.js';
import { randomFloats } from './helpers/onnx-builder.js';
import { functionalModel, saveLayersModel, seedWeights, tfjs } from './helpers/tfjs-models.js';
import { tempDir } from './helpers/tmp.js';
import { checkAgreement } from '../src/core/finetune/run.js';
import { finetuneSampleCount } from '../src/pipeline/finetune.js';
import { assertSameFigures, judge } from './helpers/tfjs-figures.js';

const dir = tempDir('kprune-tfjs-finetune-');

test('fine-tuning a TF.js LayersModel: kept positions train, pruned ones stay zero, the best checkpoint is written', async (t) => {
  const tf = await tfjs();
  const m = functionalModel(tf);
  seedWeights(tf, m, 41);
  const file = await saveLayersModel(tf, m, path.join(dir, 'func'), { shardBytes: 1024 });
  const dims = [400, 10, 10, 3];
  const x = path.join(dir, 'x.npy');
  writeFileSync(x, npyBytes('<f4', dims, randomFloats(dims.reduce((a, b) => a * b, 1), 9)));
  // Without compensation: the Dense head re-solved on 32 images leaves little for 30 steps to gain
  // on these random weights (held-out KL still falls, logit MSE does not), and this test is about
  // the 3x3 kernels training.
  const data = { data: x, calib: 32, eval: 32, occlusion: 0, compensate: 'none' as const };
  const reconstructed = path.join(dir, 'rec', 'model.json');
  const tuned = path.join(dir, 'tuned', 'model.json');
  mkdirSync(path.dirname(reconstructed));
  mkdirSync(path.dirname(tuned));
  const rec = await prune(file, { shape: 'cross', layout: 'masked', output: reconstructed, latencyRuns: 0, data });
  const report = await prune(file, { shape: 'cross', layout: 'masked', output: tuned, latencyRuns: 0, data, finetune: { steps: 30, batch: 16, lr: 3e-3 } });

  assert.ok(report.finetune, 'fine-tuned');
  assert.match(report.finetune.backend, /^TF\.js \S+ \((wasm|cpu|tensorflow) backend\)$/);
  assert.equal(report.finetune.objective, 'distill-kl', 'no labels: distillation from the original');
  assert.equal(report.finetune.steps, 30);
  assert.ok(report.finetune.heldOut.after.loss <= report.finetune.heldOut.before.loss, 'the chosen checkpoint is no worse on held-out data');
  assert.ok(report.finetune.bestStep > 0, 'a trained checkpoint beat the reconstructed start');

  // Pruned positions exactly zero in the file; kept ones moved away from reconstruction alone.
  const written = await loadModel(tuned);
  const recModel = await loadModel(reconstructed);
  let moved = 0;
  for (const [i, l] of written.layers.entries()) {
    const w = l.weights;
    const r = recModel.layers[i].weights;
    for (let k = 0; k < w.length; k++) {
      if ([0, 2, 6, 8].includes(k % 9)) assert.equal(w[k], 0, `${l.id}[${k}]`);
      else if (w[k] !== r[k]) moved++;
    }
  }
  assert.ok(moved > 0, 'fine-tuning changed kept weights');
  // Measured on the written file, against the same original: fine-tuning improved agreement or its KL.
  assert.equal(report.accuracy.status, 'measured');
  assert.equal(rec.accuracy.status, 'measured');
  if (report.accuracy.status === 'measured' && rec.accuracy.status === 'measured') {
    t.diagnostic(`agreement with the original on ${report.accuracy.written.clean.samples} samples: reconstructed ${rec.accuracy.written.clean.agreement}, fine-tuned ${report.accuracy.written.clean.agreement}; held-out loss ${report.finetune.heldOut.before.loss.toFixed(4)} -> ${report.finetune.heldOut.after.loss.toFixed(4)} (best step ${report.finetune.bestStep})`);
  }
  // What the report measured, computed here: the written file loaded by TF.js and run on the same
  // evaluation samples (drawn beside the calibration and fine-tuning samples), and the
  // reconstruction-only file (the same reconstruction: same calibration samples and seed) for the
  // report's "reconstructed" row.
  const seen = await judge(tf, {
    original: file, written: tuned, others: [reconstructed], plan: report.plan.entries, data: x,
    calib: 32 + finetuneSampleCount({ steps: 30, batch: 16 }), eval: 32,
  });
  if (report.accuracy.status !== 'measured') return;
  assert.equal(report.accuracy.evalSource, seen.evalSource, 'the same samples');
  assertSameFigures(report.accuracy.written.clean, seen.written, 1e-3, 'fine-tuned, written');
  assertSameFigures(report.accuracy.reshaped.clean, seen.reshaped, 1e-3, 'reshaped');
  assert.ok(report.accuracy.reconstructed, 'the reconstructed row');
  assertSameFigures(report.accuracy.reconstructed.clean, seen.others[0], 1e-3, 'reconstructed');
  t.diagnostic(`logit MSE to the original: reshaped ${seen.reshaped.mse.toPrecision(4)}, reconstructed ${seen.others[0].mse.toPrecision(4)}, fine-tuned ${seen.written.mse.toPrecision(4)}`);
  assert.ok(seen.written.mse < 0.5 * seen.reshaped.mse, `the fine-tuned model is far closer to the original than the reshaped-only one: ${seen.written.mse} vs ${seen.reshaped.mse}`);
  assert.ok(seen.written.agreement! >= seen.reshaped.agreement!);
  assert.ok(seen.written.mse < seen.others[0].mse, 'and closer than reconstruction alone');
});

test('fine-tuning a TF.js GraphModel: kernels fed in place of their Const nodes, TF.js gradients (wasm: kprune\'s kernels)', async (t) => {
  const { graphModelFiles } = await import('./helpers/tfjs-models.js');
  const file = graphModelFiles(path.join(dir, 'graph'), { quantize: 'float16' });
  const dims = [400, 8, 8, 3];
  const x = path.join(dir, 'g.npy');
  writeFileSync(x, npyBytes('<f4', dims, randomFloats(dims.reduce((a, b) => a * b, 1), 3)));
  const out = path.join(dir, 'graph-out', 'model.json');
  mkdirSync(path.dirname(out));
  const report = await prune(file, { layout: 'masked', shape: 'cross', output: out, latencyRuns: 0, data: { data: x, calib: 32, eval: 16, occlusion: 0 }, finetune: { steps: 30, batch: 16 } });
  assert.ok(report.finetune, 'fine-tuned');
  assert.equal(report.finetune.objective, 'distill-mse', 'image-shaped output: MSE to the original');
  assert.ok(report.finetune.heldOut.after.loss <= report.finetune.heldOut.before.loss);
  assert.ok(report.finetune.bestStep > 0, 'a trained checkpoint beat the reconstructed start');
  t.diagnostic(`held-out MSE ${report.finetune.heldOut.before.loss.toPrecision(4)} -> ${report.finetune.heldOut.after.loss.toPrecision(4)} (best step ${report.finetune.bestStep}, ${report.finetune.backend})`);
  // The written file in TF.js on the report's evaluation samples: the report's MSE, cosine and PSNR.
  const { tfjs: tfjsOf } = await import('./helpers/tfjs-models.js');
  const seen = await judge(await tfjsOf(), { original: file, written: out, plan: report.plan.entries, data: x, calib: 32 + finetuneSampleCount({ steps: 30, batch: 16 }), eval: 16 });
  assert.equal(report.accuracy.status, 'measured');
  if (report.accuracy.status === 'measured') {
    assert.equal(report.accuracy.evalSource, seen.evalSource, 'the same samples');
    assertSameFigures(report.accuracy.written.clean, seen.written, 1e-3, 'fine-tuned, written');
    assertSameFigures(report.accuracy.reshaped.clean, seen.reshaped, 1e-3, 'reshaped');
  }
  t.diagnostic(`output MSE to the original on 16 samples: reshaped ${seen.reshaped.mse.toPrecision(4)}, fine-tuned ${seen.written.mse.toPrecision(4)}`);
  assert.ok(seen.written.mse < seen.reshaped.mse, 'closer to the original than the reshaped-only model');
  const written = await loadModel(out);
  for (const l of written.layers) {
    const w = l.weights;
    for (let k = 0; k < w.length; k++) if ([0, 2, 6, 8].includes(k % 9)) assert.equal(w[k], 0, `${l.id}[${k}]`);
  }
  assert.ok(existsSync(out));
});

test('the agreement check before training passes equal outputs and refuses different, shorter or NaN ones', () => {
  const ref = Float32Array.from([1, -2, 3, 0.5]);
  checkAgreement(Float32Array.from([1, -2, 3.001, 0.5]), ref, 'x', 'm.json');
  assert.throws(() => checkAgreement(Float32Array.from([1, -2, 3.1, 0.5]), ref, 'the path disagrees', 'm.json'), /the path disagrees \(largest difference 0\.100 at output scale 3\.00\); fine-tuning would train a different function/);
  assert.throws(() => checkAgreement(Float32Array.from([1, -2, 3]), ref, 'short', 'm.json'), /short/);
  assert.throws(() => checkAgreement(Float32Array.from([1, -2, NaN, 0.5]), ref, 'nan', 'm.json'), /nan/);
});
