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
  // Recovery may have re-solved linear layers after the reshaped ones (compensation): they are not
  // trained, but the training graph reads every other weight from the model file, so it would train
  // against the uncompensated layers. TF.js takes them as frozen overrides; train there until the
  // onnxruntime graph takes them too.
  const layerIds = new Set(layers.map((l) => l.id));
  const frozen = [...start.keys()].filter((k) => !layerIds.has(k));
  if (frozen.length > 0) {
    const note = `the weights of ${frozen.length} compensated linear layer${frozen.length === 1 ? '' : 's'} (${frozen.slice(0, 3).join(', ')}${frozen.length > 3 ? ', ...' : ''}) are not yet fed to the onnxruntime training graph`;
    if (engine === 'onnxruntime' || device !== 'cpu') {
      throw new KpruneError('unsupported', `the model cannot be trained in onnxruntime: ${note}`, { file: model.path, suggestion: 'pass --compensate none, or let kprune choose the engine' });
    }
    return { ...(await finetuneInTfjs(model, layers, start, masks, data, options, plan)), engineNote: note };
  }
  const outcome = await finetuneInOrt(model, layers, start, masks, data, options, plan);
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
