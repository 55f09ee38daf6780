/**
 * Fine-tuning an ONNX model in onnxruntime-node: kprune builds one training graph (forward, loss,
 * gradients of the reshaped 3x3 weights, formats/onnx/training) and runs it as an inference
 * session; the masked optimiser updates the weights in JS between steps. A second graph, the model
 * with those weights as inputs, gives the teacher's outputs (fed the original weights) and scores
 * checkpoints on held-out data (fed the current ones): three sessions in all, each opened once.
 *
 * When an operator on the gradient path has no backward rule, nothing is trained here and the
 * missing operators are returned, for the caller to train in TF.js instead.
 */
import type * as ort from 'onnxruntime-node';
import { crossEntropy, distillKl, meanSquaredError, chooseObjective, scoreOutputs } from '../../core/finetune/score.js';
import { FULL_MASK, maskPositions } from '../../core/lattice.js';
import type { Mask } from '../../core/lattice.js';
import type { Dataset } from '../../data/types.js';
import { KpruneError } from '../../errors.js';
import { probeModelBytes } from './probe.js';
import type { OnnxModel } from '../../formats/onnx/read.js';
import { MissingGradient, TrainingGraph, ValueShape, buildForwardGraph, buildTrainingGraph, computedValues, headValue } from '../../formats/onnx/training/index.js';
import { FinetuneData, FinetuneOptions, FinetuneResult, runFinetuneLoop, trainSettings, usage } from '../../core/finetune/run.js';
import { createSession } from '../../runtime/ort/session.js';
import { StepWork, describeDevice, openTrainingSession, probeShapes, runFloat, trainingWorkers } from '../../runtime/ort/training-session.js';
import { onnxComputeNodes } from '../../formats/onnx/inventory.js';
import { OrtTrainer, OrtTrainingGraph, TeacherOutputs } from '../../runtime/ort/trainer.js';
import { TrainPool } from '../../runtime/ort/train-pool.js';
import type { OnnxFinetunePlan } from './finetune-plan.js';
import type { Conv3x3Layer } from '../../model/conv.js';
import type { OutputSet } from '../../core/metrics.js';

/** The training graph's loss and onnxruntime's outputs must agree this closely before training. */
const LOSS_TOLERANCE = 1e-3;

export type OrtFinetuneOutcome = { trained: FinetuneResult } | { missing: MissingGradient[] };

/**
 * The model's head in chunks: the original model as it is (its weights constant, so onnxruntime
 * optimises it fully: the teacher), or with the trained weights as inputs and their convolutions
 * as pieces (held-out scoring of checkpoints).
 */
class HeadRunner {
  private constructor(private readonly session: ort.InferenceSession, private readonly data: string, private readonly head: string,
    private readonly weights: { name: string; dims: number[] }[], private readonly maxBatch: number, private readonly fixed: boolean, private readonly file: string) {}

  static async teacher(model: OnnxModel, input: string, head: string, maxBatch: number, fixed: boolean, options: FinetuneOptions): Promise<HeadRunner> {
    const session = await openTrainingSession(probeModelBytes(model, new Map(), [head]), { threads: options.threads, device: options.device }, model.path);
    return new HeadRunner(session, input, head, [], maxBatch, fixed, model.path);
  }

  static async student(model: OnnxModel, weights: { name: string; dims: number[] }[], head: string, maxBatch: number, fixed: boolean, options: FinetuneOptions,
    pieces: { masks: ReadonlyMap<string, Mask>; shapes: ReadonlyMap<string, ValueShape> }): Promise<HeadRunner> {
    const g = buildForwardGraph(model, weights.map((w) => w.name), [head], pieces);
    const session = await openTrainingSession(g.bytes, { threads: options.threads, device: options.device }, model.path);
    return new HeadRunner(session, g.data, head, weights, maxBatch, fixed, model.path);
  }

