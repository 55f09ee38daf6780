/**
 * Slim layouts: the decomposed and sparse models compute what the masked model computes, store what
 * they should, and exact covers exist for every mask.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { prune } from '../src/index.js';
import { minimalCover, needsCrop } from '../src/core/layout/cover.js';
import { maskHas } from '../src/core/lattice.js';
import { readOnnxModel, tensorFloats } from '../src/formats/onnx/read.js';
import { FIXTURES, tempDir } from './helpers/tmp.js';

const dir = tempDir();

test('every mask with the centre has an exact cover by disjoint rectangles', () => {
  for (let mask = 0; mask < 512; mask++) {
    if (!maskHas(mask, 4)) continue;
    for (const pads of [[1, 1, 1, 1], [0, 0, 0, 0], [2, 2, 2, 2]] as [number, number, number, number][]) {
      const cover = minimalCover(mask, { pads, dilations: [pads[0] === 2 ? 2 : 1, pads[0] === 2 ? 2 : 1] });
      const seen = cover.flatMap((p) => p.positions).sort();
      const want = [0, 1, 2, 3, 4, 5, 6, 7, 8].filter((p) => maskHas(mask, p));
      assert.deepEqual(seen, want, `mask ${mask.toString(2)}`);
    }
  }
  // The cross and the quasi-hexagonal orientations need two pieces and no cropping under SAME pads.
  for (const m of ['010/111/010', '110/111/110', '011/111/011', '010/111/111', '111/111/010']) {
    const mask = parseInt(m.replace(/\//g, '').split('').reverse().join(''), 2);
    const cover = minimalCover(mask, { pads: [1, 1, 1, 1], dilations: [1, 1] });
    assert.equal(cover.length, 2, m);
    assert.ok(cover.every((p) => !needsCrop(p, { pads: [1, 1, 1, 1], dilations: [1, 1] })), m);
  }
});

async function outputs(file: string, batch: number): Promise<Float32Array> {
  const s = await ort.InferenceSession.create(file);
  const x = Float32Array.from({ length: batch * 784 }, (_, i) => ((i * 2654435761) % 1000) / 1000);
  const y = (await s.run({ [s.inputNames[0]]: new ort.Tensor('float32', x, [batch, 1, 28, 28]) }))[s.outputNames[0]].data as Float32Array;
  await s.release();
  return y;
}

function assertClose(a: Float32Array, b: Float32Array, what: string): void {
  assert.equal(a.length, b.length);
  let maxAbs = 0;
  for (const v of b) maxAbs = Math.max(maxAbs, Math.abs(v));
  for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i] - b[i]) <= 1e-5 * maxAbs + 1e-6, `${what}[${i}]: ${a[i]} vs ${b[i]}`);
}

for (const name of ['resnet-fmnist.onnx', 'vgg-fmnist.onnx', 'dwsep-fmnist.onnx', 'misc-fmnist.onnx', 'vgg-fmnist-constants.onnx', 'vgg-fmnist-external/model.onnx']) {
  for (const shape of ['cross', 'qh', '011/111/110']) {
    test(`${name} ${shape}: decomposed and sparse layouts compute what the masked model computes`, async () => {
      const input = path.join(FIXTURES, 'models', name);
      const stem = path.join(dir, `${name.replace(/\//g, '_')}.${shape.replace(/\//g, '')}`);
      const masked = await prune(input, { shape, output: `${stem}.masked.onnx`, layout: 'masked' });
      const dec = await prune(input, { shape, output: `${stem}.dec.onnx`, layout: 'decomposed' });
      const ref = await outputs(`${stem}.masked.onnx`, 3);
      assertClose(await outputs(`${stem}.dec.onnx`, 3), ref, 'decomposed');
      assert.ok(dec.layers.every((l) => l.layout === 'decomposed'), JSON.stringify(dec.layers.map((l) => l.layoutNote)));
      // Stored 3x3 weights are exactly the kept positions. (Tiny layers, as in the depthwise model,
      // can still grow the file: the extra node descriptions outweigh a few hundred weights.)
      for (const l of dec.layers) assert.equal(l.storedWeights, l.keptParams);
      if (/resnet|vgg/.test(name) && shape !== '011/111/110') assert.ok(dec.after.size.bytes < 0.9 * masked.after.size.bytes);
      assert.equal(dec.after.params.conv3x3, dec.layers.reduce((a, l) => a + l.keptParams, 0));
      if (dec.after.macs.status === 'measured' && masked.after.macs.status === 'measured') {
        // What the decomposed model executes equals the masked model's multiplications by non-zeros.
        assert.equal(dec.after.macs.conv3x3Dense, masked.after.macs.conv3x3Effective);
      }
      // Sparse: every layer (initializer or Constant node) a Constant with a sparse_value, same outputs.
      const sparse = await prune(input, { shape, output: `${stem}.sparse.onnx`, layout: 'sparse' });
      assert.ok(sparse.layers.every((l) => l.layout === 'sparse'), JSON.stringify(sparse.layers.map((l) => l.layoutNote)));
      assertClose(await outputs(`${stem}.sparse.onnx`, 2), await outputs(`${stem}.masked.onnx`, 2), 'sparse');
      const m = await readOnnxModel(`${stem}.sparse.onnx`);
      const sparseNodes = (m.graph.node ?? []).filter((n) => n.opType === 'Constant' && n.attribute?.some((a) => a.name === 'sparse_value'));
      assert.equal(sparseNodes.length, sparse.layers.length);
      assert.equal((m.graph.sparseInitializer ?? []).length, 0);
      // Read back densified: exactly the non-zeros stored.
      for (const l of sparse.layers) assert.equal(tensorFloats(m, m.constants.get(l.id)!).filter((v) => v !== 0).length, l.storedWeights);
    });
  }
}

test('--layout auto keeps, per layer, the form that timed faster, and still computes the masked model', async () => {
  const input = path.join(FIXTURES, 'models', 'vgg-fmnist.onnx');
  const out = path.join(dir, 'vgg.auto.onnx');
  const report = await prune(input, { shape: 'cross', output: out, layout: 'auto', latencyRuns: 5 });
  const timings = report.layoutTimings!;
  assert.equal(timings.length, report.layers.length);
  // The whole written model is timed against the original too; when it came out slower (a busy
  // machine can do that), every layer is written masked and the report says why.
  const fellBack = report.layoutFallback !== null;
  if (fellBack) assert.match(report.layoutFallback!, /latency end to end/);
  for (const t of timings) {
    const layer = report.layers.find((l) => l.id === t.layer)!;
    assert.equal(layer.layout, fellBack ? 'masked' : t.choice);
    assert.equal(t.choice, t.decomposedMs !== null && t.decomposedMs <= t.maskedMs * 1.1 ? 'decomposed' : 'masked');
    assert.ok(t.maskedMs > 0);
  }
  await prune(input, { shape: 'cross', output: path.join(dir, 'vgg.auto-ref.onnx'), latencyRuns: 0 });
  assertClose(await outputs(out, 2), await outputs(path.join(dir, 'vgg.auto-ref.onnx'), 2), 'auto');
  assert.ok(!('status' in report.latency));
  if (!('status' in report.latency)) {
    assert.equal(report.latency.runs, 5);
    assert.ok(report.latency.before.medianMs > 0 && report.latency.after.medianMs > 0);
    assert.ok(Math.abs(report.latency.ratio - report.latency.after.medianMs / report.latency.before.medianMs) < 1e-12);
  }
});
