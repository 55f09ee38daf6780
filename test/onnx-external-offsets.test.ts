/**
 * External data as other writers lay it out: entries without an `offset` (the tensor starts at byte
 * 0 of its file) or without a `length` (it runs to the end of the file), through every layout. The
 * written model must compute exactly what the same model with inline weights, pruned the same way,
 * computes (in a plain onnxruntime session), and kprune must read it back.
 *
 * - per-file: every tensor in its own file, with a location only (no offset, no length).
 * - shared: one file whose first bytes two tensors share (a bias that is the start of a 1x1 weight,
 *   both without an offset entry): the output packs them one after the other, so the one that moves
 *   needs an offset entry it did not have. The last tensor has no length entry.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import onnxProto from 'onnx-proto';
import * as ort from 'onnxruntime-node';
import { prune } from '../src/pipeline/prune.js';
import { loadModel } from '../src/models/index.js';
import { convNode, randomFloats, valueInfo } from './helpers/onnx-builder.js';
import { tempDir } from './helpers/tmp.js';

const { onnx } = onnxProto;
const dir = tempDir('kprune-external-offsets-');
const C = 4;
const S = 8;

const bytesOf = (v: Float32Array) => new Uint8Array(v.buffer.slice(v.byteOffset, v.byteOffset + v.byteLength));

/**
 * input [1,4,8,8] -> conv1 3x3 (w1, b1) -> Relu -> conv2 3x3 (w2, b2) -> conv3 1x1 (w3) -> output.
 * b1 is the first four values of w3, so that the two can share bytes.
 */
function weights() {
  const w3 = randomFloats(C * C, 7);
  return { b1: w3.slice(0, C), w3, w1: randomFloats(C * C * 9, 5), w2: randomFloats(C * C * 9, 6), b2: randomFloats(C, 8) };
}
const DIMS: Record<string, number[]> = { b1: [C], w3: [C, C, 1, 1], w1: [C, C, 3, 3], w2: [C, C, 3, 3], b2: [C] };
/** The file order of the shared layout; b1 lies inside w3's bytes. */
const SHARED_ORDER = ['w3', 'w1', 'w2', 'b2'];

type Variant = 'inline' | 'per-file' | 'shared';

function writeModel(folder: string, variant: Variant): string {
  mkdirSync(folder, { recursive: true });
  const w = weights();
  const entries = (e: Record<string, string>) => Object.entries(e).map(([key, value]) => ({ key, value }));
  const offsets = new Map<string, number>();
  if (variant === 'shared') {
    let at = 0;
    for (const name of SHARED_ORDER) {
      offsets.set(name, at);
      at += 4 * w[name as keyof typeof w].length;
    }
    writeFileSync(path.join(folder, 'weights.bin'), Buffer.concat(SHARED_ORDER.map((n) => bytesOf(w[n as keyof typeof w]))));
  }
  // Initializers in this order: b1 and w3 both start at byte 0 of the shared file.
  const initializer = (['b1', 'w3', 'w1', 'w2', 'b2'] as const).map((name) => {
    const values = w[name];
    const base = { name, dims: DIMS[name], dataType: 1 };
    if (variant === 'inline') return { ...base, rawData: bytesOf(values) };
    if (variant === 'per-file') {
      writeFileSync(path.join(folder, `${name}.bin`), bytesOf(values));
      return { ...base, dataLocation: 1, externalData: entries({ location: `${name}.bin` }) };
    }
    const ext: Record<string, string> = { location: 'weights.bin' };
    if (name !== 'b1' && name !== 'w3') ext.offset = String(offsets.get(name));
    if (name !== 'b2') ext.length = String(4 * values.length);
    return { ...base, dataLocation: 1, externalData: entries(ext) };
  });
  const model = onnx.ModelProto.encode({
    irVersion: 8,
    producerName: 'kprune-test',
    opsetImport: [{ domain: '', version: 13 }],
    graph: {
      name: 'external',
      node: [
        convNode({ name: 'conv1', input: 'input', output: 'h1', weight: 'w1', bias: 'b1' }),
        { name: 'relu', opType: 'Relu', input: ['h1'], output: ['h2'] },
        convNode({ name: 'conv2', input: 'h2', output: 'h3', weight: 'w2', bias: 'b2' }),
        {
          name: 'conv3', opType: 'Conv', input: ['h3', 'w3'], output: ['output'],
          attribute: [{ name: 'kernel_shape', type: onnx.AttributeProto.AttributeType.INTS, ints: [1, 1] }],
        },
      ],
      initializer,
      input: [valueInfo('input', [1, C, S, S])],
      output: [valueInfo('output', [1, C, S, S])],
    },
  }).finish();
  const file = path.join(folder, 'model.onnx');
  writeFileSync(file, model);
  return file;
}

