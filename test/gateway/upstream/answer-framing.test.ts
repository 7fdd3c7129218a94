/**
 * A model that frames its answers wrong, and clients that pipeline: nobody may receive an answer
 * that is not their own (docs/routing.md#answer-framing).
 *
 * The model is a raw socket (net.createServer on 127.0.0.1) that answers `<case>/evil` with exact
 * misframed bytes: Transfer-Encoding beside Content-Length (the de-chunked body forwarded with the
 * model's `Content-Length: 0` made the client read an answer hidden in the body as the answer to
 * its next request), transfer codings other than chunked, repeated and conflicting lengths,
 * lengths and bodies on 204, 304 and HEAD answers (also sent late, once the gateway could have
 * sent another request on that connection), bad chunks, bodies cut short. Its other answers are
 * `{"mine":"<case>/<n>"}`.
 *
 * Each HTTP/1.1 client pipelines three requests in one write (`evil`, then `other?n=2` and
 * `other?n=3` with `Connection: close`) and reads until the connection closes, parsing strictly:
 * an answer with both framings, two lengths, a length on a 204 or bytes after the last answer
 * fail the test. The first answer is what the case decides (relayed with the gateway's framing,
 * the gateway's 502, or cut), and the next two are each their own, or, when the first was cut,
 * nothing follows. The same over the lane, over Node's server (a chunked first request hands the
 * connection over; and `--http1-server node`), over TLS, and over HTTP/2 (h2c and TLS), where a
 * content-length the gateway writes must equal the DATA it sends (on HEAD and 304: none is sent).
 */
import http2 from 'node:http2';
import net, { type AddressInfo } from 'node:net';
import tls from 'node:tls';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ByteReader } from '../../fixtures/recording-upstream.js';
import { sdep, startTestGateway, type TestGateway } from '../../helpers/gateway.js';
import { metric } from '../../helpers/metrics.js';
import { certDir, makeCa } from '../../helpers/tls-certs.js';

const PREFIX = '/seldon/m/model/api/v1.0';
const { NGHTTP2_NO_ERROR, NGHTTP2_INTERNAL_ERROR } = http2.constants;

/** An answer hidden in a body: a client that reads this body as a stream of answers takes it for the next one. */
const SMUG = 'HTTP/1.1 200 OK\r\nContent-Length: 16\r\n\r\n{"evil": "yes!"}';
const chunk = (s: string): string => `${Buffer.byteLength(s, 'latin1').toString(16)}\r\n${s}\r\n`;
const chunked = (s: string): string => `${chunk(s)}0\r\n\r\n`;
const ok = (head: string): string => `HTTP/1.1 200 OK\r\n${head}\r\n`;

type Outcome =
  /** Passed on: this status and body, with `length` as its Content-Length (none when undefined). */
  | { kind: 'relayed'; status: number; body: string; length?: number }
  /** The gateway's 502 UPSTREAM_BAD_RESPONSE, and the connection serves on. */
  | { kind: 'refused' }
  /** The head may have gone out; the answer never completes: the connection (HTTP/2: the stream) is cut. */
  | { kind: 'cut' };

interface Case {
  readonly id: string;
  /** The model's answer to `<id>/evil`, exactly. */
  readonly raw: string;
  /** The model closes the connection after it. */
  readonly close?: boolean;
  /** Sent as the answer to the next request on the same connection, if the gateway sends one there. */
  readonly late?: string;
  /** Asked with HEAD. */
  readonly head?: boolean;
  readonly outcome: Outcome;
}

const relayed = (status: number, body: string, length?: number): Outcome => ({ kind: 'relayed', status, body, ...(length === undefined ? {} : { length }) });
const REFUSED: Outcome = { kind: 'refused' };
const CUT: Outcome = { kind: 'cut' };

