/**
 * The REST adapter of the request pipeline (gateway/pipeline/request.ts): one REST request, over
 * HTTP/1.1 or HTTP/2 (the exchange interface of edge/rest-exchange.ts), as the stages see it. It only
 * translates: the gate's verdicts into the gateway's JSON answers, a feedback's JSON body into its
 * token, and the forward into the upstream's head (the headers copied once, the auth service's and a
 * Mapping's edits), with which it begins the forward of the exchange it is a layer of
 * (rest/exchange-body.ts, rest/forwarded-exchange.ts: the same object, which reads what the stages
 * decided, the answer headers, token, body read, the auth service's edits, as its own fields).
 */
import type { Allow, Deny, Gatekeeper, PendingVerdict } from '../auth/gate.js';
import type { RestRequest, RestResponse } from '../edge/rest-exchange.js';
import { announcesBody, isWhole } from '../wire/message-body.js';
import { sendError, sendJson, sendWhole } from '../edge/http-answer.js';
import { schemeOf } from '../edge/http-headers.js';
import { readSmallBody } from '../edge/small-body.js';
import type { KeptBody, Refusal } from '../pipeline/request.js';
import { ForwardedRequest } from '../forward/forwarded.js';
import { tokenFromFeedbackJson } from '../steer/answer-tag.js';
import { FEEDBACK_MAX_BYTES, isFeedbackPath, type FeedbackReading } from '../steer/bandit-edge.js';
import type { CorsPolicy, NotRouted } from '../../routing/types.js';
import type { RefusedRequest } from '../observe/payload-tap.js';
import { corsHeadersFor, corsRequest, type CorsHeaders } from './cors.js';
import { editFields } from '../forward/mapping-edits.js';
import { forwardFields } from './forward-fields.js';
import { stripMatchingPort, type EdgeRules } from '../../routing/emissary/edge-rules.js';
import { redirectLocation } from '../../routing/table/redirect.js';
import type { Redirect } from '../../routing/emissary/mapping-policy.js';
import { sendRouteError, sendUnrouted } from './route-answer.js';
import { decodeBody } from './request-decoder.js';
import { requestCoding } from '../../routing/compression/policy.js';
import type { ExchangeDeps, ExchangeHost } from './exchange-deps.js';
import type { UpstreamFields } from '../edge/upstream-fields.js';
import { sendRawDenial } from './ext-auth-answer.js';
import type { Socket } from 'node:net';
import type { StickyKeys } from '../steer/sticky-keys.js';

/** What a request asks of the REST proxy (rest/proxy.ts) beyond what its exchange does. */
export interface RestHost extends ExchangeHost {
  readonly deps: ExchangeDeps & { readonly sticky?: StickyKeys | undefined };
  /** Whether a peer may set X-Forwarded-For/-Proto (--trusted-proxies). */
  readonly trusts: (socket: Socket) => boolean;
  /** The ambassador Module's edge keys (routing/emissary/edge-rules.ts); undefined without them. */
  readonly rules: EdgeRules | undefined;
}

export abstract class RestPipelineRequest extends ForwardedRequest {
  /** The body, already read (a feedback read for its token, a body read for the auth service). */
  body: Buffer | null | undefined;
  /** The start of a body read in part (too large to read whole): the rest streams after it. */
  bodyHead: Buffer[] | undefined;
  /** Headers every answer to it carries, the model's and the gateway's own: a CORS route's for an allowed Origin (rest/cors.ts). */
  corsHeaders: CorsHeaders | undefined;
  /** The gate took the client's credential: it does not go upstream. */
  private stripAuthorization = false;

  constructor(
    protected readonly proxy: RestHost,
    readonly req: RestRequest,
    readonly res: RestResponse,
    since: number,
    frontEnd: boolean,
  ) {
    const host = proxy.rules?.stripMatchingHostPort === true ? stripMatchingPort(req.host, req.socket.localPort) : req.host;
    super('rest', req.method, req.url, host, since, proxy.deps.sticky, frontEnd, proxy.deps.metrics, proxy.deps.clock);
  }

  protected readHeader(name: string): string | undefined {
    return this.req.header(name);
  }

  rawHeaderFields(): readonly string[] {
    return this.req.rawHeaders;
  }

  clientAddress(): string | undefined {
    return this.req.socket.remoteAddress;
  }

  peerTrusted(): boolean {
    return this.proxy.trusts(this.req.socket);
  }

  connectionScheme(): 'http' | 'https' {
    return schemeOf(this.req.socket);
  }

