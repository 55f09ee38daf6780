/**
 * Interrupting a run (SIGINT, SIGTERM) in a given phase leaves the input untouched and no partial
 * or temporary file: an output is either absent (interrupted before the write) or complete and
 * loadable (after it). Each signal is sent when kprune's progress line announces the phase, and the
 * test asserts the phase kprune was in when it stopped (the last one it announced) and its exit
 * code (130 or 143): a run that ends some other way, or in another phase, fails.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { copyFileSync, existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { CLI, FIXTURES, listing, tempDir } from './helpers/tmp.js';

const dir = tempDir();
const SUBSET = path.join(FIXTURES, 'data', 'fashion-mnist', 't10k-images-idx3-ubyte.gz');
const FAKE_TTY = pathToFileURL(path.join(path.dirname(new URL(import.meta.url).pathname), 'helpers', 'fake-tty.js')).href;

interface Interrupted {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Every phase announced, in order, before kprune said it was interrupted. */
  phases: string[];
  message: string | undefined;
}

/** Runs the CLI, sends `signal` when the progress line first names `phase`, and reads what followed. */
function interruptIn(args: string[], phase: string, signal: NodeJS.Signals): Promise<Interrupted> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', FAKE_TTY, CLI, ...args], {
      stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, KPRUNE_TEST_FAKE_TTY: '1', NO_COLOR: '1' },
    });
    let text = '';
    let sent = false;
    const phases: string[] = [];
    let message: string | undefined;
    child.stderr.setEncoding('utf8');
    const see = (part: string, complete: boolean) => {
      if (message !== undefined) return;
      if (part.startsWith('kprune: interrupted')) {
        if (complete) message = part;
        return;
      }
      // "kprune: <phase>…" or "kprune: <phase> [###---] 3/7 layers  <detail>"; a redraw has no end
      // of line, so the text after the last one counts once its phase name is complete.
      const m = (complete ? /^kprune: (.+?)(?: \[|…|  |$)/ : /^kprune: (.+?)(?: \[|…|  )/).exec(part);
      if (m && phases[phases.length - 1] !== m[1]) phases.push(m[1]);
    };
    child.stderr.on('data', (chunk: string) => {
      text += chunk;
      // Progress redraws start with "\r\x1b[2K"; the interruption message is a line of its own.
      const parts = text.split(/\r\x1b\[2K|\n/);
      text = parts.pop()!;
      for (const part of parts) see(part, true);
      see(text, false);
      if (!sent && phases.includes(phase)) {
        sent = true;
        child.kill(signal);
      }
    });
    child.on('error', reject);
    child.on('close', (code, sig) => {
      see(text.trim(), true);
      resolve({ code, signal: sig, phases, message });
    });
  });
}

const common = ['--shape', 'cross', '--layout', 'decomposed', '--data', SUBSET, '--occlusion', '0'];
// Every output of a run is staged and committed together at the end (src/io/transaction.ts), so a
// signal in any phase before the commit, before or after the write phase, leaves no output at all.
const CASES: { phase: string; signal: NodeJS.Signals; args: string[]; afterWrite: boolean }[] = [
  { phase: 'reconstructing', signal: 'SIGINT', args: ['--calib', '128', '--eval', '100', '--latency-runs', '0'], afterWrite: false },
  { phase: 'latency', signal: 'SIGTERM', args: ['--recover', 'none', '--calib', '16', '--eval', '100', '--latency-runs', '5000'], afterWrite: true },
  { phase: 'evaluating', signal: 'SIGINT', args: ['--recover', 'none', '--calib', '16', '--eval', '1000', '--latency-runs', '0'], afterWrite: true },
];

test('SIGINT and SIGTERM in the middle of reconstructing, timing and evaluating: the phase is the one interrupted, no partial output, the input untouched', async () => {
  const input = path.join(dir, 'resnet.onnx');
  copyFileSync(path.join(FIXTURES, 'models', 'resnet-fmnist.onnx'), input);
  const before = readFileSync(input);
  for (const [i, c] of CASES.entries()) {
    const out = path.join(dir, `out${i}.onnx`);
    const r = await interruptIn([input, ...common, ...c.args, '-o', out], c.phase, c.signal);
    const what = `${c.signal} in ${c.phase}: exit ${r.code}, phases ${r.phases.join(' > ')}`;
    assert.equal(r.code, c.signal === 'SIGINT' ? 130 : 143, what);
    assert.equal(r.message, `kprune: interrupted (${c.signal}); no partial file was left`, what);
    assert.equal(r.phases[r.phases.length - 1], c.phase, `interrupted in the phase asked for: ${what}`);
    assert.ok(r.phases.includes('load') && r.phases.includes('data'), what);
    assert.equal(r.phases.includes('write'), c.afterWrite, what);
    assert.deepEqual(listing(dir).filter((f) => f.endsWith('.tmp') || f.startsWith('.')), [], `temporary files left: ${what}`);
    assert.equal(existsSync(out), false, `the staged output was not committed: ${what}`);
  }
  assert.ok(readFileSync(input).equals(before));
});
