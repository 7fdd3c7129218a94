/**
 * How an upstream's TLS connections verify and present themselves, for REST and gRPC alike: the
 * gateway's (--upstream-tls-verify, --upstream-ca; SNI the route's host unless it is an address),
 * or a Mapping's named context (--upstream-tls-context: its CA, always verified, its client
 * certificate, its SNI).
 */
import { isIP } from 'node:net';
import type tls from 'node:tls';
import type { UpstreamTlsContext } from '../config/upstream-tls.js';
import type { Backend } from '../../routing/types.js';

/** The gateway's TLS settings and the operator's contexts. */
export interface TlsSettings {
  readonly tlsVerify: boolean;
  readonly ca?: Buffer | undefined;
  readonly tlsContexts?: ReadonlyMap<string, UpstreamTlsContext> | undefined;
}

/** The TLS server name for an upstream host (none for an IP address, which SNI cannot carry). */
export function sniFor(host: string): { servername?: string } {
  const name = host.replace(/:\d+$/, '');
  return isIP(name) === 0 ? { servername: name } : {};
}

/** The context a backend's Mapping names (`tls: <name>`), if any. */
export function tlsContextOf(backend: Backend, settings: TlsSettings): UpstreamTlsContext | undefined {
  const name = backend.mapping?.tlsContext;
  return name == null ? undefined : settings.tlsContexts?.get(name);
}

/** TLS options for an upstream at `host` (as routed), under its context or the gateway's settings. */
export function tlsOptions(host: string, ctx: UpstreamTlsContext | undefined, settings: TlsSettings): tls.ConnectionOptions {
  if (ctx === undefined) return { ...sniFor(host), rejectUnauthorized: settings.tlsVerify, ...(settings.ca ? { ca: settings.ca } : {}) };
  return {
    ...(ctx.sni !== undefined ? { servername: ctx.sni } : sniFor(host)),
    rejectUnauthorized: true,
    ca: ctx.ca,
    ...(ctx.cert !== undefined ? { cert: ctx.cert, key: ctx.key } : {}),
  };
}
