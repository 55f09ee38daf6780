/**
 * An onnxruntime session over one segment of a graph (see src/formats/onnx/segments.ts): fed named
 * values of any element type, returning named values, nothing converted on the way.
 */
import type * as ort from 'onnxruntime-node';
import { ortApi } from './ort.js';
import type { CachedValue } from '../../core/recover/propagation.js';
import { KpruneError } from '../../errors.js';
import { createSession } from './session.js';

export interface SegmentSession {
  run(feeds: Map<string, CachedValue>, fetch: string[]): Promise<Map<string, CachedValue>>;
  release(): Promise<void>;
}

export async function openSegmentSession(bytes: Uint8Array, file: string): Promise<SegmentSession> {
  const session = await createSession(bytes, {}, file);
  return {
    async run(feeds, fetch) {
      const input: Record<string, ort.Tensor> = {};
      for (const [name, v] of feeds) input[name] = new (ortApi().Tensor)(v.type as ort.Tensor.Type, v.data as ort.Tensor.DataType, v.dims);
      let results: ort.InferenceSession.OnnxValueMapType;
      try {
        results = await session.run(input, fetch);
      } catch (e) {
        const why = e instanceof Error ? e.message.split('\n')[0] : String(e);
        throw new KpruneError('runtime', `onnxruntime failed to run a segment of the model: ${why}`, { file, cause: e });
      }
      const out = new Map<string, CachedValue>();
      for (const name of fetch) {
        const t = results[name] as ort.Tensor;
        out.set(name, { type: t.type, dims: [...t.dims], data: t.data as CachedValue['data'] });
      }
      return out;
    },
    release: () => session.release(),
  };
}
