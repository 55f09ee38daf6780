/**
 * What both ONNX fine-tuners (onnxruntime: finetune-in-ort.ts, TF.js: finetune-in-tfjs.ts) need
 * settled before either starts, settled once by their one caller (finetune.ts): the options
 * checked, the model's one input, and the training batch against the model's batch dimension.
 */
import type { Conv3x3Layer } from '../../model/conv.js';
import type { Mask } from '../../core/lattice.js';
import { KpruneError } from '../../errors.js';
import { onnxInputs } from '../../formats/onnx/inventory.js';
import type { OnnxModel } from '../../formats/onnx/read.js';
import { DEFAULT_BATCH, EVAL_BATCH, FinetuneData, FinetuneOptions, checkFinetuneOptions, usage } from '../../core/finetune/run.js';

export interface OnnxFinetunePlan {
  /** The model's one input. */
  input: string;
  /** Samples per training step. */
  batch: number;
  /** Samples per inference run: the model's fixed batch, or kprune's evaluation chunk. */
  maxBatch: number;
  /** The model's batch dimension is a number: every run takes exactly `maxBatch` samples. */
  fixedBatch: boolean;
}

/** The shared signature of the fine-tuners finetune.ts chooses between. */
export type OnnxFinetuner<R> = (
  model: OnnxModel, layers: Conv3x3Layer[], start: ReadonlyMap<string, Float32Array>, masks: Map<string, Mask>,
  data: FinetuneData, options: FinetuneOptions, plan: OnnxFinetunePlan,
) => Promise<R>;

export function planOnnxFinetune(model: OnnxModel, layers: Conv3x3Layer[], start: ReadonlyMap<string, Float32Array>, masks: Map<string, Mask>, data: FinetuneData, options: FinetuneOptions): OnnxFinetunePlan {
  checkFinetuneOptions(model.path, layers, start, masks, data, options);
  const inputs = onnxInputs(model);
  if (inputs.length !== 1) {
    throw new KpruneError('unsupported', `fine-tuning needs a model with one input; this one has ${inputs.length}`, { file: model.path });
  }
  const batchDim = inputs[0].dims[0];
  const fixedBatch = typeof batchDim === 'number' && batchDim > 0;
  const maxBatch = fixedBatch ? (batchDim as number) : EVAL_BATCH;
  const batch = Math.min(options.batch ?? (fixedBatch ? maxBatch : DEFAULT_BATCH), data.train.count);
  if (fixedBatch && batch !== maxBatch) {
    throw usage(`the model takes batches of exactly ${maxBatch} (its input is [${inputs[0].dims.join(', ')}])`, model.path, `pass --batch ${maxBatch}`);
  }
  return { input: inputs[0].name, batch, maxBatch, fixedBatch };
}
