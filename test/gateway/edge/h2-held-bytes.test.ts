/**
 * One HTTP/2 connection cannot make the gateway hold more than its settings allow (wire/h2-settings.ts): a
 * client opens 100 streams on one connection and either asks each for a large answer it never reads (it never
 * sends a WINDOW_UPDATE: the gateway may send it 64 KiB in all), or sends each a large body its model never
 * reads. Over REST and over gRPC. What the gateway may hold per stream is its own: the client's stream window
 * (what a client may send before the gateway reads), the stream's write mark (what the gateway queues to a slow
 * reader before it stops reading the other side) and one read; the model is stopped by its socket (REST) or its
 * stream window (gRPC), and the gateway keeps serving another client meanwhile. When the hostile client leaves,
 * the models' answers are cut off.
 *
 * Held bytes are the Buffers' memory of this process after a full collection (the gateway runs in it; the models
 * write slices of one Buffer made before the count, the clients send slices of another): an unbounded gateway
 * holds every model's answer or every client's body, 100 × 8 MiB.
 */
import http2, { type ClientHttp2Session, type ServerHttp2Stream } from 'node:http2';
import type { AddressInfo } from 'node:net';
import v8 from 'node:v8';
import vm from 'node:vm';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_CONCURRENT_STREAMS, STREAM_BUFFER_BYTES, STREAM_WINDOW_BYTES } from '../../../gateway/wire/h2-settings.js';
import { startHttpBackend, type HttpBackend } from '../../fixtures/http-backend.js';
import { sdep, startTestGateway, waitFor, type TestGateway } from '../../helpers/gateway.js';
import { FRAME, RawH2 } from '../../helpers/raw-h2.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const STREAMS = 100;
/** Each answer (and each request body): far more than the gateway may hold of it. */
const BIG = 8 * MiB;
const PIECE = 64 * KiB;
/** What one stream may have the gateway hold besides its window and its write mark: a socket read (64 KiB) and a write in flight. */
const READ = 64 * KiB;
/** Node's own per-process buffers (socket read pools, the sessions' frames), whatever the streams hold. */
const SLACK = 8 * MiB;
const REST_PATH = '/seldon/m/large/api/v1.0/predictions';
const GRPC_PATH = '/seldon.protos.Seldon/Predict';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;
/** Bytes of the Buffers alive in this process. */
function bufferBytes(): number {
  gc();
  gc();
  return process.memoryUsage().arrayBuffers;
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

/** The model's side of one large answer: what it wrote, whether it waits for its transport, whether it was cut off. */
interface Writer {
  written: number;
  waiting: boolean;
  closed: boolean;
}

/** The byte at `offset` of every large answer and body: a pattern, so what arrives can be checked. */
const SOURCE = Buffer.alloc(BIG);
for (let i = 0; i < SOURCE.length; i++) SOURCE[i] = (i * 131 + 7) & 0xff;

/** Write `total` bytes of SOURCE a piece at a time, the next only once `out` takes it ('drain'). */
async function writeLarge(out: ServerResponse | ServerHttp2Stream, total: number, w: Writer, onClose: (f: () => void) => void): Promise<void> {
  let wake: (() => void) | undefined;
  onClose(() => {
    w.closed = true;
    wake?.();
  });
  while (w.written < total && !w.closed) {
    const piece = SOURCE.subarray(w.written % BIG, (w.written % BIG) + PIECE);
    w.written += piece.length;
    if (!out.write(piece)) {
      w.waiting = true;
      await new Promise<void>((r) => {
        wake = r;
        out.once('drain', r);
      });
      w.waiting = false;
    }
  }
}

const SMALL_ANSWER = '{"data":{"ndarray":[1]}}';
/** A gRPC message (length-prefixed) of `bytes` bytes of payload. */
const grpcFrame = (payload: Buffer): Buffer => {
  const head = Buffer.alloc(5);
  head.writeUInt32BE(payload.length, 1);
  return Buffer.concat([head, payload]);
};

describe('100 HTTP/2 streams on one connection that hold bytes in the gateway', () => {
  let rest: HttpBackend;
  let grpcModel: http2.Http2Server;
  const writers: Writer[] = [];
  /** Request bodies the models were sent and never read: their handlers, to end them at the close. */
  const unread: { rest: IncomingMessage[]; grpc: ServerHttp2Stream[] } = { rest: [], grpc: [] };
  let gw: TestGateway;

  beforeAll(async () => {
    rest = await startHttpBackend({
      name: 'large',
      bufferBody: false,
      handler: (req, res) => {
        if (req.headers['x-small'] !== undefined) return void res.end(SMALL_ANSWER);
        if (req.method === 'POST') return void unread.rest.push(req);
        const w: Writer = { written: 0, waiting: false, closed: false };
        writers.push(w);
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': BIG });
        return writeLarge(res, BIG, w, (f) => res.once('close', f));
      },
    });
    // The gRPC model's own stream window is Node's default (64 KiB): what it holds of a body it does not read is small.
    grpcModel = http2.createServer();
    grpcModel.on('stream', (stream, headers) => {
      stream.on('error', () => undefined);
      if (headers['x-big-request'] !== undefined) {
        stream.pause();
        unread.grpc.push(stream);
        return;
      }
      stream.resume();
      stream.once('end', () => {
        if (stream.destroyed) return;
        stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
        stream.once('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
        if (headers['x-small'] !== undefined) return void stream.end(grpcFrame(Buffer.from('small')));
        const w: Writer = { written: 0, waiting: false, closed: false };
        writers.push(w);
        const head = Buffer.alloc(5);
        head.writeUInt32BE(BIG, 1);
        stream.write(head);
        void writeLarge(stream, BIG, w, (f) => stream.once('close', f)).then(() => {
          if (!w.closed) stream.end();
        });
      });
    });
    await new Promise<void>((r) => grpcModel.listen(0, '127.0.0.1', () => r()));
    gw = await startTestGateway({
      manifests: { 'large.yaml': sdep('large', 'm', { predictors: [{ name: 'main' }] }, { 'seldon.io/rest-timeout': '0', 'seldon.io/grpc-timeout': '0' }) },
      resolve: { 'large-main.m:8000': rest.port, 'large-main.m:5001': (grpcModel.address() as AddressInfo).port },
    });
  });
  afterAll(async () => {
    for (const r of unread.rest) r.socket.destroy();
    for (const s of unread.grpc) s.destroy();
    await gw?.stop();
    await rest?.close();
    grpcModel?.close();
  });

  /** Another client's small request, over its own connection: answered while the hostile one holds its streams. */
  async function otherClientServed(grpc: boolean): Promise<void> {
    const c = http2.connect(gw.url);
    try {
      const s = c.request(
        grpc
          ? { ':method': 'POST', ':path': GRPC_PATH, 'content-type': 'application/grpc', te: 'trailers', seldon: 'large', namespace: 'm', 'x-small': '1' }
          : { ':method': 'POST', ':path': REST_PATH, 'content-type': 'application/json', 'x-small': '1' },
      );
      s.end(grpc ? grpcFrame(Buffer.from('ask')) : '{}');
      const pieces: Buffer[] = [];
      s.on('data', (d: Buffer) => pieces.push(d));
      const [status, trailers] = await Promise.all([
        new Promise<number>((r) => s.once('response', (h) => r(Number(h[':status'])))),
        new Promise<string | undefined>((r) => {
          s.once('trailers', (t) => r(t['grpc-status'] as string));
          s.once('end', () => r(undefined));
        }),
      ]);
      await new Promise((r) => (s.readableEnded ? r(null) : s.once('end', r)));
      expect(status).toBe(200);
      if (grpc) {
        expect(trailers).toBe('0');
        expect(Buffer.concat(pieces).equals(grpcFrame(Buffer.from('small')))).toBe(true);
      } else expect(Buffer.concat(pieces).toString()).toBe(SMALL_ANSWER);
    } finally {
      c.close();
    }
  }

  it.each([
    ['REST', false],
    ['gRPC', true],
  ])(
    '%s: answers never read (no WINDOW_UPDATE): the gateway holds at most its write mark per stream, the models wait, others are served, leaving cuts them off',
    async (_name, grpc) => {
      writers.length = 0;
      const before = bufferBytes();
      const client = await RawH2.connect(gw.port);
      const ask = grpcFrame(Buffer.from('ask'));
      for (let i = 0; i < STREAMS; i++) {
        const id = 1 + 2 * i;
        if (grpc) {
          client.headers(
            id,
            [
              [':method', 'POST'],
              [':scheme', 'http'],
              [':path', GRPC_PATH],
              [':authority', 'gw'],
              ['content-type', 'application/grpc'],
              ['te', 'trailers'],
              ['seldon', 'large'],
              ['namespace', 'm'],
            ],
            false,
          );
          client.data(id, ask, true);
        } else
          client.headers(
            id,
            [
              [':method', 'GET'],
              [':scheme', 'http'],
              [':path', REST_PATH],
              [':authority', 'gw'],
            ],
            true,
          );
      }
      await waitFor(() => writers.length === STREAMS && writers.every((w) => w.written > 0), 30_000);
      const written = (): number => writers.reduce((a, w) => a + w.written, 0);
      await settled(written, 1500, 60_000);

      // What the gateway holds per stream: what it queued to the client (its write mark and a read past it) and, over gRPC, what the model may send it unread (the upstream stream's window).
      const perStream = STREAM_BUFFER_BYTES + READ + (grpc ? STREAM_WINDOW_BYTES : 0);
      const held = bufferBytes() - before;
      expect(held, `held ${(held / MiB).toFixed(1)} MiB`).toBeLessThan(STREAMS * perStream + SLACK);
      // Every model waits on its transport, far from the end of its answer; none was cut off.
      expect(writers.filter((w) => !w.waiting || w.closed)).toEqual([]);
      expect(written()).toBeLessThan(STREAMS * BIG);

      await otherClientServed(grpc);

      client.close();
      await waitFor(() => writers.every((w) => w.closed), 20_000);
      expect(writers.every((w) => w.written < BIG)).toBe(true);
    },
    120_000,
  );

  it.each([
    ['REST', false],
    ['gRPC', true],
  ])(
    '%s: large bodies a model never reads: the gateway holds at most a stream window and a write mark per stream, the client waits, others are served',
    async (_name, grpc) => {
      const before = bufferBytes();
      const waitingBefore = grpc ? unread.grpc.length : unread.rest.length;
      // A client with windows as large as a body: whatever it may not send is the gateway's doing.
      const client: ClientHttp2Session = http2.connect(gw.url, { settings: { initialWindowSize: BIG } });
      client.on('error', () => undefined);
      const streams = Array.from({ length: STREAMS }, () => {
        const s = client.request(
          grpc
            ? { ':method': 'POST', ':path': GRPC_PATH, 'content-type': 'application/grpc', te: 'trailers', seldon: 'large', namespace: 'm', 'x-big-request': '1' }
            : { ':method': 'POST', ':path': REST_PATH, 'content-type': 'application/octet-stream', 'content-length': String(BIG) },
        );
        s.on('error', () => undefined);
        if (grpc) {
          const head = Buffer.alloc(5);
          head.writeUInt32BE(BIG - 5, 1);
          s.write(head);
          s.end(SOURCE.subarray(0, BIG - 5));
        } else s.end(SOURCE);
        return s;
      });
      const models = (): number => (grpc ? unread.grpc.length : unread.rest.length) - waitingBefore;
      await waitFor(() => models() === STREAMS, 30_000);
      const queued = (): number => streams.reduce((a, s) => a + s.writableLength, 0);
      await settled(queued, 1500, 60_000);

      // Per stream: the client's stream window, what the gateway queues to the model (its write mark, or the upstream socket's 128 KiB), a read; the gRPC model's own 64 KiB window.
      const perStream = STREAM_WINDOW_BYTES + STREAM_BUFFER_BYTES + READ + (grpc ? 64 * KiB : 0);
      const held = bufferBytes() - before;
      expect(held, `held ${(held / MiB).toFixed(1)} MiB`).toBeLessThan(STREAMS * perStream + SLACK);
      // Every client stream waits with most of its body unsent.
      expect(streams.filter((s) => s.writableLength < BIG / 2)).toEqual([]);

      await otherClientServed(grpc);
      client.destroy();
    },
    120_000,
  );

  it(`a connection carries at most MAX_CONCURRENT_STREAMS (${MAX_CONCURRENT_STREAMS}) streams: one more is refused and never reaches a model`, async () => {
    // What one connection can make the gateway hold: that many streams' windows, marks and reads.
    expect(MAX_CONCURRENT_STREAMS * (STREAM_WINDOW_BYTES + STREAM_BUFFER_BYTES + READ)).toBeLessThanOrEqual(72 * MiB);
    const before = unread.rest.length;
    const client = await RawH2.connect(gw.port);
    expect(await client.windowOpen()).toBe(true);
    const post = (id: number): void =>
      client.headers(
        id,
        [
          [':method', 'POST'],
          [':scheme', 'http'],
          [':path', REST_PATH],
          [':authority', 'gw'],
          ['content-type', 'application/octet-stream'],
          ['content-length', String(BIG)],
        ],
        false,
      );
    for (let i = 0; i < MAX_CONCURRENT_STREAMS; i++) post(1 + 2 * i);
    await waitFor(() => unread.rest.length - before === MAX_CONCURRENT_STREAMS, 30_000);
    const extra = 1 + 2 * MAX_CONCURRENT_STREAMS;
    post(extra);
    // Refused (RST_STREAM), or the connection ended for it (GOAWAY): either way no model hears of it.
    await waitFor(() => client.closed || client.frames.some((f) => (f.type === FRAME.RST_STREAM && f.stream === extra) || f.type === FRAME.GOAWAY), 10_000);
    expect(unread.rest.length - before).toBe(MAX_CONCURRENT_STREAMS);
    client.close();
  }, 120_000);
});
