/** Immutable snapshots of the builder's mutable maps that cost what changed, not the whole map. */

const GONE: unique symbol = Symbol('gone');

/**
 * An immutable map as a frozen `base` plus a small `top` of what changed since (GONE: deleted).
 * A table snapshot then costs what changed, not the whole index (10,000 deployments made every
 * one-deployment edit copy five maps of that size). A lookup that misses `top` costs one more
 * small-map probe; `top` is folded into a new base once it grows past an eighth of it.
 */
class LayeredMap<K, V> implements ReadonlyMap<K, V> {
  constructor(
    private readonly base: ReadonlyMap<K, V>,
    private readonly top: ReadonlyMap<K, V | typeof GONE>,
    readonly size: number,
  ) {}
  get(key: K): V | undefined {
    if (this.top.size !== 0) {
      const v = this.top.get(key);
      if (v !== undefined) return v === GONE ? undefined : v;
    }
    return this.base.get(key);
  }
  has(key: K): boolean {
    return this.get(key) !== undefined;
  }
  *entries(): MapIterator<[K, V]> {
    for (const [k, v] of this.top) if (v !== GONE) yield [k, v];
    for (const e of this.base) if (!this.top.has(e[0])) yield e;
  }
  *keys(): MapIterator<K> {
    for (const [k] of this.entries()) yield k;
  }
  *values(): MapIterator<V> {
    for (const [, v] of this.entries()) yield v;
  }
  [Symbol.iterator](): MapIterator<[K, V]> {
    return this.entries();
  }
  forEach(callback: (value: V, key: K, map: ReadonlyMap<K, V>) => void, thisArg?: unknown): void {
    for (const [k, v] of this.entries()) callback.call(thisArg, v, k, this);
  }
}

/** Takes immutable snapshots of one mutable map, told which keys changed since the last. */
export class Snapshots<K, V> {
  private base: ReadonlyMap<K, V> = new Map();
  private top = new Map<K, V | typeof GONE>();
  private changed = new Set<K>();
  private current: ReadonlyMap<K, V> | undefined;
  constructor(private readonly live: ReadonlyMap<K, V>) {}
  touch(key: K): void {
    this.changed.add(key);
  }
  snapshot(): ReadonlyMap<K, V> {
    if (this.current && this.changed.size === 0) return this.current;
    if (this.top.size + this.changed.size > 64 + this.live.size / 8) {
      this.base = new Map(this.live);
      this.top = new Map();
    } else {
      const top = new Map(this.top);
      for (const k of this.changed) {
        const v = this.live.get(k);
        top.set(k, v === undefined ? GONE : v);
      }
      this.top = top;
    }
    this.changed.clear();
    this.current = this.top.size === 0 ? this.base : new LayeredMap(this.base, this.top, this.live.size);
    return this.current;
  }
}
