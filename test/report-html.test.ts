/**
 * The HTML report: self-contained (nothing fetched), every text escaped, and, in headless Chromium
 * when it is installed, one heat map per layer showing the report's values and the mask's dropped
 * positions, on a page that is not blank.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { PNG } from 'pngjs';
import { compare, prune, renderCompareHtml } from '../src/index.js';
import type { PruneReport } from '../src/index.js';
import { renderHtml } from '../src/report/html.js';
import { esc } from '../src/report/html-escape.js';
import { FIXTURES, tempDir } from './helpers/tmp.js';

const run = promisify(execFile);
const dir = tempDir('kprune-html-');
const MODEL = path.join(FIXTURES, 'models', 'vgg-fmnist.onnx');
const SUBSET = path.join(FIXTURES, 'data', 'fashion-mnist', 't10k-images-idx3-ubyte.gz');
const CHROMIUM = '/usr/bin/chromium';
const NO_CHROMIUM = existsSync(CHROMIUM) ? false : `${CHROMIUM} not found (Debian package "chromium"); the page was not rendered`;
const EVIL = '<script>alert(1)</script>';

let withData: PruneReport;
let withoutData: PruneReport;

before(async () => {
  withData = await prune(MODEL, {
    shape: 'qh', output: path.join(dir, 'vgg.data.onnx'), data: { data: SUBSET, calib: 64, eval: 100 }, latencyRuns: 5,
  });
  withoutData = await prune(MODEL, { shape: 'qh', output: path.join(dir, 'vgg.nodata.onnx'), latencyRuns: 5 });
});

/** A copy with hostile text wherever a model or a user supplies it. */
function hostile(r: PruneReport): PruneReport {
  const c = structuredClone(r);
  c.layers[0].name = EVIL;
  c.layers[1].id = '"><img src=x onerror=alert(2)>';
  c.layers[1].nodes = [c.layers[1].name, "</title><script>alert(3)</script>"];
  if (c.recovery) c.recovery.layers[0].name = EVIL;
  c.input.path = `models/${EVIL}.onnx`;
  c.method['<b>injected</b>'] = '<iframe>';
  return c;
}

