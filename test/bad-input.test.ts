/**
 * Issue 11, defects 4-6 and the "Also" list, as a user meets them on the command line: every
 * crafted input ends in exit 2 (never 3) with one line naming the file and the problem, nothing
 * written, and the input's bytes unchanged; or, where the input is valid, in a correct output.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, symlinkSync } from 'node:fs';
import path from 'node:path';
import { CLI, tempDir } from './helpers/tmp.js';
import { npyBytes, pngBytes, put } from './helpers/data-files.js';
import {
  constantShadowingInitializer, declaredInput, deepArray, duplicateInitializer, idxDeclaring, manyGraphFields, nodeNamed, nodeOutputShadowingInitializer,
  npz, npyDeclaring, pngDeclaring, sha256, sparseInitializer, tfjsQuantized, tiny, weightValue,
} from './helpers/hostile.js';
import { readOnnxModel, tensorFloats } from '../src/formats/onnx/read.js';

const dir = tempDir('kprune-bad-input-');

function kprune(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd: dir, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1', ...env } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Temporary or partial files an interrupted or failed write could leave. */
function leftovers(): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) walk(path.join(d, e.name));
      else if (/\.tmp$|kpruned|^out\./.test(e.name)) out.push(path.join(d, e.name));
    }
  };
  walk(dir);
  return out;
}

/**
 * Runs kprune and checks the bad-input contract: exit 2, one stderr line "kprune: <file>: ..."
 * matching `problem`, nothing on stdout, no output, and every input byte-for-byte as before.
 */
function refused(args: string[], o: { inputs: string[]; names: string; problem: RegExp; env?: Record<string, string> }): string {
  const before = o.inputs.map(sha256);
  const out = path.join(dir, 'out.onnx');
  const extra = args[0] === 'analyze' ? [] : [...(args.includes('-o') ? [] : ['-o', out]), ...(args.includes('--latency-runs') ? [] : ['--latency-runs', '0'])];
  const r = kprune([...args, ...extra], o.env);
  assert.equal(r.code, 2, `${args.join(' ')}: exit ${r.code}\n${r.stderr}`);
  const lines = r.stderr.split('\n').filter((l) => l !== '');
  assert.equal(lines.length, 1, `one line: ${r.stderr}`);
  assert.ok(lines[0].startsWith(`kprune: ${path.resolve(dir, o.names)}: `), `names ${o.names}: ${lines[0]}`);
  assert.match(lines[0], o.problem);
  assert.equal(r.stdout, '');
  assert.deepEqual(leftovers(), [], 'nothing written');
  assert.deepEqual(o.inputs.map(sha256), before, 'inputs unchanged');
  return lines[0];
}

const model = (name: string, bytes: Uint8Array) => put(dir, name, bytes);

test('defect 4: a tensor defined twice (two initializers, or an initializer and a Constant) is refused, naming it', () => {
  const dup = model('dup.onnx', duplicateInitializer());
  refused([dup], { inputs: [dup], names: 'dup.onnx', problem: /tensor "w1" is defined twice \(two initializers\)/ });
  const shadow = model('shadow.onnx', constantShadowingInitializer());
  refused([shadow], { inputs: [shadow], names: 'shadow.onnx', problem: /tensor "w1" is defined twice \(an initializer and Constant node "shadow"\)/ });
  const relu = model('relu-shadow.onnx', nodeOutputShadowingInitializer());
  refused([relu], { inputs: [relu], names: 'relu-shadow.onnx', problem: /tensor "w2" is defined twice \(an initializer and Relu node "relu1"\)/ });
  refused(['analyze', dup], { inputs: [dup], names: 'dup.onnx', problem: /defined twice/ });
});

