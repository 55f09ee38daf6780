/**
 * Executing ONNX models in onnxruntime-node, the runtime users deploy them in.
 */
import type * as ort from 'onnxruntime-node';
import { ortApi } from './ort.js';
import { KpruneError } from '../../errors.js';
import type { ElementType, InputSpec } from '../../model/inputs.js';

export interface SessionOptions {
  threads?: number;
}

export async function createSession(model: Uint8Array | string, options: SessionOptions = {}, file?: string): Promise<ort.InferenceSession> {
  try {
    const opts: ort.InferenceSession.SessionOptions = {
      intraOpNumThreads: options.threads ?? 0,
      interOpNumThreads: 1,
      // Fatal only: failures reach the user as one KpruneError line, not as C++ log spew.
      logSeverityLevel: 4,
      graphOptimizationLevel: 'all',
    };
    return typeof model === 'string' ? await ortApi().InferenceSession.create(model, opts) : await ortApi().InferenceSession.create(model, opts);
  } catch (e) {
    const why = e instanceof Error ? e.message.split('\n')[0] : String(e);
    throw new KpruneError('runtime', `onnxruntime cannot load the model: ${why}`, { file, cause: e });
  }
}

export function zeros(type: ElementType, dims: number[]): ort.Tensor {
  const n = dims.reduce((a, b) => a * b, 1);
  switch (type) {
    case 'float32': return new (ortApi().Tensor)('float32', new Float32Array(n), dims);
    case 'float64': return new (ortApi().Tensor)('float64', new Float64Array(n), dims);
    case 'float16': return new (ortApi().Tensor)('float16', new Uint16Array(n), dims);
    case 'int64': return new (ortApi().Tensor)('int64', new BigInt64Array(n), dims);
    case 'int32': return new (ortApi().Tensor)('int32', new Int32Array(n), dims);
    case 'uint8': return new (ortApi().Tensor)('uint8', new Uint8Array(n), dims);
    case 'int8': return new (ortApi().Tensor)('int8', new Int8Array(n), dims);
    case 'bool': return new (ortApi().Tensor)('bool', new Uint8Array(n), dims);
  }
}

/** Runs once on zero inputs and returns the dims of the requested outputs. */
export async function outputShapes(
  session: ort.InferenceSession,
  inputs: InputSpec[],
  shapes: Map<string, number[]>,
  wanted: string[],
): Promise<Map<string, number[]>> {
  const feeds: Record<string, ort.Tensor> = {};
  for (const spec of inputs) feeds[spec.name] = zeros(spec.type, shapes.get(spec.name)!);
  let results: ort.InferenceSession.OnnxValueMapType;
  try {
    results = await session.run(feeds, wanted);
  } catch (e) {
    const why = e instanceof Error ? e.message.split('\n')[0] : String(e);
    throw new KpruneError('runtime', `onnxruntime failed to run the model: ${why}`, { cause: e });
  }
  const out = new Map<string, number[]>();
  for (const name of wanted) {
    const t = results[name] as ort.Tensor | undefined;
    if (t) out.set(name, [...t.dims]);
    t?.dispose?.();
  }
  return out;
}
