import assert from 'node:assert/strict';

/** |a - b| <= rel * max|b| everywhere. */
export function assertClose(a: Float32Array, b: Float32Array, rel: number, what: string): void {
  assert.equal(a.length, b.length, what);
  let scale = 0;
  for (const v of b) scale = Math.max(scale, Math.abs(v));
  for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i] - b[i]) <= rel * Math.max(scale, 1e-6), `${what}[${i}]: ${a[i]} vs ${b[i]}`);
}
