/**
 * The JWT part of the gate (auth/gate.ts): where a route's policy finds the token, what an allowed
 * request carries on (claims as headers; the token itself only with `forward: true`), and how a
 * refusal reads (RFC 6750 §3: 401 with `WWW-Authenticate: Bearer error="invalid_token"` for the
 * token, 403 `insufficient_scope` for what the route requires of a good one; gRPC UNAUTHENTICATED and
 * PERMISSION_DENIED). The words name what failed, never the token.
 */
import type { IncomingHttpHeaders } from 'node:http2';
import type { Deny } from '../edge/errors.js';
import { rawHeaderValue } from '../edge/http-headers.js';
import type { AuthEdits, AuthHeaderEdit } from '../../routing/policies/auth-edits.js';
import type { JwtOutcome } from './jwt.js';
import { bearerToken, queryToken } from './oauth.js';
import type { JwtPolicy, TokenSource } from '../../routing/policies/jwt.js';
import type { JWTPayload } from 'jose';

const BEARER = 'Bearer realm="seldon-gateway"';

/** Where the token was found: its source, and (query, cookie) what the request becomes without it. */
export interface FoundToken {
  readonly token: string | undefined;
  readonly source?: TokenSource | undefined;
  /** query: the target without the parameter. */
  readonly url?: string | undefined;
  /** cookie: the Cookie header without the token's cookie ('' when it was the only one). */
  readonly cookie?: string | undefined;
}

const NONE: FoundToken = { token: undefined };

/** A header's token: `Authorization` must say Bearer; any other header holds the token as it is. */
function fromHeader(source: TokenSource, value: string | undefined): string | undefined {
  if (source.name === 'authorization') return bearerToken(value);
  const t = value?.trim();
  return t === '' ? undefined : t;
}

/** Cookie `name`'s value in a Cookie header, and the header without it. */
function fromCookie(header: string | undefined, name: string): { token: string | undefined; rest: string } {
  if (header === undefined) return { token: undefined, rest: '' };
  let token: string | undefined;
  const kept: string[] = [];
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) token ??= part.slice(eq + 1).trim();
    else if (part.trim() !== '') kept.push(part.trim());
  }
  return { token: token === '' ? undefined : token, rest: kept.join('; ') };
}

/** `path` (a route's upstream target) without the query token `found` came from, unless it is forwarded. */
export function upstreamWithoutToken(path: string, policy: JwtPolicy, found: FoundToken): string {
  return found.source?.kind === 'query' && !policy.forward ? queryToken(path, found.source.name).url : path;
}

/** A REST request's token: the policy's sources in order, the first that holds one. */
export function restToken(policy: JwtPolicy, url: string, rawHeaders: readonly string[]): FoundToken {
  for (const s of policy.from) {
    if (s.kind === 'header') {
      const token = fromHeader(s, rawHeaderValue(rawHeaders, s.name));
      if (token !== undefined) return { token, source: s };
    } else if (s.kind === 'query') {
      const q = queryToken(url, s.name);
      if (q.token !== undefined) return { token: q.token, source: s, url: q.url };
    } else {
      const c = fromCookie(rawHeaderValue(rawHeaders, 'cookie'), s.name);
      if (c.token !== undefined) return { token: c.token, source: s, cookie: c.rest };
    }
  }
  return NONE;
}

/** A gRPC call's token: from metadata (header sources; a call has no query or cookies). */
export function grpcToken(policy: JwtPolicy, headers: IncomingHttpHeaders): FoundToken {
  for (const s of policy.from) {
    if (s.kind !== 'header') continue;
    const v = headers[s.name];
    const token = fromHeader(s, Array.isArray(v) ? v[0] : v);
    if (token !== undefined) return { token, source: s };
  }
  return NONE;
}

/** A claim's value as a header value: strings as they are, lists joined with `,`; none when it could split a head. */
function claimValue(v: unknown): string | undefined {
  let s: string;
  if (typeof v === 'string') s = v;
  else if (typeof v === 'number' || typeof v === 'boolean') s = String(v);
  else if (Array.isArray(v) && v.every((x) => typeof x === 'string' || typeof x === 'number')) s = v.join(',');
  else if (typeof v === 'object' && v !== null) s = JSON.stringify(v);
  else return undefined;
  return /[\u0000-\u001f\u007f]|[^\u0000-\u00ff]/.test(s) ? undefined : s;
}

/**
 * What an allowed request carries on: the policy's claim headers (the client's own under those
 * names removed, so a header the model trusts comes from a verified token or not at all), and
 * without the token unless `forward`.
 */
export function jwtEdits(policy: JwtPolicy, found: FoundToken, claims: JWTPayload | undefined): AuthEdits {
  // A cached token's claims are one object: its edits on one route are made once (a cookie's depend on the rest of the Cookie header).
  const memo = claims !== undefined && found.source?.kind !== 'cookie';
  if (memo) {
    const m = madeFor.get(claims);
    if (m !== undefined && m.policy === policy && m.source === found.source) return m.edits;
  }
  const edits = makeEdits(policy, found, claims);
  if (memo) madeFor.set(claims, { policy, source: found.source, edits });
  return edits;
}

const madeFor = new WeakMap<JWTPayload, { readonly policy: JwtPolicy; readonly source: TokenSource | undefined; readonly edits: AuthEdits }>();

function makeEdits(policy: JwtPolicy, found: FoundToken, claims: JWTPayload | undefined): AuthEdits {
  const headers: AuthHeaderEdit[] = [];
  const remove: string[] = [];
  for (const [claim, header] of policy.claimsToHeaders) {
    const v = claims === undefined ? undefined : claimValue(claims[claim]);
    if (v === undefined) remove.push(header);
    else headers.push({ name: header, value: v, append: false });
  }
  const s = found.source;
  if (!policy.forward && s !== undefined) {
    if (s.kind === 'header') remove.push(s.name);
    else if (s.kind === 'cookie') {
      if (found.cookie === '') remove.push('cookie');
      else headers.push({ name: 'cookie', value: found.cookie!, append: false });
    }
  }
  return { headers, remove };
}

/** A token that did not pass, as the gate answers it. */
export function jwtDenial(o: Extract<JwtOutcome, { ok: false }>, policy: JwtPolicy): Deny {
  const message = `JWT: ${o.description}`;
  switch (o.failure) {
    case 'missing':
      return { allow: false, status: 401, reason: 'UNAUTHENTICATED', message, headers: { 'www-authenticate': BEARER } };
    case 'scope':
      return { allow: false, status: 403, reason: 'FORBIDDEN', message, headers: { 'www-authenticate': `${BEARER}, error="insufficient_scope", scope="${policy.scopes.join(' ')}"` } };
    case 'claims':
      return { allow: false, status: 403, reason: 'FORBIDDEN', message, headers: { 'www-authenticate': `${BEARER}, error="insufficient_scope"` } };
    case 'no_keys':
      return { allow: false, status: 503, reason: 'AUTH_BACKEND_UNAVAILABLE', message, headers: { 'retry-after': '1' } };
    default:
      return {
        allow: false,
        status: 401,
        reason: 'UNAUTHENTICATED',
        message,
        headers: { 'www-authenticate': `${BEARER}, error="invalid_token", error_description="${o.description.replace(/"/g, "'")}"` },
      };
  }
}
