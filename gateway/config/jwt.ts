/**
 * JWT providers (--jwt-providers): the identity providers whose tokens the gateway checks, named by
 * the operator in a YAML file (a mounted ConfigMap). `seldon.io/gateway-jwt` annotations pick them
 * by name and can say nothing about where keys come from (routing/policies/jwt.ts).
 */
import { parseDuration } from '../../routing/values/duration.js';
import { env, BOTH, type OptionSpec } from './option.js';
import type { Reader } from './read.js';
import { httpUrl, readOperatorFile, yamlEntries } from './yaml-list.js';

export const JWT_OPTIONS: readonly OptionSpec[] = [
  {
    flag: 'jwt-providers',
    section: 'auth',
    value: 'path',
    env: env('jwt-providers'),
    kind: 'string',
    commands: BOTH,
    help: 'A YAML list of the identity providers whose JWTs seldon.io/gateway-jwt may require, each: name, issuer, and where its keys come from (jwksUri, discovery: true, or jwksFile), with optional audiences, algorithms (default: the asymmetric ones), clockSkew (default 60s), refresh (default 5m), cooldown (default 1s: the least time between two fetches a token with an unknown kid causes). Applied again when the file changes. docs/security.md#jwt.',
  },
];

/** Asymmetric algorithms only: a provider publishes public keys, so an HMAC token "signed" with one is a forgery (RS256/HS256 confusion). */
export const JWT_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519'] as const;

/** Where a provider's keys come from. */
export type KeySource = { readonly kind: 'jwks'; readonly url: string } | { readonly kind: 'discovery'; readonly url: string } | { readonly kind: 'file'; readonly path: string };

export interface JwtProviderConfig {
  readonly name: string;
  /** `iss`, exactly. */
  readonly issuer: string;
  readonly keys: KeySource;
  /** Any one of them must be in `aud`; empty: `aud` is not checked for the provider. */
  readonly audiences: readonly string[];
  readonly algorithms: readonly string[];
  readonly clockSkewMs: number;
  /** How often its keys are fetched again (a token with an unknown `kid` fetches them sooner, at most once per `cooldownMs`). */
  readonly refreshMs: number;
  readonly cooldownMs: number;
}

const FIELDS = ['name', 'issuer', 'jwksUri', 'discovery', 'jwksFile', 'audiences', 'algorithms', 'clockSkew', 'refresh', 'cooldown'];
const NAME = /^[a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?$/;
const show = (v: unknown): string => JSON.stringify(v) ?? String(v);

function duration(v: unknown, what: string, fallback: number, min: number): number {
  if (v === undefined || v === null) return fallback;
  const ms = parseDuration(v);
  if (ms === null) throw new Error(`${what}: ${show(v)} is not a duration like 30s or 5m`);
  if (ms < min) throw new Error(`${what}: ${show(v)} is under ${min} ms`);
  return ms;
}

function names(v: unknown, what: string): string[] {
  if (v === undefined || v === null) return [];
  const list = typeof v === 'string' ? [v] : v;
  if (!Array.isArray(list) || !list.every((x) => typeof x === 'string' && x !== '')) throw new Error(`${what}: ${show(v)} is not a list of strings`);
  return [...new Set(list as string[])];
}

/** The providers a file's text describes; throws with the entry and field at fault. */
export function parseJwtProviders(text: string): JwtProviderConfig[] {
  const out: JwtProviderConfig[] = [];
  for (const [i, p] of yamlEntries(text, 'providers', 'a list of providers (- name: …, issuer: …)').entries()) {
    const at = `providers[${i}]`;
    const unknown = Object.keys(p).find((k) => !FIELDS.includes(k));
    if (unknown !== undefined) throw new Error(`${at}: unknown field "${unknown}" (fields: ${FIELDS.join(', ')})`);
    if (typeof p.name !== 'string' || !NAME.test(p.name)) throw new Error(`${at}.name: ${show(p.name)} is not a name (lower-case letters, digits, "-", "_", ".")`);
    const where = `provider "${p.name}"`;
    if (out.some((o) => o.name === p.name)) throw new Error(`${where}: named twice`);
    if (typeof p.issuer !== 'string' || p.issuer === '') throw new Error(`${where}.issuer: ${show(p.issuer)} is not the issuer (the tokens' iss)`);
    const sources = [p.jwksUri !== undefined, p.discovery !== undefined && p.discovery !== false, p.jwksFile !== undefined].filter(Boolean).length;
    if (sources !== 1) throw new Error(`${where}: give exactly one of jwksUri, discovery: true, jwksFile`);
    let keys: KeySource;
    if (p.jwksUri !== undefined) {
      if (typeof p.jwksUri !== 'string') throw new Error(`${where}.jwksUri: ${show(p.jwksUri)} is not a URL`);
      keys = { kind: 'jwks', url: httpUrl(p.jwksUri, `${where}.jwksUri`) };
    } else if (p.jwksFile !== undefined) {
      if (typeof p.jwksFile !== 'string' || p.jwksFile === '') throw new Error(`${where}.jwksFile: ${show(p.jwksFile)} is not a path`);
      keys = { kind: 'file', path: p.jwksFile };
    } else {
      if (p.discovery !== true) throw new Error(`${where}.discovery: ${show(p.discovery)} is not true`);
      const base = httpUrl(p.issuer, `${where}.issuer (discovery: true)`);
      keys = { kind: 'discovery', url: `${base.replace(/\/$/, '')}/.well-known/openid-configuration` };
    }
    const algorithms = names(p.algorithms, `${where}.algorithms`);
    for (const a of algorithms) {
      if (!(JWT_ALGORITHMS as readonly string[]).includes(a)) throw new Error(`${where}.algorithms: "${a}" is not one of ${JWT_ALGORITHMS.join(', ')} (symmetric and "none" are never accepted)`);
    }
    out.push({
      name: p.name,
      issuer: p.issuer,
      keys,
      audiences: names(p.audiences, `${where}.audiences`),
      algorithms: algorithms.length > 0 ? algorithms : [...JWT_ALGORITHMS],
      clockSkewMs: duration(p.clockSkew, `${where}.clockSkew`, 60_000, 0),
      refreshMs: duration(p.refresh, `${where}.refresh`, 300_000, 1000),
      cooldownMs: duration(p.cooldown, `${where}.cooldown`, 1000, 0),
    });
  }
  return out;
}

/** The names `seldon.io/gateway-jwt` may refer to (routing/types.ts `CompileOptions.jwtProviders`). */
export const providerNames = (providers: readonly JwtProviderConfig[]): ReadonlySet<string> => new Set(providers.map((p) => p.name));

/** --jwt-providers: the file read and checked at start (a bad one exits 2, naming the entry); re-read while serving (process/jwt-providers-file.ts). */
export function buildJwtProviders(read: Reader): { readonly file: string | undefined; readonly providers: readonly JwtProviderConfig[] } {
  const got = readOperatorFile(read, 'jwt-providers', parseJwtProviders);
  return { file: got?.file, providers: got?.value ?? [] };
}
