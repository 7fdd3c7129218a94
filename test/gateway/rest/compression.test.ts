/**
 * Compression both ways over real sockets (docs/edge.md#compression): a real gateway with
 * --compress zstd,br,gzip, a recording model, raw HTTP/1.1 clients.
 *
 * - per coding, the client's decoded body is the model's bytes exactly, with Content-Encoding,
 *   Vary, no stale Content-Length and a weak ETag;
 * - every answer that must not be compressed arrives byte for byte as the model sent it;
 * - Accept-Encoding's q-values choose the coding, the gateway's order breaking ties;
 * - answers compressed at once, held whole or streamed, each decode to their own model bytes;
 *   a model that breaks off mid-answer gives its client an answer cut short, and the next is whole;
 * - a large answer streams: compressed bytes reach the client before the model's last byte;
 * - a deployment with `decodeRequests` gets plain bodies; a corrupt body is a 400 and a bomb a
 *   413, neither reaching the model; without the opt-in an encoded body passes as it came.
 */
import { once } from 'node:events';
import http from 'node:http';
import http2 from 'node:http2';
import { brotliCompressSync, brotliDecompressSync, deflateSync, gunzipSync, gzipSync, zstdCompressSync, zstdDecompressSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { headerValue, headerValues, rawRequest, startRecordingUpstream, type Answer, type HeaderLine, type RawResponse, type RecordingUpstream } from '../../fixtures/recording-upstream.js';
import { sdep, startTestGateway, type TestGateway } from '../../helpers/gateway.js';
import { listenLocal } from '../../helpers/net.js';
import type { BackendJson, TableJson } from '../../../routing/table/describe.js';

const MODEL = '/seldon/m/model/api/v1.0/predictions';
const DECODING = '/seldon/m/dec/api/v1.0/predictions';
const STREAM = '/seldon/m/stream/api/v1.0/predictions';

/** A JSON tensor as a model sends it: repetitive, so it compresses well. */
function tensor(n: number): Buffer {
  const values = Array.from({ length: n }, (_, i) => Math.round(Math.sin(i) * 1e6) / 1e6);
  return Buffer.from(JSON.stringify({ data: { ndarray: [values] }, meta: {} }));
}

const BIG = tensor(10_000);

/** The answers the model gives, by the request's X-Case. */
const CASES: Record<string, Answer> = {
  json: { headers: [['Content-Type', 'application/json']], body: BIG },
  etag: {
    headers: [
      ['Content-Type', 'application/json'],
      ['ETag', '"v1"'],
    ],
    body: BIG,
  },
  identity: {
    headers: [
      ['Content-Type', 'application/json'],
      ['Content-Encoding', 'identity'],
      ['Vary', 'Origin'],
    ],
    body: BIG,
  },
  chunked: { headers: [['Content-Type', 'application/json; charset=utf-8']], body: BIG, framing: 'chunked', chunkSize: 7000 },
  short: { headers: [['Content-Type', 'application/json']], body: '{"data":{"ndarray":[1]}}' },
  // The model breaks off halfway through what its Content-Length promised: held whole, and too large to hold.
  'cut-held': {
    headers: [
      ['Content-Type', 'application/json'],
      ['Content-Length', String(BIG.length)],
    ],
    body: BIG.subarray(0, BIG.length / 2),
    framing: 'none',
    resetAfter: true,
  },
  'cut-streamed': {
    headers: [
      ['Content-Type', 'application/json'],
      ['Content-Length', String(3 * BIG.length)],
    ],
    body: BIG,
    framing: 'none',
    resetAfter: true,
  },
  binary: { headers: [['Content-Type', 'application/octet-stream']], body: BIG },
  encoded: {
    headers: [
      ['Content-Type', 'application/json'],
      ['Content-Encoding', 'gzip'],
    ],
    body: gzipSync(BIG),
  },
  'no-transform': {
    headers: [
      ['Content-Type', 'application/json'],
      ['Cache-Control', 'public, no-transform'],
    ],
    body: BIG,
  },
  'no-content': { statusLine: 'HTTP/1.1 204 No Content', headers: [], framing: 'none' },
  range: {
    statusLine: 'HTTP/1.1 206 Partial Content',
    headers: [
      ['Content-Type', 'application/json'],
      ['Content-Range', `bytes 0-999/${BIG.length}`],
    ],
    body: BIG.subarray(0, 1000),
  },
};

async function ask(port: number, target: string, headers: HeaderLine[], body: Buffer = Buffer.from('{}'), method = 'POST'): Promise<RawResponse> {
  const { res, x } = await rawRequest(port, { method, target, headers: [['Host', 'gw'], ['Content-Type', 'application/json'], ...headers], body: method === 'HEAD' ? undefined : body });
  x.socket.destroy();
  expect(res, 'an answer').not.toBeNull();
  return res!;
}

const DECODE = { gzip: gunzipSync, br: brotliDecompressSync, zstd: zstdDecompressSync } as const;

describe('answers compressed for clients that ask', () => {
  let model: RecordingUpstream;
  let streaming: { port: number; close(): Promise<void> };
  let lastByte: (() => void) | undefined;
  let gw: TestGateway;

  beforeAll(async () => {
    model = await startRecordingUpstream({
      name: 'model',
      responder: (req) => CASES[headerValue(req.headers, 'x-case') ?? ''] ?? { headers: [['Content-Type', 'application/json']], body: req.body },
    });
    // A model that sends half its answer, then the rest only when the test says so.
    const server = http.createServer((req, res) => {
      req.resume();
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write(BIG.subarray(0, BIG.length / 2));
      lastByte = () => res.end(BIG.subarray(BIG.length / 2));
    });
    streaming = await listenLocal(server);
    gw = await startTestGateway({
      manifests: {
        'model.yaml': sdep('model', 'm', { predictors: [{ name: 'main' }] }),
        'dec.yaml': sdep('dec', 'm', { predictors: [{ name: 'main' }] }, { 'seldon.io/gateway-compression': '{decodeRequests: true}' }),
        'stream.yaml': sdep('stream', 'm', { predictors: [{ name: 'main' }] }),
      },
      resolve: { 'model-main.m:8000': model.port, 'dec-main.m:8000': model.port, 'stream-main.m:8000': streaming.port },
      args: ['--compress', 'zstd,br,gzip', '--max-body', '1MiB'],
    });
  });
  afterAll(async () => {
    await gw?.stop();
    await model?.close();
    await streaming?.close();
  });

  for (const coding of ['gzip', 'br', 'zstd'] as const) {
    it(`${coding}: the client decodes the model's bytes exactly`, async () => {
      for (const c of ['json', 'chunked']) {
        const res = await ask(gw.port, MODEL, [
          ['X-Case', c],
          ['Accept-Encoding', coding],
        ]);
        expect(res.status).toBe(200);
        expect(headerValue(res.headers, 'content-encoding')).toBe(coding);
        expect(headerValue(res.headers, 'vary')).toBe('Accept-Encoding');
        expect(headerValue(res.headers, 'content-length')).toBeUndefined();
        expect(res.chunked).toBe(true);
        expect(res.body.length).toBeLessThan(BIG.length / 2);
        expect(DECODE[coding](res.body).equals(BIG)).toBe(true);
      }
    });
  }

  it("over HTTP/2 too: the client decodes the model's bytes exactly", async () => {
    const session = http2.connect(gw.url);
    try {
      const stream = session.request({ ':method': 'POST', ':path': MODEL, 'accept-encoding': 'br', 'x-case': 'json', 'content-type': 'application/json' });
      stream.end('{}');
      const [headers] = (await once(stream, 'response')) as [http2.IncomingHttpHeaders];
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      await once(stream, 'end');
      expect(headers['content-encoding']).toBe('br');
      expect(headers['content-length']).toBeUndefined();
      expect(brotliDecompressSync(Buffer.concat(chunks)).equals(BIG)).toBe(true);
    } finally {
      session.close();
    }
  });

  it("with Node's HTTP/1.1 server (--http1-server node) too", async () => {
    const node = await startTestGateway({
      manifests: { 'model.yaml': sdep('model', 'm', { predictors: [{ name: 'main' }] }) },
      resolve: { 'model-main.m:8000': model.port },
      args: ['--compress', 'gzip', '--http1-server', 'node'],
    });
    try {
      const res = await ask(node.port, MODEL, [
        ['X-Case', 'etag'],
        ['Accept-Encoding', 'gzip'],
      ]);
      expect(headerValue(res.headers, 'content-encoding')).toBe('gzip');
      expect(headerValue(res.headers, 'content-length')).toBeUndefined();
      expect(headerValue(res.headers, 'etag')).toBe('W/"v1"');
      expect(gunzipSync(res.body).equals(BIG)).toBe(true);
    } finally {
      await node.stop();
    }
  });

  it('a strong ETag is made weak; Content-Length goes', async () => {
    const res = await ask(gw.port, MODEL, [
      ['X-Case', 'etag'],
      ['Accept-Encoding', 'gzip'],
    ]);
    expect(headerValue(res.headers, 'etag')).toBe('W/"v1"');
    expect(gunzipSync(res.body).equals(BIG)).toBe(true);
  });

  it("a model's Content-Encoding: identity gives way to the coding; its Vary is kept beside Accept-Encoding", async () => {
    const res = await ask(gw.port, MODEL, [
      ['X-Case', 'identity'],
      ['Accept-Encoding', 'gzip'],
    ]);
    expect(headerValues(res.headers, 'content-encoding')).toEqual(['gzip']);
    expect(headerValues(res.headers, 'vary')).toEqual(['Origin', 'Accept-Encoding']);
    expect(gunzipSync(res.body).equals(BIG)).toBe(true);
  });

  it('answers that must not be compressed arrive byte for byte as the model sent them', async () => {
    const cases: [string, HeaderLine[], string?][] = [
      ['short', [['Accept-Encoding', 'gzip']]],
      ['binary', [['Accept-Encoding', 'gzip']]],
      ['encoded', [['Accept-Encoding', 'br']]],
      ['no-transform', [['Accept-Encoding', 'gzip']]],
      ['no-content', [['Accept-Encoding', 'gzip']]],
      ['range', [['Accept-Encoding', 'gzip']]],
      ['json', []],
      ['json', [['Accept-Encoding', 'identity']]],
      ['json', [['Accept-Encoding', 'gzip;q=0, br;q=0, zstd;q=0']]],
      ['json', [['Accept-Encoding', 'deflate, compress']]],
      ['json', [['Accept-Encoding', 'gzip']], 'HEAD'],
    ];
    for (const [c, headers, method] of cases) {
      const res = await ask(gw.port, MODEL, [['X-Case', c], ...headers], undefined, method);
      const meant = CASES[c]!;
      const what = `${c} ${JSON.stringify(headers)} ${method ?? ''}`;
      expect(headerValue(res.headers, 'content-encoding'), what).toBe(headerValue(meant.headers!, 'content-encoding'));
      const body = meant.body === undefined ? Buffer.alloc(0) : Buffer.from(meant.body);
      expect(res.body.equals(method === 'HEAD' ? Buffer.alloc(0) : body), what).toBe(true);
      if (method === 'HEAD' || c === 'json') expect(headerValue(res.headers, 'content-length'), what).toBe(String(body.length));
    }
  });

  it("Accept-Encoding's q-values choose the coding; equal ones go by the gateway's order", async () => {
    const cases: [string, string | undefined][] = [
      ['gzip, br, zstd', 'zstd'],
      ['gzip, br', 'br'],
      ['gzip;q=1, br;q=0.5, zstd;q=0.1', 'gzip'],
      ['*', 'zstd'],
      ['*;q=0.5, gzip', 'gzip'],
      ['*, zstd;q=0', 'br'],
      ['identity;q=0, gzip;q=0.2', 'gzip'],
      ['gzip;q=0.5, identity', undefined],
      ['X-GZIP', 'gzip'],
      ['br;q=1.5, gzip', 'gzip'],
    ];
    for (const [accept, coding] of cases) {
      const res = await ask(gw.port, MODEL, [
        ['X-Case', 'json'],
        ['Accept-Encoding', accept],
      ]);
      expect(headerValue(res.headers, 'content-encoding'), accept).toBe(coding);
      const body = coding === undefined ? res.body : DECODE[coding as keyof typeof DECODE](res.body);
      expect(body.equals(BIG), accept).toBe(true);
    }
  });

  it('answers compressed at once are each their own: a kept compressor carries nothing from one answer to the next', async () => {
    const codings = ['gzip', 'zstd', 'br'] as const;
    // Held whole (a known length within 128 KiB), and every eighth too large to hold: it streams.
    const sent = Array.from({ length: 24 }, (_, i) => tensor(i % 8 === 7 ? 15_000 : 500 + i * 300));
    expect(sent[7]!.length).toBeGreaterThan(128 * 1024);
    for (let round = 0; round < 2; round++) {
      const answers = await Promise.all(sent.map((body, i) => ask(gw.port, MODEL, [['Accept-Encoding', codings[i % 3]!]], body)));
      answers.forEach((res, i) => {
        const coding = codings[i % 3]!;
        expect(headerValue(res.headers, 'content-encoding'), `answer ${i}`).toBe(coding);
        expect(DECODE[coding](res.body).equals(sent[i]!), `answer ${i} (${coding}), round ${round}`).toBe(true);
      });
    }
  });

  it('a model that breaks off mid-answer: its client gets an answer cut short, never a whole one, and the next answer is whole', async () => {
    for (const c of ['cut-held', 'cut-streamed']) {
      for (const coding of ['gzip', 'zstd', 'br'] as const) {
        const res = await ask(gw.port, MODEL, [
          ['X-Case', c],
          ['Accept-Encoding', coding],
        ]);
        expect(res.complete, `${c} ${coding}: cut short`).toBe(false);
        const next = await ask(gw.port, MODEL, [
          ['X-Case', 'json'],
          ['Accept-Encoding', coding],
        ]);
        expect(DECODE[coding](next.body).equals(BIG), `${c} ${coding}: the next answer`).toBe(true);
      }
    }
  });

  it("a large answer streams: compressed bytes reach the client before the model's last byte", async () => {
    const req = http.request({ host: '127.0.0.1', port: gw.port, path: STREAM, method: 'POST', headers: { 'accept-encoding': 'gzip', 'content-type': 'application/json' } });
    req.end('{}');
    const [res] = (await once(req, 'response')) as [http.IncomingMessage];
    expect(res.headers['content-encoding']).toBe('gzip');
    const chunks: Buffer[] = [];
    const first = new Promise<void>((resolve) => res.once('data', () => resolve()));
    res.on('data', (c: Buffer) => chunks.push(c));
    await first;
    // The model has not sent its second half: what arrived was compressed from the first.
    expect(lastByte).toBeDefined();
    expect(res.complete).toBe(false);
    lastByte!();
    await once(res, 'end');
    expect(gunzipSync(Buffer.concat(chunks)).equals(BIG)).toBe(true);
  });

  describe('request bodies decoded for models that opt in', () => {
    const plain = tensor(2000);
    const encoders = { gzip: gzipSync, br: brotliCompressSync, zstd: zstdCompressSync, deflate: deflateSync } as const;

    for (const [coding, encode] of Object.entries(encoders)) {
      it(`${coding}: the model gets the plain body, its length, no Content-Encoding`, async () => {
        const before = model.requests.length;
        const res = await ask(gw.port, DECODING, [['Content-Encoding', coding]], encode(plain));
        expect(res.status).toBe(200);
        expect(model.requests.length).toBe(before + 1);
        const got = model.requests.at(-1)!;
        expect(got.body.equals(plain)).toBe(true);
        expect(got.contentLength).toBe(plain.length);
        expect(headerValue(got.headers, 'content-encoding')).toBeUndefined();
      });
    }

    it('a chunked encoded body is decoded too', async () => {
      const before = model.requests.length;
      const { res, x } = await rawRequest(gw.port, {
        target: DECODING,
        headers: [
          ['Host', 'gw'],
          ['Content-Encoding', 'gzip'],
        ],
        body: gzipSync(plain),
        framing: 'chunked',
        chunkSize: 1000,
      });
      x.socket.destroy();
      expect(res?.status).toBe(200);
      expect(model.requests.length).toBe(before + 1);
      expect(model.requests.at(-1)!.body.equals(plain)).toBe(true);
    });

    it('an empty body with a Content-Encoding goes empty, without it', async () => {
      const before = model.requests.length;
      const res = await ask(gw.port, DECODING, [['Content-Encoding', 'gzip']], Buffer.alloc(0));
      expect(res.status).toBe(200);
      expect(model.requests.length).toBe(before + 1);
      const got = model.requests.at(-1)!;
      expect(got.body.length).toBe(0);
      expect(headerValue(got.headers, 'content-encoding')).toBeUndefined();
    });

    it('a corrupt body is a 400 and the model receives nothing', async () => {
      const before = model.requests.length;
      const res = await ask(gw.port, DECODING, [['Content-Encoding', 'gzip']], Buffer.from('not gzip at all'));
      expect(res.status).toBe(400);
      expect(JSON.parse(res.body.toString()).status.reason).toBe('BAD_REQUEST');
      expect(model.requests.length).toBe(before);
    });

    it('a compression bomb is a 413 and the model receives nothing', async () => {
      const before = model.requests.length;
      const bomb = gzipSync(Buffer.alloc(64 * 1024 * 1024));
      expect(bomb.length).toBeLessThan(1024 * 1024);
      const res = await ask(gw.port, DECODING, [['Content-Encoding', 'gzip']], bomb);
      expect(res.status).toBe(413);
      expect(model.requests.length).toBe(before);
    });

    it('without the opt-in an encoded body passes as it came', async () => {
      const encoded = gzipSync(plain);
      const res = await ask(gw.port, MODEL, [['Content-Encoding', 'gzip']], encoded);
      expect(res.status).toBe(200);
      const got = model.requests.at(-1)!;
      expect(got.body.equals(encoded)).toBe(true);
      expect(headerValue(got.headers, 'content-encoding')).toBe('gzip');
    });
  });

  it('/routes shows the policy, and the metrics count the bytes both ways', async () => {
    const table = (await (await fetch(`${gw.adminUrl}/routes`)).json()) as TableJson;
    const members = table.deployments.flatMap((d) => d.routes.flatMap((r) => r.members));
    const rest = (id: string): BackendJson | undefined => members.find((m) => m.id === id && m.upstream.endsWith(':8000'));
    expect(rest('m/model/main')?.compression).toMatchObject({ algorithms: ['zstd', 'br', 'gzip'], decodeRequests: false });
    expect(rest('m/dec/main')?.compression).toMatchObject({ algorithms: ['zstd', 'br', 'gzip'], decodeRequests: true });
    // gRPC is never compressed by the gateway: grpc-encoding is gRPC's own.
    expect(members.filter((m) => m.upstream.endsWith(':5001')).map((m) => m.compression)).toEqual([undefined, undefined, undefined]);
    const text = await (await fetch(`${gw.adminUrl}/metrics`)).text();
    expect(text).toMatch(/seldon_gateway_compression_bytes_total\{direction="response",encoding="gzip",stage="identity"\} [1-9]/);
    expect(text).toMatch(/seldon_gateway_compression_bytes_total\{direction="request",encoding="gzip",stage="encoded"\} [1-9]/);
  });
});
