/**
 * One taken upgrade request (rest/websocket-relay.ts), from its head to its connection's close, as
 * Envoy's router and nginx's `ngx_http_upstream` carry one:
 *
 * - the Module's `reject_requests_with_escaped_slashes` (400) and ip_allow / ip_deny, then the
 *   route's leave to upgrade (none, or not this protocol: 403, Envoy's "upgrade_failed"; so is plain
 *   HTTP under `x_forwarded_proto_redirect`, whose route is Envoy's redirect), then the route's gate
 *   (auth service, OAuth, JWT, rate limits) decide first, as for any request; a refusal is answered
 *   and the connection closed;
 * - the upstream's circuit breaker admits it (a tunnel holds its request slot until it closes), and
 *   the model gets the request head alone (on a connection of its own) with the fields a plain
 *   request gets (rest/forward-fields.ts): nothing the client sent after it (`head`, and the socket
 *   is paused) reaches the model before the model's `101`, and the route's timeout bounds the wait
 *   for its answer head (504, both connections closed);
 * - a `101` naming the protocol offered: its head to the client (with the Mapping's answer edits),
 *   the held bytes to the model, then both ways until either closes or both are idle; a `101`
 *   naming another protocol, or none: 502 and both connections closed;
 * - any other answer ends the upgrade: it reaches the client with `connection: close` and the
 *   connection closes after it, the held bytes dropped (Envoy drains a connection whose request
 *   had not ended when its answer came; nothing after an upgrade request is read as a request).
 *
 * Each upgrade is counted once, by the status the client got, and logged once its connection closes;
 * its endpoint is told how the attempt went (forward/outcome.ts), as a plain request's is.
 */
import type { ClientRequest, IncomingMessage } from 'node:http';
import { request as httpRequest } from '../wire/node-http.js';
import type { Socket } from 'node:net';
import tls from 'node:tls';
import type { Allow, Deny, Gatekeeper } from '../auth/gate.js';
import type { GatewayReason } from '../edge/errors.js';
import { rawAnswer } from '../edge/http-answer.js';
import { clientResponseHeaders, rawHeaderValue, schemeOf } from '../edge/http-headers.js';
import { lingeringClose } from '../edge/lingering-close.js';
import type { NodeRequest } from '../edge/node-exchange.js';
import type { ServerName } from '../edge/server-name.js';
import { chainAuthEdits } from '../../routing/policies/auth-edits.js';
import { hasEscapedSlash, hasUnderscoredName, UNDERSCORE_REFUSAL, type EdgeRules } from '../../routing/emissary/edge-rules.js';
import { errorOverrideFor } from '../forward/mapping-edits.js';
import { attemptOutcome, httpOutcome } from '../forward/outcome.js';
import { overflowInfo } from '../upstream/breaker.js';
import { forwardFields } from './forward-fields.js';
import { errorAnswer, unroutedOverride } from './route-answer.js';
import { answerHead, serverLine, writeDenial, writeWhole, wrongSwitch } from './upgrade-answers.js';
import { gateUpgrade, type UpgradeVerdict } from './upgrade-gate.js';
import type { RestObserve, UpgradeEnd } from '../observe/observed-rest.js';
import type { Backend, NotRouted, Picker, Routed, RouteTable } from '../../routing/types.js';
import type { LiveTable } from '../../routing/table/live.js';
import type { IpFilter } from '../pipeline/ip-policy.js';
import { IP_REFUSAL } from '../pipeline/ip.js';
import { noGate } from '../pipeline/gate.js';
import type { GatewayMetrics } from '../observe/metrics.js';
import type { Endpoint, UpstreamPool, Upstreams } from '../upstream/pools.js';

export interface WebSocketDeps {
  readonly state: Pick<LiveTable, 'current'>;
  readonly picker: Picker;
  readonly eligible?: ((backend: Backend) => boolean) | undefined;
  readonly upstreams: Upstreams;
  readonly metrics: GatewayMetrics;
  readonly trusts: (socket: Socket) => boolean;
  /** --connect-timeout, --max-response-header-size. */
  readonly connectTimeoutMs: number;
  readonly maxResponseHeaderBytes: number;
  /** The Module's `server_name` (edge/server-name.ts): the Server field of the answers, the model's replaced. */
  readonly server?: ServerName | undefined;
  /** The gate of routes that have one (external auth, OAuth, JWT, rate limits); absent: such routes' upgrades are refused (503). */
  readonly gate?: Gatekeeper | undefined;
  /** The access log and tracing (observe/observed-rest.ts `upgrade`). */
  readonly observe?: RestObserve | undefined;
  /** The Module's ip_allow / ip_deny (pipeline/ip-policy.ts): upgrades meet them as every request does. */
  readonly ipFilter?: IpFilter | undefined;
  /** The ambassador Module's edge keys (routing/emissary/edge-rules.ts), as a plain request meets them; undefined without them. */
  readonly rules?: EdgeRules | undefined;
}