test('defect 5: a graph of 140,000 fields is written (no stack overflow), its weights masked', async () => {
  const many = model('many.onnx', manyGraphFields(140_000));
  const before = sha256(many);
  const written = path.join(dir, 'many-written.onnx');
  const r = kprune([many, '-o', written, '--layout', 'masked', '--latency-runs', '0', '--no-gzip']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(sha256(many), before);
  const m = await readOnnxModel(written);
  assert.equal(m.graph.valueInfo?.length, 140_000);
  const w1 = tensorFloats(m, m.constants.get('w1')!);
  const original = tensorFloats(await readOnnxModel(many), (await readOnnxModel(many)).constants.get('w1')!);
  for (let i = 0; i < w1.length; i++) assert.equal(w1[i], [0, 2, 6, 8].includes(i % 9) ? 0 : original[i]);
});

test('defect 5: declared sizes beyond a limit (sparse tensor, model input, --input-shape) are exit 2 naming the limit', () => {
  const sparse = model('sparse.onnx', sparseInitializer([65536, 65536, 3, 3]));
  refused([sparse], { inputs: [sparse], names: 'sparse.onnx', problem: /sparse tensor "big" of shape \[65536, 65536, 3, 3\] made dense: 154,618,822,656 bytes, over the limit .*KPRUNE_MAX_TENSOR_BYTES/ });
  const huge = model('huge-input.onnx', declaredInput(100_000));
  refused([huge], { inputs: [huge], names: 'huge-input.onnx', problem: /declares input "input" as \[1, 4, 100000, 100000\]: 40,000,000,000 elements, over the limit .*KPRUNE_MAX_INPUT_ELEMENTS.*--no-run/ });
  // The 2 KB model declaring 8000x8000 (over 4 GB when run): refused by default.
  const big = model('big-input.onnx', declaredInput(8000, 1));
  refused([big], { inputs: [big], names: 'big-input.onnx', problem: /\[1, 1, 8000, 8000\]: 64,000,000 elements/ });
  const small = model('small.onnx', tiny({ channels: 1 }));
  refused([small, '--input-shape', '1,1,100000,100000'], { inputs: [small], names: 'small.onnx', problem: /--input-shape gives input "input" as \[1, 1, 100000, 100000\]/ });
  refused([small, '--batch', '100000000', '--latency-runs', '3'], { inputs: [small], names: 'small.onnx', problem: /--batch 100000000 makes input "input" \[100000000, 1, 8, 8\], in float32: 25,600,000,000 bytes, over the limit .*KPRUNE_MAX_DATA_BYTES/ });
  // With --no-run nothing of that size is made: the declared input is no obstacle.
  const noRun = kprune([huge, '-o', path.join(dir, 'huge-written.onnx'), '--no-run']);
  assert.equal(noRun.code, 0, noRun.stderr);
  // The limit is the environment's: lowered, it refuses the tiny model's [1, 1, 8, 8]; at 64 it lets it through.
  refused([small], { inputs: [small], names: 'small.onnx', problem: /\[1, 1, 8, 8\]: 64 elements, over the limit of 63/, env: { KPRUNE_MAX_INPUT_ELEMENTS: '63' } });
  const raised = kprune([small, '-o', path.join(dir, 'small-written.onnx'), '--latency-runs', '0'], { KPRUNE_MAX_INPUT_ELEMENTS: '64' });
  assert.equal(raised.code, 0, raised.stderr);
});

test('defect 5: NaN or infinite weights in a 3x3 layer, and NaN in --data, are exit 2', () => {
  for (const [name, value] of [['nan', NaN], ['inf', Infinity], ['neg-inf', -Infinity]] as const) {
    const m = model(`${name}.onnx`, weightValue(value));
    refused([m], { inputs: [m], names: `${name}.onnx`, problem: /3x3 weight "w1" \(node "conv1"\) holds NaN or infinite values/ });
  }
  const nanModel = path.join(dir, 'nan.onnx');
  refused(['analyze', nanModel], { inputs: [nanModel], names: 'nan.onnx', problem: /holds NaN or infinite values/ });
  const m1 = model('one-channel.onnx', tiny({ channels: 1 }));
  const data = put(dir, 'nan-data.npy', npyBytes('<f4', [4, 1, 8, 8], Array.from({ length: 256 }, (_, i) => (i === 70 ? NaN : 0.5))));
  refused([m1, '--data', data, '--calib', '2', '--eval', '2'], { inputs: [m1, data], names: 'nan-data.npy', problem: /sample 1 holds NaN after preprocessing/ });
  const inf = put(dir, 'inf-data.npy', npyBytes('<f4', [4, 1, 8, 8], Array.from({ length: 256 }, (_, i) => (i === 3 ? Infinity : 0.5))));
  refused([m1, '--data', inf, '--calib', '2', '--eval', '2'], { inputs: [m1, inf], names: 'inf-data.npy', problem: /sample 0 holds an infinite value/ });
});

test('defect 5: a TF.js quantization range that overflows float32 is exit 2', () => {
  const json = tfjsQuantized(path.join(dir, 'tfq'), { min: 0, scale: 1e37 });
  refused([json, '-o', path.join(dir, 'tfq-out', 'model.json')], {
    inputs: [json, path.join(dir, 'tfq', 'group1-shard1of1.bin')], names: json.replace(`${dir}/`, ''),
    problem: /weight "conv\/kernel" has a quantization range \(min 0, scale 1e\+37\) outside what float32 holds/,
  });
  assert.ok(!existsSync(path.join(dir, 'tfq-out')));
});

test('defect 5: --config and --plan values of the wrong type are exit 2 naming the file and key (more cases: config-plan-validate.test.ts)', () => {
  const m = model('cfg-model.onnx', tiny());
  const cases: [object | string, RegExp][] = [
    [{ layerShape: 5 }, /"layerShape" in the config file must be an object of layer names to shapes.*got number 5/],
    [{ calib: {}, data: 'fashion-mnist' }, /"calib" in the config file must be a number or a string, got an object/],
    [`{"mean": ${deepArray(100_000)}}`, /the JSON nests deeper than 1000 levels/],
  ];
  for (const [doc, problem] of cases) {
    const cfg = put(dir, 'cfg.json', typeof doc === 'string' ? doc : JSON.stringify(doc));
    refused([m, '--config', cfg], { inputs: [m, cfg], names: 'cfg.json', problem });
  }
  const entry = { layer: 'w1', name: 'conv1', shape: 'cross', mask: '010/111/010', positions: 5, params: 144, keptParams: 80, chosenBy: 'fixed' };
  const plan = (entries: unknown) => ({ planVersion: 1, spec: 'cross', entries, keptFraction: 0.5 });
  const plans: [object | string, RegExp][] = [
    [plan([{ ...entry, mask: 5 }, { ...entry, layer: 'w2' }]), /entry 0: "mask" must be a string, got 5/],
    [plan([null]), /entry 0 must be an object, got null/],
    [`{"planVersion": 1, "spec": "cross", "entries": ${deepArray(100_000)}}`, /nests deeper than 1000 levels/],
  ];
  for (const [doc, problem] of plans) {
    const file = put(dir, 'plan.json', typeof doc === 'string' ? doc : JSON.stringify(doc));
    refused([m, '--plan', file], { inputs: [m, file], names: 'plan.json', problem });
  }
  // A plan made for another model: the model is named.
  const other = put(dir, 'plan.json', JSON.stringify(plan([entry])));
  refused([m, '--plan', other], { inputs: [m, other], names: 'cfg-model.onnx', problem: /the plan has no entry for layer "w2" \(node "conv2"\): it was made for another model/ });
});

test('defect 6: data that declares more than the limits is refused before it is inflated or decoded', () => {
  const m = model('data-model.onnx', tiny({ channels: 1 }));
  const args = (data: string) => [m, '--data', data, '--calib', '2', '--eval', '2'];
  // An .npz whose x declares 2 GB (a 2 MB zip bomb of zeros would): refused at its header.
  const bomb = put(dir, 'bomb.npz', npz({ x: npyDeclaring([2000, 1000, 1000]) }));
  refused(args(bomb), { inputs: [m, bomb], names: 'bomb.npz', problem: /array x declares its data as: 2,000,000,128 bytes, over the limit of 1,073,741,824 \(KPRUNE_MAX_DATA_BYTES\).*raise it: KPRUNE_MAX_DATA_BYTES=/ });
  // A 389-byte PNG declaring 20000 x 20000.
  const png = put(dir, 'big-png/a/1.png', pngDeclaring(20000, 20000, 1));
  refused(args(path.join(dir, 'big-png')), { inputs: [m, png], names: 'big-png/a/1.png', problem: /the image is 20000 x 20000: 400,000,000 pixels, over the limit of 89,478,485 \(KPRUNE_MAX_IMAGE_PIXELS\)/ });
  // A gzipped IDX whose header declares 8,000,000 images of 28x28 (6.3 GB).
  const idx = put(dir, 'big-images-idx3-ubyte.gz', idxDeclaring([8_000_000, 28, 28]));
  refused(args(idx), { inputs: [m, idx], names: 'big-images-idx3-ubyte.gz', problem: /the IDX images file declares its data as: 6,272,000,016 bytes/ });
  // Lowered, the limits refuse real small files too, with the same message.
  const small = put(dir, 'small-png/a/1.png', pngBytes(8, 8, 1, new Array(64).fill(7)));
  refused(args(path.join(dir, 'small-png')), { inputs: [m, small], names: 'small-png/a/1.png', problem: /8 x 8: 64 pixels, over the limit of 63/, env: { KPRUNE_MAX_IMAGE_PIXELS: '63' } });
  const bad = kprune([...args(path.join(dir, 'small-png')), '-o', path.join(dir, 'x.onnx')], { KPRUNE_MAX_IMAGE_PIXELS: 'lots' });
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /KPRUNE_MAX_IMAGE_PIXELS="lots" is not a positive number of pixels/);
});

