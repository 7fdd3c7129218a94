/**
 * Upstream Service names and ports of predictors and explainers (docs/routing.md#upstream-services-and-ports), and the checks
 * that keep every upstream a valid address: a port is an integer 1..65535, a Service name a
 * DNS-1035 label, a namespace a DNS-1123 label, a host a DNS-1123 subdomain, as Kubernetes would
 * accept them. Anything else is a reason (a string) that rejects the deployment: no input may
 * produce an upstream a client library cannot parse, or a host that names a Service somewhere else.
 */
import { createHash } from 'node:crypto';
import type { CompileOptions } from '../types.js';
import { validPort } from '../values/port.js';
import { joined } from '../values/text.js';
import type { PredictorSpec, SeldonDeployment, ServiceStatus } from './deployment.js';

const MAX_NAME = 63;
const MAX_SUBDOMAIN = 253;
const DNS_1035_LABEL = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
const DNS_1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** Generated names over 63 characters become `seldon-<md5 hex>`, as the operator does. */
export function hashedServiceName(name: string): string {
  if (name.length <= MAX_NAME) return name;
  return 'seldon-' + createHash('md5').update(name, 'utf8').digest('hex');
}

/** A Service's cluster DNS name in `ns`, as the table keeps it. */
const hostOf = (name: string, ns: string): string => joined(name, '.', ns);

/** A Service name: lower-case alphanumerics and `-`, starting with a letter, at most 63. */
export function isDns1035Label(name: string): boolean {
  return name.length <= MAX_NAME && DNS_1035_LABEL.test(name);
}

/** A namespace or predictor name: lower-case alphanumerics and `-`, at most 63. */
export function isDns1123Label(name: string): boolean {
  return name.length <= MAX_NAME && DNS_1123_LABEL.test(name);
}

/** An object name (metadata.name) or a host: DNS-1123 labels joined by `.`, at most 253. */
export function isDns1123Subdomain(name: string): boolean {
  if (name.length === 0 || name.length > MAX_SUBDOMAIN) return false;
  for (const label of name.split('.')) if (!isDns1123Label(label)) return false;
  return true;
}

/** `ns/name` of a Service: the key under which the table knows who owns it. */
export const serviceKey = (namespace: string, name: string): string => joined(namespace, '/', name);

/**
 * The Service a host names, if it names one by its cluster DNS name: `svc` (in `namespace`),
 * `svc.ns`, `svc.ns.svc` or `svc.ns.svc.<cluster domain>`; case-insensitive. null for any other
 * host (an IP address, an outside name).
 */
export function serviceOfHost(host: string, namespace: string): { name: string; namespace: string } | null {
  const labels = host.toLowerCase().split('.');
  if (!isDns1035Label(labels[0]!)) return null;
  if (labels.length === 1) return { name: labels[0]!, namespace };
  if (!isDns1123Label(labels[1]!)) return null;
  if (labels.length === 2 || labels[2] === 'svc') return { name: labels[0]!, namespace: labels[1]! };
  return null;
}

/** A Service address with the ports each protocol is served on (null: not exposed). */
export interface ServiceAddress {
  readonly name: string;
  readonly host: string;
  readonly httpPort: number | null;
  readonly grpcPort: number | null;
}

/** `<svc>.<ns>:<port>` from the status: empty = not exposed; anything malformed, or outside `ns`, is a reason. */
function parseEndpoint(endpoint: unknown, ns: string, what: string): { host: string; port: number } | null | string {
  if (endpoint === undefined || endpoint === null || endpoint === '') return null;
  const bad = `${what} ${JSON.stringify(endpoint)}`;
  if (typeof endpoint !== 'string') return `${bad} is not a string`;
  const colon = endpoint.lastIndexOf(':');
  const port = colon > 0 ? validPort(endpoint.slice(colon + 1)) : null;
  if (port === null) return `${bad} has no port in 1..65535`;
  const host = endpoint.slice(0, colon);
  if (!isDns1123Subdomain(host)) return `${bad}: "${host}" is not a valid host name`;
  const svc = serviceOfHost(host, ns);
  if (!svc || host.indexOf('.') < 0 || svc.namespace !== ns) return `${bad} is not a Service in namespace "${ns}"`;
  return { host, port };
}

