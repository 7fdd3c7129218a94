/**
 * REST over HTTP/2 (h2c by prior knowledge) on the public port: the same REST path as HTTP/1.1
 * (gateway/rest/h2.ts into process/data-plane.ts `serve` and rest/proxy.ts), forwarded to the model
 * over HTTP/1.1. A real gateway, recording upstreams (test/fixtures/recording-upstream.ts: what the
 * model received, byte for byte), and three clients: node's http2.connect, curl
 * --http2-prior-knowledge (when installed), and a raw frame writer (helpers/raw-h2.ts) for what those refuse to send
 * (connection-specific fields, `te: gzip`, a reset in the middle of a body).
 *
 * Checked: every route kind (plain, canary, header route, shadow primary and copy, retry, OAuth
 * front end, gated) with bodies by content-length, without it (DATA frames only) and none; the
 * upstream's header lines in order (pseudo-header fields never; `:authority` as Host; cookies
 * joined), body sha256 and framing; the client's status, fields and body; 10 MiB bodies both ways
 * of framing; many streams on one session; /oauth/token over h2; rate limits; 413, 431, 408, 405;
 * connection-specific fields from the model; HEAD, 204, 304; a client reset mid-body and
 * mid-answer (499, the upstream request aborted); rapid reset; the admin paths not on the public port.
 */
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import http2 from 'node:http2';
import net, { type AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { headerValue, headerValues, sha256, startRecordingUpstream, type Answer, type HeaderLine, type RecordedRequest, type RecordingUpstream } from '../../fixtures/recording-upstream.js';
import {
  comparableUpstreamLines,
  expectedUpstreamLines,
  forwardingHeaders,
  framingProblem,
  jsonOfSize,
  binaryOfSize,
  routeKinds,
  startRouteKindUpstreams,
  waitForCase,
  type Framing,
} from '../../helpers/fidelity.js';
import { sdep, startTestGateway, waitFor, type TestGateway } from '../../helpers/gateway.js';
import { basic } from '../../helpers/oauth.js';
import { RawH2 } from '../../helpers/raw-h2.js';
import { LogCapture } from '../../helpers/observability.js';
import { h2RequestHeaders } from '../../../gateway/edge/http-headers.js';
import { h2Host } from '../../../gateway/rest/h2.js';

const NS = 'h2';
const PREDICT = '/api/v1.0/predictions';
const DATE = 'Mon, 01 Jan 2024 00:00:00 GMT';
const MAX_BODY = 11 * 1024 * 1024;
const { NGHTTP2_CANCEL, NGHTTP2_NO_ERROR, NGHTTP2_PROTOCOL_ERROR, NGHTTP2_ENHANCE_YOUR_CALM } = http2.constants;

// ---------------------------------------------------------------------------------------------
// Clients

interface H2Answer {
  status: number;
  headers: http2.IncomingHttpHeaders;
  /** The response fields in order, as received (pseudo-header fields included). */
  raw: string[];
  interim: number[];
  body: Buffer;
  sha256: string;
  /** The stream ended with END_STREAM (a complete answer). */
  ended: boolean;
  rstCode: number | undefined;
  error: string | undefined;
}

interface Send {
  /** Sent in pieces (DATA frames without content-length unless the headers say it). */
  body?: Buffer | Buffer[];
  pieceDelayMs?: number;
  timeoutMs?: number;
}

/** One request on `session`; resolves when the stream closes (or after the timeout: `error` says so). */
function h2(session: http2.ClientHttp2Session, headers: http2.OutgoingHttpHeaders, send: Send = {}): Promise<H2Answer> {
  const body = send.body === undefined ? undefined : Array.isArray(send.body) ? send.body : [send.body];
  return new Promise((resolve) => {
    const out: H2Answer = { status: 0, headers: {}, raw: [], interim: [], body: Buffer.alloc(0), sha256: '', ended: false, rstCode: undefined, error: undefined };
    const chunks: Buffer[] = [];
    let stream: http2.ClientHttp2Stream;
    try {
      stream = session.request({ ':method': 'POST', ...headers }, { endStream: body === undefined });
    } catch (e) {
      out.error = (e as Error & { code?: string }).code ?? (e as Error).message;
      resolve(out);
      return;
    }
    const timer = setTimeout(() => {
      out.error = 'timeout';
      stream.close(NGHTTP2_CANCEL);
    }, send.timeoutMs ?? 20_000);
    stream.on('headers', (h: http2.IncomingHttpHeaders) => out.interim.push(Number(h[':status'])));
    stream.on('response', (h: http2.IncomingHttpHeaders, _flags: number, raw?: string[]) => {
      out.status = Number(h[':status']);
      out.headers = h;
      out.raw = raw ?? [];
    });
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => {
      out.ended = true;
      // Reset (NO_ERROR) by the server after a complete answer while writes were pending: node's
      // client then never emits 'close' by itself (it waits for a 'drain' that cannot come).
      setImmediate(() => {
        if (stream.closed && !stream.destroyed) stream.destroy();
      });
    });
    stream.on('error', (e: Error & { code?: string }) => (out.error ??= e.code ?? e.message));
    stream.on('close', () => {
      clearTimeout(timer);
      out.body = Buffer.concat(chunks);
      out.sha256 = sha256(out.body);
      out.rstCode = stream.rstCode;
      resolve(out);
    });
    if (body !== undefined) {
      void (async () => {
        for (const piece of body) {
          if (stream.destroyed) return;
          if (!stream.write(piece)) await drained(stream);
          if (send.pieceDelayMs) await new Promise((r) => setTimeout(r, send.pieceDelayMs));
        }
        if (!stream.destroyed) stream.end();
      })();
    }
  });
}

/** Resolves once `stream` can take more (or has closed); its listeners removed either way. */
function drained(stream: http2.ClientHttp2Stream): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      stream.off('drain', done);
      stream.off('close', done);
      resolve();
    };
    stream.on('drain', done);
    stream.on('close', done);
  });
}

function connect(port: number): Promise<http2.ClientHttp2Session> {
  const session = http2.connect(`http://127.0.0.1:${port}`);
  session.on('error', () => undefined);
  return new Promise((resolve, reject) => {
    session.once('connect', () => resolve(session));
    session.once('error', reject);
  });
}

const json = (a: H2Answer): { status: { code: number; reason: string; info: string; status: string } } => JSON.parse(a.body.toString()) as never;

/** The response fields as [name, value] lines, without pseudo-header fields and Date. */
/** The answer's fields, without the pseudo-headers and those whose value is the moment's (date, the upstream's time, checked by test/gateway/edge/envoy-defaults.test.ts). */
function answerLines(a: H2Answer): HeaderLine[] {
  const out: HeaderLine[] = [];
  for (let i = 0; i < a.raw.length; i += 2) if (!a.raw[i]!.startsWith(':') && a.raw[i] !== 'date' && a.raw[i] !== 'x-envoy-upstream-service-time') out.push([a.raw[i]!, a.raw[i + 1]!]);
  return out;
}

/** Split a buffer into `n` pieces (DATA frames of a body without content-length). */
function pieces(b: Buffer, n: number): Buffer[] {
  const size = Math.ceil(b.length / n) || 1;
  const out: Buffer[] = [];
  for (let i = 0; i < b.length; i += size) out.push(b.subarray(i, i + size));
  return out;
}

