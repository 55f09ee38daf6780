/**
 * Brief end-to-end fine-tuning of a reshaped ONNX model (issue #4): the reshaped 3x3 filters train
 * in TF.js (only their kept positions), with cross-entropy on labels or by distillation from the
 * original model; onnxruntime provides the original's outputs (distillation targets) and scores
 * each checkpoint on held-out data, so the checkpoint chosen is scored by the runtime the written
 * model runs in.
 *
 * Only the 3x3 filters change: the result is new weights by layer id, for LoadedModel.write.
 */
import * as ort from 'onnxruntime-node';
import type { Conv3x3Layer } from '../../core/conv.js';
import { Evaluation, EvaluationProgress, Selection, StepProgress, runLoop } from '../../core/finetune/loop.js';
import { Schedule } from '../../core/finetune/schedule.js';
import { Objective, chooseObjective, scoreOutputs } from '../../core/finetune/score.js';
import { Mask, maskHas } from '../../core/lattice.js';
import type { Dataset } from '../../data/types.js';
import { KpruneError } from '../../errors.js';
import { openProbeSession } from '../../formats/onnx/probe.js';
import type { OnnxModel } from '../../formats/onnx/read.js';
import type { OutputSet, QualityFigures } from '../../report/metrics.js';
import { TfjsBackend, defaultGradients, onnxTfjsRuntime } from './backend.js';
import { OnnxTfjsGraph } from './graph.js';
import { OptimizerName, TfjsTrainer } from './trainer.js';

export interface FinetuneData {
  /** Samples the filters train on (with labels for cross-entropy). */
  train: Dataset;
  /** Samples that choose the checkpoint; never trained on. */
  heldOut: Dataset;
}

export interface FinetuneOptions {
  /** Optimiser steps (0: only evaluate the starting weights). */
  steps: number;
  /** Base learning rate (default 3e-3 for Adam, 1e-2 for SGD), warmed up then cosine-decayed. */
  lr?: number;
  /** Samples per step (default 64). */
  batch?: number;
  /** Default 'adam'. */
  optimizer?: OptimizerName;
  /** SGD momentum (default 0.9). */
  momentum?: number;
  /** Batch order (default 0). Same seed, data and options: the same weights, bit for bit. */
  seed?: number;
  /** Train on labels (cross-entropy); false: distil from the original model. */
  labels: boolean;
  /**
   * With labels, also distil from the original (default true): loss = (1 - w) CE + w T^2 KL with
   * w = `distillWeight`. Labels alone recovered nothing on the bundled ResNet (see bench/finetune.ts).
   */
  distill?: boolean;
  /** Weight w of the distillation term next to cross-entropy (default 0.9, Hinton et al.'s usual share). */
  distillWeight?: number;
  /** Softening temperature of distillation for classifiers (default 4). */
  temperature?: number;
  /** Evaluate the held-out set every this many steps (default: 10 times per run, at least every 10 steps). */
  evalEvery?: number;
  /** Default 'cosine'. */
  schedule?: Schedule;
  /** How the checkpoint is chosen on held-out data: by the objective's loss (default) or by accuracy/agreement. */
  select?: Selection;
  /** A TF.js backend to use instead of kprune's choice (benchmarks, tests). */
  backend?: TfjsBackend;
  onStep?: (p: StepProgress) => void;
  onEvaluate?: (e: EvaluationProgress<QualityFigures>) => void;
  /** Aborting stops between steps; the promise then rejects with the signal's reason. */
  signal?: AbortSignal;
}

export interface HeldOutFigures extends QualityFigures {
  /** The objective's loss on the held-out samples (cross-entropy, KL or MSE). */
  loss: number;
}

