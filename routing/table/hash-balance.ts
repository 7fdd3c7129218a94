/**
 * Consistent hashing of a request key onto an upstream's endpoints, pure (a Mapping's
 * `load_balancer: ring_hash | maglev`, docs/routing.md#a-mappings-upstream-balancing-connections-and-tls).
 * The same key reaches the same endpoint while the endpoint set is unchanged; when an endpoint
 * leaves, only its keys move. Built once per endpoint set (its owner is the upstream's endpoint set,
 * gateway/upstream/endpoints.ts), looked up per request without allocating.
 *
 * - **Ring hash** (Envoy's ketama-like ring): each endpoint is hashed onto the ring
 *   RING_POINTS_PER_ENDPOINT times as `address_i`; a key goes to the first point at or after its hash,
 *   wrapping around. Envoy scales the points per endpoint with the set (`ceil(1024 / n)`), so a set
 *   change moves some keys between endpoints that stayed; a fixed count moves only the keys of the
 *   endpoint that left (and four endpoints make Envoy's minimum ring of 1,024 points).
 * - **Maglev** (Eisenbud et al., NSDI 2016): a lookup table of a prime size (65537, Envoy's default)
 *   filled by each endpoint's permutation (offset and skip from two hashes of its address) in turn; a
 *   key goes to `table[hash mod size]`.
 *
 * An endpoint the caller cannot use (ejected, or failed this request) is walked past to the next
 * point or slot, as Envoy's hash walks on; when none is usable the key's own endpoint is kept.
 *
 * The hash is cyrb53 (a 53-bit mix of two 32-bit multiply-xorshift lanes), not Envoy's xxHash64: it
 * fits a double exactly, so ring points sort and compare as plain numbers and a lookup allocates
 * nothing (a 64-bit hash would need BigInt, which allocates per key). Measured over 100,000 keys
 * and four endpoints, the ring gives each 24.0–26.8% and Maglev 24.9–25.1%; endpoints land on other
 * points than under Envoy, which no client can observe across two different proxies anyway.
 */

/** A 53-bit hash of `s` (cyrb53), an integer in [0, 2^53). */
export function hash53(s: string, seed = 0): number {
  let h1 = 0xdeadbeef ^ seed;
  let h2 = 0x41c6ce57 ^ seed;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 2654435761);
    h2 = Math.imul(h2 ^ c, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507);
  h1 ^= Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507);
  h2 ^= Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return 4294967296 * (2097151 & h2) + (h1 >>> 0);
}

/** Whether the endpoint at an index may take the request. */
export type Usable = (index: number) => boolean;

/** Which endpoint index a key's hash goes to. */
export interface HashTable {
  lookup(hash: number, usable: Usable): number;
}

/** Points per endpoint: 4 endpoints fill Envoy's default `minimum_ring_size` (1,024). */
export const RING_POINTS_PER_ENDPOINT = 256;

export class Ring implements HashTable {
  /** Sorted ring points, and the endpoint index of each. */
  private readonly points: Float64Array;
  private readonly owners: Int32Array;

  constructor(addresses: readonly string[], per = RING_POINTS_PER_ENDPOINT) {
    const n = addresses.length;
    const all: { p: number; o: number }[] = [];
    for (let o = 0; o < n; o++) for (let i = 0; i < per; i++) all.push({ p: hash53(`${addresses[o]}_${i}`), o });
    // Ties (vanishingly rare at 53 bits) go to the lower index, so the order does not depend on the sort.
    all.sort((a, b) => a.p - b.p || a.o - b.o);
    this.points = Float64Array.from(all, (x) => x.p);
    this.owners = Int32Array.from(all, (x) => x.o);
  }

  lookup(hash: number, usable: Usable): number {
    const points = this.points;
    const m = points.length;
    if (m === 0) return -1;
    // The first point at or after the hash (binary search), wrapping to the start.
    let lo = 0;
    let hi = m;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (points[mid]! < hash) lo = mid + 1;
      else hi = mid;
    }
    const start = lo === m ? 0 : lo;
    for (let k = 0; k < m; k++) {
      const o = this.owners[(start + k) % m]!;
      if (usable(o)) return o;
    }
    return this.owners[start]!;
  }
}

/** Envoy's default Maglev table size (a prime). */
export const MAGLEV_TABLE_SIZE = 65537;

export class Maglev implements HashTable {
  private readonly table: Int32Array;

  constructor(addresses: readonly string[], size = MAGLEV_TABLE_SIZE) {
    const n = addresses.length;
    this.table = new Int32Array(n === 0 ? 0 : size).fill(-1);
    if (n === 0) return;
    // Endpoints take their turns in address order, so the table does not depend on the list's order.
    const order = addresses.map((_a, i) => i).sort((a, b) => (addresses[a]! < addresses[b]! ? -1 : addresses[a]! > addresses[b]! ? 1 : a - b));
    const offset = order.map((i) => hash53(addresses[i]!, 0) % size);
    const skip = order.map((i) => (hash53(addresses[i]!, 1) % (size - 1)) + 1);
    const next = new Array<number>(n).fill(0);
    let filled = 0;
    for (;;) {
      for (let i = 0; i < n; i++) {
        let c = (offset[i]! + next[i]! * skip[i]!) % size;
        while (this.table[c]! >= 0) {
          next[i]!++;
          c = (offset[i]! + next[i]! * skip[i]!) % size;
        }
        this.table[c] = order[i]!;
        next[i]!++;
        if (++filled === size) return;
      }
    }
  }

  lookup(hash: number, usable: Usable): number {
    const table = this.table;
    const m = table.length;
    if (m === 0) return -1;
    const start = hash % m;
    const first = table[start]!;
    if (usable(first)) return first;
    for (let k = 1; k < m; k++) {
      const o = table[(start + k) % m]!;
      if (usable(o)) return o;
    }
    return first;
  }
}

/** The table of a hashing policy over `addresses` (`host:port`, in the source's order). */
export function hashTable(policy: 'ring_hash' | 'maglev', addresses: readonly string[]): HashTable {
  return policy === 'maglev' ? new Maglev(addresses) : new Ring(addresses);
}
