/**
 * Brief end-to-end fine-tuning of a reshaped TF.js model, in TF.js itself, with its reshaped 3x3
 * kernels as variables; only their kept positions train (the shared TfjsTrainer), with
 * cross-entropy on labels or by distillation from the original model (the same model run with its
 * own kernels). Checkpoints are scored on held-out data in the runtime the written model runs in.
 * The result is new kernels by layer id, in the core's layout, for LoadedModel.write.
 *
 * - LayersModel: run op by op (layers-exec.ts), convolutions through kprune's
 *   forward-convolution gradients; a check before training requires that path to compute what
 *   TF.js's own layers compute.
 * - GraphModel: executed by TF.js with the kernels fed in place of their Const nodes, so gradients
 *   are TF.js's own; on wasm, the convolution gradient kernels it lacks come from
 *   wasm-conv-grads.ts (registered with the runtime). Dilated convolutions cannot be trained this way (TF.js refuses them).
 */
import type * as TF from '../../runtime/tfjs/tf.js';
import type { Conv3x3Layer } from '../../model/conv.js';
import { chooseObjective, scoreOutputs } from '../../core/finetune/score.js';
import { Mask } from '../../core/lattice.js';
import type { Dataset } from '../../model/dataset.js';
import type { FinetuneData, FinetuneOptions, FinetuneResult } from '../../model/finetune.js';
import type { OutputSet } from '../../model/quality.js';
import {
  DEFAULT_BATCH, EVAL_BATCH,
  checkAgreement, checkFinetuneOptions, runFinetuneLoop, trainSettings,
} from '../../core/finetune/run.js';
import { defaultGradients, trainingRuntime } from '../../runtime/tfjs/training-backend.js';
import { TfjsTrainer } from '../../runtime/tfjs/trainer.js';
import type { InputSpec } from '../../model/inputs.js';
import type { Tf, TfjsRuntime } from '../../runtime/tfjs/backend.js';
import { KpruneError } from '../../errors.js';
import type { KerasPlan } from '../../formats/tfjs/keras-plan.js';
import { executePlan } from './layers-exec.js';
import { memoryHandler } from './io.js';
import { loadInTfjs } from './runner.js';

export interface TfjsFinetuneSpec {
  /** The original model, as handed to TF.js. */
  artifacts: TF.io.ModelArtifacts;
  /** A LayersModel's op plan, or a GraphModel. */
  model: { kind: 'layers'; plan: KerasPlan } | { kind: 'graph' };
  /** The model's one input. */
  input: InputSpec;
  file: string;
  layers: Conv3x3Layer[];
  /** A layer's kernel in the model's own layout (HWIO, or depthwise [3, 3, C, M]) and back. */
  kernelShape(id: string): number[];
  toModelLayout(id: string, values: Float32Array): Float32Array;
  fromModelLayout(id: string, values: Float32Array): Float32Array;
}

/**
 * The value the losses read, for a batch: with `kernels` (by layer id) in place of the model's own
 * (an empty map: the original), `train` when they are variables being trained.
 */
interface Head {
  run(x: TF.Tensor, kernels: Map<string, TF.Tensor>, train: boolean): TF.Tensor;
  /** For the check before training: does the training path compute differently from the plain one? */
  separateTrainingPath: boolean;
  dispose(): void;
}

/** Does a LayersModel's output layer end in a softmax (probabilities rather than logits)? */
function endsInSoftmax(model: TF.LayersModel): boolean {
  const last = model.outputLayers?.[0] as unknown as { getClassName(): string; getConfig(): Record<string, unknown> } | undefined;
  if (!last) return false;
  return last.getClassName() === 'Softmax' || last.getConfig().activation === 'softmax';
}

async function openHead(rt: TfjsRuntime, spec: TfjsFinetuneSpec): Promise<Head> {
  const { tf } = rt;
  const gradients = defaultGradients(rt.backend);
  if (spec.model.kind === 'layers') {
    const plan = spec.model.plan;
    const loaded = await loadInTfjs(rt, 'layers', memoryHandler(spec.artifacts), spec.file);
    if (loaded.kind !== 'layers') throw new Error('unreachable');
    const model = loaded.model;
    const input = plan.inputs.find((i) => i.name === spec.input.name)!.tensor;
    const output = plan.outputs[0];
    // Losses and scores read logits: of probabilities, the log is the logits up to a constant,
    // which softmax, cross-entropy and KL do not see.
    const probabilities = endsInSoftmax(model);
    return {
      run(x, kernels, train) {
        const out = executePlan(tf, model, plan, new Map([[input, x]]), [output], kernels, train ? gradients : undefined).get(output)!;
        return probabilities ? tf.log(tf.maximum(out, 1e-30)) : out;
      },
      separateTrainingPath: true,
      dispose: () => model.dispose(),
    };
  }
  const loaded = await loadInTfjs(rt, 'graph', memoryHandler(spec.artifacts), spec.file);
  if (loaded.kind !== 'graph') throw new Error('unreachable');
  const model = loaded.model;
  const nodes = ((spec.artifacts.modelTopology as { node?: { name: string; op: string; input?: string[] }[] }).node ?? []);
  const outputNode = model.outputNodes[0];
  const last = nodes.find((n) => n.name === outputNode);
  // A final Softmax: the losses read its input, the logits.
  const head = last?.op === 'Softmax' && last.input?.[0] ? last.input[0] : outputNode;
  return {
    run(x, kernels) {
      const feeds: TF.NamedTensorMap = { [spec.input.name]: x };
      for (const [id, k] of kernels) feeds[id] = k;
      try {
        return model.execute(feeds, head) as TF.Tensor;
      } catch (e) {
        const why = e instanceof Error ? e.message.split('\n')[0] : String(e);
        throw new KpruneError('unsupported', `TF.js cannot run the GraphModel for fine-tuning (it must run synchronously, without control flow, at the batch given): ${why}`, { file: spec.file, cause: e });
      }
    },
    separateTrainingPath: false,
    dispose: () => model.dispose(),
  };
}

