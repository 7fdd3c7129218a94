/**
 * Fallback targets (--fallback-target NAME=URL): the addresses outside the cluster's deployments that
 * `seldon.io/gateway-fallback: {to: {target: NAME}}` may send a request to (docs/routing.md#fallback-models).
 * Only these are ever dialled for a fallback: a tenant names one, never an address.
 */
import { TARGET_NAME } from '../../routing/fallback/config.js';
import { BOTH, env, type OptionSpec } from './option.js';
import type { Reader } from './read.js';
import { UsageError } from './values.js';
import { validPort } from '../../routing/values/port.js';

export const FALLBACK_TARGET_OPTIONS: readonly OptionSpec[] = [
  {
    flag: 'fallback-target',
    section: 'upstream',
    value: 'NAME=http://host:port',
    env: env('fallback-target'),
    kind: 'list',
    commands: BOTH,
    help: 'An address seldon.io/gateway-fallback may send requests to as {to: {target: NAME}}: http:// (gRPC over h2c) or https:// (TLS). REST keeps the path the model would have received. Repeatable; env: comma-separated.',
  },
];

/** One operator target. */
export interface FallbackTarget {
  readonly name: string;
  readonly host: string;
  readonly port: number;
  readonly tls: boolean;
}

/** `NAME=http://host:port` → a target; a bad value is a usage error (exit 2) in the gateway's words. */
export function parseFallbackTarget(v: string): FallbackTarget {
  const bad = (why: string): never => {
    throw new UsageError(`--fallback-target ${JSON.stringify(v)}: ${why} (expected NAME=http://host:port or NAME=https://host:port)`);
  };
  const eq = v.indexOf('=');
  if (eq <= 0) return bad('no NAME= before the address');
  const name = v.slice(0, eq).trim();
  if (!TARGET_NAME.test(name)) return bad(`NAME ${JSON.stringify(name)} must be letters, digits, ".", "_" or "-" (at most 63)`);
  let url: URL;
  try {
    url = new URL(v.slice(eq + 1).trim());
  } catch {
    return bad('the address is not a URL');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return bad(`scheme ${url.protocol} is neither http: nor https:`);
  if (url.username || url.password || (url.pathname !== '/' && url.pathname !== '') || url.search || url.hash) return bad('the address has more than a scheme, host and port');
  const tls = url.protocol === 'https:';
  // The URL parser takes `:0`; no upstream listens there (routing/values/port.ts).
  const port = url.port === '' ? (tls ? 443 : 80) : validPort(url.port);
  if (port === null) return bad('port 0 is not a port (1..65535)');
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  return { name, host, port, tls };
}

/** --fallback-target, each name once. */
export function buildFallbackTargets(read: Reader): ReadonlyMap<string, FallbackTarget> {
  const out = new Map<string, FallbackTarget>();
  for (const v of read.list('fallback-target')) {
    const t = parseFallbackTarget(v);
    if (out.has(t.name)) throw new UsageError(`--fallback-target: ${t.name} is named twice`);
    out.set(t.name, t);
  }
  return out;
}
