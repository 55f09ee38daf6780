/** Printing: results to stdout, progress and errors to stderr. */
import { promises as fs } from 'node:fs';
import { shellQuote } from '../src/index.js';

/** The command line as typed, for the report page (so that it can be run again). */
export function commandLine(argv: readonly string[] = process.argv): string {
  return ['kprune', ...argv.slice(2)].map(shellQuote).join(' ');
}

export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value, null, 2) + '\n');
}

export async function readJsonFile(file: string): Promise<unknown> {
  return JSON.parse(await fs.readFile(file, 'utf8'));
}

