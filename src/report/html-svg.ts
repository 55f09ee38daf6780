/**
 * The inline SVG of the HTML report, drawn here in TypeScript so the page is complete without
 * scripts: per-layer 3x3 heat maps with the chosen shape over them, and horizontal bar charts.
 *
 * Charts have no viewBox: x positions and widths are percentages of the chart's width, so bars
 * stretch with the window while text keeps its size (a scaled viewBox would shrink the labels to
 * nothing in a narrow window).
 */
import { esc } from './html-escape.js';
import { maxOf, minOf } from '../util/arrays.js';

const POSITION_NAMES = ['top-left', 'top', 'top-right', 'left', 'centre', 'right', 'bottom-left', 'bottom', 'bottom-right'];

/** Sequential blues, light to dark, for values in [0, 1]. */
const HEAT_STOPS: [number, number, number][] = [
  [0xf7, 0xfb, 0xff],
  [0xc6, 0xdb, 0xef],
  [0x6b, 0xae, 0xd6],
  [0x21, 0x71, 0xb5],
  [0x08, 0x30, 0x6b],
];

export function heatColour(v: number): string {
  const x = Math.min(1, Math.max(0, Number.isFinite(v) ? v : 0)) * (HEAT_STOPS.length - 1);
  const i = Math.min(HEAT_STOPS.length - 2, Math.floor(x));
  const t = x - i;
  const [a, b] = [HEAT_STOPS[i], HEAT_STOPS[i + 1]];
  const hex = (k: number) => Math.round(a[k] + (b[k] - a[k]) * t).toString(16).padStart(2, '0');
  return `#${hex(0)}${hex(1)}${hex(2)}`;
}

/** Which of the 9 positions a mask such as "010/111/010" keeps (row-major, as in the report). */
export function keptPositions(mask: string): boolean[] {
  const digits = mask.replace(/[^01]/g, '');
  return Array.from({ length: 9 }, (_, i) => digits[i] === '1');
}

const CELL = 34;
const PAD = 3;

/** A value to 3 significant digits, for people (the exact one stays in `data-value`). */
export function sig3(v: number): string {
  return Number.isFinite(v) ? v.toPrecision(3) : '?';
}

/**
 * The colour scale of one heat map: the layer's own smallest to largest value. A layer's values
 * often sit between 0.7 and 1, where a fixed 0-1 scale paints every cell the same dark blue.
 */
export function heatScale(values: readonly number[]): { lo: number; hi: number } {
  const finite = values.filter(Number.isFinite);
  if (finite.length === 0) return { lo: 0, hi: 1 };
  return { lo: minOf(finite), hi: maxOf(finite) };
}

/**
 * One layer's mean |w| per position (normalised, max 1) as a 3x3 grid, darker = larger, on the
 * layer's own scale (heatScale; the caption states it). The chosen shape is drawn over it: the
 * outline of the kept positions, and a cross over each dropped one. Every cell carries its exact
 * value in `data-value`, and to 3 significant digits in its tooltip.
 */
export function heatMapSvg(meanAbs: number[], mask: string, layerIndex: number, shapeName: string): string {
  const kept = keptPositions(mask);
  const cells: string[] = [];
  const { lo, hi } = heatScale(meanAbs);
  for (let p = 0; p < 9; p++) {
    const v = meanAbs[p];
    const x = (p % 3) * CELL;
    const y = Math.floor(p / 3) * CELL;
    const scaled = hi > lo ? (v - lo) / (hi - lo) : 1;
    const fill = heatColour(scaled);
    const ink = scaled > 0.55 ? '#ffffff' : '#1b2733';
    const state = kept[p] ? 'kept' : 'dropped';
    const tip = `${POSITION_NAMES[p]}: mean |w| ${sig3(v)} (normalised; ${state} by ${shapeName})`;
    let g = `<g class="cell ${state}" data-pos="${p}" data-value="${esc(String(v))}" data-kept="${kept[p]}">`
      + `<title>${esc(tip)}</title>`
      + `<rect x="${x + 1}" y="${y + 1}" width="${CELL - 2}" height="${CELL - 2}" rx="2" fill="${fill}"/>`
          if (!kept[p]) {
      const a = 5;
      const lines = `M${x + a} ${y + a}L${x + CELL - a} ${y + CELL - a}M${x + CELL - a} ${y + a}L${x + a} ${y + CELL - a}`;
      g += `<path class="halo" d="${lines}"/><path class="cross" d="${lines}"/>`;
    }
    // The number over the cross, on a plate of the cell's own colour so it stays legible.
    if (!kept[p]) g += `<rect class="plate" x="${x + CELL / 2 - 12}" y="${y + CELL / 2 - 6}" width="24" height="12" rx="2" fill="${fill}"/>`;
    g += `<text x="${x + CELL / 2}" y="${y + CELL / 2 + 3.5}" fill="${ink}" stroke="${fill}">${Number.isFinite(v) ? v.toFixed(2) : '?'}</text>`;
    cells.push(g + '</g>');
  }
  // The outline: every cell edge with a kept cell on one side and a dropped cell (or the border) on the other.
  const edges: string[] = [];
  const has = (r: number, c: number) => r >= 0 && r < 3 && c >= 0 && c < 3 && kept[3 * r + c];
  for (let r = 0; r < 3; r++) {
    for (let c = 0; c < 3; c++) {
      if (!has(r, c)) continue;
      const x = c * CELL;
      const y = r * CELL;
      if (!has(r - 1, c)) edges.push(`M${x} ${y}H${x + CELL}`);
      if (!has(r + 1, c)) edges.push(`M${x} ${y + CELL}H${x + CELL}`);
      if (!has(r, c - 1)) edges.push(`M${x} ${y}V${y + CELL}`);
      if (!has(r, c + 1)) edges.push(`M${x + CELL} ${y}V${y + CELL}`);
    }
  }
  const size = 3 * CELL + 2 * PAD;
  return `<svg class="heatmap" data-layer-index="${layerIndex}" viewBox="${-PAD} ${-PAD} ${size} ${size}" width="${size + 40}" height="${size + 40}" role="img" aria-label="${esc(`mean |w| per position, shape ${shapeName} (${mask})`)}">`
    + cells.join('')
    + `<path class="outline" d="${edges.join('')}"/>`
    + '</svg>';
}

