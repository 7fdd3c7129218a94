/**
 * OAuth registrations over time (docs/routing.md#oauth-front-end): each deployment's identity (its
 * uid, or an incarnation agreed through the token store), and the store work a table change makes
 * (revoke a dropped or changed client's token, retire a deleted deployment's incarnation, agree a
 * new one), queued per deployment and retried with backoff until the store confirms it.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { GatewayMetrics } from '../observe/metrics.js';
import { problemOf } from './error-detail.js';
import { withTimeout } from './redis.js';
import { deploymentOf, fingerprint } from './token-crypto.js';
import type { TokenStore } from './token-store.js';
import type { OAuthClient, RouteTable } from '../../routing/types.js';

const uidOf = (c: OAuthClient): string | undefined => {
  const uid = c.uid;
  return typeof uid === 'string' && uid !== '' ? uid : undefined;
};

/** Work on the token store that must not be lost: retried until the store confirms it. */
type Job =
  { readonly kind: 'revoke'; readonly client: OAuthClient; readonly identity: string | undefined } | { readonly kind: 'retire'; readonly identity: string | undefined } | { readonly kind: 'register' };

/** One deployment's identity and its queue of store work (run in order, one at a time). */
interface Tracked {
  /** Known identity; undefined until the store has agreed one (or after a delete). */
  id: string | undefined;
  /** Whether the identity comes from the stored incarnation (not a uid). */
  incarnated: boolean;
  waiters: ((id: string) => void)[];
  readonly queue: Job[];
  running: boolean;
  attempt: number;
  timer: NodeJS.Timeout | undefined;
  /** Registered in the current table. */
  present: boolean;
}

/** The identity of a deployment is not (yet) agreed with the token store. */
export class IdentityPending extends Error {}

/** The token store and the settings the registrations share with the token endpoint. */
export interface StoreOptions {
  readonly store: TokenStore;
  readonly ttlMs: number;
  /** How long a request waits for the token store before 503. */
  readonly timeoutMs: number;
  readonly metrics: GatewayMetrics;
  readonly log?: Logger | undefined;
  /** Backoff of revocation retries (default 100 ms doubling to 5 s, plus jitter). */
  readonly retryMinMs?: number | undefined;
  readonly retryMaxMs?: number | undefined;
}

export interface RegistrationOptions extends StoreOptions {
  /** The AES key derived from a client's secret (cached by the caller). */
  readonly keyOf: (c: OAuthClient) => Promise<Buffer>;
}

/** The registrations of the current table, each deployment's identity, and the store work still to confirm. */
export class Registrations {
  private registered: ReadonlyMap<string, OAuthClient> = new Map();
  private readonly tracked = new Map<string, Tracked>();
  private pendingRevocations = 0;
  private closed = false;

  constructor(private readonly o: RegistrationOptions) {}

