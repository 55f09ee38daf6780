/** Drawing samples and turning them into Datasets. */
import { KpruneError } from '../errors.js';
import { channelMean, sampleDims, writeSample } from './preprocess.js';
import type { Norm } from './resolve.js';
import { permutation } from '../util/random.js';
import type { Source } from './source.js';
import type { Dataset, Preprocess } from './types.js';

type Reader = ReturnType<Source['bind']>;

export interface Counts {
  calib: number;
  eval: number;
  /** Fewer than asked for. */
  short: boolean;
}

/**
 * Calibration and evaluation counts from one pool. When the pool is too small for both, evaluation
 * gets at most half of it and calibration the rest it wants; what calibration leaves goes back to
 * evaluation.
 */
export function splitCounts(pool: number, calib: number, evalCount: number): Counts {
  if (calib + evalCount <= pool) return { calib, eval: evalCount, short: false };
  let e = Math.min(evalCount, Math.floor(pool / 2));
  const c = Math.min(calib, pool - e);
  e = Math.min(evalCount, pool - c);
  return { calib: c, eval: e, short: true };
}

/** Disjoint calib and eval indices: the first and the next slices of one seeded permutation. */
export function drawDisjoint(pool: number, counts: Counts, seed: number): { calib: Uint32Array; eval: Uint32Array } {
  const p = permutation(pool, seed);
  return { calib: p.subarray(0, counts.calib), eval: p.subarray(counts.calib, counts.calib + counts.eval) };
}

/** Labels must be in [0, numClasses), checked over the whole source so a wrong data set fails whatever the seed. */
export function checkLabels(source: Source, numClasses: number | undefined): void {
  const { labels, classNames, file } = source;
  if (classNames !== undefined && numClasses !== undefined && classNames.length > numClasses) {
    throw new KpruneError('bad-data', `the folder has ${classNames.length} class folders but the model has ${numClasses} classes`, { file });
  }
  if (labels === undefined) return;
  for (let i = 0; i < labels.length; i++) {
    const l = labels[i];
    if (l < 0) throw new KpruneError('bad-data', `label ${l} of sample ${i} is negative`, { file });
    if (numClasses !== undefined && l >= numClasses) {
      throw new KpruneError('bad-data', `label ${l} of sample ${i} is outside the model's ${numClasses} classes [0, ${numClasses})`, { file });
    }
  }
}

/** read: from source.bind(target), called once by the caller so a misfit fails before any sample is read. */
export async function buildDataset(source: Source, read: Reader, target: Preprocess, norm: Norm, indices: ArrayLike<number>, description: string): Promise<Dataset> {
  const dims = sampleDims(target);
  const per = dims[0] * dims[1] * dims[2];
  const count = indices.length;
  let x: Float32Array;
  try {
    x = new Float32Array(count * per);
  } catch (e) {
    // The count is the caller's (--calib, --eval); each sample's size was checked against the limit.
    throw new KpruneError('bad-data', `${count} samples of ${dims.join(' x ')} values (${(count * per * 4).toLocaleString('en-US')} bytes) cannot be allocated: ${(e as Error).message}`, {
      file: source.file, suggestion: 'ask for fewer samples (--calib, --eval)', cause: e,
    });
  }
  for (let s = 0; s < count; s++) {
    writeSample(await read(indices[s]), target, norm, x, s * per);
    // NaN or infinity in one sample spreads through every statistic computed from the set.
    for (let i = s * per; i < (s + 1) * per; i++) {
      if (!Number.isFinite(x[i])) {
        throw new KpruneError('bad-data', `sample ${indices[s]} holds ${Number.isNaN(x[i]) ? 'NaN' : 'an infinite value'} after preprocessing`, {
          file: source.file, suggestion: 'the data must hold finite numbers only; check its scale (--scale, --mean, --std)',
        });
      }
    }
  }
  const dataset: Dataset = { source: description, count, sampleDims: dims, layout: target.layout, x, channelMean: channelMean(x, count, dims, target.layout) };
  if (source.labels !== undefined) {
    const labels = source.labels;
    dataset.labels = Int32Array.from({ length: count }, (_, s) => labels[indices[s]]);
  }
  if (source.classNames !== undefined) dataset.classNames = [...source.classNames];
  return dataset;
}
