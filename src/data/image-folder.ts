/**
 * A folder of PNG/JPEG images as a pool of samples. With class sub-folders it is labelled as
 * torchvision's ImageFolder does it: classes sorted by name, label = index, each class folder
 * searched recursively. A flat folder is unlabelled.
 */
import type { Dirent } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { KpruneError } from '../errors.js';
import { ImageFormat, decodeImage, imageFormat } from './image-decode.js';
import { fsError, readBytes } from './read-file.js';
import type { Source } from './source.js';

interface Entry {
  file: string;
  format: ImageFormat;
  label: number;
}

export async function imageFolderSource(dir: string): Promise<Source> {
  const top = await list(dir);
  const classNames = top.dirs;
  const entries: Entry[] = [];
  if (classNames.length > 0) {
    if (top.images.length > 0) {
      throw new KpruneError('bad-data', `the folder has both images (${top.images[0]}, ...) and class folders (${classNames[0]}, ...); use one layout`, { file: dir, suggestion: 'labelled: only class folders at the top; unlabelled: only images' });
    }
    for (let label = 0; label < classNames.length; label++) {
      for (const file of await walk(path.join(dir, classNames[label]))) entries.push({ file, format: imageFormat(file) as ImageFormat, label });
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

/** Sub-folders and image files of a folder, sorted by name (code points, like Python's sorted); hidden entries skipped. */
async function list(dir: string): Promise<{ dirs: string[]; images: string[] }> {
  let dirents: Dirent[];
  try {
    dirents = await readdir(dir, { withFileTypes: true });
  } catch (e) {
    throw fsError(e, dir);
  }
  const dirs: string[] = [];
  const images: string[] = [];
  for (const d of dirents) {
    if (d.name.startsWith('.')) continue;
    let isDir = d.isDirectory();
    let isFile = d.isFile();
    if (d.isSymbolicLink()) {
      const s = await stat(path.join(dir, d.name)).catch(() => undefined); // a dangling link is skipped
      isDir = s?.isDirectory() ?? false;
      isFile = s?.isFile() ?? false;
    }
    if (isDir) dirs.push(d.name);
    else if (isFile && imageFormat(d.name) !== undefined) images.push(d.name);
  }
  const byName = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
  return { dirs: dirs.sort(byName), images: images.sort(byName) };
}

async function walk(dir: string): Promise<string[]> {
  const { dirs, images } = await list(dir);
  const out = images.map((n) => path.join(dir, n));
  for (const d of dirs) out.push(...(await walk(path.join(dir, d))));
  return out;
}
