/**
 * The gate at the entry of the REST and gRPC proxies, and the OAuth front end's routing.
 *
 * A routed request whose backend has a gate (`seldon.io/gateway-auth: oauth`, a
 * `seldon.io/gateway-rate-limit`) comes here before it is proxied; every other request never
 * does (the gate stage tests `backend.gate !== null`, nothing more). Auth first: a bearer token
 * (`Authorization: Bearer`, or `access_token` in the query; gRPC: `oauth_token` metadata, or
 * `authorization: Bearer`) of the deployment's own client, else 401 / UNAUTHENTICATED (403 /
 * PERMISSION_DENIED for another deployment's token). Then the rate limits: 429 with Retry-After /
 * RESOURCE_EXHAUSTED. The credential is stripped before the request goes upstream.
 *
 * The gate decides; it writes nothing. Like Envoy's ext_authz, each check returns a `GateVerdict`
 * (at once when it can, a promise when a store must answer): `Allow` with the decision to proxy
 * and the request headers to remove, or `Deny` with what the refusal says and what it counts
 * (`tally`: the backend refused, the OAuth failure, the rate-limit bucket), which the request's
 * protocol counts once where the request ends (observe/metrics.ts `denied`). The pipeline's gate
 * stage (pipeline/gate.ts) asks for it, and each protocol's adapter renders it (rest/rest-request.ts:
 * the JSON error body, edge/http-answer.ts; grpc/grpc-request.ts: a trailers-only status,
 * grpc/answer.ts), so this module imports neither proxy.
 *
 * The OAuth front end (docs/routing.md#oauth-front-end): `/api/v0.1/*` and `/api/v1.0/*` with a bearer token, and
 * gRPC `seldon.protos.Seldon/*` calls with `oauth_token` and no `seldon` metadata, go to the
 * deployment that owns the token, through its own routes (`matchDeployment`), path unchanged.
 * Only the token's deployment decides where a call goes, never the path or metadata.
 */
import type { IncomingHttpHeaders } from 'node:http2';
import type { Socket } from 'node:net';
import { frontEndServes } from '../edge/entry.js';
import type { Deny, GatewayReason } from '../edge/errors.js';
import type { DenialTally } from '../observe/denial-tally.js';
import type { RestRequest } from '../edge/rest-exchange.js';
import type { CheckSubject, ExtVerdict, ExternalAuth } from '../ext-auth/policy.js';
import type { JwtOutcome, JwtVerifier } from './jwt.js';
import { grpcToken, jwtDenial, jwtEdits, restToken, upstreamWithoutToken, type FoundToken } from './jwt-gate.js';
import type { JwtPolicy } from '../../routing/policies/jwt.js';
import { grpcSubject, restSubject, type ReadBody } from '../ext-auth/subject.js';
import { authEditPlan, type AuthEdits } from '../../routing/policies/auth-edits.js';
import { problemOf, withDetail } from './error-detail.js';
import { bearerToken, queryToken, type AuthOutcome, type OAuth } from './oauth.js';
import { bucketName, perClaimLimit, type RateLimiter, type Verdict } from './rate-limit.js';
import type { JWTPayload } from 'jose';
import { PATH_BACKSLASH, PATH_DOT_SEGMENT, checkPath, matchDeployment } from '../../routing/table/match.js';
import type { Decision, Picker, RateLimit, Routed, RouteTable } from '../../routing/types.js';
import type { LiveTable } from '../../routing/table/live.js';

/** Proxy the request: `decision` is the one to use (the front end's own match, or the route with a query token dropped from its path). */
export interface Allow {
  readonly allow: true;
  readonly decision: Routed;
  /** Request headers (lower-case) to remove before the request goes upstream: the client's credential. */
  readonly strip: readonly string[];
  /** Set when the external auth service allowed it: its edits, and what of the body was read for it. */
  readonly external?: ExternalAllowance | undefined;
  /** The JWT check's edits (claims as headers, the token removed), applied after the auth service's. */
  readonly edits?: AuthEdits | undefined;
  /** The verified JWT's claims (a payload log may sample by one). */
  readonly claims?: JWTPayload | undefined;
  /**
   * Set when the auth service's edits may route the request elsewhere: the rest of the gate (OAuth, rate
   * limits), run once the request is matched again, on the route it stays on (pipeline/gate.ts). Until
   * then nothing is spent: a request the second match answers (404, a redirect) takes no rate-limit credit.
   */
  readonly onRoute?: ((d: Routed) => PendingVerdict) | undefined;
}

