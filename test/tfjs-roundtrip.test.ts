/**
 * TF.js models through prune: LayersModels (Sequential and functional with a nested model and a
 * shared layer) and a hand-written GraphModel, float32 over several shards and groups, and uint8,
 * uint16 and float16 copies. The written model loads in TF.js, its kernels are the input's with
 * exactly the masked positions zeroed, its predictions match the masked model in memory, and its
 * storage (dtypes, quantization, shards, paths, the rest of model.json) is as before.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type * as TF from '../src/runtime/tfjs/tf.js';
import { prune } from '../src/pipeline/prune.js';
import { analyze } from '../src/pipeline/analyze.js';
import { maskHas, parseMask } from '../src/core/lattice.js';
import { TfjsModel, readTfjsModel, readWeightBytes, weightFloats } from '../src/formats/tfjs/read.js';
import { decodeFloats, encodeFloats } from '../src/formats/tfjs/dtypes.js';
import { fileHandler, memoryHandler, modelArtifacts } from '../src/models/tfjs/io.js';
import { executeGraph } from '../src/models/tfjs/runner.js';
import { Quantization, tfjs, tfjsCases } from './helpers/tfjs-models.js';
import { tempDir } from './helpers/tmp.js';
import { randomFloats } from './helpers/onnx-builder.js';
import { assertClose } from './helpers/assert-close.js';

const dir = tempDir('kprune-tfjs-');
const QUANT: Quantization[] = ['float32', 'uint8', 'uint16', 'float16'];

const CASES = tfjsCases(true);

async function predict(loaded: { kind: 'layers'; model: TF.LayersModel } | { kind: 'graph'; model: TF.GraphModel }, x: TF.Tensor): Promise<Float32Array> {
  const out = loaded.kind === 'layers' ? loaded.model.predict(x) as TF.Tensor : (await executeGraph(loaded.model, { x }))[0];
  const v = await out.data() as Float32Array;
  out.dispose();
  return v;
}

async function load(kind: 'layers' | 'graph', handler: TF.io.IOHandler) {
  const tf = await tfjs();
  return kind === 'layers' ? { kind, model: await tf.loadLayersModel(handler) } as const : { kind, model: await tf.loadGraphModel(handler) } as const;
}

/** 3x3 position of element i of a TF kernel [3][3][a][b] (HWIO or depthwise). */
const positionOf = (shape: number[], i: number) => Math.floor(i / (shape[2] * shape[3]));

function manifestOf(m: TfjsModel) {
  return (m.json.weightsManifest as { paths: string[]; weights: { name: string; dtype: string; quantization?: { dtype: string } }[] }[]);
}

