/**
 * The picture in ARCHITECTURE.md, kept true by the import lines themselves: every import in src/
 * and cli/ points down a floor, no two folders import each other (directly or round about), and
 * the CLI uses the library only through its public API (src/index.ts). New files are checked the
 * same way; a new folder must be given a floor below.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { FloorTable, folderCycles, importEdges, readTree, wrongWay } from './helpers/imports.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

// Higher floors may import lower ones. Rooms on one floor do not import each other.
const TABLE: FloorTable = {
  rooms: [
    { path: 'cli/', floor: 8, only: ['cli/', 'src/index.ts'] },
    { path: 'src/index.ts', floor: 7 },
    { path: 'src/pipeline/', floor: 6 },
    // The only floor that knows a file format and a runtime together.
    { path: 'src/models/', floor: 5 },
    { path: 'src/formats/', floor: 4 },
    { path: 'src/runtime/', floor: 4 },
    // The report's JSON shape, terminal text and HTML: from core figures and contract types only.
    { path: 'src/report/', floor: 4, only: ['src/report/', 'src/core/', 'src/model/', 'src/util/', 'src/errors.ts', 'src/version.ts'] },
    { path: 'src/core/', floor: 3 },
    { path: 'src/data/', floor: 3 },
    // The model contract and the neutral types: no format, no runtime, no core.
    { path: 'src/model/', floor: 2 },
    { path: 'src/util/', floor: 1 },
    { path: 'src/io/', floor: 1 },
    { path: 'src/errors.ts', floor: 0 },
    { path: 'src/version.ts', floor: 0 },
  ],
  apart: [
    ['src/formats/onnx/', 'src/formats/tfjs/'],
    ['src/runtime/ort/', 'src/runtime/tfjs/'],
    ['src/models/onnx/', 'src/models/tfjs/'],
  ],
  entries: (f) => /^src\/[^/]+\.ts$/.test(f) || f === 'cli/main.ts',
};

const edges = importEdges(readTree(ROOT, ['src', 'cli']));

test('every import in src/ and cli/ points down a floor', () => {
  assert.ok(edges.length > 300, `only ${edges.length} imports read: is ROOT (${ROOT}) the repository?`);
  assert.deepEqual(wrongWay(TABLE, edges), []);
});

test('no two folders of src/ and cli/ import each other, directly or round about', () => {
  assert.deepEqual(folderCycles(TABLE, edges), []);
});

test('the CLI imports the library only through src/index.ts', () => {
  const past = edges.filter((e) => e.from.startsWith('cli/') && !e.to.startsWith('cli/') && e.to !== 'src/index.ts');
  assert.deepEqual(past.map((e) => `${e.from} -> ${e.to}`), []);
});

test('the checks catch an upward import, a sideways one, a cycle and a file in no room', () => {
  const tree = new Map([
    ['src/core/plan.ts', "import { x } from '../pipeline/prune.js';\nimport type { Y } from '../model/conv.js';"],
    ['src/formats/onnx/read.ts', "export { z } from '../../runtime/ort/session.js';"],
    ['src/formats/tfjs/read.ts', "const m = await import('../onnx/read.js');"],
    ['src/report/text.ts', "import '../data/load.js';"],
    ['src/pipeline/prune.ts', "import { a } from '../core/plan.js';"],
    ['src/elsewhere/x.ts', "import { b } from '../util/random.js';"],
    ['cli/main.ts', "import { c } from '../src/pipeline/prune.js';"],
  ]);
  const found = wrongWay(TABLE, importEdges(tree));
  assert.deepEqual(found, [
    'src/core/plan.ts imports src/pipeline/prune.ts: src/pipeline/ is above src/core/',
    'src/formats/onnx/read.ts imports src/runtime/ort/session.ts: src/runtime/ is beside src/formats/',
    'src/formats/tfjs/read.ts imports src/formats/onnx/read.ts: the two are kept apart',
    'src/report/text.ts imports src/data/load.ts: src/report/ may only import src/report/, src/core/, src/model/, src/util/, src/errors.ts, src/version.ts',
    'src/elsewhere/x.ts: in no room of the floor table (add its folder)',
    'cli/main.ts imports src/pipeline/prune.ts: cli/ may only import cli/, src/index.ts',
  ]);
  assert.deepEqual(folderCycles(TABLE, importEdges(tree)), [['src/core', 'src/pipeline']]);
});
