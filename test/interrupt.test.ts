/**
 * Interrupting a run at any phase (SIGINT, SIGTERM) leaves the input untouched and no partial or
 * temporary file: an output is either absent or complete and loadable.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { copyFileSync, existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { CLI, FIXTURES, listing, tempDir } from './helpers/tmp.js';

const dir = tempDir();
const SUBSET = path.join(FIXTURES, 'data', 'fashion-mnist', 't10k-images-idx3-ubyte.gz');

function runAndSignal(args: string[], afterMs: number, signal: NodeJS.Signals): Promise<number | null> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: 'ignore' });
    const timer = setTimeout(() => child.kill(signal), afterMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve(code);
    });
  });
}

test('SIGINT and SIGTERM at different moments leave no partial output and the input untouched', async () => {
  const input = path.join(dir, 'resnet.onnx');
  copyFileSync(path.join(FIXTURES, 'models', 'resnet-fmnist.onnx'), input);
  const before = readFileSync(input);
  const delays = [150, 600, 1200, 2000, 3000];
  for (const [i, ms] of delays.entries()) {
    const out = path.join(dir, `out${i}.onnx`);
    const signal = i % 2 === 0 ? 'SIGINT' : 'SIGTERM';
    const code = await runAndSignal([input, '--shape', 'cross', '--layout', 'decomposed', '--data', SUBSET, '--calib', '256', '--eval', '400', '-o', out, '--latency-runs', '200'], ms, signal);
    // null: killed before kprune had installed its handlers (still loading), when nothing can be written yet.
    assert.ok(code === null || code === 0 || code === (signal === 'SIGINT' ? 130 : 143), `exit ${code} after ${signal} at ${ms} ms`);
    if (code === null) assert.ok(!existsSync(out));
    assert.deepEqual(listing(dir).filter((f) => f.endsWith('.tmp')), [], `temporary files left after ${signal} at ${ms} ms`);
    if (existsSync(out)) {
      const s = await ort.InferenceSession.create(out);
      await s.release();
    }
  }
  assert.ok(readFileSync(input).equals(before));
});
