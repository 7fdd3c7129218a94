/**
 * The gate at the entry of the REST and gRPC proxies, and the OAuth front end's routing.
 *
 * A routed request whose backend has a gate (`seldon.io/gateway-auth: oauth`, a
 * `seldon.io/gateway-rate-limit`) comes here before it is proxied; every other request never
 * does (the proxies test `backend.gate !== null`, nothing more). Auth first: a bearer token
 * (`Authorization: Bearer`, or `access_token` in the query; gRPC: `oauth_token` metadata, or
 * `authorization: Bearer`) of the deployment's own client, else 401 / UNAUTHENTICATED (403 /
 * PERMISSION_DENIED for another deployment's token). Then the rate limits: 429 with Retry-After /
 * RESOURCE_EXHAUSTED. The credential is stripped before the request goes upstream.
 *
 * The OAuth front end (docs/routing.md#oauth-front-end): `/api/v0.1/*` and `/api/v1.0/*` with a bearer token, and
 * gRPC `seldon.protos.Seldon/*` calls with `oauth_token` and no `seldon` metadata, go to the
 * deployment that owns the token, through its own routes (`matchDeployment`), path unchanged.
 * Only the token's deployment decides where a call goes, never the path or metadata.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { IncomingHttpHeaders, ServerHttp2Stream } from 'node:http2';
import { answerTrailersOnly } from '../grpc/answer.js';
import { GrpcStatus, grpcStatusOf } from '../edge/errors.js';
import type { GatewayMetrics, Protocol } from '../observe/metrics.js';
import { bearerToken, problemOf, queryToken, withDetail, type AuthOutcome, type OAuth } from './oauth.js';
import type { RateLimiter, Verdict } from './rate-limit.js';
import { sendError } from '../rest/proxy.js';
import type { RouteState } from '../process/route-state.js';
import { PATH_BACKSLASH, PATH_DOT_SEGMENT, checkPath, matchDeployment } from '../../routing/match.js';
import type { Decision, Picker, RateLimit, RouteTable, Routed } from '../../routing/types.js';

/** Proxy a routed REST request; `stripAuthorization`: drop the client's Authorization header. */
export type RestForward = (req: IncomingMessage, res: ServerResponse, decision: Routed, stripAuthorization: boolean) => void;

export interface GateDeps {
  readonly oauth: OAuth;
  readonly limiter: RateLimiter;
  readonly state: RouteState;
  readonly picker: Picker;
  readonly metrics: GatewayMetrics;
}

type Failed = Extract<AuthOutcome, { ok: false }>;

const NO_HEADERS = (): undefined => undefined;
const BEARER = 'Bearer realm="seldon-gateway"';

const single = (v: string | string[] | undefined): string | undefined => (Array.isArray(v) ? v[0] : v);

/** The REST answer for a failed check (Seldon-style body; 401 carries WWW-Authenticate). */
function restFailure(a: Failed): { status: number; reason: 'UNAUTHENTICATED' | 'FORBIDDEN' | 'NO_ROUTE' | 'AUTH_BACKEND_UNAVAILABLE'; extra?: Record<string, string> } {
  switch (a.failure) {
    case 'missing':
      return { status: 401, reason: 'UNAUTHENTICATED', extra: { 'www-authenticate': BEARER } };
    case 'invalid':
    case 'expired':
      return { status: 401, reason: 'UNAUTHENTICATED', extra: { 'www-authenticate': `${BEARER}, error="invalid_token"` } };
    case 'forbidden':
      return { status: 403, reason: 'FORBIDDEN', extra: { 'www-authenticate': `${BEARER}, error="insufficient_scope"` } };
    case 'gone':
      return { status: 404, reason: 'NO_ROUTE' };
    case 'unavailable':
      return { status: 503, reason: 'AUTH_BACKEND_UNAVAILABLE', extra: { 'retry-after': '1' } };
  }
}

function grpcFailure(a: Failed): number {
  switch (a.failure) {
    case 'forbidden':
      return GrpcStatus.PERMISSION_DENIED;
    case 'gone':
      return GrpcStatus.UNIMPLEMENTED;
    case 'unavailable':
      return GrpcStatus.UNAVAILABLE;
    default:
      return GrpcStatus.UNAUTHENTICATED;
  }
}

const retrySeconds = (v: Verdict): number => Math.max(1, Math.ceil(v.retryAfterMs / 1000));

export class Gatekeeper {
  constructor(private readonly d: GateDeps) {}

  /** The front end's paths are served (some deployment registers an OAuth client). */
  get frontEndActive(): boolean {
    return this.d.oauth.active;
  }

  private failed(protocol: Protocol, a: Failed): void {
    this.d.metrics.authFailures.labels(protocol, a.failure).inc();
  }

  /** The token check itself threw (it should not): 503 naming the deployment, the detail to the log. */
  private checkFailed(err: unknown, owner: string | undefined): string {
    const problem = problemOf(err);
    this.d.oauth.log?.warn({ deployment: owner, problem }, 'token check failed');
    return withDetail(this.d.oauth.errorDetail, owner === undefined ? 'the token check failed' : `the token check for ${owner} failed`, problem);
  }

