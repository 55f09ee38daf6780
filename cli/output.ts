/** Printing: results to stdout, progress and errors to stderr. */
import { promises as fs } from 'node:fs';
import { writeFilesAtomically } from '../src/io/atomic-write.js';

export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value, null, 2) + '\n');
}

export async function writeJsonFile(file: string, value: unknown): Promise<void> {
  await writeFilesAtomically([{ path: file, data: Buffer.from(JSON.stringify(value, null, 2) + '\n') }]);
}

export async function readJsonFile(file: string): Promise<unknown> {
  return JSON.parse(await fs.readFile(file, 'utf8'));
}

export async function writeTextFile(file: string, text: string): Promise<void> {
  await writeFilesAtomically([{ path: file, data: Buffer.from(text) }]);
}
