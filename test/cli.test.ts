/**
 * The command line as a user meets it: outputs, exit codes, one-line errors, nothing written on error.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { CLI, FIXTURES, listing, tempDir } from './helpers/tmp.js';

const dir = tempDir();

function kprune(args: string[], cwd = dir) {
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const vgg = path.join(FIXTURES, 'models', 'vgg-fmnist.onnx');

test('kprune shapes draws every named shape', () => {
  const r = kprune(['shapes']);
  assert.equal(r.code, 0);
  for (const name of ['full', 'cross', 'x', 'qh-right', 'qh-left', 'qh-up', 'qh-down', 'qh-cw', 'qh-ccw']) assert.match(r.stdout, new RegExp(`\\b${name}\\b`));
  assert.match(r.stdout, /# # #\s+\. # \.\s+# \. #/); // first rows of full, cross, x
});

test('kprune analyze prints a table, and --json one parseable document', () => {
  const text = kprune(['analyze', vgg]);
  assert.equal(text.code, 0, text.stderr);
  assert.match(text.stdout, /Whole model: energy kept per shape/);
  const json = kprune(['analyze', vgg, '--json']);
  assert.equal(json.code, 0);
  const doc = JSON.parse(json.stdout);
  assert.equal(doc.kind, 'analyze');
  assert.equal(doc.schemaVersion, 1);
  assert.ok(doc.layers.length >= 5);
  for (const l of doc.layers) {
    assert.equal(Math.max(...l.meanAbs), 1);
    assert.ok(Math.abs(l.energyShare.reduce((a: number, b: number) => a + b, 0) - 1) < 1e-9);
  }
});

test('kprune <model> --shape cross writes a smaller (decomposed, by default) <name>.kpruned.onnx beside a copy, and a JSON report', () => {
  const input = path.join(dir, 'vgg.onnx');
  copyFileSync(vgg, input);
  const r = kprune([input, '--shape', 'cross', '--report', path.join(dir, 'vgg.report.json')]);
  assert.equal(r.code, 0, r.stderr);
  assert.ok(existsSync(path.join(dir, 'vgg.kpruned.onnx')));
  assert.match(r.stdout, /gzip/);
  assert.match(r.stdout, /accuracy: unknown/);
  const report = JSON.parse(readFileSync(path.join(dir, 'vgg.report.json'), 'utf8'));
  assert.equal(report.accuracy.status, 'unknown');
  assert.ok(report.after.params.conv3x3Nonzero < report.before.params.conv3x3Nonzero);
  assert.ok(report.after.macs.effective < report.before.macs.effective);
  // Decomposed by default: the file stores, and the runtime executes, only the kept weights.
  assert.ok(report.layers.every((l: { layout: string }) => l.layout === 'decomposed'));
  assert.match(r.stdout.split('\n')[0], /\(layout decomposed: smaller convolutions, only the kept weights stored\)$/);
  assert.ok(report.after.macs.dense < report.before.macs.dense);
  assert.ok(report.after.size.bytes < 0.8 * report.before.size.bytes, 'the default output is smaller on disk');
  const masked = kprune([input, '--shape', 'cross', '--layout', 'masked', '-o', path.join(dir, 'vgg.masked.onnx'), '--json', '--latency-runs', '0']);
  const m = JSON.parse(masked.stdout);
  assert.ok(m.layers.every((l: { layout: string }) => l.layout === 'masked'), 'masked on request');
  assert.equal(m.before.macs.dense, m.after.macs.dense);
  assert.ok(report.plan.entries.every((e: { shape: string }) => e.shape === 'cross'));
});

test('--json prints only JSON on stdout; --plan replays a report\'s plan', () => {
  const out1 = path.join(dir, 'auto.onnx');
  const r = kprune([vgg, '--shape', 'auto', '--budget', '0.7', '-o', out1, '--json']);
  assert.equal(r.code, 0, r.stderr);
  const report = JSON.parse(r.stdout);
  assert.ok(report.plan.keptFraction <= 0.7);
  writeFileSync(path.join(dir, 'auto.report.json'), r.stdout);
  const out2 = path.join(dir, 'replayed.onnx');
  const r2 = kprune([vgg, '--plan', path.join(dir, 'auto.report.json'), '-o', out2, '--json']);
  assert.equal(r2.code, 0, r2.stderr);
  assert.ok(readFileSync(out1).equals(readFileSync(out2)));
});

test('bad input: one line on stderr naming the problem, exit 2, nothing written', () => {
  const bad = path.join(dir, 'bad');
  const text = path.join(dir, 'notes.onnx');
  writeFileSync(text, 'this is not a model\n');
  const truncated = path.join(dir, 'truncated.onnx');
  writeFileSync(truncated, readFileSync(vgg).subarray(0, 5000));
  const empty = path.join(dir, 'empty.onnx');
  writeFileSync(empty, '');
  const cases: [string[], RegExp][] = [
    [[path.join(dir, 'missing.onnx')], /missing\.onnx: no such file/],
    [[text], /notes\.onnx: not an ONNX model/],
    [[truncated], /truncated\.onnx: truncated or corrupt ONNX file/],
    [[empty], /empty\.onnx: empty file/],
    [[path.join(FIXTURES, 'models', 'no-3x3.onnx'), '-o', path.join(bad, 'x.onnx')], /no-3x3\.onnx: no prunable 3x3 convolution/],
    [[vgg, '--shape', 'hexagon', '-o', path.join(dir, 'h.onnx')], /unknown shape "hexagon"/],
    [[vgg, '--shape', '01/111/010', '-o', path.join(dir, 'h.onnx')], /malformed mask "01\/111\/010"/],
    [[vgg, '--shape', '111/101/111', '-o', path.join(dir, 'h.onnx')], /drops the centre/],
    [[vgg, '-o', vgg], /vgg-fmnist\.onnx: the output model would overwrite the input model/],
    [[vgg, '--shape', 'auto', '--budget', '0.05', '-o', path.join(dir, 'h.onnx')], /budget cannot be met/],
    [[vgg, '--bogus'], /unknown option '--bogus'/],
  ];
  const before = listing(dir);
  const fixturesBefore = listing(path.join(FIXTURES, 'models'));
  for (const [args, message] of cases) {
    const r = kprune(args);
    assert.equal(r.code, 2, `${args.join(' ')}: exit ${r.code}, ${r.stderr}`);
    assert.match(r.stderr, message, args.join(' '));
    assert.equal(r.stderr.trim().split('\n').length, 1, `one line: ${r.stderr}`);
    assert.equal(r.stdout, '');
  }
  assert.deepEqual(listing(dir), before);
  assert.deepEqual(listing(path.join(FIXTURES, 'models')), fixturesBefore);
});

const SUBSET = path.join(FIXTURES, 'data', 'fashion-mnist', 't10k-images-idx3-ubyte.gz');

test('a pipeline step: --config, --max-drop exit codes, --emit-masks, --report html, and compare', () => {
  const cfg = path.join(dir, 'kprune.json');
  writeFileSync(cfg, JSON.stringify({ shape: 'cross', data: SUBSET, calib: 64, eval: 100, latencyRuns: 3, layout: 'decomposed' }));
  const out = path.join(dir, 'gate.onnx');
  // An impossible gate (no loss at all allowed, while reshaping a cross costs some): exit 1, model written.
  const strict = kprune([vgg, '--config', cfg, '-o', out, '--max-drop', '0', '--json', '--emit-masks', path.join(dir, 'masks.json'), '--report', path.join(dir, 'r.html')]);
  const report = JSON.parse(strict.stdout);
  assert.equal(report.layers[0].layout, 'decomposed', 'config applied');
  assert.equal(report.data.calibSamples, 64);
  assert.equal(report.gate.maxDrop, 0);
  assert.equal(strict.code, report.gate.passed ? 0 : 1);
  assert.ok(existsSync(out));
  const loose = kprune([vgg, '--config', cfg, '-o', out, '--max-drop', '100', '--latency-runs', '0']);
  assert.equal(loose.code, 0, loose.stderr);
  assert.match(loose.stdout, /gate --max-drop 100: passed/);
  // Command-line options win over the config file.
  const cliWins = JSON.parse(kprune([vgg, '--config', cfg, '-o', out, '--shape', 'x', '--json', '--latency-runs', '0']).stdout);
  assert.ok(cliWins.plan.entries.every((e: { shape: string }) => e.shape === 'x'));
  // Masks keyed by the original model's names, one per reshaped weight, rows of the cross.
  const masks = JSON.parse(readFileSync(path.join(dir, 'masks.json'), 'utf8'));
  assert.equal(masks.layers.length, report.layers.length);
  assert.deepEqual(masks.layers[0].mask3x3, [[0, 1, 0], [1, 1, 1], [0, 1, 0]]);
  assert.equal(masks.layers[0].nodes[0], report.layers[0].nodes[0]);
  assert.match(readFileSync(path.join(dir, 'r.html'), 'utf8'), /^<!DOCTYPE html>/i);
  // compare: the same figures for any two models, and the gate.
  const cmp = kprune(['compare', vgg, out, '--data', SUBSET, '--eval', '100', '--latency-runs', '3', '--json']);
  assert.equal(cmp.code, 0, cmp.stderr);
  const c = JSON.parse(cmp.stdout);
  assert.equal(c.kind, 'compare');
  assert.ok(c.after.size.bytes < c.before.size.bytes);
  assert.equal(c.accuracy.evalSamples, 100);
  assert.equal(c.accuracy.b.clean.agreement !== undefined, true);
  const gated = kprune(['compare', vgg, out, '--data', SUBSET, '--eval', '100', '--latency-runs', '0', '--max-drop', '100']);
  assert.equal(gated.code, 0);
  const noData = kprune(['compare', vgg, out, '--max-drop', '1', '--latency-runs', '0']);
  assert.equal(noData.code, 1, 'a gate without data cannot pass');
  assert.match(noData.stdout, /accuracy: unknown/);
});

test('config files are validated like the command line', () => {
  const cfg = path.join(dir, 'bad.json');
  writeFileSync(cfg, JSON.stringify({ shap: 'cross' }));
  const r = kprune([vgg, '--config', cfg, '-o', path.join(dir, 'x.onnx')]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /unknown option "shap"/);
  writeFileSync(cfg, JSON.stringify({ budget: 'lots' }));
  assert.match(kprune([vgg, '--config', cfg, '-o', path.join(dir, 'x.onnx')]).stderr, /budget.*takes a number/);
  writeFileSync(cfg, '{ not json');
  assert.match(kprune([vgg, '--config', cfg, '-o', path.join(dir, 'x.onnx')]).stderr, /bad\.json: not valid JSON/);
  assert.ok(!existsSync(path.join(dir, 'x.onnx')));
});

test('the summary comes first; --verbose adds the per-layer table; no colour codes off a TTY', () => {
  const out = path.join(dir, 'v.onnx');
  const plain = kprune([vgg, '-o', out, '--latency-runs', '0']);
  assert.doesNotMatch(plain.stdout, /energy kept/);
  assert.match(plain.stdout, /--verbose for the per-layer table/);
  const verbose = kprune([vgg, '-o', out, '--latency-runs', '0', '--verbose']);
  assert.match(verbose.stdout, /energy kept/);
  assert.doesNotMatch(verbose.stdout, /\x1b\[/);
});
