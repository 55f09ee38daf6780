/**
 * The prune report as one self-contained HTML page: inline CSS and server-side SVG, no scripts,
 * no fonts, images or anything else fetched (a Content-Security-Policy forbids it). No date or
 * host is printed, so the same report renders to the same bytes.
 *
 * Every text from the report is escaped (`esc`): layer names come from users' models.
 */
import type { Gate, MeasuredAccuracy, QualityPair } from './report.js';
import { formatQuality, qualityRows } from './quality-rows.js';
import type { QualityFigures } from '../model/quality.js';
import type { LayerReport, ModelFigures, PruneReport } from './report.js';
import type { LatencyComparison } from '../model/latency.js';
import { costLine, formatBytes, formatCount, layoutSizeNote, propagationLine } from './text.js';
import { baseName, esc, sideFiles } from './html-escape.js';
import { REPORT_CSS } from './html-style.js';
import { finetuneCardHtml } from './html-finetune.js';
import { RunInfo, runInfoHtml } from './run-info.js';
import { barChartSvg, barSvg, heatLegendSvg, heatMapSvg, heatScaleText, legendMarksSvg } from './html-svg.js';
import { maxOf, pushAll } from '../util/arrays.js';

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
const ratioText = (r: number) => r.toFixed(3);

function ms(x: number): string {
  if (x >= 100) return `${x.toFixed(0)} ms`;
  if (x >= 0.1) return `${x.toFixed(2)} ms`;
  return `${x.toPrecision(2)} ms`;
}

const exact = (n: number) => n.toLocaleString('en-US');

/** "0.20–0.21 ms": a range in one unit. */
function range(lo: number, hi: number): string {
  return `${ms(lo).replace(/ ms$/, '')}–${ms(hi)}`;
}

function signed(x: number, digits: number): string {
  const t = Math.abs(x).toFixed(digits);
  return Number(t) === 0 ? `±${t}` : x > 0 ? `+${t}` : `−${t}`;
}

// ---------------------------------------------------------------------------------------------
// Summary cards

interface FigureCard {
  kind: 'figure';
  title: string;
  /** Shown text and, for the bars and ratio, the number (null: nothing to compare with). */
  before: { text: string; value: number | null; exact?: string };
  after: { text: string; value: number | null; exact?: string };
  beforeLabel?: string;
  afterLabel?: string;
  /** Default "after / before". */
  ratioLabel?: string;
  notes: string[];
}

interface UnknownCard {
  kind: 'unknown';
  title: string;
  reason: string;
}

export type Card = FigureCard | UnknownCard;

export function cardHtml(c: Card): string {
  if (c.kind === 'unknown') {
    return `<article class="card is-unknown"><h3>${esc(c.title)}</h3><p class="value">unknown</p><p class="reason">${esc(c.reason)}</p></article>`;
  }
  const b = c.before.value;
  const a = c.after.value;
  const ratio = b !== null && a !== null && b > 0 ? ratioText(a / b) : '–';
  const max = Math.max(a ?? 0, b ?? 0);
  const row = (label: string, v: FigureCard['before'], cls: 'before' | 'after') => `<dt>${esc(label)}</dt>`
    + `<dd class="value"${v.exact ? ` title="${esc(v.exact)}"` : ''}>${esc(v.text)}</dd>`
    + `<dd class="bar-cell">${v.value !== null && max > 0 ? barSvg(v.value, max, cls) : ''}</dd>`;
  return `<article class="card"><div class="card-head"><h3>${esc(c.title)}</h3>`
    + `<p class="ratio"><span class="r">${ratio}</span><span class="rl">${esc(c.ratioLabel ?? 'after / before')}</span></p></div>`
    + `<dl class="ba">${row(c.beforeLabel ?? 'before', c.before, 'before')}${row(c.afterLabel ?? 'after', c.after, 'after')}</dl>`
    + c.notes.map((n) => `<p class="note">${esc(n)}</p>`).join('')
    + '</article>';
}