const CASES: Case[] = [
  // Transfer-Encoding beside Content-Length is refused, whichever comes first (RFC 9112 §6.3 "ought to be handled as an error"; llhttp, nginx).
  { id: 'chunked-beside-length-0', raw: ok('Content-Length: 0\r\nTransfer-Encoding: chunked\r\n') + chunked(SMUG), outcome: REFUSED },
  { id: 'length-0-after-chunked', raw: ok('Transfer-Encoding: chunked\r\nContent-Length: 0\r\n') + chunked(SMUG), outcome: REFUSED },
  { id: 'chunked-beside-larger-length', raw: ok('Content-Length: 500\r\nTransfer-Encoding: chunked\r\n') + chunked('{}'), outcome: REFUSED },
  { id: 'chunked-upper-case-beside-length', raw: ok('Content-Length: 0\r\nTransfer-Encoding: CHUNKED\r\n') + chunked(SMUG), outcome: REFUSED },
  // Transfer codings the gateway does not decode, and framings that contradict each other.
  { id: 'identity-beside-length', raw: ok('Content-Length: 0\r\nTransfer-Encoding: identity\r\n') + SMUG, close: true, outcome: REFUSED },
  { id: 'gzip-beside-length', raw: ok('Content-Length: 0\r\nTransfer-Encoding: gzip\r\n') + SMUG, close: true, outcome: REFUSED },
  { id: 'identity-alone', raw: ok('Transfer-Encoding: identity\r\n') + SMUG, close: true, outcome: REFUSED },
  { id: 'gzip-alone', raw: ok('Transfer-Encoding: gzip\r\n') + SMUG, close: true, outcome: REFUSED },
  { id: 'gzip-then-chunked', raw: ok('Transfer-Encoding: gzip, chunked\r\n') + chunked(SMUG), outcome: REFUSED },
  { id: 'chunked-then-identity', raw: ok('Transfer-Encoding: chunked, identity\r\n') + chunked(SMUG), close: true, outcome: REFUSED },
  { id: 'chunked-twice', raw: ok('Transfer-Encoding: chunked, chunked\r\n') + chunked(SMUG), outcome: REFUSED },
  { id: 'chunked-in-two-fields', raw: ok('Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n') + chunked(SMUG), outcome: REFUSED },
  { id: 'empty-transfer-encoding', raw: ok('Transfer-Encoding: \r\nContent-Length: 2\r\n') + '{}', outcome: REFUSED },
  { id: 'http10-chunked-beside-length', raw: `HTTP/1.0 200 OK\r\nContent-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n${chunked(SMUG)}`, close: true, outcome: REFUSED },
  // Content-Length: one field of digits; a repeat or a list is refused even when its values agree (as llhttp).
  { id: 'length-repeated', raw: ok('Content-Length: 2\r\nContent-Length: 2\r\n') + '{}', outcome: REFUSED },
  { id: 'length-list', raw: ok('Content-Length: 2, 2\r\n') + '{}', outcome: REFUSED },
  { id: 'lengths-differ', raw: ok(`Content-Length: 0\r\nContent-Length: ${SMUG.length}\r\n`) + SMUG, outcome: REFUSED },
  { id: 'length-list-differs', raw: ok(`Content-Length: 0, ${SMUG.length}\r\n`) + SMUG, outcome: REFUSED },
  { id: 'length-with-sign', raw: ok('Content-Length: +2\r\n') + '{}', outcome: REFUSED },
  { id: 'length-negative', raw: ok('Content-Length: -1\r\n') + SMUG, outcome: REFUSED },
  { id: 'length-letters', raw: ok('Content-Length: 2x\r\n') + '{}', outcome: REFUSED },
  { id: 'length-space-before-colon', raw: ok('Content-Length : 0\r\n') + SMUG, outcome: REFUSED },
  { id: 'length-then-more-bytes', raw: ok('Content-Length: 2\r\n') + '{}' + SMUG, outcome: relayed(200, '{}', 2) },
  { id: 'no-framing-until-close', raw: ok('') + SMUG, close: true, outcome: relayed(200, SMUG) },
  { id: 'switching-protocols', raw: 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: upgrade\r\n\r\n' + SMUG, outcome: REFUSED },
  { id: 'interim-with-length', raw: `HTTP/1.1 100 Continue\r\nContent-Length: ${SMUG.length}\r\n\r\n` + ok('Content-Length: 2\r\n') + '{}', outcome: relayed(200, '{}', 2) },
  // 204: no length, no body, whatever the model says; one that announces a body ends its upstream connection.
  { id: 'no-content-with-length', raw: `HTTP/1.1 204 No Content\r\nContent-Length: ${SMUG.length}\r\n\r\n`, outcome: relayed(204, '') },
  { id: 'no-content-with-length-and-body', raw: `HTTP/1.1 204 No Content\r\nContent-Length: ${SMUG.length}\r\n\r\n${SMUG}`, outcome: relayed(204, '') },
  { id: 'no-content-with-length-body-late', raw: `HTTP/1.1 204 No Content\r\nContent-Length: ${SMUG.length}\r\n\r\n`, late: SMUG, outcome: relayed(204, '') },
  { id: 'no-content-chunked-body', raw: `HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\n\r\n${chunked(SMUG)}`, outcome: relayed(204, '') },
  { id: 'no-content-chunked-body-late', raw: 'HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\n\r\n', late: chunked(SMUG), outcome: relayed(204, '') },
  { id: 'reset-content-length-0', raw: 'HTTP/1.1 205 Reset Content\r\nContent-Length: 0\r\n\r\n', outcome: relayed(205, '', 0) },
  // 304 and HEAD: the model's length passes (RFC 9110 §8.6, as nginx passes it); never a body; Transfer-Encoding beside it is refused.
  { id: 'not-modified-with-length', raw: `HTTP/1.1 304 Not Modified\r\nContent-Length: ${SMUG.length}\r\n\r\n`, outcome: relayed(304, '', SMUG.length) },
  { id: 'not-modified-with-length-and-body', raw: `HTTP/1.1 304 Not Modified\r\nContent-Length: ${SMUG.length}\r\n\r\n${SMUG}`, outcome: relayed(304, '', SMUG.length) },
  { id: 'not-modified-with-length-body-late', raw: `HTTP/1.1 304 Not Modified\r\nContent-Length: ${SMUG.length}\r\n\r\n`, late: SMUG, outcome: relayed(304, '', SMUG.length) },
  { id: 'not-modified-chunked-beside-length', raw: `HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\nContent-Length: ${SMUG.length}\r\n\r\n`, outcome: REFUSED },
  { id: 'head-with-length', head: true, raw: ok(`Content-Length: ${SMUG.length}\r\n`), outcome: relayed(200, '', SMUG.length) },
  { id: 'head-with-length-and-body', head: true, raw: ok(`Content-Length: ${SMUG.length}\r\n`) + SMUG, outcome: relayed(200, '', SMUG.length) },
  { id: 'head-with-length-body-late', head: true, raw: ok(`Content-Length: ${SMUG.length}\r\n`), late: SMUG, outcome: relayed(200, '', SMUG.length) },
  { id: 'head-chunked-beside-length', head: true, raw: ok(`Transfer-Encoding: chunked\r\nContent-Length: ${SMUG.length}\r\n`), outcome: REFUSED },
  { id: 'head-chunked-body-late', head: true, raw: ok('Transfer-Encoding: chunked\r\n'), late: chunked(SMUG), outcome: relayed(200, '') },
  // Bodies that break their own framing before a byte of them is good: the gateway's 502 (the head waits for the
  // first body bytes); after: the answer is cut. Nothing more is read from that connection either way.
  { id: 'chunk-size-letters', raw: ok('Transfer-Encoding: chunked\r\n') + `zz\r\n{}\r\n0\r\n\r\n${SMUG}`, outcome: REFUSED },
  { id: 'chunk-size-negative', raw: ok('Transfer-Encoding: chunked\r\n') + `-2\r\n{}\r\n0\r\n\r\n${SMUG}`, outcome: REFUSED },
  { id: 'chunk-size-0x', raw: ok('Transfer-Encoding: chunked\r\n') + `0x2\r\n{}\r\n0\r\n\r\n${SMUG}`, outcome: REFUSED },
  { id: 'chunk-size-huge', raw: ok('Transfer-Encoding: chunked\r\n') + `${'f'.repeat(18)}\r\n{}\r\n0\r\n\r\n`, outcome: REFUSED },
  { id: 'chunk-longer-than-size', raw: ok('Transfer-Encoding: chunked\r\n') + `2\r\n{}${SMUG}\r\n0\r\n\r\n`, outcome: CUT },
  { id: 'chunk-shorter-then-close', raw: ok('Transfer-Encoding: chunked\r\n') + `${(SMUG.length + 10).toString(16)}\r\n${SMUG}`, close: true, outcome: CUT },
  { id: 'chunk-bare-lf', raw: ok('Transfer-Encoding: chunked\r\n') + '2\n{}\r\n0\r\n\r\n', outcome: REFUSED },
  { id: 'no-last-chunk-then-close', raw: ok('Transfer-Encoding: chunked\r\n') + chunk('{}'), close: true, outcome: CUT },
  { id: 'length-short-then-close', raw: ok('Content-Length: 100\r\n') + '{"partial"', close: true, outcome: CUT },
];
const BY_ID = new Map(CASES.map((c) => [c.id, c]));

const mine = (id: string, n: number): string => JSON.stringify({ mine: `${id}/${n}` });

// ---------------------------------------------------------------------------------------------
// The model: raw bytes per case; every other request gets its own answer.

interface Model {
  readonly port: number;
  close(): Promise<void>;
}

/** Read one request (head, and a Content-Length or chunked body, discarded); its target, or null at the end. */
async function readRequest(r: ByteReader): Promise<string | null> {
  const head = await r.until('\r\n\r\n', 64 * 1024, 60_000);
  if (head === null) return null;
  const text = head.toString('latin1');
  const target = text.slice(0, text.indexOf('\r\n')).split(' ')[1] ?? '';
  const cl = /\r\ncontent-length:\s*(\d+)/i.exec(text);
  if (cl !== null) await r.bytes(Number(cl[1]));
  else if (/\r\ntransfer-encoding:\s*chunked/i.test(text)) {
    for (;;) {
      const line = await r.until('\r\n', 4096);
      if (line === null) return null;
      const size = parseInt(line.toString('latin1'), 16);
      if (size === 0) {
        while ((await r.until('\r\n', 4096))?.length !== 2) if (r.ended) return null;
        break;
      }
      await r.bytes(size + 2);
    }
  }
  return target;
}

async function startModel(): Promise<Model> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    void serve(socket);
  });
  const serve = async (socket: net.Socket): Promise<void> => {
    const r = new ByteReader(socket);
    /** Bytes the last answer announced and did not send: the next request on this connection gets them. */
    let late: string | undefined;
    for (;;) {
      const target = await readRequest(r);
      if (target === null || socket.destroyed) return;
      const m = /\/([a-z0-9-]+)\/(evil|other\?n=(\d))$/.exec(target);
      const c = m === null ? undefined : BY_ID.get(m[1]!);
      if (late !== undefined) {
        socket.write(late, 'latin1');
        late = undefined;
      } else if (c !== undefined && m![2] === 'evil') {
        socket.write(c.raw, 'latin1');
        if (c.close) {
          socket.end();
          return;
        }
        late = c.late;
      } else {
        const body = m === null ? '{}' : mine(m[1]!, Number(m[3]));
        socket.write(`HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`, 'latin1');
      }
    }
  };
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

