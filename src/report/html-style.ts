/**
 * The report page's stylesheet, inlined into the page (the file must open anywhere, offline).
 * System fonts only; a narrow window gets one column; print keeps the colours of the heat maps.
 */
export const REPORT_CSS = `
:root {
  --ink: #1b2733; --muted: #5b6773; --rule: #d8dee4; --paper: #ffffff; --panel: #f6f8fa;
  --before: #aab4be; --after: #1f6fb2; --shape: #e8590c; --drop: #c92a2a; --track: #e9edf1;
}
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; }
body {
  margin: 0; padding: 1.5rem 1rem 3rem; color: var(--ink); background: var(--paper);
  font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", "Helvetica Neue", Arial, sans-serif;
}
main { max-width: 72rem; margin: 0 auto; }
h1 { font-size: 1.6rem; line-height: 1.25; margin: 0 0 .4rem; overflow-wrap: anywhere; }
h2 { font-size: 1.2rem; margin: 2.2rem 0 .6rem; padding-bottom: .25rem; border-bottom: 1px solid var(--rule); }
h3 { font-size: .95rem; margin: 0 0 .4rem; }
section > h3 { font-size: 1rem; margin: 1.4rem 0 .4rem; }
p { margin: .4rem 0; }
code, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, "Liberation Mono", monospace; font-size: .88em; }
.lede { font-size: 1.05rem; margin: .2rem 0 .6rem; }
.meta { color: var(--muted); font-size: .88rem; overflow-wrap: anywhere; }
.meta span + span::before { content: " · "; }
.num, td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.unknown { color: var(--muted); }
.run-info { display: grid; grid-template-columns: max-content 1fr; gap: .1rem .8rem; margin: .5rem 0 0; color: var(--muted); font-size: .85rem; }
.run-info dt { font-weight: 600; }
.run-info dd { margin: 0; overflow-wrap: anywhere; }
.scale { font-variant-numeric: tabular-nums; }
.gate { margin: .6rem 0 0; padding: .45rem .7rem; border-radius: 6px; border: 1px solid; font-size: .92rem; overflow-wrap: anywhere; }
.gate.passed { background: #ebfbee; border-color: #8ce99a; color: #1b5e20; }
.gate.failed { background: #fff5f5; border-color: #ffa8a8; color: #a51111; }
.notes { padding-left: 1.2rem; color: var(--muted); font-size: .9rem; }

.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(15rem, 1fr)); gap: .75rem; }
.card { border: 1px solid var(--rule); border-radius: 8px; padding: .75rem .9rem; background: var(--panel); break-inside: avoid; }
.card-head { display: flex; justify-content: space-between; align-items: flex-start; gap: .5rem; }
.card .ratio { margin: 0; text-align: right; line-height: 1.1; }
.card .ratio .r { display: block; font-size: 1.3rem; font-weight: 700; font-variant-numeric: tabular-nums; }
.card .ratio .rl { display: block; font-size: .7rem; color: var(--muted); white-space: nowrap; }
.card dl.ba { display: grid; grid-template-columns: max-content max-content minmax(2rem, 1fr); gap: .1rem .6rem; align-items: center; margin: .35rem 0 .2rem; }
.card dl.ba dt { font-size: .78rem; color: var(--muted); }
.card dl.ba dd { margin: 0; }
.card dl.ba dd.value { font-size: 1.05rem; font-weight: 600; font-variant-numeric: tabular-nums; white-space: nowrap; text-align: right; }
.card dl.ba svg { display: block; }
.card .note { font-size: .82rem; color: var(--muted); margin: .25rem 0 0; overflow-wrap: anywhere; }
.card.is-unknown .value { font-size: 1.15rem; font-weight: 600; color: var(--muted); margin: 0; }
.card.is-unknown .reason { font-size: .85rem; margin: .2rem 0 0; overflow-wrap: anywhere; }

.legend { display: flex; flex-wrap: wrap; gap: .4rem 1.5rem; align-items: center; font-size: .85rem; color: var(--muted); margin: .3rem 0 .8rem; }
.legend svg { display: block; }
.legend-ramp text, .legend-marks text { font-size: 11px; fill: var(--muted); }
.layers { display: grid; grid-template-columns: repeat(auto-fill, minmax(13rem, 1fr)); gap: .75rem; }
.layer { margin: 0; border: 1px solid var(--rule); border-radius: 8px; padding: .6rem .7rem; break-inside: avoid; background: var(--paper); }
.layer svg { display: block; margin: 0 auto .35rem; max-width: 100%; height: auto; }
.layer figcaption { font-size: .82rem; line-height: 1.4; }
.layer .name { display: block; font-weight: 600; overflow-wrap: anywhere; }
.layer .shape { font-weight: 600; color: var(--shape); }
.layer .sub { color: var(--muted); overflow-wrap: anywhere; }
.heatmap text { font: 9px ui-monospace, Menlo, Consolas, monospace; text-anchor: middle; pointer-events: none; stroke-width: 2.5px; paint-order: stroke; stroke-linejoin: round; }
.heatmap .cross, .legend-marks .cross { stroke: var(--drop); stroke-width: 2.4; stroke-linecap: round; fill: none; }
.heatmap .halo, .legend-marks .halo { stroke: #ffffff; stroke-width: 4.4; stroke-linecap: round; fill: none; }
.heatmap .outline, .legend-marks .outline { stroke: var(--shape); stroke-width: 3; stroke-linecap: square; fill: none; }

figure.chart-box { margin: .5rem 0 1rem; }
figure.chart-box figcaption { font-size: .85rem; color: var(--muted); margin-bottom: .4rem; }
.chart { display: block; overflow: hidden; }
.chart .row-label { font-size: 12px; fill: var(--ink); }
.chart .bar-text { font-size: 11px; fill: var(--ink); font-variant-numeric: tabular-nums; }
.chart .bar-text.inside { fill: #ffffff; }
.chart .bar-text.inside.before { fill: var(--ink); }
.chart .track { fill: var(--track); }
.chart .reference { stroke: var(--ink); stroke-width: 1.5; stroke-dasharray: 4 3; }
.bar.before { fill: var(--before); }
.bar.after, .bar.kept { fill: var(--after); }
.swatch { display: inline-block; width: .8em; height: .8em; border-radius: 2px; vertical-align: -.05em; margin-right: .3em; }
.swatch.before { background: var(--before); }
.swatch.after { background: var(--after); }

.table-wrap { overflow-x: auto; -webkit-overflow-scrolling: touch; }
table { border-collapse: collapse; font-size: .85rem; margin: .3rem 0 .8rem; }
th, td { padding: .3rem .5rem; white-space: nowrap; border-bottom: 1px solid var(--rule); text-align: left; vertical-align: top; }
th { font-weight: 600; background: var(--panel); }
td.name { white-space: normal; overflow-wrap: anywhere; min-width: 9rem; }
td.wrap { white-space: normal; min-width: 12rem; }
td .sub { color: var(--muted); font-size: .9em; }
td .timing { display: inline-block; height: .6em; background: var(--after); border-radius: 1px; }

dl.method { display: grid; grid-template-columns: 9rem 1fr; gap: .35rem 1rem; margin: .4rem 0 1rem; font-size: .9rem; }
dl.method dt { font-weight: 600; }
dl.method dd { margin: 0; overflow-wrap: anywhere; }
footer { margin-top: 2.5rem; color: var(--muted); font-size: .8rem; }

@media (max-width: 40rem) {
  body { padding: 1rem .6rem 2rem; font-size: 14px; }
  h1 { font-size: 1.3rem; }
  dl.method { grid-template-columns: 1fr; gap: .1rem; }
  dl.method dd { margin-bottom: .5rem; }
  .layers { grid-template-columns: repeat(auto-fill, minmax(10rem, 1fr)); }
}
@media print {
  body { padding: 0; font-size: 10pt; }
  main { max-width: none; }
  * { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
  h2 { break-after: avoid; }
  .card, .layer, figure.chart-box, tr { break-inside: avoid; }
  .table-wrap { overflow: visible; }
}
@page { margin: 14mm; }
`;
