/**
 * Ready pod endpoints of Services, from a list+watch of discovery.k8s.io/v1 EndpointSlices
 * (docs/routing.md#upstream-services-and-ports): the data plane balances each request across them itself instead of
 * dialling the Service's DNS name (which pins an HTTP/2 connection to one pod).
 *
 * The watcher keeps an `EndpointIndex` (endpoint-index.ts: what `endpointsOf` answers, and when it
 * changes); in a cluster, the primary runs the one watcher and sends its slices to every worker's
 * own index, so workers never load the Kubernetes client.
 *
 * Without RBAC for EndpointSlices (403) the watcher logs once, answers undefined for everything,
 * and quietly retries now and then in case the permission is granted later.
 */
import type { V1EndpointSlice } from '@kubernetes/client-node';
import { EndpointIndex, type Endpoint, type EndpointPort, type SliceChange, type SliceView } from './endpoint-index.js';
import { SILENT_LOG, describeError, statusOf, type KubeClient, type KubeLog } from './kube-client.js';
import { WatchLoop, type WatchTuning } from './watch-loop.js';

export type { Endpoint, EndpointPort };

export const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';

/** starting: no list yet; synced: listed at least once; forbidden: RBAC denies EndpointSlices. */
export type EndpointWatcherState = 'starting' | 'synced' | 'forbidden';

export interface EndpointWatcherOptions extends WatchTuning {
  client: KubeClient;
  /** Same scope as the SeldonDeployment watch: one namespace, or undefined for all. */
  namespace?: string | undefined;
  log?: KubeLog;
  /** Change notifications are coalesced over this window (default 10 ms). */
  batchMs?: number;
  /** While forbidden, how often to try again (default 5 minutes). */
  forbiddenRetryMs?: number;
}

export class EndpointWatcher {
  private readonly log: KubeLog;
  private readonly loop: WatchLoop<V1EndpointSlice>;
  /** What the watch says now; its owner, it removes a slice at the watch's delete or a relist without it. */
  readonly index: EndpointIndex;
  private current: EndpointWatcherState = 'starting';
  private failing: string | undefined;

  constructor(options: EndpointWatcherOptions) {
    this.log = options.log ?? SILENT_LOG;
    this.index = new EndpointIndex(options.batchMs ?? 10, (err) => this.log.warn({ error: describeError(err) }, 'endpoint change listener failed'));
    const { client, namespace } = options;
    const forbiddenRetryMs = options.forbiddenRetryMs ?? 300_000;
    const list = async (): Promise<{ items: V1EndpointSlice[] }> =>
      namespace
        ? client.discovery.listNamespacedEndpointSlice({ namespace, labelSelector: SERVICE_NAME_LABEL }, client.requestOptions())
        : client.discovery.listEndpointSliceForAllNamespaces({ labelSelector: SERVICE_NAME_LABEL }, client.requestOptions());
    this.loop = new WatchLoop<V1EndpointSlice>({
      name: 'endpointslices',
      kubeConfig: client.config,
      path: namespace ? `/apis/discovery.k8s.io/v1/namespaces/${encodeURIComponent(namespace)}/endpointslices` : '/apis/discovery.k8s.io/v1/endpointslices',
      labelSelector: SERVICE_NAME_LABEL,
      list,
      log: this.log,
      retryDelayMs: (err, backoffMs) => (statusOf(err) === 403 ? forbiddenRetryMs : backoffMs),
      ...(options.backoff ? { backoff: options.backoff } : {}),
      ...(options.watchTimeoutSeconds !== undefined ? { watchTimeoutSeconds: options.watchTimeoutSeconds } : {}),
      ...(options.watchStallMs !== undefined ? { watchStallMs: options.watchStallMs } : {}),
      ...(options.stableMs !== undefined ? { stableMs: options.stableMs } : {}),
      handlers: {
        listed: (items) => this.listed(items),
        upserted: (slice) => this.upsert(slice),
        deleted: (slice) => this.index.remove(sliceKey(slice)),
        connected: () => this.connected(),
        failed: (err) => this.failed(err),
      },
    });
  }

