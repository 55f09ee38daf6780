/** Small pieces shared by the pipeline commands. */
import { KpruneError } from '../errors.js';
import { LoadedModel } from '../models/index.js';
import { concreteDims } from '../model/inputs.js';
import { parseInputShape } from './load.js';
import { ProgressListener } from './progress.js';
import { checkLimit } from '../util/limits.js';

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
 * batch as 1 (and without it, the data's image size for dynamic spatial dims). When neither works, null and the reason (figures that need them become unknown).
 * Runs allocate tensors of these shapes (and activations larger still), so each input is checked
 * against the input-size limit first, unless `forRuns` is false (nothing will run).
 */
export function resolveInputShapes(model: LoadedModel, inputShape?: string, imageSize?: { height?: number; width?: number }, forRuns = true): { inputShapes: Map<string, number[]> | null; unknownReason: string } {
  let inputShapes: Map<string, number[]>;
  try {
    const given = inputShape ? parseInputShape(inputShape, model.inputs.map((i) => i.name)) : sizedInputs(model, imageSize);
    inputShapes = new Map(model.inputs.map((i) => [i.name, concreteDims(i, given.get(i.name))]));
  } catch (e) {
    if (inputShape || !(e instanceof KpruneError)) throw e;
    return { inputShapes: null, unknownReason: e.oneLine() };
  }
  if (forRuns) {
    for (const [name, dims] of inputShapes) {
      const from = inputShape ? '--input-shape gives' : 'the model declares';
      checkLimit('inputElements', dims.reduce((a, b) => a * b, 1), `${from} input "${name}" as [${dims.join(', ')}]`, model.path,
        inputShape ? undefined : 'or give a smaller --input-shape, or --no-run (nothing is run, nothing of that size is made)');
    }
  }
  return { inputShapes, unknownReason: '' };
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
    const batched = dynamic ? [batch, ...dims.slice(1)] : dims;
    // Timing runs allocate inputs of this shape. Each sample was checked against the input limit;
    // the batch of them is data kprune makes, held in memory like a data array.
    if (batched !== dims) checkLimit('dataBytes', 4 * batched.reduce((a, b) => a * b, 1), `--batch ${batch} makes input "${name}" [${batched.join(', ')}], in float32`, model.path, 'or a smaller --batch');
    return [name, batched];
  }));
}
