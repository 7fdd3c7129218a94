/**
 * Request bodies over the HTTP/1.1 lane's whole-body size (64 KiB) stream through the lane
 * (gateway/edge/lane-body.ts): the model gets the first bytes before the client has sent the last,
 * byte for byte, on every route kind; and every guard that held when Node's server read them still
 * holds. Real sockets both ways: a raw client, a `node:http` model that reads the body as it comes.
 *
 * The attacker's cases first: Content-Length beside Transfer-Encoding, two Content-Lengths, a length
 * past any integer, a chunk size that overflows, a request hidden in a body, a body over --max-body
 * (by its Content-Length: 413 before anything is forwarded). Then what the lane now does: a body
 * streamed, a client gone mid-body (the model sees an aborted request, never a shorter whole one),
 * requests pipelined behind a large body, a model that answers before the body ended, and a reader
 * that does not read (the lane holds a bounded part of the body, counted, not the whole).
 */
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import net, { type AddressInfo } from 'node:net';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Http1Lane } from '../../../gateway/edge/http1-lane.js';
import type { LaneExchange } from '../../../gateway/edge/lane-exchange.js';
import { startHttpBackend, type HttpBackend } from '../../fixtures/http-backend.js';
import { ByteReader, headerValue, readHttpResponse, type RawResponse } from '../../fixtures/recording-upstream.js';
import { sdep, startTestGateway, waitFor, type TestGateway } from '../../helpers/gateway.js';
import { metric } from '../../helpers/metrics.js';
import { seededRandom } from '../../../routing/table/pick.js';

const MiB = 1024 * 1024;
/** --max-body of the gateway under test: 8 MiB bodies pass, 9 MiB ones do not. */
const MAX_BODY = 8 * MiB + 1024;
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const PATH = (deployment: string): string => `/seldon/ml/${deployment}/api/v1.0/predictions`;
const HANDOFFS = 'seldon_gateway_http1_handoffs_total{reason="request_shape"}';

/** Seeded bytes (a body whose every byte matters). */
function bodyOf(size: number, seed: number): Buffer {
  const r = seededRandom(seed);
  const out = Buffer.allocUnsafe(size);
  for (let i = 0; i < size; i += 4) out.writeUInt32LE(Math.floor(r() * 0x1_0000_0000), i);
  return out;
}

/** What a model saw of one request: its body bytes as they came, whether it ended whole, whether it broke off. */
interface Seen {
  readonly url: string;
  readonly headers: IncomingMessage['headers'];
  readonly pieces: Buffer[];
  bytes: number;
  complete: boolean;
  aborted: boolean;
  /** Resolved at the first body bytes. */
  readonly started: Promise<void>;
  /** Resolved when the body ended or broke off. */
  readonly done: Promise<void>;
}

/** A model that records each request's body as it streams in, then answers 200 with what it got. */
function streamingModel(seen: Seen[]) {
  return (req: IncomingMessage, res: ServerResponse): void => {
    let start!: () => void;
    let finish!: () => void;
    const s: Seen = {
      url: req.url ?? '',
      headers: req.headers,
      pieces: [],
      bytes: 0,
      complete: false,
      aborted: false,
      started: new Promise<void>((r) => (start = r)),
      done: new Promise<void>((r) => (finish = r)),
    };
    seen.push(s);
    req.on('data', (c: Buffer) => {
      s.pieces.push(c);
      s.bytes += c.length;
      start();
    });
    req.on('end', () => {
      s.complete = req.complete;
      finish();
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ bytes: s.bytes, sha: sha(Buffer.concat(s.pieces)) }));
    });
    req.on('error', () => undefined);
    req.on('close', () => {
      if (!req.complete) s.aborted = true;
      finish();
    });
  };
}

async function connect(port: number): Promise<{ socket: net.Socket; reader: ByteReader }> {
  const socket = net.connect(port, '127.0.0.1');
  socket.on('error', () => undefined);
  await once(socket, 'connect');
  return { socket, reader: new ByteReader(socket) };
}

/** Write all of `b`, waiting for the socket's drains. */
async function writeAll(socket: net.Socket, b: Buffer | string): Promise<void> {
  if (!socket.write(b)) await Promise.race([once(socket, 'drain'), once(socket, 'close')]);
}

