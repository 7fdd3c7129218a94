/**
 * Kubernetes Events on SeldonDeployments the gateway rejects or degrades, so that
 * `kubectl describe sdep NAME` says why (docs/routing.md#route-listing).
 *
 * One Warning Event per change of reason or message (`RouteRejected` / `RouteDegraded`, the
 * reasons joined). The same message again within `intervalMs` of the last post is dropped; after
 * it, the existing Event's count is bumped (a patch, as kubectl's "x3 over 5m" expects), or a new
 * one is created if that Event has expired. Posting is asynchronous, bounded in concurrency and
 * in queue length, and never throws at its caller: a gateway without RBAC for Events says so once
 * and keeps routing.
 */
import { hostname } from 'node:os';
import type { CoreV1Event } from '@kubernetes/client-node';
import { SILENT_LOG, describeError, statusOf, type KubeClient, type KubeLog } from './kube-client.js';

export interface DeploymentStateReport {
  readonly namespace: string;
  readonly name: string;
  readonly state: 'accepted' | 'degraded' | 'rejected' | 'skipped';
  readonly reasons: readonly string[];
}

export const EVENT_REASONS = { rejected: 'RouteRejected', degraded: 'RouteDegraded' } as const;

export interface DeploymentEventsOptions {
  client: KubeClient;
  /** apiVersion and uid of the SeldonDeployment, as the source saw it. */
  objectRef?(namespace: string, name: string): { apiVersion: string; uid: string | undefined };
  /** At most one Event per object per interval for an unchanged message (default 60 s). */
  intervalMs?: number;
  /** `source.component` and `reportingComponent` (default `seldon-gateway`). */
  component?: string;
  /** `source.host` and `reportingInstance` (default: the pod's hostname). */
  instance?: string;
  log?: KubeLog;
  now?(): number;
  /** Posts waiting beyond this are dropped (default 1000). */
  maxPending?: number;
  /** Posts in flight at once (default 4). */
  concurrency?: number;
}

interface Posted {
  type: 'Normal' | 'Warning';
  reason: string;
  message: string;
  count: number;
  lastAt: number;
  /** The Event's name once created; a bump patches it. */
  eventName: string | undefined;
}

const MAX_MESSAGE = 1024;

export class DeploymentEvents {
  private readonly client: KubeClient;
  private readonly log: KubeLog;
  private readonly intervalMs: number;
  private readonly component: string;
  private readonly instance: string;
  private readonly now: () => number;
  private readonly maxPending: number;
  private readonly concurrency: number;
  private readonly posted = new Map<string, Posted>();
  private readonly queue: (() => Promise<void>)[] = [];
  private inFlight = 0;
  private idleWaiters: (() => void)[] = [];
  private readonly warned = new Set<string>();
  private stopped = false;
  private sequence = 0;

  constructor(private readonly options: DeploymentEventsOptions) {
    this.client = options.client;
    this.log = options.log ?? SILENT_LOG;
    this.intervalMs = options.intervalMs ?? 60_000;
    this.component = options.component ?? 'seldon-gateway';
    this.instance = options.instance ?? hostname();
    this.now = options.now ?? Date.now;
    this.maxPending = options.maxPending ?? 1000;
    this.concurrency = options.concurrency ?? 4;
  }

  /** A deployment's state or reasons changed. Never throws; posting happens in the background. */
  report(report: DeploymentStateReport): void {
    if (this.stopped || (report.state !== 'rejected' && report.state !== 'degraded')) return;
    const key = `${report.namespace}/${report.name}`;
    const reason = EVENT_REASONS[report.state];
    const message = truncate(report.reasons.join('; ') || report.state, MAX_MESSAGE);
    const now = this.now();
    const previous = this.posted.get(key);
    if (previous && previous.reason === reason && previous.message === message) {
      // Flapping back to the same problem: rate-limited, then counted on the same Event.
      if (now - previous.lastAt < this.intervalMs) return;
      previous.count++;
      previous.lastAt = now;
      this.enqueue(() => this.bump(report.namespace, report.name, previous));
      return;
    }
    const entry: Posted = { type: 'Warning', reason, message, count: 1, lastAt: now, eventName: undefined };
    this.posted.set(key, entry);
    this.enqueue(() => this.create(report.namespace, report.name, entry));
  }

