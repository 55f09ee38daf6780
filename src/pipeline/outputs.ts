/**
 * What a run reads and writes, declared to its output transaction (src/io/transaction.ts): the
 * commands only say which files they read and which they will write; the transaction checks them
 * against each other before anything is written and commits the outputs together.
 */
import { promises as fs } from 'node:fs';
import { isKpruneError } from '../errors.js';
import { LoadedModel } from '../models/index.js';
import { OutputTransaction, readModelFiles } from '../io/transaction.js';
import { BUILTIN_DATASETS } from '../data/index.js';
import { BUNDLED_DIR, SYSTEM_DIR } from '../data/fashion-mnist.js';
import type { DataOptions } from './recover.js';

/** A file a caller read for this run besides the model and the data (a config or plan file). */
export interface RunInput {
  path: string;
  /** What it is, for messages: "the config file". */
  role: string;
}

/** Declares the reads of a run: each model's files, the data (a file, or a folder read from), and others. */
export async function declareReads(tx: OutputTransaction, models: [LoadedModel, string][], data: DataOptions | undefined, others: RunInput[] = []): Promise<void> {
  for (const [model, which] of models) readModelFiles(tx, model.files, which);
  if (data) {
    const st = await fs.stat(data.data).catch(() => undefined);
    if (!st && (BUILTIN_DATASETS as readonly string[]).includes(data.data)) {
      for (const dir of [SYSTEM_DIR, BUNDLED_DIR]) tx.readFolder(dir, 'the data set folder');
    } else if (st?.isDirectory()) {
      tx.readFolder(data.data, 'the data folder');
    } else {
      tx.readFile(data.data, 'the data file');
    }
  }
  for (const other of others) tx.readFile(other.path, other.role);
}

/** A document as the JSON kprune writes: indented, one final newline. */
export function jsonBytes(value: unknown): Uint8Array {
  return Buffer.from(JSON.stringify(value, null, 2) + '\n');
}

/** A report file's bytes: a page for .html/.htm, else JSON. */
export function reportBytes(file: string, html: () => string, json: unknown): Uint8Array {
  return /\.html?$/i.test(file) ? Buffer.from(html()) : jsonBytes(json);
}

/**
 * Runs the rest of a run inside its transaction: commits what `run` staged when it returns, removes
 * everything staged when it throws. An error about a staged file (verification of the staged
 * model) names the file where it was going, not the hidden staging folder.
 */
export async function transact<T>(tx: OutputTransaction, run: () => Promise<T>): Promise<T> {
  try {
    const result = await run();
    await tx.commit();
    return result;
  } catch (e) {
    tx.abort();
    throw isKpruneError(e) ? tx.errorAsShown(e) : e;
  }
}