  /** Head values for `count` samples, flattened per sample. */
  async run(values: ReadonlyMap<string, Float32Array>, x: Float32Array, count: number, sampleDims: number[]): Promise<OutputSet> {
    const per = sampleDims.reduce((a, b) => a * b, 1);
    const parts: Float32Array[] = [];
    let outDims: number[] = [];
    for (let s = 0; s < count; s += this.maxBatch) {
      const n = Math.min(this.maxBatch, count - s);
      let chunk = x.subarray(s * per, (s + n) * per);
      if (this.fixed && n < this.maxBatch) {
        // A fixed batch dimension: the last chunk is padded with zeros, their outputs dropped.
        const padded = new Float32Array(this.maxBatch * per);
        padded.set(chunk);
        chunk = padded;
      }
      const feeds: Record<string, { data: Float32Array; dims: number[] }> = { [this.data]: { data: chunk, dims: [this.fixed ? this.maxBatch : n, ...sampleDims] } };
      for (const w of this.weights) feeds[w.name] = { data: values.get(w.name)!, dims: w.dims };
      const out = (await runFloat(this.session, feeds, [this.head], this.file)).get(this.head)!;
      outDims = out.dims.slice(1);
      parts.push(this.fixed && n < this.maxBatch ? out.data.subarray(0, (out.data.length / this.maxBatch) * n) : out.data);
    }
    const all = parts.length === 1 ? parts[0] : new Float32Array(parts.reduce((a, p) => a + p.length, 0));
    if (parts.length > 1) {
      let at = 0;
      for (const p of parts) {
        all.set(p, at);
        at += p.length;
      }
    }
    return { data: all, sampleDims: outDims };
  }

  release(): Promise<void> {
    return this.session.release();
  }
}

/**
 * A step's forward MACs (the compute nodes at the probed batch's shapes) and its trained weights:
 * the kept positions of each reshaped filter (what a step's gradients hold in the kept layout).
 */
export function stepWork(model: OnnxModel, shapes: ReadonlyMap<string, { dims: number[] }>, layers: Conv3x3Layer[], masks: ReadonlyMap<string, Mask>): StepWork {
  let macs = 0;
  for (const c of onnxComputeNodes(model)) {
    const dims = shapes.get(c.output)?.dims;
    if (dims) macs += dims.reduce((a, b) => a * b, 1) * c.macsPerOutput;
  }
  return { macs, trainedWeights: layers.reduce((a, l) => a + l.outChannels * l.inChannelsPerGroup * maskPositions(masks.get(l.id) ?? FULL_MASK).length, 0) };
}

async function valueShapes(model: OnnxModel, start: ReadonlyMap<string, Float32Array>, input: string, x: Float32Array, dims: number[]) {
  const session = await createSession(probeModelBytes(model, start, computedValues(model)), { threads: 1 }, model.path);
  try {
    return await probeShapes(session, input, x, dims, model.path);
  } finally {
    await session.release();
  }
}

/**
 * Distillation targets for every training sample, computed once in batched inference, when that
 * is less work than the teacher's forward pass at every step: without augmentation a sample's
 * targets never change, and a run of `steps` batches sees steps x batch samples. Measured on the
 * bundled ResNet (bench/finetune.ts, section teacher): see the README's fine-tuning section.
 * Targets larger than this stay per step (an image-to-image model's outputs can be large).
 */
const TEACHER_CACHE_BYTES = 256 * 2 ** 20;

export function precomputeTeacher(trainCount: number, steps: number, batch: number, headValues: number): boolean {
  return steps * batch >= trainCount && trainCount * headValues * 4 <= TEACHER_CACHE_BYTES;
}

/**
 * The onnxruntime fine-tuner (OnnxFinetuner's signature), plus the model whose outputs the student
 * learns: by default `model` itself; the original when `model` is a copy holding weights recovery
 * changed besides the trained ones (finetune.ts).
 */