/** `body` framed chunked, in chunks of seeded sizes (1 B to 256 KiB), then the last chunk (and `trailer`). */
function chunkedOf(body: Buffer, seed: number, trailer = ''): Buffer {
  const r = seededRandom(seed);
  const parts: Buffer[] = [];
  for (let at = 0; at < body.length;) {
    const n = Math.min(body.length - at, 1 + Math.floor(r() * 256 * 1024));
    parts.push(Buffer.from(`${n.toString(16)}\r\n`), body.subarray(at, at + n), Buffer.from('\r\n'));
    at += n;
  }
  parts.push(Buffer.from(`0\r\n${trailer}\r\n`));
  return Buffer.concat(parts);
}

const head = (deployment: string, lines: string[]): string => `POST ${PATH(deployment)} HTTP/1.1\r\nHost: gw\r\nContent-Type: application/octet-stream\r\n${lines.map((l) => `${l}\r\n`).join('')}\r\n`;

describe('large request bodies stream through the HTTP/1.1 lane', () => {
  let model: HttpBackend;
  let mirror: HttpBackend;
  let gw: TestGateway;
  const seen: Seen[] = [];
  const mirrored: Seen[] = [];

  beforeAll(async () => {
    model = await startHttpBackend({ name: 'model', bufferBody: false, handler: streamingModel(seen) });
    mirror = await startHttpBackend({ name: 'mirror', bufferBody: false, handler: streamingModel(mirrored) });
    gw = await startTestGateway({
      manifests: {
        'plain.yaml': sdep('plain', 'ml', { predictors: [{ name: 'main' }] }),
        'canary.yaml': sdep('canary', 'ml', {
          predictors: [
            { name: 'main', traffic: 50 },
            { name: 'canary', traffic: 50 },
          ],
        }),
        'retried.yaml': sdep('retried', 'ml', { predictors: [{ name: 'main' }] }, { 'seldon.io/ambassador-retries': '2' }),
        'shadowed.yaml': sdep('shadowed', 'ml', { predictors: [{ name: 'main' }, { name: 'copy', shadow: true }] }),
      },
      resolve: {
        'plain-main.ml:8000': model.port,
        'canary-main.ml:8000': model.port,
        'canary-canary.ml:8000': model.port,
        'retried-main.ml:8000': model.port,
        'shadowed-main.ml:8000': model.port,
        'shadowed-copy.ml:8000': mirror.port,
      },
      args: ['--max-body', String(MAX_BODY), '--retry-buffer', String(2 * MiB), '--shadow-max-body', String(16 * MiB)],
    });
  });

  afterAll(async () => {
    await gw?.stop();
    await Promise.all([model?.close(), mirror?.close()]);
  });

  /** Send `bytes` on a fresh connection and read one answer. */
  async function exchange(bytes: Buffer | string): Promise<{ res: RawResponse | null; socket: net.Socket; reader: ByteReader }> {
    const { socket, reader } = await connect(gw.port);
    await writeAll(socket, bytes);
    const res = await readHttpResponse(reader, { timeoutMs: 20_000 });
    return { res, socket, reader };
  }

  const attackBody = bodyOf(MiB, 1);

  describe('the attacker', () => {
    it('Content-Length beside Transfer-Encoding on a 1 MiB body: 400, the connection closed, nothing at the model', async () => {
      const before = seen.length;
      const chunked = `${attackBody.length.toString(16)}\r\n`;
      const { res, reader } = await exchange(
        Buffer.concat([Buffer.from(head('plain', [`Content-Length: ${attackBody.length}`, 'Transfer-Encoding: chunked']) + chunked), attackBody, Buffer.from('\r\n0\r\n\r\n')]),
      );
      expect(res?.status).toBe(400);
      await waitFor(() => reader.ended, 5000);
      expect(seen.length).toBe(before);
    });

    it('two Content-Lengths on a large body: 400, nothing at the model', async () => {
      const before = seen.length;
      const { res } = await exchange(Buffer.concat([Buffer.from(head('plain', [`Content-Length: ${attackBody.length}`, `Content-Length: ${attackBody.length - 10}`])), attackBody]));
      expect(res?.status).toBe(400);
      expect(seen.length).toBe(before);
    });

    it('a Content-Length past any integer: refused, nothing at the model', async () => {
      const before = seen.length;
      const { res } = await exchange(Buffer.concat([Buffer.from(head('plain', ['Content-Length: 184467440737095516160000'])), attackBody]));
      expect(res?.status).toBeGreaterThanOrEqual(400);
      expect(res?.status).toBeLessThan(500);
      expect(seen.length).toBe(before);
    });

    it('a chunk size that overflows, after a large chunk: refused, the model never gets a whole request', async () => {
      const before = seen.length;
      const { res } = await exchange(
        Buffer.concat([Buffer.from(head('plain', ['Transfer-Encoding: chunked']) + `${attackBody.length.toString(16)}\r\n`), attackBody, Buffer.from('\r\nfffffffffffffffff1\r\nxx\r\n0\r\n\r\n')]),
      );
      expect(res?.status).toBe(400);
      await waitFor(() => seen.slice(before).every((s) => s.aborted), 5000);
      for (const s of seen.slice(before)) expect(s.complete).toBe(false);
    });

    it('a request hidden in a large body is body bytes: one request at the model, its body exact; the next request on the connection is served after it', async () => {
      const before = seen.length;
      const hidden = Buffer.from(`\r\n\r\nPOST ${PATH('plain')} HTTP/1.1\r\nHost: gw\r\nContent-Length: 2\r\n\r\n{}`);
      const body = Buffer.concat([attackBody.subarray(0, 200_000), hidden, attackBody.subarray(0, 200_000)]);
      const next = `GET ${PATH('plain')} HTTP/1.1\r\nHost: gw\r\nX-Next: 1\r\n\r\n`;
      const { res, reader, socket } = await exchange(Buffer.concat([Buffer.from(head('plain', [`Content-Length: ${body.length}`])), body, Buffer.from(next)]));
      expect(res?.status).toBe(200);
      expect(JSON.parse(res!.body.toString())).toEqual({ bytes: body.length, sha: sha(body) });
      const second = await readHttpResponse(reader, { timeoutMs: 20_000 });
      expect(second?.status).toBe(200);
      socket.destroy();
      const got = seen.slice(before);
      expect(got.map((s) => s.headers['x-next'] ?? 'first')).toEqual(['first', '1']);
      expect(got[0]!.complete).toBe(true);
      expect(sha(Buffer.concat(got[0]!.pieces))).toBe(sha(body));
    });

    it('a body over --max-body by its Content-Length: 413 before anything is forwarded, the connection closed', async () => {
      const before = seen.length;
      const { socket, reader } = await connect(gw.port);
      // The head alone: the answer does not wait for the body.
      socket.write(head('plain', [`Content-Length: ${MAX_BODY + 1}`]));
      const res = await readHttpResponse(reader, { timeoutMs: 20_000 });
      expect(res?.status).toBe(413);
      expect(headerValue(res!.headers, 'connection')).toBe('close');
      expect(JSON.parse(res!.body.toString()).status).toMatchObject({ code: 413, status: 'FAILURE' });
      // What the client still sends is read and dropped; the connection then ends.
      socket.end(attackBody);
      await waitFor(() => reader.ended, 10_000);
      expect(seen.length).toBe(before);
    });
  });

  describe('what the lane does with a large body', () => {
    it('streams it: the model has the first bytes before the client sends the last, byte for byte, on the lane', async () => {
      const handed = await metric(gw.adminUrl, HANDOFFS);
      const body = bodyOf(8 * MiB, 2);
      const before = seen.length;
      const { socket, reader } = await connect(gw.port);
      await writeAll(socket, head('plain', [`Content-Length: ${body.length}`]));
      await writeAll(socket, body.subarray(0, 256 * 1024));
      // The tail waits for the model to have seen the start: were the body read whole first, this would never come.
      await waitFor(() => seen.length > before, 10_000);
      await seen[before]!.started;
      expect(seen[before]!.complete).toBe(false);
      await writeAll(socket, body.subarray(256 * 1024));
      const res = await readHttpResponse(reader, { timeoutMs: 30_000 });
      socket.destroy();
      expect(res?.status).toBe(200);
      expect(JSON.parse(res!.body.toString())).toEqual({ bytes: body.length, sha: sha(body) });
      // Forwarded with its own Content-Length, not re-framed.
      expect(seen[before]!.headers['content-length']).toBe(String(body.length));
      expect(seen[before]!.headers['transfer-encoding']).toBeUndefined();
      expect(await metric(gw.adminUrl, HANDOFFS)).toBe(handed);
    });

    for (const size of [MiB, 8 * MiB]) {
      for (const deployment of ['plain', 'canary', 'retried', 'shadowed']) {
        it(`${size / MiB} MiB by Content-Length to a ${deployment} route: byte for byte at the model${deployment === 'shadowed' ? ' and its mirror' : ''}`, async () => {
          const body = bodyOf(size, size + deployment.length);
          const [before, copies] = [seen.length, mirrored.length];
          const { res, socket } = await exchange(Buffer.concat([Buffer.from(head(deployment, [`Content-Length: ${size}`])), body]));
          socket.destroy();
          expect(res?.status).toBe(200);
          expect(JSON.parse(res!.body.toString())).toEqual({ bytes: size, sha: sha(body) });
          expect(seen.length - before).toBe(1);
          if (deployment === 'shadowed') {
            await waitFor(() => mirrored.length > copies, 10_000);
            await mirrored[copies]!.done;
            expect(sha(Buffer.concat(mirrored[copies]!.pieces))).toBe(sha(body));
          }
        });
      }
    }

    it('a client gone mid-body: the model sees an aborted request, never a shorter whole one', async () => {
      const body = bodyOf(4 * MiB, 3);
      const before = seen.length;
      const { socket } = await connect(gw.port);
      await writeAll(socket, head('plain', [`Content-Length: ${body.length}`]));
      await writeAll(socket, body.subarray(0, MiB));
      await waitFor(() => seen.length > before, 10_000);
      await seen[before]!.started;
      socket.destroy();
      await seen[before]!.done;
      expect(seen[before]!.aborted).toBe(true);
      expect(seen[before]!.complete).toBe(false);
      expect(seen[before]!.bytes).toBeLessThan(body.length);
    });

    it('requests pipelined behind a large body on one connection: each answered in order, each body exact', async () => {
      const large = bodyOf(2 * MiB, 4);
      const small = Buffer.from('{"data":{"ndarray":[[1,2]]}}');
      const before = seen.length;
      const bytes = Buffer.concat([
        Buffer.from(head('plain', [`Content-Length: ${large.length}`, 'X-Order: 1'])),
        large,
        Buffer.from(head('plain', [`Content-Length: ${small.length}`, 'X-Order: 2'])),
        small,
      ]);
      const { res, reader, socket } = await exchange(bytes);
      const second = await readHttpResponse(reader, { timeoutMs: 20_000 });
      socket.destroy();
      expect([res?.status, second?.status]).toEqual([200, 200]);
      expect(JSON.parse(res!.body.toString())).toEqual({ bytes: large.length, sha: sha(large) });
      expect(JSON.parse(second!.body.toString())).toEqual({ bytes: small.length, sha: sha(small) });
      expect(seen.slice(before).map((s) => s.headers['x-order'])).toEqual(['1', '2']);
    });

    it('a model that answers before the body ended: the client gets that answer with Connection: close, and the model never a whole body it did not read', async () => {
      const body = bodyOf(4 * MiB, 5);
      let answered!: () => void;
      const early = new Promise<void>((r) => (answered = r));
      model.setHandler((req, res) => {
        req.on('error', () => undefined);
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': '13' });
        res.end('{"early":true}'.slice(0, 13));
        answered();
      });
      try {
        const { socket, reader } = await connect(gw.port);
        await writeAll(socket, head('plain', [`Content-Length: ${body.length}`]));
        await writeAll(socket, body.subarray(0, 128 * 1024));
        await early;
        const res = await readHttpResponse(reader, { timeoutMs: 20_000 });
        expect(res?.status).toBe(200);
        expect(res?.body.toString()).toBe('{"early":true');
        expect(headerValue(res!.headers, 'connection')).toBe('close');
        socket.end(body.subarray(128 * 1024));
        await waitFor(() => reader.ended, 10_000);
      } finally {
        model.setHandler(streamingModel(seen));
      }
    });

    for (const size of [MiB, 8 * MiB]) {
      for (const deployment of ['plain', 'canary', 'retried', 'shadowed']) {
        it(`${size / MiB} MiB chunked to a ${deployment} route: decoded on the lane, byte for byte at the model${deployment === 'shadowed' ? ' and its mirror' : ''}, re-chunked as Node's path sends it`, async () => {
          const body = bodyOf(size, 3 * size + deployment.length);
          const handed = await metric(gw.adminUrl, HANDOFFS);
          const [before, copies] = [seen.length, mirrored.length];
          const { res, socket } = await exchange(Buffer.concat([Buffer.from(head(deployment, ['Transfer-Encoding: chunked'])), chunkedOf(body, size, 'X-Trailer: t\r\n')]));
          socket.destroy();
          expect(res?.status).toBe(200);
          expect(JSON.parse(res!.body.toString())).toEqual({ bytes: size, sha: sha(body) });
          expect(seen.length - before).toBe(1);
          // No length to give: chunked toward the model, as Node's server's requests go (a retry's
          // body kept whole, within --retry-buffer, goes with its length); the trailer dropped.
          const kept = deployment === 'retried' && size <= 2 * MiB;
          expect(seen[before]!.headers['transfer-encoding']).toBe(kept ? undefined : 'chunked');
          expect(seen[before]!.headers['content-length']).toBe(kept ? String(size) : undefined);
          expect(seen[before]!.headers['x-trailer']).toBeUndefined();
          expect(await metric(gw.adminUrl, HANDOFFS)).toBe(handed);
          if (deployment === 'shadowed') {
            await waitFor(() => mirrored.length > copies, 10_000);
            await mirrored[copies]!.done;
            expect(sha(Buffer.concat(mirrored[copies]!.pieces))).toBe(sha(body));
          }
        });
      }
    }

    it('a chunked body streams: the model has the first bytes before the client sends the last chunk', async () => {
      const body = bodyOf(4 * MiB, 11);
      const framed = chunkedOf(body, 11);
      const before = seen.length;
      const { socket, reader } = await connect(gw.port);
      await writeAll(socket, head('plain', ['Transfer-Encoding: chunked']));
      await writeAll(socket, framed.subarray(0, 300 * 1024));
      await waitFor(() => seen.length > before, 10_000);
      await seen[before]!.started;
      expect(seen[before]!.complete).toBe(false);
      await writeAll(socket, framed.subarray(300 * 1024));
      const res = await readHttpResponse(reader, { timeoutMs: 30_000 });
      socket.destroy();
      expect(JSON.parse(res!.body.toString())).toEqual({ bytes: body.length, sha: sha(body) });
    });

    it('a chunked body past --max-body: 413 with Connection: close, the model never a whole request nor a byte past the limit', async () => {
      const body = bodyOf(MAX_BODY + 64 * 1024, 12);
      const before = seen.length;
      const { res, reader, socket } = await exchange(Buffer.concat([Buffer.from(head('plain', ['Transfer-Encoding: chunked'])), chunkedOf(body, 12)]));
      expect(res?.status).toBe(413);
      expect(headerValue(res!.headers, 'connection')).toBe('close');
      expect(JSON.parse(res!.body.toString()).status).toMatchObject({ code: 413, status: 'FAILURE' });
      await waitFor(() => reader.ended, 10_000);
      socket.destroy();
      for (const s of seen.slice(before)) {
        await s.done;
        expect(s.complete).toBe(false);
        expect(s.bytes).toBeLessThanOrEqual(MAX_BODY);
      }
    });

    it('a client gone mid-chunk: the model sees an aborted request, never a shorter whole one', async () => {
      const body = bodyOf(2 * MiB, 13);
      const before = seen.length;
      const { socket } = await connect(gw.port);
      await writeAll(socket, head('plain', ['Transfer-Encoding: chunked']));
      // One chunk announced whole, half of it sent.
      await writeAll(socket, Buffer.concat([Buffer.from(`${body.length.toString(16)}\r\n`), body.subarray(0, MiB)]));
      await waitFor(() => seen.length > before, 10_000);
      await seen[before]!.started;
      socket.destroy();
      await seen[before]!.done;
      expect(seen[before]!.aborted).toBe(true);
      expect(seen[before]!.complete).toBe(false);
    });

    it('requests pipelined behind a 1 MiB chunked body, and a request hidden after its last chunk: each its own, answered in order, each body exact', async () => {
      const large = bodyOf(MiB, 14);
      const small = Buffer.from('{"data":{"ndarray":[[1,2]]}}');
      const before = seen.length;
      const bytes = Buffer.concat([
        Buffer.from(head('plain', ['Transfer-Encoding: chunked', 'X-Order: 1'])),
        chunkedOf(large, 14),
        Buffer.from(head('plain', [`Content-Length: ${small.length}`, 'X-Order: 2'])),
        small,
        Buffer.from(head('plain', ['Transfer-Encoding: chunked', 'X-Order: 3'])),
        chunkedOf(small, 15),
      ]);
      const { res, reader, socket } = await exchange(bytes);
      const second = await readHttpResponse(reader, { timeoutMs: 20_000 });
      const third = await readHttpResponse(reader, { timeoutMs: 20_000 });
      socket.destroy();
      expect([res?.status, second?.status, third?.status]).toEqual([200, 200, 200]);
      expect(JSON.parse(res!.body.toString())).toEqual({ bytes: large.length, sha: sha(large) });
      expect(JSON.parse(second!.body.toString())).toEqual({ bytes: small.length, sha: sha(small) });
      expect(JSON.parse(third!.body.toString())).toEqual({ bytes: small.length, sha: sha(small) });
      expect(seen.slice(before).map((s) => s.headers['x-order'])).toEqual(['1', '2', '3']);
    });

    it('a chunked body the gateway answered early (404) is decoded and dropped; the next request is served', async () => {
      const body = bodyOf(MiB, 16);
      const before = seen.length;
      const next = `GET ${PATH('plain')} HTTP/1.1\r\nHost: gw\r\nX-Next: 3\r\n\r\n`;
      const bytes = Buffer.concat([Buffer.from(`POST /seldon/ml/nowhere/api/v1.0/predictions HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n`), chunkedOf(body, 16), Buffer.from(next)]);
      const { res, reader, socket } = await exchange(bytes);
      expect(res?.status).toBe(404);
      const second = await readHttpResponse(reader, { timeoutMs: 20_000 });
      socket.destroy();
      expect(second?.status).toBe(200);
      expect(seen.slice(before).map((s) => s.headers['x-next'])).toEqual(['3']);
    });

    it('a model that answers a chunked body early: the client gets that answer, the rest of the body is drained, and the model never gets it whole', async () => {
      const body = bodyOf(4 * MiB, 17);
      const framed = chunkedOf(body, 17);
      let answered!: () => void;
      const early = new Promise<void>((r) => (answered = r));
      model.setHandler((req, res) => {
        req.on('error', () => undefined);
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': '13' });
        res.end('{"early":true}'.slice(0, 13));
        answered();
      });
      try {
        const { socket, reader } = await connect(gw.port);
        await writeAll(socket, head('plain', ['Transfer-Encoding: chunked']));
        await writeAll(socket, framed.subarray(0, 128 * 1024));
        await early;
        const res = await readHttpResponse(reader, { timeoutMs: 20_000 });
        expect(res?.status).toBe(200);
        expect(res?.body.toString()).toBe('{"early":true');
        socket.end(framed.subarray(128 * 1024));
        await waitFor(() => reader.ended, 10_000);
      } finally {
        model.setHandler(streamingModel(seen));
      }
    });

    it('an unread answer-less body the gateway refused early (404) is read and dropped by its length; the next request is served', async () => {
      const body = bodyOf(MiB, 6);
      const before = seen.length;
      const next = `GET ${PATH('plain')} HTTP/1.1\r\nHost: gw\r\nX-Next: 2\r\n\r\n`;
      const bytes = Buffer.concat([Buffer.from(`POST /seldon/ml/nowhere/api/v1.0/predictions HTTP/1.1\r\nHost: gw\r\nContent-Length: ${body.length}\r\n\r\n`), body, Buffer.from(next)]);
      const { res, reader, socket } = await exchange(bytes);
      expect(res?.status).toBe(404);
      const second = await readHttpResponse(reader, { timeoutMs: 20_000 });
      socket.destroy();
      expect(second?.status).toBe(200);
      expect(seen.slice(before).map((s) => s.headers['x-next'])).toEqual(['2']);
    });
  });
});

