/**
 * Ready pod endpoints of Services, from a list+watch of discovery.k8s.io/v1 EndpointSlices
 * (docs/routing.md#upstream-services-and-ports): the data plane balances each request across them itself instead of
 * dialling the Service's DNS name (which pins an HTTP/2 connection to one pod).
 *
 * `endpointsOf(service, namespace, port)` answers from an in-memory index:
 * - `undefined`: the service is unknown here (no slices, EndpointSlices forbidden, not synced
 *   yet, or no slice declares that port): the caller falls back to `<svc>.<ns>:<port>` DNS;
 * - `[]`: the service is known and has no ready endpoint;
 * - otherwise the ready, non-terminating endpoints (`conditions.ready !== false &&
 *   conditions.terminating !== true`), one per pod, sorted, the same array until a slice of that
 *   service changes (callers may keep per-array state such as a round-robin cursor).
 * A port is chosen by Service port name (`http`, `grpc`: the EndpointSlice port of that name) or by
 * number (the slice port with that number, i.e. the target port). Dual-stack services are served
 * from their IPv4 slices only, so no pod is counted twice.
 *
 * Without RBAC for EndpointSlices (403) the watcher logs once, answers undefined for everything,
 * and quietly retries now and then in case the permission is granted later.
 */
import type { V1EndpointSlice } from '@kubernetes/client-node';
import { SILENT_LOG, describeError, statusOf, type KubeClient, type KubeLog } from './kube-client.js';
import { WatchLoop, type WatchTuning } from './watch-loop.js';

export const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';

export interface Endpoint {
  readonly host: string;
  readonly port: number;
}

/** A Service port name (`http`, `grpc`) or a target port number. */
export type EndpointPort = 'http' | 'grpc' | number;

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

interface SliceView {
  readonly service: string;
  readonly resourceVersion: string | undefined;
  readonly addressType: string;
  readonly ports: readonly { readonly name: string; readonly port: number }[];
  /** First address of every endpoint, and whether it may take traffic. */
  readonly endpoints: readonly { readonly address: string; readonly usable: boolean }[];
}

interface ServiceEntry {
  readonly slices: Map<string, SliceView>;
  /** Computed answers per port, dropped whenever a slice of the service changes. */
  readonly answers: Map<EndpointPort, readonly Endpoint[] | undefined>;
}

export class EndpointWatcher {
  private readonly log: KubeLog;
  private readonly loop: WatchLoop<V1EndpointSlice>;
  private readonly batchMs: number;
  /** `ns/service` → its slices. */
  private readonly services = new Map<string, ServiceEntry>();
  /** `ns/slice` → the slice's view (to find its service again on delete). */
  private readonly slices = new Map<string, SliceView>();
  private readonly listeners = new Set<(services: ReadonlySet<string>) => void>();
  private changed = new Set<string>();
  private notifyTimer: NodeJS.Timeout | undefined;
  private current: EndpointWatcherState = 'starting';
  private failing: string | undefined;

  constructor(options: EndpointWatcherOptions) {
    this.log = options.log ?? SILENT_LOG;
    this.batchMs = options.batchMs ?? 10;
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
        deleted: (slice) => this.remove(sliceKey(slice)),
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
    clearTimeout(this.notifyTimer);
    this.listeners.clear();
    await this.loop.stop();
  }

  /** The ready endpoints of `namespace/service` for `port`; see the file comment for undefined and []. */
  endpointsOf(service: string, namespace: string, port: EndpointPort): readonly Endpoint[] | undefined {
    const entry = this.services.get(`${namespace}/${service}`);
    if (!entry) return undefined;
    const known = entry.answers.get(port);
    if (known !== undefined || entry.answers.has(port)) return known;
    const answer = computeEndpoints(entry, port);
    entry.answers.set(port, answer);
    return answer;
  }

  /**
   * Called (coalesced) with the `namespace/service` keys whose endpoints may have changed,
   * including all of them when the watcher turns forbidden. Returns an unsubscribe function.
   */
  onChange(listener: (services: ReadonlySet<string>) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private listed(items: readonly V1EndpointSlice[]): void {
    const present = new Set<string>();
    for (const slice of items) {
      present.add(sliceKey(slice));
      this.upsert(slice);
    }
    for (const key of [...this.slices.keys()]) if (!present.has(key)) this.remove(key);
    if (this.current !== 'synced') {
      if (this.current === 'forbidden') this.log.info({ slices: items.length }, 'EndpointSlices are readable now: balancing across ready endpoints');
      this.current = 'synced';
    }
  }

  private upsert(slice: V1EndpointSlice): void {
    const key = sliceKey(slice);
    const view = sliceView(slice);
    const previous = this.slices.get(key);
    if (previous && view.resourceVersion !== undefined && previous.resourceVersion === view.resourceVersion) return;
    if (previous && previous.service !== view.service) this.remove(key);
    this.slices.set(key, view);
    let entry = this.services.get(view.service);
    if (!entry) {
      entry = { slices: new Map(), answers: new Map() };
      this.services.set(view.service, entry);
    }
    entry.slices.set(key, view);
    this.touched(view.service, entry);
  }

  private remove(key: string): void {
    const view = this.slices.get(key);
    if (!view) return;
    this.slices.delete(key);
    const entry = this.services.get(view.service);
    if (!entry) return;
    entry.slices.delete(key);
    if (entry.slices.size === 0) this.services.delete(view.service);
    this.touched(view.service, entry);
  }

  private touched(service: string, entry: ServiceEntry): void {
    entry.answers.clear();
    this.changed.add(service);
    this.notifyTimer ??= setTimeout(() => this.notify(), this.batchMs);
  }

  private notify(): void {
    this.notifyTimer = undefined;
    const changed = this.changed;
    this.changed = new Set();
    if (changed.size === 0) return;
    for (const listener of this.listeners) {
      try {
        listener(changed);
      } catch (err) {
        this.log.warn({ error: describeError(err) }, 'endpoint change listener failed');
      }
    }
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
      for (const key of [...this.slices.keys()]) this.remove(key);
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

function computeEndpoints(entry: ServiceEntry, port: EndpointPort): readonly Endpoint[] | undefined {
  const slices = [...entry.slices.values()];
  const family = ['IPv4', 'IPv6', 'FQDN'].find((f) => slices.some((s) => s.addressType === f));
  let declared = false;
  let anyEndpoint = false;
  const seen = new Set<string>();
  const out: Endpoint[] = [];
  for (const slice of slices) {
    if (slice.addressType !== family) continue;
    if (slice.endpoints.length > 0) anyEndpoint = true;
    const match = typeof port === 'number' ? slice.ports.find((p) => p.port === port) : slice.ports.find((p) => p.name === port);
    if (!match) continue;
    declared = true;
    for (const e of slice.endpoints) {
      const id = `${e.address}:${match.port}`;
      if (!e.usable || seen.has(id)) continue;
      seen.add(id);
      out.push({ host: e.address, port: match.port });
    }
  }
  // No slice names the port: an empty Service (no pods yet) is known-empty; otherwise we cannot map it.
  if (!declared) return anyEndpoint ? undefined : Object.freeze([]);
  out.sort((a, b) => (a.host < b.host ? -1 : a.host > b.host ? 1 : a.port - b.port));
  return Object.freeze(out.map((e) => Object.freeze(e)));
}