  private limited(protocol: Protocol, d: Routed, v: Verdict): void {
    const o = d.backend.origin;
    this.d.metrics.rateLimited.labels(o.namespace, o.deployment, protocol, v.limit?.key ?? '').inc();
  }

  // ---- REST --------------------------------------------------------------------------------

  /** A routed REST request whose backend has a gate (`decision.backend.gate !== null`). */
  rest(req: IncomingMessage, res: ServerResponse, decision: Routed, table: RouteTable, forward: RestForward): void {
    const gate = decision.backend.gate!;
    const auth = gate.auth;
    if (auth === null) {
      this.restLimits(req, res, decision, gate.rateLimits, false, forward);
      return;
    }
    const fromQuery = queryToken(req.url ?? '/');
    const token = bearerToken(req.headers.authorization) ?? fromQuery.token;
    this.d.oauth.authenticate(token, table, `${auth.namespace}/${auth.deployment}`).then(
      (a) => {
        if (a.ok && a.owner !== `${auth.namespace}/${auth.deployment}`) {
          a = { ok: false, failure: 'forbidden', description: `this token is for ${a.owner}, not for ${auth.namespace}/${auth.deployment}` };
        }
        if (!a.ok) {
          this.failed('rest', a);
          const f = restFailure(a);
          this.d.metrics.request(decision.backend, 'rest', 'primary', f.status, null);
          sendError(req, res, f.status, f.reason, a.description, f.extra);
          return;
        }
        const d = fromQuery.token === undefined ? decision : { ...decision, upstreamPath: queryToken(decision.upstreamPath).url };
        this.restLimits(req, res, d, gate.rateLimits, true, forward);
      },
      (err: unknown) => sendError(req, res, 503, 'AUTH_BACKEND_UNAVAILABLE', this.checkFailed(err, `${auth.namespace}/${auth.deployment}`), { 'retry-after': '1' }),
    );
  }

  private restLimits(req: IncomingMessage, res: ServerResponse, d: Routed, limits: readonly RateLimit[], strip: boolean, forward: RestForward): void {
    if (limits.length === 0) {
      this.forward(req, res, d, strip, forward);
      return;
    }
    const v = this.d.limiter.check(limits);
    if (v instanceof Promise) void v.then((x) => this.restVerdict(req, res, d, x, strip, forward));
    else this.restVerdict(req, res, d, v, strip, forward);
  }

  private restVerdict(req: IncomingMessage, res: ServerResponse, d: Routed, v: Verdict, strip: boolean, forward: RestForward): void {
    if (v.allowed) {
      this.forward(req, res, d, strip, forward);
      return;
    }
    this.limited('rest', d, v);
    this.d.metrics.request(d.backend, 'rest', 'primary', 429, null);
    const s = retrySeconds(v);
    sendError(req, res, 429, 'RATE_LIMITED', `rate limit ${v.limit!.text} of ${v.limit!.key} exceeded: retry in ${s} s`, { 'retry-after': String(s) });
  }

  /** Forward unless the client went away while the checks ran. */
  private forward(req: IncomingMessage, res: ServerResponse, d: Routed, strip: boolean, forward: RestForward): void {
    if (res.destroyed || req.socket.destroyed) return;
    forward(req, res, d, strip);
  }