/** The colour scale and the two marks, once above the heat maps. */
export function heatLegendSvg(): string {
  const steps = 10;
  const w = 16;
  const ramp = Array.from({ length: steps + 1 }, (_, i) => `<rect x="${i * w}" y="0" width="${w}" height="14" fill="${heatColour(i / steps)}"/>`).join('');
  return `<svg class="legend-ramp" width="${(steps + 1) * w}" height="30" role="img" aria-label="colour scale, per layer: mean |w| from the layer's smallest (light) to its largest (dark)">${ramp}`
    + `<text x="0" y="27">layer min</text><text x="${(steps + 1) * w}" y="27" text-anchor="end">max</text></svg>`;
}

/** The caption line stating one heat map's scale. */
export function heatScaleText(values: readonly number[]): string {
  const { lo, hi } = heatScale(values);
  return `colour scale ${sig3(lo)} (light) – ${sig3(hi)} (dark)`;
}

export function legendMarksSvg(): string {
  return '<svg class="legend-marks" width="150" height="22" viewBox="0 0 150 22" aria-hidden="true">'
    + '<rect x="2" y="3" width="16" height="16" fill="#c6dbef"/><path class="outline" d="M2 3h16v16h-16z"/>'
    + '<text x="24" y="15">kept</text>'
    + '<rect x="70" y="3" width="16" height="16" fill="#c6dbef"/><path class="halo" d="M73 6l10 10m0 -10l-10 10"/><path class="cross" d="M73 6l10 10m0 -10l-10 10"/>'
    + '<text x="92" y="15">dropped</text></svg>';
}

export interface Bar {
  value: number;
  /** Printed beside or inside the bar. */
  text: string;
  /** A CSS class choosing the colour. */
  cls: string;
}

export interface BarRow {
  label: string;
  bars: Bar[];
}

export interface BarChart {
  label: string;
  rows: BarRow[];
  /** The value at the full width. */
  max: number;
  /** A dashed vertical line, e.g. the whole model's figure. */
  reference?: number;
  /** Draw the full-width track behind each bar (for shares of a whole). */
  track?: boolean;
}

const LABEL_H = 16;
const BAR_H = 14;
const BAR_GAP = 3;
const ROW_GAP = 10;

/** Percent of the chart width, written with enough digits to be exact to a pixel. */
function pc(v: number, max: number): string {
  const x = max > 0 ? Math.min(1, Math.max(0, v / max)) : 0;
  return `${(100 * x).toFixed(3)}%`;
}

export function barChartSvg(chart: BarChart): string {
  const parts: string[] = [];
  let y = 0;
  for (const row of chart.rows) {
    parts.push(`<text class="row-label" x="0" y="${y + 12}"><title>${esc(row.label)}</title>${esc(row.label)}</text>`);
    y += LABEL_H + 2;
    for (const bar of row.bars) {
      if (chart.track) parts.push(`<rect class="track" x="0" y="${y}" width="100%" height="${BAR_H}"/>`);
      const w = pc(bar.value, chart.max);
      parts.push(`<rect class="bar ${esc(bar.cls)}" x="0" y="${y}" width="${w}" height="${BAR_H}"><title>${esc(bar.text)}</title></rect>`);
      // Long bars carry their figure inside, short ones just after.
      const inside = chart.max > 0 && bar.value / chart.max > 0.6;
      parts.push(inside
        ? `<text class="bar-text inside ${esc(bar.cls)}" x="${w}" dx="-5" y="${y + 11}" text-anchor="end">${esc(bar.text)}</text>`
        : `<text class="bar-text" x="${w}" dx="5" y="${y + 11}">${esc(bar.text)}</text>`);
      y += BAR_H + BAR_GAP;
    }
    y += ROW_GAP - BAR_GAP;
  }
  const height = Math.max(0, y - ROW_GAP + 2);
  if (chart.reference !== undefined) {
    const x = pc(chart.reference, chart.max);
    parts.push(`<line class="reference" x1="${x}" x2="${x}" y1="0" y2="${height}"/>`);
  }
  return `<svg class="chart" width="100%" height="${height}" role="img" aria-label="${esc(chart.label)}">${parts.join('')}</svg>`;
}

/** One bar of a summary card, scaled so the larger of before and after fills the width. */
export function barSvg(value: number, max: number, cls: 'before' | 'after'): string {
  return `<svg class="mini" width="100%" height="10" aria-hidden="true"><rect class="bar ${cls}" x="0" y="1" width="${pc(value, max)}" height="8" rx="1"/></svg>`;
}