/** What an external auth allowance adds to the request (ext-auth/policy.ts). */
export interface ExternalAllowance extends AuthEdits {
  /** `name, value` pairs for the client's answer (a refreshed session cookie). */
  readonly answer: readonly string[];
  /** REST: the body as read for the check, handed on to the model. */
  readonly read: ReadBody;
}

/** A refusal: `edge/errors.ts`'s, which the external auth check gives too; part of the gate's verdicts. */
export type { Deny };

export type GateVerdict = Allow | Deny;

/** A verdict now, or once a store has answered (the promise never rejects). */
export type PendingVerdict = GateVerdict | Promise<GateVerdict>;

/** What the gate reads of a REST request. */
export interface GateRequest {
  readonly url?: string | undefined;
  readonly method?: string | undefined;
  readonly headers: { readonly authorization?: string | undefined; readonly host?: string | undefined };
  /** The whole request (a `RestRequest`), which the external auth check describes; without it an external check fails closed. */
  readonly rawHeaders?: string[] | undefined;
  /** Stands for its client connection: a JWT that connection sent last is not hashed again (auth/jwt.ts). */
  readonly connectionKey?: object | undefined;
}

/** What a gRPC call's external auth check reads beside its headers. */
export interface GrpcCallInfo {
  readonly rawHeaders: readonly string[];
  readonly socket: Socket | undefined;
}

export interface GateDeps {
  readonly oauth: OAuth;
  readonly limiter: RateLimiter;
  readonly state: LiveTable;
  readonly picker: Picker;
  /** The external auth service (--ext-auth-service); routes that need it fail closed without it. */
  readonly external?: ExternalAuth | undefined;
  /** JWT providers (--jwt-providers); routes with seldon.io/gateway-jwt are refused (503) without it. */
  readonly jwt?: JwtVerifier | undefined;
  /** Whether a peer's X-Forwarded-For/-Proto are kept (--trusted-proxies), for what the auth service is told. */
  readonly trusts?: ((socket: Socket) => boolean) | undefined;
}

type Failed = Extract<AuthOutcome, { ok: false }>;

const NO_HEADERS = (): undefined => undefined;
const BEARER = 'Bearer realm="seldon-gateway"';
/** Nothing to remove (rate limits only); the REST credential; gRPC's `oauth_token`, and a Bearer `authorization` when that carried the token. */
const KEEP: readonly string[] = [];
const STRIP_AUTHORIZATION: readonly string[] = ['authorization'];
const STRIP_TOKEN: readonly string[] = ['oauth_token'];
const STRIP_TOKEN_AND_AUTHORIZATION: readonly string[] = ['oauth_token', 'authorization'];
const NO_LIMITS: readonly RateLimit[] = [];
const RETRY_IN_1S: Readonly<Record<string, string>> = { 'retry-after': '1' };
const NOTHING_READ: ReadBody = {};

const single = (v: string | string[] | undefined): string | undefined => (Array.isArray(v) ? v[0] : v);

/** The check of a request on `d`, with its Mapping's auth_context_extensions when it has some. */
function withContext(s: CheckSubject, d: Routed): CheckSubject {
  const extensions = d.backend.mapping?.authContextExtensions ?? null;
  return extensions === null ? s : { ...s, contextExtensions: extensions };
}

const allow = (decision: Routed, strip: readonly string[]): Allow => ({ allow: true, decision, strip });

function deny(status: number, reason: GatewayReason, message: string, headers?: Readonly<Record<string, string>>): Deny {
  return { allow: false, status, reason, message, headers };
}