const CURL = await new Promise<boolean>((resolve) => {
  execFile('curl', ['--version'], (err, stdout) => resolve(err === null && /\bHTTP2\b/.test(stdout)));
});

function curl(args: string[]): Promise<{ code: number | null; stdout: Buffer; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn('curl', ['--silent', '--show-error', '--max-time', '20', '--http2-prior-knowledge', ...args]);
    const out: Buffer[] = [];
    let err = '';
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('close', (code) => resolve({ code, stdout: Buffer.concat(out), stderr: err }));
  });
}

// ---------------------------------------------------------------------------------------------
// The gateway and its upstreams

/** The answer every matrix upstream gives: odd reason phrase, odd-case and repeated fields, a hop-by-hop Keep-Alive, every byte value in the body. */
function modelAnswer(name: string, req: RecordedRequest, statusLine = 'HTTP/1.1 201 Created By Model'): Answer {
  const id = headerValue(req.headers, 'x-case') ?? 'none';
  return {
    statusLine,
    headers: [
      ['Content-Type', 'application/x-model; charset=binary'],
      ['Date', DATE],
      ['X-Upstream', name],
      ['X-Dup', 'a'],
      ['x-dup', 'b'],
      ['Keep-Alive', 'timeout=30'],
      ['Set-Cookie', 'a=1; Path=/'],
      ['Set-Cookie', 'b=2; Path=/'],
    ],
    body: Buffer.concat([Buffer.from(JSON.stringify({ upstream: name, case: id, received: req.sha256, bytes: req.body.length })), binaryOfSize(300)]),
    framing: req.chunked ? 'chunked' : 'content-length',
    chunkSize: 100,
  };
}

/** What the client must see of `modelAnswer` over HTTP/2: the fields without Keep-Alive, lower case, repeated ones together. */
const MODEL_FIELDS: HeaderLine[] = [
  ['content-type', 'application/x-model; charset=binary'],
  ['x-upstream', ''],
  ['x-dup', 'a'],
  ['x-dup', 'b'],
  ['set-cookie', 'a=1; Path=/'],
  ['set-cookie', 'b=2; Path=/'],
];

