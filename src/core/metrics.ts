/**
 * Quality figures from model outputs: accuracy against labels, agreement with the original model,
 * and, for outputs that are not class scores, distance to the original's outputs.
 */
import type { OutputSet, QualityFigures } from '../model/quality.js';
// Re-exported for code written against this module before the contract types moved to src/model.
export type { OutputSet, QualityFigures };

/** A classifier's output is one score vector per sample: [classes] with at least 2 classes. */
export function isClassifierOutput(sampleDims: number[]): boolean {
  return sampleDims.length === 1 && sampleDims[0] >= 2;
}

function argmax(a: Float32Array, start: number, n: number): number {
  let best = 0;
  for (let i = 1; i < n; i++) if (a[start + i] > a[start + best]) best = i;
  return best;
}

function inTopK(a: Float32Array, start: number, n: number, label: number, k: number): boolean {
  const v = a[start + label];
  let higher = 0;
  for (let i = 0; i < n; i++) if (a[start + i] > v) higher++;
  return higher < k;
}

export function quality(out: OutputSet, labels?: Int32Array, original?: OutputSet): QualityFigures {
  const per = out.sampleDims.reduce((a, b) => a * b, 1);
  const samples = per > 0 ? out.data.length / per : 0;
  const q: QualityFigures = { samples };
  if (isClassifierOutput(out.sampleDims)) {
    const classes = per;
    if (labels) {
      let top1 = 0;
      let top5 = 0;
      for (let s = 0; s < samples; s++) {
        if (argmax(out.data, s * classes, classes) === labels[s]) top1++;
        if (classes > 5 && inTopK(out.data, s * classes, classes, labels[s], 5)) top5++;
      }
      q.top1 = top1 / samples;
      if (classes > 5) q.top5 = top5 / samples;
    }
    if (original) {
      let agree = 0;
      for (let s = 0; s < samples; s++) if (argmax(out.data, s * classes, classes) === argmax(original.data, s * classes, classes)) agree++;
      q.agreement = agree / samples;
    }
    return q;
  }
  if (original) {
    let se = 0;
    let dot = 0;
    let na = 0;
    let nb = 0;
    let lo = Infinity;
    let hi = -Infinity;
    for (let i = 0; i < out.data.length; i++) {
      const a = out.data[i];
      const b = original.data[i];
      se += (a - b) * (a - b);
      dot += a * b;
      na += a * a;
      nb += b * b;
      if (b < lo) lo = b;
      if (b > hi) hi = b;
    }
    q.mse = se / out.data.length;
    q.cosine = na > 0 && nb > 0 ? dot / Math.sqrt(na * nb) : 0;
    const range = hi - lo;
    // null: identical outputs (an infinite PSNR, which JSON cannot hold).
    q.psnr = q.mse > 0 && range > 0 ? 10 * Math.log10((range * range) / q.mse) : null;
  }
  return q;
}
