/**
 * The header rules of gateway/edge/http-headers.ts, directly on raw header arrays: what the
 * upstream gets (hop-by-hop and Connection-listed names dropped, forwarding headers by peer trust,
 * x-request-id kept or added, the gateway's own headers unforgeable, Authorization stripped when
 * asked, everything else in order and case), what the client gets back, and `-shadow` hosts.
 */
import { describe, expect, it } from 'vitest';
import { clientResponseHeaders, dropInternalHeaders, rawHeaderValue, shadowHost, upstreamRequestHeaders, type ForwardInfo } from '../../../gateway/edge/http-headers.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const PEER = '10.1.2.3';
const info = (o: Partial<ForwardInfo> = {}): ForwardInfo => ({ remoteAddress: PEER, proto: 'http', originalPath: '/seldon/ns/m/api/v1.0/predictions', ...o });

/** [name, value] pairs of a flat raw array. */
function pairs(raw: readonly string[]): [string, string][] {
  const out: [string, string][] = [];
  for (let i = 0; i < raw.length; i += 2) out.push([raw[i]!, raw[i + 1]!]);
  return out;
}
const flat = (p: [string, string][]): string[] => p.flat();
const values = (raw: readonly string[], name: string): string[] =>
  pairs(raw)
    .filter(([k]) => k.toLowerCase() === name)
    .map(([, v]) => v);
/** The output without the x-request-id the gateway generated (checked for form). */
function withoutGeneratedId(out: string[]): [string, string][] {
  const p = pairs(out);
  const last = p.at(-1)!;
  expect(last[0]).toBe('x-request-id');
  expect(last[1]).toMatch(UUID);
  return p.slice(0, -1);
}

/** The names sent upstream, without the generated x-request-id. */
const keptNames = (raw: string[]): string[] => withoutGeneratedId(upstreamRequestHeaders(raw, info())).map(([k]) => k);
/** What the gateway adds after the client's headers (besides x-request-id). */
const ADDED = ['x-forwarded-for', 'x-forwarded-proto', 'x-envoy-original-path'];

