/** loadData: a data spec (built-in name, IDX, npy/npz, image folder) to calibration and evaluation sets. */
import path from 'node:path';
import { KpruneError } from '../errors.js';
import { npySource, npzSource, sniffArrayFile } from './array-source.js';
import { BUNDLED_DIR, SYSTEM_DIR, findFashionMnist, loadFashionMnist } from './fashion-mnist.js';
import { idxSource } from './idx-source.js';
import { imageFolderSource } from './image-folder.js';
import { permutation } from '../util/random.js';
import { readHead, statOrUndefined } from './read-file.js';
import { resolvePreprocess } from './resolve.js';
import type { Source } from './source.js';
import { buildDataset, checkLabels, drawDisjoint, splitCounts } from './split.js';
import type { DataSplit, LoadDataOptions } from './types.js';

/** Names that are data sets rather than paths; "./fashion-mnist" means a folder of that name. */
export const BUILTIN_DATASETS = ['fashion-mnist'] as const;

export async function loadData(spec: string, options: LoadDataOptions): Promise<DataSplit> {
  checkCounts(spec, options);
  if (spec === 'fashion-mnist') return loadBuiltinFashionMnist(options);
  const source = await openSource(spec);
  const { target, norm } = resolvePreprocess({ inputDims: options.inputDims, preset: options.preset, explicit: options.preprocess, natural: source.natural, file: spec });
  checkLabels(source, options.numClasses);
  const read = source.bind(target);
  const counts = splitCounts(source.count, options.calib, options.eval);
  const drawn = drawDisjoint(source.count, counts, options.seed);
  const note = counts.short
    ? `${counts.calib + counts.eval} of ${source.count} samples; calib ${counts.calib}, eval ${counts.eval} (asked for ${options.calib} + ${options.eval}), seed ${options.seed}`
    : `calib ${counts.calib} + eval ${counts.eval} of ${source.count} samples, disjoint, seed ${options.seed}`;
  const description = `${source.description}: ${note}`;
  const n = norm[source.kind];
  return {
    calib: await buildDataset(source, read, target, n, drawn.calib, description),
    eval: await buildDataset(source, read, target, n, drawn.eval, description),
  };
}

async function loadBuiltinFashionMnist(options: LoadDataOptions): Promise<DataSplit> {
  const dir = await findFashionMnist();
  if (dir === undefined) {
    throw new KpruneError('not-found', `fashion-mnist: neither ${SYSTEM_DIR} nor the bundled subset ${BUNDLED_DIR} has the four IDX files`, { file: SYSTEM_DIR, suggestion: 'install the Debian package dataset-fashion-mnist' });
  }
  const { train, test } = await loadFashionMnist(dir);
  const { target, norm } = resolvePreprocess({ inputDims: options.inputDims, preset: options.preset, explicit: options.preprocess, natural: train.natural, file: dir });
  const draw = async (source: Source, wanted: number) => {
    checkLabels(source, options.numClasses);
    const n = Math.min(wanted, source.count);
    const indices = permutation(source.count, options.seed).subarray(0, n);
    const short = n < wanted ? ` (asked for ${wanted})` : '';
    return buildDataset(source, source.bind(target), target, norm[source.kind], indices, `${source.description}: ${n} of ${source.count} samples${short}, seed ${options.seed}`);
  };
  return { calib: await draw(train, options.calib), eval: await draw(test, options.eval) };
}

async function openSource(spec: string): Promise<Source> {
  const st = await statOrUndefined(spec);
  if (st === undefined) {
    throw new KpruneError('not-found', 'no such file or folder', { file: spec, suggestion: `a data spec is ${BUILTIN_DATASETS.join(', ')}, an IDX images file, a .npy/.npz file or a folder of images` });
  }
  if (st.isDirectory()) return imageFolderSource(spec);
  const name = path.basename(spec).toLowerCase();
  if (name.endsWith('.npy')) return npySource(spec);
  if (name.endsWith('.npz')) return npzSource(spec);
  if (/idx3-ubyte(\.gz)?$/.test(name)) return idxSource(spec);
  // An unusual name: go by content.
  const kind = sniffArrayFile((await readHead(spec, 8)).head);
  if (kind === 'npy') return npySource(spec);
  if (kind === 'npz') return npzSource(spec);
  throw new KpruneError('bad-data', 'not a data file kprune reads', { file: spec, suggestion: 'use an IDX images file (*-images-idx3-ubyte[.gz]), a .npy/.npz file or a folder of PNG/JPEG images' });
}

function checkCounts(spec: string, o: LoadDataOptions): void {
  for (const [name, v] of [['calib', o.calib], ['eval', o.eval]] as const) {
    if (!Number.isInteger(v) || v < 0) throw new KpruneError('usage', `the ${name} sample count must be a non-negative integer, not ${v}`, { file: spec });
  }
  if (!Number.isFinite(o.seed)) throw new KpruneError('usage', `the seed must be a number, not ${o.seed}`, { file: spec });
  if (o.numClasses !== undefined && (!Number.isInteger(o.numClasses) || o.numClasses <= 0)) {
    throw new KpruneError('usage', `numClasses must be a positive integer, not ${o.numClasses}`, { file: spec });
  }
}
