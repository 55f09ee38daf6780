/**
 * Slim layouts for TF.js models: the decomposed LayersModel (Sequential written as functional,
 * functional with a nested model and a shared layer) and GraphModel compute what the masked model
 * computes, store exactly the kept weights, in the original storage; `--layout auto` times every
 * layer and its choices are what gets written; and the real esrgan-slim x2 model decomposes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import type * as TF from '../src/runtime/tfjs/tf.js';
import { prune } from '../src/pipeline/prune.js';
import type { PruneReport } from '../src/report/report.js';
import { readTfjsModel, weightFloats, elementCount } from '../src/formats/tfjs/read.js';
import { fileHandler } from '../src/models/tfjs/io.js';
import { executeGraph } from '../src/models/tfjs/runner.js';
import { Quantization, saveLayersModel, seedWeights, tfjs, tfjsCases } from './helpers/tfjs-models.js';
import { tempDir } from './helpers/tmp.js';
import { randomFloats } from './helpers/onnx-builder.js';
import { assertClose } from './helpers/assert-close.js';

const dir = tempDir('kprune-tfjs-layouts-');
const ESRGAN = path.resolve(new URL('../../node_modules/@upscalerjs/esrgan-slim/models/x2/model.json', import.meta.url).pathname);

const CASES = tfjsCases();

async function predict(kind: 'layers' | 'graph', file: string, dims: number[], scale = 1): Promise<Float32Array> {
  const tf = await tfjs();
  const x = tf.tensor(randomFloats(dims.reduce((a, b) => a * b, 1), 7).map((v) => v * scale), dims);
  const model = kind === 'layers' ? await tf.loadLayersModel(fileHandler(file)) : await tf.loadGraphModel(fileHandler(file));
  const out = kind === 'layers' ? (model as TF.LayersModel).predict(x) as TF.Tensor : (await executeGraph(model as TF.GraphModel, { x }))[0];
  const v = await out.data() as Float32Array;
  out.dispose();
  x.dispose();
  model.dispose();
  return v;
}

/**
 * The decomposed layers' stored kernels: exactly the kept positions, in the original storage, each
 * value what the masked model stores at that position.
 */
async function checkStoredPieces(report: PruneReport, maskedFile: string, decomposedFile: string, quantize: Quantization): Promise<void> {
  const masked = await readTfjsModel(maskedFile);
  const dec = await readTfjsModel(decomposedFile);
  for (const l of report.layers.filter((x) => x.layout === 'decomposed')) {
    assert.equal(dec.byName.get(l.id), undefined, `${l.id}: the full kernel is gone`);
    // Piece kernels: "<id>/kp_r..." (GraphModel) or "<id>/kp_piece<i>/<kernel>" (LayersModel); not biases.
    const pieces = dec.weights.filter((w) => w.name.startsWith(`${l.id}/kp_`) && !w.name.endsWith('/bias'));
    assert.ok(pieces.length >= 2, `${l.id}: pieces ${pieces.map((p) => p.name)}`);
    const stored = pieces.reduce((a, w) => a + elementCount(w.shape), 0);
    assert.equal(stored, l.keptParams, `${l.id}: stored kernel elements are the kept positions`);
    assert.equal(l.storedWeights, l.keptParams);
    const full = masked.byName.get(l.id)!;
    const fullValues = weightFloats(masked, full)!;
    const block = full.shape[2] * full.shape[3];
    // Every kept value appears once among the pieces, bit for bit (the pieces share the masked kernel's range).
    const want = new Map<number, number>();
    for (let i = 0; i < fullValues.length; i++) if (fullValues[i] !== 0) want.set(fullValues[i], (want.get(fullValues[i]) ?? 0) + 1);
    for (const w of pieces) {
      assert.equal(w.storage.kind, full.storage.kind, `${w.name} storage`);
      if (quantize === 'uint8') assert.ok(w.storage.kind === 'affine' && w.storage.dtype === 'uint8');
      assert.equal(elementCount(w.shape) % block, 0);
      for (const v of weightFloats(dec, w)!) {
        if (v === 0) continue;
        assert.ok((want.get(v) ?? 0) > 0, `${w.name}: value ${v} is not one of the masked kernel's`);
        want.set(v, want.get(v)! - 1);
      }
    }
    assert.ok([...want.values()].every((n) => n === 0), `${l.id}: every kept value is stored`);
  }
}

