/**
 * The HTML report shows fine-tuning: engine, device and threads, steps, images/s, the held-out
 * figures that chose the checkpoint, the chosen step, and whether the start was kept, from the
 * same report the text and JSON show; nothing about fine-tuning when it did not run.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { prune } from '../src/index.js';
import type { PruneReport } from '../src/index.js';
import { renderHtml } from '../src/report/html.js';
import { finetuneCardHtml } from '../src/report/html-finetune.js';
import type { FinetuneFigures } from '../src/report/report.js';
import { FIXTURES, tempDir } from './helpers/tmp.js';

const dir = tempDir('kprune-html-ft-');
const MODEL = path.join(FIXTURES, 'models', 'vgg-fmnist.onnx');
const SUBSET = path.join(FIXTURES, 'data', 'fashion-mnist', 't10k-images-idx3-ubyte.gz');
const data = { data: SUBSET, calib: 96, eval: 60 };

/** The text of the page without tags (what a reader sees), whitespace collapsed. */
const visible = (html: string) => html.replace(/<[^>]+>/g, ' ').replace(/&amp;/g, '&').replace(/\s+/g, ' ');

const tuned: PruneReport = await prune(MODEL, { shape: 'cross', output: path.join(dir, 'tuned.onnx'), data, finetune: { steps: 4, batch: 16, threads: 1 }, latencyRuns: 0 });
const plain: PruneReport = await prune(MODEL, { shape: 'cross', output: path.join(dir, 'plain.onnx'), data, latencyRuns: 0 });

test('a fine-tuned run: the card names the engine, device, threads, steps, images/s and the held-out figures that chose the checkpoint', () => {
  const f = tuned.finetune!;
  assert.ok(f, 'the run fine-tuned');
  const page = visible(renderHtml(tuned));
  assert.match(page, /Fine-tuning/);
  assert.match(page, /onnxruntime \(a training graph kprune builds\)/);
  assert.ok(page.includes(f.backend), 'device and threads as the run states them');
  assert.match(f.backend, /cpu, 1 thread/);
  assert.ok(page.includes(`${f.steps} of ${f.batch} samples (${f.objective})`));
  assert.ok(page.includes(`${Math.round(f.imagesPerSecond)} images/s`));
  assert.ok(page.includes(`on ${f.heldOut.samples} samples`));
  assert.ok(page.includes(f.heldOut.before.loss.toFixed(4)) && page.includes(f.heldOut.after.loss.toFixed(4)), 'held-out loss before and after');
  assert.ok(page.includes(`written (step ${f.bestStep})`));
  assert.match(page, f.bestStep > 0 ? new RegExp(`step ${f.bestStep} of ${f.steps}`) : /start kept/);
});

test('no fine-tuning: no card', () => {
  assert.equal(plain.finetune, null);
  assert.doesNotMatch(renderHtml(plain), /Fine-tuning|class="card finetune"/);
});

test('the start kept, with the trained checkpoint that was not enough; TF.js with its reason; hostile text escaped', () => {
  const base = tuned.finetune!;
  const kept: FinetuneFigures = {
    ...base, engine: 'tfjs', backend: 'TF.js 4.22.0 (wasm backend)', bestStep: 0,
    missingOperators: ['<b>GlobalMaxPool</b> (pool): no rule'],
    heldOut: { ...base.heldOut, improvement: undefined, notSignificant: { step: 3, improvement: { loss: 0.0012, stdError: 0.0009 } } },
  };
  const html = finetuneCardHtml(kept);
  const page = visible(html);
  assert.match(page, /start kept/);
  assert.match(page, /the reconstructed start, kept: the best trained checkpoint \(step 3\) lowered the held-out loss by 0\.0012 ± 0\.0009, under two standard errors/);
  assert.match(page, /Engine TF\.js/);
  assert.match(page, /TF\.js 4\.22\.0 \(wasm backend\)/);
  assert.ok(!html.includes('<b>GlobalMaxPool'), 'escaped');
  assert.match(html, /&lt;b&gt;GlobalMaxPool/);
});
