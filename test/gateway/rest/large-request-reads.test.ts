/**
 * A large request body over HTTP/1.1 is read into the client connection's own buffer and written on
 * to the model from it (edge/http1-lane.ts, wire/read-buffer.ts): the buffer is read into again only
 * once the model's socket took a read's bytes whole, never while anything still holds them.
 *
 * The attacker's cases first, each byte for byte at the model (sha256 of seeded 1–8 MiB bodies): a
 * model that reads slowly (the gateway's writes to it queue: the bytes queued must not be overwritten
 * by the client's next read), a client that sends slowly, a second request pipelined behind a large
 * body in the same reads, and more bytes than the Content-Length said (the rest is the next request,
 * never the body). Then the count: a 1 MiB body takes a few of the connection's buffers, not one per
 * 64 KiB read (sixteen per MiB before). Real sockets both ways: a raw client, a `node:http` model.
 */
import { createHash } from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { ByteReader, readHttpResponse } from '../../fixtures/recording-upstream.js';
import { sdep, startTestGateway, type TestGateway } from '../../helpers/gateway.js';
import { seededRandom } from '../../../routing/table/pick.js';

const MiB = 1024 * 1024;
const PIECE = 64 * 1024;
const PATH = '/seldon/reads/plain/api/v1.0/predictions';
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** Seeded bytes (a chunk out of place, or overwritten, shows). */
function bodyOf(size: number, seed: number): Buffer {
  const r = seededRandom(seed);
  const out = Buffer.allocUnsafe(size);
  for (let i = 0; i + 4 <= size; i += 4) out.writeUInt32LE(Math.floor(r() * 0x1_0000_0000), i);
  for (let i = size - (size % 4); i < size; i++) out[i] = Math.floor(r() * 256);
  return out;
}

/** A seeded size between 1 and 8 MiB, not a multiple of a read. */
const sizeOf = (r: () => number): number => MiB + Math.floor(r() * 7 * MiB);

const head = (length: number, extra = ''): string => `POST ${PATH} HTTP/1.1\r\nHost: gw\r\nContent-Type: application/octet-stream\r\n${extra}Content-Length: ${length}\r\n\r\n`;

