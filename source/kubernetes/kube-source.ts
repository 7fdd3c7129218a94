/**
 * A DeploymentSource backed by the Kubernetes API: list+watch of
 * machinelearning.seldon.io SeldonDeployments (docs/routing.md#watching-seldondeployments), cluster-wide or in one namespace.
 *
 * Discovery picks the version first: `v1` where served (it returns objects created under every
 * version), else `v1alpha2` (Seldon 0.x); never both, or every object would appear twice. A missing
 * CRD is retried with backoff and the source stays unsynced (so the gateway stays unready).
 *
 * The source remembers the resourceVersion of everything it has emitted. That makes every list
 * a reconcile: objects that vanished while the watch was away are deleted, unchanged ones are not
 * re-emitted, so a relist never empties the table and never duplicates an event. Events are
 * batched (EventBatcher) before they reach the sink. While the API server is unreachable nothing
 * is emitted: the last table keeps serving, and the sink hears onConnected(false) and a problem.
 */
import { Backoff, sleep } from '../backoff.js';
import { EventBatcher } from '../batcher.js';
import { SILENT_LOG, describeError, statusOf, type KubeClient, type KubeLog } from './kube-client.js';
import { deploymentKey, type DeploymentSource, type SourceSink } from '../source.js';
import { WatchLoop, type WatchTuning } from './watch-loop.js';
import type { SeldonDeployment } from '../../routing/seldon/deployment.js';

export const SELDON_GROUP = 'machinelearning.seldon.io';
export const SELDON_PLURAL = 'seldondeployments';
/** In order of preference (docs/routing.md#watching-seldondeployments). */
export const SELDON_VERSIONS = ['v1', 'v1alpha2'] as const;
export type SeldonVersion = (typeof SELDON_VERSIONS)[number];

/** Where problems of this source are reported (`onProblem(where, …)`). */
export const KUBERNETES_PROBLEM = 'kubernetes';

export interface KubeSourceOptions extends WatchTuning {
  client: KubeClient;
  /** Watch only this namespace (a Role suffices); undefined watches every namespace. */
  namespace?: string | undefined;
  /** Coalescing window for watch events (default 50 ms). */
  batchMs?: number;
  log?: KubeLog;
}

interface Known {
  readonly resourceVersion: string | undefined;
  readonly uid: string | undefined;
}

type SeldonObject = SeldonDeployment & { metadata?: { uid?: string; resourceVersion?: string } };

export class KubeSource implements DeploymentSource {
  /** The API connection, shared with the Event recorder and the EndpointSlice watcher. */
  readonly client: KubeClient;
  private readonly log: KubeLog;
  private readonly batcher: EventBatcher;
  private readonly discoveryBackoff: Backoff;
  private readonly abort = new AbortController();
  private sink: SourceSink | undefined;
  private loop: WatchLoop<SeldonObject> | undefined;
  private version: SeldonVersion | undefined;
  private stopped = false;
  private synced = false;
  private connected: boolean | undefined;
  private problem: string | undefined;
  /** Everything emitted and not deleted since: key → its resourceVersion and uid. */
  private readonly known = new Map<string, Known>();

  constructor(private readonly options: KubeSourceOptions) {
    this.client = options.client;
    this.log = options.log ?? SILENT_LOG;
    this.discoveryBackoff = new Backoff(options.backoff);
    this.batcher = new EventBatcher((events) => this.sink?.onEvents(events), options.batchMs ?? 50);
  }

  /** The namespace watched, or undefined for all. */
  get namespace(): string | undefined {
    return this.options.namespace;
  }

  /** `machinelearning.seldon.io/<version>` once discovery has chosen one. */
  get apiVersion(): string | undefined {
    return this.version && `${SELDON_GROUP}/${this.version}`;
  }

  /** What a Kubernetes Event needs to point at a SeldonDeployment this source has seen. */
  objectRef(namespace: string, name: string): { apiVersion: string; uid: string | undefined } {
    return { apiVersion: this.apiVersion ?? `${SELDON_GROUP}/v1`, uid: this.known.get(`${namespace}/${name}`)?.uid };
  }

  /** Returns at once: the initial sync is reported through the sink (`onSynced`). */
  async start(sink: SourceSink): Promise<void> {
    if (this.sink || this.stopped) return;
    this.sink = sink;
    void this.discover();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.abort.abort();
    this.batcher.cancel();
    await this.loop?.stop();
    this.loop = undefined;
  }

  /** Find the served version, then start the watch; retried with backoff until it works. */
  private async discover(): Promise<void> {
    while (!this.stopped) {
      let version: SeldonVersion | undefined;
      try {
        version = await this.servedVersion();
      } catch (err) {
        this.failed(err);
        await sleep(this.discoveryBackoff.next(), this.abort.signal);
        continue;
      }
      if (this.stopped) return;
      if (!version) {
        this.setConnected();
        this.report(`the API server serves no ${SELDON_PLURAL}.${SELDON_GROUP} (${SELDON_VERSIONS.join(' or ')}): is the Seldon Core CRD installed? Retrying.`);
        await sleep(this.discoveryBackoff.next(), this.abort.signal);
        continue;
      }
      this.markConnected();
      this.discoveryBackoff.reset();
      if (version !== this.version) this.log.info({ apiVersion: `${SELDON_GROUP}/${version}`, namespace: this.namespace ?? '(all)' }, 'watching SeldonDeployments');
      this.version = version;
      this.loop = this.watchLoop(version);
      this.loop.start();
      return;
    }
  }

