/**
 * The REST exchange (gateway/edge/rest-exchange.ts) is one contract with three adapters: the lane
 * (edge/http1-lane.ts), Node's HTTP/1.1 server (edge/node-exchange.ts) and HTTP/2
 * (edge/h2-exchange.ts, through rest/h2.ts). One handler, written against the interface only, is
 * served by each over real sockets on 127.0.0.1, and the client checks what it received:
 *   - the request head, peer and body as the handler read them, and the answer's status, headers
 *     and body (a flat header list with a reason, a Content-Length);
 *   - an answer written in pieces without a length arrives whole;
 *   - an answer destroyed after its head is never taken for a complete one;
 *   - 'close' comes once after the answer, and when the client goes away first;
 *   - a client that does not read makes `write` say so, and 'drain' resumes the answer, which
 *     arrives whole;
 *   - `connectionKey` is one object for every request of a connection and another for each other
 *     connection (the JWT check's memo of a connection's last token keys on it).
 */
import { once } from 'node:events';
import http from 'node:http';
import http2 from 'node:http2';
import net, { type AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RestRequest, RestResponse } from '../../../gateway/edge/rest-exchange.js';
import { isWhole } from '../../../gateway/wire/message-body.js';
import { Http1Lane } from '../../../gateway/edge/http1-lane.js';
import { NODE_EXCHANGE } from '../../../gateway/edge/node-exchange.js';
import { GatewayMetrics } from '../../../gateway/observe/metrics.js';
import { H2Rest } from '../../../gateway/rest/h2.js';
import { waitFor } from '../../helpers/gateway.js';

/** What the handler saw of the exchange, by event. */
type Events = string[];

/** The answer that makes a client not reading fill every buffer on the way (loopback's included). */
const LARGE_BYTES = 48 * 1024 * 1024;
const CHUNK = Buffer.alloc(64 * 1024, 97);

function readBody(req: RestRequest): Promise<Buffer> {
  const body = req.body;
  if (isWhole(body)) return Promise.resolve(body ?? Buffer.alloc(0));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    body.on('data', (c: Buffer) => chunks.push(c));
    body.once('end', () => resolve(Buffer.concat(chunks)));
    body.once('error', reject);
  });
}

/** The one handler every adapter serves: it knows the interface only. */
function contract(events: Events, blocked: () => void): (req: RestRequest, res: RestResponse) => void {
  /** Each connection key seen, numbered in the order of its first request. */
  const keys = new Map<object, number>();
  return (req, res) => {
    const path = req.url;
    events.push(`got ${path}`);
    res.once('close', () => events.push(`close ${path} ended=${res.writableEnded}`));
    if (path === '/connection') {
      if (!keys.has(req.connectionKey)) keys.set(req.connectionKey, keys.size);
      const n = String(keys.get(req.connectionKey));
      res.writeHead(200, ['content-type', 'text/plain', 'content-length', String(n.length)]);
      res.end(n);
    } else if (path.startsWith('/head')) {
      void readBody(req).then((body) => {
        const i = req.rawHeaders.findIndex((n, j) => j % 2 === 0 && n.toLowerCase() === 'x-test');
        const seen = JSON.stringify({
          method: req.method,
          url: req.url,
          host: req.host,
          header: req.headers['x-test'],
          raw: i < 0 ? null : req.rawHeaders[i + 1],
          peer: req.socket.remoteAddress,
          version: req.httpVersionMajor,
          complete: req.complete,
          body: body.toString(),
          headersSent: res.headersSent,
        });
        res.writeHead(201, 'Made', ['content-type', 'application/json', 'x-seen', 'yes', 'content-length', String(Buffer.byteLength(seen))]);
        res.end(seen);
        events.push(`ended /head headersSent=${res.headersSent} writableEnded=${res.writableEnded} bodyBytes=${res.bodyBytes}`);
      });
    } else if (path === '/pieces') {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write(Buffer.from('ab'));
      res.write(Buffer.from('cd'));
      res.end('ef');
    } else if (path === '/cut') {
      res.writeHead(200, ['content-length', '10']);
      res.write(Buffer.from('abc'));
      res.destroy();
    } else if (path === '/large') {
      res.writeHead(200, ['content-type', 'application/octet-stream']);
      let sent = 0;
      const next = (): void => {
        if (sent >= LARGE_BYTES) {
          res.end();
          return;
        }
        sent += CHUNK.length;
        if (res.write(CHUNK)) setImmediate(next);
        else {
          events.push('blocked');
          blocked();
          res.once('drain', () => {
            events.push('drain');
            next();
          });
        }
      };
      next();
    }
    // '/hold': never answered; the client goes away.
  };
}