function assertSelfContained(html: string, label: string): void {
  assert.doesNotMatch(html, /https?:\/\//i, `${label}: no http(s) references`);
  assert.doesNotMatch(html, /\bsrc\s*=/i, `${label}: no src attributes`);
  assert.doesNotMatch(html, /\bhref\s*=/i, `${label}: no links to resources`);
  assert.doesNotMatch(html, /<(script|link|img|iframe|object|embed)\b/i, `${label}: no scripts or embedded resources`);
  assert.doesNotMatch(html, /@import|url\(/i, `${label}: no CSS fetches`);
}

test('the page is self-contained, names every layer, and says why unknown figures are unknown', () => {
  for (const [label, r] of [['with data', withData], ['without data', withoutData]] as const) {
    const html = renderHtml(r);
    assertSelfContained(html, label);
    assert.match(html, /^<!doctype html>/);
    for (const l of r.layers) assert.ok(html.includes(esc(l.name)), `${label}: layer ${l.name} named`);
    assert.ok(html.includes('vgg-fmnist.onnx'), 'input file in the title');
    assert.equal(renderHtml(structuredClone(r)), html, `${label}: the same report renders to the same page`);
  }
  const measured = renderHtml(withData);
  assert.ok(measured.includes('Reconstruction'), 'the reconstruction chart when recovery ran');
  assert.match(measured, /Accuracy \(top-1\)/);
  const unknown = renderHtml(withoutData);
  assert.equal(withoutData.accuracy.status, 'unknown');
  if (withoutData.accuracy.status === 'unknown') assert.ok(unknown.includes(esc(withoutData.accuracy.reason)), 'the reason accuracy is unknown');
  assert.ok(!unknown.includes('Relative output error'), 'no reconstruction chart without recovery');

  const noLatency = renderHtml({ ...withoutData, latency: { status: 'unknown', reason: 'not measured (latencyRuns 0)' } });
  assert.match(noLatency, /<h3>Latency<\/h3><p class="value">unknown<\/p><p class="reason">not measured \(latencyRuns 0\)<\/p>/);
  const gated = renderHtml({ ...withData, gate: { maxDrop: 1, metric: 'top1', drop: 3, passed: false, reason: 'top-1 97.00% -> 94.00%: 3.00 points lost, at most 1 allowed' } });
  assert.match(gated, /<p class="gate failed"><strong>Quality gate \(--max-drop 1\): FAILED<\/strong> · top-1 97.00% -&gt; 94.00%/);
  const noMacs = renderHtml({
    ...withoutData,
    before: { ...withoutData.before, macs: { status: 'unknown', reason: 'dynamic <input> shape' } },
    after: { ...withoutData.after, macs: { status: 'unknown', reason: 'dynamic <input> shape' } },
  });
  assert.match(noMacs, /<h3>MACs<\/h3><p class="value">unknown<\/p><p class="reason">dynamic &lt;input&gt; shape<\/p>/);
});

test('text from the model is escaped everywhere', () => {
  const html = renderHtml(hostile(withData));
  assert.ok(!html.includes(EVIL), 'no raw <script> from a layer name');
  assert.ok(html.includes(esc(EVIL)), 'the name is shown, escaped');
  assert.doesNotMatch(html, /<(script|img|iframe|b)\b/i);
  assert.ok(!html.includes('"><img'), 'attribute values cannot be closed from a name');
});

interface DomCell { pos: number; value: string; kept: string; cls: string; title: string }

/** Heat maps in a DOM serialised by Chromium, by layer index. */
function heatMaps(dom: string): Map<number, DomCell[]> {
  const maps = new Map<number, DomCell[]>();
  for (const m of dom.matchAll(/<svg class="heatmap" data-layer-index="(\d+)"[^>]*>([\s\S]*?)<\/svg>/g)) {
    const cells: DomCell[] = [];
    for (const c of m[2].matchAll(/<g class="cell (\w+)" data-pos="(\d)" data-value="([^"]*)" data-kept="(\w+)"><title>([^<]*)<\/title>/g)) {
      cells.push({ cls: c[1], pos: Number(c[2]), value: c[3], kept: c[4], title: c[5] });
    }
    maps.set(Number(m[1]), cells);
  }
  return maps;
}

async function chromium(args: string[], url: string): Promise<string> {
  const profile = mkdtempSync(path.join(dir, 'chromium-'));
  const { stdout } = await run(CHROMIUM, [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', `--user-data-dir=${profile}`, ...args, url,
  ], { timeout: 30_000, maxBuffer: 64 * 1024 * 1024 });
  return stdout;
}

test('in headless Chromium: one heat map per layer with the report\'s values and the mask\'s dropped cells, and a page that is not blank', { skip: NO_CHROMIUM }, async () => {
  const page = path.join(dir, 'report.html');
  const evilPage = path.join(dir, 'hostile.html');
  writeFileSync(page, renderHtml(withData));
  writeFileSync(evilPage, renderHtml(hostile(withData)));
  const shot = path.join(dir, 'report.png');
  const [dom, evilDom] = await Promise.all([
    chromium(['--dump-dom'], pathToFileURL(page).href),
    chromium(['--dump-dom'], pathToFileURL(evilPage).href),
    chromium([`--screenshot=${shot}`, '--window-size=1200,2000'], pathToFileURL(page).href),
  ]);

  const maps = heatMaps(dom);
  assert.equal(maps.size, withData.layers.length, 'one heat map per layer');
  withData.layers.forEach((l, i) => {
    const cells = maps.get(i);
    assert.ok(cells, `heat map of layer ${i}`);
    assert.deepEqual(cells.map((c) => c.pos), [0, 1, 2, 3, 4, 5, 6, 7, 8], `${l.name}: 9 cells in order`);
    const digits = l.mask.replace(/\//g, '');
    for (const c of cells) {
      assert.equal(Number(c.value).toFixed(3), l.meanAbs[c.pos].toFixed(3), `${l.name} position ${c.pos}: value`);
      assert.ok(c.title.includes(`mean |w| ${Number(c.value).toPrecision(3)} `), `${l.name} position ${c.pos}: the tooltip holds the value to 3 significant digits: ${c.title}`);
      const dropped = digits[c.pos] === '0';
      assert.equal(c.cls, dropped ? 'dropped' : 'kept', `${l.name} position ${c.pos} in ${l.mask}`);
      assert.equal(c.kept, String(!dropped));
    }
    assert.ok(cells.some((c) => c.cls === 'dropped'), `${l.name}: a qh shape drops positions`);
  });

  // The hostile page: names shown as text, nothing injected into the DOM.
  assert.doesNotMatch(evilDom, /<(script|img|iframe)\b/i);
  assert.ok(evilDom.includes('&lt;script&gt;alert(1)&lt;/script&gt;'));

  const png = PNG.sync.read(readFileSync(shot));
  assert.equal(png.width, 1200);
  const colours = new Set<number>();
  let ink = 0;
  let outline = 0;
  for (let i = 0; i < png.data.length; i += 4) {
    const [r, g, b] = [png.data[i], png.data[i + 1], png.data[i + 2]];
    colours.add(((r >> 3) << 10) | ((g >> 3) << 5) | (b >> 3));
    if (r + g + b < 600) ink++;
    // The shape outline's orange (#e8590c): the SVG was drawn.
    if (Math.abs(r - 0xe8) < 12 && Math.abs(g - 0x59) < 12 && Math.abs(b - 0x0c) < 12) outline++;
  }
  assert.ok(colours.size > 50, `${colours.size} distinct colours`);
  assert.ok(ink > png.width * png.height * 0.03, `${ink} non-white pixels`);
  assert.ok(outline > 200 * withData.layers.length, `${outline} pixels of shape outline`);
});

test('compare as HTML: A and B side by side from the compare report, self-contained, hostile paths escaped', { skip: NO_CHROMIUM }, async () => {
  const c = await compare(MODEL, path.join(dir, 'vgg.data.onnx'), { data: { data: SUBSET, calib: 64, eval: 100 }, latencyRuns: 5 });
  const html = renderCompareHtml(c);
  assertSelfContained(html, 'compare');
  assert.match(html, /<h3>File size<\/h3>[\s\S]*?<dt>A<\/dt>[\s\S]*?<dt>B<\/dt>/);
  assert.match(html, /B \/ A/);
  const ratio = (c.after.size.bytes / c.before.size.bytes).toFixed(3);
  assert.ok(html.includes(`<span class="r">${ratio}</span>`), `file size ratio ${ratio}`);
  assert.match(html, /<th class="num">A<\/th><th class="num">B<\/th>/);
  assert.ok(c.accuracy.status === 'measured');
  if (c.accuracy.status === 'measured') assert.ok(html.includes(`On ${c.accuracy.evalSamples} evaluation samples`));
  const evil = renderCompareHtml({ ...c, a: { ...c.a, path: `models/${EVIL}.onnx` } });
  assertSelfContained(evil, 'hostile compare');
  const page = path.join(dir, 'compare.html');
  writeFileSync(page, html);
  const dom = await chromium(['--dump-dom'], pathToFileURL(page).href);
  assert.ok(dom.includes('A and B'), 'Chromium rendered the page');
  assert.equal((dom.match(/class="card( |")/g) ?? []).length, html.match(/class="card( |")/g)!.length);
});
