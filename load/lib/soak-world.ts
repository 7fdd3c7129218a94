/**
 * What changes behind the gateway during a soak (load/scenarios/soak.ts), on the Kubernetes API stand-in
 * (test/fixtures/fake-kube-api.ts) and the loopback pods (test/fixtures/loopback-replicas.ts) it is given:
 *
 * - the stable deployment: predictor `main` (90%) on four replicas at 127.0.0.2–5, `canary` (10%)
 *   on two pods of its own, `shadow` (mirrored) on one pod at 127.0.0.6;
 * - `flip()`: one replica of `main` leaves the ready set (ready: false, then terminating, then out
 *   of the slice) and comes back, the next one each time;
 * - `replaceCanary()`: the canary's pods are replaced by two on new addresses (both listed, then the
 *   new alone); the old ones stop once the gateway has let go of them;
 * - `churn()`: a new deployment on two pods of its own, and the one created `lifetimeS` earlier
 *   deleted (EndpointSlice, then SeldonDeployment), its pods stopped once the gateway let go.
 *
 * Pod addresses come from 127.0.0.7–127.0.0.254 and go back to the end of the line when their pod
 * stopped, so an address is reused as late as possible. A pod stops only once it has no connection
 * from the gateway and nothing in flight (pools and sessions of what left closed: the gateway's
 * part), or `letGoWithinMs` after it left, then counted as held (`stats.heldPods`).
 */

import { endpointSlice, seldonDeployment, type FakeEndpoint, type FakeKubeApi } from '../../test/fixtures/fake-kube-api.js';
import type { LoopbackPods } from '../../test/fixtures/loopback-replicas.js';

export const REPLICAS = ['127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5'];
const at = (ips: readonly string[]): FakeEndpoint[] => ips.map((ip) => ({ ip }));
const SHADOW_POD = '127.0.0.6';
const FIRST_FREE = 7;
const LAST_FREE = 254;

export interface WorldStats {
  /** Churn deployments created and deleted so far. */
  created: number;
  deleted: number;
  flips: number;
  canaryReplacements: number;
  /** Pods stopped after the gateway let go of them, and the slowest let-go after leaving, ms. */
  podsStopped: number;
  slowestLetGoMs: number;
  /** Pods stopped with the gateway still holding connections `letGoWithinMs` after they left. */
  heldPods: string[];
}

interface Churned {
  readonly name: string;
  readonly pods: string[];
  readonly createdAt: number;
  deletedAt?: number;
}

export class SoakWorld {
  readonly stats: WorldStats = { created: 0, deleted: 0, flips: 0, canaryReplacements: 0, podsStopped: 0, slowestLetGoMs: 0, heldPods: [] };
  /** Churn deployment → when it was created, and when its deletion began (epoch ms): a request to it that ended later may fail. */
  readonly createdAt = new Map<string, number>();
  readonly deletedAt = new Map<string, number>();
  /** Pod addresses stopped (for series naming gone addresses), with when. */
  readonly goneAddresses = new Map<string, number>();
  private readonly free: string[] = [];
  private readonly churned: Churned[] = [];
  private canary: string[] = [];
  private next = 0;
  private flipIndex = 0;
  private readonly leaving = new Set<Promise<void>>();

  constructor(
    private readonly api: FakeKubeApi,
    private readonly pods: LoopbackPods,
    private readonly o: { readonly namespace: string; readonly stable: string; readonly lifetimeS: number; readonly letGoWithinMs: number },
  ) {
    for (let i = FIRST_FREE; i <= LAST_FREE; i++) this.free.push(`127.0.0.${i}`);
  }

  private get ports(): { name: string; port: number }[] {
    return [
      { name: 'http', port: this.pods.restPort },
      { name: 'grpc', port: this.pods.grpcPort },
    ];
  }

  private publish(deployment: string, predictor: string, endpoints: FakeEndpoint[]): void {
    this.api.upsert('endpointslices', endpointSlice(`${deployment}-${predictor}`, this.o.namespace, `${deployment}-${predictor}-slice`, endpoints, this.ports));
  }

  private async podsAt(n: number): Promise<string[]> {
    const ips = this.free.splice(0, n);
    if (ips.length < n) throw new Error('no pod address left in 127.0.0.7–254');
    for (const ip of ips) {
      this.goneAddresses.delete(ip);
      await this.pods.start(ip);
    }
    return ips;
  }