// ---------------------------------------------------------------------------------------------
// HTTP/1.1: three pipelined requests, everything read until the connection closes, parsed strictly.

interface H1Answer {
  status: number;
  headers: [string, string][];
  body: Buffer;
  /** Complete by its framing (false: the connection ended inside it). */
  complete: boolean;
  /** What makes its framing ambiguous to some client (it must stay empty). */
  problems: string[];
}

const field = (a: H1Answer, name: string): string[] => a.headers.filter(([k]) => k.toLowerCase() === name).map(([, v]) => v);

/** Decode a chunked body strictly from `at`; the data and where it ended (-1: incomplete or malformed). */
function dechunk(bytes: Buffer, at: number): { body: Buffer; end: number } {
  const parts: Buffer[] = [];
  for (;;) {
    const eol = bytes.indexOf('\r\n', at, 'latin1');
    if (eol < 0) return { body: Buffer.concat(parts), end: -1 };
    const size = bytes.toString('latin1', at, eol);
    if (!/^[0-9a-f]{1,8}$/i.test(size)) return { body: Buffer.concat(parts), end: -1 };
    const n = parseInt(size, 16);
    at = eol + 2;
    if (n === 0) {
      // No trailers from the gateway: the empty line.
      return bytes.toString('latin1', at, at + 2) === '\r\n' ? { body: Buffer.concat(parts), end: at + 2 } : { body: Buffer.concat(parts), end: -1 };
    }
    if (at + n + 2 > bytes.length || bytes.toString('latin1', at + n, at + n + 2) !== '\r\n') {
      parts.push(bytes.subarray(at, Math.min(at + n, bytes.length)));
      return { body: Buffer.concat(parts), end: -1 };
    }
    parts.push(bytes.subarray(at, at + n));
    at += n + 2;
  }
}

