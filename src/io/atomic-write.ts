/**
 * Writing a set of files so that either all of them appear complete or none does: each is written
 * to a temporary name beside its target, flushed, then renamed into place; on any failure the
 * temporaries are removed. The last file of the list is renamed last (put the model there, its
 * data files first, so a reader never sees a model whose data is missing).
 *
 * With KPRUNE_WRITE_LOG set, every file written is appended to that file, one path per line: an
 * audit trail, which the test suite uses to hand every model kprune writes to independent checkers.
 */
import { promises as fs, rmSync } from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { KpruneError } from '../errors.js';

/** Temporary files being written right now, so an interrupted process can remove them. */
const inFlight = new Set<string>();

/**
 * Removes every temporary file of writes in progress, synchronously: for signal handlers
 * (SIGINT/SIGTERM), which must leave no partial output behind. The library never installs them
 * itself; the CLI does.
 */
export function removeWritesInProgress(): void {
  for (const tmp of inFlight) rmSync(tmp, { force: true });
  inFlight.clear();
}

/** A chunk given as a function is made only when its turn to be written comes, then dropped. */
export type Chunk = Uint8Array | (() => Uint8Array);

/**
 * Registers a temporary file written outside `writeFilesAtomically` (a probe model beside its
 * input), so that an interrupted run removes it too; the returned function removes it.
 */
export function trackTemporary(file: string): () => Promise<void> {
  inFlight.add(file);
  return async () => {
    await fs.rm(file, { force: true });
    inFlight.delete(file);
  };
}

export interface PendingFile {
  path: string;
  /** The bytes, or chunks in order: a file far larger than memory is written one chunk at a time. */
  data: Uint8Array | Chunk[];
}

/** FileHandle.write may write less than asked (and one call takes at most 2 GiB). */
async function writeAll(handle: fs.FileHandle, bytes: Uint8Array): Promise<void> {
  for (let at = 0; at < bytes.length;) {
    const { bytesWritten } = await handle.write(bytes, at, Math.min(bytes.length - at, 0x40000000));
    at += bytesWritten;
  }
}

export async function writeFilesAtomically(files: PendingFile[]): Promise<void> {
  const temps: { tmp: string; target: string }[] = [];
  try {
    for (const f of files) {
      const target = path.resolve(f.path);
      const tmp = path.join(path.dirname(target), `.${path.basename(target)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
      temps.push({ tmp, target });
      inFlight.add(tmp);
      const handle = await fs.open(tmp, 'wx');
      try {
        for (const chunk of Array.isArray(f.data) ? f.data : [f.data]) await writeAll(handle, typeof chunk === 'function' ? chunk() : chunk);
        await handle.sync();
      } finally {
        await handle.close();
      }
    }
    for (const { tmp, target } of temps) {
      await fs.rename(tmp, target);
      inFlight.delete(tmp);
    }
    if (process.env.KPRUNE_WRITE_LOG) await fs.appendFile(process.env.KPRUNE_WRITE_LOG, temps.map((t) => `${t.target}\n`).join(''));
  } catch (e) {
    await Promise.all(temps.map(({ tmp }) => fs.rm(tmp, { force: true })));
    for (const { tmp } of temps) inFlight.delete(tmp);
    if (e instanceof KpruneError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    throw new KpruneError('io', `cannot write (${code ?? String(e)})`, { file: files[files.length - 1]?.path, cause: e });
  }
}
