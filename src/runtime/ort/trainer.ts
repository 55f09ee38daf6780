/**
 * One training step with an onnxruntime training graph (formats/onnx/training): gather the batch,
 * feed it with the current weights (and one-hot labels, teacher outputs), take the loss and the
 * gradients, and let the masked optimiser (core/finetune/optimizer.ts) update the weights in place.
 * The session is opened once; only the feeds change between steps.
 */
import type * as ort from 'onnxruntime-node';
import type { Trainer } from '../../core/finetune/loop.js';
import { MaskedOptimizer, OptimizerKind } from '../../core/finetune/optimizer.js';
import type { Mask } from '../../core/lattice.js';
import type { Dataset } from '../../data/types.js';
import { runFloat } from './training-session.js';

export interface OrtTrainerConfig {
  session: ort.InferenceSession;
  /** Names in the graph: the data input, the loss output, the loss's other inputs. */
  data: string;
  loss: string;
  labels?: string;
  teacher?: string;
  /** The head as the loss sees it, per sample (classes, or values for MSE). */
  headValues: number;
  /** Trainable weights: graph input name, dims, gradient output name. */
  weights: { name: string; dims: number[]; grad: string }[];
  /** Starting values by weight name (copied; the trainer owns its copies). */
  start: ReadonlyMap<string, Float32Array>;
  masks: ReadonlyMap<string, Mask>;
  train: Dataset;
  optimizer: OptimizerKind;
  momentum: number;
  /** The original model's head values for a batch (distillation targets). */
  teacherOutputs?: (x: Float32Array, dims: number[]) => Promise<Float32Array>;
  file?: string;
}

export class OrtTrainer implements Trainer {
  private readonly weights = new Map<string, Float32Array>();
  private readonly optimizer: MaskedOptimizer;
  private readonly perSample: number;

  constructor(private readonly c: OrtTrainerConfig) {
    for (const w of c.weights) this.weights.set(w.name, new Float32Array(c.start.get(w.name)!));
    this.optimizer = new MaskedOptimizer(this.weights, c.masks, { kind: c.optimizer, momentum: c.momentum });
    this.perSample = c.train.sampleDims.reduce((a, b) => a * b, 1);
  }

  /** Loss and gradients at the current weights for these samples (no update). */
  async gradients(indices: Uint32Array): Promise<{ loss: number; grads: Map<string, Float32Array> }> {
    const { train } = this.c;
    const n = indices.length;
    const per = this.perSample;
    const xb = new Float32Array(n * per);
    for (let i = 0; i < n; i++) xb.set(train.x.subarray(indices[i] * per, (indices[i] + 1) * per), i * per);
    const dims = [n, ...train.sampleDims];
    const feeds: Record<string, { data: Float32Array; dims: number[] }> = { [this.c.data]: { data: xb, dims } };
    for (const w of this.c.weights) feeds[w.name] = { data: this.weights.get(w.name)!, dims: w.dims };
    const flat = [n, this.c.headValues];
    if (this.c.labels) {
      if (!train.labels) throw new Error('cross-entropy needs labels');
      const onehot = new Float32Array(n * this.c.headValues);
      for (let i = 0; i < n; i++) onehot[i * this.c.headValues + train.labels[indices[i]]] = 1;
      feeds[this.c.labels] = { data: onehot, dims: flat };
    }
    if (this.c.teacher) {
      if (!this.c.teacherOutputs) throw new Error('distillation needs the original model');
      feeds[this.c.teacher] = { data: await this.c.teacherOutputs(xb, dims), dims: flat };
    }
    const out = await runFloat(this.c.session, feeds, [this.c.loss, ...this.c.weights.map((w) => w.grad)], this.c.file);
    const grads = new Map(this.c.weights.map((w) => [w.name, out.get(w.grad)!.data]));
    return { loss: out.get(this.c.loss)!.data[0], grads };
  }

  async step(indices: Uint32Array, lr: number): Promise<number> {
    const { loss, grads } = await this.gradients(indices);
    this.optimizer.step(grads, lr);
    return loss;
  }

  snapshot(): ReadonlyMap<string, Float32Array> {
    return new Map([...this.weights].map(([k, v]) => [k, new Float32Array(v)]));
  }
}
