/**
 * A list+watch of one resource that keeps going: `@kubernetes/client-node`'s ListWatch informer
 * (list, watch from the list's resourceVersion, relist on 410 Gone and reconcile deletions)
 * wrapped with what its 1.4.0 release lacks (docs/architecture.md#dependency-facts):
 *
 * - a failed list or watch stops that informer for good: restart it after a jittered backoff,
 *   and it resumes from the last resourceVersion it saw (no relist unless the server says 410);
 * - the watch has no timeout, so a hung API server would hold it forever: ask the server to end
 *   each watch after `watchTimeoutSeconds` and abort it ourselves if it has not ended soon after;
 * - watches that end at once (a proxy that closes streams, a 410 loop) are re-opened at once by
 *   the informer: pace those with the same backoff;
 * - `informer.stop()` fires the error callback itself: ignore errors once stopping.
 *
 * The owner gets the listed items on every (re)list, the watched changes, and connection state.
 */
import { KubeConfig, ListWatch, Watch, type KubernetesListObject, type KubernetesObject } from '@kubernetes/client-node';
import { Backoff, sleep, type BackoffOptions } from '../backoff.js';
import { SILENT_LOG, describeError, type KubeLog } from './kube-client.js';

export interface WatchLoopHandlers<T> {
  /** A complete list: every object that exists now. `relist`: not the first list of this loop. */
  listed(items: readonly T[], relist: boolean): void;
  /** An object was added or changed (watch event). */
  upserted(obj: T): void;
  /** An object was deleted (watch event, or gone from a relist). */
  deleted(obj: T): void;
  /** Talking to the API server again (called on the transition only). */
  connected(): void;
  /** A list or watch failed; the loop retries by itself. Called on every failure. */
  failed(err: unknown): void;
}

/** How a watch loop retries and when it gives up on a watch: the tuning its users pass through. */
export type WatchTuning = Pick<WatchLoopOptions<KubernetesObject>, 'backoff' | 'watchTimeoutSeconds' | 'watchStallMs' | 'stableMs'>;

export interface WatchLoopOptions<T extends KubernetesObject> {
  /** For logs: what is watched, e.g. `seldondeployments`. */
  name: string;
  kubeConfig: KubeConfig;
  /** The collection path, e.g. `/apis/machinelearning.seldon.io/v1/seldondeployments`. */
  path: string;
  /** One list call (with its own request timeout). */
  list(): Promise<KubernetesListObject<T>>;
  labelSelector?: string;
  handlers: WatchLoopHandlers<T>;
  backoff?: Partial<BackoffOptions>;
  /** Server-side end of each watch (timeoutSeconds); the watch is then re-opened from its resourceVersion. */
  watchTimeoutSeconds?: number;
  /** Abort a watch the server has not ended after this long (default: watchTimeoutSeconds + 30 s). */
  watchStallMs?: number;
  /** A watch that lived this long counts as healthy: the backoff starts over. */
  stableMs?: number;
  /** Override the delay before retrying after `err` (e.g. a slow retry for 403). */
  retryDelayMs?(err: unknown, backoffMs: number): number;
  log?: KubeLog;
}

/** A watch we aborted because the server neither sent its end nor closed it in time. */
export class WatchStalledError extends Error {}
class StoppedError extends Error {}

/** A KubeConfig that remembers the HTTP agent of the last watch, so a hung watch can be torn down. */
class AgentTrackingKubeConfig extends KubeConfig {
  agent: { destroy(): void } | undefined;
  override async applyToFetchOptions(opts: Parameters<KubeConfig['applyToFetchOptions']>[0]): ReturnType<KubeConfig['applyToFetchOptions']> {
    const init = await super.applyToFetchOptions(opts);
    const agent: unknown = init.agent;
    this.agent = typeof agent === 'object' && agent !== null && 'destroy' in agent ? (agent as { destroy(): void }) : undefined;
    return init;
  }
}

interface WatchHooks {
  /** Wait before opening a watch if the last one ended too soon; false: stopping. */
  beforeWatch(): Promise<boolean>;
  opened(): void;
  ended(startedAt: number, err: unknown): void;
  stopped(): boolean;
}

/** client-node's Watch plus server and client timeouts, pacing and a stall guard. */
class GuardedWatch extends Watch {
  constructor(
    private readonly tracking: AgentTrackingKubeConfig,
    private readonly hooks: WatchHooks,
    private readonly timeoutSeconds: number,
    private readonly stallMs: number,
  ) {
    super(tracking);
  }

  override async watch(
    path: string,
    queryParams: Record<string, string | number | boolean | undefined>,
    callback: (phase: string, apiObj: unknown, watchObj?: unknown) => void,
    done: (err: unknown) => void,
  ): Promise<AbortController> {
    if (!(await this.hooks.beforeWatch())) return new AbortController();
    const startedAt = Date.now();
    let finished = false;
    const finish = (err: unknown): void => {
      if (finished) return;
      finished = true;
      clearTimeout(stall);
      this.hooks.ended(startedAt, err);
      done(err);
    };
    const stall = setTimeout(() => {
      // Destroying the agent ends the request whether or not headers have arrived.
      this.tracking.agent?.destroy();
      finish(new WatchStalledError(`watch not ended by the server after ${this.stallMs} ms`));
    }, this.stallMs);
    try {
      const controller = await super.watch(
        path,
        { ...queryParams, allowWatchBookmarks: true, timeoutSeconds: this.timeoutSeconds },
        (phase, obj, raw) => {
          if (!finished) callback(phase, obj, raw);
        },
        finish,
      );
      if (this.hooks.stopped()) controller.abort();
      else if (!finished) this.hooks.opened();
      return controller;
    } catch (err) {
      // applyToFetchOptions can throw (bad credentials file); the informer must still hear of it.
      finish(err);
      return new AbortController();
    }
  }
}

