/** Reading a data file, mapping the file system's refusals to KpruneErrors. */
import { readFile, stat } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { KpruneError } from '../errors.js';

export async function readBytes(file: string): Promise<Uint8Array> {
  try {
    return await readFile(file);
  } catch (e) {
    throw fsError(e, file);
  }
}

/** stat, or undefined when the path does not exist. */
export async function statOrUndefined(file: string): Promise<Stats | undefined> {
  try {
    return await stat(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw fsError(e, file);
  }
}

export function fsError(e: unknown, file: string): KpruneError {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return new KpruneError('not-found', 'no such file or folder', { file, cause: e });
  return new KpruneError('io', `cannot read: ${(e as Error).message}`, { file, cause: e });
}
