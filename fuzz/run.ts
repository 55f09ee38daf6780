/** `npm run fuzz [cases] [seed]`: the long fuzz run; prints the number of cases and any failures. */
import path from 'node:path';
import { fuzzModels } from '../test/helpers/fuzz.js';

const cases = Number(process.argv[2] ?? 3000);
const seed = Number(process.argv[3] ?? Date.now() % 1e6);
const fixtures = path.resolve(new URL('../../fixtures', import.meta.url).pathname);
const t0 = performance.now();
const outcome = await fuzzModels(fixtures, cases, seed);
console.log(`fuzz: ${outcome.cases} cases from seed ${seed} in ${((performance.now() - t0) / 1000).toFixed(1)} s: ${outcome.errors} clear errors, ${outcome.written} verified outputs, ${outcome.failures.length} failures`);
for (const f of outcome.failures) console.log(`  seed ${f.seed} ${f.model} ${f.mutation}: ${f.problem}`);
process.exitCode = outcome.failures.length > 0 ? 1 : 0;
