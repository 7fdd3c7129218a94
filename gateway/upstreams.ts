/**
 * Upstream HTTP/1.1 connection pools and their breakers.
 *
 * One undici Pool per upstream (address + TLS + breaker limits, SEMANTICS.md §9), keep-alive,
 * capped at max_connections, never retrying on its own. `--resolve` maps a Service address to
 * a local one before dialling; the Host header the upstream sees stays the client's.
 */
import { readFileSync } from 'node:fs';
import { Pool } from 'undici';
import { Breaker } from './breaker.js';
import type { Backend, Upstream } from '../routing/types.js';

export interface UpstreamSettings {
  readonly resolve: ReadonlyMap<string, { host: string; port: number }>;
  readonly connectTimeoutMs: number;
  readonly tlsVerify: boolean;
  readonly caFile?: string | undefined;
}

/** Where to dial an upstream, after `--resolve`. */
export function dialTarget(up: Upstream, resolve: UpstreamSettings['resolve']): { host: string; port: number } {
  return resolve.get(`${up.host}:${up.port}`) ?? { host: up.host, port: up.port };
}

export interface UpstreamPool {
  /** `host:port` as the route names it, for messages and labels. */
  readonly name: string;
  readonly pool: Pool;
  readonly breaker: Breaker;
}

export class Upstreams {
  private readonly byKey = new Map<string, UpstreamPool>();
  private readonly byBackend = new WeakMap<Backend, UpstreamPool>();
  private readonly ca: Buffer | undefined;

  constructor(private readonly settings: UpstreamSettings) {
    this.ca = settings.caFile ? readFileSync(settings.caFile) : undefined;
  }

  /** The pool for a backend; cached per Backend object so the hot path builds no key. */
  for(backend: Backend): UpstreamPool {
    let p = this.byBackend.get(backend);
    if (p) return p;
    const up = backend.upstream;
    const b = backend.breaker;
    const key = `${up.tls ? 'https' : 'http'}://${up.host}:${up.port}|${b.maxConnections}/${b.maxPendingRequests}/${b.maxRequests}/${b.maxRetries}`;
    p = this.byKey.get(key);
    if (!p) {
      const target = dialTarget(up, this.settings.resolve);
      const host = target.host.includes(':') ? `[${target.host}]` : target.host;
      const pool = new Pool(`${up.tls ? 'https' : 'http'}://${host}:${target.port}`, {
        connections: b.maxConnections,
        pipelining: 1,
        keepAliveTimeout: 60_000,
        keepAliveMaxTimeout: 600_000,
        headersTimeout: 0,
        bodyTimeout: 0,
        connect: {
          timeout: this.settings.connectTimeoutMs,
          ...(up.tls ? { servername: up.host.replace(/:\d+$/, ''), rejectUnauthorized: this.settings.tlsVerify, ...(this.ca ? { ca: this.ca } : {}) } : {}),
        },
      });
      p = { name: `${up.host}:${up.port}`, pool, breaker: new Breaker(b) };
      this.byKey.set(key, p);
    }
    this.byBackend.set(backend, p);
    return p;
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.byKey.values()].map((p) => p.pool.close()));
    this.byKey.clear();
  }

  destroy(): void {
    for (const p of this.byKey.values()) void p.pool.destroy().catch(() => undefined);
    this.byKey.clear();
  }
}
