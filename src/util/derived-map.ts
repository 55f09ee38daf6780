/**
 * A read-only map whose values are computed at every lookup and never kept: weights made on demand
 * (masked from the original, read from disk) flow through code that expects a map without all of
 * them being in memory at once. Each `get` returns a new value; a caller that changes it owns it.
 */
export class DerivedMap<K, V> implements ReadonlyMap<K, V> {
  constructor(private readonly makers: ReadonlyMap<K, () => V>) {}

  /** The map of `keys` to `make(key)`, each made when looked up. */
  static over<K, V>(keys: Iterable<K>, make: (key: K) => V): DerivedMap<K, V> {
    return new DerivedMap(new Map([...keys].map((k) => [k, () => make(k)])));
  }

  get size(): number { return this.makers.size; }
  has(key: K): boolean { return this.makers.has(key); }
  get(key: K): V | undefined { return this.makers.get(key)?.(); }
  keys(): MapIterator<K> { return this.makers.keys(); }
  *values(): MapIterator<V> { for (const make of this.makers.values()) yield make(); }
  *entries(): MapIterator<[K, V]> { for (const [k, make] of this.makers) yield [k, make()]; }
  [Symbol.iterator](): MapIterator<[K, V]> { return this.entries(); }
  forEach(fn: (value: V, key: K, map: ReadonlyMap<K, V>) => void): void {
    for (const [k, make] of this.makers) fn(make(), k, this);
  }
}

