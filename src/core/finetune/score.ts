/**
 * Held-out figures for choosing the checkpoint: the score (accuracy with labels, agreement with the
 * original without; for outputs that are not class scores, minus the distance to the original's)
 * and the matching loss, from plain output arrays.
 */
import type { Evaluation, Objective } from '../../model/finetune.js';
import type { OutputSet, QualityFigures } from '../../model/quality.js';
import { isClassifierOutput, quality } from '../metrics.js';
export type { Objective };


export function chooseObjective(outputDims: number[], labels: boolean, distill: boolean): Objective {
  if (!isClassifierOutput(outputDims)) return 'distill-mse';
  if (!labels) return 'distill-kl';
  return distill ? 'cross-entropy+distill' : 'cross-entropy';
}

/** Does the objective read labels, the original's outputs, or both? */
export function objectiveNeeds(o: Objective): { labels: boolean; teacher: boolean } {
  switch (o) {
    case 'cross-entropy': return { labels: true, teacher: false };
    case 'cross-entropy+distill': return { labels: true, teacher: true };
    case 'distill-kl': case 'distill-mse': return { labels: false, teacher: true };
  }
}

function logSoftmaxRow(a: Float32Array, start: number, n: number, scale: number, out: Float64Array): void {
  let max = -Infinity;
  for (let i = 0; i < n; i++) max = Math.max(max, a[start + i] * scale);
  let sum = 0;
  for (let i = 0; i < n; i++) sum += Math.exp(a[start + i] * scale - max);
  const lse = max + Math.log(sum);
  for (let i = 0; i < n; i++) out[i] = a[start + i] * scale - lse;
}

/** Mean cross-entropy of logits against labels. */
export function crossEntropy(logits: OutputSet, labels: Int32Array): number {
  const n = logits.sampleDims[0];
  const samples = logits.data.length / n;
  const lp = new Float64Array(n);
  let total = 0;
  for (let s = 0; s < samples; s++) {
    logSoftmaxRow(logits.data, s * n, n, 1, lp);
    total -= lp[labels[s]];
  }
  return total / samples;
}

/** Mean KL(teacher || student) of softened class distributions, times T^2 (Hinton et al.). */
export function distillKl(student: OutputSet, teacher: OutputSet, temperature: number): number {
  const n = student.sampleDims[0];
  const samples = student.data.length / n;
  const ls = new Float64Array(n);
  const lt = new Float64Array(n);
  let total = 0;
  for (let s = 0; s < samples; s++) {
    logSoftmaxRow(student.data, s * n, n, 1 / temperature, ls);
    logSoftmaxRow(teacher.data, s * n, n, 1 / temperature, lt);
    for (let i = 0; i < n; i++) total += Math.exp(lt[i]) * (lt[i] - ls[i]);
  }
  return (total / samples) * temperature * temperature;
}

export function meanSquaredError(a: OutputSet, b: OutputSet): number {
  let se = 0;
  for (let i = 0; i < a.data.length; i++) se += (a.data[i] - b.data[i]) ** 2;
  return se / Math.max(1, a.data.length);
}

/** Each sample's loss (the terms whose mean the functions above return). */
export function perSampleLoss(out: OutputSet, original: OutputSet, labels: Int32Array | undefined, objective: Objective, temperature: number): Float64Array {
  const n = out.sampleDims.reduce((a, b) => a * b, 1);
  const samples = out.data.length / n;
  const result = new Float64Array(samples);
  const one = (d: Float32Array, s: number): OutputSet => ({ data: d.subarray(s * n, (s + 1) * n), sampleDims: out.sampleDims });
  for (let s = 0; s < samples; s++) {
    switch (objective) {
      case 'cross-entropy': case 'cross-entropy+distill': result[s] = crossEntropy(one(out.data, s), labels!.subarray(s, s + 1)); break;
      case 'distill-kl': result[s] = distillKl(one(out.data, s), one(original.data, s), temperature); break;
      case 'distill-mse': result[s] = meanSquaredError(one(out.data, s), one(original.data, s)); break;
    }
  }
  return result;
}

/**
 * The held-out evaluation of one set of weights. `out` and `original` are the model's scores
 * (logits, before any final softmax) for the same samples.
 */
export function scoreOutputs(out: OutputSet, original: OutputSet, labels: Int32Array | undefined, objective: Objective, temperature: number): Evaluation<QualityFigures> {
  const figures = quality(out, labels, original);
  const samples = perSampleLoss(out, original, labels, objective, temperature);
  switch (objective) {
    case 'cross-entropy':
    case 'cross-entropy+distill':
      if (!labels) throw new Error('cross-entropy scoring needs labels');
      return { score: figures.top1!, loss: crossEntropy(out, labels), figures, samples };
    case 'distill-kl':
      return { score: figures.agreement!, loss: distillKl(out, original, temperature), figures, samples };
    case 'distill-mse': {
      const mse = meanSquaredError(out, original);
      return { score: -mse, loss: mse, figures, samples };
    }
  }
}
