/** The sweep's trade-off curve as text, and as a page with the plot (quality against parameters). */
import type { SweepReport } from './sweep-report.js';
import { baseName, esc } from './html-escape.js';
import { dl, htmlPage } from './html.js';
import { RunInfo, runInfoHtml } from './run-info.js';
import { formatBytes } from './text.js';
import { maxOf, minOf } from '../util/arrays.js';

const pct = (x: number | null) => (x === null || !Number.isFinite(x) ? '-' : `${(100 * x).toFixed(2)}%`);
const x3 = (x: number | null | undefined) => (x === null || x === undefined ? '-' : x.toFixed(3));
const label = (p: SweepReport['points'][number]) => (p.budget === null ? p.shape : `auto ${p.budget}`);

export function renderSweep(r: SweepReport): string {
  const name = r.original.metric === 'top1' ? 'top-1' : 'agreement';
  const rows = [['', 'point', name, 'occluded', 'params', 'MACs', 'file', 'latency', 'command']];
  rows.push(['', 'original', pct(r.original.quality), pct(r.original.occludedQuality), '1.000', '1.000', '1.000', '1.000', '']);
  for (const p of [...r.points].sort((a, b) => a.params.after - b.params.after)) {
    rows.push([p.pareto ? '*' : '', label(p), pct(p.quality), pct(p.occludedQuality), x3(p.params.ratio), x3(p.macs?.ratio), x3(p.fileBytes.ratio), x3(p.latencyRatio), p.command]);
  }
  const widths = rows[0].map((_, c) => maxOf(rows.map((row) => row[c].length)));
  const lines = rows.map((row) => row.map((cell, c) => (c === row.length - 1 ? cell : cell.padEnd(widths[c]))).join('  ').trimEnd());
  return [
    `${r.input.path}: ${r.points.length} points, ${name} on ${r.evalSamples} evaluation samples after reconstruction on ${r.calibSamples}`,
    'ratios are after / before; * = on the Pareto front (no other point has more quality with fewer parameters)',
    '',
    ...lines,
    '',
    `file sizes written decomposed (original ${formatBytes(r.points[0]?.fileBytes.before ?? 0)}); ${r.method.latency}`,
    ...(r.withinDrop ? ['', withinDropLine(r, r.withinDrop)] : []),
  ].join('\n');
}

/** The answer to --max-drop: the smallest point within it, or that none is. */
export function withinDropLine(r: SweepReport, w: NonNullable<SweepReport['withinDrop']>): string {
  const pts = (d: number) => `${d.toFixed(2)} point${Math.abs(d - 1) < 1e-9 ? '' : 's'}`;
  if (w.point === null) return `no point is within ${pts(w.maxDrop)} of the original (the smallest drop was ${pts(w.smallestDrop)})`;
  const p = r.points[w.point];
  const size = w.by === 'macs' ? `MACs ${x3(p.macs!.ratio)}` : `params ${x3(p.params.ratio)}`;
  return `within ${pts(w.maxDrop)}, the fewest ${w.by === 'macs' ? 'MACs' : 'parameters'}: ${label(p)} (${size}, drop ${pts((r.original.quality - p.quality) * 100)}): ${p.command}`;
}

