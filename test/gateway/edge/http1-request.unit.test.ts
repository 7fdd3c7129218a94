/**
 * The HTTP/1.1 lane's request head parser (gateway/edge/http1-request.ts): the one shape it
 * takes, read the same however the bytes are split; everything else is "other", as early as the
 * bytes allow. And what it takes, `node:http` reads the same way: the same method, target and
 * header lines from a real `node:http` server for every request the lane accepts.
 */
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MORE, OTHER, parseRequestHead, type RequestHead } from '../../../gateway/edge/http1-request.js';

const LIMITS = { maxHeadBytes: 16 * 1024, maxHeaders: 100 };
const bytes = (s: string): Buffer => Buffer.from(s, 'latin1');
const parse = (s: string | Buffer, at = 0, limits = LIMITS): RequestHead | typeof MORE | typeof OTHER => parseRequestHead(typeof s === 'string' ? bytes(s) : s, at, limits);

/** What a parse read (a head's offsets differ with where it starts in its buffer; what they say does not). */
const read = (h: ReturnType<typeof parse>): unknown =>
  typeof h === 'string' ? h : { method: h.method, target: h.target, rawHeaders: h.rawHeaders, host: h.host, size: h.size, contentLength: h.contentLength, close: h.close };

const POST =
  'POST /seldon/models/iris/api/v1.0/predictions?x=1&y=%20 HTTP/1.1\r\nHost: gw:8080\r\nContent-Type:application/json\r\nContent-Length: 2\r\nX-Pad: \t a b \t\r\nConnection: keep-alive\r\n\r\n';

/** Requests the lane serves (each with a body as its Content-Length says). */
const ACCEPTED = [
  POST + '{}',
  'GET / HTTP/1.1\r\nHost: a\r\n\r\n',
  'DELETE /seldon/a/b/x HTTP/1.1\r\nhost: a\r\nConnection: close\r\n\r\n',
  "PUT /a-._~!$&'()*+,;=:@/?%zz HTTP/1.1\r\nHost: [::1]:80\r\nContent-Length: 0\r\n\r\n",
  'PATCH /p HTTP/1.1\r\nHost: a\r\nX-Empty:\r\nX-Obs: caf\xe9\r\nCookie: a=1\r\nCookie: b=2\r\nContent-Length:  3 \r\n\r\nabc',
  'OPTIONS /p HTTP/1.1\r\nHost: a\r\nOrigin: https://app\r\nAccess-Control-Request-Method: POST\r\nConnection: Keep-Alive, close\r\n\r\n',
  'POST /p HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, X-Hop-Secret,\r\nX-Hop-Secret: s\r\nContent-Length: 1\r\n\r\nx',
];

