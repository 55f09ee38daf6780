/**
 * The masked Adam of core/finetune/optimizer.ts, which loops over the kept indices only: the same
 * arithmetic, bit for bit, as the plain per-element form (every element, a keep flag tested, the
 * moments stored as float32 and read back), and the dropped positions exactly zero after a step
 * even when they started non-zero.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MaskedOptimizer } from '../src/core/finetune/optimizer.js';
import { packKept, unpackKept } from '../src/core/finetune/kept-layout.js';
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
        // Every operation rounded to float32, as the optimiser (and its WebAssembly kernel) computes.
        m[i] = f(f(b1 * m[i]) + f(a1 * g[i]));
        v[i] = f(f(b2 * v[i]) + f(a2 * f(g[i] * g[i])));
        ref[i] = f(ref[i] - f(f(f(lr / c1) * m[i]) / f(f(f(Math.sqrt(v[i])) * f(1 / Math.sqrt(c2))) + f(1e-7))));
      }
      assert.deepEqual(w, ref, `${shape}, step ${step + 1}`);
    }
    for (let i = 0; i < n; i++) if (!maskHas(mask, i % 9)) assert.equal(w[i], 0);
  }
});

test('a weight in the kept layout trains as the masked 3x3 weight does, bit for bit (Adam in WebAssembly and in JS, momentum, SGD)', () => {
  const mask = parseMask('010/111/010');
  const order = [1, 7, 3, 4, 5]; // the pieces' order of a cross (column, then row)
  for (const [kind, momentum, wasm] of [['adam', 0, true], ['adam', 0, false], ['sgd', 0.9, true], ['sgd', 0, true]] as const) {
    const r = mulberry32(11);
    const n = 9 * 41;
    const w = Float32Array.from({ length: n }, (_, i) => (maskHas(mask, i % 9) ? r() - 0.5 : 0));
    const packed = packKept(w, order);
    assert.equal(packed.length, 5 * 41);
    const masked = new MaskedOptimizer(new Map([['w', w]]), new Map([['w', mask]]), { kind, momentum });
    const kept = new MaskedOptimizer(new Map([['w', packed]]), new Map([['w', 'kept' as const]]), { kind, momentum, wasm });
    // Adam's kept-layout weights move into the WebAssembly arena (where this Node has SIMD: 20 has).
    assert.equal(kept.inWasm, kind === 'adam' && wasm, `${kind} ${wasm}: in WebAssembly`);
    for (let step = 0; step < 4; step++) {
      const g = Float32Array.from({ length: n }, () => (r() - 0.5) * 10 ** (-1 - step));
      masked.step(new Map([['w', g]]), 1e-3);
      kept.step(new Map([['w', packKept(g, order)]]), 1e-3);
      assert.deepEqual(unpackKept(kept.weightsOf('w'), order), w, `${kind} ${momentum} wasm ${wasm}, step ${step + 1}`);
    }
    assert.ok(w.some((v, i) => maskHas(mask, i % 9) && v !== 0), 'the weights moved');
  }
});

test('packKept and unpackKept: each kernel\'s positions in the order given, zeros elsewhere', () => {
  const full = Float32Array.from({ length: 18 }, (_, i) => i + 1);
  assert.deepEqual([...packKept(full, [4, 0])], [5, 1, 14, 10]);
  assert.deepEqual([...unpackKept(Float32Array.from([5, 1, 14, 10]), [4, 0])], [1, 0, 0, 0, 5, 0, 0, 0, 0, 10, 0, 0, 0, 14, 0, 0, 0, 0]);
  assert.throws(() => unpackKept(new Float32Array(5), [4, 0]), /not made of kernels of 2 positions/);
});