  movedToHttps(location: string): void {
    const { req, res } = this;
    this.proxy.deps.metrics.unroutedRequest('rest', 'HTTPS_REDIRECT', 301, this.since);
    this.proxy.deps.observe?.answered(req, res);
    // A body the client is still sending is not read: the connection closes after the answer (lingering).
    sendWhole(req, res, 301, !req.complete || this.proxy.draining ? ['location', location, 'content-length', '0', 'connection', 'close'] : ['location', location, 'content-length', '0'], '');
  }

  frontEndCall(): boolean {
    // REST's front end is its own entry (RestProxy.frontEnd), decided by path before matching.
    return false;
  }

  unrouted(d: NotRouted): void {
    this.proxy.deps.metrics.unroutedRequest('rest', d.reason, d.status, this.since);
    this.proxy.deps.observe?.answered(this.req, this.res);
    sendUnrouted(this.req, this.res, d, this.proxy.draining ? { connection: 'close' } : undefined, this.table?.options.defaultErrorOverrides);
  }

  corsAnswered(policy: CorsPolicy): boolean {
    const cors = corsRequest(this.req, this.res, policy, this.proxy.draining);
    if (cors !== 'answered') {
      this.corsHeaders = cors;
      return false;
    }
    this.proxy.deps.observe?.answered(this.req, this.res, this.routed?.backend);
    return true;
  }

  /** `extra` and the headers every answer to this request carries (`corsHeaders`). */
  private withCorsHeaders(extra: Readonly<Record<string, string>> | undefined): Readonly<Record<string, string>> | undefined {
    return this.corsHeaders === undefined ? extra : { ...extra, ...this.corsHeaders };
  }

  redirected(r: Redirect): void {
    const { req, res } = this;
    const backend = this.routed!.backend;
    // The scheme Envoy's redirect takes: X-Forwarded-Proto as it goes upstream (a trusted proxy's, else the connection's).
    const given = this.proxy.trusts(req.socket) ? req.header('x-forwarded-proto') : undefined;
    const scheme = given === 'https' || given === 'http' ? given : schemeOf(req.socket);
    const fields = ['location', redirectLocation(r, this.routed!.group, req.url, scheme, this.table?.options), 'content-length', '0'];
    const cors = this.corsHeaders;
    if (cors !== undefined) for (const [name, value] of Object.entries(cors)) fields.push(name, value);
    // A body the client is still sending is not read: the connection closes after the answer (lingering).
    if (!req.complete || this.proxy.draining) fields.push('connection', 'close');
    if (backend.mapping!.responseHeaders !== null) editFields(fields, backend.mapping!.responseHeaders);
    // The gateway's own answer on the route, never a model's outcome.
    this.proxy.deps.metrics.refused(backend, 'rest', r.status, this.since);
    this.proxy.deps.observe?.answered(req, res, backend);
    sendWhole(req, res, r.status, fields, '');
  }

  askGate(gate: Gatekeeper): PendingVerdict {
    return this.frontEnd ? gate.api(this.req, this.table) : gate.rest(this.req, this.routed!, this.table!);
  }

  allowed(v: Allow): void {
    // A front-end request's route is the gate's choice: its CORS headers are decided now.
    if (this.frontEnd) this.corsHeaders = corsHeadersFor(this.req, v.decision.backend.cors);
    this.stripAuthorization = v.strip.includes('authorization');
    const a = v.external;
    if (a === undefined) return;
    // The auth service's answer headers (a refreshed session cookie), the body it read; its edits are `authEdits` (pipeline/gate.ts).
    if (a.answer.length > 0) this.answerHeaders = this.answerHeaders === undefined ? a.answer : [...this.answerHeaders, ...a.answer];
    if (a.read.body !== undefined) this.body = a.read.body;
    if (a.read.head !== undefined) this.bodyHead = a.read.head;
  }

  denied(v: Deny): void {
    const { req, res } = this;
    this.proxy.deps.metrics.denied('rest', v.tally, v.status, this.since);
    this.proxy.deps.observe?.answered(req, res, this.routed?.backend, this.logged(v.tally?.check ?? 'gate', v));
    if (v.raw !== undefined) sendRawDenial(req, res, { ...v, raw: v.raw });
    else if (v.body !== undefined) sendJson(req, res, v.status, v.body, this.withCorsHeaders(v.headers));
    // A body the client is still sending is not read for a refusal: the connection closes after it (lingering).
    else sendRouteError(req, res, v.status, v.reason, v.message, this.withCorsHeaders(req.complete ? v.headers : { ...v.headers, connection: 'close' }), this.routed?.backend.mapping ?? null);
  }