function fromStatus(name: string, entry: ServiceStatus, ns: string): ServiceAddress | string {
  const where = `status.serviceStatus["${name}"]`;
  const http = parseEndpoint(entry.httpEndpoint, ns, `${where}.httpEndpoint`);
  if (typeof http === 'string') return http;
  const grpc = parseEndpoint(entry.grpcEndpoint, ns, `${where}.grpcEndpoint`);
  if (typeof grpc === 'string') return grpc;
  const svc: unknown = entry.svcName || name;
  if (typeof svc !== 'string' || !isDns1035Label(svc)) return `${where}: Service name ${JSON.stringify(svc)} is not a DNS-1035 label of at most 63 characters`;
  return { name: svc, host: http?.host ?? grpc?.host ?? hostOf(svc, ns), httpPort: http?.port ?? null, grpcPort: grpc?.port ?? null };
}

function isNoEngine(p: PredictorSpec): boolean {
  const v: unknown = p.annotations?.['seldon.io/no-engine'];
  return typeof v === 'string' && v.trim().toLowerCase() === 'true';
}

/** The 1.1+ predictor Service name (svc-name wins, never hashed). */
export function predictorServiceName(sdep: string, p: PredictorSpec, opts: CompileOptions, specName: string): string {
  const svcName = p.annotations?.['seldon.io/svc-name']?.trim();
  if (svcName) return svcName;
  if (opts.legacyServiceNaming) return hashedServiceName(joined(specName, '-', sdep));
  return hashedServiceName(joined(sdep, '-', p.name ?? ''));
}

/** A port from the spec: absent (or 0, as Go writes "unset") → `dflt`; otherwise 1..65535 or a reason. */
function specPort(v: unknown, dflt: number, what: string): number | string {
  if (v === undefined || v === null || v === 0) return dflt;
  return validPort(v) ?? `${what} ${JSON.stringify(v)} is not a port in 1..65535`;
}

const badServiceName = (name: string, what: string): string =>
  `${what} Service name "${name}" is not a DNS-1035 label of at most 63 characters (lower-case letters, digits and "-", starting with a letter)`;

/** Where a predictor's executor (or model, for no-engine) is served; a string is why it cannot be. */
export function predictorService(d: SeldonDeployment, p: PredictorSpec, ns: string, opts: CompileOptions): ServiceAddress | string {
  const sdep = d.metadata?.name ?? '';
  const specName = d.spec?.name ?? '';
  const statuses = d.status?.serviceStatus;
  if (statuses && typeof statuses === 'object' && !opts.legacyServiceNaming) {
    const candidates = [p.annotations?.['seldon.io/svc-name']?.trim(), hashedServiceName(`${sdep}-${p.name ?? ''}`), hashedServiceName(`${sdep}-${specName}-${p.name ?? ''}`)];
    for (const c of candidates) {
      const entry = c ? statuses[c] : undefined;
      if (entry && typeof entry === 'object') return fromStatus(c!, entry, ns);
    }
  }
  const name = predictorServiceName(sdep, p, opts, specName);
  if (!isDns1035Label(name)) return badServiceName(name, `predictor "${p.name}":`);
  if (opts.legacyServiceNaming) return { name, host: hostOf(name, ns), httpPort: 8000, grpcPort: 5001 };
  if (isNoEngine(p)) {
    const ep = p.graph?.endpoint;
    const httpPort = specPort(ep?.httpPort, 9000, `predictor "${p.name}": graph.endpoint.httpPort`);
    if (typeof httpPort === 'string') return httpPort;
    const grpcPort = specPort(ep?.grpcPort, 9500, `predictor "${p.name}": graph.endpoint.grpcPort`);
    if (typeof grpcPort === 'string') return grpcPort;
    return { name, host: hostOf(name, ns), httpPort, grpcPort };
  }
  return { name, host: hostOf(name, ns), httpPort: opts.defaultHttpPort, grpcPort: opts.defaultGrpcPort };
}

/** Where a predictor's explainer is served (REST only); a string is why it cannot be. */
export function explainerService(d: SeldonDeployment, p: PredictorSpec, ns: string, opts: CompileOptions, predictorSvc: string): ServiceAddress | string {
  const statuses = d.status?.serviceStatus;
  if (statuses && typeof statuses === 'object') {
    for (const [name, entry] of Object.entries(statuses)) {
      if (entry && typeof entry === 'object' && entry.explainerFor === predictorSvc) {
        const found = fromStatus(name, entry, ns);
        return typeof found === 'string' ? found : { ...found, grpcPort: null };
      }
    }
  }
  const name = hashedServiceName(joined(d.metadata?.name ?? '', '-', p.name ?? '', '-explainer'));
  if (!isDns1035Label(name)) return badServiceName(name, `predictor "${p.name}": explainer`);
  const port = specPort(p.explainer?.endpoint?.service_port, 9000, `predictor "${p.name}": explainer.endpoint.service_port`);
  if (typeof port === 'string') return port;
  return { name, host: hostOf(name, ns), httpPort: port, grpcPort: null };
}