for (const c of CASES) {
  for (const q of QUANT) {
    test(`${c.name} (${q}): cross keeps storage, zeroes exactly the masked positions, runs in TF.js`, async () => {
      const tf = await tfjs();
      const input = await c.make(path.join(dir, `${c.name}-${q}`), q);
      const out = path.join(dir, `${c.name}-${q}.out`, 'model.json');
      mkdirSync(path.dirname(out), { recursive: true });
      const report = await prune(input, { layout: 'masked', shape: 'cross', output: out, latencyRuns: 0 });
      assert.equal(report.input.format, c.kind === 'layers' ? 'tfjs-layers' : 'tfjs-graph');
      assert.match(report.output.verified, /loaded and ran once in TF\.js/);
      assert.ok(report.plan.entries.length >= 4, 'several 3x3 layers');
      const before = await readTfjsModel(input);
      const after = await readTfjsModel(out);

      // Storage: same groups, paths, shard sizes, dtypes and quantization dtypes.
      const mb = manifestOf(before);
      const ma = manifestOf(after);
      assert.equal(ma.length, mb.length);
      ma.forEach((g, gi) => {
        assert.deepEqual(g.paths, mb[gi].paths);
        assert.deepEqual(after.groups[gi].shards.map((s) => s.bytes), before.groups[gi].shards.map((s) => s.bytes));
        g.weights.forEach((w, wi) => {
          assert.equal(w.dtype, mb[gi].weights[wi].dtype);
          assert.equal(w.quantization?.dtype, mb[gi].weights[wi].quantization?.dtype, `${w.name} storage`);
        });
      });

      // Weights: pruned kernels are the input's with the cross's dropped positions exactly 0.
      const cross = parseMask('010/111/010');
      const pruned = new Set(report.plan.entries.map((e) => e.layer));
      const replace = new Map<string, Float32Array>();
      for (const w of before.weights) {
        const wa = after.byName.get(w.name)!;
        if (!pruned.has(w.name)) {
          assert.deepEqual(readWeightBytes(after, wa), readWeightBytes(before, w), `${w.name} bytes unchanged`);
          continue;
        }
        const vb = weightFloats(before, w)!;
        const va = weightFloats(after, wa)!;
        const masked = vb.map((v, i) => (maskHas(cross, positionOf(w.shape, i)) ? v : 0));
        // What the writer must store: the masked values in the original storage (fresh range).
        const enc = encodeFloats(w.storage, masked);
        const stored = decodeFloats(enc.storage, enc.bytes);
        replace.set(w.name, stored);
        assert.deepEqual(va, stored, `${w.name}: the masked kernel, re-encoded as ${w.storage.kind}`);
        const tol = wa.storage.kind === 'affine' ? wa.storage.scale * 0.5000001 : 0;
        for (let i = 0; i < vb.length; i++) {
          if (!maskHas(cross, positionOf(w.shape, i))) assert.ok(va[i] === 0, `${w.name}[${i}] is exactly 0, got ${va[i]}`);
          else assert.ok(Math.abs(va[i] - vb[i]) <= tol, `${w.name}[${i}]: ${va[i]} vs ${vb[i]} (tolerance ${tol})`);
        }
      }

      // model.json: only the re-quantized ranges may differ.
      if (q === 'float32' || q === 'float16') {
        assert.equal(after.text, before.text, 'model.json byte-identical');
      } else {
        const strip = (m: TfjsModel) => {
          const doc = JSON.parse(m.text);
          for (const g of doc.weightsManifest) for (const w of g.weights) if (pruned.has(w.name)) { delete w.quantization.min; delete w.quantization.scale; }
          return doc;
        };
        assert.deepEqual(strip(after), strip(before));
        // And as text: byte for byte once the range numbers are blanked out.
        const blank = (t: string) => t.replace(/("(?:min|scale)"\s*:\s*)-?[0-9.eE+-]+/g, '$1#');
        assert.equal(blank(after.text), blank(before.text));
      }

      // Predictions: the written model equals the masked model in memory, within 1e-5.
      const x = tf.tensor(randomFloats(c.inputDims.reduce((a, b) => a * b, 1), 7), c.inputDims);
      const reference = await load(c.kind, memoryHandler(modelArtifacts(before, { replace })));
      const written = await load(c.kind, fileHandler(out));
      const yr = await predict(reference, x);
      const yw = await predict(written, x);
      assertClose(yw, yr, 1e-5, 'prediction');
      reference.model.dispose();
      written.model.dispose();
      x.dispose();

      // The figures the report rests on.
      assert.ok(report.after.params.conv3x3Nonzero <= report.before.params.conv3x3 * (5 / 9));
      assert.equal(report.before.macs.status, 'measured');
      assert.deepEqual(report.after.size.files.map((f) => path.basename(f.path)).sort(), [...mb.flatMap((g) => g.paths), 'model.json'].sort());
    });
  }
}

test('analysis runs on every case without TF.js', async () => {
  for (const c of CASES) {
    const input = await c.make(path.join(dir, `${c.name}-analyze`), 'uint8');
    const a = await analyze(input);
    assert.ok(a.layers.length >= 4, c.name);
    assert.equal(a.input.format, c.kind === 'layers' ? 'tfjs-layers' : 'tfjs-graph');
    assert.deepEqual(a.skipped, []);
  }
});

test('--shape full writes byte-identical files', async () => {
  const input = await CASES[0].make(path.join(dir, 'full-in'), 'uint8');
  const out = path.join(dir, 'full-out', 'model.json');
  mkdirSync(path.dirname(out));
  await prune(input, { layout: 'masked', shape: 'full', output: out, latencyRuns: 0 });
  const before = await readTfjsModel(input);
  for (const f of [input, ...before.groups.flatMap((g) => g.shards.map((s) => s.file))]) {
    assert.ok(readFileSync(path.join(path.dirname(out), path.basename(f))).equals(readFileSync(f)), path.basename(f));
  }
});