  refuse(r: Refusal): void {
    const { req, res } = this;
    const backend = this.routed?.backend;
    // A routed request refused here (flow control, no gate in this process) is answered, never a predictor's outcome.
    if (backend !== undefined) this.proxy.deps.metrics.refused(backend, 'rest', r.status, this.since);
    this.proxy.deps.observe?.answered(req, res, backend, this.logged(r.check, r));
    sendRouteError(req, res, r.status, r.reason, r.message, this.withCorsHeaders(req.complete && !this.proxy.draining ? r.headers : { ...r.headers, connection: 'close' }), backend?.mapping ?? null);
  }

  /** A refusal of a logged predictor's request, for its decision record; undefined (nothing made) for every other route. */
  private logged(check: string, r: { readonly status: number; readonly reason: string; readonly message: string }): RefusedRequest | undefined {
    const d = this.routed;
    return d !== undefined && d.backend.log !== null ? { check, status: r.status, reason: r.reason, message: r.message, decision: d, subject: this } : undefined;
  }

  gone(): boolean {
    return this.res.destroyed || this.req.socket.destroyed;
  }

  onGone(listener: () => void): void {
    this.res.once('close', listener);
  }

  isFeedback(): boolean {
    return isFeedbackPath(this.routed!.upstreamPath);
  }

  readFeedback(done: (reading: FeedbackReading | null) => void): void {
    const scan = (json: Buffer | null): void => {
      const r = json === null ? null : tokenFromFeedbackJson(json);
      done(r?.token ? { token: r.token, reward: r.reward } : null);
    };
    const take = (body: Buffer | null): void => {
      this.body = body;
      // A route that decodes requests: the token is read from the decoded body (the exchange decodes it again for the model).
      const z = this.routed!.backend.compression;
      const coding = body !== null && z !== null && z.decodeRequests ? requestCoding(this.req.header('content-encoding')) : null;
      if (coding === null || coding === undefined) scan(body);
      else decodeBody(coding, body!, FEEDBACK_MAX_BYTES, scan);
    };
    // Too large to be read for a token: forwarded as drawn, its body streamed on after what was read.
    const tooLarge = (read: Buffer[]): void => {
      this.bodyHead = read;
      done(null);
    };
    const body = this.req.body;
    const head = this.bodyHead;
    if (this.body !== undefined) take(this.body);
    else if (head !== undefined) {
      // The auth service read its start: read on from there.
      const size = head.reduce((n, c) => n + c.length, 0);
      if (isWhole(body) || size > FEEDBACK_MAX_BYTES) tooLarge(head);
      else readSmallBody(body, FEEDBACK_MAX_BYTES - size, (rest, more) => (rest !== null ? take(Buffer.concat([...head, rest])) : tooLarge([...head, ...more!])));
    } else if (isWhole(body)) take(body);
    else if (!announcesBody(this.req)) take(null);
    else readSmallBody(body, FEEDBACK_MAX_BYTES, (whole, read) => (whole !== null ? take(whole) : tooLarge(read!)));
  }

  keepBody(kept: KeptBody): void {
    this.body = kept as Buffer | null;
  }

  forward(): void {
    const { req, res } = this;
    const routed = this.routed!;
    try {
      // The path as routed (dot segments resolved), as Envoy sends it; the target as sent when it needed nothing.
      const fields = forwardFields(req, routed.backend, this.proxy.rules, this.proxy.trusts(req.socket), routed.originalPath ?? req.url, this.host, this.stripAuthorization, this.authEdits);
      this.begin(routed, this.proxy.deps.upstreams.for(routed.backend));
      this.start(fields);
    } catch (err) {
      this.proxy.internalError('request', err as Error, routed.backend);
      sendRouteError(req, res, 502, 'INTERNAL_ERROR', `the gateway failed to forward this request to ${routed.backend.id}`, this.withCorsHeaders({ connection: 'close' }), routed.backend.mapping);
      this.ended(false);
    }
  }

  /** Forwarding has begun (`begin`): its body goes, its attempts follow, with `fields` the upstream's head (rest/forwarded-exchange.ts). */
  protected abstract start(fields: UpstreamFields): void;

  failed(err: unknown): void {
    this.proxy.internalError('request', err as Error, this.routed?.backend);
    sendError(this.req, this.res, 502, 'INTERNAL_ERROR', 'the gateway failed to handle this request', this.withCorsHeaders({ connection: 'close' }));
  }
}
