/**
 * A client that does not read a large answer holds its model back: the gateway reads the model's answer
 * only as fast as the client takes it (wire/socket-buffers.ts: what a proxied body's socket holds in the
 * process is bounded), so a hostile slow reader of a 1 GiB answer costs the gateway a few socket buffers,
 * never the answer.
 *
 * Real sockets: a model that answers 1 GiB a 64 KiB piece at a time, writing the next only when its
 * socket takes it ('drain'); a raw client that sends its request and reads nothing. Once nothing moves,
 * the model is waiting on its socket, having written a small part of the answer (the loopback's kernel
 * buffers hold most of it; an unbounded gateway would read the whole gigabyte), and the client has read
 * nothing. Then the client reads: the answer moves on, byte for byte as the model wrote it; the client
 * leaves and the model's answer is cut off (its connection closed), as nothing will read the rest.
 * Both HTTP/1.1 servers (the lane and Node's), and an HTTP/2 stream held back by its flow-control window.
 */
import http2 from 'node:http2';
import net from 'node:net';
import type { ServerResponse } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHttpBackend, type HttpBackend } from '../../fixtures/http-backend.js';
import { sdep, startTestGateway, waitFor, type TestGateway } from '../../helpers/gateway.js';

const ANSWER_BYTES = 1024 * 1024 * 1024;
const PIECE = 64 * 1024;
/** What the model may have written while the client reads nothing: kernel buffers both ways and the gateway's. */
const HELD_AT_MOST = 64 * 1024 * 1024;
/** What the client reads once it does, checked byte for byte. */
const READ_AFTER = 16 * 1024 * 1024;

/** No request timeout: it covers the whole answer (as Envoy's route timeout does) and would cut a slow reader's off. */
const NO_TIMEOUT = { 'seldon.io/rest-timeout': '0' };

/** The answer's byte at `offset`: each piece filled with its number, mod 251 (so pieces in the wrong order show). */
const byteAt = (offset: number): number => Math.floor(offset / PIECE) % 251;

/** The model's side of the one answer: how much its socket took, whether it waits on 'drain', whether it was cut off. */
interface Writer {
  written: number;
  waiting: boolean;
  closed: boolean;
}

/** Write the answer a piece at a time, the next only once the socket takes it. */
async function answer(res: ServerResponse, w: Writer): Promise<void> {
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': ANSWER_BYTES });
  let wake: (() => void) | undefined;
  res.once('close', () => {
    w.closed = true;
    wake?.();
  });
  while (w.written < ANSWER_BYTES && !w.closed) {
    const piece = Buffer.alloc(PIECE, byteAt(w.written));
    w.written += PIECE;
    if (!res.write(piece)) {
      w.waiting = true;
      await new Promise<void>((r) => {
        wake = r;
        res.once('drain', r);
      });
      w.waiting = false;
    }
  }
  if (!w.closed) res.end();
}

/** Until `value()` has not changed for `quietMs` (an absence, so a bounded look: at most `maxMs`). */
async function settled(value: () => number, quietMs: number, maxMs: number): Promise<void> {
  const end = Date.now() + maxMs;
  let last = value();
  let since = Date.now();
  while (Date.now() < end) {
    await new Promise((r) => setTimeout(r, 100));
    const now = value();
    if (now !== last) [last, since] = [now, Date.now()];
    else if (Date.now() - since >= quietMs) return;
  }
}

/** Before the block's tests: a model answering each request with 1 GiB (its writers recorded), and a gateway before it started with `args`; both stopped after them. */
function largeAnswerGateway(writers: Writer[], args: string[], started: (gw: TestGateway) => void): void {
  let model: HttpBackend;
  let gw: TestGateway;
  beforeAll(async () => {
    model = await startHttpBackend({
      name: 'large',
      handler: (_req, res) => {
        const w: Writer = { written: 0, waiting: false, closed: false };
        writers.push(w);
        return answer(res, w);
      },
    });
    gw = await startTestGateway({ manifests: { 'large.yaml': sdep('large', 'm', { predictors: [{ name: 'main' }] }, NO_TIMEOUT) }, resolve: { 'large-main.m:8000': model.port }, args });
    started(gw);
  });
  afterAll(async () => {
    await gw?.stop();
    await model?.close();
  });
}