/** What `should` decided for the request. */
export interface TakenUpgrade {
  /** Its route; none: answered as the route table says (404), the connection closed. */
  readonly routed: Routed | NotRouted;
  readonly table: RouteTable;
  readonly since: number;
  /** The Host as matched (the Module's strip_matching_host_port): the model's unless the Mapping rewrites it. */
  readonly host: string;
  /** The one protocol asked for, lower case, when the route allows it; null: refused (403). */
  readonly protocol: string | null;
}

export class UpgradeExchange {
  /** The status the client got (0: none yet). */
  private status = 0;
  private received = 0;
  private sent = 0;
  private requestId: string | undefined;
  private upstream: ClientRequest | undefined;
  private readonly logEnd: UpgradeEnd | undefined;
  /** Admitted by the upstream's breaker: its request slot (and the endpoint's count), given back once when the client's connection closes. */
  private admitted: { readonly pool: UpstreamPool; readonly endpoint: Endpoint } | undefined;

  constructor(
    private readonly d: WebSocketDeps,
    private readonly req: NodeRequest,
    private readonly client: Socket,
    /** What the client sent after the request head: held until the model's 101. */
    private readonly held: Buffer,
    private readonly taken: TakenUpgrade,
  ) {
    this.logEnd = d.observe?.upgrade(req, taken.routed.ok ? taken.routed.backend : undefined);
    client.on('error', () => client.destroy());
    client.once('close', () => {
      this.upstream?.destroy();
      const a = this.admitted;
      if (a !== undefined) {
        this.admitted = undefined;
        a.pool.breaker.leave();
        a.endpoint.outstanding--;
      }
      this.logEnd?.(this.status === 0 ? 499 : this.status, this.received, this.sent, this.requestId);
    });
  }

  start(): void {
    const { routed, table, protocol } = this.taken;
    const rules = this.d.rules;
    if (rules?.rejectUnderscoreHeaders === true && hasUnderscoredName(this.req.rawHeaders)) {
      this.d.metrics.unroutedRequest('rest', 'BAD_REQUEST', 400, this.taken.since);
      this.answerRaw(400, 'BAD_REQUEST', UNDERSCORE_REFUSAL);
      return;
    }
    if (rules?.rejectEscapedSlashes === true && hasEscapedSlash(this.req.url)) {
      // As the pipeline's first stage (pipeline/edge-rules.ts): before the route, so not counted on it.
      this.d.metrics.unroutedRequest('rest', 'BAD_REQUEST', 400, this.taken.since);
      this.answerRaw(400, 'BAD_REQUEST', 'request path has an escaped slash (%2F or %5C): refused (reject_requests_with_escaped_slashes)');
      return;
    }
    const ip = this.d.ipFilter?.policy;
    if (ip !== undefined && !ip.admits(this.client.remoteAddress, this.d.trusts(this.client), rawHeaderValue(this.req.rawHeaders, 'x-forwarded-for'))) {
      // As the pipeline's ip stage: before the route, so not counted on it.
      this.answerRaw(IP_REFUSAL.status, IP_REFUSAL.reason, IP_REFUSAL.message);
      return;
    }
    if (!routed.ok) return this.unrouted(routed);
    const b = routed.backend;
    if (rules?.httpsRedirect === true && !this.overHttps()) {
      // Envoy's route for plain HTTP here is its TLS redirect, which takes no upgrade.
      this.refuse(b, 403, 'FORBIDDEN', `${b.id} is served over https only (x_forwarded_proto_redirect): no upgrade over http`);
      return;
    }
    if (protocol === null) {
      const allowed = b.mapping?.redirect === null ? b.mapping.upgrades : [];
      const asked = this.req.headers.upgrade ?? '';
      this.refuse(
        b,
        403,
        'FORBIDDEN',
        allowed.length === 0 ? `${b.id} takes no upgrade (allow_upgrade); asked: ${asked}` : `${b.id} upgrades to ${allowed.join(', ')} only, one protocol per request; asked: ${asked}`,
      );
      return;
    }
    const h = this.req.headers;
    if (h['transfer-encoding'] !== undefined || (h['content-length'] !== undefined && h['content-length'] !== '0')) {
      this.refuse(b, 400, 'BAD_REQUEST', 'an upgrade request carries no body');
      return;
    }
    const gate = this.d.gate;
    if (b.gate === null) return this.connect(routed, undefined);
    if (gate === undefined) {
      const r = noGate(b.id);
      return this.refuse(b, r.status, r.reason, r.message);
    }
    const { picker, eligible } = this.d;
    const then = (v: UpgradeVerdict): void => {
      if (this.client.destroyed) return;
      if (v.to === 'model') this.connect(v.routed, v.allow);
      else if (v.to === 'denied') this.denied(v.deny, b);
      else if (v.to === 'refused') this.refuse(v.backend, v.status, v.reason, v.info);
      else this.unrouted(v.unrouted);
    };
    gateUpgrade(gate, this.req, routed, { table, host: this.taken.host, protocol, picker, eligible, takes: upgradesTo }, then, () => {
      if (!this.client.destroyed) this.refuse(b, 503, 'AUTH_BACKEND_UNAVAILABLE', `the check of ${b.id} failed`);
    });
  }