  /** The identity of the client's deployment, once the store has agreed it (else IdentityPending after the timeout). */
  identityOf(c: OAuthClient): string | Promise<string> {
    const uid = uidOf(c);
    if (uid !== undefined) return `uid:${uid}`;
    const t = this.tracked.get(deploymentOf(c));
    if (t?.id !== undefined) return t.id;
    if (!t) return Promise.reject(new IdentityPending(`${deploymentOf(c)} is not registered`));
    return new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => {
        const i = t.waiters.indexOf(done);
        if (i >= 0) t.waiters.splice(i, 1);
        reject(new IdentityPending(`the identity of ${deploymentOf(c)} is not yet agreed with the token store`));
      }, this.o.timeoutMs);
      const done = (id: string): void => {
        clearTimeout(timer);
        resolve(id);
      };
      t.waiters.push(done);
    });
  }

  /** The store is back: whatever waits for a retry goes now. */
  retryNow(): void {
    for (const [d, t] of this.tracked) {
      if (t.timer === undefined || this.closed) continue;
      clearTimeout(t.timer);
      void this.run(d, t);
    }
  }

  private trackedOf(deployment: string): Tracked {
    let t = this.tracked.get(deployment);
    if (!t) this.tracked.set(deployment, (t = { id: undefined, incarnated: false, waiters: [], queue: [], running: false, attempt: 0, timer: undefined, present: false }));
    return t;
  }

  private setIdentity(t: Tracked, id: string): void {
    t.id = id;
    const waiters = t.waiters.splice(0);
    for (const w of waiters) w(id);
  }

  /**
   * A new table: revoke every client whose registration it dropped or changed, retire the
   * identities of deleted deployments, agree identities for new ones. `deleted`: deployments the
   * change deleted (even if re-created in the same batch).
   */
  onTable(table: RouteTable, deleted: ReadonlySet<string>): void {
    const next = table.oauthClients;
    const prev = this.registered;
    this.registered = next;
    // Identities as they were, before this change touches them (for the revocations' fingerprints).
    const before = new Map<string, string | undefined>();
    const identityBefore = (c: OAuthClient): string | undefined => {
      const uid = uidOf(c);
      if (uid !== undefined) return `uid:${uid}`;
      const d = deploymentOf(c);
      if (!before.has(d)) before.set(d, this.tracked.get(d)?.id);
      return before.get(d);
    };
    for (const [id, c] of prev) {
      const n = next.get(id);
      const same = n !== undefined && n.secret === c.secret && n.namespace === c.namespace && n.deployment === c.deployment && uidOf(n) === uidOf(c) && !deleted.has(deploymentOf(c));
      if (same) continue;
      this.enqueue(deploymentOf(c), { kind: 'revoke', client: c, identity: identityBefore(c) });
    }
    const present = new Map<string, OAuthClient>();
    for (const c of next.values()) present.set(deploymentOf(c), c);
    for (const d of deleted) {
      const t = this.tracked.get(d);
      if (!t) continue;
      if (t.incarnated || t.id === undefined) this.enqueue(d, { kind: 'retire', identity: t.id });
      // A re-created deployment (same batch or later) waits for a new identity.
      t.id = undefined;
      t.incarnated = false;
      // A registration that never ran is moot; a new one follows if the deployment is back.
      this.dropQueued(t, 'register');
    }
    for (const [d, t] of this.tracked) {
      t.present = present.has(d);
      if (!t.present) this.dropQueued(t, 'register');
    }
    for (const [d, c] of present) {
      const t = this.trackedOf(d);
      t.present = true;
      const uid = uidOf(c);
      if (uid !== undefined) {
        // Kubernetes: the uid is the identity; a stored incarnation (before the uid was known) is retired.
        if (t.incarnated) this.enqueue(d, { kind: 'retire', identity: t.id });
        t.incarnated = false;
        if (t.id !== `uid:${uid}`) this.setIdentity(t, `uid:${uid}`);
      } else if (t.id === undefined || t.id.startsWith('uid:')) {
        if (t.id?.startsWith('uid:')) t.id = undefined;
        if (!t.queue.some((j) => j.kind === 'register')) this.enqueue(d, { kind: 'register' });
      }
    }
    this.forget();
  }

  private dropQueued(t: Tracked, kind: Job['kind']): void {
    // The head may be running: leave it.
    for (let i = t.queue.length - 1; i >= (t.running ? 1 : 0); i--) if (t.queue[i]!.kind === kind) t.queue.splice(i, 1);
  }

  /** Deployments gone from the table with nothing left to do. */
  private forget(): void {
    for (const [d, t] of this.tracked) if (!t.present && t.queue.length === 0 && !t.running) this.tracked.delete(d);
  }

  /** Every `resyncMs`: re-read each incarnation (renewing it), so every process converges on the stored one. */
  refresh(): void {
    for (const [d, t] of this.tracked) if (t.present && t.queue.length === 0 && !t.running && (t.incarnated || t.id === undefined)) this.enqueue(d, { kind: 'register' });
  }

  private enqueue(deployment: string, job: Job): void {
    if (this.closed) return;
    const t = this.trackedOf(deployment);
    t.queue.push(job);
    if (job.kind !== 'register') this.countPending(1);
    if (!t.running && t.timer === undefined) void this.run(deployment, t);
  }

  private countPending(delta: number): void {
    this.pendingRevocations += delta;
    this.o.metrics.revocationsPending.set(this.pendingRevocations);
  }

  private async run(deployment: string, t: Tracked): Promise<void> {
    t.timer = undefined;
    if (t.running) return;
    t.running = true;
    try {
      while (t.queue.length > 0 && !this.closed) {
        const job = t.queue[0]!;
        try {
          await this.perform(deployment, t, job);
        } catch (err) {
          t.attempt++;
          this.o.metrics.revocationRetries.inc();
          const min = this.o.retryMinMs ?? 100;
          const delay = Math.min(this.o.retryMaxMs ?? 5000, min * 2 ** Math.min(t.attempt - 1, 16)) + Math.floor(Math.random() * min);
          if (t.attempt === 1 || t.attempt % 20 === 0) {
            this.o.log?.warn(
              { deployment, job: job.kind, attempts: t.attempt, retryInMs: delay, problem: problemOf(err) },
              'OAuth: the token store did not confirm; retrying (old tokens are refused meanwhile)',
            );
          }
          t.timer = setTimeout(() => void this.run(deployment, t), delay);
          t.timer.unref();
          return;
        }
        t.queue.shift();
        if (job.kind !== 'register') this.countPending(-1);
        if (t.attempt > 0) this.o.log?.info({ deployment, job: job.kind, attempts: t.attempt + 1 }, 'OAuth: the token store confirmed after retries');
        t.attempt = 0;
      }
    } finally {
      t.running = false;
    }
    this.forget();
  }

  private async perform(deployment: string, t: Tracked, job: Job): Promise<void> {
    const wait = Math.max(1000, this.o.timeoutMs);
    switch (job.kind) {
      case 'revoke': {
        const fp = job.identity === undefined ? undefined : fingerprint(await this.o.keyOf(job.client), job.client, job.identity);
        await withTimeout(this.o.store.revoke(job.client.clientId, fp), wait, 'token store');
        this.o.log?.info({ deployment }, 'OAuth client unregistered or changed: its token is revoked');
        return;
      }
      case 'retire':
        await withTimeout(this.o.store.retire(deployment, job.identity), wait, 'token store');
        return;
      case 'register': {
        if (!t.present || (t.id !== undefined && !t.incarnated)) return;
        const proposed = t.id ?? `inc:${randomUUID()}`;
        const id = await withTimeout(this.o.store.incarnation(deployment, proposed, Math.max(2 * this.o.ttlMs, 3_600_000)), wait, 'token store');
        if (!t.present || (t.id !== undefined && !t.incarnated)) return;
        if (t.id !== undefined && t.id !== id)
          this.o.log?.info({ deployment }, 'OAuth: adopted the identity the token store holds for this deployment (tokens issued under the other one are refused)');
        t.incarnated = true;
        if (t.id !== id) this.setIdentity(t, id);
        return;
      }
    }
  }

  /** Revocations and registrations still waiting for the store (tests, diagnostics). */
  get pending(): number {
    let n = 0;
    for (const t of this.tracked.values()) n += t.queue.length;
    return n;
  }

  close(): void {
    this.closed = true;
    for (const t of this.tracked.values()) if (t.timer) clearTimeout(t.timer);
  }
}