describe('--client-request-timeout covers a streamed body', () => {
  let model: HttpBackend;
  let gw: TestGateway;
  const seen: Seen[] = [];

  beforeAll(async () => {
    model = await startHttpBackend({ name: 'model', bufferBody: false, handler: streamingModel(seen) });
    gw = await startTestGateway({
      manifests: { 'plain.yaml': sdep('plain', 'ml', { predictors: [{ name: 'main' }] }) },
      resolve: { 'plain-main.ml:8000': model.port },
      args: ['--client-header-timeout', '1s', '--client-request-timeout', '2s'],
    });
  });

  afterAll(async () => {
    await gw?.stop();
    await model?.close();
  });

  it('a body that stops coming: 408 on its own exchange with Connection: close, and the model sees its request aborted', async () => {
    const body = bodyOf(MiB, 8);
    const { socket, reader } = await connect(gw.port);
    await writeAll(socket, head('plain', [`Content-Length: ${body.length}`]));
    await writeAll(socket, body.subarray(0, 256 * 1024));
    // The rest never comes: the request timeout answers.
    const res = await readHttpResponse(reader, { timeoutMs: 20_000 });
    expect(res?.status).toBe(408);
    expect(headerValue(res!.headers, 'connection')).toBe('close');
    expect(JSON.parse(res!.body.toString()).status).toMatchObject({ code: 408, status: 'FAILURE' });
    await waitFor(() => seen.length > 0, 10_000);
    await seen[0]!.done;
    expect(seen[0]!.aborted).toBe(true);
    expect(seen[0]!.complete).toBe(false);
    await waitFor(() => reader.ended, 10_000);
    socket.destroy();
    expect(await metric(gw.adminUrl, 'seldon_gateway_client_errors_total{reason="request_timeout"}')).toBe(1);
  });
});

