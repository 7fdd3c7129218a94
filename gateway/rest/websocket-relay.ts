/**
 * WebSocket upgrades on a custom Mapping's route with `allow_upgrade: [websocket]` (or
 * `use_websocket: true`), over HTTP/1.1 (docs/routing.md "What a Mapping changes of a request and
 * its answer"). Node's HTTP/1.1 server asks `should` of every request that asks for an upgrade (the
 * lane leaves such requests to it): only a `websocket` upgrade whose route allows it is taken here;
 * every other request is served as a request, its hop-by-hop Upgrade dropped, as on every route.
 *
 * A taken request goes to an endpoint of its route's upstream on a connection of its own: the
 * request head as the pipeline forwards it (the forwarding fields, the Mapping's edits and Host),
 * with `connection: upgrade` and the client's `upgrade`. After the model's `101 Switching
 * Protocols` (its head passed on, with the Mapping's answer edits) the two connections are relayed
 * both ways until either closes, or neither has sent anything for the route's idle timeout. An
 * answer that is not a 101 is passed on as it came, and the connection closed after it.
 *
 * Not taken (served as a plain request, as Envoy would not upgrade them either without their
 * filters' support here): routes the gate checks (auth, rate limits, the external auth service),
 * redirect Mappings, TLS upstreams. Each taken request is counted once, by the status the client got.
 */
import { validHost } from '../../routing/host-syntax.js';
import type { IncomingMessage } from 'node:http';
import net, { type Socket } from 'node:net';
import { match, headerGetter } from '../../routing/match.js';
import type { Backend, Picker, Routed } from '../../routing/types.js';
import type { LiveTable } from '../../routing/live-table.js';
import { rawAnswer } from '../edge/http-answer.js';
import { schemeOf, upstreamRequestHeaders } from '../edge/http-headers.js';
import { editFields, editUpstreamFields } from '../forward/mapping-edits.js';
import type { GatewayMetrics } from '../observe/metrics.js';
import type { Upstreams } from '../upstream/pools.js';
import { withServer, type ServerName } from '../edge/server-name.js';

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
}

/** What `should` decided, carried by the request to the 'upgrade' listener (nothing kept elsewhere). */
const TAKEN = Symbol('websocket route');
type Carrying = IncomingMessage & { [TAKEN]?: { readonly routed: Routed; readonly since: number } };

const HEAD_END = Buffer.from('\r\n\r\n');

/** Whether an Upgrade field value offers `websocket` (RFC 9110 §7.8: a list of protocols, any case). */
function offersWebSocket(value: string | undefined): boolean {
  return value !== undefined && value.split(',').some((p) => p.trim().toLowerCase() === 'websocket');
}

export class WebSocketRelay {
  constructor(private readonly d: WebSocketDeps) {}

  /** Node's `shouldUpgradeCallback`: the route allows a WebSocket upgrade (the decision rides on the request). */
  readonly should = (req: IncomingMessage): boolean => {
    // An invalid Host is never relayed: served as a request, edge/refusals.ts answers it 400.
    if (!offersWebSocket(req.headers.upgrade) || !validHost(req.headers.host ?? '')) return false;
    const since = performance.now();
    const routed = match(
      this.d.state.current,
      { kind: 'rest', method: req.method ?? 'GET', path: req.url ?? '/', host: req.headers.host ?? '', header: headerGetter(req.headers) },
      this.d.picker,
      this.d.eligible,
    );
    if (!routed.ok) return false;
    const b = routed.backend;
    const m = b.mapping;
    if (m === null || !m.upgrades.includes('websocket') || m.redirect !== null || b.gate !== null || b.upstream.tls || m.tlsContext !== null) return false;
    (req as Carrying)[TAKEN] = { routed, since };
    return true;
  };

