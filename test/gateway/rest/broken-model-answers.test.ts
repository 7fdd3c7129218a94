/**
 * A broken model, at random (seeded): the model answers each request with raw bytes drawn from a
 * grammar of well-formed answers (any status and reason, repeated and odd headers, binary bodies,
 * framed by Content-Length, chunked with extensions and trailers, or by closing) and of broken
 * ones (bad status lines, bad or conflicting lengths, bad chunks, a truncated body, a head that
 * is too large). What the client receives is checked against what the model meant:
 *   - a well-formed answer arrives with its status, reason, end-to-end headers in order and body
 *     bytes, whatever its framing;
 *   - a broken one is never passed on as a complete answer: the client gets the gateway's 502 (a
 *     Seldon-style JSON error), or, when the head was already on its way, a cut connection;
 *   - the gateway serves a plain request afterwards as if nothing happened.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seededRandom } from '../../../routing/table/pick.js';
import { connectRaw, headerValue, readHttpResponse, startRecordingUpstream, writeRequest, type HeaderLine, type RecordingUpstream } from '../../fixtures/recording-upstream.js';
import { sdep, startTestGateway, type TestGateway } from '../../helpers/gateway.js';
import { draws, fuzzSequence } from '../../helpers/random.js';

const PATH = '/seldon/m/model/api/v1.0/predictions';
/** Fields a proxy does not pass on (RFC 9110 §7.6.1), or frames itself. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'content-length', 'te', 'trailer', 'upgrade', 'proxy-connection']);

interface Case {
  readonly id: string;
  readonly raw: Buffer;
  /** The model closes its connection after answering. */
  readonly close: boolean;
  /** What a faithful relay delivers; undefined: the answer is broken (or one a proxy may refuse). */
  readonly meant?: { status: number; reason: string; headers: HeaderLine[]; body: Buffer };
  /** Broken beyond doubt: it must not arrive as a complete answer with the model's status. */
  readonly broken: boolean;
}