export interface FinetuneResult {
  /** The best checkpoint's filters by layer id (every layer given; zero outside each mask). */
  weights: ReadonlyMap<string, Float32Array>;
  /** What ran the training, e.g. "TF.js 4.22.0 (wasm backend)". */
  backend: string;
  objective: Objective;
  steps: number;
  /** The step of the checkpoint returned (0: the starting weights stayed best). */
  bestStep: number;
  batch: number;
  /** Training images per second (training steps only). */
  imagesPerSecond: number;
  trainMs: number;
  evalMs: number;
  wallMs: number;
  heldOut: {
    samples: number;
    /** The score: top-1 with labels, agreement with the original without, MSE otherwise. */
    metric: 'top1' | 'agreement' | 'mse';
    /** What chose the checkpoint: the held-out loss or that score. */
    selectedBy: Selection;
    before: HeldOutFigures;
    after: HeldOutFigures;
  };
  history: { step: number; score: number; loss: number }[];
}

const DEFAULT_BATCH = 64;
const DEFAULT_TEMPERATURE = 4;
const DEFAULT_DISTILL_WEIGHT = 0.9;
const DEFAULT_ADAM_LR = 3e-3;
const DEFAULT_SGD_LR = 1e-2;
const EVAL_BATCH = 256;
/** The TF.js run of the starting weights must match onnxruntime's this closely before training. */
const AGREEMENT_TOLERANCE = 1e-3;

function usage(message: string, file: string, suggestion?: string): KpruneError {
  return new KpruneError('usage', message, { file, suggestion });
}

function checkOptions(model: OnnxModel, layers: Conv3x3Layer[], start: ReadonlyMap<string, Float32Array>, masks: Map<string, Mask>, data: FinetuneData, o: FinetuneOptions): void {
  const file = model.path;
  if (!Number.isInteger(o.steps) || o.steps < 0) throw usage(`--finetune takes a whole number of steps, got ${o.steps}`, file);
  if (o.lr !== undefined && !(o.lr > 0 && Number.isFinite(o.lr))) throw usage(`--lr must be a positive number, got ${o.lr}`, file);
  if (o.batch !== undefined && !(Number.isInteger(o.batch) && o.batch >= 1)) throw usage(`--batch must be a positive whole number, got ${o.batch}`, file);
  if (o.momentum !== undefined && !(o.momentum >= 0 && o.momentum < 1)) throw usage(`momentum must be in [0, 1), got ${o.momentum}`, file);
  if (o.temperature !== undefined && !(o.temperature > 0)) throw usage(`the distillation temperature must be positive, got ${o.temperature}`, file);
  if (o.distillWeight !== undefined && !(o.distillWeight >= 0 && o.distillWeight <= 1)) throw usage(`the distillation weight must be in [0, 1], got ${o.distillWeight}`, file);
  if (o.evalEvery !== undefined && !(Number.isInteger(o.evalEvery) && o.evalEvery >= 1)) throw usage(`evalEvery must be a positive whole number, got ${o.evalEvery}`, file);
  if (data.train.count < 1) throw usage('fine-tuning needs training samples', file);
  if (data.heldOut.count < 1) throw usage('fine-tuning needs held-out samples to choose the checkpoint', file);
  if (o.labels && (!data.train.labels || !data.heldOut.labels)) {
    throw usage('fine-tuning with labels needs labelled training and held-out data', file, 'use a labelled data set, or fine-tune without labels (distillation from the original model)');
  }
  if (layers.length === 0) throw usage('there are no reshaped 3x3 layers to fine-tune', file);
  for (const l of layers) {
    const w = start.get(l.id);
    const mask = masks.get(l.id);
    if (!w || w.length !== l.weights.length) throw usage(`no starting weights of the right size for layer "${l.name}" (${l.id})`, file);
    if (mask === undefined) throw usage(`no mask for layer "${l.name}" (${l.id})`, file);
    for (let i = 0; i < w.length; i++) {
      if (w[i] !== 0 && !maskHas(mask, i % 9)) throw usage(`the starting weights of layer "${l.name}" are not zero outside its mask`, file);
    }
  }
}

/** The value the loss reads: the model's first output, or the input of a final (log-)softmax. */
function headValue(graph: OnnxTfjsGraph): string {
  const out = graph.outputs[0];
  const p = graph.producer(out);
  if (p && (p.opType === 'Softmax' || p.opType === 'LogSoftmax')) return p.inputs[0];
  return out;
}

