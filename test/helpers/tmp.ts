import { mkdtempSync, rmSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after } from 'node:test';

/** A fresh temporary folder, removed when the test file ends. */
export function tempDir(prefix = 'kprune-test-'): string {
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export function listing(dir: string): string[] {
  return readdirSync(dir).sort();
}

export const FIXTURES = path.resolve(new URL('../../../fixtures', import.meta.url).pathname);
export const CLI = path.resolve(new URL('../../cli/main.js', import.meta.url).pathname);
