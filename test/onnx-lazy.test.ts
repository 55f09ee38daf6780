/**
 * Lazy ONNX reads (src/formats/onnx/skeleton.ts): a model read with its large inline tensors left
 * in the file must describe, count and hand out exactly what the whole read does, refuse to be
 * written, and fail on damaged files as the whole read does.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { readOnnxModel, tensorFloats } from '../src/formats/onnx/read.js';
import { onnxInventory } from '../src/formats/onnx/inventory.js';
import { findConv3x3 } from '../src/formats/onnx/convs.js';
import { writeOnnxModel } from '../src/formats/onnx/write.js';
import { readSkeleton } from '../src/formats/onnx/skeleton.js';
import { isKpruneError } from '../src/errors.js';
import { FIXTURES, tempDir } from './helpers/tmp.js';

const MODELS = ['vgg-fmnist.onnx', 'resnet-fmnist.onnx', 'dwsep-fmnist.onnx', 'misc-fmnist.onnx', 'vgg-fmnist-constants.onnx', 'vgg-fmnist-external/model.onnx'];
const dir = tempDir('kprune-lazy-');

for (const name of MODELS) {
  test(`${name}: read lazily (every raw_data of 64 bytes or more left in the file), it describes and counts as read whole`, async () => {
    const file = path.join(FIXTURES, 'models', name);
    const whole = await readOnnxModel(file);
    const lazy = await readOnnxModel(file, { lazy: true, lazyMinBytes: 64 });
    assert.ok(lazy.payloads);
    const leftInFile = [...lazy.constants.values()].filter((r) => r.inFile);
    if (whole.externalFiles.size === 0) assert.ok(leftInFile.length > 0, 'some tensors are left in the file');
    assert.ok(lazy.bytes.length < whole.bytes.length || whole.externalFiles.size > 0);
    assert.deepEqual([...lazy.constants.keys()], [...whole.constants.keys()]);
    for (const [n, ref] of whole.constants) {
      const l = lazy.constants.get(n)!;
      assert.deepEqual([l.dims, l.dataType, l.storage, l.origin], [ref.dims, ref.dataType, ref.storage, ref.origin], n);
      if (ref.dataType === 1) assert.deepEqual(tensorFloats(lazy, l), tensorFloats(whole, ref), n);
    }
    const inv = (m: typeof whole) => onnxInventory(m).weights.map((w) => [w.name, w.elements, w.nonzero]);
    assert.deepEqual(inv(lazy), inv(whole));
    const layers = (m: typeof whole) => findConv3x3(m).layers.map((l) => [l.id, l.name, Array.from(l.weights)]);
    assert.deepEqual(layers(lazy), layers(whole));
    // Everything but the payloads is the file's own structure.
    assert.deepEqual(lazy.graph.node?.map((n) => n.opType), whole.graph.node?.map((n) => n.opType));
  });
}

test('the skeleton holds everything but the payloads: the same structure, each payload a 16-byte marker', () => {
  const file = path.join(FIXTURES, 'models', 'vgg-fmnist.onnx');
  const bytes = readFileSync(file);
  const s = readSkeleton(file, 64);
  const payloadBytes = s.payloads.reduce((a, p) => a + p.length, 0);
  assert.ok(s.payloads.length > 0);
  // Each payload gives way to a marker; a length prefix may shrink by a few bytes per level.
  assert.ok(s.bytes.length <= bytes.length - payloadBytes + 16 * s.payloads.length);
  assert.ok(s.bytes.length >= bytes.length - payloadBytes);
  for (const p of s.payloads) assert.ok(p.offset + p.length <= bytes.length);
});

test('a model read lazily is never written (the writer needs the file\'s bytes)', async () => {
  const lazy = await readOnnxModel(path.join(FIXTURES, 'models', 'vgg-fmnist.onnx'), { lazy: true, lazyMinBytes: 64 });
  await assert.rejects(writeOnnxModel(lazy, new Map(), path.join(dir, 'x.onnx')), /needs the whole model/);
});

test('a truncated file fails lazily as it does whole: a bad-model error naming truncation', async () => {
  const bytes = readFileSync(path.join(FIXTURES, 'models', 'vgg-fmnist.onnx'));
  for (const cut of [7, Math.floor(bytes.length / 2), bytes.length - 3]) {
    const file = path.join(dir, `cut${cut}.onnx`);
    writeFileSync(file, bytes.subarray(0, cut));
    for (const lazy of [false, true]) {
      const e = await readOnnxModel(file, { lazy, lazyMinBytes: 64 }).then(() => null, (x: unknown) => x);
      assert.ok(isKpruneError(e) && e.code === 'bad-model' && /truncated or corrupt/.test(e.message), `${cut} lazy=${lazy}: ${String(e)}`);
    }
  }
});
