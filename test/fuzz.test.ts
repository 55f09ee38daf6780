/**
 * Fuzzing, bounded: mutated and truncated fixtures end in a clear KpruneError (nothing written) or a
 * correct result (the output is verified by onnxruntime inside prune). `npm run fuzz` runs longer.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fuzzModels } from './helpers/fuzz.js';
import { FIXTURES } from './helpers/tmp.js';

test('150 seeded mutations of the fixtures: a clear error or a verified output, never a crash', async () => {
  const outcome = await fuzzModels(FIXTURES, 150, 1000);
  assert.deepEqual(outcome.failures, []);
  assert.equal(outcome.cases, 150);
  assert.ok(outcome.errors > 20, `only ${outcome.errors} of the mutations were rejected`);
});
