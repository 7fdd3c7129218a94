/**
 * One taken upgrade request (rest/websocket-relay.ts), from its head to its connection's close, as
 * Envoy's router and nginx's `ngx_http_upstream` carry one:
 *
 * - the Module's ip_allow / ip_deny, then the route's gate (auth service, OAuth, JWT, rate limits)
 *   decide first, as for any request;
 *   a refusal is answered and the connection closed;
 * - the model gets the request head alone (on a connection of its own): nothing the client sent
 *   after it (`head`, and the socket is paused) reaches the model before the model's `101`;
 * - a `101` naming the protocol offered: its head to the client (with the Mapping's answer edits),
 *   the held bytes to the model, then both ways until either closes or both are idle; a `101`
 *   naming another protocol, or none: 502 and both connections closed;
 * - any other answer ends the upgrade: it reaches the client with `connection: close` and the
 *   connection closes after it, the held bytes dropped (Envoy drains a connection whose request
 *   had not ended when its answer came; nothing after an upgrade request is read as a request).
 *
 * Each upgrade is counted once, by the status the client got, and logged once its connection closes.
 */
import http, { type IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Allow, Deny, Gatekeeper } from '../auth/gate.js';
import type { GatewayReason } from '../edge/errors.js';
import { rawAnswer } from '../edge/http-answer.js';
import { clientResponseHeaders, rawHeaderValue, schemeOf, upstreamRequestHeaders } from '../edge/http-headers.js';
import { lingeringClose } from '../edge/lingering-close.js';
import { lastOf } from '../edge/upstream-fields.js';
import type { NodeRequest } from '../edge/node-exchange.js';
import { withServer, type ServerName } from '../edge/server-name.js';
import { applyAuthEdits, chainAuthEdits } from '../../routing/policies/auth-edits.js';
import { editFields, editUpstreamFields, removeField } from '../forward/mapping-edits.js';
import type { EdgeRules } from '../../routing/emissary/edge-rules.js';
import { DENIAL_FRAMING } from './ext-auth-answer.js';
import type { RestObserve, UpgradeEnd } from '../observe/observed-rest.js';
import type { Backend, Picker, Routed, RouteTable } from '../../routing/types.js';
import type { LiveTable } from '../../routing/table/live.js';
import type { IpFilter } from '../pipeline/ip-policy.js';
import { IP_REFUSAL } from '../pipeline/ip.js';
import { noGate } from '../pipeline/gate.js';
import type { GatewayMetrics } from '../observe/metrics.js';
import type { Upstreams } from '../upstream/pools.js';

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
  /** The Module's edge keys: its `suppress_envoy_headers` leaves x-envoy-original-path out, as on a plain request. */
  readonly rules?: EdgeRules | undefined;
}

/** What `should` decided for the request. */
export interface TakenUpgrade {
  readonly routed: Routed;
  readonly table: RouteTable;
  readonly since: number;
  /** The one protocol asked for, lower case, when the route allows it; null: refused (403). */
  readonly protocol: string | null;
}

export class UpgradeExchange {
  /** The status the client got (0: none yet). */
  private status = 0;
  private received = 0;
  private sent = 0;
  private requestId: string | undefined;
  private upstream: http.ClientRequest | undefined;
  private readonly logEnd: UpgradeEnd | undefined;

  constructor(
    private readonly d: WebSocketDeps,
    private readonly req: NodeRequest,
    private readonly client: Socket,
    /** What the client sent after the request head: held until the model's 101. */
    private readonly held: Buffer,
    private readonly taken: TakenUpgrade,
  ) {
    this.logEnd = d.observe?.upgrade(req, taken.routed.backend);
    client.on('error', () => client.destroy());
    client.once('close', () => {
      this.upstream?.destroy();
      this.logEnd?.(this.status === 0 ? 499 : this.status, this.received, this.sent, this.requestId);
    });
  }