function countFigure(n: number) {
  return { text: formatCount(n), value: n, exact: exact(n) };
}

function bytesFigure(n: number) {
  return { text: formatBytes(n), value: n, exact: `${exact(n)} bytes` };
}

/** How the two sides of a card are called: a prune's before/after, a comparison's A/B. */
export interface Sides {
  before: string;
  after: string;
  ratio: string;
}

const BEFORE_AFTER: Sides = { before: 'before', after: 'after', ratio: 'after / before' };

/** File size (and gzip) cards. */
export function sizeCards(b: ModelFigures, a: ModelFigures, sides: Sides = BEFORE_AFTER, notes: string[] = []): Card[] {
  const labels = { beforeLabel: sides.before, afterLabel: sides.after, ratioLabel: sides.ratio };
  const cards: Card[] = [{
    kind: 'figure', title: 'File size', before: bytesFigure(b.size.bytes), after: bytesFigure(a.size.bytes), ...labels,
    notes: [
      ...(b.size.files.length > 1 || a.size.files.length > 1 ? [`files: ${b.size.files.length} ${sides.before}, ${a.size.files.length} ${sides.after} (${sideFiles(b.size.files)})`] : []),
      ...(a.size.gzipBytes === null || b.size.gzipBytes === null ? ['gzip sizes not measured (--no-gzip)'] : []),
      ...notes,
    ],
  }];
  if (b.size.gzipBytes !== null && a.size.gzipBytes !== null) {
    cards.push({ kind: 'figure', title: 'File size, gzip', before: bytesFigure(b.size.gzipBytes), after: bytesFigure(a.size.gzipBytes), ...labels, notes: [] });
  }
  return cards;
}

export function paramsCard(b: ModelFigures, a: ModelFigures, sides: Sides = BEFORE_AFTER): Card {
  return {
    kind: 'figure', title: 'Parameters (non-zero)', before: countFigure(b.params.nonzero), after: countFigure(a.params.nonzero),
    beforeLabel: sides.before, afterLabel: sides.after, ratioLabel: sides.ratio,
    notes: [`in 3x3 convs: ${formatCount(b.params.conv3x3Nonzero)} → ${formatCount(a.params.conv3x3Nonzero)}`
      + (b.params.conv3x3Nonzero > 0 ? ` (${ratioText(a.params.conv3x3Nonzero / b.params.conv3x3Nonzero)})` : '')],
  };
}

export function macsCard(b: ModelFigures, a: ModelFigures, sides: Sides = BEFORE_AFTER): Card {
  const bm = b.macs;
  const am = a.macs;
  if (bm.status !== 'measured' || am.status !== 'measured') {
    return { kind: 'unknown', title: 'MACs', reason: bm.status === 'unknown' ? bm.reason : am.status === 'unknown' ? am.reason : '' };
  }
  return {
    kind: 'figure', title: 'MACs (skipping zero weights)', before: countFigure(bm.effective), after: countFigure(am.effective),
    beforeLabel: sides.before, afterLabel: sides.after, ratioLabel: sides.ratio,
    notes: [
      `in 3x3 convs: ${formatCount(bm.conv3x3Effective)} → ${formatCount(am.conv3x3Effective)}`,
      `as the files execute (dense): ${formatCount(bm.dense)} → ${formatCount(am.dense)}`,
      `input shape: ${Object.entries(bm.inputShapes).map(([k, v]) => `${k} [${v.join(',')}]`).join(', ')}`,
    ],
  };
}

