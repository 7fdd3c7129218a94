/**
 * Request smuggling, tried as an attacker over raw sockets (HTTP/1.1 cleartext and over TLS, and
 * HTTP/2 frames), against the gateway with its own HTTP/1.1 lane (the default), with Node's server
 * alone (--http1-server node), and with TLS on.
 *
 * The verdict is what the model received (a recording upstream: every request line, header line
 * and body byte, and whether the body arrived whole) and whether any client received an answer
 * that was not its own. The deployment all probes go to allows one upstream connection
 * (max-connections 1), so after each probe a sentinel request on a new connection shows both that
 * the upstream connection was given back and, the pool being first-in first-out, that everything
 * the probe got through to the model arrived before it.
 *
 * Probes: requests pipelined behind every refusal (none is served), Transfer-Encoding spellings as
 * CL.TE and TE.CL, Content-Length variants, chunk-size and chunk-extension quirks (malformed ones
 * answered at once, the upstream request aborted), a pipeline split at every CR and LF, and
 * HTTP/2-to-HTTP/1.1 downgrade probes (content-length against DATA, connection-specific fields,
 * fields with CR, LF or NUL, a chunked body inside DATA).
 */
import { once } from 'node:events';
import http2 from 'node:http2';
import net from 'node:net';
import tls from 'node:tls';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ByteReader, headerValue, readHttpResponse, startRecordingUpstream, type RawResponse, type RecordedRequest, type RecordingUpstream } from '../../fixtures/recording-upstream.js';
import { sdep, startTestGateway, type TestGateway } from '../../helpers/gateway.js';
import { llhttp } from '../../../fuzz/llhttp.js';
import { FRAME, RawH2 } from '../../helpers/raw-h2.js';
import { certDir, makeCa, type Ca } from '../../helpers/tls-certs.js';

const NS = 'ns';
/** The deployment every probe goes to: one upstream connection at most. */
const ONE = `/seldon/${NS}/one`;
const SMUGGLED = 'SMUGGLED';
const smuggled = `GET ${ONE}/${SMUGGLED} HTTP/1.1\r\nHost: h\r\n\r\n`;
const MAX_BODY = 1024 * 1024;
const { NGHTTP2_PROTOCOL_ERROR } = http2.constants;

/** The model: it names the request it answers (target, case, body) so a client can tell an answer that is not its own. */
function modelAnswer(req: RecordedRequest): { headers: [string, string][]; body: string } {
  return {
    headers: [['Content-Type', 'application/json']],
    body: JSON.stringify({ target: req.target, case: headerValue(req.headers, 'x-case') ?? '', body: req.body.toString('latin1') }),
  };
}

interface Side {
  readonly name: string;
  readonly gw: TestGateway;
  readonly model: RecordingUpstream;
  /** The CA to trust and the name to ask for, when the side is TLS. */
  readonly tls?: { ca: string; servername: string };
}

interface Outcome {
  answers: RawResponse[];
  /** The gateway closed the connection. */
  closed: boolean;
  ms: number;
}

/** A connection to the side's public port, plain or TLS (ALPN http/1.1). */
async function connect(side: Side): Promise<net.Socket> {
  if (side.tls === undefined) {
    const s = net.connect(side.gw.port, '127.0.0.1');
    await once(s, 'connect');
    s.setNoDelay(true);
    return s;
  }
  const s = tls.connect({ host: '127.0.0.1', port: side.gw.port, ca: side.tls.ca, servername: side.tls.servername, ALPNProtocols: ['http/1.1'] });
  await once(s, 'secureConnect');
  s.setNoDelay(true);
  return s;
}

/**
 * Send `pieces` on a new connection (one write, or one write per piece `gapMs` apart) and read
 * every answer until the gateway closes the connection (or 5 s pass without an answer).
 */
async function send(side: Side, pieces: string | (string | Buffer)[], gapMs = 0): Promise<Outcome> {
  const socket = await connect(side);
  socket.on('error', () => undefined);
  const reader = new ByteReader(socket);
  const parts = (typeof pieces === 'string' ? [pieces] : pieces).map((p) => (typeof p === 'string' ? Buffer.from(p, 'latin1') : p));
  const t0 = Date.now();
  if (gapMs === 0) socket.write(Buffer.concat(parts));
  else {
    for (const [i, p] of parts.entries()) {
      if (i > 0) await new Promise((r) => setTimeout(r, gapMs));
      socket.write(p);
    }
  }
  const answers: RawResponse[] = [];
  for (;;) {
    const a = await readHttpResponse(reader, { timeoutMs: 5000 });
    if (a === null) break;
    answers.push(a);
  }
  const out = { answers, closed: reader.ended, ms: Date.now() - t0 };
  socket.destroy();
  return out;
}