describe('large HTTP/1.1 request bodies read into the client connection’s own buffer', () => {
  let model: http.Server;
  let modelPort = 0;
  let gw: TestGateway;
  /** The sha256 and length of every body the model received, in arrival order. */
  const received: { sha: string; length: number; slow: boolean }[] = [];
  /** The memory (ArrayBuffers) of the body pieces the gateway wrote to the model. */
  const toModel = new Set<ArrayBufferLike>();
  /** The bytes of each socket write to the model that began with a request head. */
  const headWrites: number[] = [];

  beforeAll(async () => {
    model = http.createServer((req, res) => {
      const pieces: Buffer[] = [];
      // x-slow: the model takes a piece, then stops reading for a few milliseconds: the gateway's writes queue.
      const slow = req.headers['x-slow'] === '1';
      req.on('data', (c: Buffer) => {
        pieces.push(Buffer.from(c));
        if (slow) {
          req.pause();
          setTimeout(() => req.resume(), 3);
        }
      });
      req.on('end', () => {
        const whole = Buffer.concat(pieces);
        received.push({ sha: sha(whole), length: whole.length, slow });
        const answer = JSON.stringify({ sha: sha(whole), length: whole.length });
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(answer) });
        res.end(answer);
      });
    });
    model.keepAliveTimeout = 60_000;
    await new Promise<void>((r) => model.listen(0, '127.0.0.1', () => r()));
    modelPort = (model.address() as net.AddressInfo).port;
    gw = await startTestGateway({
      // A slow model takes seconds over 8 MiB on a busy machine: Seldon's 3 s default would cut it.
      manifests: {
        'plain.yaml': sdep('plain', 'reads', { predictors: [{ name: 'main', graph: { name: 'm', implementation: 'SKLEARN_SERVER', modelUri: 'gs://x' } }] }, { 'seldon.io/rest-timeout': '60000' }),
      },
      resolve: { 'plain-main.reads:8000': modelPort },
      args: ['--max-body', String(9 * MiB)],
    });
    const proto = net.Socket.prototype as unknown as Record<'_write' | '_writev', (...a: unknown[]) => unknown>;
    for (const name of ['_write', '_writev'] as const) {
      const real = proto[name];
      // Node's Writable hooks, which its types do not name: every call passed on.
      vi.spyOn(proto, name).mockImplementation(function (this: net.Socket, ...args: unknown[]) {
        if (this.remotePort === modelPort) {
          const pieces = name === '_writev' ? (args[0] as { chunk: unknown }[]).map((p) => p.chunk) : [args[0]];
          for (const p of pieces) if (Buffer.isBuffer(p) && p.length >= 16384) toModel.add(p.buffer);
          const first = pieces[0];
          if ((Buffer.isBuffer(first) || typeof first === 'string') && first.slice(0, 5).toString() === 'POST ')
            headWrites.push(pieces.reduce<number>((n, p) => n + (Buffer.isBuffer(p) || typeof p === 'string' ? Buffer.byteLength(p) : 0), 0));
        }
        return real.apply(this, args);
      });
    }
  });
  afterEach(() => {
    received.length = 0;
    toModel.clear();
    headWrites.length = 0;
  });
  afterAll(async () => {
    vi.restoreAllMocks();
    await gw?.stop();
    await new Promise<void>((r) => model.close(() => r()));
  });

  /** A raw client on its own connection. */
  const connect = async (): Promise<{ s: net.Socket; reader: ByteReader }> => {
    const s = net.connect(gw.port, '127.0.0.1');
    s.setNoDelay(true);
    await new Promise<void>((r, j) => s.once('connect', r).once('error', j));
    return { s, reader: new ByteReader(s) };
  };

  /** The model's answer to one request: the sha256 and length it received. */
  const answerOf = async (reader: ByteReader): Promise<{ sha: string; length: number }> => {
    const r = await readHttpResponse(reader, { timeoutMs: 60_000 });
    expect(r?.status, r?.body.toString()).toBe(200);
    return JSON.parse(r!.body.toString()) as { sha: string; length: number };
  };

  it('a model that reads slowly: six clients at once, seeded 1–8 MiB bodies, each arrives whole and unchanged (the bytes queued to the model never overwritten)', async () => {
    const r = seededRandom(20261128);
    const bodies = Array.from({ length: 6 }, (_, i) => bodyOf(sizeOf(r), 100 + i));
    const answers = await Promise.all(
      bodies.map(async (b, i) => {
        const { s, reader } = await connect();
        // Half of them to a slow model; the others at the model's pace, on the same gateway at once.
        s.write(head(b.length, i % 2 === 0 ? 'X-Slow: 1\r\n' : ''));
        s.write(b);
        const a = await answerOf(reader);
        s.destroy();
        return a;
      }),
    );
    bodies.forEach((b, i) => expect(answers[i], `body ${i} (${b.length} bytes)`).toEqual({ sha: sha(b), length: b.length }));
    expect(received.filter((x) => x.slow).length).toBe(3);
  });

  it('a client that sends slowly, in odd pieces a turn of the loop apart: the body arrives whole and unchanged', async () => {
    const r = seededRandom(7);
    const b = bodyOf(sizeOf(r), 7);
    const { s, reader } = await connect();
    s.write(head(b.length));
    let at = 0;
    await new Promise<void>((done) => {
      const more = (): void => {
        if (at >= b.length) return done();
        const n = 1 + Math.floor(r() * 3 * PIECE);
        s.write(b.subarray(at, at + n));
        at += n;
        setImmediate(more);
      };
      more();
    });
    expect(await answerOf(reader)).toEqual({ sha: sha(b), length: b.length });
    s.destroy();
  });

  it('a request pipelined behind a large body, in the same writes: each body whole to the model, the answers in order', async () => {
    const first = bodyOf(3 * MiB + 5, 31);
    const second = bodyOf(2 * MiB + 77, 32);
    const small = Buffer.from('{"data":{"ndarray":[1]}}');
    const { s, reader } = await connect();
    // One buffer: the first body's last read carries the next request's head and body.
    s.write(Buffer.concat([Buffer.from(head(first.length, 'X-Slow: 1\r\n')), first, Buffer.from(head(second.length)), second, Buffer.from(head(small.length)), small]));
    expect(await answerOf(reader)).toEqual({ sha: sha(first), length: first.length });
    expect(await answerOf(reader)).toEqual({ sha: sha(second), length: second.length });
    expect(await answerOf(reader)).toEqual({ sha: sha(small), length: small.length });
    expect(received.map((x) => x.sha)).toEqual([sha(first), sha(second), sha(small)]);
    s.destroy();
  });

  it('more bytes than the Content-Length said: the model gets exactly that many; the rest is read as the next request (here not one: 400, closed)', async () => {
    const b = bodyOf(2 * MiB, 41);
    const extra = bodyOf(PIECE + 3, 42);
    const { s, reader } = await connect();
    s.write(head(b.length, 'X-Slow: 1\r\n'));
    s.write(Buffer.concat([b, extra]));
    expect(await answerOf(reader)).toEqual({ sha: sha(b), length: b.length });
    const next = await readHttpResponse(reader, { timeoutMs: 60_000 });
    expect(next?.status).toBe(400);
    expect(received).toEqual([{ sha: sha(b), length: b.length, slow: true }]);
    s.destroy();
  });

  it('on one connection, after a large body the lane served: a chunked large body, then one the lane hands to Node’s server (Expect), each byte for byte', async () => {
    const first = bodyOf(2 * MiB + 9, 61);
    const chunked = bodyOf(3 * MiB + 1, 62);
    const handed = bodyOf(2 * MiB + 3, 63);
    const r = seededRandom(64);
    const frames: Buffer[] = [];
    for (let at = 0; at < chunked.length;) {
      const n = Math.min(chunked.length - at, 1 + Math.floor(r() * 200_000));
      frames.push(Buffer.from(`${n.toString(16)}\r\n`), chunked.subarray(at, at + n), Buffer.from('\r\n'));
      at += n;
    }
    frames.push(Buffer.from('0\r\n\r\n'));
    const { s, reader } = await connect();
    s.write(head(first.length));
    s.write(first);
    expect(await answerOf(reader)).toEqual({ sha: sha(first), length: first.length });
    s.write(`POST ${PATH} HTTP/1.1\r\nHost: gw\r\nContent-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n`);
    s.write(Buffer.concat(frames));
    expect(await answerOf(reader)).toEqual({ sha: sha(chunked), length: chunked.length });
    // `Expect: 100-continue` is not the lane's: the connection goes to Node's server, which reads the socket from here.
    s.write(head(handed.length, 'Expect: 100-continue\r\n'));
    s.write(handed);
    expect(await answerOf(reader)).toEqual({ sha: sha(handed), length: handed.length });
    expect(received.map((x) => x.sha)).toEqual([sha(first), sha(chunked), sha(handed)]);
    s.destroy();
  });

  it('1 MiB bodies to a model that keeps up: the connection reads into a few buffers of its own again, not a new one per 64 KiB read', async () => {
    const { s, reader } = await connect();
    const bodies = [51, 52, 53, 54].map((seed) => bodyOf(MiB, seed));
    for (const b of bodies) {
      s.write(head(b.length));
      s.write(b);
      expect(await answerOf(reader)).toEqual({ sha: sha(b), length: b.length });
    }
    // Sixteen reads a MiB, each a buffer of its own before (64 for these four bodies).
    expect(toModel.size, 'distinct buffers behind 4 MiB of request bodies').toBeLessThan((4 * MiB) / PIECE / 2);
    s.destroy();
  });

  it('256 KiB bodies to a model that keeps up: each read goes on as it comes, so the connection reads into its own buffer again, not a new one per read', async () => {
    const { s, reader } = await connect();
    const bodies = [61, 62, 63, 64, 65, 66, 67, 68].map((seed) => bodyOf(256 * 1024, seed));
    for (const b of bodies) {
      s.write(head(b.length));
      s.write(b);
      expect(await answerOf(reader)).toEqual({ sha: sha(b), length: b.length });
    }
    // A body's first read (the read less the head) once held its later reads back to the end of the
    // loop's turn: queued, none taken whole, each read a buffer of its own (four a body). Now two: the
    // first read's copy, which the head keeps, and the one the rest is read into.
    expect(toModel.size, 'distinct buffers behind 8 bodies of 256 KiB').toBeLessThan(3 * bodies.length);
    // Each head left with its body's first bytes, in one write (a write of the head alone before).
    expect(headWrites).toHaveLength(bodies.length);
    for (const n of headWrites) expect(n, 'bytes in the write that carried a head').toBeGreaterThan(16384);
    s.destroy();
  });
});
