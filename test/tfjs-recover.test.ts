/**
 * Recovery on TF.js models, run in TF.js: layer-wise reconstruction on a LayersModel (nested,
 * shared layer) and a GraphModel (fused convolutions), with data from an .npy in the model's NHWC
 * layout. Reconstruction must not make any layer worse, and the written file must reproduce the
 * recovered weights.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { prune } from '../src/pipeline/prune.js';
import { loadModel } from '../src/formats/index.js';
import { npyBytes } from './helpers/data-files.js';
import { randomFloats } from './helpers/onnx-builder.js';
import { functionalModel, graphModelFiles, saveLayersModel, seedWeights, tfjs } from './helpers/tfjs-models.js';
import { tempDir } from './helpers/tmp.js';

const dir = tempDir('kprune-tfjs-recover-');

function npy(name: string, dims: number[], seed: number): string {
  const file = path.join(dir, `${name}.npy`);
  writeFileSync(file, npyBytes('<f4', dims, randomFloats(dims.reduce((a, b) => a * b, 1), seed)));
  return file;
}

for (const kind of ['layers', 'graph'] as const) {
  test(`recovery on a TF.js ${kind} model`, async () => {
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
      dims = [48, 8, 8, 3];
    }
    const out = path.join(dir, `${kind}-out`, 'model.json');
    mkdirSync(path.dirname(out));
    const report = await prune(file, { shape: 'cross', output: out, latencyRuns: 0, data: { data: npy(kind, dims, 5), calib: 32, eval: 16, occlusion: 0 } });
    assert.ok(report.recovery, 'recovered');
    assert.equal(report.recovery.layers.length, report.plan.entries.length);
    for (const l of report.recovery.layers) assert.ok(l.errorAfter <= l.errorBefore, `${l.name}: ${l.errorAfter} <= ${l.errorBefore}`);
    assert.ok(report.recovery.layers.some((l) => l.errorAfter < 0.9 * l.errorBefore), 'some layer improves clearly');
    assert.equal(report.accuracy.status, 'measured');
    if (report.accuracy.status === 'measured') {
      assert.match(report.accuracy.runtime, /TF\.js/);
      assert.equal(report.accuracy.written.clean.samples, 16);
    }
    // The written kernels are the recovered ones (in the file's storage) and respect the mask.
    const written = await loadModel(out);
    for (const l of written.layers) {
      for (let i = 0; i < l.weights.length; i++) if ([0, 2, 6, 8].includes(i % 9)) assert.equal(l.weights[i], 0, `${l.id}[${i}]`);
    }
  });
}