const X = randomFloats(C * S * S, 99);

async function run(file: string): Promise<Float32Array> {
  const s = await ort.InferenceSession.create(file);
  try {
    const out = await s.run({ input: new ort.Tensor('float32', X, [1, C, S, S]) });
    return out.output.data as Float32Array;
  } finally {
    await s.release();
  }
}

function snapshot(folder: string): Record<string, string> {
  return Object.fromEntries(readdirSync(folder).sort().map((f) => [f, readFileSync(path.join(folder, f)).toString('base64')]));
}

/**
 * Every external tensor of a written model, read as the ONNX spec says (no offset: byte 0; no
 * length: to the end of the file), holds exactly its elements: a reader stricter than onnxruntime
 * (which sizes a tensor by its dims) would otherwise read the bytes appended after it.
 */
function assertExternalAsSpecified(file: string): void {
  const m = onnx.ModelProto.decode(readFileSync(file));
  for (const t of m.graph?.initializer ?? []) {
    if (t.dataLocation !== onnx.TensorProto.DataLocation.EXTERNAL) continue;
    const entry = (k: string) => t.externalData?.find((e) => e.key === k)?.value ?? undefined;
    const data = readFileSync(path.join(path.dirname(file), entry('location')!));
    const offset = Number(entry('offset') ?? 0);
    const length = entry('length') === undefined ? data.length - offset : Number(entry('length'));
    const elements = (t.dims ?? []).reduce((a: number, d) => a * Number(d), 1);
    assert.equal(length, elements * 4, `${t.name}: ${length} bytes from offset ${offset} as the spec reads it, for ${elements} float32 elements`);
  }
}

const inline = writeModel(path.join(dir, 'inline'), 'inline');

for (const variant of ['per-file', 'shared'] as const) {
  for (const layout of ['masked', 'decomposed', 'sparse'] as const) {
    test(`external data (${variant}, entries without offset) through the ${layout} layout computes what the inline model does`, async () => {
      const folder = path.join(dir, `${variant}-${layout}`);
      const input = writeModel(folder, variant);
      const before = snapshot(folder);
      // The model as written reads the same weights as the inline one.
      assert.deepEqual(await run(input), await run(inline), 'the test model itself');
      const outDir = path.join(dir, `${variant}-${layout}-out`);
      mkdirSync(outDir);
      const out = path.join(outDir, 'pruned.onnx');
      const expected = path.join(dir, `inline-${variant}-${layout}.onnx`);
      await prune(input, { shape: 'qh-right', layout, output: out, latencyRuns: 0 });
      await prune(inline, { shape: 'qh-right', layout, output: expected, latencyRuns: 0 });
      const got = await run(out);
      const want = await run(expected);
      assert.equal(got.length, want.length);
      for (let i = 0; i < want.length; i++) assert.ok(Math.abs(got[i] - want[i]) <= 1e-5 * Math.max(1, Math.abs(want[i])), `output[${i}]: ${got[i]} vs ${want[i]}`);
      // kprune reads its own output back: the same 3x3 weights (the masked layout keeps them as tensors).
      const back = await loadModel(out);
      const ref = await loadModel(expected);
      assert.deepEqual(back.layers.map((l) => l.id), ref.layers.map((l) => l.id));
      for (const [i, l] of back.layers.entries()) assert.deepEqual(l.weights, ref.layers[i].weights, `${layout}: ${l.id}`);
      assert.deepEqual(snapshot(folder), before, 'the input and its data files are untouched');
      assertExternalAsSpecified(out);
    });
  }
}
