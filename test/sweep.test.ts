/**
 * `kprune sweep`: every point reshaped, recovered and measured as `prune` would, the Pareto front
 * marked, each point's command reproducing it, and the page with the plot.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { markPareto, prune, sweep } from '../src/index.js';
import { withinDrop } from '../src/pipeline/sweep.js';
import { CLI, FIXTURES, tempDir } from './helpers/tmp.js';

const dir = tempDir('kprune-sweep-');
const vgg = path.join(FIXTURES, 'models', 'vgg-fmnist.onnx');
const SUBSET = path.join(FIXTURES, 'data', 'fashion-mnist', 't10k-images-idx3-ubyte.gz');

test('markPareto: a point is on the front unless another has at least its quality with at most its parameters', () => {
  const p = (quality: number, after: number) => ({ quality, params: { after }, pareto: false });
  const pts = markPareto([p(0.9, 100), p(0.8, 50), p(0.85, 100), p(0.8, 60), p(0.95, 200)]);
  assert.deepEqual(pts.map((x) => x.pareto), [true, true, false, false, true]);
});

test('sweep: each point is what prune makes with its command, measured; the front is marked', async () => {
  const data = { data: SUBSET, calib: 64, eval: 100 };
  const r = await sweep(vgg, { data, shapes: ['cross', 'x'], budgets: [0.5] });
  assert.equal(r.kind, 'sweep');
  assert.deepEqual(r.points.map((p) => [p.shape, p.budget]), [['cross', null], ['x', null], ['auto', 0.5]]);
  assert.equal(r.original.metric, 'top1');
  for (const p of r.points) {
    assert.ok(p.quality > 0.1 && p.quality <= 1, `${p.shape}: quality ${p.quality}`);
    assert.ok(p.params.ratio < 1 && p.fileBytes.ratio < 0.9 && p.macs!.ratio < 1, `${p.shape}: smaller`);
    assert.match(p.command, new RegExp(`--shape ${p.shape}`));
  }
  assert.ok(r.points.find((p) => p.shape === 'auto')!.keptFraction <= 0.5);
  assert.ok(r.points.some((p) => p.pareto));
  // The cross point is what prune writes with the same data: same quality, same file size.
  const cross = r.points[0];
  const pruned = await prune(vgg, { shape: 'cross', data, output: path.join(dir, 'cross.onnx'), latencyRuns: 0, gzip: false });
  assert.equal(pruned.accuracy.status, 'measured');
  if (pruned.accuracy.status === 'measured') assert.equal(pruned.accuracy.written.clean.top1, cross.quality);
  assert.equal(pruned.after.size.bytes, cross.fileBytes.after);
  assert.equal(pruned.after.params.nonzero, cross.params.after);
});

test('kprune sweep prints the table and writes the page with the plot', () => {
  const page = path.join(dir, 'sweep.html');
  const r = spawnSync(process.execPath, [CLI, 'sweep', vgg, '--data', SUBSET, '--calib', '32', '--eval', '50', '--shapes', 'cross', '--budgets', '0.6', '--report', page], { cwd: dir, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /2 points, top-1 on 50 evaluation samples/);
  assert.match(r.stdout, new RegExp(`kprune ${vgg.replace(/[.]/g, '\\.')} --data \\S+ --calib 32 --eval 50 --shape cross`));
  assert.match(r.stdout, /^report: .*sweep\.html$/m);
  const html = readFileSync(page, 'utf8');
  assert.match(html, /<svg class="sweep-plot"/);
  assert.equal([...html.matchAll(/<g class="point/g)].length, 2);
  const noData = spawnSync(process.execPath, [CLI, 'sweep', vgg], { cwd: dir, encoding: 'utf8' });
  assert.equal(noData.status, 2);
  assert.match(noData.stderr, /sweep needs --data/);
});

test('withinDrop: the point within the drop that keeps the fewest MACs, or none', () => {
  const point = (quality: number, macs: number | null, params: number) => ({
    shape: 'auto', budget: 0.5, keptFraction: 0.5, metric: 'top1' as const, quality, occludedQuality: null,
    params: { after: params, before: 100, ratio: params / 100 }, macs: macs === null ? null : { after: macs, before: 1000, ratio: macs / 1000 },
    fileBytes: { after: 1, before: 1, ratio: 1 }, latencyRatio: null, pareto: false, command: '',
  });
  const original = { metric: 'top1' as const, quality: 0.9, occludedQuality: null };
  // Drops of 0.5, 2 and 0.9 points: the first and third are within 1 point; the third keeps fewer MACs.
  const points = [point(0.895, 900, 90), point(0.88, 500, 50), point(0.891, 800, 95)];
  assert.deepEqual(withinDrop({ original, points }, 1), { maxDrop: 1, point: 2, by: 'macs', smallestDrop: withinDrop({ original, points }, 1).smallestDrop });
  assert.ok(Math.abs(withinDrop({ original, points }, 1).smallestDrop - 0.5) < 1e-9);
  assert.equal(withinDrop({ original, points }, 3).point, 1);
  assert.equal(withinDrop({ original, points }, 0.4).point, null);
  // A point whose MACs are unknown: parameters decide.
  assert.deepEqual(withinDrop({ original, points: [point(0.895, null, 90), point(0.891, 800, 95)] }, 1).point, 0);
});

test('kprune sweep --budget-of macs --max-drop names the point, or says none is and exits 1', () => {
  const dwsep = path.join(FIXTURES, 'models', 'dwsep-fmnist.onnx');
  const args = [CLI, 'sweep', dwsep, '--data', SUBSET, '--calib', '32', '--eval', '50', '--shapes', '', '--budgets', '0.95', '--budget-of', 'macs'];
  const ok = spawnSync(process.execPath, [...args, '--max-drop', '100', '--json'], { cwd: dir, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } });
  assert.equal(ok.status, 0, ok.stderr);
  const r = JSON.parse(ok.stdout);
  assert.equal(r.withinDrop.point, 0);
  assert.equal(r.withinDrop.by, 'macs');
  assert.match(r.points[0].command, /--budget 0\.95 --budget-of macs/);
  assert.ok(r.points[0].macs.ratio < 1, 'the MACs budget spent on MACs');
  // A zero drop: met only if the point lost nothing on these samples; either way the answer is said.
  const none = spawnSync(process.execPath, [...args, '--max-drop', '0'], { cwd: dir, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } });
  const drop = (r.original.quality - r.points[0].quality) * 100;
  if (drop > 0) {
    assert.equal(none.status, 1, none.stderr);
    assert.match(none.stderr, /no point is within 0\.00 points of the original \(the smallest drop was/);
  } else {
    assert.equal(none.status, 0, none.stderr);
    assert.match(none.stdout, /within 0\.00 points, the fewest MACs: auto 0\.95/);
  }
});