let sentinels = 0;

/**
 * What the model received since `mark`, once everything the probe got through has arrived: a
 * sentinel request on a new connection to the same deployment (one upstream connection, taken
 * first come first served) is answered after it. Each request's body has been read (or given up).
 */
async function receivedSince(side: Side, mark: number): Promise<RecordedRequest[]> {
  const id = `sentinel-${++sentinels}`;
  const out = await send(side, `GET ${ONE}/sentinel HTTP/1.1\r\nHost: h\r\nX-Case: ${id}\r\nConnection: close\r\n\r\n`);
  expect(
    out.answers.map((a) => a.status),
    `${side.name}: the sentinel after the probe is served (the upstream connection was given back)`,
  ).toEqual([200]);
  expect(JSON.parse(out.answers[0]!.body.toString()).case).toBe(id);
  const got = side.model.requests.slice(mark);
  const sentinel = got.findIndex((r) => headerValue(r.headers, 'x-case') === id);
  expect(sentinel).toBeGreaterThanOrEqual(0);
  const before = got.slice(0, sentinel);
  await Promise.all(before.map((r) => r.bodyDone));
  // An aborted request's upstream connection was closed: the sentinel came on another.
  for (const r of before) if (!r.complete) expect(r.connection, `${side.name}: ${r.target} aborted on its own connection`).not.toBe(got[sentinel]!.connection);
  return before;
}

/** Every request the model received is one the gateway framed without ambiguity, and none is the smuggled one. */
function expectClean(side: Side, what: string, got: RecordedRequest[]): void {
  for (const r of got) {
    expect(r.target, `${side.name} ${what}: the smuggled request reached the model`).not.toContain(SMUGGLED);
    const te = r.headers.filter(([k]) => /^transfer[-_]encoding$/i.test(k));
    const cl = r.headers.filter(([k]) => /^content[-_]length$/i.test(k));
    expect(te.length + cl.length, `${side.name} ${what}: one framing field at the model`).toBeLessThanOrEqual(1);
    for (const [, v] of te) expect(v).toBe('chunked');
  }
}

/** Send `bytes` (llhttp reads `request`, a prefix of them), then what the model received, checked clean. */
async function probe(side: Side, what: string, bytes: string, request = bytes): Promise<{ oracle: ReturnType<typeof llhttp>; out: Outcome; got: RecordedRequest[] }> {
  const oracle = llhttp(Buffer.from(request, 'latin1'));
  const mark = side.model.requests.length;
  const out = await send(side, bytes);
  const got = await receivedSince(side, mark);
  expectClean(side, what, got);
  return { oracle, out, got };
}

/** The client got exactly one answer, a refusal with `status` and `connection: close`, at once, and the connection closed. */
function expectRefused(side: Side, what: string, out: Outcome, status: number): void {
  const label = `${side.name} ${what}`;
  expect(
    out.answers.map((a) => a.status),
    label,
  ).toEqual([status]);
  expect(headerValue(out.answers[0]!.headers, 'connection')?.toLowerCase(), label).toBe('close');
  expect(JSON.parse(out.answers[0]!.body.toString()).status.code, label).toBe(status);
  expect(out.closed, `${label}: closed`).toBe(true);
  expect(out.ms, `${label}: answered at once`).toBeLessThan(3000);
}

/** Answers that name a request the client did not send (its targets): none. */
function foreignAnswers(out: Outcome, sent: string[]): string[] {
  return out.answers
    .filter((a) => a.status === 200)
    .map((a) => (JSON.parse(a.body.toString()) as { target: string }).target)
    .filter((t) => !sent.some((s) => `${ONE}${t}` === s || t === s.slice(ONE.length)));
}

const post = (path: string, lines: string[], body: string): string => `POST ${ONE}${path} HTTP/1.1\r\nHost: h\r\n${lines.map((l) => `${l}\r\n`).join('')}\r\n${body}`;
const chunk = (data: string): string => `${data.length.toString(16)}\r\n${data}\r\n`;

let dir: string;
let ca: Ca;
const sides: Side[] = [];
const models: RecordingUpstream[] = [];
const gateways: TestGateway[] = [];