  /** Node's 'upgrade' listener: the request `should` took, relayed to its model. */
  readonly upgrade = (req: IncomingMessage, client: Socket, head: Buffer): void => {
    const taken = (req as Carrying)[TAKEN];
    if (taken === undefined) {
      client.destroy();
      return;
    }
    const { routed, since } = taken;
    const b = routed.backend;
    const server = this.d.server?.value;
    client.on('error', () => client.destroy());
    const endpoint = this.d.upstreams.for(b).pick();
    if (endpoint === undefined) {
      this.d.metrics.request(b, 'rest', 'primary', 503, null, since);
      rawAnswer(client, 503, 'NO_HEALTHY_UPSTREAM', `${b.id} has no ready endpoint`, serverLine(server));
      return;
    }
    const fields = upstreamRequestHeaders(req.rawHeaders, { remoteAddress: client.remoteAddress, proto: schemeOf(client), originalPath: req.url ?? '/', trusted: this.d.trusts(client) });
    fields.push('connection', 'upgrade', 'upgrade', req.headers.upgrade!);
    editUpstreamFields(fields, b.mapping!, b.upstream);
    let text = `${req.method ?? 'GET'} ${routed.upstreamPath} HTTP/1.1\r\n`;
    for (let i = 0; i < fields.length; i += 2) text += `${fields[i]}: ${fields[i + 1]}\r\n`;
    const upstream = net.connect({ host: endpoint.host, port: endpoint.port });
    const sent = performance.now();
    let answered = false;
    const fail = (status: number, reason: 'UPSTREAM_CONNECT_FAILURE' | 'UPSTREAM_BAD_RESPONSE' | 'UPSTREAM_RESET', info: string): void => {
      upstream.destroy();
      if (answered || client.destroyed) return;
      answered = true;
      this.d.metrics.request(b, 'rest', 'primary', status, null, since);
      rawAnswer(client, status, reason, info, serverLine(server));
    };
    upstream.setTimeout(this.d.connectTimeoutMs, () => fail(503, 'UPSTREAM_CONNECT_FAILURE', `${b.id} could not be reached within ${this.d.connectTimeoutMs} ms`));
    upstream.on('error', () => (answered ? client.destroy() : fail(503, 'UPSTREAM_CONNECT_FAILURE', `${b.id} could not be reached`)));
    // Closed before its answer head: the client is told, as a reset before the headers is on every route.
    upstream.once('end', () => answered || fail(503, 'UPSTREAM_RESET', `${b.id} closed the connection before answering`));
    client.once('close', () => upstream.destroy());
    // The model closed: what it sent still reaches the client, then its connection closes too.
    upstream.once('close', () => client.destroySoon());
    upstream.once('connect', () => {
      upstream.setTimeout(0);
      upstream.write(`${text}\r\n`, 'latin1');
      if (head.length > 0) upstream.write(head);
    });
    let read: Buffer = Buffer.alloc(0);
    const onHead = (chunk: Buffer): void => {
      read = read.length === 0 ? chunk : Buffer.concat([read, chunk]);
      const end = read.indexOf(HEAD_END);
      if (end < 0) {
        if (read.length > this.d.maxResponseHeaderBytes) fail(502, 'UPSTREAM_BAD_RESPONSE', `${b.id} answered with a response head over the limit`);
        return;
      }
      upstream.off('data', onHead);
      const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(read.toString('latin1', 0, Math.min(end, 64)))?.[1] ?? NaN);
      if (!Number.isInteger(status) || status < 101) {
        fail(502, 'UPSTREAM_BAD_RESPONSE', `${b.id} answered the upgrade with a malformed status line`);
        return;
      }
      answered = true;
      this.d.metrics.request(b, 'rest', 'primary', status, (performance.now() - sent) / 1000, since);
      this.relay(b, client, upstream, answerHead(read.subarray(0, end), b, server), read.subarray(end + 4), status === 101);
    };
    upstream.on('data', onHead);
  };

  /** The model's head (edited) and what followed it to the client, then the bytes both ways (`upgraded`) or the answer's rest until the model closes. */
  private relay(b: Backend, client: Socket, upstream: Socket, head: Buffer, rest: Buffer, upgraded: boolean): void {
    client.write(head);
    if (rest.length > 0) client.write(rest);
    upstream.pipe(client);
    if (upgraded) client.pipe(upstream);
    // A refused upgrade: the model's answer runs until it closes (the client's connection closes after it).
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

/** A raw answer's Server line: the Module's `server_name`, or none. */
const serverLine = (server: string | undefined): string => (server === undefined ? '' : `server: ${server}\r\n`);

/** The model's answer head as the client gets it: as it came, or with the Mapping's answer edits and the Module's `server_name`. */
function answerHead(raw: Buffer, b: Backend, server: string | undefined): Buffer {
  const edits = b.mapping!.responseHeaders;
  if (edits === null && server === undefined) return Buffer.concat([raw, HEAD_END]);
  const lines = raw.toString('latin1').split('\r\n');
  const fields: string[] = [];
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    if (colon > 0) fields.push(line.slice(0, colon), line.slice(colon + 1).trim());
  }
  if (edits !== null) editFields(fields, edits);
  const out = server === undefined ? fields : (withServer(fields, server) as string[]);
  let text = `${lines[0]}\r\n`;
  for (let i = 0; i < out.length; i += 2) text += `${out[i]}: ${out[i + 1]}\r\n`;
  return Buffer.from(`${text}\r\n`, 'latin1');
}