  get state(): EndpointWatcherState {
    return this.current;
  }

  /** RBAC denies EndpointSlices: every answer is undefined (DNS fallback). */
  get forbidden(): boolean {
    return this.current === 'forbidden';
  }

  start(): void {
    this.loop.start();
  }

  async stop(): Promise<void> {
    this.index.stop();
    await this.loop.stop();
  }

  /** The ready endpoints of `namespace/service` for `port` (endpoint-index.ts says what undefined and [] mean). */
  endpointsOf(service: string, namespace: string, port: EndpointPort): readonly Endpoint[] | undefined {
    return this.index.endpointsOf(service, namespace, port);
  }

  /**
   * Called (coalesced) with the `namespace/service` keys whose endpoints may have changed,
   * including all of them when the watcher turns forbidden. Returns an unsubscribe function.
   */
  onChange(listener: (services: ReadonlySet<string>) => void): () => void {
    return this.index.onChange(listener);
  }

  /** Called (coalesced) with the slices that changed: what the primary sends its workers. */
  onSlices(listener: (changes: readonly SliceChange[]) => void): () => void {
    return this.index.onSlices(listener);
  }

  private listed(items: readonly V1EndpointSlice[]): void {
    const present = new Set<string>();
    for (const slice of items) {
      present.add(sliceKey(slice));
      this.upsert(slice);
    }
    for (const key of this.index.keys()) if (!present.has(key)) this.index.remove(key);
    if (this.current !== 'synced') {
      if (this.current === 'forbidden') this.log.info({ slices: items.length }, 'EndpointSlices are readable now: balancing across ready endpoints');
      this.current = 'synced';
    }
  }

  private upsert(slice: V1EndpointSlice): void {
    const key = sliceKey(slice);
    const view = sliceView(slice);
    if (this.index.unchanged(key, view)) return;
    this.index.upsert(key, view);
  }

  private connected(): void {
    if (this.failing !== undefined && this.current !== 'forbidden') this.log.info({}, 'EndpointSlice watch reconnected');
    this.failing = undefined;
  }

  private failed(err: unknown): void {
    if (statusOf(err) === 403) {
      if (this.current === 'forbidden') return;
      this.current = 'forbidden';
      this.log.warn({ error: describeError(err) }, 'EndpointSlices are forbidden (RBAC): dialling Service DNS names instead of balancing across pods');
      // Forget what we knew: a revoked permission must not leave stale endpoints in use.
      for (const key of this.index.keys()) this.index.remove(key);
      return;
    }
    // Other failures keep the last known endpoints (pods rarely all move while the API is away).
    const message = describeError(err);
    if (message !== this.failing) this.log.warn({ error: message }, 'EndpointSlice watch failed: keeping the last known endpoints; retrying');
    this.failing = message;
  }
}

function sliceKey(slice: V1EndpointSlice): string {
  return `${slice.metadata?.namespace ?? ''}/${slice.metadata?.name ?? ''}`;
}

function sliceView(slice: V1EndpointSlice): SliceView {
  const namespace = slice.metadata?.namespace ?? '';
  const service = `${namespace}/${slice.metadata?.labels?.[SERVICE_NAME_LABEL] ?? ''}`;
  const ports = (slice.ports ?? []).flatMap((p) => (typeof p.port === 'number' && (p.protocol ?? 'TCP') === 'TCP' ? [{ name: p.name ?? '', port: p.port }] : []));
  const endpoints = (slice.endpoints ?? []).flatMap((e) => {
    // Addresses of one endpoint are fungible (one pod); the first is enough.
    const address = e.addresses?.[0];
    if (!address) return [];
    return [{ address, usable: e.conditions?.ready !== false && e.conditions?.terminating !== true }];
  });
  return { service, resourceVersion: slice.metadata?.resourceVersion, addressType: slice.addressType ?? 'IPv4', ports, endpoints };
}
