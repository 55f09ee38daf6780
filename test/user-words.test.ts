/**
 * Figures and words that misled a new user (issue 16): each one checked where it is produced.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { compare } from '../src/pipeline/compare.js';
import { prune } from '../src/pipeline/prune.js';
import { resolveInputShapes } from '../src/pipeline/common.js';
import { costLine, renderCompare, renderPrune } from '../src/report/text.js';
import { renderHtml } from '../src/report/html.js';
import { baseName } from '../src/report/html-escape.js';
import type { LoadedModel } from '../src/models/index.js';
import { FIXTURES, tempDir } from './helpers/tmp.js';

const dir = tempDir();
const vgg = path.join(FIXTURES, 'models', 'vgg-fmnist.onnx');
const SUBSET = path.join(FIXTURES, 'data', 'fashion-mnist', 't10k-images-idx3-ubyte.gz');

test('compare: a decomposed B keeps its 3x3 weights (its pieces), and the runtime is named once', async () => {
  const out = path.join(dir, 'dec.onnx');
  const pruned = await prune(vgg, { shape: 'cross', layout: 'decomposed', output: out, latencyRuns: 0 });
  const r = await compare(vgg, out, { latencyRuns: 0, data: { data: SUBSET, eval: 50 }, gzip: false });
  // The pieces hold exactly the kept weights: 5 of 9 of each 3x3 kernel.
  assert.equal(r.after.params.conv3x3Nonzero, pruned.after.params.conv3x3Nonzero);
  assert.ok(r.after.params.conv3x3Nonzero > 0);
  const ratio = r.after.params.conv3x3Nonzero / r.before.params.conv3x3Nonzero;
  assert.ok(Math.abs(ratio - 5 / 9) < 0.01, `3x3 weights kept ${ratio}`);
  assert.ok(r.after.params.conv3x3 > 0, 'stored 3x3 weights counted on B');
  const text = renderCompare(r);
  assert.doesNotMatch(text, /in 3x3 convs .* -> 0 /);
  assert.equal(r.accuracy.status, 'measured');
  if (r.accuracy.status === 'measured') {
    assert.doesNotMatch(r.accuracy.runtime, /;/, `one runtime, once: ${r.accuracy.runtime}`);
    const line = text.split('\n').find((l) => l.startsWith('quality on'))!;
    const name = r.accuracy.runtime;
    assert.equal(line.split(name).length - 1, 1, line);
  }
});

test('the note on an unchanged raw size names the layout written (not "masked" for a sparse run)', async () => {
  const out = path.join(dir, 'sparse.onnx');
  const r = await prune(vgg, { shape: 'cross', layout: 'sparse', output: out, latencyRuns: 0 });
  const text = renderPrune(r);
  const html = renderHtml(r);
  assert.doesNotMatch(text, /masked layout/);
  assert.doesNotMatch(html, /masked layout/);
  if (r.after.size.bytes >= r.before.size.bytes) assert.match(text, /the sparse layout stores an index/);
  const masked = renderPrune(await prune(vgg, { shape: 'cross', layout: 'masked', output: path.join(dir, 'masked.onnx'), latencyRuns: 0 }));
  assert.match(masked, /the masked layout keeps zeros in place/);
});

test('--size fills a TF.js image input\'s dynamic height and width, so MACs and latency can be measured', () => {
  const tfjs = { inputs: [{ name: 'input', dims: [null, null, null, 3], type: 'float32' }] } as unknown as LoadedModel;
  const unknown = resolveInputShapes(tfjs);
  assert.equal(unknown.inputShapes, null);
  assert.match(unknown.unknownReason, /dynamic dimension/);
  const sized = resolveInputShapes(tfjs, undefined, { height: 32, width: 24 });
  assert.deepEqual([...sized.inputShapes!], [['input', [1, 32, 24, 3]]]);
  const onnx = { inputs: [{ name: 'x', dims: ['N', 3, 'H', 'W'], type: 'float32' }] } as unknown as LoadedModel;
  assert.deepEqual([...resolveInputShapes(onnx, undefined, { height: 28, width: 28 }).inputShapes!], [['x', [1, 3, 28, 28]]]);
  // --input-shape still wins.
  assert.deepEqual([...resolveInputShapes(onnx, '2,3,8,8', { height: 28, width: 28 }).inputShapes!], [['x', [2, 3, 8, 8]]]);
});

test('page titles name a TF.js model by its folder; shards are not called external data', async () => {
  assert.equal(baseName('/m/esrgan/model.json'), 'esrgan/model.json');
  assert.equal(baseName('/m/esrgan.kpruned/model.json'), 'esrgan.kpruned/model.json');
  assert.equal(baseName('model.json'), 'model.json');
  assert.equal(baseName('/m/vgg.onnx'), 'vgg.onnx');
  const r = await prune(vgg, { shape: 'cross', output: path.join(dir, 'title.onnx'), latencyRuns: 0, gzip: false });
  const fake = {
    ...r,
    input: { ...r.input, path: '/m/esrgan/model.json', format: 'tfjs' },
    output: { ...r.output, path: '/m/esrgan.kpruned/model.json', files: ['/m/esrgan.kpruned/model.json', '/m/esrgan.kpruned/group1-shard1of1.bin'] },
    before: { ...r.before, size: { ...r.before.size, files: [{ path: '/m/esrgan/model.json', bytes: 1, gzipBytes: null }, { path: '/m/esrgan/group1-shard1of1.bin', bytes: 1, gzipBytes: null }] } },
  } as typeof r;
  const html = renderHtml(fake);
  assert.match(html, /<title>kprune: esrgan\/model\.json → esrgan\.kpruned\/model\.json/);
  assert.doesNotMatch(html, /files: [^<]*external data/);
  assert.match(html, /model\.json and weight shards/);
});

test('a run that lost a point or more says what it bought and how to measure a better trade', async () => {
  const r = await prune(vgg, { shape: 'cross', output: path.join(dir, 'cost.onnx'), latencyRuns: 0, gzip: false });
  assert.equal(r.accuracy.status, 'unknown');
  assert.equal(costLine(r), null, 'no accuracy, no cost line');
  const pair = (top1: number) => ({ clean: { top1, top5: 1, agreement: top1 } });
  const measured = (original: number, written: number) => ({
    ...r,
    accuracy: { status: 'measured', evalSamples: 100, evalSource: 'test', runtime: 'ort', occlusion: null, original: pair(original), reshaped: pair(0.5), written: pair(written) },
  }) as unknown as typeof r;
  assert.equal(costLine(measured(0.9, 0.895)), null, 'half a point is not called a cost');
  const line = costLine(measured(0.9, 0.87));
  assert.ok(line);
  assert.match(line, /^cost: 3\.00 points of top-1 for \d+\.\d% of the parameters and \d+\.\d% of the MACs/);
  const saved = 100 * (1 - r.after.params.nonzero / r.before.params.nonzero);
  assert.ok(line.includes(`for ${saved.toFixed(1)}% of the parameters`), line);
  assert.ok(line.includes(`kprune sweep ${vgg} --budget-of macs --max-drop 1`), line);
  assert.match(renderPrune(measured(0.9, 0.87)), /^cost: 3\.00 points/m);
  // A gate already judged the drop: no second verdict.
  const gated = { ...measured(0.9, 0.87), gate: { maxDrop: 5, metric: 'top1', drop: 3, passed: true, reason: '' } } as typeof r;
  assert.equal(costLine(gated), null);
});

test('the page carries the cost line too', async () => {
  const r = await prune(vgg, { shape: 'cross', output: path.join(dir, 'cost-page.onnx'), latencyRuns: 0, gzip: false });
  const pair = (top1: number) => ({ clean: { top1, top5: 1, agreement: top1 } });
  const lost = { ...r, accuracy: { status: 'measured', evalSamples: 100, evalSource: 'test', runtime: 'ort', occlusion: null, original: pair(0.9), reshaped: pair(0.5), written: pair(0.85) } } as unknown as typeof r;
  assert.match(renderHtml(lost), /<p class="gate failed">cost: 5\.00 points of top-1/);
  assert.doesNotMatch(renderHtml(r), /cost: /);
});
