/**
 * The ready pod endpoints of Services, indexed from EndpointSlice views
 * (docs/routing.md#upstream-services-and-ports), without the Kubernetes client: the primary's
 * EndpointSlice watcher (endpoints.ts) keeps one, and each cluster worker keeps one fed over IPC
 * with the slices the watcher sees (gateway/process/cluster.ts), so a worker never loads the client.
 *
 * `endpointsOf(service, namespace, port)` answers:
 * - `undefined`: the service is unknown here (no slices, EndpointSlices forbidden, not synced
 *   yet, or no slice declares that port): the caller falls back to `<svc>.<ns>:<port>` DNS;
 * - `[]`: the service is known and has no ready endpoint;
 * - otherwise the ready, non-terminating endpoints, one per pod, sorted, the same array until a
 *   slice of that service changes (callers may keep per-array state such as a round-robin cursor).
 * A port is chosen by Service port name (`http`, `grpc`: the EndpointSlice port of that name) or by
 * number (the slice port with that number, i.e. the target port). Dual-stack services are served
 * from their IPv4 slices only, so no pod is counted twice.
 *
 * Lifetimes: this index owns its entries; a Service's entry goes with its last slice.
 */

export interface Endpoint {
  readonly host: string;
  readonly port: number;
}

/** A Service port name (`http`, `grpc`) or a target port number. */
export type EndpointPort = 'http' | 'grpc' | number;

/** What the gateway reads of one EndpointSlice (plain data: it crosses IPC as it is). */
export interface SliceView {
  /** `ns/service`. */
  readonly service: string;
  readonly resourceVersion: string | undefined;
  readonly addressType: string;
  readonly ports: readonly { readonly name: string; readonly port: number }[];
  /** First address of every endpoint, and whether it may take traffic. */
  readonly endpoints: readonly { readonly address: string; readonly usable: boolean }[];
}

/** A slice that changed (`view`) or went (`null`: it crosses IPC, where JSON has no undefined), by its key `ns/slice`. */
export type SliceChange = readonly [key: string, view: SliceView | null];

interface ServiceEntry {
  readonly slices: Map<string, SliceView>;
  /** Computed answers per port, dropped whenever a slice of the service changes. */
  readonly answers: Map<EndpointPort, readonly Endpoint[] | undefined>;
}

export class EndpointIndex {
  /** `ns/service` → its slices. */
  private readonly services = new Map<string, ServiceEntry>();
  /** `ns/slice` → the slice's view (to find its service again on delete). */
  private readonly slices = new Map<string, SliceView>();
  private readonly listeners = new Set<(services: ReadonlySet<string>) => void>();
  private readonly sliceListeners = new Set<(changes: readonly SliceChange[]) => void>();
  private changed = new Set<string>();
  private changes: SliceChange[] = [];
  private notifyTimer: NodeJS.Timeout | undefined;

  constructor(
    /** Change notifications are coalesced over this window. */
    private readonly batchMs = 10,
    private readonly failed: (err: unknown) => void = () => undefined,
  ) {}

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

  /** Called (coalesced) with the `namespace/service` keys whose endpoints may have changed. Returns an unsubscribe function. */
  onChange(listener: (services: ReadonlySet<string>) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Called (coalesced) with the slices that changed, in order: what a cluster worker's index is sent. */
  onSlices(listener: (changes: readonly SliceChange[]) => void): () => void {
    this.sliceListeners.add(listener);
    return () => this.sliceListeners.delete(listener);
  }

  /** Every slice held now (a worker that starts gets them). */
  snapshot(): SliceChange[] {
    return [...this.slices];
  }

  /** Key of every slice held now. */
  keys(): string[] {
    return [...this.slices.keys()];
  }

  /** Same as this slice's last view (a watch that repeats itself). */
  unchanged(key: string, view: SliceView): boolean {
    const previous = this.slices.get(key);
    return previous !== undefined && view.resourceVersion !== undefined && previous.resourceVersion === view.resourceVersion;
  }

  /** Apply what the watcher (or the primary, to a worker) says of slices. */
  apply(changes: readonly SliceChange[]): void {
    for (const [key, view] of changes) {
      if (view === null) this.remove(key);
      else this.upsert(key, view);
    }
  }

  /** Replace everything with `all` (a worker's snapshot). */
  reset(all: readonly SliceChange[]): void {
    const keep = new Set(all.map(([k]) => k));
    for (const key of this.keys()) if (!keep.has(key)) this.remove(key);
    this.apply(all);
  }

  stop(): void {
    clearTimeout(this.notifyTimer);
    this.notifyTimer = undefined;
    this.listeners.clear();
    this.sliceListeners.clear();
  }

  upsert(key: string, view: SliceView): void {
    const previous = this.slices.get(key);
    if (previous && previous.service !== view.service) this.remove(key);
    this.slices.set(key, view);
    let entry = this.services.get(view.service);
    if (!entry) {
      entry = { slices: new Map(), answers: new Map() };
      this.services.set(view.service, entry);
    }
    entry.slices.set(key, view);
    this.touched(view.service, entry, [key, view]);
  }

  remove(key: string): void {
    const view = this.slices.get(key);
    if (!view) return;
    this.slices.delete(key);
    const entry = this.services.get(view.service);
    if (!entry) return;
    entry.slices.delete(key);
    if (entry.slices.size === 0) this.services.delete(view.service);
    this.touched(view.service, entry, [key, null]);
  }

  private touched(service: string, entry: ServiceEntry, change: SliceChange): void {
    entry.answers.clear();
    this.changed.add(service);
    this.changes.push(change);
    this.notifyTimer ??= setTimeout(() => this.notify(), this.batchMs);
  }

  private notify(): void {
    this.notifyTimer = undefined;
    const changed = this.changed;
    const changes = this.changes;
    this.changed = new Set();
    this.changes = [];
    if (changed.size === 0) return;
    for (const listener of this.sliceListeners) this.tell(() => listener(changes));
    for (const listener of this.listeners) this.tell(() => listener(changed));
  }

  private tell(call: () => void): void {
    try {
      call();
    } catch (err) {
      this.failed(err);
    }
  }
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