/** Every answer in `bytes` (the first to a HEAD when `head`), in order; an incomplete one is last. */
function h1Answers(bytes: Buffer, head: boolean): H1Answer[] {
  const out: H1Answer[] = [];
  let at = 0;
  while (at < bytes.length) {
    const end = bytes.indexOf('\r\n\r\n', at, 'latin1');
    const text = bytes.toString('latin1', at, end < 0 ? bytes.length : end);
    const lines = text.split('\r\n');
    const m = /^HTTP\/1\.1 (\d{3}) /.exec(lines[0]!);
    if (end < 0 || m === null) {
      out.push({ status: m === null ? 0 : Number(m[1]), headers: [], body: Buffer.alloc(0), complete: false, problems: m === null ? [`not an answer: ${JSON.stringify(text.slice(0, 80))}`] : [] });
      break;
    }
    const a: H1Answer = {
      status: Number(m[1]),
      headers: lines.slice(1).map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 1).trim()]),
      body: Buffer.alloc(0),
      complete: true,
      problems: [],
    };
    out.push(a);
    at = end + 4;
    const cl = field(a, 'content-length');
    const te = field(a, 'transfer-encoding');
    if (cl.length > 0 && te.length > 0) a.problems.push('Content-Length beside Transfer-Encoding');
    if (cl.length > 1) a.problems.push(`Content-Length ${cl.length} times`);
    if (cl.some((v) => !/^\d+$/.test(v))) a.problems.push(`Content-Length ${JSON.stringify(cl)}`);
    if (te.length > 0 && (te.length > 1 || te[0] !== 'chunked')) a.problems.push(`Transfer-Encoding ${JSON.stringify(te)}`);
    if (a.status < 200 || (a.status === 204 && cl.length + te.length > 0)) a.problems.push(`framing fields on a ${a.status}`);
    if ((out.length === 1 && head) || a.status === 204 || a.status === 304 || a.status < 200) continue;
    if (te.length > 0) {
      const d = dechunk(bytes, at);
      a.body = d.body;
      if (d.end < 0) {
        a.complete = false;
        break;
      }
      at = d.end;
    } else if (cl.length > 0) {
      const n = Number(cl[0]);
      a.body = bytes.subarray(at, at + n);
      at += n;
      if (a.body.length < n) {
        a.complete = false;
        break;
      }
    } else {
      // Delimited by the close: it swallows whatever follows.
      a.body = bytes.subarray(at);
      at = bytes.length;
    }
  }
  return out;
}

