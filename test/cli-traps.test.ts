/**
 * The command line's traps for a new user (issue 16): misspelt commands, no arguments, options that
 * would do nothing, where outputs went, replaced outputs, the gate on stderr, progress in logs, and
 * what `--help` must tell (shapes, exit codes, environment).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { CLI, FIXTURES, listing, tempDir } from './helpers/tmp.js';
import { closestCommand, firstWord } from '../cli/command-guard.js';
import { progressView } from '../cli/progress.js';

const dir = tempDir();
const vgg = path.join(FIXTURES, 'models', 'vgg-fmnist.onnx');
const COMMANDS = ['prune', 'analyze', 'compare', 'sweep', 'shapes'];

function kprune(args: string[], cwd = dir) {
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('kprune alone prints the help (commands, exit codes) and exits 0', () => {
  const r = kprune([]);
  assert.equal(r.code, 0, r.stderr);
  for (const c of COMMANDS) assert.match(r.stdout, new RegExp(`\\b${c}\\b`));
  assert.match(r.stdout, /Exit codes:/);
  assert.equal(r.stderr, '');
});

test('a misspelt command is named with the closest one, exit 2, nothing written', () => {
  const before = listing(dir);
  for (const [args, expected] of [
    [['analyse', vgg], /^kprune: unknown command 'analyse' \(did you mean 'analyze'\?\)\n$/],
    [['compar', vgg, vgg], /^kprune: unknown command 'compar' \(did you mean 'compare'\?\)\n$/],
    [['prnue', vgg], /did you mean 'prune'/],
    [['frobnicate', vgg], /^kprune: unknown command 'frobnicate', and no file of that name \(commands: prune, analyze, compare, sweep, shapes; or give a model file\)\n$/],
  ] as [string[], RegExp][]) {
    const r = kprune(args);
    assert.equal(r.code, 2, `${args[0]}: ${r.stderr}`);
    assert.match(r.stderr, expected);
    assert.equal(r.stdout, '');
  }
  assert.deepEqual(listing(dir), before);
});

test('a first word that is a file is a model, whatever its name', () => {
  // A model called "analyse" (no extension) is pruned, not taken for a misspelt command.
  const sub = path.join(dir, 'named');
  spawnSync('mkdir', ['-p', sub]);
  copyFileSync(vgg, path.join(sub, 'analyse'));
  const r = kprune(['analyse', '-o', 'out.onnx', '--latency-runs', '0'], sub);
  assert.equal(r.code, 0, r.stderr);
  assert.ok(existsSync(path.join(sub, 'out.onnx')));
  // A missing model path keeps its own message.
  const missing = kprune(['missing.onnx']);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /missing\.onnx: no such file/);
});

test('closestCommand: usual slips are matched, unrelated words are not', () => {
  assert.equal(closestCommand('analyse', COMMANDS), 'analyze');
  assert.equal(closestCommand('anlyze', COMMANDS), 'analyze');
  assert.equal(closestCommand('shape', COMMANDS), 'shapes');
  assert.equal(closestCommand('comapre', COMMANDS), 'compare');
  assert.equal(closestCommand('model', COMMANDS), undefined);
  assert.equal(closestCommand('x', COMMANDS), undefined);
  assert.deepEqual(firstWord([], COMMANDS), { kind: 'help' });
  assert.deepEqual(firstWord(['--shape', 'x'], COMMANDS), { kind: 'ok' });
  assert.deepEqual(firstWord(['does/not/exist.onnx'], COMMANDS), { kind: 'ok' });
});

test('options that do nothing in the combination given are refused before any work', () => {
  const out = path.join(dir, 'never.onnx');
  const cases: [string[], RegExp][] = [
    [['--budget', '0.6'], /--budget does nothing here: it applies only with --shape auto/],
    [['--shape', 'cross', '--budget', '0.6'], /--budget does nothing here/],
    [['--lr', '0.01', '--optimizer', 'sgd'], /--lr, --optimizer do nothing here: they apply only with --finetune/],
    [['--train-batch', '8'], /--train-batch does nothing here/],
    [['--batch', '4', '--latency-runs', '0'], /--batch does nothing here: it applies only with --layout auto or a latency comparison/],
    [['--batch', '4', '--no-run'], /--batch does nothing here/],
    [['--threads', '2', '--no-run'], /--threads does nothing here: it applies only with a run of the model/],
    [['--verbose', '--json'], /--verbose does nothing here/],
    [['--plan', vgg, '--shape', 'x'], /--shape does nothing here: it applies only with no --plan/],
  ];
  for (const [args, expected] of cases) {
    const r = kprune([vgg, '-o', out, ...args]);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, expected);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  }
  // The same through a config file.
  const cfg = path.join(dir, 'budget.json');
  writeFileSync(cfg, JSON.stringify({ budget: 0.5 }));
  assert.match(kprune([vgg, '-o', out, '--config', cfg]).stderr, /--budget does nothing here/);
  const cmp = kprune(['compare', vgg, vgg, '--batch', '2', '--latency-runs', '0']);
  assert.equal(cmp.code, 2);
  assert.match(cmp.stderr, /--batch does nothing here/);
  assert.ok(!existsSync(out));
});

test('prune --help lists every shape, the exit codes and the environment variables', () => {
  const r = kprune(['prune', '--help']);
  assert.equal(r.code, 0);
  for (const shape of ['cross', 'x', 'qh-cw', 'qh-ccw', 'line-v', 'line-h', 'centre', 'qh', 'auto']) assert.match(r.stdout, new RegExp(`\\b${shape}\\b`), shape);
  for (const code of ['0', '1', '2', '3', '130', '143']) assert.match(r.stdout, new RegExp(`^  ${code} +\\S`, 'm'), `exit ${code}`);
  for (const v of ['NO_COLOR', 'KPRUNE_WRITE_LOG', 'KPRUNE_DEBUG', 'KPRUNE_MAX_DATA_BYTES', 'KPRUNE_MAX_IMAGE_PIXELS']) assert.match(r.stdout, new RegExp(v));
  assert.match(r.stdout, /-q, --quiet/);
  assert.match(kprune(['--help']).stdout, /130/);
  assert.match(kprune(['compare', '--help']).stdout, /KPRUNE_WRITE_LOG/);
});

test('stdout says where each file went; a second run says on stderr what it replaced', () => {
  const input = path.join(dir, 'where.onnx');
  copyFileSync(vgg, input);
  const args = [input, '--report', path.join(dir, 'where.html'), '--emit-masks', path.join(dir, 'where.masks.json'), '--latency-runs', '0'];
  const first = kprune(args);
  assert.equal(first.code, 0, first.stderr);
  assert.match(first.stdout, new RegExp(`^model: +${path.join(dir, 'where.kpruned.onnx').replace(/[.]/g, '\\.')}$`, 'm'));
  assert.match(first.stdout, /^report: +.*where\.html$/m);
  assert.match(first.stdout, /^masks: +.*where\.masks\.json$/m);
  assert.doesNotMatch(first.stderr, /replaced/);
  const second = kprune(args);
  assert.equal(second.code, 0, second.stderr);
  assert.match(second.stderr, /kprune: replaced the existing model file .*where\.kpruned\.onnx/);
  assert.match(second.stderr, /kprune: replaced the existing report file .*where\.html/);
  assert.match(second.stderr, /kprune: replaced the existing masks file .*where\.masks\.json/);
});

test('a failed gate is said on stderr too (exit 1), so that a log shows it when stdout is a report', () => {
  const r = kprune([vgg, '-o', path.join(dir, 'gate.onnx'), '--max-drop', '1', '--latency-runs', '0', '--json']);
  assert.equal(r.code, 1);
  assert.equal(JSON.parse(r.stdout).gate.passed, false);
  assert.match(r.stderr, /^kprune: quality gate --max-drop 1 failed: accuracy was not measured/m);
});

/** A stream as a log file or pipe is: no TTY. */
function fakeStream() {
  const lines: string[] = [];
  return { lines, stream: { isTTY: false, write: (s: string) => { lines.push(s); return true; } } as unknown as NodeJS.WriteStream };
}

test('off a terminal, progress is plain lines: each phase once, then throttled; nothing during the delay', async () => {
  const { lines, stream } = fakeStream();
  const view = progressView(true, stream, 50, 0);
  view.update({ phase: 'load' });
  view.update({ phase: 'reconstructing', done: 1, total: 3, unit: 'layers', detail: 'conv1' });
  view.update({ phase: 'reconstructing', done: 2, total: 3, unit: 'layers' });
  await new Promise((r) => setTimeout(r, 80));
  view.update({ phase: 'reconstructing', done: 3, total: 3, unit: 'layers' });
  view.done();
  assert.deepEqual(lines, ['kprune: load\n', 'kprune: reconstructing 1/3 layers (conv1)\n', 'kprune: reconstructing 3/3 layers\n']);
  assert.ok(lines.every((l) => !l.includes('\x1b') && !l.includes('\r')));

  const quick = fakeStream();
  const delayed = progressView(true, quick.stream, 50, 10_000);
  delayed.update({ phase: 'load' });
  assert.deepEqual(quick.lines, [], 'a run shorter than the delay prints nothing');
  const quiet = fakeStream();
  progressView(false, quiet.stream, 0, 0).update({ phase: 'load' });
  assert.deepEqual(quiet.lines, []);
});
