/**
 * Upstream Service names and ports of predictors and explainers (SEMANTICS.md §4).
 */
import { createHash } from 'node:crypto';
import type { CompileOptions, PredictorSpec, SeldonDeployment, ServiceStatus } from './types.js';

const MAX_NAME = 63;
const DNS_1035_LABEL = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;

/** Generated names over 63 characters become `seldon-<md5 hex>`, as the operator does. */
export function hashedServiceName(name: string): string {
  if (name.length <= MAX_NAME) return name;
  return 'seldon-' + createHash('md5').update(name, 'utf8').digest('hex');
}

export function isDns1035Label(name: string): boolean {
  return name.length <= MAX_NAME && DNS_1035_LABEL.test(name);
}

/** A Service address with the ports each protocol is served on (null: not exposed). */
export interface ServiceAddress {
  readonly name: string;
  readonly host: string;
  readonly httpPort: number | null;
  readonly grpcPort: number | null;
}

function parseEndpoint(endpoint: string | undefined): { host: string; port: number } | null {
  if (!endpoint) return null;
  const colon = endpoint.lastIndexOf(':');
  if (colon <= 0) return null;
  const port = Number(endpoint.slice(colon + 1));
  if (!Number.isInteger(port) || port <= 0 || port > 65535) return null;
  return { host: endpoint.slice(0, colon), port };
}

function fromStatus(name: string, entry: ServiceStatus, ns: string): ServiceAddress {
  const http = parseEndpoint(entry.httpEndpoint);
  const grpc = parseEndpoint(entry.grpcEndpoint);
  const svc = entry.svcName || name;
  return { name: svc, host: http?.host ?? grpc?.host ?? `${svc}.${ns}`, httpPort: http?.port ?? null, grpcPort: grpc?.port ?? null };
}

function isNoEngine(p: PredictorSpec): boolean {
  return (p.annotations?.['seldon.io/no-engine'] ?? '').trim().toLowerCase() === 'true';
}

/** The 1.1+ predictor Service name (svc-name wins, never hashed). */
export function predictorServiceName(sdep: string, p: PredictorSpec, opts: CompileOptions, specName: string): string {
  const svcName = p.annotations?.['seldon.io/svc-name']?.trim();
  if (svcName) return svcName;
  if (opts.legacyServiceNaming) return hashedServiceName(`${specName}-${sdep}`);
  return hashedServiceName(`${sdep}-${p.name ?? ''}`);
}

/** Where a predictor's executor (or model, for no-engine) is served. */
export function predictorService(d: SeldonDeployment, p: PredictorSpec, ns: string, opts: CompileOptions): ServiceAddress {
  const sdep = d.metadata?.name ?? '';
  const specName = d.spec?.name ?? '';
  const statuses = d.status?.serviceStatus;
  if (statuses && typeof statuses === 'object' && !opts.legacyServiceNaming) {
    const candidates = [
      p.annotations?.['seldon.io/svc-name']?.trim(),
      hashedServiceName(`${sdep}-${p.name ?? ''}`),
      hashedServiceName(`${sdep}-${specName}-${p.name ?? ''}`),
    ];
    for (const c of candidates) {
      const entry = c ? statuses[c] : undefined;
      if (entry && typeof entry === 'object') return fromStatus(c!, entry, ns);
    }
  }
  const name = predictorServiceName(sdep, p, opts, specName);
  if (opts.legacyServiceNaming) return { name, host: `${name}.${ns}`, httpPort: 8000, grpcPort: 5001 };
  if (isNoEngine(p)) {
    const ep = p.graph?.endpoint;
    return { name, host: `${name}.${ns}`, httpPort: ep?.httpPort || 9000, grpcPort: ep?.grpcPort || 9500 };
  }
  return { name, host: `${name}.${ns}`, httpPort: opts.defaultHttpPort, grpcPort: opts.defaultGrpcPort };
}

/** Where a predictor's explainer is served (REST only). */
export function explainerService(d: SeldonDeployment, p: PredictorSpec, ns: string, opts: CompileOptions, predictorSvc: string): ServiceAddress {
  const statuses = d.status?.serviceStatus;
  if (statuses && typeof statuses === 'object') {
    for (const [name, entry] of Object.entries(statuses)) {
      if (entry && typeof entry === 'object' && entry.explainerFor === predictorSvc) {
        const found = fromStatus(name, entry, ns);
        return { ...found, grpcPort: null };
      }
    }
  }
  const name = hashedServiceName(`${d.metadata?.name ?? ''}-${p.name ?? ''}-explainer`);
  const port = p.explainer?.endpoint?.service_port;
  return { name, host: `${name}.${ns}`, httpPort: typeof port === 'number' && port > 0 ? port : 9000, grpcPort: null };
}