function randomCase(r: () => number, id: string): Case {
  const { pick, maybe } = draws(r);
  const status = pick([200, 200, 200, 201, 202, 206, 299, 400, 404, 418, 500, 503]);
  const reason = pick(['OK', 'Whatever It Likes', '', 'caf\xe9']);
  const headers: HeaderLine[] = [];
  const pool: HeaderLine[] = [
    ['Content-Type', 'application/json'],
    ['content-type', 'text/plain; charset=utf-8'],
    ['X-Dup', 'a'],
    ['x-dup', 'b'],
    ['Set-Cookie', 'a=1; Path=/'],
    ['Set-Cookie', 'b=2'],
    ['Cache-Control', 'no-store'],
    ['Vary', 'Origin'],
    ['Server', 'gunicorn'],
    ['X-Obs', 'caf\xe9'],
    ['X-Empty', ''],
    ['Keep-Alive', 'timeout=5'],
    ['Connection', 'keep-alive'],
    ['Connection', 'X-Listed'],
    ['X-Listed', 'hop'],
    ['X-Long', 'v'.repeat(3000)],
  ];
  for (let n = Math.floor(r() * 5); n > 0; n--) headers.push(pick(pool));
  const size = pick([0, 2, 57, 1000, 17_000, 70_000]);
  const body = Buffer.alloc(size);
  for (let i = 0; i < size; i++) body[i] = Math.floor(r() * 256);
  const head = (lines: HeaderLine[], statusLine = `HTTP/1.1 ${status} ${reason}`): string => `${statusLine}\r\n${lines.map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`;
  const bytes = (...parts: (string | Buffer)[]): Buffer => Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'latin1') : p)));
  // What the client should see: no hop-by-hop field, nor one the model's Connection names.
  const listed = new Set(headers.filter(([k]) => k.toLowerCase() === 'connection').flatMap(([, v]) => v.split(',').map((t) => t.trim().toLowerCase())));
  const meant = { status, reason, headers: headers.filter(([k]) => !HOP_BY_HOP.has(k.toLowerCase()) && !listed.has(k.toLowerCase())), body };

  if (maybe(0.7)) {
    // Well formed. A model that closes its connection after an answer says so (RFC 9112 §9.6):
    // one that does not races the next request sent on it, which then fails as it would through
    // nginx (the gateway sends a request again only after a reset, not after a close).
    const framing = pick(['length', 'length', 'chunked', 'close']);
    const close = framing === 'close' || maybe(0.2);
    const said: HeaderLine[] = close && framing !== 'close' ? [...headers, ['Connection', 'close']] : headers;
    if (framing === 'length') return { id, raw: bytes(head([...said, ['Content-Length', String(size)]]), body), close, meant, broken: false };
    if (framing === 'close') return { id, raw: bytes(head(headers), body), close: true, meant, broken: false };
    const parts: (string | Buffer)[] = [head([...said, ['Transfer-Encoding', 'chunked']])];
    for (let at = 0; at < size;) {
      const n = Math.min(size - at, 1 + Math.floor(r() * 9000));
      parts.push(`${n.toString(16)}${maybe(0.2) ? ';ext=1' : ''}\r\n`, body.subarray(at, at + n), '\r\n');
      at += n;
    }
    parts.push(maybe(0.3) ? '0\r\nX-Trailer: t\r\n\r\n' : '0\r\n\r\n');
    return { id, raw: bytes(...parts), close, meant, broken: false };
  }
  // Broken (or, for the last few, one a strict proxy may refuse as well as pass).
  const shapes: [string, () => Buffer, boolean][] = [
    ['status of two digits', () => bytes(head([['Content-Length', '2']], `HTTP/1.1 20 OK`), '{}'), true],
    ['status of four digits', () => bytes(head([['Content-Length', '2']], `HTTP/1.1 2000 OK`), '{}'), true],
    ['not HTTP', () => bytes(head([['Content-Length', '2']], `HTTX/1.1 200 OK`), '{}'), true],
    ['a header without a colon', () => bytes(`HTTP/1.1 ${status} OK\r\nX-Bad header\r\nContent-Length: 2\r\n\r\n{}`), true],
    ['NUL in a header', () => bytes(`HTTP/1.1 ${status} OK\r\nX-Nul: a\x00b\r\nContent-Length: 2\r\n\r\n{}`), true],
    ['a length of letters', () => bytes(head([['Content-Length', 'abc']]), '{}'), true],
    [
      'two lengths',
      () =>
        bytes(
          head([
            ['Content-Length', '2'],
            ['Content-Length', '3'],
          ]),
          '{}x',
        ),
      true,
    ],

    ['a chunk size of letters', () => bytes(head([['Transfer-Encoding', 'chunked']]), 'zz\r\n{}\r\n0\r\n\r\n'), true],
    ['a chunk longer than it says', () => bytes(head([['Transfer-Encoding', 'chunked']]), '2\r\n{}xx\r\n0\r\n\r\n'), true],
    ['a body cut short', () => bytes(head([['Content-Length', String(size + 10)]]), body), true],
    ['chunks cut short', () => bytes(head([['Transfer-Encoding', 'chunked']]), '10\r\n{}'), true],
    [
      'a head too large',
      () =>
        bytes(
          head([
            ['X-Huge', 'h'.repeat(70 * 1024)],
            ['Content-Length', '2'],
          ]),
          '{}',
        ),
      true,
    ],
    // RFC 9112 §6.3: Transfer-Encoding overrides Content-Length; a proxy may refuse it or forward it decoded.
    [
      'length and chunked',
      () =>
        bytes(
          head([
            ['Content-Length', '2'],
            ['Transfer-Encoding', 'chunked'],
          ]),
          '2\r\n{}\r\n0\r\n\r\n',
        ),
      false,
    ],
    ['HTTP/1.0 without a length', () => bytes(head(headers, `HTTP/1.0 ${status} OK`), body), false],
    ['bare LF line ends', () => bytes(`HTTP/1.1 ${status} OK\nConnection: close\nContent-Length: 2\n\n{}`), false],
    ['a folded header', () => bytes(`HTTP/1.1 ${status} OK\r\nConnection: close\r\nX-Fold: a\r\n b\r\nContent-Length: 2\r\n\r\n{}`), false],
  ];
  const [what, make, broken] = pick(shapes);
  return { id: `${id} (${what})`, raw: make(), close: true, broken };
}