  start(): void {
    const { routed, table, protocol } = this.taken;
    const b = routed.backend;
    const ip = this.d.ipFilter?.policy;
    if (ip !== undefined && !ip.admits(this.client.remoteAddress, this.d.trusts(this.client), rawHeaderValue(this.req.rawHeaders, 'x-forwarded-for'))) {
      // As the pipeline's ip stage: before the route, so not counted on it.
      this.answerRaw(IP_REFUSAL.status, IP_REFUSAL.reason, IP_REFUSAL.message);
      return;
    }
    if (protocol === null) {
      this.refuse(b, 403, 'FORBIDDEN', `${b.id} upgrades to ${b.mapping!.upgrades.join(', ')} only, one protocol per request; asked: ${this.req.headers.upgrade ?? ''}`);
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
    // No body is read for the check (`null`): what follows the head is the upgraded protocol's.
    const v = gate.rest(this.req, routed, table, null);
    const then = (x: Allow | Deny): void => {
      if (this.client.destroyed) return;
      if (x.allow) this.connect(x.decision, x);
      else this.denied(x);
    };
    if (v instanceof Promise) v.then(then, () => this.refuse(b, 503, 'AUTH_BACKEND_UNAVAILABLE', `the check of ${b.id} failed`));
    else then(v);
  }

  /** The gateway's own refusal: counted on the route, answered, the connection closed. */
  private refuse(b: Backend, status: number, reason: GatewayReason, info: string): void {
    this.d.metrics.refused(b, 'rest', status, this.taken.since);
    this.answerRaw(status, reason, info);
  }

  private answerRaw(status: number, reason: GatewayReason, info: string, extra = ''): void {
    this.status = status;
    rawAnswer(this.client, status, reason, info, serverLine(this.d.server?.value) + extra);
    // Paused since its head: the lingering close reads (and drops) what the client still sends.
    this.client.resume();
  }

  /** The gate's refusal, as a plain request's would read (the auth service's own answer when it gave one). */
  private denied(v: Deny): void {
    this.d.metrics.denied('rest', v.tally, v.status, this.taken.since);
    const extra = Object.entries(v.headers ?? {})
      .map(([k, x]) => `${k}: ${x}\r\n`)
      .join('');
    if (v.raw === undefined && v.body === undefined) return this.answerRaw(v.status, v.reason, v.message, extra);
    let head = `HTTP/1.1 ${v.status} ${http.STATUS_CODES[v.status] ?? ''}\r\n${extra}${serverLine(this.d.server?.value)}`;
    let body: Buffer;
    if (v.raw !== undefined) {
      const raw = v.raw.headers;
      for (let i = 0; i < raw.length; i += 2) if (!DENIAL_FRAMING.has(raw[i]!)) head += `${raw[i]}: ${raw[i + 1]}\r\n`;
      body = v.raw.body;
    } else {
      head += 'content-type: application/json\r\n';
      body = Buffer.from(v.body!);
    }
    this.status = v.status;
    this.client.write(`${head}content-length: ${body.length}\r\nconnection: close\r\n\r\n`, 'latin1');
    this.client.write(body);
    lingeringClose(this.client);
    this.client.resume();
  }

  /** The request head to an endpoint of the route's upstream; nothing after it until the 101. */
  private connect(routed: Routed, allow: Allow | undefined): void {
    const b = routed.backend;
    const { req, client } = this;
    const endpoint = this.d.upstreams.for(b).pick();
    if (endpoint === undefined) {
      this.d.metrics.request(b, 'rest', 'primary', 503, null, this.taken.since);
      this.answerRaw(503, 'NO_HEALTHY_UPSTREAM', `${b.id} has no ready endpoint`);
      return;
    }
    const fields = upstreamRequestHeaders(req.rawHeaders, {
      remoteAddress: client.remoteAddress,
      proto: schemeOf(client),
      // The path as routed, as a plain request's (rest/rest-request.ts).
      originalPath: routed.originalPath ?? req.url,
      trusted: this.d.trusts(client),
      stripAuthorization: allow?.strip.includes('authorization') === true,
    });
    const a = allow?.external;
    const edits = chainAuthEdits(a, allow?.edits);
    if (edits !== undefined) applyAuthEdits(fields, edits);
    if (this.d.rules?.suppressEnvoyHeaders === true) removeField(fields, 'x-envoy-original-path');
    fields.push('connection', 'upgrade', 'upgrade', this.taken.protocol!);
    editUpstreamFields(fields, b.mapping!, b.upstream);
    this.requestId = lastOf(fields, 'x-request-id');
    const answerExtra = a !== undefined && a.answer.length > 0 ? a.answer : undefined;
    let upstream: http.ClientRequest;
    try {
      upstream = http.request({
        host: endpoint.host,
        port: endpoint.port,
        method: req.method,
        path: routed.upstreamPath,
        headers: fields,
        setHost: false,
        agent: false,
        maxHeaderSize: this.d.maxResponseHeaderBytes,
      });
    } catch {
      this.d.metrics.request(b, 'rest', 'primary', 502, null, this.taken.since);
      this.answerRaw(502, 'INTERNAL_ERROR', `the gateway failed to forward this request to ${b.id}`);
      return;
    }
    this.upstream = upstream;
    const sentAt = performance.now();
    let connected = false;
    let answered = false;
    const fail = (status: number, reason: GatewayReason, info: string): void => {
      upstream.destroy();
      if (answered || client.destroyed) return;
      answered = true;
      this.d.metrics.request(b, 'rest', 'primary', status, null, this.taken.since);
      this.answerRaw(status, reason, info);
    };
    const counted = (status: number): void => {
      answered = true;
      this.d.metrics.request(b, 'rest', 'primary', status, (performance.now() - sentAt) / 1000, this.taken.since);
    };
    upstream.once('socket', (s: Socket) => {
      s.setTimeout(this.d.connectTimeoutMs, () => fail(503, 'UPSTREAM_CONNECT_FAILURE', `${b.id} could not be reached within ${this.d.connectTimeoutMs} ms`));
      s.once('connect', () => {
        connected = true;
        s.setTimeout(0);
      });
    });
    upstream.on('error', (err: NodeJS.ErrnoException) => {
      if (answered) return void client.destroy();
      if (!connected) fail(503, 'UPSTREAM_CONNECT_FAILURE', `${b.id} could not be reached`);
      else if (err.code === 'HPE_HEADER_OVERFLOW') fail(502, 'UPSTREAM_BAD_RESPONSE', `${b.id} answered with a response head over the limit`);
      else if (err.code?.startsWith('HPE_') === true) fail(502, 'UPSTREAM_BAD_RESPONSE', `${b.id} answered the upgrade with a malformed answer`);
      // Closed before its answer head: the client is told, as a reset before the headers is on every route.
      else fail(503, 'UPSTREAM_RESET', `${b.id} closed the connection before answering`);
    });
    upstream.on('upgrade', (res: IncomingMessage, socket: Socket, rest: Buffer) => {
      // Only the protocol offered is taken back: another would be a tunnel of a kind the route does not allow.
      if (res.statusCode !== 101 || res.headers.upgrade?.trim().toLowerCase() !== this.taken.protocol) {
        socket.destroy();
        fail(502, 'UPSTREAM_BAD_RESPONSE', wrongSwitch(b, this.taken.protocol!, res));
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
        fail(502, 'UPSTREAM_BAD_RESPONSE', wrongSwitch(b, this.taken.protocol!, res));
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

/** Why a 101 is refused: it switches to another protocol than the one offered, or names none. */
const wrongSwitch = (b: Backend, offered: string, res: IncomingMessage): string =>
  `${b.id} answered the upgrade to ${offered} with ${res.statusCode} ${res.headers.upgrade === undefined ? '(no upgrade)' : `upgrade: ${res.headers.upgrade}`}`;

/** A raw answer's Server line: the Module's `server_name`, or none. */
const serverLine = (server: string | undefined): string => (server === undefined ? '' : `server: ${server}\r\n`);

/** The model's answer head as the client gets it: `fields` with the Mapping's answer edits, the auth service's answer fields and the Module's `server_name`. */
function answerHead(res: IncomingMessage, fields: string[], b: Backend, extra: readonly string[] | undefined, server: string | undefined): Buffer {
  const edits = b.mapping!.responseHeaders;
  if (edits !== null) editFields(fields, edits);
  if (extra !== undefined) fields.push(...extra);
  const out = server === undefined ? fields : (withServer(fields, server) as string[]);
  let text = `HTTP/1.1 ${res.statusCode} ${res.statusMessage ?? ''}\r\n`;
  for (let i = 0; i < out.length; i += 2) text += `${out[i]}: ${out[i + 1]}\r\n`;
  return Buffer.from(`${text}\r\n`, 'latin1');
}
