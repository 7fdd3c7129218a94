/**
 * A Mapping's hashing load balancer (`load_balancer: ring_hash | maglev`,
 * docs/routing.md#a-mappings-upstream-balancing-connections-and-tls): the key a request is hashed on,
 * read once before it is forwarded, so every attempt (a retry, a hedge) looks up the same key.
 *
 * - `header`: its value (gRPC: the metadata key); absent: not hashed.
 * - `cookie`: its value. A REST request without it, on a policy with a `ttl`, gets one as Envoy makes
 *   it: a new value set on the answer (`Set-Cookie: name="value"; Max-Age=…; Path=…; HttpOnly`) and
 *   hashed now, so the request and the client's next ones reach one endpoint. The value is 64 random
 *   bits (Envoy hashes the connection's addresses; either is opaque to the client). Without `ttl`,
 *   or on gRPC (where answers carry no cookie a client keeps), a request without it is not hashed.
 * - `source_ip`: the client connection's address.
 * A request not hashed is looked up at a random point of the table, as Envoy does (routing/table/balance-policy.ts).
 */
import { randomBytes } from 'node:crypto';
import { hash53 } from '../../routing/table/hash-balance.js';
import type { HashOn } from '../../routing/emissary/mapping-policy.js';
import { cookieValue } from '../steer/sticky-keys.js';
import type { PipelineRequest } from './request.js';

/** Envoy's generated cookie: its value quoted, then Max-Age in whole seconds, Path, HttpOnly. */
export function hashCookie(name: string, value: string, ttlMs: number, path: string | null): string {
  const maxAge = Math.floor(ttlMs / 1000);
  return `${name}="${value}"${maxAge > 0 ? `; Max-Age=${maxAge}` : ''}${path !== null ? `; Path=${path}` : ''}; HttpOnly`;
}

/** Quotes around a cookie value (RFC 6265 allows them) are not part of what is hashed. */
const unquote = (v: string): string => (v.length >= 2 && v.startsWith('"') && v.endsWith('"') ? v.slice(1, -1) : v);

/** Set `r.balanceHash` from its key under `on`; a new cookie (REST, `ttl`) goes on `r.answerHeaders`. */
export function hashRequest(r: PipelineRequest, on: HashOn): void {
  let key: string | undefined;
  if (on.kind === 'header') key = r.header(on.name);
  else if (on.kind === 'source_ip') key = r.clientAddress();
  else {
    const given = cookieValue(r.header('cookie'), on.name);
    if (given !== undefined && given !== '') key = unquote(given);
    else if (on.ttlMs !== null && r.kind === 'rest') {
      key = randomBytes(8).toString('hex');
      const set = hashCookie(on.name, key, on.ttlMs, on.path);
      r.answerHeaders = r.answerHeaders === undefined ? ['set-cookie', set] : [...r.answerHeaders, 'set-cookie', set];
    }
  }
  r.balanceHash = key === undefined || key === '' ? undefined : hash53(key);
}
