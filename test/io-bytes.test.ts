/**
 * Nothing kprune writes changed with the I/O rewrite of issue 15 (typed-array decoding, streaming
 * verification, measuring without reading the output back whole): each case of
 * test/helpers/io-cases.ts writes files with exactly the digests recorded in
 * test/golden/io-outputs.json by bench/io-golden.ts from a build of the code before the rewrite.
 * A change that means to change what is written re-records the file from its own parent commit.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { prune, PruneOptions } from '../src/index.js';
import { loadModel } from '../src/models/index.js';
import { IO_CASES, caseOptions, caseOutput, folderDigests } from './helpers/io-cases.js';
import { FIXTURES, tempDir } from './helpers/tmp.js';

const root = path.dirname(FIXTURES);
const golden = JSON.parse(readFileSync(path.join(root, 'test', 'golden', 'io-outputs.json'), 'utf8')) as { cases: Record<string, Record<string, string>> };
const dir = tempDir('kprune-io-bytes-');

test('every recorded case is a case, and every case is recorded', () => {
  assert.deepEqual(Object.keys(golden.cases).sort(), IO_CASES.map((c) => c.name).sort());
});

for (const [i, c] of IO_CASES.entries()) {
  test(`${c.name}: the files written are byte-identical to those of the code before the I/O rewrite`, async () => {
    const out = caseOutput(c, dir, i);
    const report = await prune(path.join(root, c.input), caseOptions(c, out) as PruneOptions);
    assert.deepEqual(folderDigests(path.dirname(out)), golden.cases[c.name]);
    // The written model's counts (some taken over from the input for weights copied as read, see
    // WriteResult.copied) are those of the files, counted whole.
    const weights = (await loadModel(out)).inventory().weights;
    assert.equal(report.after.params.all, weights.reduce((a, w) => a + w.elements, 0));
    assert.equal(report.after.params.nonzero, weights.reduce((a, w) => a + w.nonzero, 0));
  });
}
