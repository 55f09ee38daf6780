/**
 * A model's inputs as every format and runtime describes them: a name, dims that may be symbolic,
 * and an element type; and the concrete dims a run at a given shape uses.
 */
import { KpruneError } from '../errors.js';

/** Where the channel axis sits in an image tensor (a model's input, a convolution's values). */
export type ChannelLayout = 'NCHW' | 'NHWC';

export type ElementType = 'float32' | 'float16' | 'float64' | 'int64' | 'int32' | 'uint8' | 'int8' | 'bool';

export interface InputSpec {
  name: string;
  /** A number, or the symbolic name of a dynamic dimension. */
  dims: (number | string)[];
  type: ElementType;
}

/** Concrete dims for an input: `override` if given, else the model's, with a dynamic batch as 1. */
export function concreteDims(spec: InputSpec, override?: number[]): number[] {
  if (override) {
    if (override.length !== spec.dims.length) {
      throw new KpruneError('usage', `--input-shape for "${spec.name}" has ${override.length} dims, the model's input has ${spec.dims.length}`);
    }
    return override;
  }
  return spec.dims.map((d, i) => {
    if (typeof d === 'number' && d > 0) return d;
    if (i === 0) return 1;
    throw new KpruneError('usage', `input "${spec.name}" has a dynamic dimension "${d}" at axis ${i}`, {
      suggestion: `pass --input-shape, e.g. --input-shape ${spec.dims.map((x, j) => (typeof x === 'number' && x > 0 ? x : j === 0 ? 1 : 224)).join(',')}`,
    });
  });
}
