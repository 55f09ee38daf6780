/**
 * The masks document (`--emit-masks`) applied in PyTorch with the README's recipe, on the PyTorch
 * classes that trained and exported the bundled fixtures: every entry's guessed `torchModule` must
 * be a Conv2d with the reported kernel shape, and the masked positions must stay exactly zero
 * through training (test/python/apply_masks.py). Needs Debian's python3-torch (.ci/run installs it).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { masksDocument, prune } from '../src/index.js';
import { FIXTURES, tempDir } from './helpers/tmp.js';

const PYTHON = '/usr/bin/python3';
const SCRIPT = path.resolve(new URL('../../test/python/apply_masks.py', import.meta.url).pathname);
const torch = spawnSync(PYTHON, ['-c', 'import torch'], { encoding: 'utf8' }).status === 0;
const dir = tempDir();

for (const name of ['resnet-fmnist', 'vgg-fmnist', 'dwsep-fmnist', 'misc-fmnist']) {
  test(`${name}: the emitted masks apply in PyTorch with the README's recipe and hold through training`, { skip: torch ? false : 'python3-torch is not installed' }, async (t) => {
    const report = await prune(path.join(FIXTURES, 'models', `${name}.onnx`), { shape: 'qh', output: path.join(dir, `${name}.onnx`), latencyRuns: 0, run: false });
    const masks = path.join(dir, `${name}.masks.json`);
    writeFileSync(masks, JSON.stringify(masksDocument(report)));
    const r = spawnSync(PYTHON, [SCRIPT, name, masks], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr.trim().split('\n').slice(-1)[0]);
    const out = JSON.parse(r.stdout) as { layers: number; moved: number; modules: string[] };
    assert.equal(out.layers, report.layers.length);
    assert.ok(out.moved > 0, 'kept positions trained');
    t.diagnostic(`${out.layers} layers: ${out.modules.join(', ')}`);
  });
}
