/**
 * The upstream client's response parser (gateway/upstream/http1-response.ts), fed bytes as a
 * socket would deliver them: whole, and split at every byte boundary. Each answer must come out
 * the same however it is split: same head, same body bytes, one end.
 */
import { describe, expect, it } from 'vitest';
import { ResponseParseError, ResponseParser, type ResponseHead as ParsedHead } from '../../../gateway/upstream/http1-response.js';

/** What a parsed head says (its offsets into the bytes read differ with how they were split; what they say does not). */
interface ResponseHead {
  readonly status: number;
  readonly reason: string;
  readonly headers: string[];
  readonly length: number;
}
const readHead = (h: ParsedHead): ResponseHead => ({ status: h.status, reason: h.reason, headers: h.headers, length: h.length });

interface Parsed {
  heads: ResponseHead[];
  body: Buffer;
  ends: number;
  keepAlive: boolean;
  trailing: boolean;
  done: boolean;
  hintMs: number;
}

function parser(maxHead = 16 * 1024): { p: ResponseParser; out: Parsed; bodies: Buffer[] } {
  const bodies: Buffer[] = [];
  const out: Parsed = { heads: [], body: Buffer.alloc(0), ends: 0, keepAlive: false, trailing: false, done: false, hintMs: 0 };
  const p = new ResponseParser(
    {
      onHead: (h) => out.heads.push(readHead(h)),
      onBody: (c) => bodies.push(Buffer.from(c)),
      onEnd: () => out.ends++,
    },
    maxHead,
  );
  return { p, out, bodies };
}

/** Parse `wire` delivered in `parts` (byte offsets where the reads split); `closeAfter`: the connection then closes. */
function parse(wire: string | Buffer, cuts: number[] = [], o: { head?: boolean; closeAfter?: boolean; maxHead?: number } = {}): Parsed {
  const bytes = typeof wire === 'string' ? Buffer.from(wire, 'latin1') : wire;
  const { p, out, bodies } = parser(o.maxHead);
  p.expect(o.head === true);
  let from = 0;
  for (const cut of [...cuts, bytes.length]) {
    if (cut > from) p.execute(bytes.subarray(from, cut));
    from = cut;
  }
  if (o.closeAfter) p.finish();
  out.body = Buffer.concat(bodies);
  out.keepAlive = p.keepAlive;
  out.trailing = p.trailing;
  out.done = p.done;
  out.hintMs = p.keepAliveHintMs;
  return out;
}

/** The answer parsed whole and at every split point (and at every pair of split points for short ones) gives the same result. */
function parseEverySplit(wire: string, o: { head?: boolean; closeAfter?: boolean } = {}): Parsed {
  const whole = parse(wire, [], o);
  const n = Buffer.byteLength(wire, 'latin1');
  for (let i = 1; i < n; i++) {
    expect(parse(wire, [i], o), `split at ${i}`).toEqual(whole);
    if (n <= 120) for (let j = i + 1; j < n; j++) expect(parse(wire, [i, j], o), `split at ${i}, ${j}`).toEqual(whole);
  }
  return whole;
}

function failure(wire: string, o: { head?: boolean; maxHead?: number } = {}): ResponseParseError {
  try {
    parse(wire, [], o);
  } catch (err) {
    expect(err).toBeInstanceOf(ResponseParseError);
    return err as ResponseParseError;
  }
  throw new Error(`parsed without error: ${JSON.stringify(wire)}`);
}

