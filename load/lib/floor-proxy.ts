/**
 * The "floor" baselines of the REST benchmark: the least a Node reverse proxy can do per request,
 * built on one upstream client, so the gateway's cost splits into what the runtime and the client
 * cost (this) and what the gateway's own work adds (routing, header rules, metrics, timeouts,
 * retries, breakers: the gateway row over this one).
 *
 * BENCH_CLIENT=undici: undici's Pool `dispatch` (raw headers, WASM llhttp), the gateway's client until
 * 2026-11 and the well-kept library of the field.
 * BENCH_CLIENT=gateway: the gateway's own client (gateway/upstream/http1-client.ts, from the build that
 * BENCH_GATEWAY_CLIENT names): the gateway row over this one is what the gateway adds to its client.
 * BENCH_CLIENT=node-http: node:http.request on a keep-alive Agent (Node's native llhttp), the other
 * client a Node proxy could use; the two rows price the parser and client hypothesis of issue 15.
 *
 * BENCH_CLIENT=raw: not a usable client, a price: keep-alive net.Sockets that write each request
 * in one write and read answers with a few lines of parsing that know Content-Length bodies only
 * (no chunked, 1xx, HEAD, errors or timeouts). What any client, however lean, could save over
 * undici: the "leaner upstream client" hypothesis of issue 15.
 *
 * All read the body whole (as the gateway does for small bodies), forward the client's headers
 * minus Connection, and stream the answer back with its raw headers. No routing, no limits.
 *
 * Configured by environment (the runner starts it): BENCH_UPSTREAM_PORT, BENCH_CLIENT, BENCH_PORT,
 * BENCH_HOST (default 127.0.0.1); BENCH_TLS_CERT and BENCH_TLS_KEY (PEM files): serve TLS
 * (node:https, ALPN http/1.1, TLS 1.2 minimum), the TLS bench's floor. Prints `listening <port>`
 * once it listens.
 */
import { readFileSync } from 'node:fs';
import http, { type IncomingMessage, type OutgoingHttpHeaders, type ServerResponse } from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { Pool, type Dispatcher } from 'undici';

const upstreamPort = Number(process.env.BENCH_UPSTREAM_PORT);
if (!upstreamPort) throw new Error('BENCH_UPSTREAM_PORT is required');
const client = process.env.BENCH_CLIENT ?? 'undici';
if (client !== 'undici' && client !== 'node-http' && client !== 'raw' && client !== 'gateway') throw new Error(`BENCH_CLIENT: undici, node-http, raw or gateway, not ${client}`);

const pool = new Pool(`http://127.0.0.1:${upstreamPort}`, { connections: 64 });
const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });

/** The client's raw headers without Connection (hop-by-hop): `[name, value, …]`. */
function forwarded(raw: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) if (raw[i]!.toLowerCase() !== 'connection') out.push(raw[i]!, raw[i + 1]!);
  return out;
}

/** The gateway's own client, loaded from its build (the type is the one its source declares). */
type GatewayPool = import('../../gateway/upstream/http1-client.js').Http1Pool;
const gatewayPool: GatewayPool | undefined =
  client === 'gateway'
    ? new ((await import(process.env.BENCH_GATEWAY_CLIENT ?? '')) as typeof import('../../gateway/upstream/http1-client.js')).Http1Pool({
        host: '127.0.0.1',
        port: upstreamPort,
        connections: 64,
        connectTimeoutMs: 5000,
        maxHeadBytes: 64 * 1024,
      })
    : undefined;

/** Streams an answer to `res` with its raw headers (strings, or undici's Buffers) minus the hop's own. */
function relay(res: ServerResponse) {
  return {
    onConnect() {},
    onHeaders(head: number | { readonly status: number; readonly headers: readonly string[] }, undiciRaw?: readonly (string | Buffer)[]) {
      // undici: (status, raw headers as Buffers); the gateway's client: its ResponseHead.
      const status = typeof head === 'number' ? head : head.status;
      const raw = typeof head === 'number' ? undiciRaw! : head.headers;
      const headers: string[] = [];
      for (let i = 0; i < raw.length; i += 2) {
        const name = raw[i]!.toString('latin1');
        const lower = name.toLowerCase();
        if (lower !== 'connection' && lower !== 'keep-alive') headers.push(name, raw[i + 1]!.toString('latin1'));
      }
      res.writeHead(status, headers);
      return true;
    },
    onData(chunk: Buffer) {
      res.write(chunk);
      return true;
    },
    onComplete() {
      res.end();
    },
    onError() {
      res.destroy();
    },
  };
}

function viaUndici(req: IncomingMessage, res: ServerResponse, body: Buffer): void {
  pool.dispatch({ method: req.method as Dispatcher.HttpMethod, path: req.url ?? '/', headers: forwarded(req.rawHeaders), body }, relay(res));
}

