/**
 * Plans and config files from outside, checked field by field in-process (the CLI's own runs are in
 * bad-input.test.ts): every wrong type is a usage error naming the file, the entry or key, and
 * what was expected; a valid plan comes back holding only the known fields.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { KpruneError, planFromDocument, prune, validatePlan } from '../src/index.js';
import { applyConfig } from '../cli/config.js';
import { pruneCommand } from '../cli/commands/prune.js';
import { parseInteger, parseList } from '../cli/parse.js';
import { put } from './helpers/data-files.js';
import { deepArray, tiny } from './helpers/hostile.js';
import { tempDir } from './helpers/tmp.js';

const dir = tempDir('kprune-validate-');
const entry = { layer: 'w1', name: 'conv1', shape: 'cross', mask: '010/111/010', positions: 5, params: 144, keptParams: 80, chosenBy: 'fixed' };
const plan = (entries: unknown, extra: object = {}) => ({ planVersion: 1, spec: 'cross', entries, keptFraction: 0.5, ...extra });

function usage(f: () => unknown, re: RegExp, file?: string): void {
  assert.throws(f, (e: unknown) => {
    assert.ok(e instanceof KpruneError, String(e));
    assert.equal(e.code, 'usage');
    assert.equal(e.file, file);
    assert.match(e.message, re);
    assert.ok(!e.oneLine().includes('\n'));
    return true;
  });
}

test('plans of the wrong shape are usage errors naming the entry and field', () => {
  const cases: [unknown, RegExp][] = [
    [null, /the document is null/],
    [[entry], /the document is a list/],
    [plan([entry], { planVersion: 2 }), /"planVersion" is 2, expected 1/],
    [plan([entry], { spec: 7 }), /"spec" must be a shape name, got 7/],
    [plan([entry], { budget: 'half' }), /"budget" must be a number in \(0, 1\], got "half"/],
    [plan({}), /"entries" must be a list of layers, got an object/],
    [plan([null]), /entry 0 must be an object, got null/],
    [plan([5]), /entry 0 must be an object, got 5/],
    [plan([{ ...entry, layer: '' }]), /entry 0: "layer" must be a non-empty string/],
    [plan([{ ...entry, mask: 5 }]), /entry 0: "mask" must be a string, got 5/],
    [plan([{ ...entry, mask: [[[0]]] }]), /entry 0: "mask" must be a string, got a list/],
    [plan([{ ...entry, mask: '111/101/111' }]), /entry 0 \("w1"\): mask "111\/101\/111" drops the centre/],
    [plan([{ ...entry, mask: '01/111/010' }]), /entry 0 \("w1"\): malformed mask/],
    [plan([{ ...entry, params: '144' }]), /"params" must be the layer's weight count/],
    [plan([{ ...entry, params: 145 }]), /"params" must be the layer's weight count/],
    [plan([{ ...entry, params: 1e300 }]), /"params" must be the layer's weight count/],
    [plan([{ ...entry, positions: 'five' }]), /"positions" must be a number/],
    [plan([{ ...entry, chosenBy: 'me' }]), /"chosenBy" must be one of fixed, cycle, auto-weights, auto-data, override, auto-protected, got "me"/],
    [plan([{ ...entry, name: null }]), /"name" must be a string, got null/],
    [plan([entry, entry]), /entry 1: layer "w1" is planned twice/],
  ];
  for (const [doc, re] of cases) {
    usage(() => validatePlan(doc, 'p.json'), re, 'p.json');
  }
  // Without a file (the library's plan option), the message says it is the plan.
  usage(() => validatePlan(plan([null])), /^the plan: entry 0 must be an object/);
});

test('a valid plan comes back fresh: known fields only, derived ones recomputed', () => {
  const deep = JSON.parse(deepArray(5000));
  const doc = plan([{ ...entry, mask: ' 011/111/110 ', positions: 1, keptParams: 1, junk: deep }], { junk: deep, keptFraction: 0.01 });
  const checked = validatePlan(doc);
  assert.deepEqual(checked, {
    planVersion: 1, spec: 'cross', keptFraction: 7 / 9,
    entries: [{ layer: 'w1', name: 'conv1', shape: 'cross', mask: '011/111/110', positions: 7, params: 144, keptParams: 112, chosenBy: 'fixed' }],
  });
  JSON.stringify(checked); // nothing deep left to overflow the report's serialisation
  // Missing optional fields take their defaults; a report embedding a plan is accepted.
  const minimal = planFromDocument({ kind: 'prune', plan: plan([{ layer: 'w1', mask: '010/111/010', params: 144 }]) });
  assert.deepEqual(minimal.entries[0], { layer: 'w1', name: 'w1', shape: 'cross', mask: '010/111/010', positions: 5, params: 144, keptParams: 80, chosenBy: 'fixed' });
});

test('prune refuses a bad plan object before reading weights, and writes nothing', async () => {
  const m = put(dir, 'm.onnx', tiny());
  const out = path.join(dir, 'never.onnx');
  await assert.rejects(prune(m, { plan: plan([{ ...entry, mask: 5 }]) as never, output: out, latencyRuns: 0 }), (e: unknown) => e instanceof KpruneError && e.code === 'usage' && /the plan: entry 0: "mask" must be a string/.test(e.message));
  await assert.rejects(prune(m, { plan: plan([entry]) as never, output: out, latencyRuns: 0 }), (e: unknown) => e instanceof KpruneError && e.file === m && /no entry for layer "w2"/.test(e.message));
  const { existsSync } = await import('node:fs');
  assert.ok(!existsSync(out));
});

test('config values are checked by JSON type before parsing; wrong types name the key', async () => {
  const cases: [string, RegExp][] = [
    [JSON.stringify({ layerShape: 5 }), /"layerShape" in the config file must be an object of layer names to shapes, or "name=shape" strings, got number 5/],
    [JSON.stringify({ layerShape: { conv1: 5 } }), /the shape of "conv1" is number 5/],
    [JSON.stringify({ layerShape: ['conv1'] }), /"layerShape" in the config file: expected name=shape, got "conv1"/],
    [JSON.stringify({ layerShape: [null] }), /must be an object of layer names to shapes.*got a list/],
    [JSON.stringify({ calib: {} }), /"calib" in the config file must be a number or a string, got an object/],
    [JSON.stringify({ calib: '' }), /"calib" in the config file: --calib takes a whole number, got ""/],
    [JSON.stringify({ calib: null }), /"calib" in the config file must be a number or a string, got null/],
    [JSON.stringify({ calib: [512] }), /"calib" in the config file must be a number or a string, got a list/],
    [JSON.stringify({ run: 'no' }), /"run" in the config file must be true or false, got "no"/],
    [JSON.stringify({ layout: 5 }), /"layout" in the config file: Allowed choices are masked, decomposed, sparse, auto/],
    [JSON.stringify({ layout: {} }), /"layout" in the config file must be one of masked, decomposed, sparse, auto, got an object/],
    [JSON.stringify({ size: [[28, 28]] }), /"size" in the config file must be a list of numbers or a string, got a list/],
    [JSON.stringify({ mean: [0.5, '0.5'] }), /"mean" in the config file must be a list of numbers or a string/],
    [JSON.stringify({ std: '0.5,,0.5' }), /--std takes numbers separated by commas/],
    [`{"size": ${deepArray(100_000)}}`, /the JSON nests deeper than 1000 levels/],
    [`{"shape": "cross", "x": ${deepArray(1001)}}`, /the JSON nests deeper than 1000 levels/],
  ];
  for (const [text, re] of cases) {
    const file = put(dir, 'c.json', text);
    await assert.rejects(applyConfig(pruneCommand(), file), (e: unknown) => {
      assert.ok(e instanceof KpruneError, String(e));
      assert.equal(e.file, file);
      assert.match(e.message, re);
      return true;
    }, text.slice(0, 60));
  }
  // Lists of numbers and name=shape strings are accepted where the command line takes them.
  const cmd = pruneCommand();
  await applyConfig(cmd, put(dir, 'ok.json', JSON.stringify({ size: [28, 28], calib: 64, layerShape: ['conv1=qh-up', 'conv2=x'], inputShape: [1, 4, 8, 8] })));
  assert.deepEqual(cmd.opts().size, [28, 28]);
  assert.equal(cmd.opts().calib, 64);
  assert.deepEqual(cmd.opts().layerShape, { conv1: 'qh-up', conv2: 'x' });
  assert.equal(cmd.opts().inputShape, '1,4,8,8');
});

test('empty numbers on the command line are refused, not read as 0', () => {
  assert.throws(() => parseInteger('--calib')(''), /--calib takes a whole number, got ""/);
  assert.throws(() => parseInteger('--calib')('  '), /takes a whole number/);
  assert.throws(() => parseList('--mean')('0.5,'), /takes numbers separated by commas/);
  assert.deepEqual(parseList('--mean')('0.5, 1'), [0.5, 1]);
});
