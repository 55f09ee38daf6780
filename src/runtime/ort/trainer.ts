/**
 * One training step with an onnxruntime training graph (formats/onnx/training): gather the batch,
 * feed it with the current weights (and one-hot labels, teacher outputs), take the loss and the
 * gradients, and let the masked optimiser (core/finetune/optimizer.ts) update the weights in place.
 *
 * A training graph has static dims, built for one batch size: a batch of another size (a data set
 * smaller than a batch, a caller's own) gets its own graph, asked for once and kept. Per batch size
 * the input buffers and their tensors are made once and refilled each step, and the weights are fed
 * as tensors over the arrays the optimiser updates in place: a step allocates no inputs.
 *
 * A graph built with the kept layout (formats/onnx/training, `layout: 'kept'`) takes a masked
 * weight as its kept positions alone: the trainer then holds that weight packed the same way
 * (core/finetune/kept-layout.ts), the optimiser steps it without masks, and a snapshot unpacks it
 * into 3x3 kernels.
 */
import type * as ort from 'onnxruntime-node';
import { ortApi } from './ort.js';
import type { Trainer } from '../../core/finetune/loop.js';
import { MaskedOptimizer, OptimizerKind, SlotMask } from '../../core/finetune/optimizer.js';
import { packKept, unpackKept } from '../../core/finetune/kept-layout.js';
import type { Mask } from '../../core/lattice.js';
import type { Dataset } from '../../data/types.js';
import { runTensors } from './training-session.js';
import type { TrainPool } from './train-pool.js';

/** A training graph opened in onnxruntime, for one batch size. */
export interface OrtTrainingGraph {
  session: ort.InferenceSession;
  /** Names in the graph: the data input, the loss output, the loss's other inputs. */
  data: string;
  loss: string;
  labels?: string;
  teacher?: string;
  /** The head as the loss sees it, per sample (classes, or values for MSE). */
  headValues: number;
  /** Trainable weights: graph input name, dims, gradient output name; `positions`: fed in the kept layout. */
  weights: { name: string; dims: number[]; grad: string; positions?: number[] }[];
}

/** Distillation targets: the original model's head values for these training samples. */
export type TeacherOutputs = (x: Float32Array, dims: number[], indices: Uint32Array) => Promise<Float32Array>;

export interface OrtTrainerConfig {
  /** The training graph for batches of this many samples (each size asked for once). */
  graphFor: (batch: number) => Promise<OrtTrainingGraph>;
  /** Starting values by weight name (copied; the trainer owns its copies). */
  start: ReadonlyMap<string, Float32Array>;
  masks: ReadonlyMap<string, Mask>;
  train: Dataset;
  optimizer: OptimizerKind;
  momentum: number;
  teacherOutputs?: TeacherOutputs;
  file?: string;
  /**
   * Data parallelism (train-pool.ts): batches of at least two samples per worker are split into
   * one shard per worker, each run from the training graph for its size (its bytes asked for once).
   */
  shards?: { pool: TrainPool; graphBytesFor: (n: number) => Promise<Uint8Array> };
}

interface Prepared {
  graph: OrtTrainingGraph;
  x: Float32Array;
  onehot?: Float32Array;
  feeds: Record<string, ort.Tensor>;
  fetch: string[];
}

/** The weights as the training graphs take them, and their optimiser. */
interface Held {
  weights: Map<string, Float32Array>;
  /** Weights held in the kept layout: their positions' order. */
  positions: Map<string, readonly number[]>;
  optimizer: MaskedOptimizer;
}

export class OrtTrainer implements Trainer {
  /** Set from the first training graph opened (its layout): the weights the steps update. */
  private held: Held | undefined;
  private readonly perSample: number;
  private readonly prepared = new Map<number, Promise<Prepared>>();

  constructor(private readonly c: OrtTrainerConfig) {
    this.perSample = c.train.sampleDims.reduce((a, b) => a * b, 1);
  }

