/**
 * The path fuzz family (fuzz/families/paths.ts), bounded: seeded spellings of one data file and
 * outputs aliasing inputs end in a correct output or a clear refusal with nothing written.
 * `node dist/fuzz/families/paths.js [cases] [seed]` runs it longer.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fuzzPaths } from '../fuzz/families/paths.js';
import { tempDir } from './helpers/tmp.js';

test('24 seeded path cases: spellings of one file and aliased outputs, a correct output or nothing', async () => {
  const outcome = await fuzzPaths(24, 7000, tempDir('kprune-fuzz-paths-ref-'));
  assert.deepEqual(outcome.failures, []);
  assert.equal(outcome.cases, 24);
  assert.ok(outcome.written >= 4 && outcome.refused >= 4, `${outcome.written} written, ${outcome.refused} refused`);
});