describe('REST over HTTP/2 (h2c)', () => {
  const up: Record<string, RecordingUpstream> = {};
  let gw: TestGateway;
  let session: http2.ClientHttp2Session;
  /** A node:http model that drips its answer slowly and notes answers cut before they finished. */
  let slow: http.Server;
  const slowCut: string[] = [];
  const slowOpen = new Set<ServerResponse>();
  const warnings: string[] = [];
  const onWarning = (w: Error): void => {
    warnings.push(`${w.name}: ${w.message}`);
  };

  beforeAll(async () => {
    process.on('warning', onWarning);
    Object.assign(up, await startRouteKindUpstreams(['plain', 'header', 'canaryMain', 'canaryCanary', 'shadowMain', 'shadowCopy', 'retry', 'oauth', 'gated', 'edge'], modelAnswer));
    slow = http.createServer((req: IncomingMessage, res: ServerResponse) => {
      const id = String(req.headers['x-case'] ?? '');
      slowOpen.add(res);
      res.on('close', () => {
        slowOpen.delete(res);
        if (!res.writableFinished) slowCut.push(id);
      });
      req.resume();
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'text/plain', 'content-length': 100 * 1000 });
        let sent = 0;
        const tick = setInterval(() => {
          if (res.destroyed || sent >= 100) {
            clearInterval(tick);
            if (!res.destroyed) res.end();
            return;
          }
          res.write('x'.repeat(1000));
          sent++;
        }, 50);
      });
    });
    await new Promise<void>((r) => slow.listen(0, '127.0.0.1', () => r()));
    const kinds = routeKinds(NS, up, { key: 'h2key', secret: 'h2secret' });
    gw = await startTestGateway({
      manifests: {
        ...kinds.manifests,
        'limited.yaml': sdep('limited', NS, { predictors: [{ name: 'main' }] }, { 'seldon.io/gateway-rate-limit': '2/m' }),
        'edge.yaml': sdep('edge', NS, { predictors: [{ name: 'main' }] }),
        'slow.yaml': sdep('slow', NS, { predictors: [{ name: 'main' }] }),
      },
      resolve: {
        ...kinds.resolve,
        [`limited-main.${NS}:8000`]: up.gated!.port,
        [`edge-main.${NS}:8000`]: up.edge!.port,
        [`slow-main.${NS}:8000`]: (slow.address() as AddressInfo).port,
      },
      args: ['--random-seed', '7', '--max-body', String(MAX_BODY)],
    });
    session = await connect(gw.port);
  });
  afterAll(async () => {
    process.off('warning', onWarning);
    session?.close();
    await gw?.stop();
    await Promise.all(Object.values(up).map((u) => u.close()));
    slow?.closeAllConnections();
    await new Promise((r) => slow?.close(r));
  });

  // ---- the matrix: route kinds x body shapes ------------------------------------------------

  type Kind = 'plain' | 'canary' | 'header route' | 'shadow' | 'retry' | 'oauth front end' | 'gated';
  const TARGETS: Record<Kind, { path: string; upstreamPath: string; ups: string[] }> = {
    plain: { path: `/seldon/${NS}/plain${PREDICT}?q=1&r=%2F`, upstreamPath: `${PREDICT}?q=1&r=%2F`, ups: ['plain'] },
    canary: { path: `/seldon/${NS}/canary${PREDICT}?q=2`, upstreamPath: `${PREDICT}?q=2`, ups: ['canaryMain', 'canaryCanary'] },
    'header route': { path: `/seldon/${NS}/plain${PREDICT}?h=1`, upstreamPath: `${PREDICT}?h=1`, ups: ['header'] },
    shadow: { path: `/seldon/${NS}/shadowed${PREDICT}?s=1`, upstreamPath: `${PREDICT}?s=1`, ups: ['shadowMain'] },
    retry: { path: `/seldon/${NS}/retry${PREDICT}`, upstreamPath: PREDICT, ups: ['retry'] },
    'oauth front end': { path: `/api/v0.1/predictions?o=1`, upstreamPath: `/api/v0.1/predictions?o=1`, ups: ['oauth'] },
    gated: { path: `/seldon/${NS}/gated${PREDICT}`, upstreamPath: PREDICT, ups: ['gated'] },
  };
  interface Shape {
    name: string;
    /** cl: a content-length field; chunkless: DATA frames only; none: END_STREAM on HEADERS. */
    framing: 'cl' | 'chunkless' | 'none';
    body: Buffer;
    pieces: number;
  }
  const SHAPES: Shape[] = [
    { name: 'no body', framing: 'none', body: Buffer.alloc(0), pieces: 0 },
    { name: 'content-length JSON', framing: 'cl', body: Buffer.from('{"data":{"ndarray":[[5.1,3.5,1.4,0.2]]}}'), pieces: 1 },
    { name: 'content-length binary 100 KiB in pieces', framing: 'cl', body: binaryOfSize(100 * 1024), pieces: 7 },
    { name: 'no content-length 40 KB in pieces', framing: 'chunkless', body: jsonOfSize(40_000), pieces: 9 },
    { name: 'no content-length, empty', framing: 'chunkless', body: Buffer.alloc(0), pieces: 0 },
  ];
  const framingOf = (s: Shape): Framing => (s.framing === 'cl' ? 'cl' : s.framing === 'chunkless' ? 'chunked' : 'none');
  let token = '';

  /** The request fields a matrix case sends, in order (node's client puts the pseudo-header fields first). */
  function caseFields(kind: Kind, shape: Shape, id: string): HeaderLine[] {
    const f: HeaderLine[] = [
      ['user-agent', 'rest-h2/1.0'],
      ['accept', '*/*'],
      ['content-type', 'application/json'],
      ['x-case', id],
      ['x-mixed', 'Value  with   inner  spaces'],
      ['x-dup', 'one'],
      ['x-dup', 'two'],
      ['seldon-puid', 'puid-123'],
      ['x-forwarded-for', '10.9.9.9'],
      ['x-envoy-original-path', '/forged'],
      ['x-seldon-predictor', 'forged'],
    ];
    if (shape.framing === 'cl') f.push(['content-length', String(shape.body.length)]);
    if (kind === 'header route') f.push(['x-route', 'special']);
    if (kind === 'oauth front end') f.push(['authorization', `Bearer ${token}`]);
    return f;
  }

  /** Fields as node's client takes them: repeated names as arrays (it sends one field per value, in order). */
  function outgoing(fields: HeaderLine[]): http2.OutgoingHttpHeaders {
    const h: Record<string, string | string[]> = {};
    for (const [k, v] of fields) {
      const prev = h[k];
      h[k] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v];
    }
    return h;
  }

  function checkUpstream(got: RecordedRequest, sent: HeaderLine[], shape: Shape, kind: Kind, opts: { copy?: boolean } = {}): void {
    const where = `${got.upstream} #${got.connection}.${got.indexOnConnection}`;
    expect(got.method, `${where}: method`).toBe('POST');
    expect(got.target, `${where}: target`).toBe(TARGETS[kind].upstreamPath);
    expect(got.version, `${where}: version`).toBe('HTTP/1.1');
    // Never a pseudo-header field, in any form.
    expect(
      got.headers.filter(([k]) => k.startsWith(':')),
      `${where}: pseudo-header fields`,
    ).toEqual([]);
    expect(comparableUpstreamLines(got.headers), `${where}: header lines in order`).toEqual(expectedUpstreamLines(sent, { dropAuthorization: kind === 'oauth front end' }));
    expect(headerValues(got.headers, 'host'), `${where}: Host is :authority`).toEqual([opts.copy ? `127.0.0.1-shadow:${gw.port}` : `127.0.0.1:${gw.port}`]);
    const f = forwardingHeaders(got.headers);
    expect(f.xff, `${where}: x-forwarded-for`).toEqual(['127.0.0.1']);
    expect(f.proto, `${where}: x-forwarded-proto (h2c)`).toEqual(['http']);
    expect(f.originalPath, `${where}: x-envoy-original-path`).toEqual([TARGETS[kind].path]);
    expect(f.requestId[0]).toMatch(/^[0-9a-f-]{36}$/);
    expect(headerValues(got.headers, 'x-seldon-predictor'), `${where}: the client's x-seldon-predictor`).toEqual([]);
    expect(got.complete, `${where}: body complete by its framing`).toBe(true);
    expect({ bytes: got.body.length, sha256: got.sha256 }, `${where}: body`).toEqual({ bytes: shape.body.length, sha256: sha256(shape.body) });
    expect(framingProblem(framingOf(shape), shape.framing === 'cl' ? shape.body.length : undefined, got.headers, got.body.length), `${where}: framing`).toBeUndefined();
  }

  /** The client got the model's answer: status without its reason phrase, fields without hop-by-hop ones, the body. */
  function checkClient(a: H2Answer, got: RecordedRequest, id: string): void {
    expect(a.error, 'stream error').toBeUndefined();
    expect(a.status).toBe(201);
    expect(a.ended, 'the answer ended with END_STREAM').toBe(true);
    const expected = MODEL_FIELDS.map(([k, v]): HeaderLine => [k, k === 'x-upstream' ? got.upstream : v]);
    const lines = answerLines(a).filter(([k]) => k !== 'content-length');
    expect(lines).toEqual(expected);
    if (got.chunked) expect(a.headers['content-length']).toBeUndefined();
    else expect(a.headers['content-length']).toBe(String(a.body.length));
    const head = JSON.parse(a.body.subarray(0, a.body.length - 300).toString()) as { upstream: string; case: string; received: string };
    expect(head).toMatchObject({ upstream: got.upstream, case: id, received: got.sha256 });
    expect(sha256(a.body.subarray(a.body.length - 300))).toBe(sha256(binaryOfSize(300)));
  }

  describe('route kinds x body shapes', () => {
    beforeAll(async () => {
      // The OAuth front end's token, asked for over h2 too.
      const t = await h2(
        session,
        { ':path': '/oauth/token', 'content-type': 'application/x-www-form-urlencoded', authorization: basic('h2keyh2', 'h2secret') },
        { body: Buffer.from('grant_type=client_credentials') },
      );
      expect(t.status, t.body.toString()).toBe(200);
      token = (JSON.parse(t.body.toString()) as { access_token: string }).access_token;
    });

    describe.each(Object.keys(TARGETS) as Kind[])('%s', (kind) => {
      it.each(SHAPES.map((s) => [s.name, s] as const))('%s', async (_n, shape) => {
        const id = `${kind}/${shape.name}`.replace(/[^A-Za-z0-9/.-]+/g, '_');
        const sent = caseFields(kind, shape, id);
        const a = await h2(session, { ':path': TARGETS[kind].path, ...outgoing(sent) }, shape.framing === 'none' ? {} : { body: shape.pieces > 1 ? pieces(shape.body, shape.pieces) : [shape.body] });
        const ups = TARGETS[kind].ups.map((n) => up[n]!);
        const attempts = kind === 'retry' ? 2 : 1;
        const got = await waitForCase(ups, id, attempts);
        expect(got.length, `requests that reached ${TARGETS[kind].ups.join('/')}`).toBe(attempts);
        for (const g of got) checkUpstream(g, sent, shape, kind);
        checkClient(a, got[got.length - 1]!, id);
        if (kind === 'retry') expect(forwardingHeaders(got[1]!.headers).requestId).toEqual(forwardingHeaders(got[0]!.headers).requestId);
        if (kind === 'header route') expect(up.plain!.byCase(id)).toEqual([]);
        if (kind === 'shadow') {
          const copies = await waitForCase([up.shadowCopy!], id, 1);
          expect(copies.length, 'the shadow got its copy').toBe(1);
          checkUpstream(copies[0]!, sent, shape, kind, { copy: true });
          expect(copies[0]!.sha256, 'the same bytes as the primary').toBe(got[0]!.sha256);
          expect(forwardingHeaders(copies[0]!.headers).requestId).toEqual(forwardingHeaders(got[0]!.headers).requestId);
        }
      });
    });

    it('the canary members both took part (seeded pick)', () => {
      expect(up.canaryMain!.requests.length + up.canaryCanary!.requests.length).toBe(SHAPES.length);
      expect(up.canaryMain!.requests.length).toBeGreaterThan(0);
      expect(up.canaryCanary!.requests.length).toBeGreaterThan(0);
    });
  });

  // ---- the same request over HTTP/1.1 and HTTP/2 --------------------------------------------

  it('HTTP/1.1 and HTTP/2 requests reach the model the same: same lines in the same order, same body, same answer', async () => {
    const body = jsonOfSize(5000);
    const fields: HeaderLine[] = [
      ['content-type', 'application/json'],
      ['x-a', '1'],
      ['x-case', 'same/h1'],
      ['x-b', '2'],
    ];
    const h1 = await request(`${gw.url}/seldon/${NS}/plain${PREDICT}?same`, { method: 'POST', headers: fields.flat(), body });
    const h1body = Buffer.from(await h1.body.arrayBuffer());
    const h2fields = fields.map(([k, v]): HeaderLine => [k, k === 'x-case' ? 'same/h2' : v]);
    const a = await h2(session, { ':path': `/seldon/${NS}/plain${PREDICT}?same`, 'content-length': String(body.length), ...outgoing(h2fields) }, { body });
    const [g1] = await waitForCase([up.plain!], 'same/h1', 1);
    const [g2] = await waitForCase([up.plain!], 'same/h2', 1);
    const strip = (r: RecordedRequest): HeaderLine[] => r.headers.filter(([k]) => !['x-request-id', 'x-case', 'host'].includes(k.toLowerCase()));
    // Host aside (h2's :authority becomes a first `host` line); the names are lower case either way here.
    expect(strip(g2!)).toEqual(strip(g1!));
    expect(g2!.target).toBe(g1!.target);
    expect(g2!.sha256).toBe(g1!.sha256);
    expect(a.status).toBe(h1.statusCode);
    expect(JSON.parse(a.body.subarray(0, a.body.length - 300).toString()).received).toBe(JSON.parse(h1body.subarray(0, h1body.length - 300).toString()).received);
  });

  // ---- the request head ------------------------------------------------------------------------

  it('cookie fields are joined with "; " into one Cookie line, where the first was', async () => {
    const a = await h2(session, { ':path': `/seldon/${NS}/plain${PREDICT}`, 'x-case': 'cookies', cookie: ['a=1', 'b=2; c=3'], 'x-after': 'z', 'x-mid': 'm' }, {});
    expect(a.status).toBe(201);
    const [got] = await waitForCase([up.plain!], 'cookies', 1);
    const names = got!.headers.map(([k]) => k.toLowerCase());
    expect(headerValues(got!.headers, 'cookie')).toEqual(['a=1; b=2; c=3']);
    expect(names.indexOf('cookie')).toBeLessThan(names.indexOf('x-after'));
  });

  it(':authority is the Host; a Host field that agrees is folded into it; one that names another authority is a 400', async () => {
    const raw = await RawH2.connect(gw.port);
    try {
      // Pseudo-header fields first (RFC 9113 §8.3), then the rest.
      const base = (id: string, authority?: string): HeaderLine[] => [
        [':method', 'POST'],
        [':scheme', 'http'],
        [':path', `/seldon/${NS}/plain${PREDICT}`],
        ...(authority === undefined ? [] : [[':authority', authority] as HeaderLine]),
        ['x-case', id],
      ];
      raw.headers(1, [...base('auth/agree', 'Models.Example:80'), ['host', 'models.example']], true);
      raw.headers(3, [...base('auth/host-only'), ['host', 'only.example:8080']], true);
      raw.headers(5, [...base('auth/disagree', 'a.example'), ['host', 'b.example']], true);
      raw.headers(7, base('auth/none'), true);
      raw.headers(9, [...base('auth/two-hosts'), ['host', 'x.example'], ['host', 'x.example']], true);
      const [agree] = await waitForCase([up.plain!], 'auth/agree', 1);
      expect(headerValues(agree!.headers, 'host')).toEqual(['Models.Example:80']);
      const [hostOnly] = await waitForCase([up.plain!], 'auth/host-only', 1);
      expect(headerValues(hostOnly!.headers, 'host')).toEqual(['only.example:8080']);
      // Neither :authority nor Host, or two Host fields: nghttp2 resets the stream as malformed
      // (PROTOCOL_ERROR) before the gateway sees it.
      expect(await raw.rstOf(7)).toBe(NGHTTP2_PROTOCOL_ERROR);
      expect(await raw.rstOf(9)).toBe(NGHTTP2_PROTOCOL_ERROR);
      const body = await raw.bodyOf(5);
      expect(JSON.parse(body.toString())).toEqual({ status: { code: 400, info: 'the Host header names another authority than :authority', reason: 'BAD_REQUEST', status: 'FAILURE' } });
      for (const id of ['auth/disagree', 'auth/none', 'auth/two-hosts']) expect(up.plain!.byCase(id)).toEqual([]);
    } finally {
      raw.close();
    }
  });

  it('h2RequestHeaders and h2Host: the HTTP/1.1 head of an HTTP/2 request', () => {
    expect(h2RequestHeaders([':method', 'GET', ':authority', 'a:1', 'cookie', 'x=1', 'accept', '*/*', 'host', 'a:1', 'cookie', 'y=2', ':path', '/'], 'a:1')).toEqual([
      'host',
      'a:1',
      'cookie',
      'x=1; y=2',
      'accept',
      '*/*',
    ]);
    expect(h2Host({ ':authority': 'A.example:80', ':scheme': 'http' }, ['host', 'a.example'])).toEqual({ host: 'A.example:80' });
    expect(h2Host({ ':authority': 'a.example:443', ':scheme': 'https' }, ['host', 'a.example'])).toEqual({ host: 'a.example:443' });
    expect(h2Host({ ':authority': 'a.example:443', ':scheme': 'http' }, ['host', 'a.example'])).toHaveProperty('problem');
    expect(h2Host({}, [])).toHaveProperty('problem');
  });

  it('connection-specific request fields and a te other than "trailers" are malformed: the stream is reset, nothing goes upstream', async () => {
    const raw = await RawH2.connect(gw.port);
    try {
      const base = (id: string): HeaderLine[] => [
        [':method', 'POST'],
        [':scheme', 'http'],
        [':authority', 'x'],
        [':path', `/seldon/${NS}/plain${PREDICT}`],
        ['x-case', id],
      ];
      raw.headers(1, [...base('malformed/te'), ['te', 'gzip']], true);
      raw.headers(3, [...base('malformed/connection'), ['connection', 'keep-alive']], true);
      raw.headers(5, [...base('malformed/transfer-encoding'), ['transfer-encoding', 'chunked']], true);
      raw.headers(7, [...base('malformed/upgrade'), ['upgrade', 'h2c']], true);
      raw.headers(9, [...base('malformed/te-trailers'), ['te', 'trailers']], true);
      for (const s of [1, 3, 5, 7]) expect(await raw.rstOf(s), `stream ${s}`).toBe(NGHTTP2_PROTOCOL_ERROR);
      const [ok] = await waitForCase([up.plain!], 'malformed/te-trailers', 1);
      expect(headerValues(ok!.headers, 'te'), 'te is hop-by-hop: not forwarded').toEqual([]);
      for (const id of ['malformed/te', 'malformed/connection', 'malformed/transfer-encoding', 'malformed/upgrade']) expect(up.plain!.byCase(id)).toEqual([]);
    } finally {
      raw.close();
    }
  });

  it('Expect: 100-continue gets 100 from the gateway (the model never sees Expect)', async () => {
    const body = jsonOfSize(3000);
    const a = await h2(session, { ':path': `/seldon/${NS}/plain${PREDICT}`, 'x-case': 'expect', expect: '100-continue', 'content-length': String(body.length) }, { body });
    expect(a.interim).toContain(100);
    expect(a.status).toBe(201);
    const [got] = await waitForCase([up.plain!], 'expect', 1);
    expect(headerValues(got!.headers, 'expect')).toEqual([]);
    expect(got!.sha256).toBe(sha256(body));
  });

  // ---- bodies ---------------------------------------------------------------------------------

  it('10 MiB bodies, by content-length and without it, arrive whole (the latter chunked to the model)', async () => {
    const body = jsonOfSize(10 * 1024 * 1024);
    const [a, b] = await Promise.all([
      h2(
        session,
        { ':path': `/seldon/${NS}/plain${PREDICT}`, 'x-case': 'big/cl', 'content-type': 'application/json', 'content-length': String(body.length) },
        { body: pieces(body, 40), timeoutMs: 60_000 },
      ),
      h2(session, { ':path': `/seldon/${NS}/plain${PREDICT}`, 'x-case': 'big/chunkless', 'content-type': 'application/json' }, { body: pieces(body, 40), timeoutMs: 60_000 }),
    ]);
    expect([a.status, b.status]).toEqual([201, 201]);
    const [gotCl] = await waitForCase([up.plain!], 'big/cl', 1, 10_000);
    const [gotChunkless] = await waitForCase([up.plain!], 'big/chunkless', 1, 10_000);
    expect({ sha: gotCl!.sha256, cl: gotCl!.contentLength, chunked: gotCl!.chunked }).toEqual({ sha: sha256(body), cl: body.length, chunked: false });
    expect({ sha: gotChunkless!.sha256, chunked: gotChunkless!.chunked, complete: gotChunkless!.complete }).toEqual({ sha: sha256(body), chunked: true, complete: true });
  }, 60_000);

  it('a 10 MiB answer streams back whole; a 4 MiB body is mirrored to the shadow byte for byte', async () => {
    const body = binaryOfSize(4 * 1024 * 1024 - 1000);
    const a = await h2(session, { ':path': `/seldon/${NS}/shadowed${PREDICT}`, 'x-case': 'big/shadow' }, { body: pieces(body, 16) });
    expect(a.status).toBe(201);
    const [primary] = await waitForCase([up.shadowMain!], 'big/shadow', 1);
    const [copy] = await waitForCase([up.shadowCopy!], 'big/shadow', 1);
    expect(primary!.sha256).toBe(sha256(body));
    expect(copy!.sha256).toBe(sha256(body));
    const big = binaryOfSize(10 * 1024 * 1024);
    up.edge!.setResponder(() => ({ headers: [['Content-Type', 'application/octet-stream']], body: big, chunkSize: 65536 }));
    try {
      const r = await h2(session, { ':path': `/seldon/${NS}/edge${PREDICT}`, 'x-case': 'big/answer' }, {});
      expect({ status: r.status, ended: r.ended, bytes: r.body.length, sha: r.sha256 }).toEqual({ status: 200, ended: true, bytes: big.length, sha: sha256(big) });
    } finally {
      up.edge!.setResponder(undefined);
    }
  }, 60_000);

  it('--max-body: 413 by content-length at once, and for a body without it when it crosses the limit; the model sees neither', async () => {
    const before = await clientErrors('body_too_large');
    const declared = await h2(session, { ':path': `/seldon/${NS}/plain${PREDICT}`, 'x-case': '413/cl', 'content-length': String(MAX_BODY + 1) }, { body: pieces(Buffer.alloc(MAX_BODY + 1), 200) });
    expect(declared.status).toBe(413);
    expect(json(declared).status).toMatchObject({ code: 413, reason: 'PAYLOAD_TOO_LARGE' });
    // The client is still sending: RST_STREAM NO_ERROR after the answer tells it to stop.
    expect(declared.rstCode).toBe(NGHTTP2_NO_ERROR);
    expect(declared.ended).toBe(true);
    const streamed = await h2(session, { ':path': `/seldon/${NS}/plain${PREDICT}`, 'x-case': '413/chunkless' }, { body: pieces(Buffer.alloc(MAX_BODY + 64 * 1024), 200) });
    expect(streamed.status).toBe(413);
    expect(json(streamed).status).toMatchObject({ code: 413, reason: 'PAYLOAD_TOO_LARGE' });
    expect(await clientErrors('body_too_large')).toBe(before + 2);
    // The session is fine; and once this one is answered, anything forwarded before it has arrived too.
    expect((await h2(session, { ':path': `/seldon/${NS}/plain${PREDICT}`, 'x-case': '413/after' }, {})).status).toBe(201);
    expect(up.plain!.byCase('413/cl')).toEqual([]);
    // The streamed one may have begun upstream; it must never arrive complete.
    for (const r of up.plain!.byCase('413/chunkless')) expect(r.complete).toBe(false);
  }, 30_000);

  // ---- many streams ----------------------------------------------------------------------------

  it('60 concurrent streams on one session, mixed routes: each answered with its own body', async () => {
    const routes = ['plain', 'canary', 'shadowed', 'gated'] as const;
    const tasks = Array.from({ length: 60 }, (_, i) => {
      const body = jsonOfSize(1000 + i * 37);
      const route = routes[i % routes.length]!;
      return h2(session, { ':path': `/seldon/${NS}/${route}${PREDICT}`, 'x-case': `many/${i}`, ...(i % 2 ? { 'content-length': String(body.length) } : {}) }, { body: pieces(body, 1 + (i % 3)) }).then(
        (a) => ({ a, body, i }),
      );
    });
    const done = await Promise.all(tasks);
    for (const { a, body, i } of done) {
      expect(a.status, `stream ${i}`).toBe(201);
      const head = JSON.parse(a.body.subarray(0, a.body.length - 300).toString()) as { case: string; received: string };
      expect(head, `stream ${i}`).toMatchObject({ case: `many/${i}`, received: sha256(body) });
    }
  });

  // ---- answers ---------------------------------------------------------------------------------

  it('connection-specific fields from the model are not sent (no warning, no error), nor what its Connection lists; the reason phrase is dropped', async () => {
    const before = warnings.length;
    up.edge!.setResponder(() => ({
      statusLine: 'HTTP/1.1 200 Everything Fine',
      headers: [
        ['Connection', 'keep-alive, X-Hop'],
        ['Keep-Alive', 'timeout=5'],
        ['Proxy-Connection', 'keep-alive'],
        ['Upgrade', 'h2c'],
        ['TE', 'trailers'],
        ['X-Hop', 'secret'],
        ['X-Kept', 'yes'],
      ],
      body: 'chunky',
      framing: 'chunked',
    }));
    try {
      const a = await h2(session, { ':path': `/seldon/${NS}/edge${PREDICT}`, 'x-case': 'conn-headers' }, {});
      expect(a.error).toBeUndefined();
      expect(a.status).toBe(200);
      expect(answerLines(a)).toEqual([['x-kept', 'yes']]);
      expect(a.body.toString()).toBe('chunky');
      expect(a.ended).toBe(true);
      // Draining (connection: close on HTTP/1.1) changes nothing on h2 either: checked in the shutdown test.
      expect(warnings.slice(before)).toEqual([]);
    } finally {
      up.edge!.setResponder(undefined);
    }
  });

  it('a field HTTP/2 writes once only, repeated by the model, goes with its first value; an answer HTTP/2 cannot carry is a clean 502', async () => {
    up.edge!.setResponder((req) =>
      headerValue(req.headers, 'x-case') === 'dup'
        ? {
            headers: [
              ['Content-Type', 'text/plain'],
              ['content-type', 'text/html'],
              ['ETag', '"a"'],
              ['ETag', '"b"'],
              ['X-Multi', '1'],
              ['X-Multi', '2'],
            ],
            body: 'dup',
          }
        : {
            statusLine: 'HTTP/1.1 999 Beyond HTTP/2',
            headers: [
              ['X-Model', 'yes'],
              ['Content-Type', 'text/plain'],
            ],
            body: 'odd',
          },
    );
    try {
      const dup = await h2(session, { ':method': 'GET', ':path': `/seldon/${NS}/edge${PREDICT}`, 'x-case': 'dup' });
      expect(dup.status).toBe(200);
      expect(answerLines(dup)).toEqual([
        ['content-type', 'text/plain'],
        ['etag', '"a"'],
        ['x-multi', '1'],
        ['x-multi', '2'],
        ['content-length', '3'],
      ]);
      expect(dup.body.toString()).toBe('dup');
      const odd = await h2(session, { ':method': 'GET', ':path': `/seldon/${NS}/edge${PREDICT}`, 'x-case': 'odd' });
      expect(odd.status).toBe(502);
      expect(json(odd).status.reason).toBe('UPSTREAM_BAD_RESPONSE');
      // Nothing of the head that could not be written leaks into the gateway's answer.
      expect(odd.headers['x-model']).toBeUndefined();
      expect(odd.headers['content-type']).toBe('application/json');
    } finally {
      up.edge!.setResponder(undefined);
    }
  });

  it('HEAD, 204 and 304 (with the Content-Length the model sent) end properly', async () => {
    up.edge!.setResponder((req) => {
      const c = headerValue(req.headers, 'x-case');
      if (c === 'ans/204') return { statusLine: 'HTTP/1.1 204 No Content', headers: [['X-S', '204']], framing: 'none' };
      if (c === 'ans/304')
        return {
          statusLine: 'HTTP/1.1 304 Not Modified',
          headers: [
            ['ETag', '"v1"'],
            ['Content-Length', '42'],
          ],
          framing: 'none',
        };
      return {
        headers: [
          ['Content-Type', 'application/json'],
          ['Content-Length', '123'],
        ],
        framing: 'none',
      };
    });
    try {
      const head = await h2(session, { ':method': 'HEAD', ':path': `/seldon/${NS}/edge${PREDICT}`, 'x-case': 'ans/head' });
      expect({ status: head.status, cl: head.headers['content-length'], body: head.body.length, ended: head.ended, error: head.error }).toEqual({
        status: 200,
        cl: '123',
        body: 0,
        ended: true,
        error: undefined,
      });
      const noContent = await h2(session, { ':method': 'GET', ':path': `/seldon/${NS}/edge${PREDICT}`, 'x-case': 'ans/204' });
      expect({ status: noContent.status, s: noContent.headers['x-s'], body: noContent.body.length, ended: noContent.ended, error: noContent.error }).toEqual({
        status: 204,
        s: '204',
        body: 0,
        ended: true,
        error: undefined,
      });
      const notModified = await h2(session, { ':method': 'GET', ':path': `/seldon/${NS}/edge${PREDICT}`, 'x-case': 'ans/304', 'if-none-match': '"v1"' });
      expect({ status: notModified.status, etag: notModified.headers.etag, body: notModified.body.length, ended: notModified.ended, error: notModified.error }).toEqual({
        status: 304,
        etag: '"v1"',
        body: 0,
        ended: true,
        error: undefined,
      });
      const [got] = await waitForCase([up.edge!], 'ans/head', 1);
      expect(got!.method).toBe('HEAD');
      // The session still serves.
      expect((await h2(session, { ':path': `/seldon/${NS}/plain${PREDICT}`, 'x-case': 'ans/after' }, {})).status).toBe(201);
    } finally {
      up.edge!.setResponder(undefined);
    }
  });

  it('an answer the model cuts off mid-body reaches the client as a reset with an error, never as a complete answer', async () => {
    up.edge!.setResponder(() => ({ headers: [['Content-Length', '1000']], body: 'only a part', framing: 'none', resetAfter: true }));
    try {
      const a = await h2(session, { ':path': `/seldon/${NS}/edge${PREDICT}`, 'x-case': 'cut' }, {});
      expect(a.status).toBe(200);
      expect(a.ended).toBe(false);
      expect(a.rstCode).toBe(http2.constants.NGHTTP2_INTERNAL_ERROR);
      expect((await h2(session, { ':path': `/seldon/${NS}/plain${PREDICT}`, 'x-case': 'cut/after' }, {})).status).toBe(201);
    } finally {
      up.edge!.setResponder(undefined);
    }
  });

  // ---- client resets ---------------------------------------------------------------------------

  async function code499(deployment: string): Promise<number> {
    const text = await gw.metrics.registry.getSingleMetricAsString('seldon_gateway_requests_total');
    const line = text.split('\n').find((l) => l.includes(`deployment="${deployment}"`) && l.includes('code="499"'));
    return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(' ') + 1));
  }

  async function clientErrors(reason: string): Promise<number> {
    const text = await gw.metrics.registry.getSingleMetricAsString('seldon_gateway_client_errors_total');
    const line = text.split('\n').find((l) => l.includes(`reason="${reason}"`));
    return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(' ') + 1));
  }

  it('a client reset mid-body (RST_STREAM, no END_STREAM): the model never gets a complete body, 499 is counted, the session serves on', async () => {
    const before = await code499('edge');
    const raw = await RawH2.connect(gw.port);
    try {
      raw.headers(
        1,
        [
          [':method', 'POST'],
          [':scheme', 'http'],
          [':authority', 'x'],
          [':path', `/seldon/${NS}/edge${PREDICT}`],
          ['x-case', 'reset/body'],
        ],
        false,
      );
      raw.data(1, Buffer.alloc(30 * 1024, 'a'), false);
      // Not waitForCase: it waits for the body, which has not ended.
      await waitFor(() => up.edge!.byCase('reset/body').length === 1, 3000);
      const got = up.edge!.byCase('reset/body')[0];
      raw.rst(1, NGHTTP2_CANCEL);
      await got!.bodyDone;
      expect(got!.chunked).toBe(true);
      expect(got!.complete, 'the chunked body was never terminated').toBe(false);
      await expect.poll(() => code499('edge')).toBe(before + 1);
      // Same connection, next stream: served.
      raw.headers(
        3,
        [
          [':method', 'GET'],
          [':scheme', 'http'],
          [':authority', 'x'],
          [':path', `/seldon/${NS}/plain${PREDICT}`],
          ['x-case', 'reset/after'],
        ],
        true,
      );
      const [after] = await waitForCase([up.plain!], 'reset/after', 1);
      expect(after).toBeDefined();
    } finally {
      raw.close();
    }
  });

  it('a client that closes its connection mid-body: the same', async () => {
    const before = await code499('edge');
    const raw = await RawH2.connect(gw.port);
    raw.headers(
      1,
      [
        [':method', 'POST'],
        [':scheme', 'http'],
        [':authority', 'x'],
        [':path', `/seldon/${NS}/edge${PREDICT}`],
        ['x-case', 'reset/socket'],
      ],
      false,
    );
    raw.data(1, Buffer.alloc(30 * 1024, 'b'), false);
    await waitFor(() => up.edge!.byCase('reset/socket').length === 1, 3000);
    const got = up.edge!.byCase('reset/socket')[0];
    raw.close();
    await got!.bodyDone;
    expect(got!.complete).toBe(false);
    await expect.poll(() => code499('edge')).toBe(before + 1);
  });

  it('a client reset while the model is still answering: the upstream request is aborted (no leak), 499 counted', async () => {
    const before = await code499('slow');
    const s = session.request({ ':method': 'GET', ':path': `/seldon/${NS}/slow/x`, 'x-case': 'reset/answer' });
    s.on('error', () => undefined);
    const [headers] = (await once(s, 'response')) as [http2.IncomingHttpHeaders];
    expect(headers[':status']).toBe(200);
    await once(s, 'data');
    expect(slowOpen.size).toBe(1);
    s.close(NGHTTP2_CANCEL);
    await expect.poll(() => slowCut.includes('reset/answer')).toBe(true);
    expect(slowOpen.size).toBe(0);
    await expect.poll(() => code499('slow')).toBe(before + 1);
  });

  // ---- the gateway's edges on h2 -------------------------------------------------------------

  it('OAuth front end over h2: /oauth/token (and its refusals), then the token on /api/v0.1', async () => {
    const bad = await h2(
      session,
      { ':path': '/oauth/token', 'content-type': 'application/x-www-form-urlencoded', authorization: basic('h2keyh2', 'wrong') },
      { body: Buffer.from('grant_type=client_credentials') },
    );
    expect(bad.status).toBe(401);
    expect(bad.headers['www-authenticate']).toBe('Basic realm="oauth2/client"');
    expect(JSON.parse(bad.body.toString())).toMatchObject({ error: 'unauthorized' });
    const ok = await h2(
      session,
      { ':path': '/oauth/token', 'content-type': 'application/x-www-form-urlencoded', authorization: basic('h2keyh2', 'h2secret') },
      { body: pieces(Buffer.from('grant_type=client_credentials'), 3) },
    );
    expect(ok.status, ok.body.toString()).toBe(200);
    const t = JSON.parse(ok.body.toString()) as { access_token: string; token_type: string };
    expect(t.token_type).toBe('bearer');
    const call = await h2(
      session,
      { ':path': '/api/v0.1/predictions', 'x-case': 'oauth/use', authorization: `Bearer ${t.access_token}`, 'content-type': 'application/json' },
      { body: Buffer.from('{}') },
    );
    expect(call.status).toBe(201);
    const [got] = await waitForCase([up.oauth!], 'oauth/use', 1);
    expect(headerValues(got!.headers, 'authorization')).toEqual([]);
    const none = await h2(session, { ':path': '/api/v0.1/predictions', 'content-type': 'application/json' }, { body: Buffer.from('{}') });
    expect(none.status).toBe(401);
    expect((await h2(session, { ':method': 'GET', ':path': '/ping' })).body.toString()).toBe('pong');
  });

  it('rate limits: 429 with Retry-After and the JSON body, over h2', async () => {
    const results: H2Answer[] = [];
    for (let i = 0; i < 3; i++) results.push(await h2(session, { ':path': `/seldon/${NS}/limited${PREDICT}`, 'x-case': `limited/${i}` }, {}));
    expect(results.map((r) => r.status)).toEqual([201, 201, 429]);
    expect(Number(results[2]!.headers['retry-after'])).toBeGreaterThan(0);
    expect(json(results[2]!).status).toMatchObject({ code: 429, reason: 'RATE_LIMITED' });
    expect(up.gated!.byCase('limited/2')).toEqual([]);
  });

  it('no route, TRACE, CONNECT: the REST answers (404 JSON, 405 with Allow)', async () => {
    const none = await h2(session, { ':method': 'GET', ':path': `/seldon/${NS}/nope${PREDICT}` });
    expect(none.status).toBe(404);
    expect(json(none).status.reason).toBe('NO_ROUTE');
    const trace = await h2(session, { ':method': 'TRACE', ':path': `/seldon/${NS}/plain${PREDICT}` });
    expect(trace.status).toBe(405);
    expect(trace.headers.allow).toContain('GET');
    const connectReq = await h2(session, { ':method': 'CONNECT', ':authority': 'models.example:443' } as http2.OutgoingHttpHeaders);
    expect(connectReq.status).toBe(405);
    expect(json(connectReq).status.reason).toBe('METHOD_NOT_ALLOWED');
  });

  it('the admin endpoints are never on the public port, over h2 either', async () => {
    for (const path of ['/metrics', '/routes', '/healthz', '/readyz', '/diagnostics']) {
      const a = await h2(session, { ':method': 'GET', ':path': path });
      expect(a.status, path).toBe(404);
      expect(json(a).status.reason, path).toBe('NO_ROUTE');
      expect(a.body.toString()).not.toContain('seldon_gateway_');
    }
  });

  it('rapid reset on REST streams: the connection gets GOAWAY ENHANCE_YOUR_CALM after a bounded number', async () => {
    up.edge!.setResponder(() => ({ delayMs: 3000, body: 'late' }));
    const attacker = await connect(gw.port);
    let goaway: number | undefined;
    attacker.on('goaway', (code: number) => (goaway ??= code));
    let opened = 0;
    try {
      const deadline = Date.now() + 10_000;
      while (!attacker.closed && !attacker.destroyed && opened < 2000 && Date.now() < deadline) {
        for (let i = 0; i < 50 && !attacker.closed && !attacker.destroyed; i++) {
          try {
            const s = attacker.request({ ':method': 'GET', ':path': `/seldon/${NS}/edge${PREDICT}`, 'x-case': 'rapid' });
            s.on('error', () => undefined);
            s.close(NGHTTP2_CANCEL);
            opened++;
          } catch {
            break;
          }
        }
        await new Promise((r) => setTimeout(r, 5));
      }
      await waitFor(() => attacker.closed || attacker.destroyed, 3000).catch(() => undefined);
      expect(goaway).toBe(NGHTTP2_ENHANCE_YOUR_CALM);
      expect(opened).toBeLessThanOrEqual(600);
      expect(await clientErrors('too_many_premature_resets')).toBe(1);
      // Other connections are not affected.
      expect((await h2(session, { ':path': `/seldon/${NS}/plain${PREDICT}`, 'x-case': 'rapid/after' }, {})).status).toBe(201);
    } finally {
      attacker.destroy();
      up.edge!.setResponder(undefined);
    }
  }, 30_000);

  // ---- curl ------------------------------------------------------------------------------------

  it.skipIf(!CURL)('curl --http2-prior-knowledge: a POST and a HEAD, answered like HTTP/1.1', async () => {
    const body = jsonOfSize(20_000);
    const post = await new Promise<{ code: number | null; out: string }>((resolve) => {
      const child = spawn('curl', [
        '--silent',
        '--show-error',
        '--max-time',
        '20',
        '--http2-prior-knowledge',
        '-i',
        '-H',
        'content-type: application/json',
        '-H',
        'x-case: curl/post',
        '--data-binary',
        '@-',
        `${gw.url}/seldon/${NS}/plain${PREDICT}`,
      ]);
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString('latin1')));
      child.on('close', (code) => resolve({ code, out }));
      child.stdin.end(body);
    });
    expect(post.code).toBe(0);
    expect(post.out).toMatch(/^HTTP\/2 201 \r\n/);
    expect(post.out).not.toMatch(/\r\nkeep-alive:/i);
    const [got] = await waitForCase([up.plain!], 'curl/post', 1);
    expect(got!.sha256).toBe(sha256(body));
    expect(headerValues(got!.headers, 'host')).toEqual([`127.0.0.1:${gw.port}`]);
    expect(headerValues(got!.headers, 'content-length')).toEqual([String(body.length)]);
    const head = await curl(['-I', '-H', 'x-case: curl/head', `${gw.url}/seldon/${NS}/plain${PREDICT}`]);
    expect(head.code, head.stderr).toBe(0);
    expect(head.stdout.toString('latin1')).toMatch(/^HTTP\/2 201 \r\n/);
  });

  it('no process warning was emitted by any of it (reason phrases, connection fields)', () => {
    expect(warnings).toEqual([]);
  });
});