/** A failed token check (REST: Seldon-style body, 401 with WWW-Authenticate; gRPC: the reason's status). */
function authDenial(a: Failed): Deny {
  switch (a.failure) {
    case 'missing':
      return deny(401, 'UNAUTHENTICATED', a.description, { 'www-authenticate': BEARER });
    case 'invalid':
    case 'expired':
      return deny(401, 'UNAUTHENTICATED', a.description, { 'www-authenticate': `${BEARER}, error="invalid_token"` });
    case 'forbidden':
      return deny(403, 'FORBIDDEN', a.description, { 'www-authenticate': `${BEARER}, error="insufficient_scope"` });
    case 'gone':
      return deny(404, 'NO_ROUTE', a.description);
    case 'unavailable':
      return deny(503, 'AUTH_BACKEND_UNAVAILABLE', a.description, RETRY_IN_1S);
  }
}

/** A token of another deployment than the one guarded: forbidden. */
function owned(a: AuthOutcome, guarded: string | undefined): AuthOutcome {
  if (a.ok && guarded !== undefined && a.owner !== guarded) return { ok: false, failure: 'forbidden', description: `this token is for ${a.owner}, not for ${guarded}` };
  return a;
}

const retrySeconds = (v: Verdict): number => Math.max(1, Math.ceil(v.retryAfterMs / 1000));

export class Gatekeeper {
  constructor(private readonly d: GateDeps) {}

  /** Close the connections to the external auth service. */
  close(): void {
    this.d.external?.close();
  }

  /** The front end's paths are served (some deployment registers an OAuth client). */
  get frontEndActive(): boolean {
    return this.d.oauth.active;
  }

  /** The token check itself threw (it should not): 503 naming the deployment, the detail to the log. */
  private checkFailed(err: unknown, owner: string | undefined): Deny {
    const problem = problemOf(err);
    this.d.oauth.log?.warn({ deployment: owner, problem }, 'token check failed');
    const message = withDetail(this.d.oauth.errorDetail, owner === undefined ? 'the token check failed' : `the token check for ${owner} failed`, problem);
    return deny(503, 'AUTH_BACKEND_UNAVAILABLE', message, RETRY_IN_1S);
  }

  /** A refusal of a routed request: counted on its backend as its answer, never as a model's outcome (`tally`, counted where the request ends). */
  private refused(d: Routed, v: Deny, tally?: DenialTally): Deny {
    return { ...v, tally: { ...tally, backend: d.backend } };
  }

  /** The rate limits of a request that passed auth (if any). */
  private limits(d: Routed, limits: readonly RateLimit[], strip: readonly string[], claims?: JWTPayload): PendingVerdict {
    if (limits.length === 0) return allow(d, strip);
    const v = this.d.limiter.check(limits.some((l) => l.perClaim !== undefined) ? limits.map((l) => perClaimLimit(l, claims)) : limits);
    return v instanceof Promise ? v.then((x) => this.limited(d, x, strip)) : this.limited(d, v, strip);
  }

  private limited(d: Routed, v: Verdict, strip: readonly string[]): GateVerdict {
    if (v.allowed) return allow(d, strip);
    const s = retrySeconds(v);
    const retry = { 'retry-after': String(s) };
    const name = v.limit === undefined ? '' : bucketName(v.limit);
    const denial: Deny = { ...deny(429, 'RATE_LIMITED', `rate limit ${v.limit!.text} of ${name} exceeded: retry in ${s} s`, retry), metadata: retry };
    return this.refused(d, denial, { bucket: name, check: 'rate-limit' });
  }

  // ---- REST --------------------------------------------------------------------------------

  /**
   * A routed REST request whose backend has a gate (`decision.backend.gate !== null`), on the table
   * it was matched with; `preread`: its body, when it was read already (a bandit's feedback).
   */
  rest(req: GateRequest, decision: Routed, table: RouteTable, preread?: Buffer | null): PendingVerdict {
    const jwt = decision.backend.gate!.jwt;
    if (jwt !== null) return this.jwtFirst(decision, jwt, restToken(jwt, req.url ?? '/', req.rawHeaders ?? []), req.connectionKey, (d, claims) => this.restChecks(req, d, table, preread, claims));
    return this.restChecks(req, decision, table, preread);
  }

