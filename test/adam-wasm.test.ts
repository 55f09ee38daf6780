/**
 * The WebAssembly Adam kernel (core/finetune/adam.wat, adam-wasm.ts): the bytes kprune carries are
 * its source compiled (`npm run wasm` rewrites them), the arena's arrays are aligned and apart, and
 * the kernel's update equals the float32 update of a JS loop (Math.fround after every operation)
 * bit for bit, at every length (the SIMD body and the one-at-a-time tail).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import wabtInit from 'wabt';
import { AdamArena } from '../src/core/finetune/adam-wasm.js';
import { ADAM_WASM_BASE64 } from '../src/core/finetune/adam-wasm-bytes.js';
import { mulberry32 } from '../src/util/random.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const SOURCE = path.join(ROOT, 'src', 'core', 'finetune', 'adam.wat');
const BYTES = path.join(ROOT, 'src', 'core', 'finetune', 'adam-wasm-bytes.ts');

test('the kernel kprune carries is adam.wat compiled', async () => {
  const wabt = await wabtInit();
  const compiled = Buffer.from(wabt.parseWat('adam.wat', readFileSync(SOURCE, 'utf8'), { simd: true }).toBinary({}).buffer).toString('base64');
  if (process.env.KPRUNE_WRITE_WASM === '1') {
    const text = readFileSync(BYTES, 'utf8').replace(/'[A-Za-z0-9+/=]+';/, `'${compiled}';`);
    writeFileSync(BYTES, text);
    return;
  }
  assert.equal(ADAM_WASM_BASE64, compiled, 'adam.wat changed: run `npm run wasm`');
});

test('the arena: each slot\'s four arrays 16-byte aligned, of its length, apart from every other', () => {
  const lengths = [1, 3, 4, 5, 17, 1000];
  const arena = AdamArena.open(lengths);
  assert.ok(arena, 'Node 20 has WebAssembly SIMD');
  const spans: [number, number][] = [];
  lengths.forEach((n, k) => {
    for (const which of [0, 1, 2, 3] as const) {
      const a = arena.array(k, which);
      assert.equal(a.length, n);
      assert.equal(a.byteOffset % 16, 0);
      spans.push([a.byteOffset, a.byteOffset + a.byteLength]);
    }
  });
  spans.sort((x, y) => x[0] - y[0]);
  for (let i = 1; i < spans.length; i++) assert.ok(spans[i][0] >= spans[i - 1][1], 'no two arrays overlap');
});

test('the kernel\'s update is the float32 update of a JS loop, bit for bit, at every length', () => {
  const f = Math.fround;
  const lengths = [1, 2, 3, 4, 5, 7, 8, 9, 63, 64, 65, 1001];
  const arena = AdamArena.open(lengths)!;
  const r = mulberry32(17);
  lengths.forEach((n, k) => {
    const w = Float32Array.from({ length: n }, () => r() - 0.5);
    const m = new Float32Array(n);
    const v = new Float32Array(n);
    arena.array(k, 0).set(w);
    for (let step = 1; step <= 3; step++) {
      const g = Float32Array.from({ length: n }, () => (r() - 0.5) * 10 ** -step);
      const c = { b1: f(0.9), b2: f(0.999), a1: f(0.1), a2: f(0.001), step: f(1e-3 / (1 - 0.9 ** step)), root: f(1 / Math.sqrt(1 - 0.999 ** step)), eps: f(1e-7) };
      arena.array(k, 1).set(g);
      arena.step(k, c);
      for (let i = 0; i < n; i++) {
        m[i] = f(f(c.b1 * m[i]) + f(c.a1 * g[i]));
        v[i] = f(f(c.b2 * v[i]) + f(c.a2 * f(g[i] * g[i])));
        w[i] = f(w[i] - f(f(c.step * m[i]) / f(f(f(Math.sqrt(v[i])) * c.root) + c.eps)));
      }
      assert.deepEqual(arena.array(k, 0), w, `length ${n}, step ${step}: weights`);
      assert.deepEqual(arena.array(k, 2), m, `length ${n}, step ${step}: first moment`);
      assert.deepEqual(arena.array(k, 3), v, `length ${n}, step ${step}: second moment`);
    }
  });
});