test('image folders: links out of the folder and link loops are refused; 130,000 files in one class are listed', () => {
  const m = model('folder-model.onnx', tiny({ channels: 1 }));
  const args = (data: string) => [m, '--data', data, '--calib', '1', '--eval', '1'];
  const outside = put(dir, 'elsewhere/secret.png', pngBytes(8, 8, 1, new Array(64).fill(1)));
  put(dir, 'linked/a/1.png', pngBytes(8, 8, 1, new Array(64).fill(1)));
  mkdirSync(path.join(dir, 'linked/b'));
  symlinkSync(outside, path.join(dir, 'linked/b/2.png'));
  refused(args(path.join(dir, 'linked')), { inputs: [m, outside], names: 'linked/b/2.png', problem: /the link "b\/2.png" points outside the data folder/ });
  put(dir, 'loops/a/1.png', pngBytes(8, 8, 1, new Array(64).fill(1)));
  put(dir, 'loops/b/2.png', pngBytes(8, 8, 1, new Array(64).fill(1)));
  symlinkSync('.', path.join(dir, 'loops/a/loop'));
  symlinkSync('.', path.join(dir, 'loops/a/loop2'));
  refused(args(path.join(dir, 'loops')), { inputs: [m], names: 'loops/a/loop', problem: /"a\/loop" is a folder already read .*links make a loop/ });
});

