/**
 * Sets of strings by key, for the table builder's indexes (a group's deployments, a prefix's groups, a
 * Service's routing deployments, a gRPC name's namespaces).
 *
 * Almost every key of those has one member, and each lives as long as the table. A `Set` of its own
 * costs a key about 150 bytes beyond the string, which a worker's collector then marks on every full
 * collection (load/README.md, "the heap per deployment"). So a key with one member holds that string
 * as is; a second member makes a `Set`, and the `Set` goes back to a string when one member is left.
 */
export class StringSets<K> {
  private readonly map = new Map<K, string | Set<string>>();

  /** The members of `key` (none: an empty list), in no promised order. */
  get(key: K): Iterable<string> {
    const v = this.map.get(key);
    return v === undefined ? NONE : typeof v === 'string' ? [v] : v;
  }

  has(key: K): boolean {
    return this.map.has(key);
  }

  size(key: K): number {
    const v = this.map.get(key);
    return v === undefined ? 0 : typeof v === 'string' ? 1 : v.size;
  }

  add(key: K, member: string): void {
    const v = this.map.get(key);
    if (v === undefined) this.map.set(key, member);
    else if (typeof v !== 'string') v.add(member);
    else if (v !== member) this.map.set(key, new Set([v, member]));
  }

  /** Take `member` out of `key`'s set; a key left without members is gone. */
  delete(key: K, member: string): void {
    const v = this.map.get(key);
    if (v === undefined) return;
    if (typeof v === 'string') {
      if (v === member) this.map.delete(key);
      return;
    }
    v.delete(member);
    if (v.size === 1) this.map.set(key, v.values().next().value!);
  }
}

const NONE: readonly string[] = Object.freeze([]);