interface H1Mode {
  readonly name: string;
  gateway(): TestGateway;
  /** The first request is a chunked POST with a Connection option that is no token (the lane gives the connection to Node's server at it). */
  readonly chunkedFirst?: boolean;
  readonly tls?: boolean;
}

let ca = '';

/** The three requests in one write; all bytes until the gateway closes the connection. */
async function pipeline(port: number, c: Case, mode: H1Mode): Promise<Buffer> {
  const base = `${PREFIX}/${c.id}`;
  const first =
    c.head === true
      ? `HEAD ${base}/evil HTTP/1.1\r\nHost: gw\r\n\r\n`
      : mode.chunkedFirst
        ? `POST ${base}/evil HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\nConnection: keep-alive, x/y\r\nTransfer-Encoding: chunked\r\n\r\n${chunked('{}')}`
        : `GET ${base}/evil HTTP/1.1\r\nHost: gw\r\n\r\n`;
  const bytes = `${first}GET ${base}/other?n=2 HTTP/1.1\r\nHost: gw\r\n\r\nGET ${base}/other?n=3 HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n`;
  const socket = mode.tls ? tls.connect({ host: '127.0.0.1', port, ca, servername: 'gateway.test', ALPNProtocols: ['http/1.1'] }) : net.connect(port, '127.0.0.1');
  const chunks: Buffer[] = [];
  socket.on('data', (d: Buffer) => chunks.push(d));
  socket.on('error', () => undefined);
  socket.once(mode.tls ? 'secureConnect' : 'connect', () => socket.write(bytes, 'latin1'));
  const closed = await new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), 10_000);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
  socket.destroy();
  expect(closed, `${c.id}: the gateway left the connection open (an answer never ended, or the third one was not the last)`).toBe(true);
  return Buffer.concat(chunks);
}

