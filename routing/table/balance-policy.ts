/**
 * A Mapping's `load_balancer` over one upstream's ready endpoints, pure
 * (docs/routing.md#a-mappings-upstream-balancing-connections-and-tls). Its owner is the upstream's
 * endpoint set (gateway/upstream/endpoints.ts), which tells it each new ready list (`rebuild`) and
 * drops it with the upstream; a hashing table is built there, once per endpoint set, never per request.
 *
 * - `round_robin`: endpoints in turn, skipping an ejected one or one this request failed on.
 * - `least_request`: the gateway's own pick (routing/health/endpoints.ts `pickEndpoint`), which is
 *   already Envoy's power of two choices by requests in flight, weighed by each endpoint's latency.
 * - `ring_hash`, `maglev`: the request's key hash looked up in the table (routing/table/hash-balance.ts),
 *   walking past an ejected endpoint or one this request failed on; a request without a key is looked
 *   up at a random point, as Envoy does (its ring and Maglev balancers hash `random()` then): every endpoint
 *   keeps its share of the table, where the gateway's own pick would leave out a slow one.
 * Every policy keeps endpoint health's rule: when nothing usable is left, `pickEndpoint` chooses.
 */
import { pickEndpoint, type EndpointHealth, type HealthTracked, type OutlierPolicy } from '../health/endpoints.js';
import { hashTable, type HashTable } from './hash-balance.js';
import type { LoadBalancer } from '../emissary/mapping-policy.js';

/** hash53's range: a keyless request's random point on the ring (or in the Maglev table). */
const RANDOM_POINTS = 2 ** 53;

export class PolicyBalancer<E extends HealthTracked> {
  private ready: readonly E[] = [];
  private table: HashTable | undefined;
  private cursor = 0;
  /** The pick in progress, read by `usable` (one closure for the balancer's life, none per pick). */
  private now = 0;
  private avoid: readonly EndpointHealth[] | undefined;
  private readonly usable = (i: number): boolean => {
    const h = this.ready[i]!.health;
    return !h.isEjected(this.now) && (this.avoid === undefined || !this.avoid.includes(h));
  };

  constructor(
    readonly lb: LoadBalancer,
    private readonly policy: OutlierPolicy,
  ) {}

  /** The endpoint set changed: a hashing policy's table is built for the new list. */
  rebuild(ready: readonly E[]): void {
    this.ready = ready;
    const lb = this.lb;
    if (lb.policy === 'ring_hash' || lb.policy === 'maglev') {
      this.table = hashTable(
        lb.policy,
        ready.map((e) => e.health.address),
      );
    }
  }

  /** The endpoint for the next attempt (`ready` is the list last rebuilt for); `hash`: the request's key hash, if any. */
  pick(ready: readonly E[], avoid: readonly EndpointHealth[] | undefined, hash: number | undefined, now: number, random: () => number): E | undefined {
    if (ready !== this.ready) this.rebuild(ready);
    const n = ready.length;
    if (n <= 1) return ready[0];
    this.now = now;
    this.avoid = avoid;
    const lb = this.lb;
    if (lb.policy === 'round_robin') {
      for (let k = 0; k < n; k++) {
        const i = (this.cursor + k) % n;
        if (!this.usable(i)) continue;
        this.cursor = i + 1;
        return ready[i];
      }
    } else if (lb.policy !== 'least_request') {
      const i = this.table!.lookup(hash ?? Math.floor(random() * RANDOM_POINTS), this.usable);
      if (this.usable(i)) return ready[i];
    }
    return pickEndpoint(ready, avoid, now, this.policy, random);
  }
}