  /** No route: the table's answer (404), with the Module's error overrides as a request's (rest/route-answer.ts `sendUnrouted`). */
  private unrouted(d: NotRouted): void {
    this.d.metrics.unroutedRequest('rest', d.reason, d.status, this.taken.since);
    const o = unroutedOverride(d, this.taken.table.options.defaultErrorOverrides);
    if (o === undefined) return this.answerRaw(d.status, d.reason, d.info);
    this.status = d.status;
    const { fields, body } = errorAnswer(d.status, d.reason, d.info, undefined, o, null);
    writeWhole(this.client, d.status, fields, body, this.d.server?.value);
    this.client.resume();
  }

  /** X-Forwarded-Proto as the model would get it is https (a trusted peer's as sent, else the connection's scheme), as pipeline/edge-rules.ts judges it. */
  private overHttps(): boolean {
    const given = this.d.trusts(this.client) ? rawHeaderValue(this.req.rawHeaders, 'x-forwarded-proto') : undefined;
    const proto = given !== undefined && given !== '' ? given : schemeOf(this.client);
    return proto.trim().toLowerCase() === 'https';
  }

  /** The gateway's own refusal: counted on the route, answered, the connection closed. */
  private refuse(b: Backend, status: number, reason: GatewayReason, info: string): void {
    this.d.metrics.refused(b, 'rest', status, this.taken.since);
    this.answerOn(b, status, reason, info);
  }

  /**
   * The gateway's own answer on `b`'s route, as a request's there (rest/route-answer.ts `sendRouteError`):
   * the route's error override for its status (its Mapping's, else the Module's) and the Mapping's answer edits.
   */
  private answerOn(b: Backend, status: number, reason: GatewayReason, info: string, extra?: Readonly<Record<string, string>>): void {
    const m = b.mapping;
    if (m === null)
      return this.answerRaw(
        status,
        reason,
        info,
        extra === undefined
          ? ''
          : Object.entries(extra)
              .map(([k, v]) => `${k}: ${v}\r\n`)
              .join(''),
      );
    this.status = status;
    const { fields, body } = errorAnswer(status, reason, info, extra, errorOverrideFor(status, m.errorOverrides), m.responseHeaders);
    writeWhole(this.client, status, fields, body, this.d.server?.value);
    this.client.resume();
  }

  private answerRaw(status: number, reason: GatewayReason, info: string, extra = ''): void {
    this.status = status;
    rawAnswer(this.client, status, reason, info, serverLine(this.d.server?.value) + extra);
    // Paused since its head: the lingering close reads (and drops) what the client still sends.
    this.client.resume();
  }

  /** The gate's refusal, as a request's would read: the auth service's own answer when it gave one, else the gateway's on `b`'s route. */
  private denied(v: Deny, b: Backend): void {
    this.d.metrics.denied('rest', v.tally, v.status, this.taken.since);
    if (v.raw === undefined && v.body === undefined) return this.answerOn(b, v.status, v.reason, v.message, v.headers);
    this.status = v.status;
    writeDenial(this.client, v, this.d.server?.value);
    this.client.resume();
  }