for (const c of CASES) {
  for (const q of ['float32', 'uint8'] as Quantization[]) {
    for (const shape of ['cross', 'qh', '011/111/110']) {
      test(`${c.name} (${q}) ${shape}: decomposed computes the masked model and stores the kept weights`, async () => {
        const stem = path.join(dir, `${c.name}-${q}-${shape.replace(/\//g, '')}`);
        const input = await c.make(stem, q);
        const maskedOut = path.join(`${stem}.masked`, 'model.json');
        const decOut = path.join(`${stem}.dec`, 'model.json');
        const masked = await prune(input, { layout: 'masked', shape, output: maskedOut, latencyRuns: 0 });
        const dec = await prune(input, { shape, output: decOut, layout: 'decomposed', latencyRuns: 0 });
        assert.match(dec.output.verified, /loaded and ran once in TF\.js/);
        assert.ok(dec.layers.length >= 4);
        assert.ok(dec.layers.every((l) => l.layout === 'decomposed'), JSON.stringify(dec.layers.map((l) => [l.id, l.layoutNote])));
        if (c.name === 'sequential') assert.ok(dec.layers.every((l) => /Sequential model "seq" written as a functional model/.test(l.layoutNote ?? '')));
        assertClose(await predict(c.kind, decOut, c.inputDims), await predict(c.kind, maskedOut, c.inputDims), 1e-5, 'prediction');
        await checkStoredPieces(dec, maskedOut, decOut, q);
        // Executed 3x3 multiplications: the masked model's multiplications by non-zeros (by kept
        // weights: uint8 can round a kept weight to exactly 0).
        assert.ok(dec.after.macs.status === 'measured' && masked.after.macs.status === 'measured');
        if (dec.after.macs.status === 'measured' && masked.after.macs.status === 'measured') {
          if (q === 'float32') assert.equal(dec.after.macs.conv3x3Dense, masked.after.macs.conv3x3Effective);
          else assert.ok(dec.after.macs.conv3x3Dense >= masked.after.macs.conv3x3Effective);
          assert.ok(dec.after.macs.conv3x3Dense < masked.after.macs.conv3x3Dense);
        }
      });
    }
  }
}

test('--layout auto times every TF.js layer and writes its choices', async () => {
  for (const c of CASES) {
    const stem = path.join(dir, `${c.name}-auto`);
    const input = await c.make(stem, 'float32');
    const out = path.join(`${stem}.auto`, 'model.json');
    const report = await prune(input, { shape: 'cross', output: out, layout: 'auto', batch: 2, latencyRuns: 0 });
    const timings = report.layoutTimings!;
    assert.equal(timings.length, report.layers.length, c.name);
    for (const t of timings) {
      const layer = report.layers.find((l) => l.id === t.layer)!;
      assert.equal(layer.layout, t.choice, `${t.layer}: ${layer.layoutNote ?? ''}`);
      assert.ok(t.maskedMs > 0 && t.decomposedMs !== null && t.decomposedMs > 0, JSON.stringify(t));
      assert.equal(t.choice, t.decomposedMs! < t.maskedMs ? 'decomposed' : 'masked');
    }
    const ref = path.join(`${stem}.ref`, 'model.json');
    await prune(input, { layout: 'masked', shape: 'cross', output: ref, latencyRuns: 0 });
    assertClose(await predict(c.kind, out, c.inputDims), await predict(c.kind, ref, c.inputDims), 1e-5, `${c.name} auto`);
  }
});