interface Sent {
  readonly method: string;
  readonly path: string;
  readonly headers?: Record<string, string>;
  readonly body?: string;
  /** Read the answer's body only once this settles. */
  readonly readAfter?: Promise<void>;
  /** Go away once this settles, without reading. */
  readonly leaveAfter?: Promise<void>;
}

interface Received {
  readonly status: number | undefined;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: Buffer;
  /** The answer ended as a whole one (its framing said so), not cut or reset. */
  readonly complete: boolean;
}

function h1Client(port: number, sent: Sent): Promise<Received> {
  return new Promise((resolve) => {
    let status: number | undefined;
    let headers: Received['headers'] = {};
    const chunks: Buffer[] = [];
    const done = (complete: boolean): void => resolve({ status, headers, body: Buffer.concat(chunks), complete });
    const req = http.request({ host: '127.0.0.1', port, method: sent.method, path: sent.path, headers: sent.headers, agent: false }, (res) => {
      status = res.statusCode;
      headers = res.headers;
      res.once('error', () => undefined);
      res.once('close', () => done(res.complete));
      void (sent.readAfter ?? Promise.resolve()).then(() => res.on('data', (c: Buffer) => chunks.push(c)));
    });
    req.once('error', () => done(false));
    void sent.leaveAfter?.then(() => req.destroy());
    req.end(sent.body);
  });
}

function h2Client(port: number, sent: Sent): Promise<Received> {
  return new Promise((resolve) => {
    const session = http2.connect(`http://127.0.0.1:${port}`);
    session.on('error', () => undefined);
    let status: number | undefined;
    let headers: Received['headers'] = {};
    const chunks: Buffer[] = [];
    let ended = false;
    const stream = session.request({ ':method': sent.method, ':path': sent.path, ...sent.headers });
    stream.once('response', (h) => {
      status = Number(h[':status']);
      headers = h;
      void (sent.readAfter ?? Promise.resolve()).then(() => stream.on('data', (c: Buffer) => chunks.push(c)));
    });
    stream.once('end', () => (ended = true));
    stream.once('error', () => undefined);
    stream.once('close', () => {
      session.close();
      resolve({ status, headers, body: Buffer.concat(chunks), complete: ended && stream.rstCode === http2.constants.NGHTTP2_NO_ERROR });
    });
    void sent.leaveAfter?.then(() => stream.close(http2.constants.NGHTTP2_CANCEL));
    stream.end(sent.body);
  });
}

/** The number the handler gave each request's connection key: `requests` GETs of '/connection' on each of `connections` connections, one after another. */
async function connectionNumbers(port: number, version: number, connections: number, requests: number): Promise<string[][]> {
  const numbers: string[][] = [];
  for (let c = 0; c < connections; c++) {
    const seen: string[] = [];
    if (version === 2) {
      const session = http2.connect(`http://127.0.0.1:${port}`);
      session.on('error', () => undefined);
      for (let r = 0; r < requests; r++) {
        const stream = session.request({ ':method': 'GET', ':path': '/connection' });
        const chunks: Buffer[] = [];
        stream.on('data', (b: Buffer) => chunks.push(b));
        await once(stream, 'end');
        seen.push(Buffer.concat(chunks).toString());
      }
      session.close();
    } else {
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      for (let r = 0; r < requests; r++) {
        const res = await new Promise<http.IncomingMessage>((resolve, reject) => http.get({ host: '127.0.0.1', port, path: '/connection', agent }, resolve).once('error', reject));
        const chunks: Buffer[] = [];
        res.on('data', (b: Buffer) => chunks.push(b));
        await once(res, 'end');
        seen.push(Buffer.concat(chunks).toString());
      }
      agent.destroy();
    }
    numbers.push(seen);
  }
  return numbers;
}

interface Side {
  readonly name: string;
  readonly port: number;
  readonly version: number;
  readonly events: Events;
  /** Settles when a '/large' answer first had to wait for the client. */
  blocked: Promise<void>;
  send(sent: Sent): Promise<Received>;
  close(): Promise<void>;
}

async function listening(server: net.Server): Promise<number> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as AddressInfo).port;
}

/** One side: its server built around the contract's handler. */
async function side(name: string, version: number, serve: (handler: (req: RestRequest, res: RestResponse) => void) => net.Server): Promise<Side> {
  const events: Events = [];
  let unblock = (): void => undefined;
  const s: Side = {
    name,
    get port() {
      return port;
    },
    version,
    events,
    blocked: new Promise<void>((r) => (unblock = r)),
    send: (sent) => (version === 2 ? h2Client(port, sent) : h1Client(port, sent)),
    close: async () => {
      server.close();
      (server as { closeAllConnections?: () => void }).closeAllConnections?.();
    },
  };
  const server = serve(contract(events, () => unblock()));
  const port = await listening(server);
  return s;
}