beforeAll(async () => {
  dir = certDir();
  ca = makeCa(dir);
  const pair = ca.issue({ cn: 'gateway.test', san: ['gateway.test'], serial: 7 });
  writeFileSync(join(dir, 'gw.crt'), pair.cert);
  writeFileSync(join(dir, 'gw.key'), pair.key);
  const manifests = {
    'one.yaml': sdep('one', NS, { predictors: [{ name: 'main' }] }, { 'seldon.io/ambassador-circuit-breakers-max-connections': '1' }),
  };
  const common = ['--max-body', '1MiB', '--client-request-timeout', '60s'];
  const variants: [string, string[], Side['tls']][] = [
    ['lane', [], undefined],
    ['node', ['--http1-server', 'node'], undefined],
    ['tls', ['--tls-cert', join(dir, 'gw.crt'), '--tls-key', join(dir, 'gw.key')], { ca: ca.cert, servername: 'gateway.test' }],
  ];
  for (const [name, args, secure] of variants) {
    // The model waits for a body as long as a test may take: only the gateway ends a request it cut short.
    const model = await startRecordingUpstream({ name, responder: modelAnswer, bodyIdleMs: 30_000 });
    const gw = await startTestGateway({ manifests, resolve: { 'one-main.ns:8000': model.port }, args: [...common, ...args] });
    models.push(model);
    gateways.push(gw);
    sides.push({ name, gw, model, ...(secure ? { tls: secure } : {}) });
  }
});

