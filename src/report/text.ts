/**
 * Terminal renderings of the reports. Plain text; colour is the CLI's business.
 */
import { terminalSafeData } from './terminal-safe.js';
import type { Reach } from '../core/reach.js';
import { LayerAnalysis } from '../core/analysis.js';
import { NAMED_SHAPES, NAMED_SHAPE_NAMES, QH_CYCLE, drawMask, parseMask } from '../core/lattice.js';
import { AnalyzeReport, ModelFigures, PruneReport } from './report.js';
import type { CompareReport } from './report.js';
import { formatQuality, qualityRows } from './quality-rows.js';
import { maxOf, pushAll } from '../util/arrays.js';

const SHADES = ['  ', '░░', '▒▒', '▓▓', '██'];

/** A 3x3 block of shading, one string per row, for values in [0, 1]. */
export function shade3x3(values: number[]): string[] {
  const rows: string[] = [];
  for (let r = 0; r < 3; r++) {
    let row = '';
    for (let c = 0; c < 3; c++) {
      const v = values[3 * r + c];
      row += SHADES[Math.min(SHADES.length - 1, Math.max(0, Math.floor(v * SHADES.length)))];
    }
    rows.push(row);
  }
  return rows;
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(2)} MiB`;
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}

export function formatCount(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)} G`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)} M`;
  if (n >= 1e4) return `${(n / 1e3).toFixed(1)} k`;
  return String(Math.round(n));
}

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;

/** Text styles; plain by default, ANSI colours when the CLI says the terminal wants them. */
export interface Style {
  bold: (s: string) => string;
  dim: (s: string) => string;
  good: (s: string) => string;
  bad: (s: string) => string;
}

const same = (s: string) => s;
export const PLAIN: Style = { bold: same, dim: same, good: same, bad: same };
export const ANSI: Style = {
  bold: (s) => `\x1b[1m${s}\x1b[22m`,
  dim: (s) => `\x1b[2m${s}\x1b[22m`,
  good: (s) => `\x1b[32m${s}\x1b[39m`,
  bad: (s) => `\x1b[31m${s}\x1b[39m`,
};

// eslint-disable-next-line no-control-regex
const visible = (s: string) => s.replace(/\x1b\[[0-9;]*m/g, '').length;

function pad(s: string, n: number): string {
  return visible(s) >= n ? s : s + ' '.repeat(n - visible(s));
}

function padLeft(s: string, n: number): string {
  return visible(s) >= n ? s : ' '.repeat(n - visible(s)) + s;
}

function table(rows: string[][], rightAlign: Set<number> = new Set()): string[] {
  const widths = rows[0].map((_, c) => maxOf(rows.map((r) => visible(r[c] ?? ''))));
  return rows.map((r) => r.map((cell, c) => (rightAlign.has(c) ? padLeft(cell, widths[c]) : pad(cell, widths[c]))).join('  ').trimEnd());
}

const POSITION_NAMES = ['top-left', 'top', 'top-right', 'left', 'centre', 'right', 'bottom-left', 'bottom', 'bottom-right'];

function bestQh(l: LayerAnalysis): string {
  const qh = NAMED_SHAPE_NAMES.filter((n) => n.startsWith('qh-'));
  const best = qh.reduce((a, b) => (l.energyKept[b] > l.energyKept[a] ? b : a));
  return `${best} ${pct(l.energyKept[best])}`;
}

export function renderAnalyze(r: AnalyzeReport): string {
  r = terminalSafeData(r); // names come from files: no control characters reach the terminal
  const out: string[] = [];
  out.push(`${r.input.path}  (${r.input.format}; ${Object.entries(r.input.formatInfo).map(([k, v]) => `${k} ${v}`).join('; ')})`);
  const total = r.layers.reduce((a, l) => a + l.params, 0);
  out.push(`${r.layers.length} prunable 3x3 convolution weight tensors, ${formatCount(total)} weights${r.skipped.length ? `; ${r.skipped.length} skipped` : ''}`);
  out.push(reachLine(r.reach));
  out.push('');
  out.push('mean |w| per position (darker = larger, normalised per layer); energy kept by shape; low-magnitude positions (< ' + r.threshold + ')');
  for (const l of r.layers) {
    const s = shade3x3(l.meanAbs);
    const low = l.lowPositions.length ? l.lowPositions.map((p) => POSITION_NAMES[p]).join(', ') : 'none';
    out.push(`${padLeft(String(l.index), 3)} ${s[0]}  ${l.name}  [${l.shape.join('x')}] ${l.kind}${l.group > 1 ? ` g=${l.group}` : ''}`);
    out.push(`    ${s[1]}  keeps: cross ${pct(l.energyKept.cross)}, ${bestQh(l)}, x ${pct(l.energyKept.x)}`);
    out.push(`    ${s[2]}  low: ${low}`);
  }
  out.push('');
  out.push('Whole model: energy kept per shape (layers weighted by parameters)');
  pushAll(out, table([
    ['shape', 'positions', 'energy kept', 'per parameter'],
    ...r.shapes.map((s) => [s.shape, String(s.positions), pct(s.energyKept), s.energyPerParam.toFixed(3)]),
  ], new Set([1, 2, 3])).map((l) => `  ${l}`));
  for (const s of r.skipped) out.push(`skipped ${s.node} (${s.opType}): ${s.reason}`);
  return out.join('\n');
}

let style: Style = PLAIN;

function reachLine(r: Reach): string {
  const line = r.macs ? r.summary : `${r.summary} (MACs not counted: ${r.macsUnknown})`;
  return r.small ? style.bad(line) : line;
}

/** after/before, green when smaller, red when larger (every figure here is better smaller). */
function ratio(a: number, b: number): string {
  if (!(a > 0)) return '-';
  const r = b / a;
  const text = r.toFixed(3);
  return r < 0.9995 ? style.good(text) : r > 1.0005 ? style.bad(text) : text;
}

function figureRows(b: ModelFigures, a: ModelFigures): string[][] {
  const rows: string[][] = [['', 'before', 'after', 'after/before']];
  rows.push(['file size', formatBytes(b.size.bytes), formatBytes(a.size.bytes), ratio(b.size.bytes, a.size.bytes)]);
  if (b.size.gzipBytes !== null && a.size.gzipBytes !== null) rows.push(['  gzip', formatBytes(b.size.gzipBytes), formatBytes(a.size.gzipBytes), ratio(b.size.gzipBytes, a.size.gzipBytes)]);
  else rows.push(['  gzip', 'not measured', 'not measured', '']);
  rows.push(['parameters (non-zero)', formatCount(b.params.nonzero), formatCount(a.params.nonzero), ratio(b.params.nonzero, a.params.nonzero)]);
  rows.push(['  in 3x3 convs', formatCount(b.params.conv3x3Nonzero), formatCount(a.params.conv3x3Nonzero), ratio(b.params.conv3x3Nonzero, a.params.conv3x3Nonzero)]);
  if (b.macs.status === 'measured' && a.macs.status === 'measured') {
    rows.push(['MACs (skipping zeros)', formatCount(b.macs.effective), formatCount(a.macs.effective), ratio(b.macs.effective, a.macs.effective)]);
    rows.push(['  in 3x3 convs', formatCount(b.macs.conv3x3Effective), formatCount(a.macs.conv3x3Effective), ratio(b.macs.conv3x3Effective, a.macs.conv3x3Effective)]);
  } else {
    rows.push(['MACs', 'unknown', 'unknown', '']);
  }
  return rows;
}

function latencyRows(r: PruneReport): string[][] {
  const l = r.latency;
  if ('status' in l) return [['latency', 'unknown', 'unknown', '']];
  const f = (s: typeof l.before) => `${s.medianMs.toFixed(2)} ms`;
  return [[`latency (batch ${l.batch})`, f(l.before), f(l.after), l.ratio.toFixed(3)]];
}

export interface RenderOptions {
  /** The per-layer table and the measurement notes. */
  verbose?: boolean;
  style?: Style;
}

function gateLine(g: PruneReport['gate']): string[] {
  if (!g) return [];
  return [`gate --max-drop ${g.maxDrop}: ${g.passed ? style.good('passed') : style.bad('FAILED')} (${g.reason})`];
}

export function renderPrune(r: PruneReport, options: RenderOptions = {}): string {
  r = terminalSafeData(r); // names come from files: no control characters reach the terminal
  style = options.style ?? PLAIN;
  const verbose = options.verbose ?? false;
  const out: string[] = [];
  const planName = r.plan.spec === 'auto' ? `auto, budget ${r.plan.budget}` : r.plan.spec;
  const layouts = [...new Set(r.layers.map((l) => l.layout))].join('/');
  out.push(style.bold(`${r.input.path} -> ${r.output.path}`) + ` (layout ${layouts}${layouts === 'masked' ? ': zeros in place, same file size' : layouts === 'decomposed' ? ': smaller convolutions, only the kept weights stored' : ''})`);
  out.push(`shape ${planName}, layout ${layouts}: ${r.layers.length} 3x3 weight tensors reshaped, ${pct(r.plan.keptFraction)} of their positions kept`);
  pushAll(out, gateLine(r.gate));
  out.push(reachLine(r.reach));
  if (r.layoutFallback) out.push(`layout: ${r.layoutFallback}`);
  out.push('');
  const stored = r.layers.reduce((a, l) => a + l.storedWeights, 0);
  const dense = r.layers.reduce((a, l) => a + l.params, 0);
  pushAll(out, table([
    ...figureRows(r.before, r.after),
    ['stored 3x3 weights', formatCount(dense), formatCount(stored), ratio(dense, stored)],
    ...latencyRows(r),
  ], new Set([1, 2, 3])));
  out.push(style.dim(`ideal ratio (kept positions / 9 over the 3x3 weights): ${r.plan.keptFraction.toFixed(3)}`));
  if (!('status' in r.latency)) {
    const l = r.latency;
    out.push(style.dim(`latency: ${l.runtime}, threads ${l.threads}, median of ${l.runs} interleaved runs after ${l.warmup} warm-up; spread (quartiles) before ${l.before.p25Ms.toFixed(2)}-${l.before.p75Ms.toFixed(2)} ms, after ${l.after.p25Ms.toFixed(2)}-${l.after.p75Ms.toFixed(2)} ms`));
  }
  if (r.layers.some((l) => l.layout === 'sparse')) {
    out.push('sparse layout: onnxruntime densifies sparse weights when it loads a model, so it saves file bytes only when enough weights are zero: COO stores an 8-byte index per kept weight');
  }
  pushAll(out, renderAccuracy(r));
  if (r.before.macs.status === 'measured') {
    out.push(style.dim(`MACs at input ${Object.entries(r.before.macs.inputShapes).map(([k, v]) => `${k}[${v.join(',')}]`).join(' ')}, dense before: ${formatCount(r.before.macs.dense)}`));
  } else {
    out.push(`MACs unknown: ${r.before.macs.reason}`);
  }
  out.push(style.dim(`output ${r.output.verified}`));
  if (r.after.size.gzipBytes !== null && r.before.size.gzipBytes !== null && r.after.size.gzipBytes < r.before.size.gzipBytes && r.after.size.bytes >= r.before.size.bytes) {
    out.push(`note: ${layoutSizeNote(r.layers.map((l) => l.layout))}`);
  }
  if (verbose) {
    out.push('');
    const recon = r.recovery !== null;
    pushAll(out, table([
      ['#', 'layer', 'kernel', 'shape', 'mask', 'layout', 'energy kept', 'weights kept', 'MACs after', ...(recon ? ['output error: reshaped -> reconstructed'] : [])],
      ...r.layers.map((l, i) => [
        String(i), l.name, l.shape.join('x'), l.chosenShape, l.mask, l.layout === 'decomposed' && l.layoutNote ? `decomposed: ${l.layoutNote}` : l.layout,
        pct(l.energyKept), `${formatCount(l.nonzeroAfter)}/${formatCount(l.params)}`, l.macsAfterEffective === null ? '?' : formatCount(l.macsAfterEffective),
        ...(recon ? [l.reconstructionError ? `${pct(l.reconstructionError.before)} -> ${pct(l.reconstructionError.after)}` : '-'] : []),
      ]),
    ], new Set([0, 6, 7, 8])));
    for (const l of r.layers.filter((x) => x.layout === 'masked' && x.layoutNote)) out.push(`layer ${l.name} kept masked: ${l.layoutNote}`);
  } else {
    out.push(style.dim('(--verbose for the per-layer table)'));
  }
  for (const s of r.skipped) out.push(`skipped ${s.node} (${s.opType}): ${s.reason}`);
  return out.join('\n');
}

/** Why the raw file is not smaller while gzip is, in the words of the layouts actually written. */
export function layoutSizeNote(layouts: readonly string[]): string {
  const used = new Set(layouts);
  if (used.size === 1 && used.has('masked')) return 'the masked layout keeps zeros in place, so the raw file keeps its size; the savings show in gzip and in effective MACs';
  if (used.size === 1 && used.has('sparse')) return 'the sparse layout stores an index beside every kept weight, so the raw file is not smaller at this share of zeros; the savings show in gzip and in effective MACs';
  return `with the layouts written (${[...used].sort().join(', ')}), the raw file is not smaller; the savings show in gzip and in effective MACs`;
}

const mib = (b: number) => `${(b / 2 ** 20).toFixed(b < 2 ** 20 ? 2 : 0)} MiB`;

/** How reconstruction got its layer inputs and targets, and what that held in memory. */
export function propagationLine(p: NonNullable<PruneReport['recovery']>['propagation']): string {
  if (p.engine === 'rerun') {
    return `reconstruction: the whole model run again for each layer (${p.passes} passes of ${p.chunk}-image batches)${p.fallbackReason ? `; segments not used: ${p.fallbackReason}` : ''}`;
  }
  const spill = p.spilledBytes ? `, ${mib(p.spilledBytes)} written to a temporary file (budget ${mib(p.memoryBudget ?? 0)})` : '';
  return `reconstruction: segment by segment from cached activations (2 passes, chunks of ${p.chunk}); cache peak ${mib(p.peakCacheBytes ?? 0)} in memory${spill}: `
    + `at most ${p.maxLiveValues} live value${p.maxLiveValues === 1 ? '' : 's'}, ${((p.maxLiveBytesPerImage ?? 0) / 1024).toFixed(0)} KiB per image, plus sampled targets ${((p.targetBytesPerImage ?? 0) / 1024).toFixed(0)} KiB per image`;
}

function renderAccuracy(r: PruneReport): string[] {
  const a = r.accuracy;
  if (a.status === 'unknown') return [`accuracy: unknown (${a.reason})`];
  const out: string[] = [''];
  const after = r.finetune ? 'written (fine-tuned)' : r.recovery ? 'written (reconstructed)' : 'written';
  out.push(`quality on ${a.evalSamples} evaluation samples: ${a.evalSource}; ${a.runtime}`);
  if (r.data) out.push(`calibration: ${r.data.calibSamples} samples: ${r.data.calibSource}`);
  if (r.recovery) {
    out.push(style.dim(propagationLine(r.recovery.propagation)));
    const comp = r.recovery.layers.filter((l) => l.role === 'compensating');
    if (comp.length > 0) out.push(style.dim(`compensated downstream (re-solved whole): ${comp.map((l) => `${l.name} ${pct(l.errorBefore)} -> ${pct(l.errorAfter)}`).join(', ')}`));
  }
  if (r.finetune) {
    const f = r.finetune;
    out.push(`fine-tuning: ${f.steps} steps of ${f.batch} (${f.objective}) on ${f.backend}, ${Math.round(f.imagesPerSecond)} images/s, ${(f.trainMs / 1000).toFixed(1)} s; best held-out checkpoint at step ${f.bestStep} (${f.heldOut.samples} held-out calibration samples, by ${f.heldOut.selectedBy})`);
    const h = f.heldOut;
    const imp = h.improvement ? `; improvement ${h.improvement.loss.toFixed(4)} ± ${h.improvement.stdError.toFixed(4)} (standard error, paired)` : '';
    out.push(`held-out ${h.metric === 'top1' ? `top-1 ${(100 * (h.before.top1 ?? 0)).toFixed(1)}% → ${(100 * (h.after.top1 ?? 0)).toFixed(1)}%, ` : ''}loss ${h.before.loss.toFixed(4)} → ${h.after.loss.toFixed(4)}${imp}`);
    if (f.engineNote) out.push(`fine-tuning ran in TF.js: ${f.engineNote}`);
    if (h.notSignificant) out.push(`kept the reconstructed start: the best trained checkpoint (step ${h.notSignificant.step}) lowered the held-out loss by ${h.notSignificant.improvement.loss.toFixed(4)} ± ${h.notSignificant.improvement.stdError.toFixed(4)}, under two standard errors`);
    if (f.missingOperators.length > 0) out.push(`fine-tuning ran in TF.js: no onnxruntime backward rule for ${f.missingOperators.join('; ')}`);
  }
  const columns = a.reconstructed ? [a.original, a.reshaped, a.reconstructed, a.written] : [a.original, a.reshaped, a.written];
  const rows: string[][] = [['', 'original', 'reshaped only', ...(a.reconstructed ? ['reconstructed'] : []), after]];
  for (const q of qualityRows(columns, a.occlusion !== null, 'original')) {
    rows.push([q.label, ...q.values.map((v) => formatQuality(v, q.kind))]);
  }
  pushAll(out, table(rows, new Set([1, 2, 3, 4])));
  if (a.occlusion) out.push(`occlusion: ${a.occlusion}`);
  const cost = costLine(r);
  if (cost) out.push(style.bad(cost));
  return out;
}

/** Points lost from which a run says what it cost and where to look for a better trade. */
export const COSTLY_DROP = 1;

/**
 * One line when the written model lost COSTLY_DROP points or more (top-1, or agreement without
 * labels) and no gate judged it: what the loss bought, and the commands that measure a better
 * trade. A depthwise model reshaped by auto can lose points for a few percent of its MACs; the
 * table shows both, this says it in words.
 */
export function costLine(r: PruneReport): string | null {
  const a = r.accuracy;
  if (a.status === 'unknown' || r.gate) return null;
  const o = a.original.clean;
  const w = a.written.clean;
  const drop = o.top1 !== undefined && w.top1 !== undefined ? 100 * (o.top1 - w.top1) : w.agreement !== undefined ? 100 * (1 - w.agreement) : null;
  if (drop === null || !(drop >= COSTLY_DROP - 1e-9)) return null;
  const what = o.top1 !== undefined && w.top1 !== undefined ? 'top-1' : 'agreement with the original';
  const saved = (before: number, after: number) => `${(100 * (1 - after / before)).toFixed(1)}%`;
  const macs = r.before.macs.status === 'measured' && r.after.macs.status === 'measured' && r.before.macs.effective > 0
    ? ` and ${saved(r.before.macs.effective, r.after.macs.effective)} of the MACs` : '';
  const bought = r.before.params.nonzero > 0 ? ` for ${saved(r.before.params.nonzero, r.after.params.nonzero)} of the parameters${macs}` : '';
  return `cost: ${drop.toFixed(2)} points of ${what}${bought}; \`kprune sweep ${r.input.path} --budget-of macs --max-drop ${COSTLY_DROP}\` with the same --data names the plan that saves the most within ${COSTLY_DROP} point`;
}

export function renderCompare(r: CompareReport, options: RenderOptions = {}): string {
  r = terminalSafeData(r); // names come from files: no control characters reach the terminal
  style = options.style ?? PLAIN;
  const out: string[] = [style.bold(`A: ${r.a.path} (${r.a.format})`), style.bold(`B: ${r.b.path} (${r.b.format})`)];
  pushAll(out, gateLine(r.gate));
  out.push('');
  const lat = r.latency;
  pushAll(out, table([
    ...figureRows(r.before, r.after).map((row, i) => (i === 0 ? ['', 'A', 'B', 'B/A'] : row)),
    'status' in lat ? ['latency', 'unknown', 'unknown', ''] : [`latency (batch ${lat.batch})`, `${lat.before.medianMs.toFixed(2)} ms`, `${lat.after.medianMs.toFixed(2)} ms`, ratio(lat.before.medianMs, lat.after.medianMs)],
  ], new Set([1, 2, 3])));
  if ('status' in lat) out.push(style.dim(`latency unknown: ${lat.reason}`));
  const a = r.accuracy;
  if (a.status === 'unknown') {
    out.push(`accuracy: unknown (${a.reason})`);
  } else {
    out.push('', `quality on ${a.evalSamples} evaluation samples: ${a.evalSource}; ${a.runtime}`);
    const rows: string[][] = [['', 'A', 'B']];
    for (const q of qualityRows([a.a, a.b], a.occlusion !== null, 'A')) rows.push([q.label, ...q.values.map((v) => formatQuality(v, q.kind))]);
    pushAll(out, table(rows, new Set([1, 2])));
  }
  return out.join('\n');
}

export function renderShapes(): string {
  const names = [...NAMED_SHAPE_NAMES];
  const blocks = names.map((n) => ({ title: n, rows: drawMask(parseMask(NAMED_SHAPES[n])), mask: NAMED_SHAPES[n] }));
  const width = 13;
  const out: string[] = [];
  for (let i = 0; i < blocks.length; i += 5) {
    const group = blocks.slice(i, i + 5);
    out.push(group.map((b) => pad(b.title, width)).join(''));
    for (let r = 0; r < 3; r++) out.push(group.map((b) => pad(b.rows[r], width)).join(''));
    out.push(group.map((b) => pad(b.mask, width)).join(''));
    out.push('');
  }
  out.push(`qh      the quasi-hexagonal scheme: ${QH_CYCLE.join(', ')} in turn, one per 3x3 layer in topological order`);
  out.push('auto    per layer, the shape that keeps the most energy under --budget (share of 3x3 weights kept)');
  out.push('custom  any mask written as rows, e.g. 010/111/010 (the centre must be kept)');
  return out.join('\n');
}