  /** Pods that left: each stops once the gateway has let go of it (or after letGoWithinMs), then its address is free again. */
  private letGo(ips: readonly string[]): void {
    const left = Date.now();
    const done = (async () => {
      for (const ip of ips) {
        while ((this.pods.connections(ip) > 0 || this.pods.inFlight(ip) > 0) && Date.now() - left < this.o.letGoWithinMs) await new Promise((r) => setTimeout(r, 50));
        if (this.pods.connections(ip) > 0) this.stats.heldPods.push(`${ip} (${this.pods.connections(ip)} connections ${this.o.letGoWithinMs} ms after it left)`);
        else this.stats.slowestLetGoMs = Math.max(this.stats.slowestLetGoMs, Date.now() - left);
        await this.pods.stop(ip);
        this.stats.podsStopped++;
        this.goneAddresses.set(ip, Date.now());
        this.free.push(ip);
      }
    })();
    this.leaving.add(done);
    void done.finally(() => this.leaving.delete(done));
  }

  /** The stable deployment, its pods and slices. */
  async setUp(): Promise<void> {
    for (const ip of [...REPLICAS, SHADOW_POD]) await this.pods.start(ip);
    this.canary = await this.podsAt(2);
    this.publish(this.o.stable, 'main', at(REPLICAS));
    this.publish(this.o.stable, 'canary', at(this.canary));
    this.publish(this.o.stable, 'shadow', [{ ip: SHADOW_POD }]);
    const graph = { name: 'model', type: 'MODEL' };
    this.api.upsert(
      'seldondeployments',
      seldonDeployment(this.o.stable, this.o.namespace, {
        predictors: [
          { name: 'main', traffic: 90, graph },
          { name: 'canary', traffic: 10, graph },
          { name: 'shadow', shadow: true, graph },
        ],
      }),
    );
  }

  /** Churn deployments a client may send to now: created at least `settleMs` ago, not being deleted. */
  live(settleMs: number): string[] {
    const now = Date.now();
    return this.churned.filter((c) => c.deletedAt === undefined && now - c.createdAt >= settleMs).map((c) => c.name);
  }

  /** A new deployment, and the one `lifetimeS` older deleted. */
  async churn(): Promise<void> {
    const name = `churn${this.next++}`;
    const ips = await this.podsAt(2);
    this.publish(name, 'main', at(ips));
    this.api.upsert('seldondeployments', seldonDeployment(name, this.o.namespace, { predictors: [{ name: 'main', graph: { name: 'model', type: 'MODEL' } }] }));
    this.churned.push({ name, pods: ips, createdAt: Date.now() });
    this.createdAt.set(name, Date.now());
    this.stats.created++;
    const now = Date.now();
    while (this.churned.length > 0 && now - this.churned[0]!.createdAt >= this.o.lifetimeS * 1000 - 100) {
      const old = this.churned.shift()!;
      old.deletedAt = now;
      this.deletedAt.set(old.name, now);
      this.api.remove('endpointslices', this.o.namespace, `${old.name}-main-slice`);
      this.api.remove('seldondeployments', this.o.namespace, old.name);
      this.stats.deleted++;
      this.letGo(old.pods);
    }
  }

  /** One replica of `main` leaves the ready set and comes back, over `ms` (ready: false, terminating, out, back). */
  async flip(ms: number): Promise<void> {
    const leaving = REPLICAS[this.flipIndex++ % REPLICAS.length]!;
    const others = at(REPLICAS.filter((ip) => ip !== leaving));
    const step = (): Promise<void> => new Promise((r) => setTimeout(r, ms / 4));
    this.publish(this.o.stable, 'main', [...others, { ip: leaving, ready: false }]);
    await step();
    this.publish(this.o.stable, 'main', [...others, { ip: leaving, ready: false, terminating: true }]);
    await step();
    this.publish(this.o.stable, 'main', others);
    await step();
    this.publish(this.o.stable, 'main', at(REPLICAS));
    this.stats.flips++;
  }

  /** The canary's pods replaced by two on new addresses: both listed, then the new alone after `overlapMs`. */
  async replaceCanary(overlapMs: number): Promise<void> {
    const old = this.canary;
    const fresh = await this.podsAt(2);
    this.publish(this.o.stable, 'canary', at([...old, ...fresh]));
    await new Promise((r) => setTimeout(r, overlapMs));
    this.canary = fresh;
    this.publish(this.o.stable, 'canary', at(fresh));
    this.stats.canaryReplacements++;
    this.letGo(old);
  }

  /** Every churn deployment deleted, and every pod that left stopped. */
  async wind(): Promise<void> {
    const now = Date.now();
    for (const c of this.churned.splice(0)) {
      c.deletedAt = now;
      this.deletedAt.set(c.name, now);
      this.api.remove('endpointslices', this.o.namespace, `${c.name}-main-slice`);
      this.api.remove('seldondeployments', this.o.namespace, c.name);
      this.stats.deleted++;
      this.letGo(c.pods);
    }
    while (this.leaving.size > 0) await Promise.all([...this.leaving]);
  }
}
