/**
 * Brief end-to-end fine-tuning of a reshaped ONNX model (issue #4): the reshaped 3x3 filters train
 * in TF.js (only their kept positions), with cross-entropy on labels or by distillation from the
 * original model; onnxruntime provides the original's outputs (distillation targets) and scores
 * each checkpoint on held-out data, so the checkpoint chosen is scored by the runtime the written
 * model runs in.
 *
 * Only the 3x3 filters change: the result is new weights by layer id, for LoadedModel.write.
 */
import type * as ort from 'onnxruntime-node';
import { ortApi } from '../../runtime/ort/ort.js';
import { chooseObjective, scoreOutputs } from '../../core/finetune/score.js';
import type { Dataset } from '../../model/dataset.js';
import { KpruneError } from '../../errors.js';
import { openProbeSession } from './probe.js';
import { decodeGraph } from '../../formats/onnx/decode-graph.js';
import type { OnnxModel } from '../../formats/onnx/read.js';
import type { FinetuneResult } from '../../model/finetune.js';
import type { OutputSet } from '../../model/quality.js';
import { checkAgreement, runFinetuneLoop, trainSettings } from '../../core/finetune/run.js';
import type { OnnxFinetuner } from './finetune-plan.js';
import { defaultGradients, trainingRuntime } from '../../runtime/tfjs/training-backend.js';
import { OnnxTfjsGraph } from '../../runtime/tfjs/onnx/graph.js';
import { TfjsTrainer } from '../../runtime/tfjs/trainer.js';

export type { FinetuneData, FinetuneOptions, FinetuneResult, HeldOutFigures } from '../../model/finetune.js';

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
      const r = await session.run({ [input]: new (ortApi().Tensor)('float32', chunk, [fixed ? maxBatch : n, ...sampleDims]) }, [head]);
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

export const finetuneOnnxInTfjs: OnnxFinetuner<FinetuneResult> = async (model, layers, start, masks, data, options, plan) => {
  const began = performance.now();
  const rt = await trainingRuntime(options.backend);
  const { tf } = rt;
  const graph = OnnxTfjsGraph.compile(decodeGraph(model), tf, { gradients: defaultGradients(rt.backend) });
  const input = plan.input;
  const head = headValue(graph);
  const ids = layers.map((l) => l.id);
  const startWeights = new Map(ids.map((id) => [id, start.get(id)!]));
  // Other weights recovery changed (compensating linear layers) stay as recovery left them, frozen.
  const idSet = new Set(ids);
  const frozen = new Map([...start.keys()].filter((k) => !idSet.has(k)).map((k) => [k, start.get(k)!]));
  const settings = trainSettings(options);
  const { optimizer, temperature } = settings;
  const { batch, maxBatch, fixedBatch } = plan;
  const teacher = await headRunner(model, new Map(), input, head, maxBatch, fixedBatch);
  let weights: ReturnType<OnnxTfjsGraph['loadWeights']> | null = null;
  let trainer: TfjsTrainer | null = null;
  try {
    const original = await teacher.outputs(data.heldOut);
    const objective = chooseObjective(original.sampleDims, options.labels, options.distill ?? true);
    weights = graph.loadWeights({ overrides: new Map([...startWeights, ...frozen]), trainable: ids });
    await checkStartAgreement(model, graph, weights, new Map([...startWeights, ...frozen]), data.heldOut, input, head, tf, maxBatch, fixedBatch);

    const loaded = weights;
    trainer = new TfjsTrainer({
      tf,
      forward: (x) => graph.run(loaded, new Map([[input, x]]), [head]).get(head)!,
      variables: loaded.variables,
      read: (name) => loaded.readTrainable(name),
      masks, train: data.train, objective, ...settings,
      teacher: (x, dims) => teacher.run(x, dims),
    });
    return await runFinetuneLoop({
      trainer,
      backend: rt.description,
      objective,
      batch,
      optimizer,
      async evaluate(w) {
        // The frozen weights too: the checkpoints are scored as the model will be written.
        const runner = await headRunner(model, new Map([...frozen, ...w]), input, head, maxBatch, fixedBatch);
        try {
          return scoreOutputs(await runner.outputs(data.heldOut), original, data.heldOut.labels, objective, temperature);
        } finally {
          await runner.release();
        }
      },
    }, startWeights, data, options, began);
  } finally {
    trainer?.dispose();
    weights?.dispose();
    await teacher.release();
  }
};

/**
 * Before training: the TF.js graph with the starting weights must compute what onnxruntime
 * computes, or the training would optimise a different function than the one written.
 */
async function checkStartAgreement(
  model: OnnxModel,
  graph: OnnxTfjsGraph,
  weights: ReturnType<OnnxTfjsGraph['loadWeights']>,
  start: ReadonlyMap<string, Float32Array>,
  heldOut: Dataset,
  input: string,
  head: string,
  tf: import('../../runtime/tfjs/backend.js').Tf,
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
  checkAgreement(a, b, 'the TF.js execution of the model disagrees with onnxruntime', model.path);
}
