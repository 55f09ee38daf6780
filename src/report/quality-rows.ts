/**
 * The rows of a quality table (top-1, top-5, agreement, distances; clean then occluded), shared by
 * the terminal, HTML and compare renderings so that they always show the same figures.
 */
import type { QualityPair } from './report.js';

export type QualityMetric = 'top1' | 'top5' | 'agreement' | 'mse' | 'cosine' | 'psnr';
export type QualityKind = 'pct' | 'num' | 'db';

export interface QualityRow {
  label: string;
  metric: QualityMetric;
  kind: QualityKind;
  occluded: boolean;
  /** One per column; undefined: not measured for that model; null: identical outputs (PSNR). */
  values: (number | null | undefined)[];
}

const METRICS: [string, QualityMetric, QualityKind][] = [
  ['top-1', 'top1', 'pct'],
  ['top-5', 'top5', 'pct'],
  ['agreement with REF', 'agreement', 'pct'],
  ['MSE vs REF', 'mse', 'num'],
  ['cosine vs REF', 'cosine', 'num'],
  ['PSNR vs REF', 'psnr', 'db'],
];

/** Rows for the given columns; metrics no column has are left out. `reference` names the first column in labels. */
export function qualityRows(columns: QualityPair[], occlusion: boolean, reference: string): QualityRow[] {
  const rows: QualityRow[] = [];
  for (const occluded of occlusion ? [false, true] : [false]) {
    for (const [label, metric, kind] of METRICS) {
      const values = columns.map((p) => (occluded ? p.occluded : p.clean)?.[metric]);
      if (values.every((v) => v === undefined)) continue;
      rows.push({ label: `${occluded ? 'occluded ' : ''}${label.replace('REF', reference)}`, metric, kind, occluded, values });
    }
  }
  return rows;
}

export function formatQuality(x: number | null | undefined, kind: QualityKind): string {
  if (x === undefined) return '-';
  if (x === null) return 'identical';
  if (kind === 'pct') return `${(100 * x).toFixed(1)}%`;
  if (kind === 'db') return `${x.toFixed(1)} dB`;
  return x.toPrecision(4);
}
