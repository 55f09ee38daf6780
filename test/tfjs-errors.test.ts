/**
 * Bad TF.js input: clear KpruneErrors naming the problem, and nothing written. Also the writer's
 * own guards (never over an input file) and its options (float32 storage, the default folder).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { KpruneError } from '../src/errors.js';
import { loadModel } from '../src/models/index.js';
import { loadTfjs, readTfjsModel, tfjsKprunedPath } from '../src/models/tfjs/index.js';
import { weightFloats } from '../src/formats/tfjs/read.js';
import { analyze } from '../src/pipeline/analyze.js';
import { prune } from '../src/pipeline/prune.js';
import { fileHandler } from '../src/models/tfjs/io.js';
import { maskWeights } from '../src/core/reshape.js';
import { parseMask } from '../src/core/lattice.js';
import { kernelCount } from '../src/model/conv.js';
import { saveLayersModel, seedWeights, sequentialModel, tfjs } from './helpers/tfjs-models.js';
import { tempDir } from './helpers/tmp.js';

const dir = tempDir('kprune-tfjs-bad-');
let base = '';

/** A fresh copy of a small uint8-quantized Sequential model in two shards, edited by `edit`. */
async function variant(name: string, edit: (doc: Record<string, any>, folder: string) => void = () => {}): Promise<string> {
  if (!base) {
    const tf = await tfjs();
    const m = sequentialModel(tf);
    seedWeights(tf, m, 31);
    base = await saveLayersModel(tf, m, path.join(dir, 'base'), { shardBytes: 1024, quantize: 'uint8' });
  }
  const folder = path.join(dir, name);
  cpSync(path.dirname(base), folder, { recursive: true });
  const file = path.join(folder, 'model.json');
  const doc = JSON.parse(readFileSync(file, 'utf8'));
  edit(doc, folder);
  writeFileSync(file, JSON.stringify(doc));
  return file;
}