describe.each([
  ['the lane', []],
  ["Node's server", ['--http1-server', 'node']],
])('a client that does not read a 1 GiB answer (%s)', (_server, args) => {
  const writers: Writer[] = [];
  let gw: TestGateway;
  largeAnswerGateway(writers, args, (g) => (gw = g));

  it('holds the model back, then passes the answer on byte for byte as the client reads; the client leaving cuts the model off', async () => {
    const client = net.connect(gw.port, '127.0.0.1');
    client.pause();
    await new Promise((r) => client.once('connect', r));
    client.write('GET /seldon/m/large/api/v1.0/predictions HTTP/1.1\r\nHost: gw\r\n\r\n');
    await waitFor(() => writers.length === 1 && writers[0]!.written > 0, 10_000);
    const w = writers[0]!;
    await settled(() => w.written, 1500, 30_000);
    // Nothing moves: the model waits on its socket, far from the end of its answer.
    expect(w.waiting).toBe(true);
    expect(w.closed).toBe(false);
    expect(w.written).toBeLessThan(HELD_AT_MOST);
    const heldBack = w.written;

    // The client reads: the answer moves on past what the model had written, each byte where the model put it.
    let head: Buffer | null = Buffer.alloc(0);
    let status = '';
    let body = 0;
    let wrong = -1;
    client.on('data', (d: Buffer) => {
      if (head !== null) {
        const all: Buffer = Buffer.concat([head, d]);
        const end = all.indexOf('\r\n\r\n');
        if (end < 0) return void (head = all);
        status = all.subarray(0, all.indexOf('\r\n')).toString();
        head = null;
        d = all.subarray(end + 4);
      }
      for (let i = 0; i < d.length && wrong < 0; i++) if (d[i] !== byteAt(body + i)) wrong = body + i;
      body += d.length;
    });
    client.resume();
    await waitFor(() => body >= heldBack + READ_AFTER, 60_000);
    expect(status).toBe('HTTP/1.1 200 OK');
    expect(wrong).toBe(-1);
    expect(w.written).toBeGreaterThan(heldBack);

    // The client leaves: the model's answer is cut off, not read to its end into the gateway.
    client.destroy();
    await waitFor(() => w.closed, 10_000);
    expect(w.written).toBeLessThan(ANSWER_BYTES);
  }, 120_000);
});

describe('an HTTP/2 stream that does not read a 1 GiB answer', () => {
  const writers: Writer[] = [];
  let gw: TestGateway;
  largeAnswerGateway(writers, [], (g) => (gw = g));

  it("holds the model back by the stream's flow-control window, then passes the answer on byte for byte as it reads; a reset cuts the model off", async () => {
    const session = http2.connect(`http://127.0.0.1:${gw.port}`);
    const stream = session.request({ ':method': 'GET', ':path': '/seldon/m/large/api/v1.0/predictions' });
    stream.pause();
    let status = 0;
    stream.on('response', (h) => (status = Number(h[':status'])));
    await waitFor(() => writers.length === 1 && writers[0]!.written > 0, 10_000);
    const w = writers[0]!;
    await settled(() => w.written, 1500, 30_000);
    expect(w.waiting).toBe(true);
    expect(w.closed).toBe(false);
    expect(w.written).toBeLessThan(HELD_AT_MOST);
    const heldBack = w.written;

    let body = 0;
    let wrong = -1;
    stream.on('data', (d: Buffer) => {
      for (let i = 0; i < d.length && wrong < 0; i++) if (d[i] !== byteAt(body + i)) wrong = body + i;
      body += d.length;
    });
    stream.resume();
    await waitFor(() => body >= heldBack + READ_AFTER, 60_000);
    expect(status).toBe(200);
    expect(wrong).toBe(-1);
    expect(w.written).toBeGreaterThan(heldBack);

    stream.close(http2.constants.NGHTTP2_CANCEL);
    await waitFor(() => w.closed, 10_000);
    expect(w.written).toBeLessThan(ANSWER_BYTES);
    session.close();
  }, 120_000);
});
