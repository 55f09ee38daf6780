/**
 * The bytes kprune writes, case by case, as SHA-256 digests: every bundled ONNX fixture in every
 * layout, and a real TF.js model. test/io-bytes.test.ts compares the digests of this checkout's
 * writes with test/golden/io-outputs.json, which bench/io-golden.ts records from a build of the
 * code before the I/O rewrite (issue 15): the rewrite must not change one byte of any output.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';

export interface IoCase {
  name: string;
  /** Relative to the repository's root. */
  input: string;
  shape: string;
  layout: 'masked' | 'decomposed' | 'sparse';
  /** TF.js: 'float32' rewrites the weights as float32. */
  weights?: 'keep' | 'float32';
}

const ONNX = ['vgg-fmnist.onnx', 'resnet-fmnist.onnx', 'dwsep-fmnist.onnx', 'misc-fmnist.onnx', 'vgg-fmnist-constants.onnx', 'vgg-fmnist-external/model.onnx'];
const ESRGAN = 'node_modules/@upscalerjs/esrgan-slim/models/x2/model.json';

export const IO_CASES: IoCase[] = [
  ...ONNX.flatMap((m) => (['masked', 'decomposed', 'sparse'] as const).map((layout) => ({ name: `${m} cross ${layout}`, input: `fixtures/models/${m}`, shape: 'cross', layout }))),
  ...ONNX.map((m) => ({ name: `${m} qh masked`, input: `fixtures/models/${m}`, shape: 'qh', layout: 'masked' as const })),
  { name: 'esrgan-slim x2 cross masked', input: ESRGAN, shape: 'cross', layout: 'masked' },
  { name: 'esrgan-slim x2 cross decomposed', input: ESRGAN, shape: 'cross', layout: 'decomposed' },
  { name: 'esrgan-slim x2 qh masked float32', input: ESRGAN, shape: 'qh', layout: 'masked', weights: 'float32' },
];

/** The output path for a case inside `dir` (each case in a folder of its own, created here). */
export function caseOutput(c: IoCase, dir: string, index: number): string {
  const folder = path.join(dir, `case${index}`);
  mkdirSync(folder, { recursive: true });
  return c.input.endsWith('.json') ? path.join(folder, 'out', 'model.json') : path.join(folder, 'out.onnx');
}

/** Digest of every file in `folder` (recursively), by relative path: names and bytes. */
export function folderDigests(folder: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const e of readdirSync(d).sort()) {
      const p = path.join(d, e);
      if (statSync(p).isDirectory()) walk(p);
      else out[path.relative(folder, p)] = createHash('sha256').update(readFileSync(p)).digest('hex');
    }
  };
  walk(folder);
  return out;
}

/** The options a case is pruned with: no runs, no gzip (neither changes the bytes written). */
export function caseOptions(c: IoCase, output: string): Record<string, unknown> {
  return { shape: c.shape, layout: c.layout, output, run: false, gzip: false, latencyRuns: 0, ...(c.weights ? { weights: c.weights } : {}) };
}