  private restChecks(req: GateRequest, decision: Routed, table: RouteTable, preread: Buffer | null | undefined, claims?: JWTPayload): PendingVerdict {
    if (decision.backend.gate!.external)
      return this.externally(
        decision,
        () => this.restCheck(decision, req, preread),
        (d) => this.restGate(req, d, table, claims),
      );
    return this.restGate(req, decision, table, claims);
  }

  // ---- JWT (auth/jwt.ts): first, as Envoy's jwt_authn precedes ext_authz; then the rest of the gate ----

  private jwtFirst(d: Routed, policy: JwtPolicy, found: FoundToken, connection: object | undefined, next: (d: Routed, claims?: JWTPayload) => PendingVerdict): PendingVerdict {
    const verifier = this.d.jwt;
    if (verifier === undefined)
      return this.refused(d, deny(503, 'AUTH_BACKEND_UNAVAILABLE', `route of ${d.backend.id} requires a JWT, which this process does not check`, RETRY_IN_1S), { check: 'jwt' });
    // Passed with these claims (none: no token, and none needed); the claim headers are set or cleared either way.
    const pass = (claims: JWTPayload | undefined): PendingVerdict => {
      const edits = jwtEdits(policy, found, claims);
      const path = upstreamWithoutToken(d.upstreamPath, policy, found);
      const v = next(path === d.upstreamPath ? d : { ...d, upstreamPath: path }, claims);
      const merge = (x: GateVerdict): GateVerdict => (x.allow ? { ...x, edits, claims } : x);
      return v instanceof Promise ? v.then(merge) : merge(v);
    };
    const then = (o: JwtOutcome): PendingVerdict => (o.ok ? pass(o.claims) : this.refused(d, jwtDenial(o, policy), { check: 'jwt' }));
    if (found.token === undefined) return policy.allowMissing ? pass(undefined) : then(verifier.missing(policy));
    const o = verifier.verify(found.token, policy, connection);
    return o instanceof Promise ? o.then(then) : then(o);
  }

  // ---- External auth (ext-auth/policy.ts): before OAuth and rate limits, as Envoy's ext_authz precedes them ----

  /** The external check first; on an allowed request, `next` (OAuth, rate limits), its allowance carrying the check's. */
  private externally(d: Routed, check: () => Promise<{ verdict: ExtVerdict; read: ReadBody }>, next: (d: Routed) => PendingVerdict): Promise<GateVerdict> {
    return check().then(({ verdict, read }) => {
      if (!verdict.allow) return this.refused(d, verdict, { check: 'ext-auth' });
      const external: ExternalAllowance = { headers: verdict.headers, remove: verdict.remove, answer: verdict.answer, read };
      // Envoy's filters after ext_authz (its rate limits among them) see the route found again.
      if (authEditPlan(external).changes) return { ...allow(d, KEEP), external, onRoute: next };
      const merge = (v: GateVerdict): GateVerdict => (v.allow ? { ...v, external } : v);
      const v = next(d);
      return v instanceof Promise ? v.then(merge) : merge(v);
    });
  }

  /** No --ext-auth-service, or a request the check cannot describe: refused (fail closed). */
  private unchecked(d: Routed): { verdict: ExtVerdict; read: ReadBody } {
    const message =
      this.d.external === undefined
        ? `route of ${d.backend.id} is checked by an external auth service, which this gateway has not been given (--ext-auth-service)`
        : `the request to ${d.backend.id} could not be described to the external auth service`;
    return { verdict: deny(503, 'AUTH_BACKEND_UNAVAILABLE', message, RETRY_IN_1S), read: NOTHING_READ };
  }

