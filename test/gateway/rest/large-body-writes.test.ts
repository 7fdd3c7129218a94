/**
 * A 1 MiB body costs what its bytes cost on a plain route (load/README.md, large): counted on the model's
 * own sockets in this process, every call passed on to the real function.
 *
 * - a request: the client's 16 KiB DATA frames (64 per MiB, four to a socket read) reach the HTTP/1.1
 *   model gathered, not one socket write per frame;
 * - an answer: the model's 64 KiB pieces go out on the client's stream without pausing the model's socket
 *   per piece (a reading client: Node's stream answers false after every 64 KiB write, its fixed mark);
 *   over HTTP/1.1 the same (the lane's socket says wait at 128 KiB, wire/socket-buffers.ts).
 *
 * - an answer read into the model connection's own buffer, used again for its next read once the client's
 *   socket took the bytes (upstream/http1-connection.ts `onread`), never while a client still holds them;
 *   a connection that carries only small answers, or is idle, holds none (all such read into one shared buffer).
 *
 * Both byte for byte: the model gets the client's body (sha256), the client the model's.
 */
import { createHash } from 'node:crypto';
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { sdep, startTestGateway, type TestGateway } from '../../helpers/gateway.js';

const MiB = 1024 * 1024;
/** The DATA frames a 1 MiB body takes at HTTP/2's default 16 KiB frame size. */
const FRAMES = MiB / 16384;
const PIECE = 64 * 1024;
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
/** Seeded bytes (not a repeated value, so a chunk out of place shows). */
const body = (n: number, seed: number): Buffer => {
  const b = Buffer.allocUnsafe(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    b[i] = x >>> 24;
  }
  return b;
};
const REQUEST = body(MiB, 76);
const ANSWER = body(MiB, 67);