  /** The front end: `/api/v0.1/*`, `/api/v1.0/*` with a bearer token → the owner's own routes. */
  api(req: IncomingMessage, res: ServerResponse, forward: RestForward): void {
    const table = this.d.state.current;
    const fromQuery = queryToken(req.url ?? '/');
    // Path hygiene before anything else (matchDeployment says the same after the token check).
    const q = fromQuery.url.indexOf('?');
    const p = checkPath(q < 0 ? fromQuery.url : fromQuery.url.slice(0, q));
    if (p === PATH_DOT_SEGMENT || p === PATH_BACKSLASH) {
      sendError(req, res, 400, 'BAD_REQUEST', `request path "${fromQuery.url}" has ${p === PATH_BACKSLASH ? 'a backslash' : '"." or ".." segments'}`);
      return;
    }
    const token = bearerToken(req.headers.authorization) ?? fromQuery.token;
    this.d.oauth.authenticate(token, table).then(
      (a) => {
        if (!a.ok) {
          this.failed('rest', a);
          if (a.failure === 'gone' || a.failure === 'unavailable') {
            const f = restFailure(a);
            sendError(req, res, f.status, f.reason, a.description, f.extra);
            return;
          }
          // The Spring OAuth2 shapes the old front end answered with; the token is never echoed.
          const error = a.failure === 'missing' ? 'unauthorized' : 'invalid_token';
          const body = JSON.stringify({ error, error_description: a.description });
          const challenge = a.failure === 'missing' ? BEARER : `${BEARER}, error="invalid_token", error_description="${a.description}"`;
          res.writeHead(401, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'www-authenticate': challenge });
          res.end(req.method === 'HEAD' ? undefined : body);
          return;
        }
        const decision = matchDeployment(table, a.owner, { kind: 'rest', method: req.method ?? 'GET', path: fromQuery.url, host: req.headers.host ?? '', header: NO_HEADERS }, this.d.picker);
        if (!decision.ok) {
          this.d.metrics.unrouted.labels('rest', decision.reason).inc();
          sendError(req, res, decision.status, decision.reason, decision.info);
          return;
        }
        this.restLimits(req, res, decision, decision.backend.gate?.rateLimits ?? [], true, forward);
      },
      (err: unknown) => sendError(req, res, 503, 'AUTH_BACKEND_UNAVAILABLE', this.checkFailed(err, undefined), { 'retry-after': '1' }),
    );
  }

  // ---- gRPC --------------------------------------------------------------------------------

  /** An OAuth front-end call: `oauth_token` metadata and no `seldon`, while the front end is on. */
  frontEndCall(headers: IncomingHttpHeaders): boolean {
    return headers['oauth_token'] !== undefined && headers['seldon'] === undefined && this.d.oauth.active;
  }

  /**
   * A gRPC call whose route has a gate (`decision.ok`), or a front-end call (`frontEndCall`);
   * `start` proxies it once the checks pass (with `oauth_token` / Bearer removed from `headers`).
   */
  grpc(stream: ServerHttp2Stream, headers: IncomingHttpHeaders, decision: Decision, start: (d: Routed) => void): void {
    const table = this.d.state.current;
    const gate = decision.ok ? decision.backend.gate : null;
    if (decision.ok && gate !== null && gate.auth === null) {
      this.grpcLimits(stream, decision, gate.rateLimits, start);
      return;
    }
    const path = headers[':path'] ?? '';
    if (!decision.ok && !path.startsWith('/seldon.protos.Seldon/')) {
      answerTrailersOnly(stream, GrpcStatus.UNIMPLEMENTED, `no route for gRPC ${path}: the OAuth front end serves seldon.protos.Seldon only`);
      return;
    }
    const raw = single(headers['oauth_token']);
    const bearer = raw === undefined ? bearerToken(single(headers.authorization)) : undefined;
    this.d.oauth.authenticate(raw ?? bearer, table, gate?.auth ? `${gate.auth.namespace}/${gate.auth.deployment}` : undefined).then(
      (a) => {
        const auth = gate?.auth;
        if (a.ok && auth && a.owner !== `${auth.namespace}/${auth.deployment}`) {
          a = { ok: false, failure: 'forbidden', description: `this token is for ${a.owner}, not for ${auth.namespace}/${auth.deployment}` };
        }
        if (!a.ok) {
          this.failed('grpc', a);
          if (decision.ok) this.d.metrics.request(decision.backend, 'grpc', 'primary', grpcFailure(a), null);
          answerTrailersOnly(stream, grpcFailure(a), a.description);
          return;
        }
        let d: Decision = decision;
        if (!decision.ok) {
          d = matchDeployment(table, a.owner, { kind: 'grpc', method: 'POST', path, host: headers[':authority'] ?? '', header: NO_HEADERS }, this.d.picker);
          if (!d.ok) {
            this.d.metrics.unrouted.labels('grpc', d.reason).inc();
            answerTrailersOnly(stream, grpcStatusOf(d.reason), d.info);
            return;
          }
        }
        delete headers['oauth_token'];
        if (bearer !== undefined) delete headers.authorization;
        const routed = d as Routed;
        this.grpcLimits(stream, routed, routed.backend.gate?.rateLimits ?? [], start);
      },
      (err: unknown) => answerTrailersOnly(stream, GrpcStatus.UNAVAILABLE, this.checkFailed(err, gate?.auth ? `${gate.auth.namespace}/${gate.auth.deployment}` : undefined)),
    );
  }

  private grpcLimits(stream: ServerHttp2Stream, d: Routed, limits: readonly RateLimit[], start: (d: Routed) => void): void {
    if (limits.length === 0) {
      this.grpcStart(stream, d, start);
      return;
    }
    const v = this.d.limiter.check(limits);
    if (v instanceof Promise) void v.then((x) => this.grpcVerdict(stream, d, x, start));
    else this.grpcVerdict(stream, d, v, start);
  }

  private grpcVerdict(stream: ServerHttp2Stream, d: Routed, v: Verdict, start: (d: Routed) => void): void {
    if (v.allowed) {
      this.grpcStart(stream, d, start);
      return;
    }
    this.limited('grpc', d, v);
    this.d.metrics.request(d.backend, 'grpc', 'primary', GrpcStatus.RESOURCE_EXHAUSTED, null);
    const s = retrySeconds(v);
    answerTrailersOnly(stream, GrpcStatus.RESOURCE_EXHAUSTED, `rate limit ${v.limit!.text} of ${v.limit!.key} exceeded: retry in ${s} s`, { 'retry-after': String(s) });
  }

  private grpcStart(stream: ServerHttp2Stream, d: Routed, start: (d: Routed) => void): void {
    if (!stream.destroyed && !stream.closed) start(d);
  }
}