test('terminal escapes in names and paths are printed as visible escapes', () => {
  const m = model('escapes.onnx', nodeNamed('\x1b]0;owned\x07\x1b[2Jconv1\u202e'));
  const r = kprune(['analyze', m]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /\\x1b\]0;owned\\x07\\x1b\[2Jconv1\\u202e/);
  assert.doesNotMatch(r.stdout, /[\x00-\x09\x0b-\x1f\x7f\u202e]/);
  // --json: the same name, escaped in the JSON text and whole again when parsed.
  const json = kprune(['analyze', m, '--json']);
  assert.doesNotMatch(json.stdout, /[\x00-\x09\x0b-\x1f\x7f\u202e]/);
  assert.equal(JSON.parse(json.stdout).layers[0].name, '\x1b]0;owned\x07\x1b[2Jconv1\u202e');
  const p = kprune([m, '-o', path.join(dir, 'escapes-out.onnx'), '--latency-runs', '0', '--verbose']);
  assert.equal(p.code, 0, p.stderr);
  assert.doesNotMatch(p.stdout, /[\x00-\x09\x0b-\x1f\x7f\u202e]/);
  const missing = kprune([`${dir}/no\x1b[31msuch.onnx`]);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /no\\x1b\[31msuch\.onnx: no such file/);
  assert.doesNotMatch(missing.stderr, /\x1b/);
  const option = kprune([m, '--sh\x1bape', 'cross']);
  assert.equal(option.code, 2);
  assert.doesNotMatch(option.stderr, /\x1b/);
});