describe('upstreamRequestHeaders', () => {
  it('keeps end-to-end headers in order and case, then adds the forwarding headers', () => {
    const raw = flat([
      ['Host', 'models.example.com'],
      ['content-type', 'application/json'],
      ['Accept', 'a/b'],
      ['X-Custom', 'One'],
      ['accept', 'c/d'],
      ['Content-Length', '2'],
    ]);
    expect(withoutGeneratedId(upstreamRequestHeaders(raw, info()))).toEqual([
      ['Host', 'models.example.com'],
      ['content-type', 'application/json'],
      ['Accept', 'a/b'],
      ['X-Custom', 'One'],
      ['accept', 'c/d'],
      ['Content-Length', '2'],
      ['x-forwarded-for', PEER],
      ['x-forwarded-proto', 'http'],
      ['x-envoy-original-path', '/seldon/ns/m/api/v1.0/predictions'],
    ]);
  });

  it('drops hop-by-hop headers, in any case', () => {
    const hop = ['Connection', 'KEEP-ALIVE', 'Proxy-Connection', 'proxy-authenticate', 'Proxy-Authorization', 'TE', 'Trailer', 'transfer-encoding', 'Upgrade', 'Expect'];
    const raw = flat([['Host', 'h'], ...hop.map((n): [string, string] => [n, 'x']), ['X-Kept', '1']]);
    expect(keptNames(raw)).toEqual(['Host', 'X-Kept', ...ADDED]);
  });

  it('drops the names a Connection header lists, wherever they stand and in any case', () => {
    const raw = flat([
      ['x-trace', 'before'],
      ['Host', 'h'],
      ['Connection', 'keep-alive, X-Trace ,x-hop'],
      ['X-HOP', 'v'],
      ['Connection', 'close, x-second'],
      ['X-Second', 's'],
      ['X-Kept', 'k'],
    ]);
    expect(keptNames(raw)).toEqual(['Host', 'X-Kept', ...ADDED]);
  });

  it('from an untrusted peer: replaces x-forwarded-for and x-forwarded-proto with the peer and the gateway scheme', () => {
    const raw = flat([
      ['Host', 'h'],
      ['X-Forwarded-For', '1.1.1.1'],
      ['x-forwarded-proto', 'https'],
      ['x-forwarded-for', '2.2.2.2'],
    ]);
    const out = upstreamRequestHeaders(raw, info({ trusted: false }));
    expect(values(out, 'x-forwarded-for')).toEqual([PEER]);
    expect(values(out, 'x-forwarded-proto')).toEqual(['http']);
    expect(values(upstreamRequestHeaders(raw, info({ proto: 'https' })), 'x-forwarded-proto')).toEqual(['https']);
    // Untrusted is the default.
    expect(values(upstreamRequestHeaders(raw, info()), 'x-forwarded-for')).toEqual([PEER]);
  });

  it('from a trusted proxy: keeps its x-forwarded-for (joined, the peer appended) and its first x-forwarded-proto', () => {
    const raw = flat([
      ['Host', 'h'],
      ['X-Forwarded-For', '1.1.1.1, 3.3.3.3'],
      ['X-Forwarded-Proto', 'https'],
      ['x-forwarded-for', '2.2.2.2'],
      ['x-forwarded-proto', 'http'],
    ]);
    const out = upstreamRequestHeaders(raw, info({ trusted: true, proto: 'http' }));
    expect(values(out, 'x-forwarded-for')).toEqual([`1.1.1.1, 3.3.3.3, 2.2.2.2, ${PEER}`]);
    expect(values(out, 'x-forwarded-proto')).toEqual(['https']);
  });

  it('from a trusted proxy that sent none: the peer and the gateway scheme', () => {
    const out = upstreamRequestHeaders(['Host', 'h'], info({ trusted: true, proto: 'https' }));
    expect(values(out, 'x-forwarded-for')).toEqual([PEER]);
    expect(values(out, 'x-forwarded-proto')).toEqual(['https']);
  });

  it('without a peer address: no x-forwarded-for of its own', () => {
    expect(values(upstreamRequestHeaders(['Host', 'h', 'X-Forwarded-For', '1.1.1.1'], info({ remoteAddress: undefined })), 'x-forwarded-for')).toEqual([]);
    expect(values(upstreamRequestHeaders(['Host', 'h', 'X-Forwarded-For', '1.1.1.1'], info({ remoteAddress: undefined, trusted: true })), 'x-forwarded-for')).toEqual(['1.1.1.1']);
  });

  it("keeps the client's x-request-id where it stands, and adds a fresh one only when there is none", () => {
    const kept = upstreamRequestHeaders(['Host', 'h', 'X-Request-ID', 'abc-123', 'X-Other', 'o'], info());
    expect(values(kept, 'x-request-id')).toEqual(['abc-123']);
    expect(pairs(kept).slice(0, 3)).toEqual([
      ['Host', 'h'],
      ['X-Request-ID', 'abc-123'],
      ['X-Other', 'o'],
    ]);

    const a = values(upstreamRequestHeaders(['Host', 'h'], info()), 'x-request-id');
    const b = values(upstreamRequestHeaders(['Host', 'h'], info()), 'x-request-id');
    expect(a).toHaveLength(1);
    expect(a[0]).toMatch(UUID);
    expect(b[0]).not.toBe(a[0]);
  });

  it("drops the gateway's own headers a client might forge: x-envoy-* and x-seldon-predictor", () => {
    const raw = flat([
      ['Host', 'h'],
      ['X-Envoy-Retry-On', '5xx'],
      ['x-envoy-upstream-rq-timeout-ms', '1'],
      ['X-ENVOY-ORIGINAL-PATH', '/forged'],
      ['x-envoy-overloaded', 'true'],
      ['X-Seldon-Predictor', 'forged'],
      ['x-seldon-predictor', 'forged'],
      ['x-envoyx', 'kept'],
      ['X-Seldon-Other', 'kept'],
    ]);
    const out = upstreamRequestHeaders(raw, info({ originalPath: '/real' }));
    expect(withoutGeneratedId(out)).toEqual([
      ['Host', 'h'],
      ['x-envoyx', 'kept'],
      ['X-Seldon-Other', 'kept'],
      ['x-forwarded-for', PEER],
      ['x-forwarded-proto', 'http'],
      ['x-envoy-original-path', '/real'],
    ]);
  });

  it('strips Authorization (any case) only when asked', () => {
    const raw = flat([
      ['Host', 'h'],
      ['AUTHORIZATION', 'Bearer t'],
      ['X-Kept', '1'],
    ]);
    expect(values(upstreamRequestHeaders(raw, info({ stripAuthorization: true })), 'authorization')).toEqual([]);
    expect(values(upstreamRequestHeaders(raw, info({ stripAuthorization: true })), 'x-kept')).toEqual(['1']);
    expect(values(upstreamRequestHeaders(raw, info({ stripAuthorization: false })), 'authorization')).toEqual(['Bearer t']);
    expect(values(upstreamRequestHeaders(raw, info()), 'authorization')).toEqual(['Bearer t']);
  });

  it('replaces the Host value in place when given a host (mirrors), keeping its name', () => {
    const out = upstreamRequestHeaders(['X-A', 'a', 'HOST', 'models.example.com', 'X-B', 'b'], info(), 'models.example.com-shadow');
    expect(pairs(out).slice(0, 3)).toEqual([
      ['X-A', 'a'],
      ['HOST', 'models.example.com-shadow'],
      ['X-B', 'b'],
    ]);
  });

  it('does not change its input', () => {
    const raw = ['Host', 'h', 'Connection', 'x-a', 'x-a', '1', 'X-Envoy-A', 'b'];
    const copy = [...raw];
    upstreamRequestHeaders(raw, info({ stripAuthorization: true, trusted: true }));
    expect(raw).toEqual(copy);
  });
});