export async function finetuneTfjsInTfjs(
  spec: TfjsFinetuneSpec,
  start: ReadonlyMap<string, Float32Array>,
  masks: Map<string, Mask>,
  data: FinetuneData,
  options: FinetuneOptions,
): Promise<FinetuneResult> {
  const began = performance.now();
  checkFinetuneOptions(spec.file, spec.layers, start, masks, data, options);
  const rt = await trainingRuntime(options.backend);
  const { tf } = rt;
  const model = await openHead(rt, spec);
  const head = (x: TF.Tensor, kernels: Map<string, TF.Tensor>, train = false) => model.run(x, kernels, train);
  const ids = spec.layers.map((l) => l.id);
  const startWeights = new Map(ids.map((id) => [id, start.get(id)!]));
  const variables = new Map<string, TF.Variable>();
  const settings = trainSettings(options);
  const { optimizer, temperature } = settings;
  const batch = Math.min(options.batch ?? DEFAULT_BATCH, data.train.count);
  const original = new Map<string, TF.Tensor>();
  let trainer: TfjsTrainer | null = null;
  try {
    for (const id of ids) variables.set(id, tf.tidy(() => tf.variable(tf.tensor(spec.toModelLayout(id, startWeights.get(id)!), spec.kernelShape(id)), true)));
    const teacherOut = await outputs(tf, data.heldOut, (x) => head(x, original));
    const objective = chooseObjective(teacherOut.sampleDims, options.labels, options.distill ?? true);
    if (model.separateTrainingPath) checkTrainingPath(tf, data.heldOut, (x) => head(x, variables, true), (x) => head(x, kernelTensors(tf, spec, startWeights)), spec.file);
    trainer = new TfjsTrainer({
      tf,
      forward: (x) => head(x, variables, true),
      variables,
      read: (id) => spec.fromModelLayout(id, variables.get(id)!.dataSync() as Float32Array),
      masks, train: data.train, objective, ...settings,
      teacher: async (x, dims) => {
        const y = tf.tidy(() => head(tf.tensor(x, dims), original));
        const v = await y.data() as Float32Array;
        y.dispose();
        return v;
      },
    });
    return await runFinetuneLoop({
      trainer,
      backend: rt.description,
      objective,
      batch,
      optimizer,
      async evaluate(w) {
        const kernels = new Map<string, TF.Tensor>();
        try {
          for (const id of ids) kernels.set(id, tf.tensor(spec.toModelLayout(id, w.get(id)!), spec.kernelShape(id)));
          return scoreOutputs(await outputs(tf, data.heldOut, (x) => head(x, kernels)), teacherOut, data.heldOut.labels, objective, temperature);
        } finally {
          kernels.forEach((k) => k.dispose());
        }
      },
    }, startWeights, data, options, began);
  } finally {
    trainer?.dispose();
    variables.forEach((v) => v.dispose());
    model.dispose();
  }
}

/** The head values of every sample of a data set, in batches. */
async function outputs(tf: Tf, d: Dataset, run: (x: TF.Tensor) => TF.Tensor): Promise<OutputSet> {
  const per = d.sampleDims.reduce((a, b) => a * b, 1);
  const parts: Float32Array[] = [];
  let sampleDims: number[] = [];
  for (let s = 0; s < d.count; s += EVAL_BATCH) {
    const n = Math.min(EVAL_BATCH, d.count - s);
    const y = tf.tidy(() => run(tf.tensor(d.x.subarray(s * per, (s + n) * per), [n, ...d.sampleDims])));
    sampleDims = y.shape.slice(1);
    parts.push(await y.data() as Float32Array);
    y.dispose();
  }
  const data = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
  let at = 0;
  for (const p of parts) {
    data.set(p, at);
    at += p.length;
  }
  return { data, sampleDims };
}

/** The starting kernels as plain tensors, in the model's layout (disposed by the tidy using them). */
function kernelTensors(tf: Tf, spec: TfjsFinetuneSpec, weights: ReadonlyMap<string, Float32Array>): Map<string, TF.Tensor> {
  return new Map([...weights].map(([id, w]) => [id, tf.tensor(spec.toModelLayout(id, w), spec.kernelShape(id))]));
}

/**
 * Before training: the training path (kernels as variables, kprune's convolutions with explicit
 * pads) must compute what TF.js's own layers compute with the same kernels, or the training would
 * optimise a different function than the one written.
 */
function checkTrainingPath(tf: Tf, heldOut: Dataset, trained: (x: TF.Tensor) => TF.Tensor, plain: (x: TF.Tensor) => TF.Tensor, file: string): void {
  const n = Math.min(8, heldOut.count);
  const per = heldOut.sampleDims.reduce((a, b) => a * b, 1);
  const [a, b] = tf.tidy(() => {
    const x = tf.tensor(heldOut.x.subarray(0, n * per), [n, ...heldOut.sampleDims]);
    return [trained(x).dataSync() as Float32Array, plain(x).dataSync() as Float32Array];
  });
  checkAgreement(a, b, 'the training path disagrees with TF.js\'s own layers', file);
}