/** The scatter: x = parameters after / before, y = quality; the front joined by a line. */
function plotSvg(r: SweepReport): string {
  const W = 640;
  const H = 360;
  const M = { l: 60, r: 20, t: 16, b: 44 };
  const qs = [r.original.quality, ...r.points.map((p) => p.quality)].filter(Number.isFinite);
  const lo = Math.max(0, minOf(qs) - 0.01);
  const hi = Math.min(1, maxOf(qs) + 0.01);
  const xs = r.points.map((p) => p.params.ratio);
  const xlo = Math.max(0, minOf(xs) - 0.05);
  const xhi = 1.02;
  const X = (v: number) => M.l + ((v - xlo) / (xhi - xlo)) * (W - M.l - M.r);
  const Y = (v: number) => H - M.b - ((v - lo) / (hi - lo || 1)) * (H - M.t - M.b);
  const front = r.points.filter((p) => p.pareto).sort((a, b) => a.params.ratio - b.params.ratio);
  const dots = r.points.map((p) => `<g class="point${p.pareto ? ' front' : ''}"><title>${esc(`${label(p)}: ${pct(p.quality)}, params x${x3(p.params.ratio)}, file x${x3(p.fileBytes.ratio)}\n${p.command}`)}</title>`
    + `<circle cx="${X(p.params.ratio).toFixed(1)}" cy="${Y(p.quality).toFixed(1)}" r="5" fill="${p.pareto ? '#e8590c' : '#4d96c9'}"/>`
    + `<text x="${(X(p.params.ratio) + 8).toFixed(1)}" y="${(Y(p.quality) - 6).toFixed(1)}" font-size="11">${esc(label(p))}</text></g>`).join('');
  const ticks = [0, 0.25, 0.5, 0.75, 1].map((t) => lo + t * (hi - lo));
  return `<svg class="sweep-plot" viewBox="0 0 ${W} ${H}" width="100%" role="img" aria-label="quality against parameters kept, one dot per point, the Pareto front in orange">`
    + `<line x1="${M.l}" y1="${H - M.b}" x2="${W - M.r}" y2="${H - M.b}" stroke="#555"/><line x1="${M.l}" y1="${M.t}" x2="${M.l}" y2="${H - M.b}" stroke="#555"/>`
    + ticks.map((t) => `<text x="${M.l - 6}" y="${Y(t) + 4}" font-size="11" text-anchor="end">${pct(t)}</text>`).join('')
    + [xlo, (xlo + xhi) / 2, 1].map((t) => `<text x="${X(t)}" y="${H - M.b + 16}" font-size="11" text-anchor="middle">${t.toFixed(2)}</text>`).join('')
    + `<text x="${(M.l + W - M.r) / 2}" y="${H - 6}" font-size="12" text-anchor="middle">parameters after / before</text>`
    + `<line x1="${M.l}" x2="${W - M.r}" y1="${Y(r.original.quality)}" y2="${Y(r.original.quality)}" stroke="#888" stroke-dasharray="4 3"><title>the original</title></line>`
    + `<text x="${W - M.r}" y="${Y(r.original.quality) - 5}" font-size="11" text-anchor="end">original ${pct(r.original.quality)}</text>`
    + (front.length > 1 ? `<polyline fill="none" stroke="#e8590c" stroke-width="1.5" points="${front.map((p) => `${X(p.params.ratio).toFixed(1)},${Y(p.quality).toFixed(1)}`).join(' ')}"/>` : '')
    + dots + '</svg>';
}

export function renderSweepHtml(r: SweepReport, run?: RunInfo): string {
  const name = r.original.metric === 'top1' ? 'top-1' : 'agreement with the original';
  const rows = [...r.points].sort((a, b) => a.params.after - b.params.after).map((p) => `<tr${p.pareto ? ' class="front"' : ''}>`
    + `<td>${p.pareto ? '★' : ''}</td><td>${esc(label(p))}</td><td class="num">${pct(p.quality)}</td><td class="num">${pct(p.occludedQuality)}</td>`
    + `<td class="num">${x3(p.params.ratio)}</td><td class="num">${x3(p.macs?.ratio)}</td><td class="num">${x3(p.fileBytes.ratio)} (${esc(formatBytes(p.fileBytes.after))})</td>`
    + `<td class="num">${x3(p.latencyRatio)}</td><td><code>${esc(p.command)}</code></td></tr>`).join('');
  const body = '<main><header>'
    + `<h1>${esc(baseName(r.input.path))}: the trade-off</h1>`
    + `<p class="lede">${r.points.length} points; ${esc(name)} of the original ${pct(r.original.quality)} on ${r.evalSamples} samples. Orange: the Pareto front.</p>`
    + (r.withinDrop ? `<p class="lede">${esc(withinDropLine(r, r.withinDrop))}</p>` : '')
    + runInfoHtml(run)
    + '</header>'
    + `<section><h2>Quality against parameters</h2><figure class="chart-box">${plotSvg(r)}</figure></section>`
    + '<section><h2>Points</h2><div class="table-wrap"><table><thead><tr><th></th><th>point</th>'
    + `<th class="num">${esc(name)}</th><th class="num">occluded</th><th class="num">params</th><th class="num">MACs</th><th class="num">file</th><th class="num">latency</th><th>command</th></tr></thead>`
    + `<tbody>${rows}</tbody></table></div><p class="meta">Ratios are after / before.</p></section>`
    + `<section><h2>How it was measured</h2>${dl(Object.entries(r.method))}</section>`
    + `<footer>Generated by kprune ${esc(r.tool.version)}. Self-contained: nothing on this page is fetched from elsewhere.</footer></main>`;
  return htmlPage(`kprune sweep: ${baseName(r.input.path)}`, body);
}
