/**
 * Resource limits: the sizes a file may declare before kprune allocates or inflates anything of
 * that size. A hostile or broken file of a few kilobytes can declare gigabytes (a zip bomb, a PNG
 * header of 20000x20000, an input of 100000x100000); each declared size is checked here first, so
 * such a file is a clear error (exit 2) instead of gigabytes of memory or a crash.
 *
 * One table, one mechanism: every limit has a default and an environment variable that replaces it
 * (read at each check, so a library user or a test can set it at run time). The README's "Bad
 * input" section lists them.
 */
import { KpruneError } from '../errors.js';

export type LimitName = 'imagePixels' | 'dataBytes' | 'inputElements' | 'tensorBytes';

export interface LimitSpec {
  /** The environment variable that replaces the default. */
  env: string;
  default: number;
  /** What is counted, for messages: "pixels", "bytes", "elements". */
  unit: string;
}

export const LIMITS: Readonly<Record<LimitName, LimitSpec>> = {
  // Pillow's MAX_IMAGE_PIXELS (1 GiB / 4 / 3: it warns above this and refuses above twice it). Lower
  // than Pillow's refusal because pngjs holds the image as RGBA plus its inflated scanlines and a
  // copy without alpha: about 10 bytes a pixel, so this default peaks near 1 GB.
  imagePixels: { env: 'KPRUNE_MAX_IMAGE_PIXELS', default: 89_478_485, unit: 'pixels' },
  // One data array as decoded (.npy, an .npz entry, an IDX file after gunzip), one data file read
  // whole (an image), or one batched input for timing runs (--batch). Fashion-MNIST's train images are 47 MB; 1,000 ImageNet-sized samples
  // (3x224x224 float32) are 602 MB. A deflate stream inflates at most about 1,000-fold, so a 2 MB
  // zip bomb (up to ~2 GB) is refused at its header.
  dataBytes: { env: 'KPRUNE_MAX_DATA_BYTES', default: 1024 ** 3, unit: 'bytes' },
  // One model input at the shape kprune runs it (batch 1 unless the model fixes the batch), and one
  // preprocessed data sample: 2^24 = 64 MiB of float32, e.g. 3x2048x2048 fits, 1x8000x8000 does not.
  inputElements: { env: 'KPRUNE_MAX_INPUT_ELEMENTS', default: 2 ** 24, unit: 'elements' },
  // A weight tensor kprune builds from a smaller description (a sparse tensor made dense). Dense
  // tensors are bounded by the bytes of the file that holds them.
  tensorBytes: { env: 'KPRUNE_MAX_TENSOR_BYTES', default: 2 * 1024 ** 3, unit: 'bytes' },
};

/** The limit in force: the environment variable when set, else the default. */
export function limitValue(name: LimitName): number {
  const spec = LIMITS[name];
  const text = process.env[spec.env];
  if (text === undefined || text.trim() === '') return spec.default;
  const v = Number(text);
  if (!Number.isFinite(v) || v <= 0) {
    throw new KpruneError('usage', `${spec.env}="${text}" is not a positive number of ${spec.unit}`);
  }
  return v;
}

/**
 * Throws a 'limit' KpruneError when `value` (what the file declares) is above the limit. `what`
 * says what was measured, e.g. 'the image is 20000 x 20000' (the message goes on with
 * ': 400,000,000 pixels, over the limit of ...'); `otherwise` is another way out, for the suggestion.
 */
export function checkLimit(name: LimitName, value: number, what: string, file?: string, otherwise?: string): void {
  const max = limitValue(name);
  if (value <= max) return;
  const spec = LIMITS[name];
  throw new KpruneError('limit', `${what}: ${formatCount(value)} ${spec.unit}, over the limit of ${formatCount(max)} (${spec.env})`, {
    file, suggestion: `if that is intended, raise it: ${spec.env}=<${spec.unit}> in the environment${otherwise ? `; ${otherwise}` : ''}`,
  });
}

function formatCount(n: number): string {
  return Number.isSafeInteger(n) ? n.toLocaleString('en-US') : n.toPrecision(4);
}
