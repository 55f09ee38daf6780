/**
 * The quality gate as a pipeline meets it: a reshaping that must lose far more than allowed (only
 * the centre tap kept, no recovery) exits 1 with the model written; the same run with a gate it
 * must pass exits 0. With labels the gate reads top-1; without them, agreement with the original.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, rmSync } from 'node:fs';
import path from 'node:path';
import { CLI, FIXTURES, tempDir } from './helpers/tmp.js';

const dir = tempDir('kprune-cli-gate-');
const vgg = path.join(FIXTURES, 'models', 'vgg-fmnist.onnx');
const LABELLED = path.join(FIXTURES, 'data', 'fashion-mnist', 't10k-images-idx3-ubyte.gz');

function kprune(args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd: dir, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

// Images without their labels file beside them: the data has no labels.
const UNLABELLED = path.join(dir, 'images-idx3-ubyte.gz');
copyFileSync(LABELLED, UNLABELLED);

for (const [what, data, metric] of [['with labels', LABELLED, 'top1'], ['without labels', UNLABELLED, 'agreement']] as const) {
  test(`--max-drop ${what}: a gate that must fail exits 1 and still writes the model; one that must pass exits 0`, () => {
    const out = path.join(dir, `centre-${metric}.onnx`);
    const common = [vgg, '--shape', '000/010/000', '--recover', 'none', '--data', data, '--calib', '16', '--eval', '200', '--occlusion', '0', '--latency-runs', '0', '-o', out, '--json'];
    const failing = kprune([...common, '--max-drop', '5']);
    assert.equal(failing.code, 1, `exit ${failing.code}: ${failing.stderr}`);
    const report = JSON.parse(failing.stdout);
    assert.equal(report.gate.metric, metric);
    assert.equal(report.gate.passed, false);
    assert.ok(report.gate.drop > 50, `only the centre tap of a 3x3 kernel, no recovery: ${report.gate.reason}`);
    assert.ok(existsSync(out), 'a failed gate still writes the model: the pipeline decides');
    rmSync(out);
    const passing = kprune([...common, '--max-drop', '100']);
    assert.equal(passing.code, 0, `exit ${passing.code}: ${passing.stderr}`);
    assert.equal(JSON.parse(passing.stdout).gate.passed, true);
    assert.ok(existsSync(out));
  });
}
