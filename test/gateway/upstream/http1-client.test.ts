/**
 * The REST upstream client (gateway/upstream/http1-client.ts) against real sockets: the recording
 * upstream (test/fixtures/recording-upstream.ts) reads every request byte for byte and answers
 * with exact bytes, so each test states what the model received and what the handler heard.
 */
import { once } from 'node:events';
import { rmSync } from 'node:fs';
import https from 'node:https';
import net, { type AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Http1Pool, type ResponseHandler, type ResponseHead, type UpstreamAttempt } from '../../../gateway/upstream/http1-client.js';
import type { UpstreamRequest } from '../../../gateway/upstream/request-head.js';
import { startRecordingUpstream, type RecordingUpstream } from '../../fixtures/recording-upstream.js';
import { freePort } from '../../helpers/net.js';
import { waitFor } from '../../helpers/gateway.js';
import { sleep } from '../../helpers/wait.js';
import { certDir, makeCa } from '../../helpers/tls-certs.js';

interface Outcome {
  status: number;
  reason: string;
  headers: string[];
  body: Buffer;
  error: (Error & { code?: string }) | undefined;
  /** Handler calls after the first onComplete/onError (must stay 0). */
  extra: number;
}

/** A handler that records everything; `pauseAfter`: return false from the first onData, resume after `resumeMs`. */
class Recorder implements ResponseHandler {
  attempt: UpstreamAttempt | undefined;
  readonly out: Outcome = { status: 0, reason: '', headers: [], body: Buffer.alloc(0), error: undefined, extra: 0 };
  private readonly chunks: Buffer[] = [];
  private ended = false;
  readonly done: Promise<Outcome>;
  private resolve!: (o: Outcome) => void;
  paused = 0;

  constructor(private readonly o: { pauseMs?: number } = {}) {
    this.done = new Promise((r) => (this.resolve = r));
  }
  onConnect(attempt: UpstreamAttempt): void {
    this.attempt = attempt;
  }
  onHeaders(head: ResponseHead): boolean {
    if (this.ended) this.out.extra++;
    Object.assign(this.out, { status: head.status, headers: head.headers, reason: head.reason });
    return true;
  }
  onData(chunk: Buffer): boolean {
    if (this.ended) this.out.extra++;
    this.chunks.push(Buffer.from(chunk));
    if (this.o.pauseMs !== undefined && this.paused === 0) {
      this.paused++;
      // The pause is the case (backpressure): the handler holds the answer this long.
      setTimeout(() => this.attempt!.resume(), this.o.pauseMs);
      return false;
    }
    return true;
  }
  onComplete(): void {
    this.end();
  }
  onError(err: Error & { code?: string }): void {
    this.out.error = err;
    this.end();
  }
  private end(): void {
    if (this.ended) {
      this.out.extra++;
      return;
    }
    this.ended = true;
    this.out.body = Buffer.concat(this.chunks);
    this.resolve(this.out);
  }
}

const req = (o: Partial<UpstreamRequest> = {}): UpstreamRequest => ({ method: 'GET', path: '/p', headers: ['Host', 'model.example'], body: null, headersTimeout: 5000, bodyTimeout: 5000, ...o });

function send(pool: Http1Pool, r: UpstreamRequest, o?: { pauseMs?: number }): Recorder {
  const h = new Recorder(o);
  pool.dispatch(r, h);
  return h;
}

let up: RecordingUpstream;
const pools: Http1Pool[] = [];
function pool(o: Partial<ConstructorParameters<typeof Http1Pool>[0]> = {}): Http1Pool {
  const p = new Http1Pool({ host: '127.0.0.1', port: up.port, connections: 8, connectTimeoutMs: 2000, maxHeadBytes: 16 * 1024, ...o });
  pools.push(p);
  return p;
}

beforeAll(async () => {
  up = await startRecordingUpstream({ name: 'model' });
});
afterAll(async () => {
  await up.close();
});
afterEach(async () => {
  up.setResponder(undefined);
  for (const p of pools.splice(0)) await p.destroy();
});

type ModelBehaviour = 'answer' | 'reset' | 'close' | 'partial-reset';

/**
 * The recording upstream as a keep-alive model that decides, per request (its connection's number
 * in this test, from 0, and the request's number on it), to answer `answer <conn>.<n>`, to reset
 * the connection (as a server closing it with our request unread does), to read the request and
 * close (FIN), or to begin an answer and reset. `read` lists the requests it did not reset.
 */