/** The gateway's Seldon-style 502 for an answer it cannot frame (to a HEAD: the status, no body). */
function isRefusal(status: number, body: Buffer, head: boolean): boolean {
  if (status !== 502) return false;
  if (head) return body.length === 0;
  const s = (JSON.parse(body.toString()) as { status?: { code?: number; reason?: string } }).status;
  return s?.code === 502 && s.reason === 'UPSTREAM_BAD_RESPONSE';
}

function checkH1(c: Case, bytes: Buffer): void {
  const answers = h1Answers(bytes, c.head === true);
  const what = `${c.id}: ${JSON.stringify(bytes.toString('latin1').slice(0, 600))}`;
  for (const a of answers) expect(a.problems, what).toEqual([]);
  const [first, ...rest] = answers;
  if (c.outcome.kind === 'cut') {
    // Nothing complete, and nothing after it.
    expect(answers.length, what).toBeLessThanOrEqual(1);
    expect(first?.complete ?? false, what).toBe(false);
    return;
  }
  expect(first, what).toBeDefined();
  expect(first!.complete, what).toBe(true);
  if (c.outcome.kind === 'refused') {
    expect(isRefusal(first!.status, first!.body, c.head === true), what).toBe(true);
  } else {
    expect(first!.status, what).toBe(c.outcome.status);
    expect(first!.body.toString('latin1'), what).toBe(c.outcome.body);
    expect(field(first!, 'content-length'), what).toEqual(c.outcome.length === undefined ? [] : [String(c.outcome.length)]);
  }
  // The next two are their own, and nothing follows them.
  expect(
    rest.map((a) => [a.status, a.complete, a.body.toString('latin1')]),
    what,
  ).toEqual([
    [200, true, mine(c.id, 2)],
    [200, true, mine(c.id, 3)],
  ]);
}

// ---------------------------------------------------------------------------------------------
// HTTP/2: the three requests one after another on one session.

interface H2Got {
  status: number | undefined;
  headers: http2.IncomingHttpHeaders | undefined;
  body: Buffer;
  rstCode: number | undefined;
}

function h2Request(session: http2.ClientHttp2Session, method: string, path: string): Promise<H2Got> {
  return new Promise((resolve) => {
    const s = session.request({ ':method': method, ':path': path }, { endStream: true });
    let headers: http2.IncomingHttpHeaders | undefined;
    const chunks: Buffer[] = [];
    s.on('response', (h) => (headers = h));
    s.on('data', (d: Buffer) => chunks.push(d));
    s.on('error', () => undefined);
    s.on('close', () => resolve({ status: headers?.[':status'] as number | undefined, headers, body: Buffer.concat(chunks), rstCode: s.rstCode }));
  });
}

async function checkH2(c: Case, session: http2.ClientHttp2Session): Promise<void> {
  const base = `${PREFIX}/${c.id}`;
  const first = await h2Request(session, c.head === true ? 'HEAD' : 'GET', `${base}/evil`);
  const what = `${c.id}: ${JSON.stringify({ ...first, body: first.body.toString('latin1') })}`;
  const cl = first.headers?.['content-length'];
  if (c.outcome.kind === 'cut') {
    expect(first.rstCode, what).toBe(NGHTTP2_INTERNAL_ERROR);
  } else {
    expect(first.rstCode, what).toBe(NGHTTP2_NO_ERROR);
    if (c.outcome.kind === 'refused') {
      expect(isRefusal(first.status!, first.body, c.head === true), what).toBe(true);
    } else {
      expect(first.status, what).toBe(c.outcome.status);
      expect(first.body.toString('latin1'), what).toBe(c.outcome.body);
      expect(cl, what).toBe(c.outcome.length === undefined ? undefined : String(c.outcome.length));
    }
    // A content-length the gateway writes is the DATA it sends (HEAD and 304 excepted: RFC 9113 §8.1.1), and never on a 204.
    if (cl !== undefined && c.head !== true && first.status !== 304) expect(Number(cl), what).toBe(first.body.length);
    if (first.status === 204) expect(cl, what).toBeUndefined();
  }
  for (const n of [2, 3]) {
    const next = await h2Request(session, 'GET', `${base}/other?n=${n}`);
    expect([next.status, next.rstCode, next.body.toString('latin1')], `${c.id}/${n}`).toEqual([200, NGHTTP2_NO_ERROR, mine(c.id, n)]);
  }
}

