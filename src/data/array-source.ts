/**
 * A .npy or .npz array as a pool of samples. x may be [N,H,W], [N,C,H,W] or [N,H,W,C]; which one is
 * decided against the model's input (see bind), since the array itself cannot say.
 */
import { KpruneError } from '../errors.js';
import { stat } from 'node:fs/promises';
import { readDeclared } from './declared-read.js';
import { NdArray, isNpy, isZip, npyDeclaredSize, parseNpy } from './npy.js';
import { fsError } from './read-file.js';
import { listZip } from './zip.js';
import type { RawImage, Source } from './source.js';
import type { Preprocess } from './types.js';

export async function npySource(file: string): Promise<Source> {
  const bytes = await readDeclared(file, { start: 0, end: await fileSize(file), compression: 'none' }, npyDeclaredSize(file), 'the .npy');
  return arraySource(parseNpy(bytes, file), undefined, file, `npy ${file}`);
}

/**
 * An .npz is opened by its table of contents; only x and y are read (an unused entry costs
 * nothing), each inflated only as far as its own header declares, after the data limit allows it.
 */
export async function npzSource(file: string): Promise<Source> {
  const entries = await listZip(file);
  const arrays = new Map(entries.filter((e) => e.name.endsWith('.npy')).map((e) => [e.name.slice(0, -4), e]));
  const get = async (name: string): Promise<NdArray | undefined> => {
    const entry = arrays.get(name);
    if (entry === undefined) return undefined;
    return parseNpy(await readDeclared(file, entry.stretch, npyDeclaredSize(file, name), `array ${name}`), file, name);
  };
  const x = await get('x');
  if (x === undefined) {
    const found = arrays.size === 0 ? 'none' : [...arrays.keys()].join(', ');
    throw new KpruneError('bad-data', `the .npz has no array named x (arrays: ${found})`, { file, suggestion: 'save it with np.savez(file, x=images, y=labels)' });
  }
  const y = await get('y');
  return arraySource(x, y, file, `npz ${file}${y === undefined ? '' : ' with labels y'}`);
}

async function fileSize(file: string): Promise<number> {
  try {
    return (await stat(file)).size;
  } catch (e) {
    throw fsError(e, file);
  }
}

/** By content, for files whose extension says nothing. */
export function sniffArrayFile(bytes: Uint8Array): 'npy' | 'npz' | undefined {
  return isNpy(bytes) ? 'npy' : isZip(bytes) ? 'npz' : undefined;
}

interface Interpretation {
  order: RawImage['order'];
  channels: number;
  height: number;
  width: number;
}

function arraySource(x: NdArray, y: NdArray | undefined, file: string, description: string): Source {
  if (x.dtype !== 'float32' && x.dtype !== 'float64' && x.dtype !== 'uint8') {
    throw new KpruneError('bad-data', `x has dtype ${x.dtype}; images must be float32, float64 or uint8 (0..255 pixels)`, { file });
  }
  if (x.shape.length !== 3 && x.shape.length !== 4) {
    throw new KpruneError('bad-data', `x has shape (${x.shape.join(', ')}); expected [N,H,W], [N,C,H,W] or [N,H,W,C]`, { file });
  }
  const count = x.shape[0];
  if (count === 0) throw new KpruneError('bad-data', 'x has no samples (its first dim is 0)', { file });
  const labels = y === undefined ? undefined : toLabels(y, count, file);
  const per = x.shape.slice(1);
  const size = per.reduce((a, b) => a * b, 1);
  return {
    description,
    file,
    count,
    kind: x.dtype === 'uint8' ? 'pixels' : 'values',
    labels,
    natural: naturalOf(per),
    bind(target) {
      const { order, channels, height, width } = interpret(per, target, file);
      return (i) => ({ order, channels, height, width, data: x.data.subarray(i * size, (i + 1) * size) });
    },
  };
}

/** The array's own size and channels, for models that leave them dynamic (channels-first preferred, as ONNX). */
function naturalOf(per: number[]): Source['natural'] {
  if (per.length === 2) return { height: per[0], width: per[1], channels: 1 };
  if (per[0] === 1 || per[0] === 3) return { channels: per[0], height: per[1], width: per[2] };
  if (per[2] === 1 || per[2] === 3) return { height: per[0], width: per[1], channels: per[2] };
  return {};
}

/**
 * The model's exact per-sample dims are taken as they are. Otherwise the candidate layouts are
 * ranked: right channels and size, then convertible channels (1 <-> 3) and right size, then right
 * channels (resized), then convertible channels (resized); ties go to the model's own layout.
 */
function interpret(per: number[], target: Preprocess, file: string): Interpretation {
  const { channels: C, height: H, width: W, layout } = target;
  const modelDims = layout === 'NCHW' ? [C, H, W] : [H, W, C];
  if (per.length === 3 && per.every((d, i) => d === modelDims[i])) {
    return { order: layout === 'NCHW' ? 'CHW' : 'HWC', channels: C, height: H, width: W };
  }
  const chw: Interpretation = { order: 'CHW', channels: per[0], height: per[1], width: per[2] };
  const hwc: Interpretation = { order: 'HWC', channels: per[2], height: per[0], width: per[1] };
  const candidates: Interpretation[] = per.length === 2
    ? [{ order: 'HWC', channels: 1, height: per[0], width: per[1] }]
    : layout === 'NCHW' ? [chw, hwc] : [hwc, chw];
  const sized = (c: Interpretation) => c.height === H && c.width === W;
  const convertible = (c: Interpretation) => c.channels === 1 || c.channels === 3;
  const tests: ((c: Interpretation) => boolean)[] = [
    (c) => c.channels === C && sized(c),
    (c) => convertible(c) && sized(c),
    (c) => c.channels === C,
    convertible,
  ];
  for (const t of tests) {
    const hit = candidates.find(t);
    if (hit !== undefined) return hit;
  }
  const shape = `[${per.join(', ')}]`;
  // A channel axis smaller than both spatial ones looks like an image with the wrong channel count.
  const imageLike = candidates.find((c) => c.channels < Math.min(c.height, c.width));
  if (imageLike !== undefined) {
    throw new KpruneError('bad-data', `x has ${imageLike.channels} channels per sample (per-sample dims ${shape}); they cannot be mapped to the model's ${C} (only 1 and 3 convert to each other)`, { file });
  }
  throw new KpruneError('bad-data', `x has per-sample dims ${shape}, which match neither the model's [${modelDims.join(', ')}] (${layout}) nor an image layout [H,W], [C,H,W] or [H,W,C] with 1 or 3 channels`, { file });
}

function toLabels(y: NdArray, count: number, file: string): Int32Array {
  if (y.dtype === 'float32' || y.dtype === 'float64') {
    throw new KpruneError('bad-data', `y has dtype ${y.dtype}; labels must be integers (int32, int64 or uint8)`, { file });
  }
  const flat = y.shape.length === 1 || (y.shape.length === 2 && y.shape[1] === 1);
  if (!flat || y.shape[0] !== count) {
    throw new KpruneError('bad-data', `y has shape (${y.shape.join(', ')}); expected (${count},), one label per sample of x`, { file });
  }
  const out = new Int32Array(count);
  for (let i = 0; i < count; i++) {
    const v = y.data[i];
    if (v < -0x80000000 || v > 0x7fffffff) throw new KpruneError('bad-data', `label ${v} of sample ${i} is out of range`, { file });
    out[i] = v;
  }
  return out;
}
