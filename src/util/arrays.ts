/**
 * Array helpers that are safe for arrays of any length. A spread into a call (`out.push(...items)`,
 * `Math.max(...values)`) passes every element as an argument on the stack, and throws "Maximum call
 * stack size exceeded" somewhere above 100,000 elements: a model with that many graph fields, or a
 * folder with that many images, must not crash kprune. Spreads into array literals are fine.
 */

/** Appends every item to `target` (what `target.push(...items)` does, for any length). */
export function pushAll<T>(target: T[], items: Iterable<T>): T[] {
  for (const item of items) target.push(item);
  return target;
}

/** The largest value (what `Math.max(...values)` does, for any length): -Infinity when empty, NaN if any is NaN. */
export function maxOf(values: Iterable<number>): number {
  let m = -Infinity;
  for (const v of values) {
    if (Number.isNaN(v)) return NaN;
    if (v > m) m = v;
  }
  return m;
}

/** The smallest value (what `Math.min(...values)` does, for any length): Infinity when empty, NaN if any is NaN. */
export function minOf(values: Iterable<number>): number {
  let m = Infinity;
  for (const v of values) {
    if (Number.isNaN(v)) return NaN;
    if (v < m) m = v;
  }
  return m;
}