export function latencyCard(l: LatencyComparison | { status: 'unknown'; reason?: string }, sides: Sides = BEFORE_AFTER): Card {
  if ('status' in l) return { kind: 'unknown', title: 'Latency', reason: l.reason ?? 'not measured' };
  return {
    kind: 'figure', title: `Latency (median, batch ${l.batch})`,
    before: { text: ms(l.before.medianMs), value: l.before.medianMs }, after: { text: ms(l.after.medianMs), value: l.after.medianMs },
    beforeLabel: sides.before, afterLabel: sides.after, ratioLabel: sides.ratio,
    notes: [
      `quartiles: ${sides.before} ${range(l.before.p25Ms, l.before.p75Ms)}, ${sides.after} ${range(l.after.p25Ms, l.after.p75Ms)}`,
      `${l.runs} interleaved runs after ${l.warmup} warm-up, threads ${l.threads}`,
    ],
  };
}

function summaryCards(r: PruneReport): Card[] {
  const b = r.before.size.gzipBytes;
  const a = r.after.size.gzipBytes;
  const cards = sizeCards(r.before, r.after, BEFORE_AFTER, a !== null && b !== null && a < b && r.after.size.bytes >= r.before.size.bytes
    ? [layoutSizeNote(r.layers.map((l) => l.layout))]
    : []);
  cards.push(paramsCard(r.before, r.after));
  const dense = r.layers.reduce((x, l) => x + l.params, 0);
  const stored = r.layers.reduce((x, l) => x + l.storedWeights, 0);
  cards.push({
    kind: 'figure', title: 'Stored 3x3 weights', before: countFigure(dense), after: countFigure(stored),
    notes: [`ideal ratio (kept positions / 9 over the 3x3 weights): ${r.plan.keptFraction.toFixed(3)}`],
  });
  cards.push(macsCard(r.before, r.after));
  pushAll(cards, accuracyCards(r));
  cards.push(latencyCard(r.latency));
  return cards;
}

function pick(p: QualityPair, occluded: boolean): QualityFigures | undefined {
  return occluded ? p.occluded : p.clean;
}

/** The card for clean or occluded samples: top-1 when there are labels, else agreement, else closeness. */
function qualityCard(a: MeasuredAccuracy, occluded: boolean, reconstructed: boolean): Card {
  const afterLabel = 'written';
  const title = occluded ? 'Occluded accuracy' : 'Accuracy';
  const o = pick(a.original, occluded);
  const s = pick(a.reshaped, occluded);
  const w = pick(a.written, occluded);
  if (!o || !s || !w) return { kind: 'unknown', title, reason: 'not measured: occlusion was off for this run' };
  const notes: string[] = [];
  if (occluded && a.occlusion) notes.push(a.occlusion);
  notes.push(`written: the output file loaded back from disk${reconstructed ? ', after reconstruction' : ''}`);
  if (o.top1 !== undefined && w.top1 !== undefined) {
    notes.push(`change: ${signed((w.top1 - o.top1) * 100, 1)} points; reshaped only: ${s.top1 === undefined ? '–' : pct(s.top1)}`);
    if (o.top5 !== undefined && w.top5 !== undefined) notes.push(`top-5: ${pct(o.top5)} → ${pct(w.top5)}`);
    if (w.agreement !== undefined) notes.push(`top-1 agreement with the original: ${pct(w.agreement)} (reshaped only: ${s.agreement === undefined ? '–' : pct(s.agreement)})`);
    notes.push(`${w.samples} samples`);
    return {
      kind: 'figure', title: `${title} (top-1)`, beforeLabel: 'original', afterLabel,
      before: { text: pct(o.top1), value: o.top1 }, after: { text: pct(w.top1), value: w.top1 }, notes,
    };
  }
  if (w.agreement !== undefined) {
    notes.push(`no labels: top-1 agreement of the written model with the original; reshaped only: ${s.agreement === undefined ? '–' : pct(s.agreement)}`);
    notes.push(`${w.samples} samples`);
    return {
      kind: 'figure', title: `${title}: agreement`, beforeLabel: 'original', afterLabel,
      before: { text: 'reference', value: null }, after: { text: pct(w.agreement), value: w.agreement }, notes,
    };
  }
  if (w.cosine !== undefined) {
    notes.push(`outputs are not class scores: closeness to the original's outputs; MSE ${w.mse === undefined ? '–' : w.mse.toPrecision(4)}, PSNR ${w.psnr === undefined ? '–' : w.psnr === null ? 'identical' : `${w.psnr.toFixed(1)} dB`}`);
    notes.push(`reshaped only: cosine ${s.cosine === undefined ? '–' : s.cosine.toPrecision(4)}`);
    return {
      kind: 'figure', title: `${title}: cosine vs original`, beforeLabel: 'original', afterLabel,
      before: { text: 'reference', value: null }, after: { text: w.cosine.toPrecision(4), value: w.cosine }, notes,
    };
  }
  return { kind: 'unknown', title, reason: 'the evaluation gave no figure kprune can compare (no labels, and outputs neither class scores nor comparable)' };
}