  /**
   * The request head to an endpoint of the route's upstream, admitted by its breaker; nothing after it
   * until the 101, which the route's timeout bounds.
   */
  private connect(routed: Routed, allow: Allow | undefined): void {
    const b = routed.backend;
    const { req, client } = this;
    const since = this.taken.since;
    const metrics = this.d.metrics;
    const pool = this.d.upstreams.for(b);
    const endpoint = pool.pick();
    if (endpoint === undefined) {
      metrics.request(b, 'rest', 'primary', 503, null, since);
      this.answerOn(b, 503, 'NO_HEALTHY_UPSTREAM', `${b.id} has no ready endpoint`);
      return;
    }
    // The breaker's request slot, as a plain request's (forward/forwarded.ts `admit`): held while the tunnel lasts, as Envoy's stream holds it.
    const overflow = pool.breaker.enter();
    if (overflow !== null) {
      metrics.overflow(b, 'rest', overflow);
      metrics.request(b, 'rest', 'primary', 503, null, since);
      this.answerOn(b, 503, 'UPSTREAM_OVERFLOW', overflowInfo(overflow, b.id, b.breaker), OVERLOADED);
      return;
    }
    endpoint.outstanding++;
    this.admitted = { pool, endpoint };
    const a = allow?.external;
    const fields = forwardFields(
      req,
      b,
      this.d.rules,
      this.d.trusts(client),
      // The path as routed, as a plain request's (rest/rest-request.ts).
      routed.originalPath ?? req.url,
      this.taken.host,
      allow?.strip.includes('authorization') === true,
      chainAuthEdits(a, allow?.edits),
    );
    this.requestId = fields.requestId;
    // After every edit: neither the auth service nor a Mapping changes what the upgrade asks for.
    const list = fields.list();
    list.push('connection', 'upgrade', 'upgrade', this.taken.protocol!);
    const answerExtra = a !== undefined && a.answer.length > 0 ? a.answer : undefined;
    const connectTimeoutMs = b.mapping?.connection?.connectTimeoutMs ?? this.d.connectTimeoutMs;
    const sentAt = performance.now();
    let connected = false;
    let answered = false;
    let timer: NodeJS.Timeout | undefined;
    const fail = (status: number, reason: GatewayReason, info: string, outcome: 'local' | 'error' = 'local'): void => {
      clearTimeout(timer);
      this.upstream?.destroy();
      if (answered || client.destroyed) return;
      answered = true;
      attemptOutcome(endpoint, outcome, performance.now() - sentAt);
      metrics.request(b, 'rest', 'primary', status, null, since);
      this.answerOn(b, status, reason, info);
    };
    const counted = (status: number): void => {
      clearTimeout(timer);
      answered = true;
      const ms = performance.now() - sentAt;
      attemptOutcome(endpoint, httpOutcome(status), ms);
      metrics.request(b, 'rest', 'primary', status, ms / 1000, since);
    };
    // A TLS upstream is dialled as its requests' connections are (upstream/pools.ts `tlsFor`: the same trust, client certificate and SNI).
    const secure = this.d.upstreams.tlsFor(b);
    let upstream: ClientRequest;
    try {
      upstream = httpRequest({
        host: endpoint.host,
        port: endpoint.port,
        method: req.method,
        path: routed.upstreamPath,
        headers: list,
        setHost: false,
        maxHeaderSize: this.d.maxResponseHeaderBytes,
        ...(secure === undefined ? { agent: false } : { createConnection: () => tls.connect({ ...secure, host: endpoint.host, port: endpoint.port, ALPNProtocols: ['http/1.1'] }) }),
      });
    } catch {
      metrics.request(b, 'rest', 'primary', 502, null, since);
      this.answerOn(b, 502, 'INTERNAL_ERROR', `the gateway failed to forward this request to ${b.id}`);
      return;
    }
    this.upstream = upstream;
    client.once('close', () => clearTimeout(timer));
    // The route's timeout (a plain request's: its Mapping's timeout_ms, else the Module's or the gateway's default) bounds the wait for the answer head, as Envoy's router does an upgrade's.
    const timeoutMs = b.timeoutMs;
    if (timeoutMs > 0)
      timer = setTimeout(() => {
        if (answered || client.destroyed) return;
        metrics.timeout(b, 'rest');
        fail(504, 'UPSTREAM_TIMEOUT', `${b.id} did not answer within ${timeoutMs} ms`);
      }, timeoutMs);
    upstream.once('socket', (s: Socket) => {
      s.setTimeout(connectTimeoutMs, () => fail(503, 'UPSTREAM_CONNECT_FAILURE', `${b.id} could not be reached within ${connectTimeoutMs} ms`));
      // Over TLS, reached once the handshake verified the model: a failed one is a connect failure (503), as a request's.
      s.once(secure === undefined ? 'connect' : 'secureConnect', () => {
        connected = true;
        s.setTimeout(0);
      });
    });
    upstream.on('error', (err: NodeJS.ErrnoException) => {
      if (answered) return void client.destroy();
      if (!connected) fail(503, 'UPSTREAM_CONNECT_FAILURE', `${b.id} could not be reached${err.code === undefined ? '' : ` (${err.code})`}`);
      else if (err.code === 'HPE_HEADER_OVERFLOW') fail(502, 'UPSTREAM_BAD_RESPONSE', `${b.id} answered with a response head over the limit`);
      else if (err.code?.startsWith('HPE_') === true) fail(502, 'UPSTREAM_BAD_RESPONSE', `${b.id} answered the upgrade with a malformed answer`);
      // Closed before its answer head: the client is told, as a reset before the headers is on every route.
      else fail(503, 'UPSTREAM_RESET', `${b.id} closed the connection before answering`);
    });
    upstream.on('upgrade', (res: IncomingMessage, socket: Socket, rest: Buffer) => {
      // Only the protocol offered is taken back: another would be a tunnel of a kind the route does not allow.
      if (res.statusCode !== 101 || res.headers.upgrade?.trim().toLowerCase() !== this.taken.protocol) {
        socket.destroy();
        fail(502, 'UPSTREAM_BAD_RESPONSE', wrongSwitch(b, this.taken.protocol!, res), 'error');
        return;
      }
      counted(101);
      this.status = 101;
      client.write(answerHead(res, res.rawHeaders.slice(), b, answerExtra, this.d.server?.value));
      this.tunnel(b, socket, rest);
    });
    upstream.on('response', (res: IncomingMessage) => {
      if (res.statusCode === 101) {
        // A 101 the parser did not take as an upgrade (no Upgrade, or no Connection: upgrade): no tunnel either.
        fail(502, 'UPSTREAM_BAD_RESPONSE', wrongSwitch(b, this.taken.protocol!, res), 'error');
        return;
      }
      counted(res.statusCode ?? 502);
      this.ended(res, b, answerExtra);
    });
    upstream.end();
  }

