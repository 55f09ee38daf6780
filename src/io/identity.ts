/**
 * File identity: whether two paths name the same file however they are spelt. `./w.bin` and
 * `w.bin`, a path through a symlinked folder, a symlink to a file, and a hard link all name one
 * file; comparing `path.resolve` strings sees none of that. An identity is taken once per path:
 * the folder's real path plus the base name (the directory entry a rename would replace), the real
 * path of what the entry leads to, and device + inode when something exists there.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';

export type FileKind = 'file' | 'folder' | 'other' | 'missing';

export interface FileIdentity {
  /** The path as given, resolved against the working folder: for messages. */
  given: string;
  /** The directory entry the path names: its folder's real path plus its base name. */
  entry: string;
  /** What the entry leads to after following every link; `entry` when nothing is there. */
  real: string;
  /** "device:inode" of what the path leads to, when something exists there. */
  inode?: string;
  kind: FileKind;
  /** The entry itself is a symbolic link (dangling or not). */
  link: boolean;
}

/** The real path of the deepest folder of `dir` that exists, with the missing rest appended. */
async function realFolder(dir: string): Promise<string> {
  const missing: string[] = [];
  let at = dir;
  for (;;) {
    try {
      const real = await fs.realpath(at);
      return missing.reverse().reduce((p, part) => path.join(p, part), real);
    } catch {
      const up = path.dirname(at);
      if (up === at) return dir;
      missing.push(path.basename(at));
      at = up;
    }
  }
}

export async function identify(file: string): Promise<FileIdentity> {
  const given = path.resolve(file);
  const entry = path.join(await realFolder(path.dirname(given)), path.basename(given));
  const link = await fs.lstat(given).then((s) => s.isSymbolicLink(), () => false);
  try {
    const st = await fs.stat(given, { bigint: true });
    const kind: FileKind = st.isFile() ? 'file' : st.isDirectory() ? 'folder' : 'other';
    return { given, entry, real: await fs.realpath(given), inode: `${st.dev}:${st.ino}`, kind, link };
  } catch {
    return { given, entry, real: entry, kind: 'missing', link };
  }
}

/**
 * Whether two identities are one file: the same entry or the same real file (through any links),
 * or the same device and inode (hard links).
 */
export function sameFile(a: FileIdentity, b: FileIdentity): boolean {
  if (a.inode !== undefined && a.inode === b.inode) return true;
  return a.entry === b.entry || a.entry === b.real || a.real === b.entry || a.real === b.real;
}

/**
 * Whether `target` lies strictly inside the folder `root` (both absolute). A name that merely
 * starts with two dots (`..weights.bin`) is inside; only a `..` path segment climbs out.
 */
export function isInside(root: string, target: string): boolean {
  const rel = path.relative(root, target);
  return rel !== '' && rel !== '..' && !rel.startsWith(`..${path.sep}`) && !path.isAbsolute(rel);
}

/** Whether the file `a` lies inside the folder `tree`, by any of their spellings. */
export function withinFolder(a: FileIdentity, tree: FileIdentity): boolean {
  return [a.entry, a.real].some((p) => isInside(tree.real, p) || isInside(tree.entry, p)) || sameFile(a, tree);
}
