/** Reading a data file, mapping the file system's refusals to KpruneErrors. */
import { open, readFile, stat } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { KpruneError } from '../errors.js';
import { checkLimit } from '../util/limits.js';

/** A whole data file (an image), after its size is checked against the data limit. */
export async function readBytes(file: string): Promise<Uint8Array> {
  let size: number;
  try {
    size = (await stat(file)).size;
  } catch (e) {
    throw fsError(e, file);
  }
  checkLimit('dataBytes', size, 'the file is', file);
  try {
    return await readFile(file);
  } catch (e) {
    throw fsError(e, file);
  }
}

/** The first `n` bytes of a file (fewer when it is shorter) and its size, without reading the rest. */
export async function readHead(file: string, n: number): Promise<{ head: Uint8Array; size: number }> {
  try {
    const fh = await open(file, 'r');
    try {
      const size = (await fh.stat()).size;
      const head = Buffer.alloc(Math.min(n, size));
      const { bytesRead } = await fh.read(head, 0, head.length, 0);
      return { head: head.subarray(0, bytesRead), size };
    } finally {
      await fh.close();
    }
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
