import assert from 'node:assert/strict';

/** |a - b| <= rel * max|b| everywhere. */
export function assertClose(a: Float32Array, b: Float32Array, rel: number, what: string): void {
  assert.equal(a.length, b.length, what);
  let scale = 0;
  for (const v of b) scale = Math.max(scale, Math.abs(v));
  for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i] - b[i]) <= rel * Math.max(scale, 1e-6), `${what}[${i}]: ${a[i]} vs ${b[i]}`);
}

/** The largest difference between two weight maps, relative to each tensor's largest magnitude. */
export function maxRelDiff(a: ReadonlyMap<string, Float32Array>, b: ReadonlyMap<string, Float32Array>): number {
  let worst = 0;
  for (const [id, w] of a) {
    const v = b.get(id);
    if (!v || v.length !== w.length) return Infinity;
    let scale = 0;
    for (const x of w) scale = Math.max(scale, Math.abs(x));
    for (let i = 0; i < w.length; i++) worst = Math.max(worst, Math.abs(w[i] - v[i]) / (scale || 1));
  }
  return worst;
}
