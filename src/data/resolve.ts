/**
 * Turning the model's input dims, a preset and explicit options into one Preprocess. Explicit
 * options win over the preset, which wins over defaults from the input dims, except where the model
 * fixes a dim: a fixed size or channel count cannot be overridden (the model would reject the
 * tensor), so an explicit option that contradicts it is a usage error, and a preset simply yields.
 */
import { KpruneError } from '../errors.js';
import { PRESETS } from './presets.js';
import { checkLimit } from '../util/limits.js';
import type { Source, ValueKind } from './source.js';
import type { ChannelLayout, Preprocess, PresetName } from './types.js';

/** Scale, mean and std expanded to one value per channel. */
export interface Norm {
  scale: number;
  mean: number[];
  std: number[];
}

export interface Resolved {
  target: Preprocess;
  /** The normalisation for each kind of source ('values' only gets what was given explicitly). */
  norm: Record<ValueKind, Norm>;
}

export interface ResolveInput {
  inputDims: (number | string)[];
  preset?: PresetName;
  explicit?: Partial<Preprocess>;
  natural: Source['natural'];
  /** The data file or folder, for error messages. */
  file: string;
}

const fixed = (d: number | string | undefined): number | undefined => (typeof d === 'number' && d > 0 ? d : undefined);
const isImageChannels = (c: number | undefined): boolean => c === 1 || c === 3;

export function resolvePreprocess({ inputDims, preset, explicit = {}, natural, file }: ResolveInput): Resolved {
  const dimsText = `[${inputDims.join(', ')}]`;
  if (inputDims.length !== 4) {
    throw new KpruneError('unsupported', `the model input ${dimsText} is not a 4-D image tensor; data can only be fed to [N,C,H,W] or [N,H,W,C] inputs`, { file });
  }
  if (preset !== undefined && !(preset in PRESETS)) {
    throw new KpruneError('usage', `unknown preset "${String(preset)}" (known: ${Object.keys(PRESETS).join(', ')})`, { file });
  }
  const fromPreset = preset === undefined ? {} : PRESETS[preset];
  const layout: ChannelLayout = explicit.layout ?? fromPreset.layout ?? inferLayout(inputDims);
  const [cDim, hDim, wDim] = layout === 'NCHW' ? [inputDims[1], inputDims[2], inputDims[3]] : [inputDims[3], inputDims[1], inputDims[2]];

  const pick = (what: 'height' | 'width' | 'channels', modelDim: number | string | undefined): number | undefined => {
    const model = fixed(modelDim);
    const given = explicit[what];
    if (model !== undefined) {
      if (given !== undefined && given !== model) {
        throw new KpruneError('usage', `${what} ${given} was asked for, but the model input ${dimsText} (${layout}) fixes it at ${model}`, { file });
      }
      return model;
    }
    return given ?? fromPreset[what] ?? natural[what];
  };

  const modelChannels = fixed(cDim);
  if (modelChannels !== undefined && !isImageChannels(modelChannels)) {
    throw new KpruneError('unsupported', `the model input ${dimsText} (${layout}) has ${modelChannels} channels; data can be fed to 1- or 3-channel inputs only`, { file });
  }
  // 3 when nothing says: most dynamic-channel image models are RGB.
  const channels = pick('channels', cDim) ?? 3;
  if (!isImageChannels(channels)) throw new KpruneError('usage', `channels must be 1 or 3, not ${channels}`, { file });
  const height = pick('height', hDim);
  const width = pick('width', wDim);
  if (height === undefined || width === undefined) {
    throw new KpruneError('usage', `the model input ${dimsText} has a dynamic image size and nothing gives one`, { file, suggestion: 'give the size with --size HxW, or a preset' });
  }
  for (const [name, v] of [['height', height], ['width', width]] as const) {
    if (!Number.isInteger(v) || v <= 0) throw new KpruneError('usage', `${name} must be a positive integer, not ${v}`, { file });
  }
  // Every drawn sample is made at this size: check it before the first one is allocated.
  checkLimit('inputElements', channels * height * width, `one sample at ${channels} x ${height} x ${width} (channels x height x width)`, file);

  const pixels: Norm = {
    scale: explicit.scale ?? fromPreset.scale ?? 1 / 255,
    mean: perChannel('mean', explicit.mean ?? fromPreset.mean, 0, channels, file),
    std: perChannel('std', explicit.std ?? fromPreset.std, 1, channels, file),
  };
  // Float arrays are taken to be in the model's range already: a preset's pixel normalisation
  // would apply it twice, so only explicit options touch them.
  const values: Norm = {
    scale: explicit.scale ?? 1,
    mean: perChannel('mean', explicit.mean, 0, channels, file),
    std: perChannel('std', explicit.std, 1, channels, file),
  };
  for (const n of [pixels, values]) {
    if (!Number.isFinite(n.scale)) throw new KpruneError('usage', `scale must be a finite number, not ${n.scale}`, { file });
    if (n.std.some((s) => s === 0 || !Number.isFinite(s))) throw new KpruneError('usage', `std must be non-zero finite numbers, not [${n.std.join(', ')}]`, { file });
    if (n.mean.some((m) => !Number.isFinite(m))) throw new KpruneError('usage', `mean must be finite numbers, not [${n.mean.join(', ')}]`, { file });
  }
  const resize = explicit.resize ?? fromPreset.resize ?? 'stretch';
  const crop = explicit.crop ?? fromPreset.crop ?? 1;
  const interpolation = explicit.interpolation ?? fromPreset.interpolation ?? 'bilinear';
  if (resize !== 'stretch' && resize !== 'shorter') throw new KpruneError('usage', `resize must be stretch or shorter, not ${String(resize)}`, { file });
  if (!(crop > 0 && crop <= 1)) throw new KpruneError('usage', `crop must be a share in (0, 1], not ${crop}`, { file, suggestion: 'e.g. --crop 0.875 keeps the centre 224 of 256' });
  if (!['bilinear', 'nearest', 'area'].includes(interpolation)) throw new KpruneError('usage', `interpolation must be bilinear, nearest or area, not ${String(interpolation)}`, { file });
  return {
    target: { height, width, channels, layout, scale: pixels.scale, mean: pixels.mean, std: pixels.std, resize, crop, interpolation },
    norm: { pixels, values },
  };
}

/**
 * [N, C, H, W] with C of 1 or 3 is NCHW; [N, H, W, C] with C of 1 or 3 and dim 1 not is NHWC;
 * anything undecidable defaults to NCHW, the ONNX convention.
 */
export function inferLayout(dims: (number | string)[]): ChannelLayout {
  if (isImageChannels(fixed(dims[1]))) return 'NCHW';
  if (isImageChannels(fixed(dims[3]))) return 'NHWC';
  return 'NCHW';
}

/** One value per channel; a single value is broadcast (e.g. the fashion-mnist preset on an RGB model). */
function perChannel(what: 'mean' | 'std', values: number[] | undefined, fill: number, channels: number, file: string): number[] {
  if (values === undefined) return new Array<number>(channels).fill(fill);
  if (values.length === channels) return [...values];
  if (values.length === 1) return new Array<number>(channels).fill(values[0]);
  throw new KpruneError('usage', `${what} has ${values.length} values [${values.join(', ')}] but the model takes ${channels} channel${channels === 1 ? '' : 's'}`, { file });
}