/** Requests the lane leaves to node:http, each for one reason. */
const LEFT: [string, string][] = [
  ['HTTP/1.0', 'GET / HTTP/1.0\r\nHost: a\r\n\r\n'],
  ['HEAD', 'HEAD / HTTP/1.1\r\nHost: a\r\n\r\n'],
  ['TRACE', 'TRACE / HTTP/1.1\r\nHost: a\r\n\r\n'],
  ['CONNECT', 'CONNECT a:443 HTTP/1.1\r\nHost: a\r\n\r\n'],
  ['a lower-case method', 'get / HTTP/1.1\r\nHost: a\r\n\r\n'],
  ['absolute form', 'GET http://a/ HTTP/1.1\r\nHost: a\r\n\r\n'],
  ['asterisk form', 'OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n'],
  ['a quote in the target', 'GET /a"b HTTP/1.1\r\nHost: a\r\n\r\n'],
  ['a fragment', 'GET /a#b HTTP/1.1\r\nHost: a\r\n\r\n'],
  ['obs-text in the target', 'GET /caf\xe9 HTTP/1.1\r\nHost: a\r\n\r\n'],
  ['two spaces', 'GET  / HTTP/1.1\r\nHost: a\r\n\r\n'],
  ['no Host', 'GET / HTTP/1.1\r\nX: a\r\n\r\n'],
  ['two Hosts', 'GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n'],
  ['chunked twice', 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n'],
  ['a coding list', 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n'],
  ['chunked with an HTAB', 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\t\r\n\r\n0\r\n\r\n'],
  ['xchunked', 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n'],
  ['Transfer-Encoding before Content-Length', 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n'],
  ['Content-Length and Transfer-Encoding', 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n'],
  ['two equal Content-Lengths', 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx'],
  ['a Content-Length list', 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1, 1\r\n\r\nx'],
  ['a signed Content-Length', 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +1\r\n\r\nx'],
  ['a 16-digit Content-Length', 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1000000000000000\r\n\r\n'],
  ['Expect', 'POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n'],
  ['Upgrade', 'GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n'],
  ['a Connection option that is not a token', 'GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, x/secret\r\n\r\n'],
  ['obs-fold', 'GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n'],
  ['a bare LF in a header line', 'GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n'],
  ['a bare CR', 'GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n'],
  ['a space before the colon', 'GET / HTTP/1.1\r\nHost : a\r\n\r\n'],
  ['NUL in a value', 'GET / HTTP/1.1\r\nHost: a\r\nX: a\x00b\r\n\r\n'],
  ['DEL in a value', 'GET / HTTP/1.1\r\nHost: a\r\nX: a\x7fb\r\n\r\n'],
  ['a separator in a name', 'GET / HTTP/1.1\r\nHost: a\r\nX(y): b\r\n\r\n'],
  ['an empty name', 'GET / HTTP/1.1\r\nHost: a\r\n: b\r\n\r\n'],
];

describe('parseRequestHead', () => {
  it('reads the head: method, target, header lines as sent (values trimmed), Host, size, body length, Connection', () => {
    const head = parse(POST + '{}') as RequestHead;
    const { method, target, rawHeaders, host, size, contentLength, close } = head;
    expect({ method, target, rawHeaders, host, size, contentLength, close }).toEqual({
      method: 'POST',
      target: '/seldon/models/iris/api/v1.0/predictions?x=1&y=%20',
      rawHeaders: ['Host', 'gw:8080', 'Content-Type', 'application/json', 'Content-Length', '2', 'X-Pad', 'a b', 'Connection', 'keep-alive'],
      host: 'gw:8080',
      size: POST.length,
      contentLength: 2,
      close: false,
    });
    expect(parse(ACCEPTED[2]!)).toMatchObject({ method: 'DELETE', host: 'a', contentLength: 0, close: true });
    expect(parse(ACCEPTED[5]!)).toMatchObject({ close: true });
    expect(parse(ACCEPTED[4]!)).toMatchObject({ contentLength: 3, rawHeaders: expect.arrayContaining(['X-Empty', '', 'X-Obs', 'caf\xe9']) });
  });

  it('takes one `Transfer-Encoding: chunked` (the word alone, any case, OWS around it) without Content-Length: a chunked body, no length', () => {
    for (const te of ['chunked', 'Chunked', 'CHUNKED', ' chunked ']) {
      const head = parse(`POST /p HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:${te}\r\n\r\n`) as RequestHead;
      expect(head, te).toMatchObject({ chunkedBody: true, contentLength: 0 });
    }
    expect(parse(ACCEPTED[0]!)).toMatchObject({ chunkedBody: false });
  });

  it('every prefix of an accepted head is "more", whatever follows it; it reads from an offset (pipelining)', () => {
    for (const wire of ACCEPTED) {
      const end = wire.indexOf('\r\n\r\n') + 4;
      for (let i = 0; i < end; i++) expect(parse(wire.slice(0, i)), `${JSON.stringify(wire)} cut at ${i}`).toBe(MORE);
      expect(parse(wire)).toMatchObject({ size: end });
      const two = bytes('GET / HTTP/1.1\r\nHost: z\r\n\r\n' + wire);
      expect(read(parse(two, 27))).toEqual(read(parse(wire)));
    }
  });

  it('leaves every other shape to node:http, as soon as the bytes show it (the request line, a bare LF)', () => {
    for (const [why, wire] of LEFT) {
      expect(parse(wire), why).toBe(OTHER);
    }
    // Known from the request line alone, before the head ends.
    expect(parse('GET / HTTP/1.0\r\nHost: a\r\n')).toBe(OTHER);
    expect(parse('HEAD / HTTP/1.1\r\n')).toBe(OTHER);
    expect(parse('GET / HTTP/1.1\nHost')).toBe(OTHER);
    expect(parse('GET / HTTP/1.1\r\nHost: a\nX')).toBe(OTHER);
    expect(parse('\r\nGET / HTTP/1.1\r\n')).toBe(OTHER);
    // Not yet known: more.
    expect(parse('GET / HTTP/1.1\r\nHost: a\r\nTransfer-Enc')).toBe(MORE);
    expect(parse('GET / HT')).toBe(MORE);
  });

  it('stays within the head byte and header line limits node:http has (over them, node:http answers 431)', () => {
    const base = 'GET / HTTP/1.1\r\nHost: a\r\nX: ';
    const fit = base + 'x'.repeat(200 - base.length - 4) + '\r\n\r\n';
    expect(fit.length).toBe(200);
    expect(parse(fit, 0, { maxHeadBytes: 200, maxHeaders: 100 })).toMatchObject({ size: 200 });
    expect(parse(fit.replace('X: ', 'X: y'), 0, { maxHeadBytes: 200, maxHeaders: 100 })).toBe(OTHER);
    // No end in sight past the limit: other, not more.
    expect(parse(base + 'x'.repeat(300), 0, { maxHeadBytes: 200, maxHeaders: 100 })).toBe(OTHER);
    const lines = (n: number): string => 'GET / HTTP/1.1\r\nHost: a\r\n' + Array.from({ length: n - 1 }, (_, i) => `X-${i}: v\r\n`).join('') + '\r\n';
    expect(parse(lines(5), 0, { maxHeadBytes: 16384, maxHeaders: 5 })).toMatchObject({ host: 'a' });
    expect(parse(lines(6), 0, { maxHeadBytes: 16384, maxHeaders: 5 })).toBe(OTHER);
  });
});

describe('what the lane accepts, node:http reads the same way', () => {
  let server: http.Server;
  let port: number;
  const seen: { method: string; url: string; rawHeaders: string[]; body: string }[] = [];
  beforeAll(async () => {
    server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        seen.push({ method: req.method!, url: req.url!, rawHeaders: req.rawHeaders, body: Buffer.concat(chunks).toString('latin1') });
        res.end('ok');
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  it('the same method, target, header lines and body for every accepted request', async () => {
    for (const wire of ACCEPTED) {
      const head = parse(wire) as RequestHead;
      seen.length = 0;
      const answer = await new Promise<string>((resolve, reject) => {
        const s = net.connect(port, '127.0.0.1');
        let out = '';
        s.on('data', (d: Buffer) => {
          out += d.toString('latin1');
          if (out.endsWith('ok')) s.destroy();
        });
        s.on('close', () => resolve(out));
        s.on('error', reject);
        s.write(bytes(wire));
      });
      expect(answer, JSON.stringify(wire)).toMatch(/^HTTP\/1\.1 200 /);
      const expected = { method: head.method, url: head.target, rawHeaders: head.rawHeaders, body: wire.slice(head.size) };
      expect(seen, JSON.stringify(wire)).toEqual([expected]);
    }
  });
});