export async function finetuneInOrt(
  model: OnnxModel, layers: Conv3x3Layer[], start: ReadonlyMap<string, Float32Array>, masks: Map<string, Mask>,
  data: FinetuneData, options: FinetuneOptions, plan: OnnxFinetunePlan, teacherModel: OnnxModel = model,
): Promise<OrtFinetuneOutcome> {
  const began = performance.now();
  const { batch, maxBatch, fixedBatch } = plan;
  const notFloat32 = layers.filter((l) => model.constants.get(l.id)?.dataType !== 1);
  if (notFloat32.length > 0) {
    // The training graph feeds float32 weights; float16 and bfloat16 ones train in TF.js.
    return { missing: notFloat32.map((l) => ({ op: 'Conv', node: l.name, reason: `its weight "${l.id}" is not float32` })) };
  }
  const settings = trainSettings(options);
  const head = options.head ?? headValue(model);
  const ids = layers.map((l) => l.id);
  const startWeights = new Map(ids.map((id) => [id, start.get(id)!]));
  const weightDims = layers.map((l) => ({ name: l.id, dims: [l.outChannels, l.inChannelsPerGroup, 3, 3] }));
  const per = data.train.sampleDims.reduce((a, b) => a * b, 1);
  const shapesAt = (n: number) => valueShapes(model, startWeights, plan.input, data.train.x.subarray(0, n * per), [n, ...data.train.sampleDims]);
  const shapes = await shapesAt(batch);

  const teacher = await HeadRunner.teacher(teacherModel, plan.input, head, maxBatch, fixedBatch, options);
  let runner: HeadRunner | null = null;
  let trainer: OrtTrainer | null = null;
  let first: ort.InferenceSession | null = null;
  let pool: TrainPool | null = null;
  try {
    runner = await HeadRunner.student(model, weightDims, head, maxBatch, fixedBatch, options, { masks, shapes });
    const student = runner;
    const none = new Map<string, Float32Array>();
    const original = await teacher.run(none, data.heldOut.x, data.heldOut.count, data.heldOut.sampleDims);
    const objective = chooseObjective(original.sampleDims, options.labels, options.distill ?? true);
    const build = (s: ReadonlyMap<string, ValueShape>) => buildTrainingGraph(model, {
      trainable: ids,
      head,
      shapes: s,
      loss: { objective, temperature: settings.temperature, distillWeight: settings.distillWeight },
      // Convolutions of the reshaped weights compute only their kept positions (pieces): 1.45x
      // faster steps on the bundled ResNet with a cross; the optimiser masks all the same.
      masks,
      // And their weights are fed, updated and returned as the kept positions alone.
      layout: 'kept',
    });
    const built = build(shapes);
    if (!built.ok) return { missing: built.missing };
    const open = async (g: TrainingGraph): Promise<OrtTrainingGraph> => ({
      session: await openTrainingSession(g.bytes, { threads: options.threads, device: options.device }, model.path),
      data: g.data, loss: g.loss, labels: g.lossInputs.labels, teacher: g.lossInputs.teacher, headValues: g.flatDims[1], weights: g.weights,
    });
    const opened = await open(built.graph);
    first = opened.session;
    // Another batch size (a caller's partial batch): the graph rebuilt at its dims.
    const graphFor = async (n: number): Promise<OrtTrainingGraph> => {
      if (n === batch) {
        first = null; // the trainer owns it now
        return opened;
      }
      if (fixedBatch) throw usage(`the model takes batches of exactly ${maxBatch}, not ${n}`, model.path);
      const again = build(await shapesAt(n));
      if (!again.ok) throw new KpruneError('runtime', `the training graph could not be built for a batch of ${n}`, { file: model.path });
      return open(again.graph);
    };
    const perStep = async (x: Float32Array, dims: number[]) => (await teacher.run(none, x, dims[0], dims.slice(1))).data;
    let teacherOutputs: TeacherOutputs = perStep;
    if (built.graph.lossInputs.teacher && precomputeTeacher(data.train.count, options.steps, batch, built.graph.flatDims[1])) {
      const all = (await teacher.run(none, data.train.x, data.train.count, data.train.sampleDims)).data;
      const k = built.graph.flatDims[1];
      teacherOutputs = async (_x, _dims, indices) => {
        const out = new Float32Array(indices.length * k);
        for (let i = 0; i < indices.length; i++) out.set(all.subarray(indices[i] * k, (indices[i] + 1) * k), i * k);
        return out;
      };
    }
    // The batch split over worker threads where the machine has the cores (a fixed-batch model cannot be split).
    const workers = fixedBatch || batch < 4 ? 0 : trainingWorkers(options, stepWork(model, shapes, layers, masks));
    if (workers >= 2) pool = TrainPool.open(workers, model.path);
    const graphBytesFor = async (n: number): Promise<Uint8Array> => {
      const g = build(await shapesAt(n));
      if (!g.ok) throw new KpruneError('runtime', `the training graph could not be built for a batch of ${n}`, { file: model.path });
      return g.graph.bytes;
    };
    trainer = new OrtTrainer({
      graphFor, start: startWeights, masks, train: data.train,
      optimizer: settings.optimizer, momentum: settings.momentum, teacherOutputs, file: model.path,
      ...(pool ? { shards: { pool, graphBytesFor } } : {}),
    });
    await checkStartLoss(trainer, student, startWeights, data.train, batch, objective, settings.temperature, settings.distillWeight, perStep, model.path);
    const trained = await runFinetuneLoop({
      trainer,
      backend: describeDevice(options.device ?? 'cpu', options.threads, pool?.size ?? 0),
      engine: 'onnxruntime',
      objective,
      batch,
      optimizer: settings.optimizer,
      evaluate: async (w) => scoreOutputs(await student.run(w, data.heldOut.x, data.heldOut.count, data.heldOut.sampleDims), original, data.heldOut.labels, objective, settings.temperature),
    }, startWeights, data, options, began);
    return { trained };
  } finally {
    await pool?.release();
    await trainer?.release();
    await (first as ort.InferenceSession | null)?.release();
    await runner?.release();
    await teacher.release();
  }
}

