/**
 * The masked Adam of core/finetune/optimizer.ts, which loops over the kept indices only: the same
 * arithmetic, bit for bit, as the plain per-element form (every element, a keep flag tested, the
 * moments stored as float32 and read back), and the dropped positions exactly zero after a step
 * even when they started non-zero.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MaskedOptimizer } from '../src/core/finetune/optimizer.js';
import { maskHas, parseMask } from '../src/core/lattice.js';
import { mulberry32 } from '../src/util/random.js';

test('masked Adam over the kept indices: bit for bit the per-element form; dropped positions zero', () => {
  for (const shape of ['010/111/010', '110/111/011', '101/010/101']) {
    const mask = parseMask(shape);
    const r = mulberry32(5);
    const n = 9 * 37;
    const w = Float32Array.from({ length: n }, () => r() - 0.5);
    const ref = new Float32Array(w);
    const opt = new MaskedOptimizer(new Map([['w', w]]), new Map([['w', mask]]), { kind: 'adam', momentum: 0 });
    const m = new Float32Array(n);
    const v = new Float32Array(n);
    const f = Math.fround;
    let acc1 = f(0.9);
    let acc2 = f(0.999);
    for (let step = 0; step < 5; step++) {
      const g = Float32Array.from({ length: n }, () => (r() - 0.5) * 10 ** (-1 - step));
      const lr = 3e-3 / (step + 1);
      opt.step(new Map([['w', g]]), lr);
      const [b1, b2, a1, a2] = [f(0.9), f(0.999), f(1 - 0.9), f(1 - 0.999)];
      const c1 = f(1 - acc1);
      const c2 = f(1 - acc2);
      acc1 = f(acc1 * b1);
      acc2 = f(acc2 * b2);
      for (let i = 0; i < n; i++) {
        if (!maskHas(mask, i % 9)) {
          ref[i] = 0;
          continue;
        }
        m[i] = b1 * m[i] + a1 * g[i];
        v[i] = b2 * v[i] + a2 * g[i] * g[i];
        ref[i] -= (lr * (m[i] / c1)) / (Math.sqrt(v[i] / c2) + 1e-7);
      }
      assert.deepEqual(w, ref, `${shape}, step ${step + 1}`);
    }
    for (let i = 0; i < n; i++) if (!maskHas(mask, i % 9)) assert.equal(w[i], 0);
  }
});
