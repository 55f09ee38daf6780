/**
 * Fuzzing, bounded, by family (test/helpers/fuzz-families.ts): oversized declared dims, non-finite
 * values, deep nesting. Each case ends in a clear KpruneError with nothing written, or a verified
 * output; never a crash. `npm run fuzz` runs more of each.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fuzzFamilies } from './helpers/fuzz-families.js';

test('oversized dims, non-finite values and deep nesting: a clear error or a verified output, never a crash', async () => {
  const seed = Number(process.env.KPRUNE_FUZZ_SEED ?? 7000);
  const outcome = await fuzzFamilies(16, seed);
  assert.deepEqual(outcome.failures, []);
  assert.equal(outcome.cases, 48);
  assert.ok(outcome.errors >= 24, `${outcome.errors} errors, ${outcome.written} written`);
});