function keepAliveModel(behave: (conn: number, n: number) => ModelBehaviour): { read: { conn: number; head: string; body: string }[] } {
  const read: { conn: number; head: string; body: string }[] = [];
  const conns = new Map<number, number>();
  up.setResponder((r) => {
    if (!conns.has(r.connection)) conns.set(r.connection, conns.size);
    const conn = conns.get(r.connection)!;
    const behaviour = behave(conn, r.indexOnConnection);
    if (behaviour === 'reset') return { reset: true };
    read.push({ conn, head: r.requestLine, body: r.body.toString('latin1') });
    if (behaviour === 'close') return { raw: Buffer.alloc(0) };
    if (behaviour === 'partial-reset') return { headers: [['Content-Length', '100']], body: 'part', framing: 'none', resetAfter: true };
    return { body: `answer ${conn}.${r.indexOnConnection}` };
  });
  return { read };
}

describe('upstream client: what the model receives', () => {
  it('a GET: request line, the caller headers in order and case, then keep-alive; nothing else', async () => {
    const before = up.requests.length;
    const o = await send(pool(), req({ path: '/seldon/ns/m/api/v1.0/predictions?x=%20y', headers: ['X-B', 'b', 'Host', 'model.example', 'x-a', ' spaced  value'] })).done;
    expect(o.error).toBeUndefined();
    const r = up.requests[before]!;
    expect(r.rawHead.toString('latin1')).toBe('GET /seldon/ns/m/api/v1.0/predictions?x=%20y HTTP/1.1\r\nX-B: b\r\nHost: model.example\r\nx-a:  spaced  value\r\nconnection: keep-alive\r\n\r\n');
  });

  it("a buffered POST body: its exact bytes with their own Content-Length (the caller's length and framing are replaced)", async () => {
    const body = Buffer.from('{"data":{"ndarray":[[1,2]]}}\u00e9', 'utf8');
    const before = up.requests.length;
    await send(pool(), req({ method: 'POST', body, headers: ['Host', 'h', 'Content-Length', '999', 'Transfer-Encoding', 'chunked', 'Connection', 'x-hop'] })).done;
    const r = up.requests[before]!;
    expect(r.rawHead.toString('latin1')).toBe(`POST /p HTTP/1.1\r\nHost: h\r\ncontent-length: ${body.length}\r\nconnection: keep-alive\r\n\r\n`);
    expect(r.body.equals(body)).toBe(true);
  });

  it('a 1 MiB buffered body (sent as a second chunk) arrives whole', async () => {
    const body = Buffer.alloc(1024 * 1024);
    for (let i = 0; i < body.length; i++) body[i] = (i * 31) & 255;
    const before = up.requests.length;
    const o = await send(pool(), req({ method: 'PUT', body })).done;
    expect(o.status).toBe(200);
    expect(up.requests[before]!.body.equals(body)).toBe(true);
  });

  it('POST without a body gets Content-Length: 0; GET without one gets no framing; no Host: the address', async () => {
    const p = pool();
    const before = up.requests.length;
    await send(p, req({ method: 'POST', headers: [] })).done;
    await send(p, req({ method: 'DELETE', headers: ['Content-Length', '0'] })).done;
    expect(up.requests[before]!.rawHead.toString('latin1')).toBe(`POST /p HTTP/1.1\r\nhost: 127.0.0.1:${up.port}\r\ncontent-length: 0\r\nconnection: keep-alive\r\n\r\n`);
    expect(up.requests[before + 1]!.rawHead.toString('latin1')).toBe(`DELETE /p HTTP/1.1\r\nhost: 127.0.0.1:${up.port}\r\nconnection: keep-alive\r\n\r\n`);
  });

  it('a stream body without a declared length goes chunked; with one, as is', async () => {
    const parts = ['alpha-', 'beta-', '', 'gamma'];
    const before = up.requests.length;
    await send(pool(), req({ method: 'POST', body: Readable.from(parts.map((s) => Buffer.from(s))) })).done;
    const chunked = up.requests[before]!;
    expect(chunked.chunked).toBe(true);
    expect(chunked.body.toString()).toBe('alpha-beta-gamma');
    await send(pool(), req({ method: 'POST', headers: ['Host', 'h', 'Content-Length', '16'], body: Readable.from(parts.map((s) => Buffer.from(s))) })).done;
    const sized = up.requests[before + 1]!;
    expect(sized.chunked).toBe(false);
    expect(sized.rawHead.toString('latin1')).toContain('\r\ncontent-length: 16\r\n');
    expect(sized.body.toString()).toBe('alpha-beta-gamma');
  });

  it('a stream body longer or shorter than its declared length fails the request, and the connection is not reused', async () => {
    const p = pool();
    const long = await send(p, req({ method: 'POST', headers: ['Content-Length', '3'], body: Readable.from([Buffer.from('abcdef')]) })).done;
    expect(long.error?.code).toBe('UPSTREAM_INVALID_REQUEST');
    const short = await send(p, req({ method: 'POST', headers: ['Content-Length', '30'], body: Readable.from([Buffer.from('abc')]) })).done;
    expect(short.error?.code).toBe('UPSTREAM_INVALID_REQUEST');
    const after = await send(p, req()).done;
    expect(after.status).toBe(200);
  });

  it('a stream body that fails after its request was abandoned is not an uncaught error (it would end the worker)', async () => {
    let uncaught: unknown;
    const onUncaught = (err: unknown): void => {
      uncaught = err;
    };
    process.prependListener('uncaughtException', onUncaught);
    try {
      const body = new Readable({ read: () => undefined });
      const before = up.requests.length;
      const h = send(pool(), req({ method: 'POST', body }));
      body.push(Buffer.from('part'));
      // The request is under way: the model has its head.
      await waitFor(() => h.attempt !== undefined && up.requests.length > before);
      h.attempt!.abort(new Error('client gone'));
      expect((await h.done).error?.message).toBe('client gone');
      // (Not events.once: it would listen for the 'error' itself.)
      const closed = new Promise((r) => body.once('close', r));
      body.destroy(new Error('the client closed the connection before the request body ended'));
      // Its 'error' (uncaught, if nobody listened) comes before its 'close'.
      await closed;
      expect(uncaught).toBeUndefined();
    } finally {
      process.off('uncaughtException', onUncaught);
    }
  });

  it('a header or path that could split the head is refused before anything is sent', async () => {
    const p = pool();
    const conns = up.connections();
    const before = up.requests.length;
    for (const bad of [
      req({ headers: ['X-A', 'a\r\nX-Injected: 1'] }),
      req({ headers: ['X-A', 'a\nb'] }),
      req({ headers: ['X-A', 'nul\u0000'] }),
      req({ headers: ['X A', 'v'] }),
      req({ headers: ['X-A', 'wide \u0100'] }),
      req({ path: '/p HTTP/1.1\r\nX: y' }),
      req({ path: '/caf\u0100' }),
      req({ method: 'GE T' }),
    ]) {
      expect((await send(p, bad).done).error?.code).toBe('UPSTREAM_INVALID_REQUEST');
    }
    await sleep(50);
    expect(up.requests.length).toBe(before);
    expect(up.connections()).toBe(conns);
  });
});