  /**
   * The weights in the layout of `graph` (the first graph decides; a graph for another batch size
   * must agree, as graphs built from one model and masks do).
   */
  private adopt(graph: OrtTrainingGraph): Held {
    if (this.held) {
      for (const w of graph.weights) {
        const p = this.held.positions.get(w.name);
        if (String(p ?? '') !== String(w.positions ?? '')) throw new Error(`training graphs disagree on the layout of "${w.name}"`);
      }
      return this.held;
    }
    const weights = new Map<string, Float32Array>();
    const positions = new Map<string, readonly number[]>();
    const masks = new Map<string, SlotMask>();
    for (const w of graph.weights) {
      const start = this.c.start.get(w.name);
      const mask = this.c.masks.get(w.name);
      if (!start) throw new Error(`no starting values for trainable weight "${w.name}"`);
      if (mask === undefined) throw new Error(`no mask for trainable weight "${w.name}"`);
      if (w.positions) {
        weights.set(w.name, packKept(start, w.positions));
        positions.set(w.name, w.positions);
        masks.set(w.name, 'kept');
      } else {
        weights.set(w.name, new Float32Array(start));
        masks.set(w.name, mask);
      }
    }
    const optimizer = new MaskedOptimizer(weights, masks, { kind: this.c.optimizer, momentum: this.c.momentum });
    // The arrays the optimiser updates (kept-layout weights under Adam live in its WebAssembly memory).
    for (const name of [...weights.keys()]) weights.set(name, optimizer.weightsOf(name));
    this.held = { weights, positions, optimizer };
    return this.held;
  }

  private prepare(n: number): Promise<Prepared> {
    let p = this.prepared.get(n);
    if (!p) {
      p = this.c.graphFor(n).then((graph) => {
        const held = this.adopt(graph);
        const x = new Float32Array(n * this.perSample);
        const feeds: Record<string, ort.Tensor> = { [graph.data]: new (ortApi().Tensor)('float32', x, [n, ...this.c.train.sampleDims]) };
        for (const w of graph.weights) feeds[w.name] = new (ortApi().Tensor)('float32', held.weights.get(w.name)!, w.dims);
        let onehot: Float32Array | undefined;
        if (graph.labels) {
          onehot = new Float32Array(n * graph.headValues);
          feeds[graph.labels] = new (ortApi().Tensor)('float32', onehot, [n, graph.headValues]);
        }
        return { graph, x, onehot, feeds, fetch: [graph.loss, ...graph.weights.map((w) => w.grad)] };
      });
      this.prepared.set(n, p);
    }
    return p;
  }

  private readonly graphBytes = new Map<number, Promise<Uint8Array>>();
  /** The batch size whose graph gives the names the sharded steps feed. */
  private namesFrom: number | undefined;

  /** Loss and gradients at the current weights for these samples (no update), in the graphs' layout. */
  async gradients(indices: Uint32Array): Promise<{ loss: number; grads: Map<string, Float32Array> }> {
    const shards = this.c.shards;
    if (shards && indices.length >= 2 * shards.pool.size) return this.shardedGradients(indices, shards);
    const { train } = this.c;
    const n = indices.length;
    const per = this.perSample;
    const p = await this.prepare(n);
    const { graph } = p;
    for (let i = 0; i < n; i++) p.x.set(train.x.subarray(indices[i] * per, (indices[i] + 1) * per), i * per);
    if (p.onehot) {
      if (!train.labels) throw new Error('cross-entropy needs labels');
      p.onehot.fill(0);
      for (let i = 0; i < n; i++) p.onehot[i * graph.headValues + train.labels[indices[i]]] = 1;
    }
    if (graph.teacher) {
      if (!this.c.teacherOutputs) throw new Error('distillation needs the original model');
      const dims = [n, ...train.sampleDims];
      p.feeds[graph.teacher] = new (ortApi().Tensor)('float32', await this.c.teacherOutputs(p.x, dims, indices), [n, graph.headValues]);
    }
    const out = await runTensors(graph.session, p.feeds, p.fetch, this.c.file);
    const grads = new Map(graph.weights.map((w) => [w.name, out.get(w.grad)!.data]));
    return { loss: out.get(graph.loss)!.data[0], grads };
  }

