// Moved to src/util/random.ts; kept so that older imports keep working.
export { mulberry32, permutation } from '../util/random.js';
