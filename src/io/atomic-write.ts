/**
 * Writing a set of files so that either all of them appear complete or none does: a transaction
 * (transaction.ts) of its own, for callers that write outside a run's transaction.
 */
import { Chunk } from './cleanup.js';
import { OutputTransaction } from './transaction.js';

export { removeWritesInProgress } from './cleanup.js';
export type { Chunk } from './cleanup.js';

export interface PendingFile {
  path: string;
  /** The bytes, or chunks in order: a file far larger than memory is written one chunk at a time. */
  data: Uint8Array | Chunk[];
  /** What the file is, for messages (default "the output"). */
  role?: string;
}

/** Stages the files in order (the model last, after its data files) and commits them together. */
export async function writeFilesAtomically(files: PendingFile[], reads: { path: string; role: string }[] = []): Promise<void> {
  const tx = new OutputTransaction();
  for (const r of reads) tx.readFile(r.path, r.role);
  for (const f of files) tx.declare({ path: f.path, role: f.role ?? 'the output' });
  try {
    for (const f of files) await tx.write(f.path, f.data);
    await tx.commit();
  } catch (e) {
    tx.abort();
    throw e;
  }
}
