/**
 * The fixtures are what their README says: onnxruntime reproduces PyTorch's logits, and kprune
 * finds exactly the 3x3 convolutions the exporter's table lists (names, weights, groups, strides,
 * dilations).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import * as ort from 'onnxruntime-node';
import { loadModel } from '../src/index.js';
import { FIXTURES } from './helpers/tmp.js';

interface ExpectedConv { name: string; weight: string; group: number; strides: number[]; dilations: number[] }
const expected = JSON.parse(readFileSync(path.join(FIXTURES, 'generate', 'expected.json'), 'utf8')) as {
  logits_images: number;
  models: Record<string, { conv3x3: ExpectedConv[]; logits?: number[][] }>;
};

const images = gunzipSync(readFileSync(path.join(FIXTURES, 'data', 'fashion-mnist', 't10k-images-idx3-ubyte.gz')));

for (const [name, m] of Object.entries(expected.models)) {
  test(`${name}: kprune finds the exporter's 3x3 convolutions${m.logits ? ', onnxruntime reproduces PyTorch' : ''}`, async () => {
    const file = path.join(FIXTURES, 'models', name);
    const model = await loadModel(file);
    const found = model.layers.flatMap((l) => l.uses.map((u) => ({ name: u.node, weight: l.id, group: u.group, strides: u.strides, dilations: u.dilations })));
    assert.deepEqual(
      found.sort((a, b) => a.name.localeCompare(b.name)),
      m.conv3x3.map((c) => ({ name: c.name, weight: c.weight, group: c.group, strides: c.strides, dilations: c.dilations })).sort((a, b) => a.name.localeCompare(b.name)),
    );
    if (!m.logits) return;
    const n = m.logits.length;
    const x = Float32Array.from(images.subarray(16, 16 + n * 784), (v) => v / 255);
    const s = await ort.InferenceSession.create(file);
    const y = (await s.run({ [s.inputNames[0]]: new ort.Tensor('float32', x, [n, 1, 28, 28]) }))[s.outputNames[0]].data as Float32Array;
    await s.release();
    m.logits.flat().forEach((v, i) => assert.ok(Math.abs(y[i] - v) < 1e-3, `logit ${i}: ${y[i]} vs ${v}`));
  });
}