describe('REST over h2: header and time limits, --grpc-port, shutdown', () => {
  let gw: TestGateway;
  let model: RecordingUpstream;
  beforeAll(async () => {
    model = await startRecordingUpstream({ name: 'limits', bodyIdleMs: 3000 });
    gw = await startTestGateway({
      manifests: { 'm.yaml': sdep('m', NS, { predictors: [{ name: 'main' }] }) },
      resolve: { [`m-main.${NS}:8000`]: model.port },
      args: ['--max-header-size', '4KiB', '--max-headers-count', '20', '--client-header-timeout', '500ms', '--client-request-timeout', '600ms', '--grpc-port', '0'],
    });
  });
  afterAll(async () => {
    await gw?.stop();
    await model?.close();
  });

  it('a head over --max-header-size, or with more fields than --max-headers-count: 431 JSON', async () => {
    const s = await connect(gw.port);
    try {
      const big = await h2(s, { ':method': 'GET', ':path': `/seldon/${NS}/m${PREDICT}`, 'x-big': 'a'.repeat(5000) });
      expect(big.status).toBe(431);
      expect(json(big).status.reason).toBe('HEADERS_TOO_LARGE');
      const many: http2.OutgoingHttpHeaders = { ':method': 'GET', ':path': `/seldon/${NS}/m${PREDICT}` };
      for (let i = 0; i < 25; i++) many[`x-f${i}`] = 'v';
      const count = await h2(s, many);
      expect(count.status).toBe(431);
      const fine = await h2(s, { ':method': 'GET', ':path': `/seldon/${NS}/m${PREDICT}`, 'x-ok': 'a'.repeat(1000) });
      expect(fine.status).toBe(200);
      expect(model.requests).toHaveLength(1);
    } finally {
      s.close();
    }
  });

  it('a body slower than --client-request-timeout: 408, counted; the session serves on', async () => {
    const s = await connect(gw.port);
    try {
      const a = await h2(s, { ':path': `/seldon/${NS}/m${PREDICT}`, 'x-case': 'slow-body' }, { body: [Buffer.from('{"a":'), Buffer.from('1'), Buffer.from('}')], pieceDelayMs: 500 });
      expect(a.status).toBe(408);
      expect(json(a).status.reason).toBe('REQUEST_TIMEOUT');
      const text = await gw.metrics.registry.getSingleMetricAsString('seldon_gateway_client_errors_total');
      expect(text).toMatch(/reason="request_timeout"} 1\b/);
      for (const r of model.byCase('slow-body')) expect(r.complete).toBe(false);
      expect((await h2(s, { ':method': 'GET', ':path': `/seldon/${NS}/m${PREDICT}` })).status).toBe(200);
    } finally {
      s.close();
    }
  });

  it('--grpc-port serves gRPC only: REST over h2 there gets the 404 JSON', async () => {
    const s = await connect(gw.grpcPort!);
    try {
      const a = await h2(s, { ':method': 'GET', ':path': `/seldon/${NS}/m${PREDICT}` });
      expect(a.status).toBe(404);
      expect(json(a).status.info).toContain('this port serves gRPC only');
    } finally {
      s.close();
    }
  });

  it('shutdown: an h2 request in flight finishes (no connection field), then GOAWAY', async () => {
    model.setResponder((req) => ({ delayMs: 300, headers: [['Content-Type', 'text/plain']], body: `done ${req.sha256.slice(0, 8)}` }));
    const s = await connect(gw.port);
    let goaway = false;
    s.on('goaway', () => (goaway = true));
    const inFlight = h2(s, { ':method': 'GET', ':path': `/seldon/${NS}/m${PREDICT}`, 'x-case': 'drain' });
    await waitFor(() => model.byCase('drain').length === 1, 3000);
    const stopped = gw.shutdown();
    const a = await inFlight;
    expect(a.status).toBe(200);
    expect(a.ended).toBe(true);
    expect(a.headers.connection).toBeUndefined();
    expect(a.body.toString()).toMatch(/^done /);
    await stopped;
    expect(goaway).toBe(true);
    s.destroy();
  });
});