// ---------------------------------------------------------------------------------------------

let model: Model;
let gw: TestGateway;
let gwNode: TestGateway;
let gwTls: TestGateway;
let dir: string;

beforeAll(async () => {
  model = await startModel();
  dir = certDir();
  const serverCa = makeCa(dir, 'Framing CA');
  const pair = serverCa.issue({ cn: 'gateway.test', san: ['gateway.test', 'IP:127.0.0.1'], serial: 100 });
  ca = serverCa.cert;
  writeFileSync(join(dir, 'tls.crt'), pair.cert);
  writeFileSync(join(dir, 'tls.key'), pair.key);
  const start = (args: string[]): Promise<TestGateway> =>
    startTestGateway({
      manifests: { 'model.yaml': sdep('model', 'm', { predictors: [{ name: 'main' }] }, { 'seldon.io/rest-timeout': '5000' }) },
      resolve: { 'model-main.m:8000': model.port },
      args,
    });
  [gw, gwNode, gwTls] = await Promise.all([start([]), start(['--http1-server', 'node']), start(['--tls-cert', join(dir, 'tls.crt'), '--tls-key', join(dir, 'tls.key')])]);
});

afterAll(async () => {
  await Promise.all([gw?.stop(), gwNode?.stop(), gwTls?.stop()]);
  await model?.close();
  rmSync(dir, { recursive: true, force: true });
});

const HANDOFFS = 'seldon_gateway_http1_handoffs_total{reason="request_shape"}';

const H1_MODES: H1Mode[] = [
  { name: 'HTTP/1.1, the lane', gateway: () => gw },
  { name: "HTTP/1.1, Node's server (a first request the lane leaves hands the connection over)", gateway: () => gw, chunkedFirst: true },
  { name: 'HTTP/1.1, --http1-server node', gateway: () => gwNode },
  { name: 'HTTP/1.1 over TLS', gateway: () => gwTls, tls: true },
];

for (const mode of H1_MODES) {
  describe(`${mode.name}: a pipelining client gets its own answers, whatever the model's framing`, () => {
    let handoffs = 0;
    beforeAll(async () => {
      handoffs = await metric(mode.gateway().adminUrl, HANDOFFS);
    });

    it.each(CASES.map((c) => [c.id, c] as const))('%s', async (_id, c) => {
      checkH1(c, await pipeline(mode.gateway().port, c, mode));
    });

    it('the connections were served by the server this mode names', async () => {
      // The lane gives HEAD requests to Node's server; with a first request it leaves, every connection goes.
      const expected = mode.chunkedFirst ? CASES.length : mode.gateway() === gwNode ? 0 : CASES.filter((c) => c.head === true).length;
      expect((await metric(mode.gateway().adminUrl, HANDOFFS)) - handoffs).toBe(expected);
    });
  });
}

for (const [name, target, options] of [
  ['HTTP/2 (h2c)', () => `http://127.0.0.1:${gw.port}`, {}],
  ['HTTP/2 over TLS', () => `https://127.0.0.1:${gwTls.port}`, { servername: 'gateway.test' }],
] as const) {
  describe(`${name}: each stream gets its own answer, and a content-length is the DATA sent`, () => {
    it.each(CASES.map((c) => [c.id, c] as const))('%s', async (_id, c) => {
      const session = http2.connect(target(), { ...options, ca });
      session.on('error', () => undefined);
      try {
        await checkH2(c, session);
      } finally {
        session.close();
      }
    });
  });
}
