/** `npm run fuzz [cases] [seed]`: the long fuzz run; prints the number of cases and any failures. */
import path from 'node:path';
import { fuzzModels } from '../test/helpers/fuzz.js';
import { fuzzFamilies } from '../test/helpers/fuzz-families.js';

const cases = Number(process.argv[2] ?? 3000);
const seed = Number(process.argv[3] ?? Date.now() % 1e6);
const fixtures = path.resolve(new URL('../../fixtures', import.meta.url).pathname);
const t0 = performance.now();
const outcome = await fuzzModels(fixtures, cases, seed);
console.log(`fuzz: ${outcome.cases} cases from seed ${seed} in ${((performance.now() - t0) / 1000).toFixed(1)} s: ${outcome.errors} clear errors, ${outcome.written} verified outputs, ${outcome.failures.length} failures`);
for (const f of outcome.failures) console.log(`  seed ${f.seed} ${f.model} ${f.mutation}: ${f.problem}`);
// The families (oversized dims, non-finite values, deep nesting): a tenth as many cases each.
const t1 = performance.now();
const families = await fuzzFamilies(Math.max(1, Math.round(cases / 10)), seed);
console.log(`fuzz families: ${families.cases} cases from seed ${seed} in ${((performance.now() - t1) / 1000).toFixed(1)} s: ${families.errors} clear errors, ${families.written} outputs, ${families.failures.length} failures`);
for (const f of families.failures) console.log(`  ${f.family} seed ${f.seed} (${f.what}): ${f.problem}`);
process.exitCode = outcome.failures.length + families.failures.length > 0 ? 1 : 0;