describe('REST over h2: the access log', () => {
  let gw: TestGateway;
  let model: RecordingUpstream;
  const logs = new LogCapture();
  beforeAll(async () => {
    model = await startRecordingUpstream({ name: 'logged', bodyIdleMs: 3000 });
    gw = await startTestGateway({
      manifests: { 'm.yaml': sdep('m', NS, { predictors: [{ name: 'main' }] }) },
      resolve: { [`m-main.${NS}:8000`]: model.port },
      accessSink: logs,
      args: ['--max-body', '1KiB'],
    });
  });
  afterAll(async () => {
    await gw?.stop();
    await model?.close();
  });

  async function lineWhere(pred: (l: Record<string, unknown>) => boolean): Promise<Record<string, unknown>> {
    await waitFor(() => logs.lines().some(pred), 3000);
    return logs.lines().find(pred)!;
  }

  it('a line per h2 request, proxied or answered by the gateway: protocol HTTP/2, the peer, the authority, sizes', async () => {
    const s = await connect(gw.port);
    const local = (s.socket as net.Socket).localPort;
    try {
      const body = Buffer.from('{"data":{"ndarray":[[1]]}}');
      const ok = await h2(s, { ':path': `/seldon/${NS}/m${PREDICT}`, 'x-request-id': 'h2-logged', 'user-agent': 'h2-log/1' }, { body: pieces(body, 2) });
      expect(ok.status).toBe(200);
      const line = await lineWhere((l) => l.request_id === 'h2-logged');
      expect(line).toMatchObject({
        downstream_remote_address: `127.0.0.1:${local}`,
        method: 'POST',
        authority: `127.0.0.1:${gw.port}`,
        path: `/seldon/${NS}/m${PREDICT}`,
        protocol: 'HTTP/2',
        response_code: 200,
        bytes_received: body.length,
        bytes_sent: ok.body.length,
        deployment: 'm',
        user_agent: 'h2-log/1',
      });
      const none = await h2(s, { ':method': 'GET', ':path': `/seldon/${NS}/nope`, 'x-request-id': 'h2-404' });
      expect(none.status).toBe(404);
      expect(await lineWhere((l) => l.request_id === 'h2-404')).toMatchObject({
        downstream_remote_address: `127.0.0.1:${local}`,
        protocol: 'HTTP/2',
        response_code: 404,
        bytes_sent: none.body.length,
      });
      const big = await h2(s, { ':path': `/seldon/${NS}/m${PREDICT}`, 'x-request-id': 'h2-413', 'content-length': '5000' }, { body: Buffer.alloc(5000) });
      expect(big.status).toBe(413);
      expect(await lineWhere((l) => l.request_id === 'h2-413')).toMatchObject({ downstream_remote_address: `127.0.0.1:${local}`, protocol: 'HTTP/2', response_code: 413 });
    } finally {
      s.close();
    }
  });
});