/** A complete answer is the gateway's own 502 in Seldon's JSON shape. */
function isGateway502(status: number, body: Buffer): boolean {
  if (status !== 502) return false;
  try {
    const s = (JSON.parse(body.toString()) as { status?: { code?: unknown; reason?: unknown; status?: unknown } }).status;
    return s?.code === 502 && typeof s.reason === 'string' && s.status === 'FAILURE';
  } catch {
    return false;
  }
}

describe("a broken model, at random (seeded): what the client gets is the answer meant, or the gateway's 502", () => {
  let model: RecordingUpstream;
  let gw: TestGateway;
  const cases = new Map<string, Case>();

  beforeAll(async () => {
    model = await startRecordingUpstream({
      name: 'model',
      responder: (req) => {
        const c = cases.get(headerValue(req.headers, 'x-case') ?? '');
        return c === undefined ? { body: '{"plain":true}' } : { raw: c.raw, close: c.close };
      },
    });
    gw = await startTestGateway({
      manifests: { 'model.yaml': sdep('model', 'm', { predictors: [{ name: 'main' }] }, { 'seldon.io/rest-timeout': '2000' }) },
      resolve: { 'model-main.m:8000': model.port },
    });
  });
  afterAll(async () => {
    await gw?.stop();
    await model?.close();
  });

  const { seed, cases: CASES } = fuzzSequence(300);

  it(`${CASES} answers (seed ${seed})`, async () => {
    const r = seededRandom(seed);
    const all = Array.from({ length: CASES }, (_, i) => randomCase(r, `a${seed}-${i}`));
    for (const c of all) cases.set(c.id, c);
    const tally = { relayed: 0, refused: 0, cut: 0 };
    for (let b = 0; b < all.length; b += 10) {
      await Promise.all(
        all.slice(b, b + 10).map(async (c) => {
          const x = await connectRaw(gw.port);
          await writeRequest(x, {
            target: PATH,
            headers: [
              ['Host', 'gw'],
              ['X-Case', c.id],
              ['Content-Type', 'application/json'],
            ],
            body: Buffer.from('{}'),
          });
          const res = await readHttpResponse(x.reader, { timeoutMs: 5000 });
          x.socket.destroy();
          const what = `${c.id}: ${JSON.stringify(c.raw.subarray(0, 300).toString('latin1'))} -> ${res?.statusLine ?? 'no answer'} ${res?.body.subarray(0, 200).toString('latin1') ?? ''}`;
          if (res !== null && res.complete && isGateway502(res.status, res.body)) {
            expect(c.meant, `${what}: a well-formed answer was refused`).toBeUndefined();
            tally.refused++;
            return;
          }
          if (res === null || !res.complete) {
            // Cut: acceptable only for a broken answer whose head may already have been passed on.
            expect(c.meant, `${what}: a well-formed answer was cut`).toBeUndefined();
            tally.cut++;
            return;
          }
          expect(c.broken, `${what}: a broken answer was passed on as complete (${res.statusLine})`).toBe(false);
          if (c.meant === undefined) {
            tally.relayed++;
            return;
          }
          expect(res.status, what).toBe(c.meant.status);
          expect(res.reason, what).toBe(c.meant.reason);
          // What the gateway adds aside (a Date when the model sent none, the upstream's time), the model's fields as meant.
          const endToEnd = res.headers.filter(
            ([k]) => !HOP_BY_HOP.has(k.toLowerCase()) && k !== 'x-envoy-upstream-service-time' && !(k === 'Date' && !c.meant!.headers.some(([n]) => n.toLowerCase() === 'date')),
          );
          expect(endToEnd, what).toEqual(c.meant.headers.map(([k, v]) => [k, v.trim()]));
          expect(res.body.equals(c.meant.body), `${what}: the body bytes`).toBe(true);
          tally.relayed++;
        }),
      );
    }
    // Both kinds were drawn, and the gateway still serves a plain request.
    expect(tally.relayed, JSON.stringify(tally)).toBeGreaterThan(CASES / 2);
    expect(tally.refused + tally.cut, JSON.stringify(tally)).toBeGreaterThan(CASES / 10);
    const x = await connectRaw(gw.port);
    await writeRequest(x, { target: PATH, headers: [['Host', 'gw']], body: Buffer.from('{}') });
    const res = await readHttpResponse(x.reader, { timeoutMs: 5000 });
    x.socket.destroy();
    expect(res?.status).toBe(200);
    expect(res?.body.toString()).toBe('{"plain":true}');
  });
});