/**
 * Before training: the training graph's loss on one batch must be the loss of what onnxruntime
 * computes for the model, by kprune's own definition (core/finetune/score.ts), or the graph
 * would optimise something else.
 */
async function checkStartLoss(
  trainer: OrtTrainer, runner: HeadRunner, start: ReadonlyMap<string, Float32Array>, train: Dataset, batch: number,
  objective: ReturnType<typeof chooseObjective>, temperature: number, distillWeight: number,
  teacher: (x: Float32Array, dims: number[]) => Promise<Float32Array>, file: string,
): Promise<void> {
  const n = Math.min(batch, train.count);
  const indices = Uint32Array.from({ length: n }, (_, i) => i);
  const { loss } = await trainer.gradients(indices);
  const per = train.sampleDims.reduce((a, b) => a * b, 1);
  const x = train.x.subarray(0, n * per);
  const out = await runner.run(start, x, n, train.sampleDims);
  const flat: OutputSet = { data: out.data, sampleDims: [out.data.length / n] };
  const t: OutputSet = { data: await teacher(x, [n, ...train.sampleDims]), sampleDims: flat.sampleDims };
  const labels = train.labels?.subarray(0, n);
  let expected: number;
  switch (objective) {
    case 'cross-entropy': expected = crossEntropy(flat, labels!); break;
    case 'cross-entropy+distill': expected = (1 - distillWeight) * crossEntropy(flat, labels!) + distillWeight * distillKl(flat, t, temperature); break;
    case 'distill-kl': expected = distillKl(flat, t, temperature); break;
    case 'distill-mse': expected = meanSquaredError(flat, t); break;
  }
  if (!(Math.abs(loss - expected) <= LOSS_TOLERANCE * Math.max(Math.abs(expected), 1e-3))) {
    throw new KpruneError('runtime', `the training graph's loss (${loss}) disagrees with the model's (${expected}); fine-tuning would train a different function`, { file });
  }
}
