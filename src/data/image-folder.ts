/**
 * A folder of PNG/JPEG images as a pool of samples. With class sub-folders it is labelled as
 * torchvision's ImageFolder does it: classes sorted by name, label = index, each class folder
 * searched recursively. A flat folder is unlabelled.
 */
import type { Dirent } from 'node:fs';
import { readdir, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { KpruneError } from '../errors.js';
import { ImageFormat, decodeImage, imageFormat } from './image-decode.js';
import { fsError, readBytes } from './read-file.js';
import type { Source } from './source.js';
import { pushAll } from '../util/arrays.js';

interface Entry {
  file: string;
  format: ImageFormat;
  label: number;
}

export async function imageFolderSource(dir: string): Promise<Source> {
  let root: string;
  try {
    root = await realpath(dir);
  } catch (e) {
    throw fsError(e, dir);
  }
  const walker = new Walker(dir, root);
  const top = await walker.list(dir);
  const classNames = top.dirs;
  const entries: Entry[] = [];
  if (classNames.length > 0) {
    if (top.images.length > 0) {
      throw new KpruneError('bad-data', `the folder has both images (${top.images[0]}, ...) and class folders (${classNames[0]}, ...); use one layout`, { file: dir, suggestion: 'labelled: only class folders at the top; unlabelled: only images' });
    }
    for (let label = 0; label < classNames.length; label++) {
      for (const file of await walker.walk(path.join(dir, classNames[label]))) entries.push({ file, format: imageFormat(file) as ImageFormat, label });
    }
  } else {
    for (const name of top.images) entries.push({ file: path.join(dir, name), format: imageFormat(name) as ImageFormat, label: -1 });
  }
  if (entries.length === 0) {
    throw new KpruneError('bad-data', `no PNG or JPEG images in the folder${classNames.length > 0 ? ` or its ${classNames.length} class folders` : ''}`, { file: dir });
  }
  const labelled = classNames.length > 0;
  return {
    description: labelled ? `image folder ${dir} (${classNames.length} classes)` : `image folder ${dir} (unlabelled)`,
    file: dir,
    count: entries.length,
    kind: 'pixels',
    labels: labelled ? Int32Array.from(entries, (e) => e.label) : undefined,
    classNames: labelled ? classNames : undefined,
    natural: {},
    bind: () => async (i) => {
      const e = entries[i];
      return decodeImage(await readBytes(e.file), e.format, e.file);
    },
  };
}

/**
 * Lists and walks the folder. Links are followed only inside it (as for a model's external data: a
 * link out of the folder is refused), and a folder is read once: two `loop -> .` links would
 * otherwise be walked until the path is too long, doubling at every level.
 */
class Walker {
  /** Real paths of the folders read so far. */
  private readonly seen = new Set<string>();

  constructor(private readonly dir: string, private readonly root: string) {
    this.seen.add(root);
  }

  /** Sub-folders and image files of a folder, sorted by name (code points, like Python's sorted); hidden entries skipped. */
  async list(folder: string): Promise<{ dirs: string[]; images: string[] }> {
    let dirents: Dirent[];
    try {
      dirents = await readdir(folder, { withFileTypes: true });
    } catch (e) {
      throw fsError(e, folder);
    }
    const dirs: string[] = [];
    const images: string[] = [];
    for (const d of dirents) {
      if (d.name.startsWith('.')) continue;
      let isDir = d.isDirectory();
      let isFile = d.isFile();
      if (d.isSymbolicLink()) {
        const link = path.join(folder, d.name);
        const real = await realpath(link).catch(() => undefined); // a dangling link is skipped
        if (real === undefined) continue;
        const rel = path.relative(this.root, real);
        if (rel.startsWith('..') || path.isAbsolute(rel)) {
          throw new KpruneError('unsafe-path', `the link "${path.relative(this.dir, link)}" points outside the data folder (to ${real})`, {
            file: link, suggestion: 'links inside a data folder must stay inside it; copy the images in, or pass the folder that holds them',
          });
        }
        const s = await stat(link).catch(() => undefined);
        isDir = s?.isDirectory() ?? false;
        isFile = s?.isFile() ?? false;
      }
      if (isDir) dirs.push(d.name);
      else if (isFile && imageFormat(d.name) !== undefined) images.push(d.name);
    }
    const byName = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
    return { dirs: dirs.sort(byName), images: images.sort(byName) };
  }

  /** Every image under a folder, depth first in name order. */
  async walk(folder: string): Promise<string[]> {
    const real = await realpath(folder).catch((e: unknown) => { throw fsError(e, folder); });
    if (this.seen.has(real)) {
      throw new KpruneError('bad-data', `"${path.relative(this.dir, folder)}" is a folder already read (${real}): links make a loop, or reach one folder twice`, {
        file: folder, suggestion: 'remove the link, so that every image is read once',
      });
    }
    this.seen.add(real);
    const { dirs, images } = await this.list(folder);
    const out = images.map((n) => path.join(folder, n));
    for (const d of dirs) pushAll(out, await this.walk(path.join(folder, d)));
    return out;
  }
}