function accuracyCards(r: PruneReport): Card[] {
  const a = r.accuracy;
  if (a.status === 'unknown') {
    return [
      { kind: 'unknown', title: 'Accuracy', reason: a.reason },
      { kind: 'unknown', title: 'Occluded accuracy', reason: a.reason },
    ];
  }
  return [qualityCard(a, false, r.recovery !== null), qualityCard(a, true, r.recovery !== null)];
}

// ---------------------------------------------------------------------------------------------
// Quality table

/** Quality figures side by side: one column per evaluated model, on the same samples. */
export function qualityTableHtml(pairs: QualityPair[], headers: string[], a: { evalSamples: number; evalSource: string; runtime: string; occlusion: string | null }, reference: string): string {
  const rows = qualityRows(pairs, a.occlusion !== null, reference).map((q) =>
    `<tr><th scope="row">${esc(q.label)}</th>${q.values.map((v) => `<td class="num">${esc(formatQuality(v, q.kind).replace(/^-$/, '–'))}</td>`).join('')}</tr>`);
  return `<p>On ${esc(a.evalSamples)} evaluation samples: ${esc(a.evalSource)}; ${esc(a.runtime)}.</p>`
    + `<div class="table-wrap"><table><thead><tr><th></th>${headers.map((h) => `<th class="num">${esc(h)}</th>`).join('')}</tr></thead>`
    + `<tbody>${rows.join('')}</tbody></table></div>`
    + (a.occlusion ? `<p class="meta">Occlusion: ${esc(a.occlusion)}.</p>` : '');
}

function qualityTable(r: PruneReport): string {
  const a = r.accuracy;
  if (a.status === 'unknown') return `<p class="unknown">Accuracy: unknown (${esc(a.reason)}).</p>`;
  return qualityTableHtml([a.original, a.reshaped, a.written], ['original', 'reshaped only', r.recovery ? 'written (reconstructed)' : 'written'], a, 'original');
}

// ---------------------------------------------------------------------------------------------
// Layers

function layoutText(l: LayerReport): string {
  return l.layoutNote ? `${l.layout} (${l.layoutNote})` : l.layout;
}

