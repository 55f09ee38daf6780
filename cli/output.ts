/** Printing: results to stdout, progress and errors to stderr. */
import { promises as fs } from 'node:fs';
import { jsonTooDeep, KpruneError, MAX_JSON_DEPTH, shellQuote } from '../src/index.js';

/** The command line as typed, for the report page (so that it can be run again). */
export function commandLine(argv: readonly string[] = process.argv): string {
  return ['kprune', ...argv.slice(2)].map(shellQuote).join(' ');
}

/**
 * JSON escapes C0 controls itself; DEL, C1 controls and bidirectional overrides from names in the
 * model are escaped too (\u009b, \u202e), so JSON read on a terminal cannot drive it. The parsed
 * value is the same.
 */
export function printJson(value: unknown): void {
  const text = JSON.stringify(value, null, 2).replace(/[\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  process.stdout.write(text + '\n');
}

/** A JSON document; nesting deeper than MAX_JSON_DEPTH is refused before parsing (see json-depth.ts). */
export async function readJsonFile(file: string): Promise<unknown> {
  const text = await fs.readFile(file, 'utf8');
  if (jsonTooDeep(text)) throw new KpruneError('usage', `the JSON nests deeper than ${MAX_JSON_DEPTH} levels`, { file });
  return JSON.parse(text);
}

