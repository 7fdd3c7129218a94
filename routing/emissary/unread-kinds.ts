/**
 * The Ambassador resource kinds the gateway does not read, and what to use instead: one table for the
 * annotation reader's warning (custom-config.ts) and for `migrate-check`, which names every such resource it
 * finds in the manifests it is given (a migrating team's `kubectl get host,tlscontext,… -A -o yaml`), so none
 * is left behind silently. docs/migrating-from-ambassador.md#what-is-served-and-what-is-not says the same
 * (test/gateway/migrate-check.test.ts checks that every kind is there). Pure.
 */

export interface UnreadKind {
  /** What to use instead, or why there is nothing. */
  readonly instead: string;
}

/** getambassador.io kinds (Emissary's and Edge Stack's) the gateway does not read. */
export const UNREAD_KINDS: Readonly<Record<string, UnreadKind>> = {
  Host: { instead: "TLS on the public port (--tls-cert/--tls-key, --tls-dir for several names), --tls-redirect-cleartext for its insecure Redirect; a Mapping's host key routes by Host" },
  TLSContext: { instead: "--tls-* flags (--tls-client-ca and --tls-client-auth for client certificates); a Mapping's tls and --upstream-tls-context for origination" },
  TCPMapping: { instead: 'none: the gateway proxies HTTP and gRPC only; keep another proxy for raw TCP' },
  TracingService: { instead: '--otlp-endpoint (OpenTelemetry traces)' },
  LogService: { instead: '--access-log and --log-sinks' },
  RateLimitService: { instead: 'seldon.io/gateway-rate-limit per SeldonDeployment or predictor' },
  AuthService: { instead: '--ext-auth-service and the other --ext-auth-* flags' },
  ConsulResolver: { instead: 'none: the gateway resolves Kubernetes Services and their endpoints only' },
  Listener: { instead: '--port, --host and the --tls-* flags' },
  DevPortal: { instead: 'none (Edge Stack)' },
  Filter: { instead: '--jwt-providers, seldon.io/gateway-oauth, --ext-auth-* (Edge Stack)' },
  FilterPolicy: { instead: '--jwt-providers, seldon.io/gateway-oauth, --ext-auth-* (Edge Stack)' },
  Mapping: { instead: "a Mapping is read only from a SeldonDeployment's seldon.io/ambassador-config; keep Ambassador for other apps" },
  Module: { instead: 'the ambassador Module is read from a file: --ambassador-module' },
};

/** The Kubernetes Ingress: Emissary serves it (t_ingress.py); the gateway reads SeldonDeployments only. */
const INGRESS: UnreadKind = { instead: 'none: the gateway reads SeldonDeployments only; keep an ingress controller for Ingress resources' };

/** A resource the gateway would not read: `Kind namespace/name` and what to use instead. */
export interface UnreadResource {
  readonly kind: string;
  readonly name: string;
  readonly instead: string;
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** What `kind` of `apiVersion` would be, when the gateway does not read it; undefined when it does, or it is not Ambassador's. */
export function unreadKind(apiVersion: unknown, kind: unknown): UnreadKind | undefined {
  if (typeof apiVersion !== 'string' || typeof kind !== 'string') return undefined;
  const group = apiVersion.split('/')[0]!;
  if (kind === 'Ingress' && (group === 'networking.k8s.io' || group === 'extensions')) return INGRESS;
  if (group !== 'getambassador.io' && group !== 'x.getambassador.io' && group !== 'ambassador') return undefined;
  return Object.hasOwn(UNREAD_KINDS, kind) ? UNREAD_KINDS[kind] : undefined;
}

/** Every resource among `values` (documents, Lists of them) the gateway would not read, in order. */
export function unreadResources(values: readonly unknown[]): UnreadResource[] {
  const out: UnreadResource[] = [];
  const visit = (v: unknown, implied?: { kind: string; apiVersion: unknown }): void => {
    if (Array.isArray(v)) return v.forEach((x) => visit(x, implied));
    if (!isObj(v)) return;
    const obj = implied ? { apiVersion: implied.apiVersion, kind: implied.kind, ...v } : v;
    if (typeof obj.kind === 'string' && obj.kind.endsWith('List') && Array.isArray(obj.items)) {
      const item = obj.kind.slice(0, -'List'.length);
      return obj.items.forEach((x) => visit(x, item ? { kind: item, apiVersion: obj.apiVersion } : undefined));
    }
    const unread = unreadKind(obj.apiVersion, obj.kind);
    if (unread === undefined) return;
    const meta = isObj(obj.metadata) ? obj.metadata : {};
    const name = typeof meta.name === 'string' ? meta.name : typeof obj.name === 'string' ? obj.name : '?';
    const namespace = typeof meta.namespace === 'string' && meta.namespace !== '' ? meta.namespace : 'default';
    out.push({ kind: obj.kind as string, name: `${namespace}/${name}`, instead: unread.instead });
  };
  values.forEach((v) => visit(v));
  return out;
}
