/**
 * One training step of a model in TF.js (an ONNX graph, or a TF.js model itself): forward, loss,
 * gradients of the reshaped 3x3 filters only, masked so that pruned kernel positions get no
 * update, an optimiser step, and the masks applied once more so that pruned positions are exactly
 * zero after every step whatever the optimiser does. Everything else in the model (biases,
 * BatchNorm statistics and scales, other layers) stays as it is: BatchNorm runs on its frozen
 * statistics.
 */
import type * as TF from './tf.js';
import type { Trainer } from '../../core/finetune/loop.js';
import { objectiveNeeds } from '../../core/finetune/score.js';
import type { Dataset } from '../../model/dataset.js';
import type { Objective, OptimizerName } from '../../model/finetune.js';
import type { Tf } from './backend.js';

export interface TfjsTrainerConfig {
  tf: Tf;
  /** The value the loss reads (logits) for a batch of samples, computed with `variables`. */
  forward: (x: TF.Tensor) => TF.Tensor;
  /** The trained filters by name, HWIO [3, 3, in, out] (depthwise [3, 3, channels, multiplier]). */
  variables: ReadonlyMap<string, TF.Variable>;
  /** A trained filter's current values, in the core's layout [out][inPerGroup][9]. */
  read: (name: string) => Float32Array;
  /** 9-bit kernel masks by trainable weight name (bit p = row-major position p of the 3x3 kernel). */
  masks: Map<string, number>;
  train: Dataset;
  objective: Objective;
  temperature: number;
  /** Share of the distillation term in `cross-entropy+distill` (the rest is cross-entropy). */
  distillWeight: number;
  optimizer: OptimizerName;
  /** SGD momentum (0: plain SGD). */
  momentum: number;
  /** The original model's head values for a batch (distillation targets). */
  teacher?: (x: Float32Array, dims: number[]) => Promise<Float32Array>;
}

function crossEntropy(tf: Tf, logits: TF.Tensor2D, labels: TF.Tensor1D): TF.Scalar {
  const onehot = tf.oneHot(labels, logits.shape[1]);
  return tf.neg(tf.mean(tf.sum(tf.mul(onehot, tf.logSoftmax(logits)), 1))) as TF.Scalar;
}

/** Softened KL(teacher || student), times T^2 so that its gradients keep their scale (Hinton et al.). */
function distillKl(tf: Tf, logits: TF.Tensor2D, teacher: TF.Tensor2D, t: number): TF.Scalar {
  const pt = tf.softmax(tf.div(teacher, t) as TF.Tensor2D);
  const logPt = tf.logSoftmax(tf.div(teacher, t) as TF.Tensor2D);
  const logPs = tf.logSoftmax(tf.div(logits, t) as TF.Tensor2D);
  return tf.mul(tf.mean(tf.sum(tf.mul(pt, tf.sub(logPt, logPs)), 1)), t * t) as TF.Scalar;
}

/**
 * The training loss of a batch of head values [N, C] (the definition the onnxruntime training graph
 * writes in ONNX ops, formats/onnx/training/loss.ts, and the tests compare against).
 */
export function trainingLoss(
  tf: Tf,
  o: { objective: Objective; temperature: number; distillWeight: number },
  out: TF.Tensor2D,
  labels: TF.Tensor1D | null,
  teacher: TF.Tensor2D | null,
): TF.Scalar {
  switch (o.objective) {
    case 'cross-entropy': return crossEntropy(tf, out, labels!);
    case 'cross-entropy+distill': {
      const a = o.distillWeight;
      return tf.add(tf.mul(crossEntropy(tf, out, labels!), 1 - a), tf.mul(distillKl(tf, out, teacher!, o.temperature), a)) as TF.Scalar;
    }
    case 'distill-kl': return distillKl(tf, out, teacher!, o.temperature);
    case 'distill-mse': return tf.mean(tf.square(tf.sub(out, teacher!)));
  }
}

export class TfjsTrainer implements Trainer {
  private readonly optimizer: TF.Optimizer;
  private readonly maskTensors = new Map<string, TF.Tensor>();
  private readonly perSample: number;

  constructor(private readonly c: TfjsTrainerConfig) {
    const tf = c.tf;
    this.perSample = c.train.sampleDims.reduce((a, b) => a * b, 1);
    for (const [name, v] of c.variables) {
      const mask = c.masks.get(name);
      if (mask === undefined) throw new Error(`no mask for trainable weight "${name}"`);
      if (v.shape[0] !== 3 || v.shape[1] !== 3) throw new Error(`trainable weight "${name}" is not a 3x3 filter`);
      // HWIO: position p = 3 * row + column is [row, column, :, :].
      const bits = Float32Array.from({ length: 9 }, (_, p) => (mask >> p) & 1);
      this.maskTensors.set(name, tf.keep(tf.tensor(bits, [3, 3, 1, 1])));
    }
    this.optimizer = c.optimizer === 'adam' ? tf.train.adam(1e-3) : c.momentum > 0 ? tf.train.momentum(0.01, c.momentum) : tf.train.sgd(0.01);
  }

  private setLearningRate(lr: number): void {
    const o = this.optimizer as unknown as { setLearningRate?: (lr: number) => void; learningRate: number };
    // SGD and momentum keep a scalar of the rate (setLearningRate); Adam reads the field each step.
    if (o.setLearningRate) o.setLearningRate(lr);
    else o.learningRate = lr;
  }

  async step(indices: Uint32Array, lr: number): Promise<number> {
    const { tf, train } = this.c;
    const n = indices.length;
    const per = this.perSample;
    const xb = new Float32Array(n * per);
    for (let i = 0; i < n; i++) xb.set(train.x.subarray(indices[i] * per, (indices[i] + 1) * per), i * per);
    const dims = [n, ...train.sampleDims];
    const needs = objectiveNeeds(this.c.objective);
    let labelData: Int32Array | null = null;
    let teacherData: Float32Array | null = null;
    if (needs.labels) {
      if (!train.labels) throw new Error('cross-entropy needs labels');
      labelData = Int32Array.from(indices, (i) => train.labels![i]);
    }
    if (needs.teacher) {
      if (!this.c.teacher) throw new Error('distillation needs the original model');
      teacherData = await this.c.teacher(xb, dims);
    }
    this.setLearningRate(lr);
    const vars = [...this.c.variables.values()];
    const value = tf.tidy(() => {
      const x = tf.tensor(xb, dims);
      const labels = labelData ? tf.tensor1d(labelData, 'int32') : null;
      const teacher = teacherData ? tf.tensor2d(teacherData, [n, teacherData.length / n]) : null;
      const { value: loss, grads } = tf.variableGrads(() => {
        const out = this.c.forward(x);
        return trainingLoss(tf, this.c, tf.reshape(out, [n, -1]) as TF.Tensor2D, labels, teacher);
      }, vars);
      const masked: TF.NamedTensorMap = {};
      for (const [name, v] of this.c.variables) masked[v.name] = tf.mul(grads[v.name], this.maskTensors.get(name)!);
      this.optimizer.applyGradients(masked);
      for (const [name, v] of this.c.variables) v.assign(tf.mul(v, this.maskTensors.get(name)!));
      return loss;
    });
    const loss = (await value.data())[0];
    value.dispose();
    return loss;
  }

  snapshot(): ReadonlyMap<string, Float32Array> {
    return new Map([...this.c.variables.keys()].map((name) => [name, this.c.read(name)]));
  }

  dispose(): void {
    this.optimizer.dispose();
    for (const t of this.maskTensors.values()) t.dispose();
  }
}