const sides: Side[] = [];

beforeAll(async () => {
  sides.push(
    await side('the lane', 1, (handler) => {
      const lane = new Http1Lane({
        maxHeadBytes: 16384,
        maxHeaders: 100,
        maxBodyBytes: 65536,
        bodyLimitBytes: 0,
        keepAliveTimeoutMs: 5000,
        headerTimeoutMs: 5000,
        requestTimeoutMs: 5000,
        route: () => handler,
        handOff: (socket) => socket.destroy(),
        timedOut: (socket) => socket.destroy(),
        bodyRefused: (socket) => socket.destroy(),
      });
      return net.createServer((socket) => lane.connection(socket));
    }),
    await side("Node's HTTP/1.1 server", 1, (handler) => http.createServer({ ...NODE_EXCHANGE }, handler)),
    await side('HTTP/2', 2, (handler) => {
      const rest = new H2Rest({ edge: { maxHeaderBytes: 16384, clientRequestTimeoutMs: 0 }, metrics: new GatewayMetrics(), serve: handler });
      const server = http2.createServer();
      server.on('stream', (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, _flags: number, rawHeaders: string[]) => rest.stream(stream, headers, rawHeaders));
      return server;
    }),
  );
});

afterAll(async () => {
  for (const s of sides) await s.close();
});

describe.each(['the lane', "Node's HTTP/1.1 server", 'HTTP/2'])('the REST exchange contract: %s', (name) => {
  const s = (): Side => sides.find((x) => x.name === name)!;

  it('reads the head, peer and body, and writes a flat head with a length', async () => {
    const got = await s().send({ method: 'POST', path: '/head/a?x=1', headers: { 'x-test': 'one', 'content-type': 'text/plain' }, body: 'hello' });
    expect(got.status).toBe(201);
    expect(got.headers['content-type']).toBe('application/json');
    expect(got.headers['x-seen']).toBe('yes');
    expect(got.complete).toBe(true);
    const seen = JSON.parse(got.body.toString());
    expect(seen).toEqual({
      method: 'POST',
      url: '/head/a?x=1',
      host: expect.stringMatching(/^127\.0\.0\.1:\d+$/),
      header: 'one',
      raw: 'one',
      peer: '127.0.0.1',
      version: s().version,
      complete: true,
      body: 'hello',
      headersSent: false,
    });
    expect(Number(got.headers['content-length'])).toBe(got.body.length);
    await waitFor(() => s().events.includes('close /head/a?x=1 ended=true'));
    expect(s().events).toContain(`ended /head headersSent=true writableEnded=true bodyBytes=${got.body.length}`);
    expect(s().events.filter((e) => e.startsWith('close /head/a')).length).toBe(1);
  });

  it('the requests of one connection share its connection key; each other connection has its own', async () => {
    const numbers = await connectionNumbers(s().port, s().version, 2, 3);
    expect(numbers).toEqual([
      ['0', '0', '0'],
      ['1', '1', '1'],
    ]);
  });

  it('an answer written in pieces without a length arrives whole', async () => {
    const got = await s().send({ method: 'GET', path: '/pieces' });
    expect(got.status).toBe(200);
    expect(got.headers['content-type']).toBe('text/plain');
    expect(got.body.toString()).toBe('abcdef');
    expect(got.complete).toBe(true);
  });

  it('an answer destroyed after its head never reaches the client as a whole one', async () => {
    const got = await s().send({ method: 'GET', path: '/cut' });
    expect(got.complete).toBe(false);
    expect(got.body.length).toBeLessThan(10);
    await waitFor(() => s().events.includes('close /cut ended=false'));
  });

  it("'close' comes when the client goes away before the answer", async () => {
    let leave = (): void => undefined;
    const left = new Promise<void>((r) => (leave = r));
    const answer = s().send({ method: 'GET', path: '/hold', leaveAfter: left });
    await waitFor(() => s().events.includes('got /hold'));
    leave();
    const got = await answer;
    expect(got.complete).toBe(false);
    await waitFor(() => s().events.includes('close /hold ended=false'));
  });

  it("a client that does not read: write says so, 'drain' resumes, and the answer arrives whole", async () => {
    const got = await s().send({ method: 'GET', path: '/large', readAfter: s().blocked });
    expect(s().events).toContain('blocked');
    expect(s().events).toContain('drain');
    expect(got.status).toBe(200);
    expect(got.complete).toBe(true);
    expect(got.body.length).toBe(LARGE_BYTES);
    expect(got.body.every((b) => b === 97)).toBe(true);
  }, 60_000);
});