/** Escaped, with line-break opportunities after each "/" of a node path (the text stays the same). */
function breakable(name: string): string {
  return esc(name).replace(/\//g, '/<wbr>');
}

function layerFigure(l: LayerReport, i: number): string {
  const err = l.reconstructionError;
  return `<figure class="layer" id="layer-${i}">`
    + heatMapSvg(l.meanAbs, l.mask, i, l.chosenShape)
    + '<figcaption>'
    + `<span class="name"><span class="sub">#${i}</span> ${breakable(l.name)}</span>`
    + `<span class="shape">${esc(l.chosenShape)}</span> <code>${esc(l.mask)}</code> · ${esc(layoutText(l))}<br>`
    + `<span class="sub">${esc(l.shape.join('×'))}${l.group > 1 ? ` · groups ${esc(l.group)}` : ''} · energy kept ${pct(l.energyKept)}`
    + `${err ? ` · output error ${pct(err.before)} → ${pct(err.after)}` : ''}</span>`
    + `<br><span class="sub scale">${esc(heatScaleText(l.meanAbs))}</span>`
    + (l.nodes.length > 1 ? `<br><span class="sub">shared by ${l.nodes.map((n) => esc(n)).join(', ')}</span>` : '')
    + (l.id !== l.name ? `<br><span class="sub">weight <code>${esc(l.id)}</code></span>` : '')
    + '</figcaption></figure>';
}

function layerCharts(r: PruneReport): string {
  const label = (l: LayerReport, i: number) => `#${i} ${l.name} (${l.chosenShape})`;
  const kept = barChartSvg({
    label: 'weights kept per layer, as a share of the layer\'s 3x3 weights',
    max: 1,
    track: true,
    reference: r.plan.keptFraction,
    rows: r.layers.map((l, i) => ({
      label: label(l, i),
      bars: [{ value: l.params > 0 ? l.keptParams / l.params : 0, text: `${pct(l.params > 0 ? l.keptParams / l.params : 0)} (${formatCount(l.keptParams)} of ${formatCount(l.params)})`, cls: 'kept' }],
    })),
  });
  let out = '<h3>Weights kept</h3><figure class="chart-box"><figcaption>Weights kept per layer (kept / all 3x3 weights of the layer). '
    + `Dashed line: the whole model, ${pct(r.plan.keptFraction)}.</figcaption>${kept}</figure>`;
  const recon = r.layers.map((l, i) => ({ l, i })).filter((x) => x.l.reconstructionError !== null);
  if (r.recovery && recon.length > 0) {
    const max = maxOf(recon.flatMap((x) => [x.l.reconstructionError!.before, x.l.reconstructionError!.after]));
    const chart = barChartSvg({
      label: 'relative output error per layer on calibration data, reshaped only and reconstructed',
      max: max > 0 ? max : 1,
      rows: recon.map(({ l, i }) => ({
        label: label(l, i),
        bars: [
          { value: l.reconstructionError!.before, text: `reshaped ${pct(l.reconstructionError!.before)}`, cls: 'before' },
          { value: l.reconstructionError!.after, text: `reconstructed ${pct(l.reconstructionError!.after)}`, cls: 'after' },
        ],
      })),
    });
    out += '<h3>Reconstruction</h3><figure class="chart-box"><figcaption>Relative output error of each layer on the calibration rows: '
      + '<span class="swatch before"></span>reshaped only, <span class="swatch after"></span>after reconstruction (lower is better).'
      + `</figcaption>${chart}</figure>`;
  }
  return out;
}

function layerTable(r: PruneReport): string {
  const recon = r.recovery !== null;
  const th = (h: string, num = false, title?: string) => `<th class="${num ? 'num' : ''}"${title ? ` title="${esc(title)}"` : ''}>${esc(h)}</th>`;
  const head = [
    th('#', true), th('layer'), th('kernel'), th('shape'), th('layout'), th('energy kept', true),
    th('weights kept', true, 'non-zero weights after / all weights of the layer'), th('stored', true, 'weights stored in the written file'),
    th('MACs after', true, 'skipping zero weights, at the measured input shape'),
    ...(recon ? [th('output error', true, 'relative output error on calibration rows: reshaped only → reconstructed')] : []),
  ];
  const rows = r.layers.map((l, i) => '<tr>'
    + `<td class="num">${i}</td><td class="name">${esc(l.name)}</td><td>${esc(l.shape.join('×'))}</td>`
    + `<td>${esc(l.chosenShape)} <code>${esc(l.mask)}</code><br><span class="sub">${esc(l.chosenBy)}</span></td>`
    + `<td class="${l.layoutNote ? 'wrap' : ''}">${esc(l.layout)}${l.layoutNote ? `<br><span class="sub">${esc(l.layoutNote)}</span>` : ''}</td>`
    + `<td class="num">${pct(l.energyKept)}</td>`
    + `<td class="num">${esc(formatCount(l.nonzeroAfter))} / ${esc(formatCount(l.params))}</td>`
    + `<td class="num">${esc(formatCount(l.storedWeights))}</td>`
    + `<td class="num">${l.macsAfterEffective === null ? 'unknown' : esc(formatCount(l.macsAfterEffective))}</td>`
    + (recon ? `<td class="num">${l.reconstructionError ? `${pct(l.reconstructionError.before)} → ${pct(l.reconstructionError.after)}` : '–'}</td>` : '')
    + '</tr>');
  return `<h3>All layers</h3><div class="table-wrap"><table class="layer-table"><thead><tr>${head.join('')}</tr></thead><tbody>${rows.join('')}</tbody></table></div>`;
}

function extrasHtml(r: PruneReport): string {
  let out = '';
  if (r.layoutTimings && r.layoutTimings.length > 0) {
    out += '<h3>Layout timings (--layout auto)</h3><div class="table-wrap"><table><thead><tr><th>layer</th><th>choice</th><th class="num">masked</th><th class="num">decomposed</th><th>note</th></tr></thead><tbody>'
      + r.layoutTimings.map((t) => `<tr><td class="name">${esc(t.layer)}</td><td>${esc(t.choice)}</td><td class="num">${esc(ms(t.maskedMs))}</td>`
        + `<td class="num">${t.decomposedMs === null ? '–' : esc(ms(t.decomposedMs))}</td><td>${esc(t.note ?? '')}</td></tr>`).join('')
      + '</tbody></table></div>';
  }
  if (r.skipped.length > 0) {
    out += '<h3>Skipped convolutions</h3><ul class="notes">'
      + r.skipped.map((s) => `<li><code>${esc(s.node)}</code> (${esc(s.opType)}): ${esc(s.reason)}</li>`).join('')
      + '</ul>';
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// How it was measured

const METHOD_LABELS: Record<string, string> = {
  size: 'File size',
  params: 'Parameters',
  macs: 'MACs',
  energyKept: 'Energy kept',
  accuracy: 'Accuracy',
  latency: 'Latency',
  reconstruction: 'Reconstruction',
};

export function dl(entries: [string, string][]): string {
  return `<dl class="method">${entries.map(([k, v]) => `<dt>${esc(k)}</dt><dd>${esc(v)}</dd>`).join('')}</dl>`;
}

function methodHtml(r: PruneReport): string {
  // The method texts are fixed per kprune version; say which ones did not apply to this run.
  const notRun: Record<string, boolean> = { reconstruction: r.recovery === null, latency: 'status' in r.latency };
  let out = dl(Object.entries(r.method).map(([k, v]) => [METHOD_LABELS[k] ?? k, notRun[k] ? `${v} (not run for this report)` : v]));
  out += '<h3>Data</h3>';
  if (r.data) {
    const d = r.data;
    out += dl([
      ['Calibration', `${d.calibSamples} samples: ${d.calibSource}`],
      ['Evaluation', `${d.evalSamples} samples: ${d.evalSource}`],
      ['Labels', d.labelled ? 'yes' : 'no'],
      ['Sample', `${d.sampleDims.join('×')} (${d.layout})`],
      ['Seed', String(d.seed)],
      ...(r.recovery?.propagation ? [['Reconstruction', propagationLine(r.recovery.propagation)] as [string, string]] : []),
    ]);
  } else {
    out += '<p class="unknown">No data was given: no calibration, no reconstruction, no accuracy.</p>';
  }
  out += '<h3>Runtime</h3>';
  const runtime: [string, string][] = [];
  if (r.accuracy.status === 'measured') runtime.push(['Accuracy', r.accuracy.runtime]);
  const l = r.latency;
  if ('status' in l) {
    runtime.push(['Latency', `unknown: ${l.reason ?? 'not measured'}`]);
  } else {
    runtime.push(['Latency', l.runtime]);
    runtime.push(['Latency runs', `${l.runs} timed runs of each model, interleaved, after ${l.warmup} warm-up; threads ${l.threads}; batch ${l.batch}`]);
    runtime.push(['Latency input', Object.entries(l.inputShapes).map(([k, v]) => `${k} [${v.join(',')}]`).join(', ')]);
    runtime.push(['Latency spread', `before min ${ms(l.before.minMs)}, max ${ms(l.before.maxMs)}; after min ${ms(l.after.minMs)}, max ${ms(l.after.maxMs)}`]);
  }
  const m = r.before.macs;
  runtime.push(['MACs input', m.status === 'measured' ? Object.entries(m.inputShapes).map(([k, v]) => `${k} [${v.join(',')}]`).join(', ') : `unknown: ${m.reason}`]);
  runtime.push(['Output check', r.output.verified]);
  out += dl(runtime);
  if (r.recovery) {
    out += '<h3>Recovery</h3>';
    out += dl([
      ['Method', r.recovery.method],
      ['Ridge', String(r.recovery.ridge)],
      ['Rows per image', String(r.recovery.rowsPerImage)],
    ]);
    out += '<div class="table-wrap"><table><thead><tr><th>layer</th><th class="num">calibration rows</th><th class="num">time</th></tr></thead><tbody>'
      + r.recovery.layers.map((x) => `<tr><td class="name">${esc(x.name)}</td><td class="num">${esc(exact(x.rows))}</td><td class="num">${esc(`${x.ms} ms`)}</td></tr>`).join('')
      + '</tbody></table></div>';
  }
  out += '<h3>Timings per phase</h3>';
  const phases = Object.entries(r.timings);
  const total = phases.reduce((a, [, v]) => a + v, 0);
  const longest = Math.max(1, maxOf(phases.map(([, v]) => v)));
  out += '<div class="table-wrap"><table><thead><tr><th>phase</th><th class="num">wall time</th><th></th></tr></thead><tbody>'
    + phases.map(([k, v]) => `<tr><td>${esc(k)}</td><td class="num">${esc(exact(v))} ms</td><td><span class="timing" style="width:${(8 * v / longest).toFixed(2)}rem"></span></td></tr>`).join('')
    + `<tr><th scope="row">total</th><td class="num"><strong>${esc(exact(total))} ms</strong></td><td></td></tr>`
    + '</tbody></table></div>';
  out += '<h3>Plan</h3>';
  out += dl([
    ['Shape spec', r.plan.spec + (r.plan.budget !== undefined ? `, budget ${r.plan.budget}` : '')],
    ['Kept', `${pct(r.plan.keptFraction)} of the 3x3 weights (${r.plan.entries.length} layers)`],
  ]);
  return out;
}

// ---------------------------------------------------------------------------------------------

/** `--max-drop`: passed or failed, with the figures it was decided on. */
/** The cost line of the text report (a loss of a point or more that no gate judged). */
function costHtml(r: PruneReport): string {
  const line = costLine(r);
  return line ? `<p class="gate failed">${esc(line)}</p>` : '';
}

export function gateHtml(gate: Gate | null | undefined): string {
  // Reports written before the gate existed have no field at all.
  const g = gate ?? null;
  if (g === null) return '';
  return `<p class="gate ${g.passed ? 'passed' : 'failed'}"><strong>Quality gate (--max-drop ${esc(g.maxDrop)}): ${g.passed ? 'passed' : 'FAILED'}</strong> · ${esc(g.reason)}</p>`;
}

export function renderHtml(r: PruneReport, run?: RunInfo): string {
  const planName = r.plan.spec === 'auto' ? `auto, budget ${r.plan.budget}` : r.plan.spec;
  const title = `kprune: ${baseName(r.input.path)} → ${baseName(r.output.path)} (shape ${planName})`;
  const info = Object.entries(r.input.formatInfo).map(([k, v]) => `${k} ${v}`).join('; ');
  const notes: string[] = [];
  if (r.layers.some((l) => l.layout === 'sparse')) {
    notes.push('sparse layout: onnxruntime densifies sparse weights when it loads a model, so it saves file bytes only when enough weights are zero: COO stores an 8-byte index per kept weight');
  }
  for (const l of r.layers.filter((x) => x.layout === 'masked' && x.layoutNote)) notes.push(`layer ${l.name} kept masked: ${l.layoutNote}`);

  const body = '<main>'
    + '<header>'
    + `<h1>${esc(baseName(r.input.path))} → ${esc(baseName(r.output.path))}</h1>`
    + `<p class="lede">Shape <strong>${esc(planName)}</strong>: ${r.layers.length} 3x3 weight tensors reshaped, ${pct(r.plan.keptFraction)} of their positions kept.</p>`
    + `<p class="meta"><span>input <code>${esc(r.input.path)}</code> (${esc(r.input.format)}${info ? `; ${esc(info)}` : ''})</span>`
    + `<span>output <code>${esc(r.output.files.length > 1 ? r.output.files.join(', ') : r.output.path)}</code></span>`
    + `<span>${esc(r.tool.name)} ${esc(r.tool.version)}, report schema ${esc(r.schemaVersion)}</span></p>`
    + runInfoHtml(run)
    + gateHtml(r.gate)
    + costHtml(r)
    // Reports written before the reach existed have no field.
    + (r.reach ? `<p class="meta${r.reach.small ? ' reach-small' : ''}">${esc(r.reach.summary)}${r.reach.macs ? '' : ` (MACs not counted: ${esc(r.reach.macsUnknown ?? '')})`}.</p>` : '')
    + (r.layoutFallback ? `<p class="meta">Layout: ${esc(r.layoutFallback)}.</p>` : '')
    + '</header>'
    + '<section aria-labelledby="s-summary"><h2 id="s-summary">Before and after</h2>'
    + `<div class="cards">${summaryCards(r).map(cardHtml).join('')}</div>`
    + (notes.length ? `<ul class="notes">${notes.map((n) => `<li>${esc(n)}</li>`).join('')}</ul>` : '')
    + '</section>'
    + `<section aria-labelledby="s-quality"><h2 id="s-quality">Quality</h2>${qualityTable(r)}`
    // Reports written before fine-tuning existed have no field.
    + (r.finetune ? `<div class="cards">${finetuneCardHtml(r.finetune)}</div>` : '')
    + '</section>'
    + '<section aria-labelledby="s-layers"><h2 id="s-layers">Layers</h2>'
    + '<p>Mean |w| at each of the 9 positions before reshaping, normalised so the layer\'s largest is 1, with the chosen shape drawn over it. Each map\'s colours run from that layer\'s smallest value to its largest (stated under it), so that differences within a layer show.</p>'
    + `<div class="legend">${heatLegendSvg()}${legendMarksSvg()}</div>`
    + `<div class="layers">${r.layers.map(layerFigure).join('')}</div>`
    + layerCharts(r)
    + layerTable(r)
    + extrasHtml(r)
    + '</section>'
    + `<section aria-labelledby="s-method"><h2 id="s-method">How it was measured</h2>${methodHtml(r)}</section>`
    + `<footer>Generated by ${esc(r.tool.name)} ${esc(r.tool.version)}. Self-contained: nothing on this page is fetched from elsewhere.</footer>`
    + '</main>';

  return htmlPage(title, body);
}

/** The page around a body: inline CSS, and a Content-Security-Policy that forbids fetching anything. */
export function htmlPage(title: string, body: string): string {
  return '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
    + '<meta name="viewport" content="width=device-width, initial-scale=1">'
    + '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; style-src \'unsafe-inline\'">'
    + '<meta name="color-scheme" content="light">'
    + `<title>${esc(title)}</title><style>${REPORT_CSS}</style></head>\n<body>${body}</body></html>\n`;
}
