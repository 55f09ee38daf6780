/**
 * Which engine fine-tunes an ONNX model. onnxruntime (a training graph kprune builds; several
 * times faster) when every operator on the gradient path has a backward rule; otherwise TF.js, as
 * before, with the operators that lacked a rule named in the result (and so in the report).
 * `engine` insists on one; `device` other than cpu needs onnxruntime. The request (options, the
 * model's input, the batch) is checked here once; the two fine-tuners take it as settled.
 */
import type { Conv3x3Layer } from '../../model/conv.js';
import type { Mask } from '../../core/lattice.js';
import { KpruneError } from '../../errors.js';
import type { OnnxModel } from '../../formats/onnx/read.js';
import type { MissingGradient } from '../../formats/onnx/training/index.js';
import type { FinetuneData, FinetuneOptions, FinetuneResult } from '../../core/finetune/run.js';
import { finetuneOnnxInTfjs as finetuneInTfjs } from './finetune-in-tfjs.js';
import { finetuneInOrt } from './finetune-in-ort.js';
import { onnxModelFromBytes } from '../../formats/onnx/read.js';
import { probeModelBytes } from '../../formats/onnx/probe-bytes.js';
import { planOnnxFinetune } from './finetune-plan.js';

export function describeMissing(m: MissingGradient): string {
  return m.node ? `${m.op} (${m.node}): ${m.reason}` : `${m.op}: ${m.reason}`;
}

export async function finetuneOnnx(
  model: OnnxModel,
  layers: Conv3x3Layer[],
  start: ReadonlyMap<string, Float32Array>,
  masks: Map<string, Mask>,
  data: FinetuneData,
  options: FinetuneOptions,
): Promise<FinetuneResult> {
  const engine = options.engine ?? 'auto';
  const device = options.device ?? 'cpu';
  if (engine === 'tfjs' && device !== 'cpu') throw new KpruneError('usage', `--device ${device} needs the onnxruntime engine; TF.js trains on the CPU`, { file: model.path });
  // The one place the request is checked, for both engines.
  const plan = planOnnxFinetune(model, layers, start, masks, data, options);
  if (engine === 'tfjs') return finetuneInTfjs(model, layers, start, masks, data, options, plan);
  // Recovery may have changed weights besides the trained 3x3 ones (compensated linear layers,
  // corrected biases): they are not trained, but the training graph reads every weight it does not
  // train from the model file. They are written into a copy of the model that the student (training
  // graph, held-out scoring) is built from; the teacher stays the original.
  const layerIds = new Set(layers.map((l) => l.id));
  const frozen = new Map([...start].filter(([k]) => !layerIds.has(k)));
  const student = frozen.size > 0 ? onnxModelFromBytes(probeModelBytes(model, frozen, []), model.path) : model;
  const outcome = await finetuneInOrt(student, layers, start, masks, data, options, plan, model);
  if ('trained' in outcome) return outcome.trained;
  const missing = outcome.missing.map(describeMissing);
  if (engine === 'onnxruntime' || device !== 'cpu') {
    const ops = [...new Set(outcome.missing.map((m) => m.op))].join(', ');
    throw new KpruneError('unsupported', `the model cannot be trained in onnxruntime: no backward rule for ${ops} (${missing.join('; ')})`, {
      file: model.path,
      suggestion: device !== 'cpu' ? 'use --device cpu (TF.js then trains the model)' : 'let kprune choose the engine (TF.js trains such models)',
    });
  }
  const result = await finetuneInTfjs(model, layers, start, masks, data, options, plan);
  return { ...result, missingOperators: missing };
}