describe('a body whose reader does not read: the lane holds a bounded part of it, not the whole', () => {
  it.each([
    ['by Content-Length', false],
    ['chunked', true],
  ])('8 MiB (%s) sent to a paused reader: the lane stops reading the socket with at most two socket reads held; all of it arrives once read', async (_framing, chunked) => {
    let exchangeSeen: LaneExchange | undefined;
    const lane = new Http1Lane({
      maxHeadBytes: 16 * 1024,
      maxHeaders: 100,
      maxBodyBytes: 64 * 1024,
      keepAliveTimeoutMs: 5000,
      headerTimeoutMs: 5000,
      requestTimeoutMs: 0,
      route: () => (req) => {
        exchangeSeen = req;
      },
      bodyLimitBytes: 0,
      handOff: (socket) => socket.destroy(),
      timedOut: (socket) => socket.destroy(),
      bodyRefused: (socket) => socket.destroy(),
    });
    const server = net.createServer((socket) => {
      socket.on('error', () => undefined);
      lane.connection(socket);
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const port = (server.address() as AddressInfo).port;
    const body = bodyOf(8 * MiB, 7);
    const client = net.connect(port, '127.0.0.1');
    client.on('error', () => undefined);
    await once(client, 'connect');
    client.write(`POST /m HTTP/1.1\r\nHost: gw\r\n${chunked ? 'Transfer-Encoding: chunked' : `Content-Length: ${body.length}`}\r\n\r\n`);
    client.write(chunked ? chunkedOf(body, 7) : body);
    try {
      await waitFor(() => exchangeSeen !== undefined, 5000);
      const x = exchangeSeen!;
      const stream = x.body as import('node:stream').Readable;
      // Nobody reads: the body fills to its mark and the lane stops reading the socket.
      await waitFor(() => x.socket.isPaused(), 5000);
      const held = stream.readableLength;
      expect(held).toBeGreaterThan(0);
      expect(held).toBeLessThanOrEqual(2 * 64 * 1024 + 64 * 1024);
      expect(x.socket.bytesRead).toBeLessThan(body.length);
      expect(x.complete).toBe(false);
      // Read now: every byte, in order, and the request is then complete.
      const pieces: Buffer[] = [];
      stream.on('data', (c: Buffer) => pieces.push(c));
      await once(stream, 'end');
      expect(sha(Buffer.concat(pieces))).toBe(sha(body));
      expect(x.complete).toBe(true);
      x.writeHead(200, { 'content-length': '0' });
      x.end();
    } finally {
      client.destroy();
      server.close();
    }
  });
});