/**
 * onnxruntime over the model with some weights replaced, fetching the head value, in chunks of at
 * most `maxBatch` samples (a model with a fixed batch dimension takes exactly that many).
 */
async function headRunner(model: OnnxModel, weights: ReadonlyMap<string, Float32Array>, input: string, head: string, maxBatch: number, fixed: boolean) {
  const session = await openProbeSession(model, weights, [head], {});
  const run = async (x: Float32Array, count: number, sampleDims: number[]): Promise<OutputSet> => {
    const per = sampleDims.reduce((a, b) => a * b, 1);
    const parts: Float32Array[] = [];
    let outDims: number[] = [];
    for (let s = 0; s < count; s += maxBatch) {
      const n = Math.min(maxBatch, count - s);
      let chunk = x.subarray(s * per, (s + n) * per);
      if (fixed && n < maxBatch) {
        // A fixed batch dimension: the last chunk is padded with zeros, their outputs dropped.
        const padded = new Float32Array(maxBatch * per);
        padded.set(chunk);
        chunk = padded;
      }
      const r = await session.run({ [input]: new ort.Tensor('float32', chunk, [fixed ? maxBatch : n, ...sampleDims]) }, [head]);
      const t = r[head] as ort.Tensor;
      if (t.type !== 'float32') throw new KpruneError('unsupported', `fine-tuning needs float32 model outputs; "${head}" is ${t.type}`, { file: model.path });
      outDims = [...t.dims].slice(1);
      const data = t.data as Float32Array;
      parts.push(fixed && n < maxBatch ? data.subarray(0, (data.length / maxBatch) * n) : data);
    }
    if (parts.length === 1) return { data: parts[0], sampleDims: outDims };
    const all = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
    let at = 0;
    for (const p of parts) {
      all.set(p, at);
      at += p.length;
    }
    return { data: all, sampleDims: outDims };
  };
  return {
    run: async (x: Float32Array, dims: number[]) => (await run(x, dims[0], dims.slice(1))).data,
    outputs: (data: Dataset) => run(data.x, data.count, data.sampleDims),
    release: () => session.release(),
  };
}

function figuresOf(e: Evaluation<QualityFigures>): HeldOutFigures {
  return { ...e.figures, loss: e.loss };
}

