import { existsSync, mkdtempSync, readFileSync, rmSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { checkOnnxFiles, onnxCheckerAvailable } from './onnx-checker.js';

// Every file kprune writes from this test process (and the CLI processes it starts) is logged, so
// that each ONNX model written into a test folder meets the ONNX checker before the folder goes.
const ownLog = !process.env.KPRUNE_WRITE_LOG;
if (ownLog) process.env.KPRUNE_WRITE_LOG = path.join(tmpdir(), `kprune-writes-${process.pid}.log`);
const WRITE_LOG = process.env.KPRUNE_WRITE_LOG!;
// Files written outside test folders (the fuzz runs' own) are not judged: a mutated input kprune
// accepts may carry damage it rightly preserves. Their log lines go at exit.
if (ownLog) process.on('exit', () => rmSync(WRITE_LOG, { force: true }));
/** Test folders not yet removed; the log goes with the last of them. */
let openDirs = 0;
/** Whether this test file has said (as a skipped test) that the checker is missing. */
let toldMissing = false;

/** The ONNX files kprune wrote inside `dir` that are still there. */
export function writtenOnnxFiles(dir: string): string[] {
  if (!existsSync(WRITE_LOG)) return [];
  const lines = readFileSync(WRITE_LOG, 'utf8').split('\n');
  return [...new Set(lines.filter((f) => f.startsWith(dir + path.sep) && /\.onnx$/i.test(f) && existsSync(f)))];
}

/**
 * A fresh temporary folder, removed when the test file ends; before that, every ONNX model kprune
 * wrote into it must pass `onnx.checker` with full_check (when python3-onnx is installed).
 */
export function tempDir(prefix = 'kprune-test-'): string {
  if (!toldMissing && !onnxCheckerAvailable()) {
    // Visible in the run's summary as a SKIP, not a check that silently did not happen.
    toldMissing = true;
    test('onnx.checker (full_check) judges every ONNX model this test file writes', { skip: 'python3 with the onnx package is not installed (apt-get install python3-onnx; .ci/run installs it)' }, () => {});
  }
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  openDirs++;
  after(() => {
    try {
      if (onnxCheckerAvailable()) {
        const failure = checkOnnxFiles(writtenOnnxFiles(dir));
        if (failure) throw new Error(`onnx.checker (full_check) refused a model kprune wrote: ${failure}`);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
      if (--openDirs === 0 && ownLog) rmSync(WRITE_LOG, { force: true });
    }
  });
  return dir;
}

export function listing(dir: string): string[] {
  return readdirSync(dir).sort();
}

export const FIXTURES = path.resolve(new URL('../../../fixtures', import.meta.url).pathname);
export const CLI = path.resolve(new URL('../../cli/main.js', import.meta.url).pathname);