describe('response parser: framing', () => {
  it('Content-Length: head as received (case, order, repeats), the body exactly, one end, keep-alive', () => {
    const r = parseEverySplit('HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nset-cookie: a=1\r\nSet-Cookie: b=2\r\nContent-Length: 11\r\n\r\n{"ok":true}');
    expect(r.heads).toEqual([{ status: 200, reason: 'OK', headers: ['Content-Type', 'application/json', 'set-cookie', 'a=1', 'Set-Cookie', 'b=2', 'Content-Length', '11'], length: 11 }]);
    expect(r.body.toString()).toBe('{"ok":true}');
    expect(r).toMatchObject({ ends: 1, keepAlive: true, trailing: false, done: true });
  });

  it('values lose surrounding SP and HTAB only; obs-text (latin1) is kept as is', () => {
    const r = parse('HTTP/1.1 200 OK\r\nX-A: \t padded \t\r\nX-Empty:\r\nX-Latin: caf\xe9\xa0\r\nContent-Length: 0\r\n\r\n');
    expect(r.heads[0]!.headers).toEqual(['X-A', 'padded', 'X-Empty', '', 'X-Latin', 'caf\xe9\xa0', 'Content-Length', '0']);
  });

  it('chunked, with extensions and trailers (dropped): the decoded body, one end', () => {
    const wire = 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n1;ext=1;b="x y";c;d="q\\""\r\n \r\nA\r\n0123456789\r\n0\r\nX-Trailer: t\r\nX-Other: o\r\n\r\n';
    const r = parseEverySplit(wire);
    expect(r.body.toString()).toBe('hello 0123456789');
    expect(r).toMatchObject({ ends: 1, keepAlive: true, trailing: false });
  });

  it('chunked with upper-case hex and leading zeros (as many as llhttp takes: they are no size)', () => {
    for (const zeros of ['', '0000000', '0'.repeat(20)]) {
      const r = parse(`HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n\r\n${zeros}1A\r\n${'x'.repeat(26)}\r\n${zeros}0\r\n\r\n`);
      expect(r.body.length).toBe(26);
      expect(r.ends).toBe(1);
    }
  });

  it('no body after HEAD, 204 and 304, whatever Content-Length or Transfer-Encoding say', () => {
    expect(parse('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n', [], { head: true })).toMatchObject({ ends: 1, done: true });
    expect(parse('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n', [], { head: true })).toMatchObject({ ends: 1, done: true });
    expect(parse('HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n')).toMatchObject({ ends: 1, done: true, trailing: false });
    expect(parse('HTTP/1.1 304 Not Modified\r\nContent-Length: 1234\r\n\r\n')).toMatchObject({ ends: 1, done: true });
    // Bytes after a bodiless answer are not part of it: the connection is not reused.
    expect(parse('HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\nhello')).toMatchObject({ ends: 1, trailing: true });
  });

  it('Content-Length: 0 ends at the head', () => {
    expect(parse('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n')).toMatchObject({ ends: 1, done: true, keepAlive: true });
  });

  it('no length: the body runs until the connection closes, and the connection is not reused', () => {
    const r = parseEverySplit('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil close', { closeAfter: true });
    expect(r).toMatchObject({ ends: 1, keepAlive: false });
    expect(r.body.toString()).toBe('until close');
    const { p } = parser();
    p.expect(false);
    p.execute(Buffer.from('HTTP/1.1 200 OK\r\n\r\nabc'));
    expect(p.untilClose).toBe(true);
    expect(p.done).toBe(false);
  });

  it("the length reported is the one the client may be told: the body's, or on HEAD and 304 the model's without Transfer-Encoding", () => {
    const length = (wire: string, o: { head?: boolean; closeAfter?: boolean } = {}): number => parse(wire, [], o).heads[0]!.length;
    expect(length('HTTP/1.1 200 OK\r\nContent-Length: 002\r\n\r\nok')).toBe(2);
    expect(length('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n')).toBe(0);
    expect(length('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n')).toBe(-1);
    expect(length('HTTP/1.1 200 OK\r\n\r\nuntil close', { closeAfter: true })).toBe(-1);
    // No content follows these: a length describes the answer a GET (or a 200) would have had (RFC 9110 §8.6).
    expect(length('HTTP/1.1 200 OK\r\nContent-Length: 55\r\n\r\n', { head: true })).toBe(55);
    expect(length('HTTP/1.1 304 Not Modified\r\nContent-Length: 55\r\n\r\n')).toBe(55);
    // A 204 has no length to tell (RFC 9110 §8.6: a server must not send one).
    expect(length('HTTP/1.1 204 No Content\r\nContent-Length: 55\r\n\r\n')).toBe(-1);
  });

  it('a bodiless answer whose head announces a body is passed on, and its connection is not reused', () => {
    // What the model may still send for it would be read as the next request's answer.
    const reused = (wire: string, head = false): boolean => parse(wire, [], { head }).keepAlive;
    expect(reused('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n', true)).toBe(false);
    expect(reused('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n', true)).toBe(false);
    expect(reused('HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n')).toBe(false);
    expect(reused('HTTP/1.1 304 Not Modified\r\nContent-Length: 1234\r\n\r\n')).toBe(false);
    // One that announces none is reused.
    expect(reused('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n', true)).toBe(true);
    expect(reused('HTTP/1.1 200 OK\r\nX-A: a\r\n\r\n', true)).toBe(true);
    expect(reused('HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n')).toBe(true);
    expect(reused('HTTP/1.1 304 Not Modified\r\nETag: "x"\r\n\r\n')).toBe(true);
  });

  it('interim 1xx answers are skipped, the final one is reported', () => {
    const r = parseEverySplit('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok');
    expect(r.heads.map((h) => h.status)).toEqual([201]);
    expect(r.body.toString()).toBe('ok');
  });

  it('Connection: close, HTTP/1.0 and Keep-Alive hints decide reuse', () => {
    expect(parse('HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n').keepAlive).toBe(false);
    expect(parse('HTTP/1.1 200 OK\r\nConnection: Keep-Alive, Close\r\nContent-Length: 0\r\n\r\n').keepAlive).toBe(false);
    expect(parse('HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n').keepAlive).toBe(true);
    expect(parse('HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n').keepAlive).toBe(false);
    expect(parse('HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n').keepAlive).toBe(true);
    expect(parse('HTTP/1.1 200 OK\r\nKeep-Alive: timeout=5, max=100\r\nContent-Length: 0\r\n\r\n').hintMs).toBe(5000);
  });

  it('status lines: reason optional, any 3-digit code from 100', () => {
    expect(parse('HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n').heads[0]).toMatchObject({ status: 200, reason: '' });
    expect(parse('HTTP/1.1 299 \r\nContent-Length: 0\r\n\r\n').heads[0]).toMatchObject({ status: 299, reason: '' });
    expect(parse('HTTP/1.1 599 Caf\xe9 d\xe9j\xe0 vu\r\nContent-Length: 0\r\n\r\n').heads[0]).toMatchObject({ status: 599, reason: 'Caf\xe9 d\xe9j\xe0 vu' });
  });

  it('bytes after an answer are flagged (the connection must not be reused)', () => {
    expect(parse('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\n')).toMatchObject({ ends: 1, trailing: true });
    expect(parse('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nX')).toMatchObject({ ends: 1, trailing: true });
  });

  it('a 10 MiB Content-Length body arrives in slices of the reads, none copied into one', () => {
    const body = Buffer.alloc(10 * 1024 * 1024, 7);
    const wire = Buffer.concat([Buffer.from(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n`), body]);
    const r = parse(wire, [100, 65_536, 5_000_000]);
    expect(r.body.equals(body)).toBe(true);
    expect(r.ends).toBe(1);
  });

  it('stop(): nothing more is reported for the abandoned answer', () => {
    const ends: number[] = [];
    const q = new ResponseParser({ onHead: () => q.stop(), onBody: () => ends.push(1), onEnd: () => ends.push(2) }, 1024);
    q.expect(false);
    q.execute(Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok'));
    expect(ends).toEqual([]);
    expect(q.done).toBe(true);
  });
});

describe('response parser: what it refuses (the client answers 502, never guesses)', () => {
  const cases: [string, string, string][] = [
    ['not HTTP', 'garbage\r\n\r\n', 'UPSTREAM_BAD_RESPONSE'],
    ['HTTP/2 status line', 'HTTP/2 200 OK\r\n\r\n', 'UPSTREAM_BAD_RESPONSE'],
    ['two-digit status', 'HTTP/1.1 20 OK\r\n\r\n', 'UPSTREAM_BAD_RESPONSE'],
    ['status 099', 'HTTP/1.1 099 OK\r\n\r\n', 'UPSTREAM_BAD_RESPONSE'],
    ['four-digit status', 'HTTP/1.1 2000 OK\r\n\r\n', 'UPSTREAM_BAD_RESPONSE'],
    ['control char in reason', 'HTTP/1.1 200 O\x01K\r\n\r\n', 'UPSTREAM_BAD_RESPONSE'],
    ['bare LF line', 'HTTP/1.1 200 OK\r\nX-A: 1\nX-B: 2\r\n\r\n', 'UPSTREAM_BAD_RESPONSE'],
    ['space before colon', 'HTTP/1.1 200 OK\r\nContent-Length : 2\r\n\r\nok', 'UPSTREAM_BAD_RESPONSE'],
    ['obs-fold', 'HTTP/1.1 200 OK\r\nX-A: 1\r\n  continued\r\nContent-Length: 0\r\n\r\n', 'UPSTREAM_BAD_RESPONSE'],
    ['no colon', 'HTTP/1.1 200 OK\r\nX-A\r\n\r\n', 'UPSTREAM_BAD_RESPONSE'],
    ['NUL in a value', 'HTTP/1.1 200 OK\r\nX-A: a\x00b\r\n\r\n', 'UPSTREAM_BAD_RESPONSE'],
    ['non-token name', 'HTTP/1.1 200 OK\r\nX(A): 1\r\n\r\n', 'UPSTREAM_BAD_RESPONSE'],
    ['negative length', 'HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n', 'UPSTREAM_BAD_RESPONSE'],
    ['length with a sign', 'HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\nhello', 'UPSTREAM_BAD_RESPONSE'],
    ['hex length', 'HTTP/1.1 200 OK\r\nContent-Length: 0x5\r\n\r\nhello', 'UPSTREAM_BAD_RESPONSE'],
    ['conflicting lengths', 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nabc', 'UPSTREAM_BAD_RESPONSE'],
    ['conflicting list', 'HTTP/1.1 200 OK\r\nContent-Length: 2, 3\r\n\r\nabc', 'UPSTREAM_BAD_RESPONSE'],
    // One Content-Length field of digits, as llhttp reads it (RFC 9110 §8.6 lets a recipient take repeats; llhttp does not).
    ['a repeated Content-Length of one value', 'HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc', 'UPSTREAM_BAD_RESPONSE'],
    ['a Content-Length list of one value', 'HTTP/1.1 200 OK\r\nContent-Length: 3, 3\r\n\r\nabc', 'UPSTREAM_BAD_RESPONSE'],
    // Both framings "ought to be handled as an error" (RFC 9112 §6.3), as llhttp, Envoy and haproxy do; on a bodiless answer too.
    ['Content-Length beside chunked', 'HTTP/1.1 200 OK\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n', 'UPSTREAM_BAD_RESPONSE'],
    ['chunked beside Content-Length: 0', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: CHUNKED\r\nContent-Length: 0\r\n\r\n2\r\nok\r\n0\r\n\r\n', 'UPSTREAM_BAD_RESPONSE'],
    ['both framings on a 304', 'HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\nContent-Length: 55\r\n\r\n', 'UPSTREAM_BAD_RESPONSE'],
    ['whitespace after a chunk size', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2 \r\nok\r\n0\r\n\r\n', 'UPSTREAM_BAD_RESPONSE'],
    ['whitespace before an extension', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2 ;a\r\nok\r\n0\r\n\r\n', 'UPSTREAM_BAD_RESPONSE'],
    ['an extension without a name', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2;\r\nok\r\n0\r\n\r\n', 'UPSTREAM_BAD_RESPONSE'],
    ['an extension value with a space', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2;a=b c\r\nok\r\n0\r\n\r\n', 'UPSTREAM_BAD_RESPONSE'],
    ['an unterminated quoted extension', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2;a="b\r\nok\r\n0\r\n\r\n', 'UPSTREAM_BAD_RESPONSE'],
    ['a folded trailer line', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n folded\r\n\r\n', 'UPSTREAM_BAD_RESPONSE'],
    ['a trailer line without a colon', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nbad line\r\n\r\n', 'UPSTREAM_BAD_RESPONSE'],
    ['Content-Length in the trailer', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nContent-Length: 5\r\n\r\n', 'UPSTREAM_BAD_RESPONSE'],
    // Refused as the bytes arrive, not when the head would end.
    ['a bare LF before the head ends', 'HTTP/1.1 200 OK\r\nX-A: 1\r\n\n', 'UPSTREAM_BAD_RESPONSE'],
    ['a broken line before the head ends', 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n{"body"', 'UPSTREAM_BAD_RESPONSE'],
    ['101 nobody asked for', 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n', 'UPSTREAM_BAD_RESPONSE'],
    // Transfer codings other than chunked alone: the gateway would forward them undecoded and unlabelled.
    ['Transfer-Encoding gzip', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nzzz', 'UPSTREAM_BAD_RESPONSE'],
    ['Transfer-Encoding identity', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: identity\r\n\r\nzzz', 'UPSTREAM_BAD_RESPONSE'],
    ['Transfer-Encoding identity beside a length', 'HTTP/1.1 200 OK\r\nContent-Length: 0\r\nTransfer-Encoding: identity\r\n\r\nzzz', 'UPSTREAM_BAD_RESPONSE'],
    ['Transfer-Encoding gzip beside a length', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nContent-Length: 3\r\n\r\nzzz', 'UPSTREAM_BAD_RESPONSE'],
    ['Transfer-Encoding gzip, chunked', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n3\r\nzzz\r\n0\r\n\r\n', 'UPSTREAM_BAD_RESPONSE'],
    ['Transfer-Encoding chunked, identity', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, identity\r\n\r\n3\r\nzzz\r\n0\r\n\r\n', 'UPSTREAM_BAD_RESPONSE'],
    ['chunked twice in one field', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n', 'UPSTREAM_BAD_RESPONSE'],
    ['chunked in two fields', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', 'UPSTREAM_BAD_RESPONSE'],
    ['an empty Transfer-Encoding', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: \r\nContent-Length: 2\r\n\r\nok', 'UPSTREAM_BAD_RESPONSE'],
    ['Transfer-Encoding in HTTP/1.0', 'HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', 'UPSTREAM_BAD_RESPONSE'],
    // On a bodiless answer too, as llhttp judges it.
    ['Transfer-Encoding gzip on a 204', 'HTTP/1.1 204 No Content\r\nTransfer-Encoding: gzip\r\n\r\n', 'UPSTREAM_BAD_RESPONSE'],
    ['an empty Transfer-Encoding beside chunked on a 204', 'HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: \r\n\r\n', 'UPSTREAM_BAD_RESPONSE'],
    ['chunk size not hex', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n', 'UPSTREAM_BAD_RESPONSE'],
    ['chunk size then junk', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5x\r\nhello\r\n0\r\n\r\n', 'UPSTREAM_BAD_RESPONSE'],
    ['chunk size over 2^52', `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n${'f'.repeat(14)}\r\n`, 'UPSTREAM_BAD_RESPONSE'],
    ['chunk longer than its size', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n0\r\n\r\n', 'UPSTREAM_BAD_RESPONSE'],
    ['bare LF after a chunk size', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\nab\r\n0\r\n\r\n', 'UPSTREAM_BAD_RESPONSE'],
    ['negative chunk size', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-2\r\nok\r\n0\r\n\r\n', 'UPSTREAM_BAD_RESPONSE'],
    ['chunk size with 0x', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0x2\r\nok\r\n0\r\n\r\n', 'UPSTREAM_BAD_RESPONSE'],
    ['head over the limit', `HTTP/1.1 200 OK\r\nX-Big: ${'x'.repeat(2000)}\r\n\r\n`, 'UPSTREAM_HEADERS_OVERFLOW'],
    ['unterminated head over the limit', `HTTP/1.1 200 OK\r\nX-Big: ${'x'.repeat(2000)}`, 'UPSTREAM_HEADERS_OVERFLOW'],
    ['trailers over the limit', `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-T: ${'t'.repeat(2000)}\r\n\r\n`, 'UPSTREAM_HEADERS_OVERFLOW'],
  ];
  for (const [what, wire, code] of cases) {
    it(`${what} → ${code}`, () => {
      expect(failure(wire, { maxHead: 1024 }).code).toBe(code);
    });
  }

  it('an endless chunk extension is cut at 4 KiB', () => {
    const { p } = parser();
    p.expect(false);
    p.execute(Buffer.from('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1;'));
    expect(() => {
      for (let i = 0; i < 10; i++) p.execute(Buffer.alloc(1024, 'a'));
    }).toThrow(/chunk extension/);
  });

  it('a head split across reads is held until complete, and still bounded', () => {
    const { p, out } = parser(64);
    p.expect(false);
    p.execute(Buffer.from('HTTP/1.1 200 OK\r\nX-A: '));
    expect(out.heads).toEqual([]);
    expect(() => p.execute(Buffer.alloc(100, 'a'))).toThrow(ResponseParseError);
  });
});
