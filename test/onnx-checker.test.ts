/**
 * Independent validation: every layout kprune writes, for every bundled model, passes the ONNX
 * project's own checker with full_check (shape inference included), via Debian python3-onnx, which
 * .ci/run installs. (Every other ONNX file the suite writes meets the same checker when its test
 * folder is removed: see helpers/tmp.ts.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { prune } from '../src/index.js';
import { checkOnnxFiles, onnxCheckerAvailable } from './helpers/onnx-checker.js';
import { FIXTURES, tempDir, writtenOnnxFiles } from './helpers/tmp.js';

const dir = tempDir();
const skip = onnxCheckerAvailable() ? false : 'python3 with the onnx package is not installed (apt-get install python3-onnx)';

test('onnx.checker accepts every output layout of every bundled model', { skip }, async () => {
  const models = ['resnet-fmnist.onnx', 'vgg-fmnist.onnx', 'dwsep-fmnist.onnx', 'misc-fmnist.onnx', 'vgg-fmnist-constants.onnx', 'vgg-fmnist-external/model.onnx'];
  const outputs: string[] = [];
  for (const name of models) {
    for (const layout of ['masked', 'decomposed', 'sparse'] as const) {
      for (const shape of ['qh', '011/111/110']) {
        const out = path.join(dir, `${name.replace(/\//g, '_')}.${layout}.${shape.replace(/\//g, '')}.onnx`);
        await prune(path.join(FIXTURES, 'models', name), { shape, layout, output: out, latencyRuns: 0 });
        outputs.push(out);
      }
    }
  }
  // The write log the folder check relies on saw every one of them.
  assert.deepEqual(writtenOnnxFiles(dir).sort(), [...outputs].sort());
  assert.equal(checkOnnxFiles(outputs), null);
});

test('the checker is a real judge: it refuses a model whose Conv weight has the wrong rank', { skip }, async () => {
  const { writeFileSync } = await import('node:fs');
  const onnxProto = (await import('onnx-proto')).default;
  const { onnx } = onnxProto;
  const bad = onnx.ModelProto.encode({
    irVersion: 8,
    opsetImport: [{ domain: '', version: 13 }],
    graph: {
      name: 'g',
      node: [{ opType: 'Conv', input: ['x', 'w'], output: ['y'] }],
      initializer: [{ name: 'w', dims: [2, 3], dataType: 1, floatData: [1, 2, 3, 4, 5, 6] }],
      input: [{ name: 'x', type: { tensorType: { elemType: 1, shape: { dim: [{ dimValue: 1 }, { dimValue: 3 }, { dimValue: 4 }, { dimValue: 4 }] } } } }],
      output: [{ name: 'y', type: { tensorType: { elemType: 1 } } }],
    },
  }).finish();
  const file = path.join(dir, 'not-by-kprune.onnx');
  writeFileSync(file, bad);
  assert.match(checkOnnxFiles([file]) ?? '', /not-by-kprune\.onnx: /);
});
