/**
 * The report pages as issue 16 asked for them: heat maps on each layer's own scale (stated),
 * rounded tooltips, how the page was made (command line, date, version, machine) on every page,
 * the compare page's accuracy cards, drop in points and gate, and `analyze --report`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { analyze, compare, prune, renderAnalyzeHtml, renderCompareHtml, renderHtml } from '../src/index.js';
import type { CompareReport, RunInfo } from '../src/index.js';
import { heatColour, heatMapSvg, heatScale } from '../src/report/html-svg.js';
import { currentRunInfo, shellQuote } from '../src/report/run-info.js';
import { CLI, FIXTURES, tempDir } from './helpers/tmp.js';

const dir = tempDir('kprune-pages-');
const vgg = path.join(FIXTURES, 'models', 'vgg-fmnist.onnx');
const SUBSET = path.join(FIXTURES, 'data', 'fashion-mnist', 't10k-images-idx3-ubyte.gz');
const RUN: RunInfo = { commandLine: "kprune m.onnx --report 'a b.html'", date: '2026-01-02T03:04:05Z', version: '9.9.9', machine: 'Test CPU, 2 logical cores, linux x64, Node v20' };

function fills(svg: string): Map<number, string> {
  return new Map([...svg.matchAll(/data-pos="(\d)"[\s\S]*?<rect [^>]*fill="(#[0-9a-f]{6})"/g)].map((m) => [Number(m[1]), m[2]]));
}

test('a heat map runs from the layer\'s smallest value (lightest) to its largest (darkest); tooltips have 3 significant digits', () => {
  const values = [0.7123456789, 0.75, 0.8, 0.85, 1, 0.9, 0.95, 0.72, 0.74];
  const svg = heatMapSvg(values, '010/111/010', 0, 'cross');
  const f = fills(svg);
  assert.equal(f.get(0), heatColour(0), 'the smallest value gets the lightest colour');
  assert.equal(f.get(4), heatColour(1), 'the largest gets the darkest');
  assert.equal(f.get(2), heatColour((0.8 - 0.7123456789) / (1 - 0.7123456789)));
  assert.equal(new Set(f.values()).size, 9, 'values between 0.7 and 1 get nine different colours');
  assert.match(svg, /<title>top-left: mean \|w\| 0\.712 \(normalised; dropped by cross\)<\/title>/);
  assert.match(svg, /data-value="0\.7123456789"/, 'the exact value stays in data-value');
  assert.deepEqual(heatScale([1, 1, 1]), { lo: 1, hi: 1 });
  assert.equal(fills(heatMapSvg(Array(9).fill(1), '111/111/111', 0, 'full')).get(0), heatColour(1), 'a flat layer is drawn dark, not divided by zero');
});

test('every page says how it was made: command line, date, kprune version, machine', async () => {
  const r = await prune(vgg, { shape: 'cross', output: path.join(dir, 'p.onnx'), latencyRuns: 0, gzip: false });
  const a = await analyze(vgg);
  const c = await compare(vgg, path.join(dir, 'p.onnx'), { latencyRuns: 0, gzip: false });
  for (const [name, html] of [['prune', renderHtml(r, RUN)], ['compare', renderCompareHtml(c, RUN)], ['analyze', renderAnalyzeHtml(a, RUN)]] as const) {
    assert.match(html, /<dt>command<\/dt><dd><code>kprune m\.onnx --report &#39;a b\.html&#39;<\/code><\/dd>/, name);
    assert.match(html, /<time datetime="2026-01-02T03:04:05Z">2026-01-02 03:04:05 UTC<\/time>/, name);
    assert.match(html, /<dt>kprune<\/dt><dd>9\.9\.9<\/dd>/, name);
    assert.match(html, /<dt>machine<\/dt><dd>Test CPU, 2 logical cores/, name);
    assert.match(html, /colour scale|A and B/, name);
  }
  assert.match(renderHtml(r, RUN), /colour scale 0\.\d{3} \(light\) – 1\.00 \(dark\)/);
  const info = currentRunInfo('kprune x', new Date('2026-05-06T07:08:09.123Z'));
  assert.equal(info.date, '2026-05-06T07:08:09Z');
  assert.match(info.machine, /logical cores, .* Node v\d+/);
  assert.equal(shellQuote("it's"), `'it'\\''s'`);
  assert.equal(shellQuote('--size=28,28'), '--size=28,28');
});

test('compare page: accuracy cards with the drop in points, and the gate', async () => {
  const out = path.join(dir, 'cmp.onnx');
  await prune(vgg, { shape: 'x', output: out, latencyRuns: 0, gzip: false });
  const c = await compare(vgg, out, { latencyRuns: 0, gzip: false, data: { data: SUBSET, eval: 100 }, maxDrop: 0 });
  assert.equal(c.accuracy.status, 'measured');
  if (c.accuracy.status !== 'measured') return;
  const a1 = c.accuracy.a.clean.top1!;
  const b1 = c.accuracy.b.clean.top1!;
  const html = renderCompareHtml(c, RUN);
  assert.match(html, /<h3>Accuracy \(top-1\)<\/h3>/);
  assert.match(html, /<h3>Occluded accuracy \(top-1\)<\/h3>/);
  const d = (100 * (b1 - a1)).toFixed(2).replace('-', '−');
  assert.ok(html.includes(`B against A: ${b1 > a1 ? '+' : ''}${d} points of top-1`) || b1 === a1, `drop in points ${d}`);
  assert.match(html, /<p class="gate (passed|failed)"><strong>Quality gate \(--max-drop 0\)/);
  // Without labels: agreement, and the points below A.
  const unlabelled: CompareReport = structuredClone(c);
  if (unlabelled.accuracy.status === 'measured') {
    delete unlabelled.accuracy.a.clean.top1;
    delete unlabelled.accuracy.b.clean.top1;
    unlabelled.accuracy.b.clean.agreement = 0.95;
  }
  assert.match(renderCompareHtml(unlabelled), /Accuracy \(agreement with A\)[\s\S]*?−5\.00 points below A/);
});

test('kprune analyze --report a.html writes the analysis page and says where it went', () => {
  const page = path.join(dir, 'a.html');
  const r = spawnSync(process.execPath, [CLI, 'analyze', vgg, '--report', page], { cwd: dir, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^report: .*a\.html$/m);
  const html = readFileSync(page, 'utf8');
  assert.match(html, /^<!doctype html>/);
  assert.equal([...html.matchAll(/<svg class="heatmap"/g)].length, 5, 'one heat map per 3x3 layer');
  assert.match(html, /Whole model: energy kept per shape/);
  assert.ok(html.includes(`<code>kprune analyze ${vgg} --report ${page}</code>`), 'the command line as typed');
  const json = path.join(dir, 'a.json');
  assert.equal(spawnSync(process.execPath, [CLI, 'analyze', vgg, '--report', json], { cwd: dir }).status, 0);
  assert.equal(JSON.parse(readFileSync(json, 'utf8')).kind, 'analyze');
});