  private restCheck(d: Routed, req: GateRequest, preread: Buffer | null | undefined): Promise<{ verdict: ExtVerdict; read: ReadBody }> {
    const ext = this.d.external;
    const startedAt = performance.now();
    if (ext === undefined || req.rawHeaders === undefined) return Promise.resolve(this.unchecked(d));
    const r = req as RestRequest;
    const trusted = this.d.trusts?.(r.socket as Socket) ?? false;
    return new Promise((resolve) => {
      restSubject(r, d.originalPath ?? r.url, ext.config, trusted, preread, (s) => {
        if ('tooLarge' in s) resolve({ verdict: ext.tooLarge('rest', startedAt), read: NOTHING_READ });
        else void ext.check(withContext(s.subject, d), startedAt).then((verdict) => resolve({ verdict, read: s.read }));
      });
    });
  }

  private grpcCheck(d: Routed, headers: IncomingHttpHeaders, call: GrpcCallInfo | undefined): Promise<{ verdict: ExtVerdict; read: ReadBody }> {
    const ext = this.d.external;
    const startedAt = performance.now();
    if (ext === undefined || call === undefined) return Promise.resolve(this.unchecked(d));
    const trusted = call.socket !== undefined && (this.d.trusts?.(call.socket) ?? false);
    return ext.check(withContext(grpcSubject(headers, call.rawHeaders, call.socket, trusted), d), startedAt).then((verdict) => ({ verdict, read: NOTHING_READ }));
  }

  private restGate(req: GateRequest, decision: Routed, table: RouteTable, claims?: JWTPayload): PendingVerdict {
    const gate = decision.backend.gate!;
    const auth = gate.auth;
    if (auth === null) return this.limits(decision, gate.rateLimits, KEEP, claims);
    const guarded = `${auth.namespace}/${auth.deployment}`;
    const fromQuery = queryToken(req.url ?? '/');
    const token = bearerToken(req.headers.authorization) ?? fromQuery.token;
    return this.d.oauth.authenticate(token, table, guarded).then(
      (outcome) => {
        const a = owned(outcome, guarded);
        if (!a.ok) return this.refused(decision, authDenial(a), { authFailure: a.failure, check: 'oauth' });
        const d = fromQuery.token === undefined ? decision : { ...decision, upstreamPath: queryToken(decision.upstreamPath).url };
        return this.limits(d, gate.rateLimits, STRIP_AUTHORIZATION, claims);
      },
      (err: unknown) => this.checkFailed(err, guarded),
    );
  }

  /** The front end: `/api/v0.1/*`, `/api/v1.0/*` with a bearer token → the owner's own routes, on `table` (the request's). */
  api(req: GateRequest, table: RouteTable = this.d.state.current): PendingVerdict {
    const fromQuery = queryToken(req.url ?? '/');
    // Path hygiene before anything else (matchDeployment says the same after the token check).
    const q = fromQuery.url.indexOf('?');
    const p = checkPath(q < 0 ? fromQuery.url : fromQuery.url.slice(0, q));
    if (p === PATH_DOT_SEGMENT || p === PATH_BACKSLASH) {
      return deny(400, 'BAD_REQUEST', `request path "${fromQuery.url}" has ${p === PATH_BACKSLASH ? 'a backslash' : '"." or ".." segments'}`);
    }
    const token = bearerToken(req.headers.authorization) ?? fromQuery.token;
    return this.d.oauth.authenticate(token, table).then(
      (a) => {
        if (!a.ok) {
          const tally = { authFailure: a.failure, check: 'oauth' };
          if (a.failure === 'gone' || a.failure === 'unavailable') return { ...authDenial(a), tally };
          // The Spring OAuth2 shapes the old front end answered with; the token is never echoed.
          const error = a.failure === 'missing' ? 'unauthorized' : 'invalid_token';
          const challenge = a.failure === 'missing' ? BEARER : `${BEARER}, error="invalid_token", error_description="${a.description}"`;
          const denial: Deny = { ...deny(401, 'UNAUTHENTICATED', a.description, { 'www-authenticate': challenge }), body: JSON.stringify({ error, error_description: a.description }), tally };
          return denial;
        }
        const decision = matchDeployment(table, a.owner, { kind: 'rest', method: req.method ?? 'GET', path: fromQuery.url, host: req.headers.host ?? '', header: NO_HEADERS }, this.d.picker);
        if (!decision.ok) return { ...deny(decision.status, decision.reason, decision.info), tally: { unrouted: decision.reason } };
        const limited = (d: Routed): PendingVerdict => this.limits(d, d.backend.gate?.rateLimits ?? NO_LIMITS, STRIP_AUTHORIZATION);
        if (decision.backend.gate?.external) return this.externally(decision, () => this.restCheck(decision, req, undefined), limited);
        return limited(decision);
      },
      (err: unknown) => this.checkFailed(err, undefined),
    );
  }