  /**
   * The same, one shard per worker: each shard's mean loss and gradients, averaged by shard size
   * (the graph's loss is a mean over its batch, so this is the whole batch's).
   */
  private async shardedGradients(indices: Uint32Array, shards: NonNullable<OrtTrainerConfig['shards']>): Promise<{ loss: number; grads: Map<string, Float32Array> }> {
    const { train } = this.c;
    const n = indices.length;
    const per = this.perSample;
    const k = shards.pool.size;
    // Names and weight dims are the same in a graph of any batch size: the first one asked for
    // serves (no session is opened for a size only the workers run).
    const { graph } = await this.prepare(this.namesFrom ??= n);
    // The batch gathered once; each shard gets a copy of its own rows (a view would carry the whole
    // buffer to every worker).
    const x = new Float32Array(n * per);
    for (let i = 0; i < n; i++) x.set(train.x.subarray(indices[i] * per, (indices[i] + 1) * per), i * per);
    let onehot: Float32Array | undefined;
    if (graph.labels) {
      if (!train.labels) throw new Error('cross-entropy needs labels');
      onehot = new Float32Array(n * graph.headValues);
      for (let i = 0; i < n; i++) onehot[i * graph.headValues + train.labels[indices[i]]] = 1;
    }
    let teacher: Float32Array | undefined;
    if (graph.teacher) {
      if (!this.c.teacherOutputs) throw new Error('distillation needs the original model');
      teacher = await this.c.teacherOutputs(x, [n, ...train.sampleDims], indices);
    }
    const fetch = [graph.loss, ...graph.weights.map((w) => w.grad)];
    const h = graph.headValues;
    // Posting a view sends its whole buffer: a weight held in the optimiser's WebAssembly memory is
    // sent as a copy of its own values (or every worker would get the whole arena, each weight).
    const own = (a: Float32Array) => (a.byteOffset === 0 && a.byteLength === a.buffer.byteLength ? a : a.slice());
    const weights = new Map(graph.weights.map((w) => [w.name, own(this.held!.weights.get(w.name)!)]));
    const runs: Promise<Float32Array[]>[] = [];
    const sizes: number[] = [];
    let start = 0;
    for (let s = 0; s < k; s++) {
      const m = Math.floor(n / k) + (s < n % k ? 1 : 0);
      const feeds: Record<string, { data: Float32Array; dims: number[] }> = {
        [graph.data]: { data: x.slice(start * per, (start + m) * per), dims: [m, ...train.sampleDims] },
      };
      for (const w of graph.weights) feeds[w.name] = { data: weights.get(w.name)!, dims: w.dims };
      if (graph.labels && onehot) feeds[graph.labels] = { data: onehot.slice(start * h, (start + m) * h), dims: [m, h] };
      if (graph.teacher && teacher) feeds[graph.teacher] = { data: teacher.slice(start * h, (start + m) * h), dims: [m, h] };
      let bytes = this.graphBytes.get(m);
      if (!bytes) {
        bytes = shards.graphBytesFor(m);
        this.graphBytes.set(m, bytes);
      }
      const ready = await bytes;
      runs.push(shards.pool.run(s, m, () => ready, feeds, fetch));
      sizes.push(m);
      start += m;
    }
    const outs = await Promise.all(runs);
    let loss = 0;
    const grads = new Map(graph.weights.map((w) => [w.name, new Float32Array(this.held!.weights.get(w.name)!.length)]));
    outs.forEach((out, s) => {
      const share = sizes[s] / n;
      loss += share * out[0][0];
      graph.weights.forEach((w, i) => {
        const g = grads.get(w.name)!;
        const part = out[1 + i];
        for (let j = 0; j < g.length; j++) g[j] += share * part[j];
      });
    });
    return { loss, grads };
  }

  async step(indices: Uint32Array, lr: number): Promise<number> {
    const { loss, grads } = await this.gradients(indices);
    this.held!.optimizer.step(grads, lr);
    return loss;
  }

  snapshot(): ReadonlyMap<string, Float32Array> {
    if (!this.held) return new Map([...this.c.start].map(([k, v]) => [k, new Float32Array(v)]));
    const { weights, positions } = this.held;
    return new Map([...weights].map(([k, v]) => {
      const p = positions.get(k);
      return [k, p ? unpackKept(v, p) : new Float32Array(v)];
    }));
  }

  /** Closes every training graph the trainer opened. */
  async release(): Promise<void> {
    const all = await Promise.allSettled(this.prepared.values());
    this.prepared.clear();
    for (const r of all) if (r.status === 'fulfilled') await r.value.graph.session.release();
  }
}
