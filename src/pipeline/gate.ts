/**
 * The quality gate of a pipeline step (`--max-drop`): the slimmed model may lose at most this many
 * points against the original: of top-1 with labels; without labels, of top-1 agreement with the
 * original (100 - agreement). A failed gate is exit code 1: the run completed, the model is
 * written, and the pipeline decides.
 */
import { KpruneError } from '../errors.js';
import { QualityFigures } from '../model/quality.js';
import type { Gate } from '../report/report.js';

/**
 * Points lost from a difference of shares, rounded to 1e-9 points: in floating point 0.9 - 0.89
 * is 0.010000000000000009, which must not fail a gate of exactly 1 point.
 */
function points(shareLost: number): number {
  return Math.round(shareLost * 1e11) / 1e9;
}

export function checkGate(maxDrop: number, original: QualityFigures | null, slimmed: QualityFigures | null): Gate {
  if (!(maxDrop >= 0)) throw new KpruneError('usage', `--max-drop must be a number of points >= 0, got ${maxDrop}`);
  if (!original || !slimmed) {
    return { maxDrop, metric: 'top1', drop: null, passed: false, reason: 'accuracy was not measured (no --data), so the gate cannot pass' };
  }
  if (original.top1 !== undefined && slimmed.top1 !== undefined) {
    const drop = points(original.top1 - slimmed.top1);
    return { maxDrop, metric: 'top1', drop, passed: drop <= maxDrop, reason: `top-1 ${(100 * original.top1).toFixed(2)}% -> ${(100 * slimmed.top1).toFixed(2)}%: ${drop.toFixed(2)} points lost, at most ${maxDrop} allowed` };
  }
  if (slimmed.agreement !== undefined) {
    const drop = points(1 - slimmed.agreement);
    return { maxDrop, metric: 'agreement', drop, passed: drop <= maxDrop, reason: `no labels: top-1 agreement with the original ${(100 * slimmed.agreement).toFixed(2)}%, ${drop.toFixed(2)} points below 100, at most ${maxDrop} allowed` };
  }
  return { maxDrop, metric: 'top1', drop: null, passed: false, reason: 'the model is not a classifier; --max-drop applies to top-1 or agreement' };
}