  /** One Event that is not a state report: a rollout's transition (`RolloutAdvanced`, …). Each call posts one. */
  post(namespace: string, name: string, type: 'Normal' | 'Warning', reason: string, message: string): void {
    if (this.stopped) return;
    const entry: Posted = { type, reason, message: truncate(message, MAX_MESSAGE), count: 1, lastAt: this.now(), eventName: undefined };
    this.enqueue(() => this.create(namespace, name, entry));
  }

  /** The deployment is gone: forget its rate-limit state. */
  forget(namespace: string, name: string): void {
    this.posted.delete(`${namespace}/${name}`);
  }

  /** Resolves when nothing is queued or in flight (tests, shutdown). */
  idle(): Promise<void> {
    if (this.inFlight === 0 && this.queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Drop what is queued; posts in flight finish on their own. */
  stop(): void {
    this.stopped = true;
    this.queue.length = 0;
  }

  private enqueue(task: () => Promise<void>): void {
    if (this.queue.length >= this.maxPending) {
      this.warnOnce('queue', {}, `Kubernetes Event queue full (${this.maxPending}): dropping Events`);
      return;
    }
    this.queue.push(task);
    this.pump();
  }

  private pump(): void {
    while (this.inFlight < this.concurrency && this.queue.length > 0) {
      const task = this.queue.shift()!;
      this.inFlight++;
      void task()
        .catch((err: unknown) => this.failed(err))
        .finally(() => {
          this.inFlight--;
          this.pump();
          if (this.inFlight === 0 && this.queue.length === 0) for (const w of this.idleWaiters.splice(0)) w();
        });
    }
  }

  private async create(namespace: string, name: string, entry: Posted): Promise<void> {
    const ref = this.options.objectRef?.(namespace, name) ?? { apiVersion: 'machinelearning.seldon.io/v1', uid: undefined };
    const at = new Date(this.now());
    const body: CoreV1Event = {
      metadata: { name: this.eventName(name), namespace },
      involvedObject: { kind: 'SeldonDeployment', apiVersion: ref.apiVersion, name, namespace, ...(ref.uid ? { uid: ref.uid } : {}) },
      type: entry.type,
      reason: entry.reason,
      message: entry.message,
      count: entry.count,
      firstTimestamp: at,
      lastTimestamp: at,
      source: { component: this.component, host: this.instance },
      reportingComponent: this.component,
      reportingInstance: this.instance,
    };
    const created = await this.client.core.createNamespacedEvent({ namespace, body }, this.client.requestOptions());
    entry.eventName = created.metadata?.name ?? body.metadata.name;
  }

  private async bump(namespace: string, name: string, entry: Posted): Promise<void> {
    if (!entry.eventName) return this.create(namespace, name, entry);
    const patch = [
      { op: 'replace', path: '/count', value: entry.count },
      { op: 'replace', path: '/lastTimestamp', value: new Date(this.now()).toISOString() },
    ];
    try {
      await this.client.core.patchNamespacedEvent({ name: entry.eventName, namespace, body: patch }, this.client.requestOptions());
    } catch (err) {
      // Events expire (an hour by default): start a new one.
      if (statusOf(err) !== 404) throw err;
      entry.count = 1;
      await this.create(namespace, name, entry);
    }
  }

  /** `<name>.<hex>`, unique per process, like client-go's recorder. */
  private eventName(name: string): string {
    const stamp = BigInt(this.now()) * 1_000_000n + BigInt(this.sequence++ % 1_000_000);
    return `${name}.${stamp.toString(16)}`;
  }

  private failed(err: unknown): void {
    const status = statusOf(err);
    if (status === 403)
      this.warnOnce('forbidden', { error: describeError(err) }, 'cannot post Kubernetes Events (RBAC: create and patch on events): rejected deployments are only in the log and /routes');
    else this.warnOnce(describeError(err), { error: describeError(err) }, 'could not post a Kubernetes Event');
  }

  private warnOnce(key: string, obj: object, message: string): void {
    if (this.warned.has(key)) return;
    if (this.warned.size > 100) this.warned.clear();
    this.warned.add(key);
    this.log.warn(obj, message);
  }
}

function truncate(s: string, max: number): string {
  return s.length <= max ? s : `${s.slice(0, max - 1)}…`;
}