describe('upstream client: answers and connections', () => {
  it('passes the answer on as received: status, reason, raw headers, body', async () => {
    up.setResponder(() => ({
      statusLine: "HTTP/1.1 418 I'm a teapot",
      headers: [
        ['X-Model', 'm'],
        ['set-cookie', 'a=1'],
        ['Set-Cookie', 'b=2'],
      ],
      body: 'short and stout',
    }));
    const o = await send(pool(), req()).done;
    expect(o).toMatchObject({ status: 418, reason: "I'm a teapot", headers: ['X-Model', 'm', 'set-cookie', 'a=1', 'Set-Cookie', 'b=2', 'Content-Length', '15'], extra: 0 });
    expect(o.body.toString()).toBe('short and stout');
  });

  it('keep-alive: sequential requests share one connection; Connection: close, close-delimited and trailing bytes do not', async () => {
    const p = pool();
    const c0 = up.connections();
    for (let i = 0; i < 5; i++) expect((await send(p, req()).done).status).toBe(200);
    expect(up.connections() - c0).toBe(1);
    up.setResponder(() => ({ body: 'bye', close: true }));
    await send(p, req()).done;
    up.setResponder(() => ({ body: 'until close', framing: 'close' }));
    const untilClose = await send(p, req()).done;
    expect(untilClose.body.toString()).toBe('until close');
    up.setResponder(() => ({ raw: Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA') }));
    expect((await send(p, req()).done).body.toString()).toBe('ok');
    up.setResponder(undefined);
    const c1 = up.connections();
    await send(p, req()).done;
    await send(p, req()).done;
    // The first connection carried six requests; each of the three answers above ended its connection.
    expect(c1 - c0).toBe(3);
    expect(up.connections() - c1).toBe(1);
  });

  it('HEAD, 204 and 304 answers end at their head; the connection is reused unless the head announced a body', async () => {
    const p = pool();
    const c0 = up.connections();
    // `/n`: Content-Length n (none for -1); a model that sends one may still send that body, which the next request would read.
    const said = (target: string): [string, string][] => (target.endsWith('/-1') ? [] : [['Content-Length', target.slice(target.lastIndexOf('/') + 1)]]);
    up.setResponder((r) =>
      r.method === 'HEAD'
        ? { headers: said(r.target), framing: 'none' }
        : { statusLine: r.target.startsWith('/204') ? 'HTTP/1.1 204 No Content' : 'HTTP/1.1 304 Not Modified', headers: said(r.target), framing: 'none' },
    );
    const head = await send(p, req({ method: 'HEAD', path: '/1234' })).done;
    expect(head).toMatchObject({ status: 200, error: undefined, headers: ['Content-Length', '1234'] });
    expect(head.body.length).toBe(0);
    expect((await send(p, req({ path: '/204/99' })).done).status).toBe(204);
    expect((await send(p, req({ path: '/304/99' })).done).status).toBe(304);
    expect(up.connections() - c0).toBe(3);
    expect((await send(p, req({ method: 'HEAD', path: '/-1' })).done).status).toBe(200);
    expect((await send(p, req({ method: 'HEAD', path: '/0' })).done).status).toBe(200);
    expect((await send(p, req({ path: '/204/-1' })).done).status).toBe(204);
    expect((await send(p, req({ path: '/304/-1' })).done).status).toBe(304);
    expect(up.connections() - c0).toBe(4);
  });

  it('interim 100 and 103 answers are skipped', async () => {
    up.setResponder(() => ({ raw: Buffer.from('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfinal') }));
    const o = await send(pool(), req()).done;
    expect(o).toMatchObject({ status: 200, headers: ['Content-Length', '5'], extra: 0 });
    expect(o.body.toString()).toBe('final');
  });

  it('a chunked answer dripped over 20 reads is decoded whole', async () => {
    const body = Buffer.from('x'.repeat(5000));
    up.setResponder(() => ({ body, framing: 'chunked', chunkSize: 250, dripMs: 2 }));
    const o = await send(pool(), req()).done;
    expect(o.body.equals(body)).toBe(true);
  });

  it('backpressure: a handler that returns false stops reading until it resumes, and still gets every byte', async () => {
    const body = Buffer.alloc(8 * 1024 * 1024, 3);
    up.setResponder(() => ({ body }));
    const started = Date.now();
    const h = send(pool(), req(), { pauseMs: 300 });
    const o = await h.done;
    expect(h.paused).toBe(1);
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);
    expect(o.body.equals(body)).toBe(true);
  });

  it('at most `connections` at once; the rest wait in order and are all answered', async () => {
    up.setResponder(async (r) => {
      await sleep(30);
      return { body: r.target };
    });
    const p = pool({ connections: 2 });
    const c0 = up.connections();
    const hs = Array.from({ length: 7 }, (_, i) => send(p, req({ path: `/q${i}` })));
    const outs = await Promise.all(hs.map((h) => h.done));
    expect(outs.map((o) => o.body.toString())).toEqual(Array.from({ length: 7 }, (_, i) => `/q${i}`));
    expect(up.connections() - c0).toBe(2);
  });

  it('abort: a queued request is never sent; one in flight closes its connection; the handler hears one error each', async () => {
    let answeredLate!: () => void;
    const late = new Promise<void>((r) => (answeredLate = r));
    up.setResponder(async () => {
      await sleep(300); // a slow model: the first request is still in flight when it is aborted
      answeredLate();
      return { body: 'late' };
    });
    const p = pool({ connections: 1 });
    const before = up.requests.length;
    const inFlight = send(p, req({ path: '/first' }));
    const queued = send(p, req({ path: '/queued' }));
    // The first is at the model (its one connection busy), the second queued.
    await waitFor(() => up.requests.length > before);
    queued.attempt!.abort(new Error('client gone'));
    inFlight.attempt!.abort(new Error('timeout'));
    expect((await queued.done).error?.message).toBe('client gone');
    expect((await inFlight.done).error?.message).toBe('timeout');
    up.setResponder(undefined);
    expect((await send(p, req({ path: '/after' })).done).status).toBe(200);
    // The model has given its late answer to /first: nothing more can come for the aborted ones.
    await late;
    expect(up.requests.slice(before).map((r) => r.target)).toEqual(['/first', '/after']);
    expect(inFlight.out.extra + queued.out.extra).toBe(0);
  });

  it('server trouble has a code: refused, closed before answering, closed mid-body, a garbage answer, an oversized head', async () => {
    const refused = await send(new Http1Pool({ host: '127.0.0.1', port: await freePort(), connections: 1, connectTimeoutMs: 1000, maxHeadBytes: 1024 }), req()).done;
    expect(refused.error?.code).toBe('ECONNREFUSED');
    const p = pool({ maxHeadBytes: 1024 });
    up.setResponder(() => ({ reset: true }));
    expect((await send(p, req()).done).error?.code).toMatch(/^(UPSTREAM_CLOSED|ECONNRESET)$/);
    up.setResponder(() => ({ headers: [['Content-Length', '100']], body: 'only some', framing: 'none', close: true }));
    const cut = await send(p, req()).done;
    expect(cut.status).toBe(200);
    expect(cut.error?.code).toBe('UPSTREAM_CLOSED');
    expect(cut.error?.message).toMatch(/before the answer ended/);
    up.setResponder(() => ({ raw: Buffer.from('SMTP ready\r\n\r\n') }));
    expect((await send(p, req()).done).error?.code).toBe('UPSTREAM_BAD_RESPONSE');
    up.setResponder(() => ({ headers: [['X-Big', 'b'.repeat(2000)]] }));
    expect((await send(p, req()).done).error?.code).toBe('UPSTREAM_HEADERS_OVERFLOW');
    up.setResponder(undefined);
    expect((await send(p, req()).done).status).toBe(200);
  });

  it('timeouts: no head within headersTimeout; a body that pauses longer than bodyTimeout; a handshake that never ends', async () => {
    const p = pool();
    up.setResponder(async () => {
      await sleep(400); // a model slower than the head timeout below: the case
      return { body: 'late' };
    });
    expect((await send(p, req({ headersTimeout: 100 })).done).error?.code).toBe('UPSTREAM_HEADERS_TIMEOUT');
    up.setResponder(() => ({ body: 'a'.repeat(10), chunkSize: 5, dripMs: 400 }));
    const slow = await send(p, req({ bodyTimeout: 100 })).done;
    expect(slow.status).toBe(200);
    expect(slow.error?.code).toBe('UPSTREAM_BODY_TIMEOUT');
    // Drips within the allowance pass, however long the whole body takes.
    up.setResponder(() => ({ body: 'b'.repeat(8), chunkSize: 2, dripMs: 60 }));
    expect((await send(p, req({ bodyTimeout: 200 })).done).body.toString()).toBe('bbbbbbbb');
    // A TLS upstream that accepts but never answers the handshake: the connect timeout.
    const silent = net.createServer(() => undefined);
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const t = new Http1Pool({ host: '127.0.0.1', port: (silent.address() as AddressInfo).port, connections: 1, connectTimeoutMs: 150, maxHeadBytes: 1024, tls: { rejectUnauthorized: false } });
    expect((await send(t, req()).done).error?.code).toBe('UPSTREAM_CONNECT_TIMEOUT');
    await t.destroy();
    silent.close();
  });

  it('keep-alive hints: a server announcing timeout=1 is not reused; an idle connection the server closes is forgotten', async () => {
    const p = pool();
    up.setResponder(() => ({ headers: [['Keep-Alive', 'timeout=1']], body: 'x' }));
    const c0 = up.connections();
    await send(p, req()).done;
    await send(p, req()).done;
    expect(up.connections() - c0).toBe(2);
    // The server closes idle connections: the next request gets a fresh one and succeeds.
    up.setResponder(() => ({ body: 'then closed', close: true }));
    await send(p, req()).done;
    up.setResponder(undefined);
    expect((await send(p, req()).done).status).toBe(200);
  });

  it('a request on a reused connection the server resets unread is sent once more, on a new connection (gunicorn closing it as idle)', async () => {
    const m = keepAliveModel((conn, n) => (conn === 0 && n === 1 ? 'reset' : 'answer'));
    let replays = 0;
    const p = pool({ replayed: () => replays++ });
    expect((await send(p, req({ path: '/first' })).done).body.toString()).toBe('answer 0.0');
    const again = await send(p, req({ method: 'POST', path: '/second', body: Buffer.from('{"data":1}') })).done;
    expect(again).toMatchObject({ status: 200, error: undefined, extra: 0 });
    expect(again.body.toString()).toBe('answer 1.0');
    expect(replays).toBe(1);
    // What the model read: the first request, then the second once, whole, on the new connection.
    expect(m.read).toEqual([
      { conn: 0, head: 'GET /first HTTP/1.1', body: '' },
      { conn: 1, head: 'POST /second HTTP/1.1', body: '{"data":1}' },
    ]);
  });

  it('no second send when it could have been read or cannot be sent again: a close without reset, a new connection, a stream body, an answer begun, a second reset', async () => {
    const cases: { name: string; behave: (conn: number, n: number) => ModelBehaviour; body?: () => UpstreamRequest['body']; code: RegExp; reads: number }[] = [
      // The server read the request and closed: it may have acted on it.
      { name: 'close', behave: (c, n) => (n === 1 ? 'close' : 'answer'), code: /^UPSTREAM_CLOSED$/, reads: 2 },
      // A reset on the request's first connection is the request's failure.
      { name: 'fresh reset', behave: (c) => (c === 1 ? 'reset' : 'answer'), code: /^ECONNRESET$/, reads: 2 },
      { name: 'stream body', behave: (c, n) => (n === 1 ? 'reset' : 'answer'), body: () => Readable.from([Buffer.from('streamed')]), code: /^(ECONNRESET|EPIPE)$/, reads: 1 },
      { name: 'answer begun', behave: (c, n) => (n === 1 ? 'partial-reset' : 'answer'), code: /^(ECONNRESET|UPSTREAM_CLOSED)$/, reads: 2 },
      // The second send is on a new connection; a reset there is not sent a third time.
      { name: 'reset twice', behave: (c, n) => (c === 0 && n === 1 ? 'reset' : c === 1 ? 'reset' : 'answer'), code: /^ECONNRESET$/, reads: 1 },
    ];
    for (const k of cases) {
      const m = keepAliveModel(k.behave);
      let replays = 0;
      const p = pool({ replayed: () => replays++ });
      expect((await send(p, req()).done).status, k.name).toBe(200);
      // The 'fresh reset' case: the first connection is busy, so the second request opens another.
      const held = k.name === 'fresh reset' ? send(p, req({ path: '/slow' })) : undefined;
      const o = await send(p, req({ method: 'POST', path: '/x', body: k.body?.() ?? Buffer.from('once') })).done;
      expect(o.error?.code, k.name).toMatch(k.code);
      expect(o.extra, k.name).toBe(0);
      expect(replays, k.name).toBe(k.name === 'reset twice' ? 1 : 0);
      expect(m.read.length, k.name).toBe(k.reads);
      await held?.done;
      await p.destroy();
    }
  });

  it('bytes on an idle connection close it; the next request is unaffected', async () => {
    let first: net.Socket | undefined;
    let strayClosed: Promise<unknown> | undefined;
    const s = net.createServer((c) => {
      c.once('data', () => c.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok'));
      c.on('error', () => undefined);
      first ??= c;
      strayClosed ??= once(c, 'close');
    });
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    const p = new Http1Pool({ host: '127.0.0.1', port: (s.address() as AddressInfo).port, connections: 1, connectTimeoutMs: 1000, maxHeadBytes: 1024 });
    expect((await send(p, req()).done).body.toString()).toBe('ok');
    // Stray bytes now that the connection is idle (its answer read); the pool must close it.
    first!.write('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nstray');
    await strayClosed;
    const next = await send(p, req()).done;
    expect(next.body.toString()).toBe('ok');
    await p.destroy();
    s.close();
  });

  it('close() retires the pool: idle connections close at once, requests in flight and queued finish, a request still sent is served on a connection that closes after its answer', async () => {
    // A model whose sockets we count; it answers /slow only when the test lets it.
    const open = new Set<net.Socket>();
    const answered: string[] = [];
    let letSlowGo!: () => void;
    const slowMayAnswer = new Promise<void>((r) => (letSlowGo = r));
    const s = net.createServer((c) => {
      open.add(c);
      c.once('close', () => open.delete(c));
      let buf = '';
      c.on('data', (d: Buffer) => {
        buf += d.toString('latin1');
        while (buf.includes('\r\n\r\n')) {
          const head = buf.slice(0, buf.indexOf('\r\n\r\n'));
          buf = buf.slice(head.length + 4);
          const path = head.split(' ')[1]!;
          const reply = (): void => {
            answered.push(path);
            c.write(`HTTP/1.1 200 OK\r\nContent-Length: ${path.length}\r\n\r\n${path}`);
          };
          if (path === '/slow') void slowMayAnswer.then(reply);
          else reply();
        }
      });
    });
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    const p = new Http1Pool({ host: '127.0.0.1', port: (s.address() as AddressInfo).port, connections: 3, connectTimeoutMs: 1000, maxHeadBytes: 1024 });
    // Three connections, all idle.
    await Promise.all(['/a', '/b', '/c'].map((path) => send(p, req({ path })).done));
    expect(open.size).toBe(3);
    // Two busy with slow answers, one idle; then the pool is retired.
    const slow = [send(p, req({ path: '/slow' })), send(p, req({ path: '/slow' }))];
    await waitFor(() => answered.length === 3 && open.size === 3);
    const closed = p.close();
    // The idle connection closes at once, the two in flight stay.
    await waitFor(() => open.size === 2);
    // Requests that chose this pool before it left are still sent, never refused: one goes out on
    // a new connection (under the limit of 3), the next waits for a connection to come free.
    const late = [send(p, req({ path: '/late' })), send(p, req({ path: '/queued' }))];
    letSlowGo();
    const outcomes = await Promise.all([...slow, ...late].map((h) => h.done));
    expect(outcomes.map((o) => [o.status, o.body.toString(), o.error?.code])).toEqual([
      [200, '/slow', undefined],
      [200, '/slow', undefined],
      [200, '/late', undefined],
      [200, '/queued', undefined],
    ]);
    await closed;
    // Nothing is kept idle: every connection closes once its answer has ended.
    await waitFor(() => open.size === 0);
    // Destroyed (shutdown): refused.
    await p.destroy();
    expect((await send(p, req()).done).error?.code).toBe('UPSTREAM_POOL_CLOSED');
    s.close();
  });

  it('refuses an address it cannot dial', () => {
    expect(() => new Http1Pool({ host: 'bad host', port: 80, connections: 1, connectTimeoutMs: 1, maxHeadBytes: 1 })).toThrow(/invalid host/);
    expect(() => new Http1Pool({ host: 'ok', port: 70000, connections: 1, connectTimeoutMs: 1, maxHeadBytes: 1 })).toThrow(/invalid port/);
  });
});

describe('upstream client over TLS', () => {
  const dir = certDir();
  const ca = makeCa(dir);
  const leaf = ca.issue({ cn: 'model.models.svc', san: ['model.models.svc', 'IP:127.0.0.1'], serial: 7 });
  let server: https.Server;
  let port = 0;
  const resumed: boolean[] = [];

  beforeAll(async () => {
    server = https.createServer({ cert: leaf.cert, key: leaf.key }, (rq, rs) => {
      resumed.push(rq.socket instanceof Object && 'isSessionReused' in rq.socket ? (rq.socket as unknown as { isSessionReused(): boolean }).isSessionReused() : false);
      rs.setHeader('Connection', 'close');
      rs.end(`tls ${rq.headers.host}`);
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    port = (server.address() as AddressInfo).port;
  });
  afterAll(() => {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('verifies the upstream against the CA, and resumes the TLS session on the next connection', async () => {
    const p = new Http1Pool({ host: '127.0.0.1', port, connections: 2, connectTimeoutMs: 2000, maxHeadBytes: 4096, tls: { ca: ca.cert, rejectUnauthorized: true } });
    for (let i = 0; i < 3; i++) expect((await send(p, req()).done).body.toString()).toBe('tls model.example');
    expect(resumed).toEqual([false, true, true]);
    await p.destroy();
  });

  it('an upstream certificate from another CA is refused with the TLS code', async () => {
    const p = new Http1Pool({ host: '127.0.0.1', port, connections: 1, connectTimeoutMs: 2000, maxHeadBytes: 4096, tls: { rejectUnauthorized: true } });
    expect((await send(p, req()).done).error?.code).toBe('UNABLE_TO_VERIFY_LEAF_SIGNATURE');
    await p.destroy();
  });
});