test('decomposed with --weights float32, and a layer whose "same" pads depend on a free input size stays masked', async () => {
  const tf = await tfjs();
  // A uint8 model written all float32: the pieces too.
  const input = await CASES[0].make(path.join(dir, 'f32'), 'uint8');
  const out = path.join(dir, 'f32.dec', 'model.json');
  const ref = path.join(dir, 'f32.masked', 'model.json');
  await prune(input, { layout: 'masked', shape: 'cross', output: ref, latencyRuns: 0, weights: 'float32' });
  const dec = await prune(input, { shape: 'cross', output: out, layout: 'decomposed', latencyRuns: 0, weights: 'float32' });
  const written = await readTfjsModel(out);
  assert.ok(written.weights.every((w) => w.storage.kind === 'plain' && w.dtype === 'float32'));
  assert.ok(dec.layers.every((l) => l.layout === 'decomposed'));
  assertClose(await predict('layers', out, [2, 12, 12, 3]), await predict('layers', ref, [2, 12, 12, 3]), 1e-5, 'float32');

  // Input [null, null, null, 3]: a stride-2 "same" convolution's pads depend on the size.
  const x = tf.input({ shape: [null, null, 3], name: 'img' });
  const a = tf.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same', activation: 'relu', name: 'flat_conv' }).apply(x) as TF.SymbolicTensor;
  const b = tf.layers.conv2d({ filters: 5, kernelSize: 3, strides: 2, padding: 'same', name: 'strided' }).apply(a) as TF.SymbolicTensor;
  const m = tf.model({ inputs: x, outputs: b });
  seedWeights(tf, m, 5);
  const free = await saveLayersModel(tf, m, path.join(dir, 'free'));
  const freeOut = path.join(dir, 'free.dec', 'model.json');
  const freeRef = path.join(dir, 'free.masked', 'model.json');
  await prune(free, { layout: 'masked', shape: 'qh', output: freeRef, latencyRuns: 0 });
  const r = await prune(free, { shape: 'qh', output: freeOut, layout: 'decomposed', inputShape: '1,9,9,3', latencyRuns: 0 });
  const byName = new Map(r.layers.map((l) => [l.name, l]));
  assert.equal(byName.get('flat_conv')!.layout, 'decomposed');
  assert.equal(byName.get('strided')!.layout, 'masked');
  assert.match(byName.get('strided')!.layoutNote ?? '', /depends on the input size, which the model does not fix/);
  for (const size of [9, 8]) assertClose(await predict('layers', freeOut, [1, size, size, 3]), await predict('layers', freeRef, [1, size, size, 3]), 1e-5, `free ${size}`);
});

test('esrgan-slim x2, cross decomposed: the masked model\'s outputs at 32x32, smaller and faster', async (t) => {
  const maskedOut = path.join(dir, 'esrgan.masked', 'model.json');
  const decOut = path.join(dir, 'esrgan.dec', 'model.json');
  const masked = await prune(ESRGAN, { layout: 'masked', shape: 'cross', output: maskedOut, inputShape: '1,32,32,3', latencyRuns: 15 });
  const dec = await prune(ESRGAN, { shape: 'cross', output: decOut, inputShape: '1,32,32,3', latencyRuns: 15, layout: 'decomposed' });
  assert.equal(dec.layers.length, 8);
  assert.ok(dec.layers.every((l) => l.layout === 'decomposed'), JSON.stringify(dec.layers.map((l) => l.layoutNote)));
  // Pixels 0..255 in, as UpscalerJS feeds this model.
  const y = await predict('layers', decOut, [1, 32, 32, 3], 127.5);
  assertClose(y, await predict('layers', maskedOut, [1, 32, 32, 3], 127.5), 1e-5, 'esrgan');
  await checkStoredPieces(dec, maskedOut, decOut, 'float32');
  assert.ok(dec.after.size.bytes < 0.85 * masked.after.size.bytes, `${dec.after.size.bytes} vs ${masked.after.size.bytes}`);
  const ratio = (r: PruneReport) => ('ratio' in r.latency ? r.latency.ratio.toFixed(3) : 'n/a');
  t.diagnostic(`file bytes: original ${masked.before.size.bytes}, masked ${masked.after.size.bytes}, decomposed ${dec.after.size.bytes} (gzip ${masked.after.size.gzipBytes} / ${dec.after.size.gzipBytes})`);
  t.diagnostic(`latency ratio written/original at 1x32x32x3 (${'runtime' in dec.latency ? dec.latency.runtime : ''}): masked ${ratio(masked)}, decomposed ${ratio(dec)}`);
  t.diagnostic(`pieces: ${dec.layers.map((l) => `${l.name} ${l.layoutNote}`).join('; ')}`);
});
