/**
 * A library user who catches a KpruneError and prints `err.message` learns which file it is about
 * (issue 16): the message is "<file>: <reason>", for every entry point and error kind. The CLI's
 * one line (`oneLine()`) still names the file once, and errors quoting another error about the
 * same file do not repeat it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { KpruneError, analyze, compare, isKpruneError, loadModel, prune, reasonOf } from '../src/index.js';
import { inFile } from '../src/errors.js';
import { CLI, FIXTURES, tempDir } from './helpers/tmp.js';

const dir = tempDir('kprune-error-message-');
const vgg = path.join(FIXTURES, 'models', 'vgg-fmnist.onnx');
const missing = path.join(dir, 'missing.onnx');
const truncated = path.join(dir, 'truncated.onnx');
writeFileSync(truncated, readFileSync(vgg).subarray(0, 5000));
const garbage = path.join(dir, 'garbage.onnx');
writeFileSync(garbage, Buffer.from('this is not a model at all, only text\n'));
const badJson = path.join(dir, 'broken', 'model.json');

/** How many times `needle` occurs in `text`. */
const occurrences = (text: string, needle: string) => text.split(needle).length - 1;

async function caught(f: () => Promise<unknown>): Promise<KpruneError> {
  try {
    await f();
  } catch (e) {
    assert.ok(isKpruneError(e), `a KpruneError: ${String(e)}`);
    return e;
  }
  assert.fail('expected a rejection');
}

test('the message names the file: "<file>: <reason>", the reason and the file also apart', () => {
  const e = new KpruneError('not-found', 'no such file', { file: 'a/model.onnx', suggestion: 'check the path' });
  assert.equal(e.message, 'a/model.onnx: no such file');
  assert.equal(e.reason, 'no such file');
  assert.equal(e.file, 'a/model.onnx');
  assert.equal(e.oneLine(), 'a/model.onnx: no such file (check the path)');
  const bare = new KpruneError('usage', 'an option is wrong');
  assert.equal(bare.message, 'an option is wrong');
  assert.equal(bare.oneLine(), 'an option is wrong');
});

test('a file attached afterwards (inFile) is in the message once', () => {
  try {
    inFile('m.onnx', () => {
      throw new KpruneError('bad-model', 'NaN weights in layer "c1"');
    });
    assert.fail('expected a throw');
  } catch (e) {
    assert.ok(isKpruneError(e));
    assert.equal(e.message, 'm.onnx: NaN weights in layer "c1"');
    assert.equal(e.oneLine(), 'm.onnx: NaN weights in layer "c1"');
  }
});

test('reasonOf: an error about the same file without it, about another file with it, any other error whole', () => {
  const same = new KpruneError('bad-model', 'truncated', { file: 'm.onnx' });
  assert.equal(reasonOf(same, 'm.onnx'), 'truncated');
  assert.equal(reasonOf(same, 'other.onnx'), 'm.onnx: truncated');
  assert.equal(reasonOf(new KpruneError('usage', 'no file')), 'no file');
  assert.equal(reasonOf(new Error('boom')), 'boom');
  assert.equal(reasonOf('text'), 'text');
});

test('library calls on a missing or corrupt file reject with a message naming the file', async () => {
  const cases: [string, () => Promise<unknown>, string, RegExp][] = [
    ['prune, missing', () => prune(missing, { latencyRuns: 0 }), missing, /no such file/],
    ['loadModel, missing', () => loadModel(missing), missing, /no such file/],
    ['analyze, missing', () => analyze(missing), missing, /no such file/],
    ['compare, missing B', () => compare(vgg, missing, { latencyRuns: 0 }), missing, /no such file/],
    ['prune, truncated', () => prune(truncated, { latencyRuns: 0 }), truncated, /truncated or corrupt/],
    ['loadModel, not a model', () => loadModel(garbage), garbage, /not an ONNX model/],
  ];
  for (const [what, call, file, reason] of cases) {
    const e = await caught(call);
    assert.ok(e.message.startsWith(`${file}: `), `${what}: ${e.message}`);
    assert.equal(occurrences(e.message, file), 1, `${what}: the file once: ${e.message}`);
    assert.match(e.reason, reason, what);
    assert.equal(e.message, `${e.file}: ${e.reason}`, what);
  }
});

test('a TF.js model.json that is not JSON: the message names it', async () => {
  mkdirSync(path.dirname(badJson), { recursive: true });
  writeFileSync(badJson, '{ "format": "layers-model", ');
  const e = await caught(() => loadModel(badJson));
  assert.equal(e.code, 'bad-model');
  assert.ok(e.message.startsWith(`${badJson}: `), e.message);
  assert.equal(occurrences(e.message, badJson), 1, e.message);
});

function kprune(args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd: dir, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('the CLI prints one line naming the file once (model missing or corrupt, plan missing)', () => {
  const plan = path.join(dir, 'no-plan.json');
  for (const [args, file, reason] of [
    [[missing, '--latency-runs', '0'], missing, /no such file/],
    [['analyze', truncated], truncated, /truncated or corrupt/],
    [[vgg, '--plan', plan, '-o', path.join(dir, 'out.onnx'), '--latency-runs', '0'], plan, /cannot read the plan \(no such file\)/],
  ] as [string[], string, RegExp][]) {
    const r = kprune(args);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    const lines = r.stderr.split('\n').filter((l) => l !== '');
    assert.equal(lines.length, 1, r.stderr);
    assert.ok(lines[0].startsWith(`kprune: ${file}: `), lines[0]);
    assert.equal(occurrences(lines[0], file), 1, `the file once: ${lines[0]}`);
    assert.match(lines[0], reason);
  }
});
