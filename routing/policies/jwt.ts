/**
 * `seldon.io/gateway-jwt` (docs/security.md#jwt): what a token must carry to reach a deployment's
 * models. Pure: read at compile time into a frozen `JwtPolicy` on the deployment's backends.
 *
 * The annotation only picks providers by name; the operator configures them (issuer, where their
 * keys come from) with --jwt-providers. A tenant who can write a SeldonDeployment must never make
 * the gateway fetch a URL (server-side request forgery), so any field that would say where keys
 * come from is refused by name, as is any unknown field, and a provider the operator did not name
 * degrades the deployment (its routes refuse with 503, the reason in /routes, the log and an Event),
 * never opens it.
 */
import { checkHeaderName, isObj, parseFieldsDocument, type Parsed } from '../values/syntax.js';

export const JWT_ANNOTATION = 'seldon.io/gateway-jwt';

/** Where a token is read from: `Authorization: Bearer` (header `authorization`), another header as it is, a query parameter, a cookie. */
export type TokenSource = { readonly kind: 'header' | 'query' | 'cookie'; readonly name: string };

export interface JwtPolicy {
  /** Provider names (--jwt-providers): one of them must verify the token. */
  readonly providers: readonly string[];
  /** Any one of them must be in `aud`, on top of the provider's own. */
  readonly audiences: readonly string[];
  /** All must be in the `scope` (space-separated) or `scp` (list or string) claim. */
  readonly scopes: readonly string[];
  /** Claims that must have exactly these values (a list claim: must contain it). */
  readonly claims: readonly (readonly [claim: string, value: string])[];
  /** Tried in order; the first that holds a token is the one checked. */
  readonly from: readonly TokenSource[];
  /** A request without any token passes (a present, bad token is still refused). */
  readonly allowMissing: boolean;
  /** Claims passed to the model as request headers (lower-case names), replacing what the client sent under those names. */
  readonly claimsToHeaders: readonly (readonly [claim: string, header: string])[];
  /** The token itself goes on to the model. */
  readonly forward: boolean;
}

const FIELDS = ['providers', 'audiences', 'scopes', 'claims', 'from', 'allowMissing', 'claimsToHeaders', 'forward'] as const;
/** Fields that would say where keys come from: the operator's alone (--jwt-providers). */
const OPERATOR_FIELDS = ['issuer', 'jwksUri', 'jwks_uri', 'jwks', 'jwksFile', 'discovery', 'url', 'uri', 'remoteJwks'];
/** Headers a claim may not be written to: framing, routing, and the credentials themselves. */
const RESERVED_HEADERS = new Set([
  'host',
  'content-length',
  'transfer-encoding',
  'connection',
  'keep-alive',
  'upgrade',
  'te',
  'trailer',
  'proxy-authorization',
  'authorization',
  'cookie',
  'seldon',
  'namespace',
  'grpc-timeout',
  'content-type',
]);
const DEFAULT_FROM: readonly TokenSource[] = Object.freeze([{ kind: 'header', name: 'authorization' }]);
/** A claim name: what JWTs use (letters, digits, `_ - . : /`). */
const CLAIM = /^[A-Za-z0-9_.:/-]{1,128}$/;
const NAME = /^[A-Za-z0-9_.-]{1,128}$/;

const show = (v: unknown): string => JSON.stringify(v) ?? String(v);

function strings(field: string, v: unknown): Parsed<string[]> {
  if (v === undefined || v === null) return { ok: true, value: [] };
  const list = typeof v === 'string' ? [v] : v;
  if (!Array.isArray(list) || !list.every((x) => typeof x === 'string' && x !== '')) return { ok: false, error: `${field}: ${show(v)} is not a list of names` };
  return { ok: true, value: [...new Set(list as string[])] };
}

function source(raw: string): Parsed<TokenSource> {
  const m = /^(header|query|cookie):(.+)$/.exec(raw.trim());
  if (m === null) return { ok: false, error: `from: "${raw}" is not header:<name>, query:<name> or cookie:<name>` };
  const kind = m[1] as TokenSource['kind'];
  const name = kind === 'header' ? m[2]!.toLowerCase() : m[2]!;
  const bad = kind === 'header' ? checkHeaderName(name) : NAME.test(name) ? undefined : `"${name}" is not a ${kind} name`;
  if (bad !== undefined) return { ok: false, error: `from: ${bad}` };
  if (kind === 'header' && RESERVED_HEADERS.has(name) && name !== 'authorization') return { ok: false, error: `from: a token is not read from ${name}` };
  return { ok: true, value: { kind, name } };
}