describe('clientResponseHeaders', () => {
  const raw = (p: [string, string][]): string[] => p.flat();

  it('keeps end-to-end headers in order and case, as latin1 text', () => {
    const p: [string, string][] = [
      ['Content-Type', 'application/json'],
      ['content-length', '12'],
      ['Set-Cookie', 'a=1'],
      ['set-cookie', 'b=2'],
      ['X-Name', 'café'],
    ];
    expect(pairs(clientResponseHeaders(raw(p), 12))).toEqual(p);
  });

  it('drops hop-by-hop headers, in any case', () => {
    const out = clientResponseHeaders(
      raw([
        ['Connection', 'keep-alive'],
        ['Keep-Alive', 'timeout=5'],
        ['PROXY-CONNECTION', 'x'],
        ['Proxy-Authenticate', 'x'],
        ['te', 'x'],
        ['Trailer', 'X-T'],
        ['Transfer-Encoding', 'chunked'],
        ['Upgrade', 'h2c'],
        ['Content-Type', 'text/plain'],
      ]),
      -1,
    );
    expect(out).toEqual(['Content-Type', 'text/plain']);
  });

  it('drops the names its Connection header lists, before or after it', () => {
    const out = clientResponseHeaders(
      raw([
        ['X-Before', 'b'],
        ['Connection', 'close, x-before, X-After'],
        ['x-after', 'a'],
        ['X-Kept', 'k'],
      ]),
      -1,
    );
    expect(out).toEqual(['X-Kept', 'k']);
  });

  it('a Connection of just keep-alive or close (any case) lists nothing; names beside them still go', () => {
    for (const only of ['keep-alive', 'Keep-Alive', 'close', 'CLOSE']) {
      expect(
        clientResponseHeaders(
          raw([
            ['Connection', only],
            ['Keep-Alive', 'timeout=5'],
            ['X-Kept', 'k'],
          ]),
          -1,
        ),
        only,
      ).toEqual(['X-Kept', 'k']);
    }
    // Same lengths as the two tokens, but names: dropped with the Connection header that lists them.
    expect(
      clientResponseHeaders(
        raw([
          ['Connection', 'x-abcdefgh'],
          ['X-ABCDEFGH', '1'],
          ['Conn', 'x'],
          ['Connection', 'Conn '],
        ]),
        -1,
      ),
    ).toEqual([]);
    expect(
      clientResponseHeaders(
        raw([
          ['Connection', 'keep-alive, X-Gone'],
          ['x-gone', '1'],
          ['X-Kept', 'k'],
        ]),
        -1,
      ),
    ).toEqual(['X-Kept', 'k']);
  });

  it("Content-Length is the gateway's: the length given, once, where the model's first one was; none with -1", () => {
    const model = raw([
      ['X-A', 'a'],
      ['content-length', '002, 2'],
      ['Transfer-Encoding', 'chunked'],
      ['Content-Length', '2'],
      ['X-B', 'b'],
    ]);
    expect(pairs(clientResponseHeaders(model, 2))).toEqual([
      ['X-A', 'a'],
      ['content-length', '2'],
      ['X-B', 'b'],
    ]);
    // Beside Transfer-Encoding, on a 204, until close: the model's length describes nothing the client gets.
    expect(pairs(clientResponseHeaders(model, -1))).toEqual([
      ['X-A', 'a'],
      ['X-B', 'b'],
    ]);
    expect(
      pairs(
        clientResponseHeaders(
          raw([
            ['CONTENT-LENGTH', '0'],
            ['Content-Type', 'text/plain'],
          ]),
          -1,
        ),
      ),
    ).toEqual([['Content-Type', 'text/plain']]);
    // A length the model did not send is not added (the answer is framed chunked, or is bodiless).
    expect(clientResponseHeaders(raw([['X-A', 'a']]), 5)).toEqual(['X-A', 'a']);
  });
});

