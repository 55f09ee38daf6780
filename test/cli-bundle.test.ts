/**
 * The command line ships as one bundled file (dist/cli/kprune.js, made by esbuild from tsc's
 * output): kprune's ~180 modules in one, so that Node's module loader does not spend most of a short
 * command's time resolving and compiling them. The other tests run dist/cli/main.js (the unbundled
 * graph, which `npm run mutate` rebuilds per mutant); these check that the bundle is the same
 * program: same bytes written, same reports, the files that ship beside the code found from it, and
 * TF.js still loaded only when a run needs it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { CLI, FIXTURES, tempDir } from './helpers/tmp.js';

const ROOT = path.resolve(FIXTURES, '..');
const BUNDLE = path.join(ROOT, 'dist', 'cli', 'kprune.js');
const dir = tempDir('kprune-bundle-');
const resnet = path.join(FIXTURES, 'models', 'resnet-fmnist.onnx');

function run(cli: string, args: string[]): { status: number | null; stdout: string; stderr: string } {
  return spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', env: { ...process.env, KPRUNE_WRITE_LOG: '' } });
}

test('the bin is the bundle; it imports only packages and its own chunks, and TF.js and onnxruntime only lazily', () => {
  const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
  assert.equal(pkg.bin.kprune, 'dist/cli/kprune.js');
  const text = readFileSync(BUNDLE, 'utf8');
  assert.ok(text.startsWith('#!/usr/bin/env node\n'), 'runnable as a bin');
  const statics = [...text.matchAll(/^import\s[^;]*?from\s*"([^"]+)";?$|^import\s*"([^"]+)";?$/gm)].map((m) => m[1] ?? m[2]);
  assert.ok(statics.includes('onnx-proto') && statics.includes('commander'), `static imports read: ${statics.join(', ')}`);
  // Relative imports would load a second copy of kprune's modules beside the bundled one.
  assert.deepEqual(statics.filter((s) => s.startsWith('.') && !s.startsWith('./chunks/')), []);
  assert.deepEqual(statics.filter((s) => s.startsWith('@tensorflow/')), [], 'TF.js is not loaded at start-up');
  // Nor onnxruntime (runtime/ort/ort.ts): commands that run no model do not map its library.
  assert.ok(!statics.includes('onnxruntime-node'), 'onnxruntime is loaded on first use');
  const lazy = [...text.matchAll(/import\(\s*"(\.\/chunks\/[^"]+)"\s*\)/g)].map((m) => m[1]);
  assert.ok(lazy.length > 0, 'TF.js sits in a chunk loaded on demand');
  for (const chunk of lazy) assert.ok(existsSync(path.join(ROOT, 'dist', 'cli', chunk)), `${chunk} exists`);
});

test('the bundle and the module graph are the same program: version, analysis, written bytes, report', () => {
  const version = run(BUNDLE, ['--version']);
  assert.equal(version.stdout.trim(), JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')).version, 'package.json found from the bundle');
  const analyses = [BUNDLE, CLI].map((cli) => run(cli, ['analyze', resnet, '--no-run', '--json']));
  for (const a of analyses) assert.equal(a.status, 0, a.stderr);
  assert.equal(analyses[0].stdout, analyses[1].stdout);
  const outs = [BUNDLE, CLI].map((cli, i) => {
    const out = path.join(dir, `out${i}.onnx`);
    const r = run(cli, [resnet, '--shape', 'qh', '--no-run', '--json', '-o', out]);
    assert.equal(r.status, 0, r.stderr);
    const report = JSON.parse(r.stdout.split(out).join('out.onnx'));
    delete report.timings;
    return { bytes: readFileSync(out), report };
  });
  assert.ok(outs[0].bytes.equals(outs[1].bytes), 'byte-identical models');
  assert.deepEqual(outs[0].report, outs[1].report);
});

test('from the bundle, the bundled data set and the training workers are found', () => {
  const out = path.join(dir, 'tuned.onnx');
  const r = run(BUNDLE, [resnet, '--shape', 'cross', '--data', 'fashion-mnist', '--calib', '64', '--eval', '50', '--finetune', '3', '--threads', '2', '--latency-runs', '0', '--json', '-o', out]);
  assert.equal(r.status, 0, r.stderr);
  const report = JSON.parse(r.stdout);
  assert.equal(report.accuracy.status, 'measured');
  assert.match(report.finetune.backend, /2 worker threads/);
  assert.ok(existsSync(out));
});