  private async servedVersion(): Promise<SeldonVersion | undefined> {
    for (const version of SELDON_VERSIONS) {
      try {
        const list = await this.client.customObjects.getAPIResources({ group: SELDON_GROUP, version }, this.client.requestOptions());
        if (list.resources.some((r) => r.name === SELDON_PLURAL)) return version;
      } catch (err) {
        const status = statusOf(err);
        // Discovery is open to every authenticated user; if a cluster locks it down, just try v1.
        if (status === 403) return 'v1';
        if (status !== 404) throw err;
      }
    }
    return undefined;
  }

  private watchLoop(version: SeldonVersion): WatchLoop<SeldonObject> {
    const { client, namespace } = { client: this.client, namespace: this.namespace };
    const base = `/apis/${SELDON_GROUP}/${version}`;
    const list = async (): Promise<{ items: SeldonObject[]; metadata?: { resourceVersion?: string } }> =>
      namespace
        ? client.customObjects.listNamespacedCustomObject({ group: SELDON_GROUP, version, namespace, plural: SELDON_PLURAL }, client.requestOptions())
        : client.customObjects.listCustomObjectForAllNamespaces({ group: SELDON_GROUP, version, plural: SELDON_PLURAL }, client.requestOptions());
    return new WatchLoop<SeldonObject>({
      name: SELDON_PLURAL,
      kubeConfig: client.config,
      path: namespace ? `${base}/namespaces/${encodeURIComponent(namespace)}/${SELDON_PLURAL}` : `${base}/${SELDON_PLURAL}`,
      list,
      log: this.log,
      ...(this.options.backoff ? { backoff: this.options.backoff } : {}),
      ...(this.options.watchTimeoutSeconds !== undefined ? { watchTimeoutSeconds: this.options.watchTimeoutSeconds } : {}),
      ...(this.options.watchStallMs !== undefined ? { watchStallMs: this.options.watchStallMs } : {}),
      ...(this.options.stableMs !== undefined ? { stableMs: this.options.stableMs } : {}),
      handlers: {
        listed: (items) => this.listed(items),
        upserted: (obj) => this.upsert(obj),
        deleted: (obj) => this.remove(deploymentKey(obj)),
        connected: () => this.markConnected(),
        failed: (err) => {
          this.failed(err);
          // The CRD (or this version of it) went away: find out what is served now.
          if (statusOf(err) === 404) void this.rediscover();
        },
      },
    });
  }

  private async rediscover(): Promise<void> {
    const loop = this.loop;
    this.loop = undefined;
    await loop?.stop();
    if (!this.stopped) await this.discover();
  }

  /** A full list: emit what changed, delete what is gone, then say synced (or resynced). */
  private listed(items: readonly SeldonObject[]): void {
    const present = new Set<string>();
    for (const item of items) {
      present.add(deploymentKey(item));
      this.upsert(item);
    }
    for (const key of [...this.known.keys()]) if (!present.has(key)) this.remove(key);
    const sink = this.sink;
    if (!sink || this.stopped) return;
    // The list is one consistent snapshot: apply it as one batch, before saying synced.
    if (!this.synced) {
      // The first sync is delivered even when empty, as the manifest source does.
      if (this.batcher.size === 0) sink.onEvents([]);
      this.batcher.flush();
      this.synced = true;
      sink.onSynced();
    } else {
      this.batcher.flush();
      sink.onResync?.();
    }
  }

  private upsert(obj: SeldonObject): void {
    const key = deploymentKey(obj);
    const resourceVersion = obj.metadata?.resourceVersion;
    const previous = this.known.get(key);
    // Same resourceVersion = same object: a relist must not re-emit what the table already has.
    if (previous && resourceVersion !== undefined && previous.resourceVersion === resourceVersion) return;
    this.known.set(key, { resourceVersion, uid: obj.metadata?.uid });
    this.batcher.push({ type: 'upsert', key, deployment: obj });
  }

  private remove(key: string): void {
    if (!this.known.delete(key)) return;
    this.batcher.push({ type: 'delete', key });
  }

  /** Talking to the API server, and whatever went wrong before is over. */
  private markConnected(): void {
    this.setConnected();
    this.report(undefined);
  }

  private setConnected(): void {
    if (this.connected === true) return;
    this.connected = true;
    this.sink?.onConnected?.(true);
  }

  private failed(err: unknown): void {
    if (this.stopped) return;
    if (this.connected !== false) {
      this.connected = false;
      this.sink?.onConnected?.(false);
    }
    this.report(`${this.client.server}: ${describeError(err)}${hint(statusOf(err), this.namespace, this.synced)}`);
  }

  /** Report a problem once per distinct message, and its end once. */
  private report(message: string | undefined): void {
    if (message === this.problem) return;
    this.problem = message;
    this.sink?.onProblem(KUBERNETES_PROBLEM, message ?? null);
  }
}

function hint(status: number | undefined, namespace: string | undefined, synced: boolean): string {
  if (status === 401) return ' (the API server rejected the credentials)';
  if (status === 403) {
    const scope = namespace ? `in namespace ${namespace} (a Role)` : 'cluster-wide (a ClusterRole)';
    return ` (RBAC: the gateway needs list and watch on ${SELDON_PLURAL}.${SELDON_GROUP} ${scope})`;
  }
  return synced ? ' (routes keep serving from the last table; retrying)' : ' (retrying)';
}
