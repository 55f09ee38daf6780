/** An IDX images file (with its labels file beside it, when there is one) as a pool of samples. */
import path from 'node:path';
import { KpruneError } from '../errors.js';
import { readIdxFile } from './idx.js';
import { statOrUndefined } from './read-file.js';
import type { Source } from './source.js';

/** "train-images-idx3-ubyte.gz" -> "train-labels-idx1-ubyte.gz", beside it. */
export function labelsFileFor(imagesFile: string): string {
  const base = path.basename(imagesFile).replace('images', 'labels').replace('idx3', 'idx1');
  return path.join(path.dirname(imagesFile), base);
}

export interface IdxSourceOptions {
  /** Default "IDX <file> with labels <labels file>". */
  description?: string;
  /** Default: the sibling labels file when it exists. */
  labelsFile?: string;
}

export async function idxSource(imagesFile: string, options: IdxSourceOptions = {}): Promise<Source> {
  const images = await readIdxFile(imagesFile, 3);
  const [count, height, width] = images.dims;
  let labels: Int32Array | undefined;
  let description = options.description ?? `IDX ${imagesFile}`;
  const sibling = options.labelsFile ?? labelsFileFor(imagesFile);
  // A file name without "images" has itself as sibling: unlabelled.
  if (sibling !== imagesFile && (await statOrUndefined(sibling))?.isFile()) {
    const read = await readIdxFile(sibling, 1);
    if (read.dims[0] !== count) {
      throw new KpruneError('bad-data', `${read.dims[0]} labels for the ${count} images of ${path.basename(imagesFile)}`, { file: sibling });
    }
    labels = Int32Array.from(read.data);
    if (options.description === undefined) description += ` with labels ${path.basename(sibling)}`;
  }
  const per = height * width;
  return {
    description,
    file: imagesFile,
    count,
    kind: 'pixels',
    labels,
    natural: { height, width, channels: 1 },
    bind: () => (i) => ({ height, width, channels: 1, order: 'HWC', data: images.data.subarray(i * per, (i + 1) * per) }),
  };
}
