/**
 * Block-wise reconstruction by gradient steps (BRECQ-style), against the closed-form layer-wise
 * reconstruction it starts from: for each reshaped 3x3 layer in order, its kept weights take Adam
 * steps on the mean squared error between the value the next 3x3 layer reads (after the ReLU,
 * pooling, residual sum; the logits, by distillation, after the last layer) and the original
 * model's, every other weight as already recovered. Data: the calibration images only, no labels
 * (held-out share for the checkpoint rule). It is the onnxruntime fine-tuning engine with an
 * intermediate head (FinetuneOptions.head), so it measures what gradient steps on the calibration
 * set can add to reconstruction; it is not a product step.
 *
 *   node dist/bench/block-recon.js [--model vgg-fmnist] [--shape cross] [--steps 100] [--calib 512] [--eval 10000] [--lr 0.003]
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { loadModel, recover, reshape } from '../src/index.js';
import { readOnnxModel } from '../src/formats/onnx/read.js';
import { findConv3x3 } from '../src/formats/onnx/convs.js';
import { finetuneOnnx } from '../src/models/onnx/finetune.js';
import { loadData } from '../src/data/index.js';
import { planMasks } from '../src/core/plan.js';
import { collectOutputs } from '../src/pipeline/evaluate.js';
import { splitForFinetune } from '../src/pipeline/finetune.js';
import { quality } from '../src/core/metrics.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const { values: o } = parseArgs({
  options: {
    model: { type: 'string', default: 'vgg-fmnist' },
    shape: { type: 'string', default: 'cross' },
    steps: { type: 'string', default: '100' },
    calib: { type: 'string', default: '512' },
    eval: { type: 'string', default: '10000' },
    lr: { type: 'string', default: '0.003' },
    seed: { type: 'string', default: '0' },
  },
});
const file = path.join(root, 'fixtures', 'models', `${o.model}.onnx`);
const seed = Number(o.seed);
const model = await loadModel(file);
const reshaped = reshape(model, o.shape!);
const masks = planMasks(reshaped.plan);
const t0 = performance.now();
const closed = await recover(model, reshaped, { data: 'fashion-mnist', calib: Number(o.calib), eval: 16, seed });
const closedMs = performance.now() - t0;
const split = await loadData('fashion-mnist', { inputDims: model.inputs[0].dims, calib: Number(o.calib), eval: Number(o.eval), seed, numClasses: 10 });
const data = splitForFinetune(split.calib);

const onnx = await readOnnxModel(file);
const layers = findConv3x3(onnx).layers;
const current = new Map(closed.weights);
const t1 = performance.now();
for (const [k, layer] of layers.entries()) {
  const mask = masks.get(layer.id)!;
  const head = k + 1 < layers.length ? layers[k + 1].uses[0].input : undefined;
  const r = await finetuneOnnx(onnx, [layer], current, new Map([[layer.id, mask]]), data, {
    steps: Number(o.steps), lr: Number(o.lr), labels: false, engine: 'onnxruntime', seed, threads: 1, ...(head ? { head } : {}),
  });
  current.set(layer.id, r.weights.get(layer.id)!);
  process.stderr.write(`${layer.name} -> ${head ?? 'logits'}: held-out loss ${r.heldOut.before.loss.toPrecision(4)} -> ${r.heldOut.after.loss.toPrecision(4)} (best step ${r.bestStep})\n`);
}
const blockMs = performance.now() - t1;

async function top1(weights: ReadonlyMap<string, Float32Array>): Promise<number> {
  const runner = await model.createRunner(weights, []);
  try {
    return quality(await collectOutputs(runner, split.eval), split.eval.labels).top1!;
  } finally {
    await runner.release();
  }
}
const original = await top1(new Map());
const a = await top1(closed.weights);
const b = await top1(current);
const pt = (x: number) => (100 * x).toFixed(2);
console.log(`| ${o.model} | ${o.shape} | ${pt(original)} | ${pt(a)} (${(closedMs / 1000).toFixed(0)} s) | ${pt(b)} (+${(blockMs / 1000).toFixed(0)} s, ${o.steps} steps per layer) |`);