function viaGateway(req: IncomingMessage, res: ServerResponse, body: Buffer): void {
  gatewayPool!.dispatch({ method: req.method ?? 'GET', path: req.url ?? '/', headers: forwarded(req.rawHeaders), body, headersTimeout: 0, bodyTimeout: 0 }, relay(res));
}

function viaNodeHttp(req: IncomingMessage, res: ServerResponse, body: Buffer): void {
  const up = http.request({ host: '127.0.0.1', port: upstreamPort, method: req.method, path: req.url, headers: forwarded(req.rawHeaders) as unknown as OutgoingHttpHeaders, agent }, (answer) => {
    const headers: string[] = [];
    const raw = answer.rawHeaders;
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i]!.toLowerCase();
      if (name !== 'connection' && name !== 'keep-alive') headers.push(raw[i]!, raw[i + 1]!);
    }
    res.writeHead(answer.statusCode ?? 502, headers);
    answer.on('data', (chunk: Buffer) => res.write(chunk));
    answer.on('end', () => res.end());
  });
  up.on('error', () => res.destroy());
  up.end(body);
}

/** One keep-alive connection of the raw client, answering one request at a time. */
class RawConnection {
  readonly socket = net.connect(upstreamPort, '127.0.0.1');
  res: ServerResponse | undefined;
  private pending: Buffer | null = null;
  private status = 0;
  private headers: string[] = [];
  /** Body bytes still to come; -1 while the head is being read. */
  private left = -1;

  constructor(private readonly idle: RawConnection[]) {
    this.socket.setNoDelay(true);
    this.socket.on('data', (chunk: Buffer) => this.read(chunk));
    this.socket.on('error', () => this.res?.destroy());
  }

  private read(chunk: Buffer): void {
    let b = this.pending === null ? chunk : Buffer.concat([this.pending, chunk]);
    this.pending = null;
    if (this.left < 0) {
      const end = b.indexOf('\r\n\r\n');
      if (end < 0) {
        this.pending = b;
        return;
      }
      const lines = b.toString('latin1', 0, end).split('\r\n');
      this.status = Number(lines[0]!.slice(9, 12));
      this.headers = [];
      this.left = 0;
      for (let i = 1; i < lines.length; i++) {
        const colon = lines[i]!.indexOf(':');
        const name = lines[i]!.slice(0, colon);
        const value = lines[i]!.slice(colon + 1).trim();
        const lower = name.toLowerCase();
        if (lower === 'content-length') this.left = Number(value);
        if (lower !== 'connection' && lower !== 'keep-alive') this.headers.push(name, value);
      }
      b = b.subarray(end + 4);
      this.res!.writeHead(this.status, this.headers);
    }
    this.left -= b.length;
    if (this.left > 0) {
      this.res!.write(b);
      return;
    }
    const res = this.res!;
    this.res = undefined;
    this.left = -1;
    res.end(b);
    this.idle.push(this);
  }
}
const idleRaw: RawConnection[] = [];

function viaRaw(req: IncomingMessage, res: ServerResponse, body: Buffer): void {
  let head = `${req.method} ${req.url} HTTP/1.1\r\n`;
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    if (name !== 'connection' && name !== 'content-length' && name !== 'transfer-encoding') head += `${raw[i]}: ${raw[i + 1]}\r\n`;
  }
  const c = idleRaw.pop() ?? new RawConnection(idleRaw);
  c.res = res;
  c.socket.write(Buffer.concat([Buffer.from(`${head}content-length: ${body.length}\r\n\r\n`, 'latin1'), body]));
}

const forward = client === 'undici' ? viaUndici : client === 'raw' ? viaRaw : client === 'gateway' ? viaGateway : viaNodeHttp;
const handle = (req: IncomingMessage, res: ServerResponse): void => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => forward(req, res, chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)));
};
const cert = process.env.BENCH_TLS_CERT;
const key = process.env.BENCH_TLS_KEY;
const server =
  cert && key
    ? https.createServer({ keepAliveTimeout: 65_000, cert: readFileSync(cert), key: readFileSync(key), ALPNProtocols: ['http/1.1'], minVersion: 'TLSv1.2' }, handle)
    : http.createServer({ keepAliveTimeout: 65_000 }, handle);
server.listen(Number(process.env.BENCH_PORT ?? 0), process.env.BENCH_HOST ?? '127.0.0.1', () => {
  const address = server.address();
  process.stdout.write(`listening ${typeof address === 'object' && address ? address.port : '?'}\n`);
});
const stop = (): void => {
  server.close(() => process.exit(0));
  server.closeAllConnections();
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
