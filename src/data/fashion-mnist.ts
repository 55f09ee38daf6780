/**
 * The built-in "fashion-mnist": Debian's dataset-fashion-mnist files when installed, else the
 * subset bundled in fixtures/. Calibration draws from the train split and evaluation from the test
 * split, so the two never overlap.
 */
import path from 'node:path';
import { idxSource } from './idx-source.js';
import { statOrUndefined } from './read-file.js';
import type { Source } from './source.js';
import { PACKAGE_ROOT } from '../version.js';

export const SYSTEM_DIR = '/usr/share/datasets/fashion-mnist';
export const BUNDLED_DIR = path.join(PACKAGE_ROOT, 'fixtures', 'data', 'fashion-mnist');

const FILES = {
  train: ['train-images-idx3-ubyte.gz', 'train-labels-idx1-ubyte.gz'],
  test: ['t10k-images-idx3-ubyte.gz', 't10k-labels-idx1-ubyte.gz'],
} as const;

export interface FashionMnist {
  dir: string;
  bundled: boolean;
  train: Source;
  test: Source;
}

/** The first folder of candidates that has all four files. */
export async function findFashionMnist(candidates: string[] = [SYSTEM_DIR, BUNDLED_DIR]): Promise<string | undefined> {
  for (const dir of candidates) {
    const all = [...FILES.train, ...FILES.test];
    const present = await Promise.all(all.map(async (f) => (await statOrUndefined(path.join(dir, f)))?.isFile() ?? false));
    if (present.every(Boolean)) return dir;
  }
  return undefined;
}

export async function loadFashionMnist(dir: string): Promise<FashionMnist> {
  const bundled = dir === BUNDLED_DIR;
  const where = bundled ? `bundled subset ${dir}` : dir;
  const split = (name: 'train' | 'test') =>
    idxSource(path.join(dir, FILES[name][0]), { description: `fashion-mnist (${name} split, ${where})`, labelsFile: path.join(dir, FILES[name][1]) });
  const [train, test] = await Promise.all([split('train'), split('test')]);
  return { dir, bundled, train, test };
}