export class WatchLoop<T extends KubernetesObject> {
  private readonly informer: ListWatch<T>;
  private readonly tracking = new AgentTrackingKubeConfig();
  private readonly backoff: Backoff;
  private readonly stableMs: number;
  private readonly abort = new AbortController();
  private readonly log: KubeLog;
  private stopping = false;
  private started = false;
  private up = false;
  private listedOnce = false;
  private restartTimer: NodeJS.Timeout | undefined;
  private stableTimer: NodeJS.Timeout | undefined;
  /** Set by a restart that has already waited its backoff, so the next list/watch does not wait again. */
  private justRestarted = false;
  private lastWatchMs: number | undefined;

  constructor(private readonly options: WatchLoopOptions<T>) {
    const kc = options.kubeConfig;
    this.tracking.loadFromOptions({ clusters: kc.clusters, contexts: kc.contexts, users: kc.users, currentContext: kc.currentContext });
    this.backoff = new Backoff(options.backoff);
    this.stableMs = options.stableMs ?? 10_000;
    this.log = options.log ?? SILENT_LOG;
    const timeoutSeconds = options.watchTimeoutSeconds ?? 300;
    const watch = new GuardedWatch(
      this.tracking,
      {
        beforeWatch: () => this.pace(),
        opened: () => this.watchOpened(),
        ended: (startedAt) => this.watchEnded(startedAt),
        stopped: () => this.stopping,
      },
      timeoutSeconds,
      options.watchStallMs ?? timeoutSeconds * 1000 + 30_000,
    );
    this.informer = new ListWatch<T>(options.path, watch, () => this.list(), false, options.labelSelector);
    this.informer.on('add', (obj) => this.guard('upserted', () => options.handlers.upserted(obj)));
    this.informer.on('update', (obj) => this.guard('upserted', () => options.handlers.upserted(obj)));
    this.informer.on('delete', (obj) => this.guard('deleted', () => options.handlers.deleted(obj)));
    this.informer.on('error', (err: unknown) => this.onError(err));
  }

  /** Starts listing and watching in the background; progress comes through the handlers. */
  start(): void {
    if (this.started || this.stopping) return;
    this.started = true;
    this.run();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.abort.abort();
    clearTimeout(this.restartTimer);
    clearTimeout(this.stableTimer);
    await this.informer.stop();
    // A watch still waiting for its response headers has no controller yet: end it here.
    this.tracking.agent?.destroy();
  }

  private run(): void {
    this.informer.start().catch((err: unknown) => this.onError(err));
  }

  private async list(): Promise<KubernetesListObject<T>> {
    if (!(await this.pace())) throw new StoppedError('stopped');
    const list = await this.options.list();
    if (this.stopping) throw new StoppedError('stopped');
    this.markUp();
    const relist = this.listedOnce;
    this.listedOnce = true;
    this.guard('listed', () => this.options.handlers.listed(list.items ?? [], relist));
    return list;
  }

  /** Back off before a list or watch that follows a watch that ended too soon. */
  private async pace(): Promise<boolean> {
    const last = this.lastWatchMs;
    this.lastWatchMs = undefined;
    if (this.justRestarted) this.justRestarted = false;
    else if (last !== undefined && last < this.stableMs) await sleep(this.backoff.next(), this.abort.signal);
    return !this.stopping;
  }

  private watchOpened(): void {
    this.markUp();
    clearTimeout(this.stableTimer);
    this.stableTimer = setTimeout(() => this.backoff.reset(), this.stableMs);
  }

  private watchEnded(startedAt: number): void {
    clearTimeout(this.stableTimer);
    this.lastWatchMs = Date.now() - startedAt;
  }

  private markUp(): void {
    if (this.up) return;
    this.up = true;
    this.guard('connected', () => this.options.handlers.connected());
  }

  private onError(err: unknown): void {
    // informer.stop() reports its own abort as an error; so does a list cut short by stop().
    if (this.stopping || err instanceof StoppedError) return;
    this.up = false;
    this.guard('failed', () => this.options.handlers.failed(err));
    if (this.restartTimer) return;
    const backoffMs = this.backoff.next();
    const delay = this.options.retryDelayMs?.(err, backoffMs) ?? backoffMs;
    this.log.debug({ watch: this.options.name, error: describeError(err), retryInMs: delay }, 'kubernetes watch failed; retrying');
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      if (this.stopping) return;
      this.justRestarted = true;
      this.run();
    }, delay);
  }

  /** A throwing handler is a bug; it must not kill the loop (or the process, from a stream callback). */
  private guard(what: string, fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.log.warn({ watch: this.options.name, handler: what, error: describeError(err) }, 'kubernetes watch handler failed');
    }
  }
}
