/**
 * Independent validation: every layout kprune writes, for every bundled model, passes the ONNX
 * project's own checker (Debian python3-onnx; .ci/run installs it). Sparse outputs get the plain
 * check: onnx's shape inference types a sparse initializer as sparse_tensor, which Conv's W does
 * not accept, although onnxruntime loads and densifies it (the layouts test runs them).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { prune } from '../src/index.js';
import { FIXTURES, tempDir } from './helpers/tmp.js';

const PYTHON = '/usr/bin/python3';
const probe = spawnSync(PYTHON, ['-c', 'import onnx'], { encoding: 'utf8' });
const available = probe.status === 0;
const dir = tempDir();

const CHECK = `
import sys, onnx
full = sys.argv[1] == 'full'
for p in sys.argv[2:]:
    onnx.checker.check_model(onnx.load(p), full_check=full)
print('checked', len(sys.argv) - 2)
`;

function check(files: string[], full: boolean): void {
  const r = spawnSync(PYTHON, ['-c', CHECK, full ? 'full' : 'plain', ...files], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr.split('\n').filter(Boolean).slice(-1)[0]);
  assert.match(r.stdout, new RegExp(`checked ${files.length}`));
}

test('onnx.checker accepts every output layout of every bundled model', { skip: available ? false : 'python3 with the onnx package is not installed (apt-get install python3-onnx)' }, async () => {
  const models = ['resnet-fmnist.onnx', 'vgg-fmnist.onnx', 'dwsep-fmnist.onnx', 'misc-fmnist.onnx', 'vgg-fmnist-constants.onnx', 'vgg-fmnist-external/model.onnx'];
  const full: string[] = [];
  const plain: string[] = [];
  for (const name of models) {
    for (const layout of ['masked', 'decomposed', 'sparse'] as const) {
      for (const shape of ['qh', '011/111/110']) {
        const out = path.join(dir, `${name.replace(/\//g, '_')}.${layout}.${shape.replace(/\//g, '')}.onnx`);
        await prune(path.join(FIXTURES, 'models', name), { shape, layout, output: out, latencyRuns: 0 });
        (layout === 'sparse' && !name.includes('constants') ? plain : full).push(out);
      }
    }
  }
  check(full, true);
  check(plain, false);
});