/**
 * One annotation value (YAML or JSON) → the policy, checked against `known`, the provider names the
 * operator configured (undefined: none configured, so any provider is unknown).
 */
export function parseJwtPolicy(raw: string, known: ReadonlySet<string> | undefined): Parsed<JwtPolicy> {
  const fail = (error: string): Parsed<JwtPolicy> => ({ ok: false, error: `${JWT_ANNOTATION}: ${error}` });
  const parsed = parseFieldsDocument(raw, [...FIELDS, ...OPERATOR_FIELDS]);
  if (!parsed.ok) return fail(parsed.error);
  const doc = parsed.value;
  const named = OPERATOR_FIELDS.find((f) => f in doc);
  if (named !== undefined) return fail(`${named}: where keys come from is the operator's to say (--jwt-providers); an annotation names providers only`);
  const providers = strings('providers', doc.providers);
  if (!providers.ok) return fail(providers.error);
  if (providers.value.length === 0) return fail('providers: name at least one provider (--jwt-providers)');
  for (const p of providers.value) {
    if (known === undefined || !known.has(p)) {
      const list = known === undefined || known.size === 0 ? 'none is configured (--jwt-providers)' : `configured: ${[...known].join(', ')}`;
      return fail(`providers: "${p}" is not a provider of this gateway (${list})`);
    }
  }
  const audiences = strings('audiences', doc.audiences);
  if (!audiences.ok) return fail(audiences.error);
  const scopes = strings('scopes', doc.scopes);
  if (!scopes.ok) return fail(scopes.error);
  if (scopes.value.some((s) => /\s/.test(s))) return fail(`scopes: ${show(doc.scopes)}: a scope has no spaces`);
  const claims: [string, string][] = [];
  if (doc.claims !== undefined && doc.claims !== null) {
    if (!isObj(doc.claims)) return fail(`claims: ${show(doc.claims)} is not a mapping of claim: value`);
    for (const [k, v] of Object.entries(doc.claims)) {
      if (!CLAIM.test(k)) return fail(`claims: "${k}" is not a claim name`);
      if (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean') return fail(`claims: ${k}: ${show(v)} is not a string, number or boolean`);
      claims.push([k, String(v)]);
    }
  }
  let from = DEFAULT_FROM;
  if (doc.from !== undefined && doc.from !== null) {
    const list = strings('from', doc.from);
    if (!list.ok) return fail(list.error);
    const out: TokenSource[] = [];
    for (const s of list.value) {
      const one = source(s);
      if (!one.ok) return fail(one.error);
      out.push(one.value);
    }
    if (out.length > 0) from = out;
  }
  const flag = (field: 'allowMissing' | 'forward'): Parsed<boolean> => {
    const v = doc[field];
    if (v === undefined || v === null) return { ok: true, value: false };
    if (typeof v !== 'boolean') return { ok: false, error: `${field}: ${show(v)} is not true or false` };
    return { ok: true, value: v };
  };
  const allowMissing = flag('allowMissing');
  if (!allowMissing.ok) return fail(allowMissing.error);
  const forward = flag('forward');
  if (!forward.ok) return fail(forward.error);
  const claimsToHeaders: [string, string][] = [];
  if (doc.claimsToHeaders !== undefined && doc.claimsToHeaders !== null) {
    if (!isObj(doc.claimsToHeaders)) return fail(`claimsToHeaders: ${show(doc.claimsToHeaders)} is not a mapping of claim: header`);
    for (const [k, v] of Object.entries(doc.claimsToHeaders)) {
      if (!CLAIM.test(k)) return fail(`claimsToHeaders: "${k}" is not a claim name`);
      if (typeof v !== 'string') return fail(`claimsToHeaders: ${k}: ${show(v)} is not a header name`);
      const header = v.toLowerCase();
      const bad = checkHeaderName(header);
      if (bad !== undefined) return fail(`claimsToHeaders: ${k}: ${bad}`);
      if (RESERVED_HEADERS.has(header) || header.startsWith(':')) return fail(`claimsToHeaders: ${k}: a claim is not written to ${header}`);
      claimsToHeaders.push([k, header]);
    }
  }
  return {
    ok: true,
    value: Object.freeze({
      providers: Object.freeze(providers.value),
      audiences: Object.freeze(audiences.value),
      scopes: Object.freeze(scopes.value),
      claims: Object.freeze(claims),
      from,
      allowMissing: allowMissing.value,
      claimsToHeaders: Object.freeze(claimsToHeaders),
      forward: forward.value,
    }),
  };
}