async function expectError(p: Promise<unknown>, code: string, message: RegExp): Promise<KpruneError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof KpruneError, `a KpruneError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    assert.match(e.message, message);
    return e;
  }
  assert.fail(`expected a ${code} error`);
}

/** prune must fail and leave the output folder empty. */
async function pruneFails(file: string, code: string, message: RegExp): Promise<void> {
  const out = path.join(path.dirname(file) + '.out', 'model.json');
  mkdirSync(path.dirname(out), { recursive: true });
  await expectError(prune(file, { layout: 'masked', shape: 'cross', output: out, latencyRuns: 0 }), code, message);
  assert.deepEqual(readdirSync(path.dirname(out)), [], 'nothing written');
}

test('a model.json that is neither format', async () => {
  const neither = path.join(dir, 'neither', 'model.json');
  mkdirSync(path.dirname(neither));
  writeFileSync(neither, JSON.stringify({ hello: 'world' }));
  await expectError(loadModel(neither), 'bad-model', /not a TF\.js model\.json: it has neither "modelTopology" nor "weightsManifest"/);
  await pruneFails(neither, 'bad-model', /neither/);
  writeFileSync(neither, JSON.stringify([{ paths: ['a.bin'], weights: [] }]));
  await expectError(loadModel(neither), 'bad-model', /not an object/);
  writeFileSync(neither, JSON.stringify({ weightsManifest: [] }));
  await expectError(loadModel(neither), 'bad-model', /weights-only file/);
  writeFileSync(neither, JSON.stringify({ format: 'saved-model', modelTopology: {}, weightsManifest: [] }));
  await expectError(loadModel(neither), 'bad-model', /unknown TF\.js model format "saved-model"/);
  writeFileSync(neither, '{"modelTopology": ');
  await expectError(loadModel(neither), 'bad-model', /not valid JSON/);
});

test('a missing shard and a short shard', async () => {
  const missing = await variant('missing', (_doc, folder) => rmSync(path.join(folder, 'group1-shard2of2.bin')));
  await expectError(loadModel(missing), 'not-found', /weight shard "group1-shard2of2\.bin" named by the manifest does not exist/);
  await pruneFails(missing, 'not-found', /does not exist/);
  const short = await variant('short', (_doc, folder) => truncateSync(path.join(folder, 'group1-shard2of2.bin'), 10));
  await expectError(loadModel(short), 'bad-model', /weight group 1 is short: its shards \(.*group1-shard2of2\.bin 10 bytes\) hold \d+ bytes but its 15 weights need \d+/);
  await pruneFails(short, 'bad-model', /is short/);
});

test('manifest paths that leave the folder', async () => {
  for (const [name, p] of [['dotdot', '../base/group1-shard1of3.bin'], ['absolute', '/etc/hostname'], ['url', 'https://example.com/w.bin']] as const) {
    const file = await variant(`escape-${name}`, (doc) => { doc.weightsManifest[0].paths[0] = p; });
    const e = await expectError(loadModel(file), 'unsafe-path', /weightsManifest\[0\] path/);
    assert.ok(e.message.includes(p), e.message);
    await pruneFails(file, 'unsafe-path', /path/);
  }
});

test('an unknown layer with a 3x3 kernel is named and skipped; prune writes nothing TF.js cannot load', async () => {
  const file = await variant('unknown-layer', (doc) => {
    const layer = doc.modelTopology.config.layers.find((l: { config: { name: string } }) => l.config.name === 'c_dil');
    layer.class_name = 'MyFancyConv';
  });
  const a = await analyze(file);
  assert.deepEqual(a.skipped, [{ node: 'c_dil', opType: 'MyFancyConv', reason: 'layer class "MyFancyConv" is unknown to kprune; its 3x3 kernel "c_dil/kernel" is left as it is' }]);
  assert.ok(!a.layers.some((l) => l.id === 'c_dil/kernel'));
  assert.equal(a.layers.length, 4);
  await pruneFails(file, 'unsupported', /TF\.js cannot load the model: Unknown layer: MyFancyConv/);
});

test('a quantization dtype kprune does not know', async () => {
  const file = await variant('int4', (doc) => { doc.weightsManifest[0].weights[2].quantization.dtype = 'int4'; });
  await expectError(loadModel(file), 'unsupported', /weight "c_stride\/kernel" is quantized as "int4", which kprune does not know \(known: uint8, uint16, float16\)/);
  await pruneFails(file, 'unsupported', /int4/);
  const dtype = await variant('float64', (doc) => { doc.weightsManifest[0].weights[0].dtype = 'float64'; });
  await expectError(loadModel(dtype), 'unsupported', /dtype "float64", which kprune does not know/);
});

test('the output never replaces an input file', async () => {
  const file = await variant('clobber');
  // Beside the input, the shards would take the input shards' names.
  await expectError(prune(file, { layout: 'masked', shape: 'cross', output: path.join(path.dirname(file), 'pruned.json'), latencyRuns: 0 }), 'unsafe-path', /would overwrite a file of the input model/);
  assert.ok(!existsSync(path.join(path.dirname(file), 'pruned.json')));
  await expectError(prune(file, { layout: 'masked', shape: 'cross', output: file, latencyRuns: 0 }), 'unsafe-path', /the output model would overwrite the input model/);
  const model = await loadModel(file);
  await expectError(model.write(new Map(), path.join(dir, 'x.onnx')), 'usage', /should be a \.json file/);
});

test('the default output is a folder beside the input; --weights float32 stores float32', async () => {
  const file = await variant('defaults');
  assert.equal(tfjsKprunedPath(file), path.join(path.dirname(file), 'model.kpruned', 'model.json'));
  const model = await loadTfjs(file, { write: { weights: 'float32' } });
  const cross = parseMask('010/111/010');
  const weights = new Map(model.layers.map((l) => [l.id, maskWeights(l.weights, kernelCount(l), cross)]));
  const out = model.defaultOutputPath();
  const written = await model.write(weights, out);
  assert.equal(written.files[written.files.length - 1], out);
  const after = await readTfjsModel(out);
  const before = await readTfjsModel(file);
  assert.ok(after.weights.every((w) => w.storage.kind === 'plain' && w.dtype === 'float32'));
  for (const w of before.weights) {
    const a = weightFloats(after, after.byName.get(w.name)!)!;
    const expected = model.layers.some((l) => l.id === w.name) ? null : weightFloats(before, w)!;
    if (expected) assert.deepEqual(a, expected, `${w.name}: the dequantized values, as float32`);
  }
  // Back through the LoadedModel: the same 3x3 weights as written.
  const reloaded = await loadModel(out);
  for (const l of reloaded.layers) assert.deepEqual(l.weights, weights.get(l.id), l.id);
  const tf = await tfjs();
  const m = await tf.loadLayersModel(fileHandler(out));
  m.dispose();
  assert.match(await model.verifyWritten(out, new Map([[model.inputs[0].name, [1, 12, 12, 3]]])), /loaded and ran once in TF\.js/);
});