  // ---- gRPC --------------------------------------------------------------------------------

  /**
   * A gRPC call whose route has a gate (`decision.ok`), or a front-end call (edge/entry.ts). An
   * allowed call goes with `oauth_token` (and a Bearer `authorization` that carried the token) removed.
   * `table`: the one the call was matched on (a front-end call is matched by its token there too).
   */
  grpc(headers: IncomingHttpHeaders, decision: Decision, call?: GrpcCallInfo, table: RouteTable = this.d.state.current): PendingVerdict {
    const jwt = decision.ok ? decision.backend.gate?.jwt : null;
    if (decision.ok && jwt) return this.jwtFirst(decision, jwt, grpcToken(jwt, headers), call?.socket, (d, claims) => this.grpcChecks(headers, d, call, table, claims));
    return this.grpcChecks(headers, decision, call, table);
  }

  private grpcChecks(headers: IncomingHttpHeaders, decision: Decision, call: GrpcCallInfo | undefined, table: RouteTable, claims?: JWTPayload): PendingVerdict {
    if (decision.ok && decision.backend.gate?.external)
      return this.externally(
        decision,
        () => this.grpcCheck(decision, headers, call),
        (d) => this.grpcGate(headers, d, table, call, claims),
      );
    return this.grpcGate(headers, decision, table, call, claims);
  }

  private grpcGate(headers: IncomingHttpHeaders, decision: Decision, table: RouteTable, call: GrpcCallInfo | undefined, claims?: JWTPayload): PendingVerdict {
    const gate = decision.ok ? decision.backend.gate : null;
    if (decision.ok && gate !== null && gate.auth === null) return this.limits(decision, gate.rateLimits, KEEP, claims);
    const path = headers[':path'] ?? '';
    if (!decision.ok && !frontEndServes(path)) {
      return deny(404, 'NO_ROUTE', `no route for gRPC ${path}: the OAuth front end serves seldon.protos.Seldon only`);
    }
    const raw = single(headers['oauth_token']);
    const bearer = raw === undefined ? bearerToken(single(headers.authorization)) : undefined;
    const auth = gate?.auth;
    const guarded = auth ? `${auth.namespace}/${auth.deployment}` : undefined;
    return this.d.oauth.authenticate(raw ?? bearer, table, guarded).then(
      (outcome) => {
        const a = owned(outcome, guarded);
        if (!a.ok) {
          const tally = { authFailure: a.failure, check: 'oauth' };
          return decision.ok ? this.refused(decision, authDenial(a), tally) : { ...authDenial(a), tally };
        }
        let d: Routed;
        if (decision.ok) d = decision;
        else {
          const m = matchDeployment(table, a.owner, { kind: 'grpc', method: 'POST', path, host: headers[':authority'] ?? '', header: NO_HEADERS }, this.d.picker);
          if (!m.ok) return { ...deny(m.status, m.reason, m.info), tally: { unrouted: m.reason } };
          d = m;
        }
        const strip = bearer === undefined ? STRIP_TOKEN : STRIP_TOKEN_AND_AUTHORIZATION;
        const limited = (r: Routed): PendingVerdict => this.limits(r, r.backend.gate?.rateLimits ?? NO_LIMITS, strip, claims);
        // A front-end call is checked once its deployment is known (a routed one was checked first).
        if (!decision.ok && d.backend.gate?.external) return this.externally(d, () => this.grpcCheck(d, headers, call), limited);
        return limited(d);
      },
      (err: unknown) => this.checkFailed(err, guarded),
    );
  }
}