  /**
   * An answer other than 101 ends the upgrade: to the client as it came (framed anew, the answer
   * edits applied) with `connection: close`, the connection closed once it is out. The bytes held
   * after the request head are dropped with it, never read as a request.
   */
  private ended(res: IncomingMessage, b: Backend, extra: readonly string[] | undefined): void {
    const client = this.client;
    const te = res.headers['transfer-encoding'] !== undefined;
    const cl = res.headers['content-length'];
    const length = !te && cl !== undefined && /^\d+$/.test(cl) ? Number(cl) : -1;
    const fields = clientResponseHeaders(res.rawHeaders, length);
    fields.push('connection', 'close');
    this.status = res.statusCode!;
    client.write(answerHead(res, fields, b, extra, this.d.server?.value));
    res.on('data', (chunk: Buffer) => {
      this.sent += chunk.length;
      if (!client.write(chunk)) {
        res.pause();
        client.once('drain', () => res.resume());
      }
    });
    res.once('end', () => {
      this.upstream?.destroy();
      lingeringClose(client);
      client.resume();
    });
    // Cut short by the model: the client's connection is cut too (its framing could not say so).
    res.once('close', () => {
      if (!res.complete) client.destroy();
    });
  }

  /** After the 101: the held bytes first, then both ways until either side closes or both are idle. */
  private tunnel(b: Backend, upstream: Socket, rest: Buffer): void {
    const client = this.client;
    upstream.on('error', () => client.destroy());
    // The model closed: what it sent still reaches the client, then its connection closes too.
    upstream.once('close', () => client.destroySoon());
    client.once('close', () => upstream.destroy());
    if (rest.length > 0) {
      this.sent += rest.length;
      client.write(rest);
    }
    if (this.held.length > 0) {
      this.received += this.held.length;
      upstream.write(this.held);
    }
    upstream.on('data', (c: Buffer) => (this.sent += c.length));
    client.on('data', (c: Buffer) => (this.received += c.length));
    upstream.pipe(client);
    client.pipe(upstream);
    client.resume();
    const idle = b.idleTimeoutMs;
    if (idle > 0) {
      // Either side sending keeps both open: the timer of each is reset by its own reads and writes.
      const quiet = (): void => {
        client.destroy();
        upstream.destroy();
      };
      client.setTimeout(idle, quiet);
      upstream.setTimeout(idle, quiet);
    }
  }
}

/**
 * Whether `b` relays upgrades to `protocol` (lower case): a Mapping's route that allows it, not a
 * redirect (Envoy's redirect route has no upgrade_configs).
 */
export function upgradesTo(b: Backend, protocol: string): boolean {
  const m = b.mapping;
  return m !== null && m.redirect === null && m.upgrades.includes(protocol);
}

const OVERLOADED: Readonly<Record<string, string>> = { 'x-envoy-overloaded': 'true' };