describe('1 MiB bodies on a plain route: socket writes and pauses per body', () => {
  let model: http.Server;
  let modelPort = 0;
  const received: string[] = [];
  let gw: TestGateway;
  let session: http2.ClientHttp2Session;
  /** Socket writes (write or writev calls) and pauses on the gateway's connections to the model. */
  const toModel = { writes: 0, pauses: 0 };
  /** The memory (ArrayBuffers) of the body pieces the gateway wrote to its clients. */
  const toClients = new Set<ArrayBufferLike>();

  beforeAll(async () => {
    model = http.createServer((req, res) => {
      const pieces: Buffer[] = [];
      req.on('data', (c: Buffer) => pieces.push(c));
      req.on('end', () => {
        received.push(sha(Buffer.concat(pieces)));
        if (req.headers['x-answer'] !== 'large') {
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end('{"data":{"ndarray":[1]}}');
          return;
        }
        // The answer in 64 KiB pieces, each as the socket takes it.
        // x-seed: an answer of its own (a chunk of another request's in it shows).
        const answer = req.headers['x-seed'] === undefined ? ANSWER : body(MiB, Number(req.headers['x-seed']));
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': answer.length });
        let at = 0;
        const more = (): void => {
          while (at < answer.length) {
            const ok = res.write(answer.subarray(at, at + PIECE));
            at += PIECE;
            if (!ok) return void res.once('drain', more);
          }
          res.end();
        };
        more();
      });
    });
    await new Promise<void>((r) => model.listen(0, '127.0.0.1', () => r()));
    modelPort = (model.address() as net.AddressInfo).port;
    gw = await startTestGateway({
      manifests: { 'plain.yaml': sdep('plain', 'bodies', { predictors: [{ name: 'main', graph: { name: 'm', implementation: 'SKLEARN_SERVER', modelUri: 'gs://x' } }] }) },
      resolve: { 'plain-main.bodies:8000': modelPort },
    });
    session = http2.connect(gw.url);
    const count = (key: 'writes' | 'pauses', name: '_write' | '_writev' | 'pause'): void => {
      // `_write` and `_writev` are Node's Writable hooks, which its types do not name.
      const proto = net.Socket.prototype as unknown as Record<typeof name, (...a: unknown[]) => unknown>;
      const real = proto[name];
      vi.spyOn(proto, name).mockImplementation(function (this: net.Socket, ...args: unknown[]) {
        if (this.remotePort === modelPort) toModel[key]++;
        else if (key === 'writes') {
          const pieces = name === '_writev' ? (args[0] as { chunk: unknown }[]).map((p) => p.chunk) : [args[0]];
          for (const p of pieces) if (Buffer.isBuffer(p) && p.length >= 16384) toClients.add(p.buffer);
        }
        return real.apply(this, args);
      });
    };
    count('writes', '_write');
    count('writes', '_writev');
    count('pauses', 'pause');
  });
  afterEach(() => {
    toModel.writes = 0;
    toModel.pauses = 0;
    toClients.clear();
  });
  afterAll(async () => {
    vi.restoreAllMocks();
    session?.close();
    await gw?.stop();
    await new Promise<void>((r) => model.close(() => r()));
  });

  const post = (payload: Buffer, headers: Record<string, string> = {}): Promise<{ status: number; body: Buffer }> =>
    new Promise((resolve, reject) => {
      const s = session.request({ ':method': 'POST', ':path': '/seldon/bodies/plain/api/v1.0/predictions', 'content-type': 'application/json', 'content-length': String(payload.length), ...headers });
      const pieces: Buffer[] = [];
      let status = 0;
      s.on('response', (h) => (status = Number(h[':status'])));
      s.on('data', (c: Buffer) => pieces.push(c));
      s.on('end', () => resolve({ status, body: Buffer.concat(pieces) }));
      s.on('error', reject);
      s.end(payload);
    });

  it(`a 1 MiB request (${FRAMES} DATA frames) reaches the model whole in far fewer socket writes than frames`, async () => {
    for (let i = 0; i < 3; i++) {
      received.length = 0;
      toModel.writes = 0;
      const r = await post(REQUEST);
      expect(r.status).toBe(200);
      expect(received).toEqual([sha(REQUEST)]);
      // One write per frame before (65 with the head); gathered per socket read now: 16 reads of 64 KiB, and the head.
      expect(toModel.writes).toBeLessThan(FRAMES / 2);
    }
  });

  it('a 1 MiB answer reaches a reading client whole without pausing the model once per 64 KiB piece', async () => {
    for (let i = 0; i < 3; i++) {
      toModel.pauses = 0;
      const r = await post(Buffer.from('{"data":{"ndarray":[1]}}'), { 'x-answer': 'large' });
      expect(r.status).toBe(200);
      expect(sha(r.body)).toBe(sha(ANSWER));
      // 16 pieces: a pause for each before (every 64 KiB write answered false); now only a client that lags by the body's mark stops the model.
      expect(toModel.pauses).toBeLessThan(MiB / PIECE / 2);
    }
  });

  it('a 1 MiB answer over HTTP/1.1: whole, the model not paused per piece either', async () => {
    for (let i = 0; i < 3; i++) {
      toModel.pauses = 0;
      const r = await fetch(`${gw.url}/seldon/bodies/plain/api/v1.0/predictions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-answer': 'large' },
        body: '{"data":{"ndarray":[1]}}',
      });
      expect(r.status).toBe(200);
      expect(sha(Buffer.from(await r.arrayBuffer()))).toBe(sha(ANSWER));
      expect(toModel.pauses).toBeLessThan(MiB / PIECE / 2);
    }
  });

  /** 1 MiB answers on one keep-alive connection, each of its own seed; `slow`: the client reads a piece at a time, a turn of the loop apart. */
  const rawAnswers = (seeds: number[], slow: boolean): Promise<Buffer[]> =>
    new Promise((resolve, reject) => {
      const s = net.connect(gw.port, '127.0.0.1');
      const got: Buffer[] = [];
      let pieces: Buffer[] = [];
      const ask = (): void => {
        if (got.length === seeds.length) {
          s.end();
          resolve(got);
          return;
        }
        s.write(
          `POST /seldon/bodies/plain/api/v1.0/predictions HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\nX-Answer: large\r\nX-Seed: ${seeds[got.length]}\r\nContent-Length: 2\r\n\r\n{}`,
        );
      };
      s.on('error', reject);
      s.on('connect', ask);
      s.on('data', (c: Buffer) => {
        pieces.push(c);
        if (slow) {
          s.pause();
          setImmediate(() => s.resume());
        }
        const all = Buffer.concat(pieces);
        const end = all.indexOf('\r\n\r\n');
        if (end < 0 || all.length < end + 4 + MiB) return;
        expect(all.subarray(0, 12).toString('latin1')).toBe('HTTP/1.1 200');
        got.push(all.subarray(end + 4, end + 4 + MiB));
        pieces = [all.subarray(end + 4 + MiB)];
        ask();
      });
    });

  it("1 MiB answers to readers fast and slow at once, on keep-alive connections: each client gets its own answer's bytes, and a reading client's answer takes a few of the model connection's buffers, not one per 64 KiB", async () => {
    const clients = [0, 1, 2, 3, 4, 5].map((c) => ({ slow: c % 2 === 1, seeds: [1, 2, 3].map((k) => 1000 + c * 10 + k) }));
    const answers = await Promise.all(clients.map((c) => rawAnswers(c.seeds, c.slow)));
    clients.forEach((c, i) => c.seeds.forEach((seed, k) => expect(sha(answers[i]![k]!), `client ${i} (${c.slow ? 'slow' : 'fast'}), answer ${k}`).toBe(sha(body(MiB, seed)))));
    // One fast reader alone: its model connection reads into the same memory again (16 pieces a MiB, each once a buffer of its own before).
    toClients.clear();
    const alone = await rawAnswers([7, 8, 9, 10], false);
    alone.forEach((a, k) => expect(sha(a)).toBe(sha(body(MiB, 7 + k))));
    expect(toClients.size, 'distinct buffers behind 4 MiB of answers').toBeLessThan((4 * MiB) / PIECE / 2);
  });

  it('small answers on many model connections at once: no connection takes a 64 KiB read buffer of its own (they share one), and an idle one keeps none', async () => {
    // allocUnsafeSlow is what the connection's own read buffer is; counted by its size, every call passed on.
    const readBuffers = vi.spyOn(Buffer, 'allocUnsafeSlow');
    const taken = (): number => readBuffers.mock.calls.filter(([n]) => n === PIECE).length;
    try {
      // 24 clients at once, each its own connection: the pool opens a model connection per request in flight.
      const small = async (): Promise<void> => {
        const r = await post(Buffer.from('{"data":{"ndarray":[1]}}'));
        expect(r.status).toBe(200);
      };
      await Promise.all(Array.from({ length: 24 }, small));
      await Promise.all(Array.from({ length: 24 }, small));
      expect(taken(), 'read buffers taken for 48 small answers').toBeLessThanOrEqual(1);
      // A large answer takes a buffer of its own for its reads (another when a read's bytes are still held, as
      // its head's are): a few, not one per 64 KiB piece; idle again, its connection lets it go, so the next takes its own.
      for (const seed of [21, 22]) {
        const before = taken();
        const [answer] = await rawAnswers([seed], false);
        expect(sha(answer!)).toBe(sha(body(MiB, seed)));
        expect(taken() - before, `read buffers taken by the 1 MiB answer ${seed}`).toBeGreaterThanOrEqual(1);
        expect(taken() - before, `read buffers taken by the 1 MiB answer ${seed}`).toBeLessThanOrEqual(4);
      }
    } finally {
      readBuffers.mockRestore();
    }
  });
});
