/**
 * Recovery on TF.js models, run in TF.js: layer-wise reconstruction on a LayersModel (nested,
 * shared layer) and a GraphModel (fused convolutions), with data from an .npy in the model's NHWC
 * layout. Reconstruction must not make any layer worse, and the written file must reproduce the
 * recovered weights. The written model, loaded by TF.js itself and run on the report's evaluation
 * samples, must give the report's figures (computed in the test, helpers/tfjs-figures.ts) and be
 * clearly closer to the original than the reshaped-only model.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { prune } from '../src/pipeline/prune.js';
import { loadModel } from '../src/models/index.js';
import { npyBytes } from './helpers/data-files.js';
import { randomFloats } from './helpers/onnx-builder.js';
import { functionalModel, graphModelFiles, saveLayersModel, seedWeights, tfjs } from './helpers/tfjs-models.js';
import { tempDir } from './helpers/tmp.js';
import { assertSameFigures, judge } from './helpers/tfjs-figures.js';

const dir = tempDir('kprune-tfjs-recover-');

function npy(name: string, dims: number[], seed: number): string {
  const file = path.join(dir, `${name}.npy`);
  writeFileSync(file, npyBytes('<f4', dims, randomFloats(dims.reduce((a, b) => a * b, 1), seed)));
  return file;
}

for (const kind of ['layers', 'graph'] as const) {
  test(`recovery on a TF.js ${kind} model`, async (t) => {
    let file: string;
    let dims: number[];
    if (kind === 'layers') {
      const tf = await tfjs();
      const m = functionalModel(tf);
      seedWeights(tf, m, 41);
      file = await saveLayersModel(tf, m, path.join(dir, 'func'), { quantize: 'uint16', shardBytes: 512 });
      dims = [48, 10, 10, 3];
    } else {
      file = graphModelFiles(path.join(dir, 'graph'), { quantize: 'float16' });
      // More samples: its last layer has one output position per image, so 32 images would be 32
      // rows for its least squares, too few to carry over to other images.
      dims = [160, 8, 8, 3];
    }
    const out = path.join(dir, `${kind}-out`, 'model.json');
    mkdirSync(path.dirname(out));
    const data = npy(kind, dims, 5);
    const [calib, evalCount] = kind === 'layers' ? [32, 16] : [128, 32];
    const report = await prune(file, { shape: 'cross', output: out, latencyRuns: 0, data: { data, calib, eval: evalCount, occlusion: 0 } });
    assert.ok(report.recovery, 'recovered');
    assert.equal(report.recovery.layers.filter((l) => l.role === 'reshaped').length, report.plan.entries.length);
    // The functional model's Dense head, on pooled features after a reshaped depthwise layer, is
    // re-solved to compensate; the GraphModel has no layer kprune re-solves in TF.js.
    assert.deepEqual(report.recovery.layers.filter((l) => l.role === 'compensating').map((l) => l.name), kind === 'layers' ? ['logits'] : []);
    for (const l of report.recovery.layers) assert.ok(l.errorAfter <= l.errorBefore, `${l.name}: ${l.errorAfter} <= ${l.errorBefore}`);
    assert.ok(report.recovery.layers.some((l) => l.errorAfter < 0.9 * l.errorBefore), 'some layer improves clearly');
    assert.equal(report.accuracy.status, 'measured');
    if (report.accuracy.status === 'measured') {
      assert.match(report.accuracy.runtime, /TF\.js/);
      assert.equal(report.accuracy.written.clean.samples, evalCount);
    }
    // The written kernels are the recovered ones (in the file's storage) and respect the mask.
    const written = await loadModel(out);
    for (const l of written.layers) {
      for (let i = 0; i < l.weights.length; i++) if ([0, 2, 6, 8].includes(i % 9)) assert.equal(l.weights[i], 0, `${l.id}[${i}]`);
    }
    // The written model, loaded back by TF.js itself and run on the same evaluation samples: its
    // figures are the report's, and it is closer to the original than the reshaped-only model.
    const seen = await judge(await tfjs(), { original: file, written: out, plan: report.plan.entries, data, calib, eval: evalCount });
    t.diagnostic(`distance to the original on ${evalCount} samples: reshaped ${JSON.stringify(seen.reshaped)}, written ${JSON.stringify(seen.written)}`);
    assert.equal(report.accuracy.status, 'measured');
    if (report.accuracy.status !== 'measured') return;
    assert.equal(report.accuracy.evalSource, seen.evalSource, 'the same samples');
    assertSameFigures(report.accuracy.written.clean, seen.written, 1e-3, 'written');
    assertSameFigures(report.accuracy.reshaped.clean, seen.reshaped, 1e-3, 'reshaped');
    assert.ok(seen.written.mse < 0.9 * seen.reshaped.mse, `recovery brings the outputs closer to the original's: MSE ${seen.written.mse} vs reshaped ${seen.reshaped.mse}`);
    if (seen.written.agreement !== undefined) assert.ok(seen.written.agreement >= seen.reshaped.agreement!, 'no less agreement');
    else assert.ok(seen.written.psnr! > seen.reshaped.psnr! + 0.4, `PSNR ${seen.written.psnr} vs reshaped ${seen.reshaped.psnr}`);
  });
}
