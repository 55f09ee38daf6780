/**
 * Models larger than memory: external weights are read one tensor at a time and never held, reshaped
 * weights are made when written, a model can be pruned without being run (`run: false`), and
 * runtime probes of external-data models leave nothing behind. The memory figures themselves are
 * measured in bench/large.ts; here, the behaviour that bounds them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import path from 'node:path';
import { KpruneError, applyPlan, loadModel, maskedWeightMap, planShapes, parseShapeSpec, analyzeModel, prune, renderHtml, renderPrune, compare, renderCompare } from '../src/index.js';
import { verifyByReading } from '../src/pipeline/verify.js';
import { GZIP_LEVEL, measureFiles } from '../src/report/measure.js';
import { FIXTURES, listing, tempDir } from './helpers/tmp.js';

const EXTERNAL_DIR = path.join(FIXTURES, 'models', 'vgg-fmnist-external');
const EXTERNAL = path.join(EXTERNAL_DIR, 'model.onnx');
const dir = tempDir();

test('external 3x3 weights are read at each access and not kept; inline ones are plain values', async () => {
  const model = await loadModel(EXTERNAL);
  for (const l of model.layers) {
    assert.equal(typeof Object.getOwnPropertyDescriptor(l, 'weights')?.get, 'function', l.id);
    const a = l.weights;
    const b = l.weights;
    assert.notEqual(a, b, 'a new array per access: nothing is cached');
    assert.deepEqual(a, b);
  }
  const inline = await loadModel(path.join(FIXTURES, 'models', 'vgg-fmnist.onnx'));
  assert.ok(inline.layers.every((l) => Object.getOwnPropertyDescriptor(l, 'weights')?.value instanceof Float32Array));
  // The same numbers either way.
  for (const [i, l] of model.layers.entries()) assert.deepEqual(l.weights, inline.layers[i].weights);
});

test('reshaped weights are made at each lookup from the original, masked', async () => {
  const model = await loadModel(EXTERNAL);
  const plan = planShapes(model.layers, parseShapeSpec('cross'), analyzeModel(model.layers).layers);
  const weights = maskedWeightMap(applyPlan(model.layers, plan));
  assert.equal(weights.size, model.layers.length);
  const id = model.layers[0].id;
  const first = weights.get(id)!;
  first.fill(7);
  const second = weights.get(id)!;
  assert.notEqual(second[4], 7, 'a caller changing one copy does not change the next');
  assert.equal(second[0], 0, 'corner of the first kernel is masked');
  assert.equal(second[4], model.layers[0].weights[4], 'centre kept');
  assert.deepEqual([...weights.keys()], model.layers.map((l) => l.id));
});

test('run: false writes what a full run writes, checks it by reading it back, and reports runtime figures as unknown', async () => {
  // A private copy of the model: other test files probe the fixture at the same time.
  const model = path.join(dir, 'input');
  mkdirSync(model);
  for (const f of ['model.onnx', 'weights.bin']) copyFileSync(path.join(EXTERNAL_DIR, f), path.join(model, f));
  for (const d of ['ran', 'not-run']) mkdirSync(path.join(dir, d));
  const ran = await prune(path.join(model, 'model.onnx'), { layout: 'masked', shape: 'cross', output: path.join(dir, 'ran', 'out.onnx'), latencyRuns: 0 });
  const notRun = await prune(path.join(model, 'model.onnx'), { layout: 'masked', shape: 'cross', output: path.join(dir, 'not-run', 'out.onnx'), run: false });
  // The probe model onnxruntime needed beside the input is gone again.
  assert.deepEqual(listing(model), ['model.onnx', 'weights.bin']);
  for (const f of ['out.onnx', 'out.weights.bin']) assert.ok(readFileSync(path.join(dir, 'ran', f)).equals(readFileSync(path.join(dir, 'not-run', f))), f);
  assert.match(ran.output.verified, /ran once in onnxruntime-node/);
  assert.match(notRun.output.verified, /read back by kprune, not run .*: 5 masked layer\(s\) zero exactly outside their masks/);
  assert.equal(ran.after.macs.status, 'measured');
  assert.equal(notRun.after.macs.status, 'unknown');
  assert.ok('reason' in notRun.after.macs && /--no-run/.test(notRun.after.macs.reason));
  assert.ok('status' in notRun.latency && /--no-run/.test(notRun.latency.reason));
  assert.deepEqual(notRun.after.params, ran.after.params);
  assert.equal(notRun.after.size.gzipBytes, ran.after.size.gzipBytes);
});

test('run: false refuses what needs runs, before writing anything', async () => {
  const out = path.join(dir, 'refused.onnx');
  await assert.rejects(prune(EXTERNAL, { shape: 'cross', output: out, run: false, layout: 'auto' }), (e: unknown) => e instanceof KpruneError && e.code === 'usage' && /--layout auto needs to run the model/.test(e.message));
  await assert.rejects(prune(EXTERNAL, { shape: 'cross', output: out, run: false, data: { data: 'fashion-mnist', calib: 8, eval: 8 } }), (e: unknown) => e instanceof KpruneError && e.code === 'usage' && /--data needs to run the model/.test(e.message));
  assert.ok(!listing(dir).includes('refused.onnx'));
});

test('reading back catches weights outside the mask', async () => {
  const model = await loadModel(EXTERNAL);
  const plan = planShapes(model.layers, parseShapeSpec('cross'), analyzeModel(model.layers).layers);
  // The unpruned original does not respect the cross mask.
  await assert.rejects(verifyByReading(EXTERNAL, plan, []), /has weights outside its mask 010\/111\/010/);
});

test('a data file cut short after loading is a clear error when the tensor is read, not short data', async () => {
  const copy = path.join(dir, 'cut');
  mkdirSync(copy);
  copyFileSync(EXTERNAL, path.join(copy, 'model.onnx'));
  copyFileSync(path.join(EXTERNAL_DIR, 'weights.bin'), path.join(copy, 'weights.bin'));
  const model = await loadModel(path.join(copy, 'model.onnx'));
  truncateSync(path.join(copy, 'weights.bin'), 100);
  assert.throws(() => model.layers[model.layers.length - 1].weights, /external data file "weights.bin" ended early/);
});

test('file sizes are measured streaming, and match gzip of the whole file', async () => {
  const files = [EXTERNAL, path.join(EXTERNAL_DIR, 'weights.bin')];
  const sizes = await measureFiles(files);
  for (const [i, f] of files.entries()) {
    const data = readFileSync(f);
    assert.equal(sizes.files[i].bytes, data.length);
    assert.equal(sizes.files[i].gzipBytes, gzipSync(data, { level: GZIP_LEVEL }).length);
  }
  const empty = path.join(dir, 'empty.bin');
  writeFileSync(empty, new Uint8Array(0));
  assert.equal((await measureFiles([empty])).files[0].bytes, 0);
});

test('gzip: false reports sizes without gzip sizes, and the report says so', async () => {
  const r = await prune(EXTERNAL, { shape: 'cross', output: path.join(dir, 'no-gzip.onnx'), run: false, gzip: false });
  assert.equal(r.before.size.gzipBytes, null);
  assert.equal(r.after.size.gzipBytes, null);
  assert.ok(r.after.size.files.every((f) => f.gzipBytes === null && f.bytes > 0));
  assert.equal(r.after.size.bytes, r.after.size.files.reduce((a, f) => a + f.bytes, 0));
  assert.match(renderPrune(r, { verbose: false }), /gzip\s+not measured\s+not measured/);
  assert.match(renderHtml(r), /gzip sizes not measured \(--no-gzip\)/);
  assert.doesNotMatch(renderHtml(r), /File size, gzip/);
  const c = await compare(EXTERNAL, path.join(dir, 'no-gzip.onnx'), { gzip: false, latencyRuns: 0 });
  assert.equal(c.before.size.gzipBytes, null);
  assert.equal(c.after.size.bytes, r.after.size.bytes);
  assert.match(renderCompare(c), /gzip\s+not measured/);
});
