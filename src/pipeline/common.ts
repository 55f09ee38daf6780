/** Small pieces shared by the pipeline commands. */
import { KpruneError } from '../errors.js';
import { LoadedModel } from '../formats/index.js';
import { concreteDims } from '../runtime/onnx-runtime.js';
import { parseInputShape } from './load.js';
import { ProgressListener } from './progress.js';

/** Runs one phase, recording its wall time in `timings` and announcing it to the listener. */
export async function timed<T>(timings: Record<string, number>, phase: string, onProgress: ProgressListener | undefined, f: () => Promise<T> | T): Promise<T> {
  onProgress?.({ phase });
  const t0 = performance.now();
  try {
    return await f();
  } finally {
    timings[phase] = Math.round(performance.now() - t0);
  }
}

/**
 * Input shapes for measuring runs: `--input-shape` when given, else the model's own with a dynamic
 * batch as 1. When neither works, null and the reason (figures that need them become unknown).
 */
export function resolveInputShapes(model: LoadedModel, inputShape?: string, imageSize?: { height?: number; width?: number }): { inputShapes: Map<string, number[]> | null; unknownReason: string } {
  try {
    const given = inputShape ? parseInputShape(inputShape, model.inputs.map((i) => i.name)) : sizedInputs(model, imageSize);
    return { inputShapes: new Map(model.inputs.map((i) => [i.name, concreteDims(i, given.get(i.name))])), unknownReason: '' };
  } catch (e) {
    if (inputShape || !(e instanceof KpruneError)) throw e;
    return { inputShapes: null, unknownReason: e.oneLine() };
  }
}

/**
 * Without --input-shape, the image size the data is resized to (--size) fills an image input's two
 * dynamic spatial dims (a TF.js [-1,-1,-1,3], an ONNX [N,3,H,W]): the samples measured are that size,
 * so MACs and latency are counted at it instead of being unknown.
 */
function sizedInputs(model: LoadedModel, size?: { height?: number; width?: number }): Map<string, number[]> {
  const out = new Map<string, number[]>();
  if (!size?.height || !size.width) return out;
  for (const input of model.inputs) {
    if (input.dims.length !== 4) continue;
    const dynamic = input.dims.map((d, i) => (i > 0 && !(typeof d === 'number' && d > 0) ? i : -1)).filter((i) => i >= 0);
    if (dynamic.length !== 2) continue;
    const spatial = [size.height, size.width];
    out.set(input.name, input.dims.map((d, i) => (i === 0 ? (typeof d === 'number' && d > 0 ? d : 1) : dynamic.includes(i) ? spatial[dynamic.indexOf(i)] : d as number)));
  }
  return out;
}

/** The input shapes with the batch dimension set, where the model leaves it dynamic. */
export function withBatch(shapes: Map<string, number[]>, model: LoadedModel, batch: number): Map<string, number[]> {
  return new Map([...shapes].map(([name, dims]) => {
    const spec = model.inputs.find((i) => i.name === name);
    const dynamic = spec && typeof spec.dims[0] !== 'number';
    return [name, dynamic ? [batch, ...dims.slice(1)] : dims];
  }));
}
