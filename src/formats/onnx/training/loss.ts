/**
 * The loss of a training graph, as ONNX nodes: its value (reported per step) and its gradient with
 * respect to the head (the logits), written in closed form. The definitions are the TF.js path's
 * (runtime/onnx-tfjs/trainer.ts) and the held-out scorer's (core/finetune/score.ts), so that both
 * engines train the same objective:
 *
 * - cross-entropy: -mean_n sum_c onehot log softmax(z);  d/dz = (softmax(z) - onehot) / N
 * - distill-kl: T^2 mean_n KL(softmax(t/T) || softmax(z/T));  d/dz = T (softmax(z/T) - softmax(t/T)) / N
 * - cross-entropy+distill: (1 - w) cross-entropy + w distill-kl
 * - distill-mse: mean (z - t)^2 over every element;  d/dz = 2 (z - t) / count
 * - dot (tests): sum(z r) for a given r;  d/dz = r
 */
import type { Objective } from '../../../core/finetune/score.js';
import { attr, Emitter } from './emit.js';

export type LossSpec =
  | { objective: Objective; temperature: number; distillWeight: number }
  | { objective: 'dot' };

export interface LossInputs {
  /** One-hot labels, float [N, C]. */
  labels?: string;
  /** The original model's head values, [N, C]. */
  teacher?: string;
  /** The given head gradient r of the `dot` loss, [N, C]. */
  dhead?: string;
}

export const LOSS_INPUT_NAMES = { labels: 'kprune.labels', teacher: 'kprune.teacher', dhead: 'kprune.dhead' } as const;

/**
 * Emits the loss over `head` reshaped to [N, C] (C: everything after the batch axis). Returns the
 * scalar loss, the head's gradient (in the head's own dims), and the inputs the loss reads.
 */
export function emitLoss(e: Emitter, head: string, headDims: number[], spec: LossSpec): { loss: string; dhead: string; inputs: LossInputs; flatDims: [number, number] } {
  const n = headDims[0];
  const classes = headDims.slice(1).reduce((a, b) => a * b, 1);
  const flat: [number, number] = [n, classes];
  const z = headDims.length === 2 ? head : e.reshape(head, flat);
  const softmax = (x: string) => e.op1('Softmax', [x], [attr.int('axis', 1)]);
  const logSoftmax = (x: string) => e.op1('LogSoftmax', [x], [attr.int('axis', 1)]);
  const total = (x: string) => e.reduceSum(x, undefined, false);
  const inputs: LossInputs = {};
  let loss: string;
  let dz: string;

  const crossEntropy = () => {
    inputs.labels = LOSS_INPUT_NAMES.labels;
    const value = e.scale(total(e.mul(inputs.labels, logSoftmax(z))), -1 / n);
    const grad = e.scale(e.sub(softmax(z), inputs.labels), 1 / n);
    return { value, grad };
  };
  const distillKl = (t: number) => {
    inputs.teacher = LOSS_INPUT_NAMES.teacher;
    const zt = e.scale(z, 1 / t);
    const tt = e.scale(inputs.teacher, 1 / t);
    const pt = softmax(tt);
    const value = e.scale(total(e.mul(pt, e.sub(logSoftmax(tt), logSoftmax(zt)))), (t * t) / n);
    const grad = e.scale(e.sub(softmax(zt), pt), t / n);
    return { value, grad };
  };

  switch (spec.objective) {
    case 'cross-entropy': {
      const ce = crossEntropy();
      [loss, dz] = [ce.value, ce.grad];
      break;
    }
    case 'distill-kl': {
      const kl = distillKl(spec.temperature);
      [loss, dz] = [kl.value, kl.grad];
      break;
    }
    case 'cross-entropy+distill': {
      const w = spec.distillWeight;
      const ce = crossEntropy();
      const kl = distillKl(spec.temperature);
      loss = e.add(e.scale(ce.value, 1 - w), e.scale(kl.value, w));
      dz = e.add(e.scale(ce.grad, 1 - w), e.scale(kl.grad, w));
      break;
    }
    case 'distill-mse': {
      inputs.teacher = LOSS_INPUT_NAMES.teacher;
      const diff = e.sub(z, inputs.teacher);
      const count = n * classes;
      loss = e.scale(total(e.mul(diff, diff)), 1 / count);
      dz = e.scale(diff, 2 / count);
      break;
    }
    case 'dot': {
      inputs.dhead = LOSS_INPUT_NAMES.dhead;
      loss = total(e.mul(z, inputs.dhead));
      dz = inputs.dhead;
      break;
    }
  }
  return { loss, dhead: headDims.length === 2 ? dz : e.reshape(dz, headDims), inputs, flatDims: flat };
}