export async function finetune(
  model: OnnxModel,
  layers: Conv3x3Layer[],
  start: ReadonlyMap<string, Float32Array>,
  masks: Map<string, Mask>,
  data: FinetuneData,
  options: FinetuneOptions,
): Promise<FinetuneResult> {
  const began = performance.now();
  checkOptions(model, layers, start, masks, data, options);
  const rt = await onnxTfjsRuntime(options.backend);
  const { tf } = rt;
  const graph = OnnxTfjsGraph.compile(model, tf, { gradients: defaultGradients(rt.backend) });
  if (graph.inputs.length !== 1) {
    throw new KpruneError('unsupported', `fine-tuning needs a model with one input; this one has ${graph.inputs.length}`, { file: model.path });
  }
  const input = graph.inputs[0].name;
  const head = headValue(graph);
  const ids = layers.map((l) => l.id);
  const startWeights = new Map(ids.map((id) => [id, start.get(id)!]));
  const optimizer = options.optimizer ?? 'adam';
  const temperature = options.temperature ?? DEFAULT_TEMPERATURE;
  const batchDim = graph.inputs[0].dims[0];
  const fixedBatch = typeof batchDim === 'number' && batchDim > 0;
  const maxBatch = fixedBatch ? (batchDim as number) : EVAL_BATCH;
  const batch = Math.min(options.batch ?? (fixedBatch ? maxBatch : DEFAULT_BATCH), data.train.count);
  if (fixedBatch && batch !== maxBatch) {
    throw usage(`the model takes batches of exactly ${maxBatch} (its input is [${graph.inputs[0].dims.join(', ')}])`, model.path, `pass --batch ${maxBatch}`);
  }
  const teacher = await headRunner(model, new Map(), input, head, maxBatch, fixedBatch);
  let weights: ReturnType<OnnxTfjsGraph['loadWeights']> | null = null;
  let trainer: TfjsTrainer | null = null;
  try {
    const original = await teacher.outputs(data.heldOut);
    const objective = chooseObjective(original.sampleDims, options.labels, options.distill ?? true);
    weights = graph.loadWeights({ overrides: startWeights, trainable: ids });
    await checkAgreement(model, graph, weights, startWeights, data.heldOut, input, head, tf, maxBatch, fixedBatch);

    trainer = new TfjsTrainer({
      tf, graph, weights, input, head, masks, train: data.train, objective, temperature, optimizer,
      distillWeight: options.distillWeight ?? DEFAULT_DISTILL_WEIGHT,
      momentum: options.momentum ?? 0.9,
      teacher: (x, dims) => teacher.run(x, dims),
    });
    const evaluator = {
      async evaluate(w: ReadonlyMap<string, Float32Array>): Promise<Evaluation<QualityFigures>> {
        const runner = await headRunner(model, w, input, head, maxBatch, fixedBatch);
        try {
          return scoreOutputs(await runner.outputs(data.heldOut), original, data.heldOut.labels, objective, temperature);
        } finally {
          await runner.release();
        }
      },
    };
    const result = await runLoop(trainer, evaluator, startWeights, {
      steps: options.steps,
      lr: options.lr ?? (optimizer === 'adam' ? DEFAULT_ADAM_LR : DEFAULT_SGD_LR),
      batch,
      seed: options.seed ?? 0,
      schedule: options.schedule ?? 'cosine',
      select: options.select ?? 'loss',
      evalEvery: options.evalEvery ?? Math.max(10, Math.ceil(options.steps / 10)),
      trainCount: data.train.count,
      onStep: options.onStep,
      onEvaluate: options.onEvaluate,
      signal: options.signal,
    });
    return {
      weights: result.weights,
      backend: rt.description,
      objective,
      steps: result.steps,
      bestStep: result.bestStep,
      batch,
      imagesPerSecond: result.imagesPerSecond,
      trainMs: result.trainMs,
      evalMs: result.evalMs,
      wallMs: performance.now() - began,
      heldOut: {
        samples: data.heldOut.count,
        metric: objective === 'distill-kl' ? 'agreement' : objective === 'distill-mse' ? 'mse' : 'top1',
        selectedBy: options.select ?? 'loss',
        before: figuresOf(result.before),
        after: figuresOf(result.after),
      },
      history: result.history,
    };
  } finally {
    trainer?.dispose();
    weights?.dispose();
    await teacher.release();
  }
}

/**
 * Before training: the TF.js graph with the starting weights must compute what onnxruntime
 * computes, or the training would optimise a different function than the one written.
 */
async function checkAgreement(
  model: OnnxModel,
  graph: OnnxTfjsGraph,
  weights: ReturnType<OnnxTfjsGraph['loadWeights']>,
  start: ReadonlyMap<string, Float32Array>,
  heldOut: Dataset,
  input: string,
  head: string,
  tf: import('../tfjs-backend.js').Tf,
  maxBatch: number,
  fixedBatch: boolean,
): Promise<void> {
  const n = Math.min(8, heldOut.count, maxBatch);
  const per = heldOut.sampleDims.reduce((a, b) => a * b, 1);
  const x = heldOut.x.subarray(0, n * per);
  const dims = [n, ...heldOut.sampleDims];
  const ours = tf.tidy(() => graph.run(weights, new Map([[input, tf.tensor(x, dims)]]), [head]).get(head)!);
  const a = ours.dataSync() as Float32Array;
  ours.dispose();
  const runner = await headRunner(model, start, input, head, maxBatch, fixedBatch);
  let b: Float32Array;
  try {
    b = await runner.run(x, dims);
  } finally {
    await runner.release();
  }
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < b.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  if (a.length !== b.length || diff > AGREEMENT_TOLERANCE * Math.max(scale, 1e-6)) {
    throw new KpruneError('runtime', `the TF.js execution of the model disagrees with onnxruntime (largest difference ${diff.toPrecision(3)} at output scale ${scale.toPrecision(3)}); fine-tuning would train a different function`, { file: model.path });
  }
}