describe('rawHeaderValue (the header lookup of header-constraint routes)', () => {
  const raw = ['Host', 'a.example', 'X-Variant', 'b', 'accept', 'text/plain', 'x-variant', 'c', 'X-Empty', ''];
  it('finds a field in any case, joins repeated ones with a comma in order, and keeps an empty value', () => {
    expect(rawHeaderValue(raw, 'x-variant')).toBe('b,c');
    expect(rawHeaderValue(raw, 'host')).toBe('a.example');
    expect(rawHeaderValue(raw, 'x-empty')).toBe('');
  });
  it('undefined for an absent field, including a prefix or an extension of a present name', () => {
    expect(rawHeaderValue(raw, 'x-var')).toBeUndefined();
    expect(rawHeaderValue(raw, 'x-variants')).toBeUndefined();
    expect(rawHeaderValue([], 'host')).toBeUndefined();
  });
  it("agrees with Node's headersDistinct on a request Node parsed from the wire", async () => {
    const { createServer } = await import('node:http');
    const { connect } = await import('node:net');
    const names = ['x-variant', 'host', 'accept', 'x-empty', 'absent'];
    const seen = await new Promise<{ ours: (string | undefined)[]; node: (string | undefined)[] }>((resolve, reject) => {
      const server = createServer((req, res) => {
        resolve({ ours: names.map((n) => rawHeaderValue(req.rawHeaders, n)), node: names.map((n) => req.headersDistinct[n]?.join(',')) });
        res.end();
        server.close();
      });
      server.listen(0, '127.0.0.1', () => {
        const port = (server.address() as { port: number }).port;
        const c = connect(port, '127.0.0.1', () => c.end('GET / HTTP/1.1\r\nHost: a.example\r\nX-Variant: b\r\naccept: text/plain\r\nx-variant: c\r\nX-Empty:\r\nConnection: close\r\n\r\n'));
        c.on('error', reject);
        c.resume();
      });
    });
    expect(seen.ours).toEqual(['b,c', 'a.example', 'text/plain', '', undefined]);
    expect(seen.ours).toEqual(seen.node);
  });
});

describe('dropInternalHeaders (HTTP/2 header objects)', () => {
  it('deletes x-seldon-predictor and x-envoy-*, nothing else', () => {
    const h: Record<string, unknown> = { ':path': '/a', 'x-seldon-predictor': 'f', 'x-envoy-retry-on': '5xx', 'x-envoyx': 'k', 'x-seldon': 'k', seldon: 'iris' };
    dropInternalHeaders(h);
    expect(h).toEqual({ ':path': '/a', 'x-envoyx': 'k', 'x-seldon': 'k', seldon: 'iris' });
  });
});

describe('shadowHost', () => {
  it('inserts -shadow before any port', () => {
    expect(shadowHost('models.example.com')).toBe('models.example.com-shadow');
    expect(shadowHost('models.example.com:8080')).toBe('models.example.com-shadow:8080');
    expect(shadowHost('10.0.0.1:80')).toBe('10.0.0.1-shadow:80');
    expect(shadowHost('localhost')).toBe('localhost-shadow');
  });

  it('after the bracket of an IPv6 literal, with or without a port', () => {
    expect(shadowHost('[::1]:8080')).toBe('[::1]-shadow:8080');
    expect(shadowHost('[2001:db8::1]')).toBe('[2001:db8::1]-shadow');
    expect(shadowHost('[2001:db8::1]:443')).toBe('[2001:db8::1]-shadow:443');
  });
});