afterAll(async () => {
  for (const g of gateways) await g.stop();
  for (const m of models) await m.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('requests behind a refusal are never served', () => {
  /** Each refused request, with its status; the smuggled GET follows it in the same write. */
  const refusals: [string, string, number][] = [
    ['two Host fields', `GET ${ONE}/a HTTP/1.1\r\nHost: h\r\nHost: i\r\n\r\n`, 400],
    ['no Host', `GET ${ONE}/a HTTP/1.1\r\n\r\n`, 400],
    ['an empty Transfer-Encoding, then Content-Length', `POST ${ONE}/a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: \r\nContent-Length: 4\r\n\r\n${chunk(smuggled).slice(0, 4)}`, 400],
    ['a blank Transfer-Encoding', `POST ${ONE}/a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding:   \r\n\r\n`, 400],
    ['TRACE', `TRACE ${ONE}/a HTTP/1.1\r\nHost: h\r\n\r\n`, 405],
    ['CONNECT', `CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n`, 405],
    ['101 header lines', `GET ${ONE}/a HTTP/1.1\r\nHost: h\r\n${'X-Many: y\r\n'.repeat(100)}\r\n`, 431],
    ['a head over --max-header-size', `GET ${ONE}/a HTTP/1.1\r\nHost: h\r\nX-Big: ${'b'.repeat(70_000)}\r\n\r\n`, 431],
    ['gzip, chunked', `POST ${ONE}/a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n`, 501],
    ['Content-Length over --max-body', post('/a', [`Content-Length: ${MAX_BODY + 1}`], ''), 413],
    ['a chunked body over --max-body', post('/a', ['Transfer-Encoding: chunked'], `${chunk('x'.repeat(MAX_BODY + 1))}0\r\n\r\n`), 413],
    ['a malformed chunk size', post('/a', ['Transfer-Encoding: chunked'], 'zz\r\nAA\r\n0\r\n\r\n'), 400],
    ["a chunk extension over llhttp's limit", post('/a', ['Transfer-Encoding: chunked'], `2;${'e'.repeat(20_000)}\r\nAA\r\n0\r\n\r\n`), 413],
    ['Content-Length with Transfer-Encoding', post('/a', ['Content-Length: 5', 'Transfer-Encoding: chunked'], '0\r\n\r\n'), 400],
    ['two Content-Lengths', post('/a', ['Content-Length: 2', 'Content-Length: 3'], 'abc'), 400],
    ['obsolete line folding', post('/a', ['X-Fold: a', ' b', 'Content-Length: 0'], ''), 400],
    ['a bare LF', `GET ${ONE}/a HTTP/1.1\nHost: h\n\n`, 400],
    ['a space before the colon', `GET ${ONE}/a HTTP/1.1\r\nHost : h\r\n\r\n`, 400],
    ['an unknown method', `BREW ${ONE}/a HTTP/1.1\r\nHost: h\r\n\r\n`, 400],
    ['a NUL in a field value', `GET ${ONE}/a HTTP/1.1\r\nHost: h\r\nX: a\x00b\r\n\r\n`, 400],
    ['a Content-Length in the trailer', post('/a', ['Transfer-Encoding: chunked'], `${chunk('AA')}0\r\nContent-Length: 5\r\n\r\n`), 400],
    ['a field named like Transfer-Encoding', post('/a', ['Transfer_Encoding: chunked', 'Content-Length: 5'], '0\r\n\r\n'), 400],
  ];

  for (const [what, bytes, status] of refusals) {
    it(`${what}: ${status}, closed, and the request behind it never reaches the model`, async () => {
      for (const side of sides) {
        const mark = side.model.requests.length;
        const out = await send(side, bytes + smuggled);
        expectRefused(side, what, out, status);
        const got = await receivedSince(side, mark);
        expectClean(side, what, got);
        // Whatever of the refused request reached the model (a head streamed before its body broke off) never arrived whole.
        for (const r of got) expect(r.complete, `${side.name} ${what}: ${r.target}`).toBe(false);
      }
    });
  }

  it('a request after `Connection: close`: the first is answered, the one behind it is not served', async () => {
    for (const side of sides) {
      const mark = side.model.requests.length;
      const out = await send(side, `GET ${ONE}/first HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n${smuggled}`);
      expect(out.answers.map((a) => a.status)).toEqual([200]);
      expect(JSON.parse(out.answers[0]!.body.toString()).target).toBe('/first');
      expect(out.closed).toBe(true);
      expect((await receivedSince(side, mark)).map((r) => r.target)).toEqual(['/first']);
    }
  });

  it('a refusal after a served request: the served one is answered, then the refusal, and nothing behind it', async () => {
    for (const side of sides) {
      const mark = side.model.requests.length;
      const out = await send(side, `GET ${ONE}/first HTTP/1.1\r\nHost: h\r\n\r\nGET ${ONE}/a HTTP/1.1\r\nHost: h\r\nHost: i\r\n\r\n${smuggled}`);
      expect(
        out.answers.map((a) => a.status),
        side.name,
      ).toEqual([200, 400]);
      expect(out.closed).toBe(true);
      expect((await receivedSince(side, mark)).map((r) => r.target)).toEqual(['/first']);
    }
  });

  it('malformed bytes after a served request still in flight: its answer, then the 400, then the close', async () => {
    for (const side of sides) {
      const mark = side.model.requests.length;
      const out = await send(side, `GET ${ONE}/first HTTP/1.1\r\nHost: h\r\n\r\nGET ${ONE}/second HTTP/1.1\r\nHost: h\r\n\r\nGET /x HTTP/1.1\r\nHost : h\r\n\r\n${smuggled}`);
      expect(
        out.answers.map((a) => a.status),
        side.name,
      ).toEqual([200, 200, 400]);
      expect(out.answers.slice(0, 2).map((a) => JSON.parse(a.body.toString()).target)).toEqual(['/first', '/second']);
      expect(out.closed).toBe(true);
      expect((await receivedSince(side, mark)).map((r) => r.target)).toEqual(['/first', '/second']);
    }
  });
});

describe('Transfer-Encoding spellings, as CL.TE and TE.CL', () => {
  const SPELLINGS = [
    'chunked',
    'Chunked',
    'CHUNKED',
    ' chunked',
    'chunked ',
    '\tchunked',
    'chunked\t',
    'identity, chunked',
    'chunked, chunked',
    'gzip, chunked',
    'chunked, identity',
    'chunked;q=1',
    '"chunked"',
    'x-chunked',
    'chunk',
    '',
    ' ',
    'chunked\x0b',
    '\x0bchunked',
    'chunked,',
    ', chunked',
  ];
  const NAMES = ['Transfer-Encoding', 'transfer-encoding', 'Transfer_Encoding', 'Transfer-Encoding ', ' Transfer-Encoding', 'X: y\r\n Transfer-Encoding', 'Transfer-Encoding\t'];

  /** The smuggled request as the body of one interpretation: after `0\r\n\r\n` (CL.TE) or inside a chunk (TE.CL). */
  const clte = (te: string, name = 'Transfer-Encoding'): string => {
    const body = `0\r\n\r\n${smuggled}`;
    return post('/clte', [`Content-Length: ${body.length}`, `${name}: ${te}`], body);
  };
  const tecl = (te: string, name = 'Transfer-Encoding'): string => post('/tecl', [`${name}: ${te}`, 'Content-Length: 4'], `${chunk(smuggled)}0\r\n\r\n`);

  it("with both framings, every spelling is refused, nothing reaches the model, no answer is another request's", async () => {
    for (const side of sides) {
      const probes = [...SPELLINGS.flatMap((s) => [clte(s), tecl(s)]), ...NAMES.flatMap((n) => [clte('chunked', n), tecl('chunked', n)])];
      for (const bytes of probes) {
        const what = JSON.stringify(bytes.slice(0, 120));
        const mark = side.model.requests.length;
        const out = await send(side, bytes);
        expect(out.answers.length, `${side.name} ${what}`).toBe(1);
        expect(out.answers[0]!.status, `${side.name} ${what}`).toBeGreaterThanOrEqual(400);
        expect(out.closed, `${side.name} ${what}`).toBe(true);
        const got = await receivedSince(side, mark);
        expectClean(side, what, got);
        for (const r of got) expect(r.complete, `${side.name} ${what}`).toBe(false);
      }
    }
  });

  it('alone, a spelling is served as chunked exactly when llhttp reads it as chunked and it names chunked alone; the model gets the decoded body', async () => {
    for (const side of sides) {
      for (const te of SPELLINGS) {
        const body = `${chunk('{"a":')}${chunk('1}')}0\r\n\r\n`;
        const bytes = post('/te', [`Transfer-Encoding: ${te}`, 'Connection: close'], body);
        const what = `${side.name} ${JSON.stringify(te)}`;
        const { oracle, out, got } = await probe(side, what, bytes);
        const servable = oracle.error === undefined && oracle.requests.length === 1 && /^[ \t]*chunked[ \t]*$/i.test(te);
        if (servable) {
          expect(
            out.answers.map((a) => a.status),
            what,
          ).toEqual([200]);
          expect(
            got.map((r) => [r.target, r.body.toString('latin1'), r.complete]),
            what,
          ).toEqual([['/te', '{"a":1}', true]]);
        } else {
          expect(out.answers.length, what).toBe(1);
          expect(out.answers[0]!.status, what).toBeGreaterThanOrEqual(400);
          for (const r of got) expect(r.complete, what).toBe(false);
        }
      }
    }
  });
});

describe('Content-Length variants', () => {
  const VALUES = ['4', '04', '+4', '-4', ' 4', '4 ', '\t4', '4\t', '4,4', '4, 4', '4 4', '0x4', '4.0', '1e0', '', '99999999999999999999', '4\x00', '4\x0b'];

  it("served exactly as llhttp reads it (the model gets the 4 bytes, and the next request is the client's own), else refused with nothing at the model", async () => {
    for (const side of sides) {
      for (const v of VALUES) {
        const bytes = `${post('/cl', [`Content-Length: ${v}`], 'abcd')}GET ${ONE}/next HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n`;
        const what = `${side.name} ${JSON.stringify(v)}`;
        const { oracle, out, got } = await probe(side, what, bytes);
        expect(foreignAnswers(out, [`${ONE}/cl`, `${ONE}/next`]), what).toEqual([]);
        if (oracle.error === undefined) {
          expect(oracle.requests.map((r) => r.body)).toEqual(['abcd', '']);
          expect(
            out.answers.map((a) => a.status),
            what,
          ).toEqual([200, 200]);
          expect(
            got.map((r) => [r.target, r.body.toString('latin1')]),
            what,
          ).toEqual([
            ['/cl', 'abcd'],
            ['/next', ''],
          ]);
        } else {
          expectRefused(side, v, out, 400);
          expect(got, what).toEqual([]);
        }
      }
    }
  });
});

describe('chunk sizes, extensions and trailers', () => {
  /** Bodies after `Transfer-Encoding: chunked`; llhttp decides which are well formed. */
  const BODIES: [string, string][] = [
    ['plain', `${chunk('AA')}0\r\n\r\n`],
    ['leading zeros', '002\r\nAA\r\n0000\r\n\r\n'],
    ['upper-case hex', `A\r\n${'x'.repeat(10)}\r\n0\r\n\r\n`],
    ['an extension', '2;name=value\r\nAA\r\n0\r\n\r\n'],
    ['a quoted extension', '2;name="v;\\"x"\r\nAA\r\n0;last\r\n\r\n'],
    ['a trailer', `${chunk('AA')}0\r\nX-Trailer: t\r\n\r\n`],
    ['a chunk size that overflows', 'ffffffffffffffff1\r\nAA\r\n0\r\n\r\n'],
    ['a 0x prefix', '0x2\r\nAA\r\n0\r\n\r\n'],
    ['a leading space', ' 2\r\nAA\r\n0\r\n\r\n'],
    ['a space after the size', '2 \r\nAA\r\n0\r\n\r\n'],
    ['a negative size', '-2\r\nAA\r\n0\r\n\r\n'],
    ['a bare LF in a chunk extension', '2;a\nb\r\nAA\r\n0\r\n\r\n'],
    ['a bare LF after the size', '2\nAA\r\n0\r\n\r\n'],
    ['a bare LF in chunk data', '2\r\nA\nA\r\n0\r\n\r\n'],
    ['no CRLF after chunk data', '2\r\nAAX\r\n0\r\n\r\n'],
    ['a bare LF after chunk data', '2\r\nAA\n0\r\n\r\n'],
    ['an empty extension', '2;\r\nAA\r\n0\r\n\r\n'],
    ['a space in an extension name', '2;a b\r\nAA\r\n0\r\n\r\n'],
    ['a 20 KB chunk extension', `2;${'e'.repeat(20_000)}\r\nAA\r\n0\r\n\r\n`],
    ['Content-Length in the trailer', `${chunk('AA')}0\r\nContent-Length: 5\r\n\r\n`],
    ['Transfer-Encoding in the trailer', `${chunk('AA')}0\r\nTransfer-Encoding: chunked\r\n\r\n`],
    ['a space before a trailer colon', `${chunk('AA')}0\r\nX-T : 1\r\n\r\n`],
    ['a bare LF in the trailer', `${chunk('AA')}0\r\nX-T: 1\n\r\n`],
  ];

  it('well formed: the model gets the decoded body; malformed: 400 (413 for the extension) at once, the upstream request aborted and its connection given back', async () => {
    for (const side of sides) {
      for (const [what, body] of BODIES) {
        // llhttp reads the request alone: it refuses any byte after `Connection: close`.
        const request = post('/chunked', ['Transfer-Encoding: chunked', 'Connection: close'], body);
        const label = `${side.name} ${what}`;
        const { oracle, out, got } = await probe(side, label, request + smuggled, request);
        if (oracle.error === undefined) {
          expect(
            out.answers.map((a) => a.status),
            label,
          ).toEqual([200]);
          expect(
            got.map((r) => [r.target, r.body.toString('latin1'), r.complete]),
            label,
          ).toEqual([['/chunked', oracle.requests[0]!.body, true]]);
        } else {
          expectRefused(side, what, out, oracle.error === 'HPE_CHUNK_EXTENSIONS_OVERFLOW' ? 413 : 400);
          for (const r of got) expect(r.complete, label).toBe(false);
        }
      }
    }
  });

  it("a malformed body that arrives after the head was streamed to the model: the model's connection is closed, the next request gets a new one", async () => {
    for (const side of sides) {
      const socket = await connect(side);
      socket.on('error', () => undefined);
      const reader = new ByteReader(socket);
      const mark = side.model.requests.length;
      socket.write(post('/streamed', ['Transfer-Encoding: chunked'], chunk('first piece')));
      // The head is at the model (a chunked body streams) before the bad chunk comes.
      const until = Date.now() + 5000;
      while (!side.model.requests.slice(mark).some((r) => r.target === '/streamed') && Date.now() < until) await new Promise((r) => setTimeout(r, 5));
      const atModel = side.model.requests.slice(mark).find((r) => r.target === '/streamed');
      expect(atModel, side.name).toBeDefined();
      const t0 = Date.now();
      socket.write('zz\r\nAA\r\n0\r\n\r\n');
      const answer = await readHttpResponse(reader, { timeoutMs: 5000 });
      expect(answer?.status, side.name).toBe(400);
      expect(Date.now() - t0, `${side.name}: answered at once`).toBeLessThan(3000);
      await atModel!.bodyDone;
      expect(atModel!.complete, `${side.name}: the model never got the body whole`).toBe(false);
      expect('first piece'.startsWith(atModel!.body.toString()), side.name).toBe(true);
      socket.destroy();
      const got = await receivedSince(side, mark);
      expect(got.map((r) => r.target)).toEqual(['/streamed']);
    }
  });
});

describe('a pipeline split at every CR and LF', () => {
  const PIPELINE = [
    post('/p1', ['Transfer-Encoding: chunked', 'X-Case: p1'], `${chunk('{"a"')}3;ext=1\r\n:1}\r\n0\r\nX-Trailer: t\r\n\r\n`),
    post('/p2', ['Content-Length: 7', 'X-Case: p2'], '{"b":2}'),
    `GET ${ONE}/p3 HTTP/1.1\r\nHost: h\r\nX-Case: p3\r\nConnection: close\r\n\r\n`,
  ].join('');

  it("answers in order, each the client's own, and the model gets the same three requests whatever the split", async () => {
    const cuts: number[] = [];
    for (let i = 0; i < PIPELINE.length; i++) if (PIPELINE[i] === '\r' || PIPELINE[i] === '\n') cuts.push(i + 1);
    for (const side of sides) {
      for (const cut of cuts) {
        const what = `${side.name} split after ${JSON.stringify(PIPELINE.slice(Math.max(0, cut - 20), cut))}`;
        const mark = side.model.requests.length;
        const out = await send(side, [PIPELINE.slice(0, cut), PIPELINE.slice(cut)], 5);
        expect(
          out.answers.map((a) => [a.status, JSON.parse(a.body.toString()).target]),
          what,
        ).toEqual([
          [200, '/p1'],
          [200, '/p2'],
          [200, '/p3'],
        ]);
        expect(out.closed, what).toBe(true);
        const got = await receivedSince(side, mark);
        expect(
          got.map((r) => [r.target, r.body.toString(), r.complete]),
          what,
        ).toEqual([
          ['/p1', '{"a":1}', true],
          ['/p2', '{"b":2}', true],
          ['/p3', '', true],
        ]);
      }
    }
  });
});

describe('HTTP/2 to HTTP/1.1: downgrade probes', () => {
  const h2Sides = (): Side[] => sides.filter((s) => s.name !== 'node');
  const base = (path: string): [string, string][] => [
    [':method', 'POST'],
    [':path', `${ONE}${path}`],
    [':scheme', 'http'],
    [':authority', 'h'],
    ['content-type', 'application/json'],
  ];

  it('content-length against DATA, connection-specific fields, te other than trailers: the stream is reset (PROTOCOL_ERROR), nothing whole at the model', async () => {
    for (const side of h2Sides()) {
      const scheme = side.tls === undefined ? 'http' : 'https';
      const probes: [string, [string, string][], Buffer | null][] = [
        ['more DATA than content-length', [['content-length', '4']], Buffer.from(`abcd${smuggled}`)],
        ['less DATA than content-length', [['content-length', '40']], Buffer.from('abcd')],
        [
          'two content-lengths',
          [
            ['content-length', '4'],
            ['content-length', '5'],
          ],
          Buffer.from('abcd'),
        ],
        ['a content-length list', [['content-length', '4, 4']], Buffer.from('abcd')],
        ['transfer-encoding: chunked', [['transfer-encoding', 'chunked']], Buffer.from(`0\r\n\r\n${smuggled}`)],
        ['te: gzip', [['te', 'gzip']], Buffer.from('{}')],
        ['connection: keep-alive', [['connection', 'keep-alive']], Buffer.from('{}')],
        ['keep-alive', [['keep-alive', 'timeout=5']], Buffer.from('{}')],
        ['upgrade', [['upgrade', 'h2c']], Buffer.from('{}')],
        ['an upper-case field name', [['Content-Length', '2']], Buffer.from('{}')],
        ['a CRLF in :path', [], Buffer.from('{}')],
      ];
      const mark = side.model.requests.length;
      for (const [what, extra, body] of probes) {
        // A connection each: nghttp2 may take a probe for a connection error (Node 24 answers
        // DATA beyond content-length with GOAWAY, Node 20 with RST_STREAM).
        const raw = await RawH2.connect(side.gw.port, side.tls);
        const fields = base('/h2').map(([k, v]): [string, string] => [k, k === ':scheme' ? scheme : k === ':path' && what.includes(':path') ? `${ONE}/a HTTP/1.1\r\nX: y` : v]);
        raw.headers(1, [...fields, ...extra], body === null);
        if (body !== null) raw.data(1, body, true);
        const rst = await raw.rstOf(1);
        const goaway = raw.frames.some((f) => f.type === FRAME.GOAWAY);
        expect(rst === NGHTTP2_PROTOCOL_ERROR || (rst === undefined && goaway), `${side.name} ${what}: reset (${rst}) or GOAWAY (${goaway})`).toBe(true);
        expect(raw.answered(1), `${side.name} ${what}: no answer`).toBe(false);
        raw.close();
      }
      const got = await receivedSince(side, mark);
      expectClean(side, 'h2 probes', got);
      for (const r of got) expect(r.complete, `${side.name} h2 ${r.target}`).toBe(false);
    }
  });

  it('DATA short of a content-length over 64 KiB (a body streamed to the model as it comes): reset, and the upstream request aborted', async () => {
    for (const side of h2Sides()) {
      const scheme = side.tls === undefined ? 'http' : 'https';
      const raw = await RawH2.connect(side.gw.port, side.tls);
      expect(await raw.windowOpen(), side.name).toBe(true);
      const mark = side.model.requests.length;
      raw.headers(1, [...base('/streamed').map(([k, v]): [string, string] => [k, k === ':scheme' ? scheme : v]), ['content-length', '100000']], false);
      raw.data(1, Buffer.alloc(70_000, 120), false);
      // The head is at the model (a body over 64 KiB streams) before the stream ends short.
      const until = Date.now() + 5000;
      while (!side.model.requests.slice(mark).some((r) => r.target === '/streamed') && Date.now() < until) await new Promise((r) => setTimeout(r, 5));
      raw.data(1, Buffer.alloc(0), true);
      expect(await raw.rstOf(1), side.name).toBe(NGHTTP2_PROTOCOL_ERROR);
      expect(raw.answered(1)).toBe(false);
      raw.close();
      const got = await receivedSince(side, mark);
      expect(
        got.map((r) => [r.target, r.complete]),
        side.name,
      ).toEqual([['/streamed', false]]);
      expect(got[0]!.body.length, side.name).toBeLessThanOrEqual(70_000);
    }
  });

  it('a chunked body inside DATA is the body, never a second request; te: trailers is dropped', async () => {
    for (const side of h2Sides()) {
      const scheme = side.tls === undefined ? 'http' : 'https';
      const raw = await RawH2.connect(side.gw.port, side.tls);
      const mark = side.model.requests.length;
      const body = `0\r\n\r\n${smuggled}`;
      raw.headers(1, [...base('/inner').map(([k, v]): [string, string] => [k, k === ':scheme' ? scheme : v]), ['te', 'trailers']], false);
      raw.data(1, Buffer.from(body), true);
      const answer = JSON.parse((await raw.bodyOf(1)).toString()) as { target: string; body: string };
      expect(answer.target).toBe('/inner');
      expect(answer.body).toBe(body);
      raw.close();
      const got = await receivedSince(side, mark);
      expect(got.map((r) => [r.target, r.body.toString(), r.complete])).toEqual([['/inner', body, true]]);
      expect(got[0]!.headers.some(([k]) => k.toLowerCase() === 'te')).toBe(false);
    }
  });

  it("fields with CR, LF or NUL, or a name that is not a token, never reach the model (Node's HTTP/2 drops them: see the file header of rest/h2.ts)", async () => {
    for (const side of h2Sides()) {
      const scheme = side.tls === undefined ? 'http' : 'https';
      const raw = await RawH2.connect(side.gw.port, side.tls);
      const mark = side.model.requests.length;
      const bad: [string, string][] = [
        ['x-inject', `a\r\nTransfer-Encoding: chunked`],
        ['x-lf', 'a\nb'],
        ['x-nul', 'a\x00b'],
        ['x b', 'v'],
        ['x:c', 'v'],
        ['x-lead', ' v'],
        ['x-trail', 'v '],
      ];
      let id = 1;
      for (const field of bad) {
        raw.headers(id, [...base('/fields').map(([k, v]): [string, string] => [k, k === ':scheme' ? scheme : v]), ['x-case', `f${id}`], field], false);
        raw.data(id, Buffer.from('{}'), true);
        await raw.bodyOf(id);
        id += 2;
      }
      raw.close();
      const got = await receivedSince(side, mark);
      expectClean(side, 'h2 fields', got);
      for (const r of got) {
        for (const [name] of bad)
          expect(
            r.headers.some(([k]) => k.toLowerCase() === name),
            `${side.name}: ${name}`,
          ).toBe(false);
        expect(r.rawHead.toString('latin1')).not.toMatch(/x-inject|\r\nTransfer-Encoding: chunked\r\n/);
      }
    }
  });
});
