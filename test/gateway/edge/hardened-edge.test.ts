/**
 * The hardened HTTP/1.1 edge, from raw bytes over node:net: request smuggling shapes, oversized
 * heads and bodies, slow and silent clients, too many connections, invalid methods, path tricks
 * and forged headers. Each case checks the exact status (and that nothing reached an upstream it
 * should not), while a well-behaved client keeps getting 200s on its own connection.
 */
import net from 'node:net';
import { networkInterfaces } from 'node:os';
import { once } from 'node:events';
import { Pool } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHttpBackend, type HttpBackend } from '../../fixtures/http-backend.js';
import { sdep, startTestGateway, type TestGateway } from '../../helpers/gateway.js';
import { raw, rawRequest as req, type RawAnswer } from '../../helpers/net.js';
import { parseConfig } from '../../../gateway/config/parse.js';
import { UsageError } from '../../../gateway/config/values.js';

/** The JSON body of a raw answer. */
function bodyOf(a: RawAnswer): { status: { code: number; reason: string; info: string } } {
  return JSON.parse(a.text.slice(a.text.indexOf('\r\n\r\n') + 4)) as { status: { code: number; reason: string; info: string } };
}

/** A client that keeps making ordinary requests on its own connection while `during` runs; all must succeed. */
async function withGoodClient(gw: TestGateway, during: () => Promise<void>): Promise<void> {
  const pool = new Pool(gw.url, { connections: 1 });
  let stop = false;
  const seen: number[] = [];
  const loop = (async () => {
    while (!stop) {
      const r = await pool.request({ path: '/seldon/models/iris/api/v1.0/predictions', method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"data":{"ndarray":[[1]]}}' });
      await r.body.text();
      seen.push(r.statusCode);
      await new Promise((res) => setTimeout(res, 5));
    }
  })();
  try {
    await during();
  } finally {
    stop = true;
    await loop;
    await pool.close();
  }
  expect(seen.length).toBeGreaterThan(0);
  expect(seen.filter((s) => s !== 200)).toEqual([]);
}

describe('hardened edge: smuggling, sizes, slow clients, methods', () => {
  let iris: HttpBackend;
  let open: HttpBackend;
  let gw: TestGateway;
  beforeAll(async () => {
    iris = await startHttpBackend({ name: 'iris' });
    open = await startHttpBackend({ name: 'open' });
    gw = await startTestGateway({
      manifests: {
        'iris.yaml': sdep('iris', 'models', { predictors: [{ name: 'main' }] }),
        'open.yaml': sdep('open', 'models', { predictors: [{ name: 'main' }] }),
      },
      resolve: { 'iris-main.models:8000': iris.port, 'open-main.models:8000': open.port },
      args: ['--max-body', '1KiB', '--max-header-size', '4KiB', '--client-header-timeout', '400ms', '--client-request-timeout', '1s'],
    });
  });
  afterAll(async () => {
    await gw?.stop();
    await iris?.close();
    await open?.close();
  });

  const smuggling: [string, string][] = [
    ['Content-Length and Transfer-Encoding', req(['POST /seldon/models/open/smuggle HTTP/1.1', 'Host: a', 'Content-Length: 6', 'Transfer-Encoding: chunked'], '0\r\n\r\nG')],
    ['Transfer-Encoding and Content-Length', req(['POST /seldon/models/open/smuggle HTTP/1.1', 'Host: a', 'Transfer-Encoding: chunked', 'Content-Length: 3'], '3\r\nabc\r\n0\r\n\r\n')],
    ['two different Content-Lengths', req(['POST /seldon/models/open/smuggle HTTP/1.1', 'Host: a', 'Content-Length: 3', 'Content-Length: 40'], 'abc')],
    ['the same Content-Length twice', req(['POST /seldon/models/open/smuggle HTTP/1.1', 'Host: a', 'Content-Length: 3', 'Content-Length: 3'], 'abc')],
    ['a Content-Length list', req(['POST /seldon/models/open/smuggle HTTP/1.1', 'Host: a', 'Content-Length: 3, 3'], 'abc')],
    ['obsolete line folding', req(['GET /seldon/models/open/smuggle HTTP/1.1', 'Host: a', 'X-Folded: a', ' b'])],
    ['Transfer-Encoding not ending in chunked', req(['POST /seldon/models/open/smuggle HTTP/1.1', 'Host: a', 'Transfer-Encoding: chunked, gzip'], '0\r\n\r\n')],
    ['Transfer-Encoding gzip alone', req(['POST /seldon/models/open/smuggle HTTP/1.1', 'Host: a', 'Transfer-Encoding: gzip'], 'abc')],
    ['a space before the colon', req(['POST /seldon/models/open/smuggle HTTP/1.1', 'Host: a', 'Transfer-Encoding : chunked'], '0\r\n\r\n')],
    ['two Host headers', req(['GET /seldon/models/open/smuggle HTTP/1.1', 'Host: a', 'Host: b'])],
    ['bare LF line endings', 'GET /seldon/models/open/smuggle HTTP/1.1\nHost: a\n\n'],
    ['no Host in HTTP/1.1', req(['GET /seldon/models/open/smuggle HTTP/1.1'])],
  ];
  it.each(smuggling)('%s → 400, closed, nothing upstream', async (_name, bytes) => {
    await withGoodClient(gw, async () => {
      const before = open.requests.length;
      const a = await raw(gw.port, bytes);
      expect(a.status).toBe(400);
      expect(a.closed).toBe(true);
      expect(bodyOf(a).status.reason).toBe('BAD_REQUEST');
      expect(open.requests.slice(before).filter((r) => r.url.includes('smuggle'))).toEqual([]);
    });
  });

  it('a smuggled second request in a well-formed chunked body stays body', async () => {
    const before = open.requests.length;
    const inner = 'GET /seldon/models/iris/inner HTTP/1.1\r\nHost: a\r\n\r\n';
    const chunk = `${inner.length.toString(16)}\r\n${inner}\r\n0\r\n\r\n`;
    const a = await raw(gw.port, req(['POST /seldon/models/open/outer?echo=1 HTTP/1.1', 'Host: a', 'Transfer-Encoding: chunked', 'Connection: close'], chunk));
    expect(a.status).toBe(200);
    expect(open.requests.slice(before).map((r) => r.url)).toEqual(['/outer?echo=1']);
    expect(iris.requests.some((r) => r.url === '/inner')).toBe(false);
  });

  it('headers over --max-header-size → 431', async () => {
    await withGoodClient(gw, async () => {
      const a = await raw(gw.port, req(['GET /seldon/models/open/x HTTP/1.1', 'Host: a', `X-Big: ${'a'.repeat(5000)}`]));
      expect(a.status).toBe(431);
      expect(bodyOf(a).status.reason).toBe('HEADERS_TOO_LARGE');
      expect(a.closed).toBe(true);
    });
  });

  it('a body over --max-body → 413: by Content-Length at once, and as a chunked body streams', async () => {
    await withGoodClient(gw, async () => {
      const before = open.requests.length;
      const byLength = await raw(gw.port, req(['POST /seldon/models/open/big HTTP/1.1', 'Host: a', 'Content-Length: 5000']));
      expect(byLength.status).toBe(413);
      expect(bodyOf(byLength).status.reason).toBe('PAYLOAD_TOO_LARGE');
      expect(open.requests.length).toBe(before);
      const chunk = 'a'.repeat(600);
      // Two chunks of 600 bytes and no last chunk: the limit is crossed by the second, the body unfinished.
      const chunked = await raw(gw.port, req(['POST /seldon/models/open/big HTTP/1.1', 'Host: a', 'Transfer-Encoding: chunked'], `258\r\n${chunk}\r\n`.repeat(2)));
      expect(chunked.status).toBe(413);
      expect(chunked.closed).toBe(true);
      // Within the limit: fine.
      const small = await raw(gw.port, req(['POST /seldon/models/open/small?echo=1 HTTP/1.1', 'Host: a', 'Content-Length: 1000', 'Connection: close'], 'b'.repeat(1000)));
      expect(small.status).toBe(200);
    });
  });

  it('slow headers → 408 after --client-header-timeout; a slow body → 408 after --client-request-timeout; silence → closed', async () => {
    await withGoodClient(gw, async () => {
      const [head, body, silent] = await Promise.all([
        raw(gw.port, 'GET /seldon/models/open/slow HTTP/1.1\r\nHost: a\r\n', { maxMs: 4000 }),
        raw(gw.port, req(['POST /seldon/models/open/slowbody HTTP/1.1', 'Host: a', 'Content-Length: 100'], 'x'.repeat(10)), { maxMs: 4000, quietMs: 3000 }),
        raw(gw.port, '', { maxMs: 4000 }),
      ]);
      expect(head.status).toBe(408);
      expect(head.ms).toBeGreaterThanOrEqual(350);
      expect(head.ms).toBeLessThan(2000);
      expect(body.status).toBe(408);
      expect(body.ms).toBeGreaterThanOrEqual(900);
      expect(body.ms).toBeLessThan(3000);
      expect([silent.closed, silent.text]).toEqual([true, '']);
      expect(silent.ms).toBeLessThan(2000);
    });
  });

  it.each([
    ['an unknown method', 'FOO', 400],
    ['a lower-case method', 'get', 400],
    ['a malformed method', 'G@T', 400],
    ['TRACE', 'TRACE', 405],
    ['CONNECT', 'CONNECT', 405],
  ])('%s → %i', async (_name, method, status) => {
    await withGoodClient(gw, async () => {
      const before = open.requests.length;
      const target = method === 'CONNECT' ? 'example.com:443' : '/seldon/models/open/m';
      const a = await raw(gw.port, req([`${method} ${target} HTTP/1.1`, 'Host: a']));
      expect(a.status).toBe(status);
      if (status === 405) expect(a.text).toMatch(/\r\nallow: GET, HEAD, POST/i);
      expect(open.requests.length).toBe(before);
    });
  });

  it('ordinary methods still pass (PUT, DELETE, OPTIONS, PATCH)', async () => {
    for (const m of ['PUT', 'DELETE', 'OPTIONS', 'PATCH']) {
      const a = await raw(gw.port, req([`${m} /seldon/models/open/m HTTP/1.1`, 'Host: a', 'Content-Length: 0', 'Connection: close']));
      expect(a.status, m).toBe(200);
    }
  });
});

describe('hardened edge: too many connections', () => {
  let backend: HttpBackend;
  let gw: TestGateway;
  beforeAll(async () => {
    backend = await startHttpBackend({ name: 'iris' });
    gw = await startTestGateway({
      manifests: { 'iris.yaml': sdep('iris', 'models', { predictors: [{ name: 'main' }] }) },
      resolve: { 'iris-main.models:8000': backend.port },
      args: ['--max-connections', '4'],
    });
  });
  afterAll(async () => {
    await gw?.stop();
    await backend?.close();
  });

  it('over --max-connections a new connection gets 503 and is closed; open ones are untouched; a freed slot is reused', async () => {
    await withGoodClient(gw, async () => {
      // The good client holds one connection; three idle keep-alive connections fill the rest.
      const held = await Promise.all(
        Array.from({ length: 3 }, async () => {
          const s = net.connect(gw.port, '127.0.0.1');
          await once(s, 'connect');
          s.write(req(['GET /seldon/models/iris/x HTTP/1.1', 'Host: a']));
          await once(s, 'data');
          return s;
        }),
      );
      const refused = await raw(gw.port, req(['GET /seldon/models/iris/x HTTP/1.1', 'Host: a']));
      expect(refused.status).toBe(503);
      expect(bodyOf(refused).status.reason).toBe('TOO_MANY_CONNECTIONS');
      expect(refused.closed).toBe(true);
      held[0]!.destroy();
      // Served again once the gateway has seen that close.
      await expect.poll(async () => (await raw(gw.port, req(['GET /seldon/models/iris/x HTTP/1.1', 'Host: a', 'Connection: close']))).status, { timeout: 10_000 }).toBe(200);
      for (const s of held) s.destroy();
    });
  });
});

describe('hardened edge: paths never reach another deployment or leave the prefix', () => {
  let iris: HttpBackend;
  let open: HttpBackend;
  let gw: TestGateway;
  beforeAll(async () => {
    iris = await startHttpBackend({ name: 'iris' });
    open = await startHttpBackend({ name: 'open' });
    gw = await startTestGateway({
      manifests: {
        'iris.yaml': sdep('iris', 'models', { oauth_key: 'k', oauth_secret: 's', predictors: [{ name: 'main' }] }, { 'seldon.io/gateway-auth': 'oauth' }),
        'open.yaml': sdep('open', 'models', { predictors: [{ name: 'main' }] }),
      },
      resolve: { 'iris-main.models:8000': iris.port, 'open-main.models:8000': open.port },
    });
  });
  afterAll(async () => {
    await gw?.stop();
    await iris?.close();
    await open?.close();
  });

  it.each([
    '/seldon/models/open/%2E%2E%2Firis/api/v1.0/predictions',
    '/seldon/models/open/..%2firis/api/v1.0/predictions',
    '/seldon/models/open%2f..%2firis/api/v1.0/predictions',
    '/seldon/models/open/%5c..%5ciris/api/v1.0/predictions',
    '/seldon/models/open/..%5Ciris/api/v1.0/predictions',
    '/seldon/models/open\\..\\iris/api/v1.0/predictions',
    '/seldon/models/open/x\\y',
    '/api/v0.1/../../seldon/models/open/',
  ])('%s → 400, nothing upstream', async (path) => {
    const [i, o] = [iris.requests.length, open.requests.length];
    const a = await raw(gw.port, req([`GET ${path} HTTP/1.1`, 'Host: a', 'Connection: close']));
    expect(a.status).toBe(400);
    expect(bodyOf(a).status.reason).toBe('BAD_REQUEST');
    expect([iris.requests.length, open.requests.length]).toEqual([i, o]);
  });

  // Envoy's normalize_path: dot segments are resolved and the resolved path is routed, with the gate of the
  // route it reaches; never the route the path named before its dots.
  it.each(['/seldon/models/open/../iris/api/v1.0/predictions', '/seldon/models/open/%2e%2e/iris/api/v1.0/predictions', '/seldon/models/open/.%2e/iris/api/v1.0/predictions'])(
    "%s → iris's route and its gate: 401 without iris's token, nothing upstream",
    async (path) => {
      const [i, o] = [iris.requests.length, open.requests.length];
      const a = await raw(gw.port, req([`GET ${path} HTTP/1.1`, 'Host: a', 'Connection: close']));
      expect(a.status).toBe(401);
      expect([iris.requests.length, open.requests.length]).toEqual([i, o]);
    },
  );

  it('/seldon/models/open/./api reaches open as /api, its x-envoy-original-path the resolved path', async () => {
    const o = open.requests.length;
    const a = await raw(gw.port, req(['GET /seldon/models/open/./api HTTP/1.1', 'Host: a', 'Connection: close']));
    expect(a.status).toBe(200);
    expect(open.requests.slice(o).map((r) => [r.url, r.headers['x-envoy-original-path']])).toEqual([['/api', '/seldon/models/open/api']]);
  });

  it('runs of / are kept (no merge_slashes): /seldon//models///open/api matches no route', async () => {
    const a = await raw(gw.port, req(['GET /seldon//models///open/api HTTP/1.1', 'Host: a', 'Connection: close']));
    expect(a.status).toBe(404);
  });

  it.each([
    ['/seldon/models/open//evil.example/x', 'open', '//evil.example/x'],
    ['/seldon/models/open/a%2Fb', 'open', '/a%2Fb'],
    ['/seldon/models/open/..;/iris/x', 'open', '/..;/iris/x'],
    ['/seldon/models/open/%2e%2e%2e/x', 'open', '/%2e%2e%2e/x'],
  ])('%s is decided on the normalised path: %s gets %s', async (path, who, upstream) => {
    const backend = who === 'open' ? open : iris;
    const before = backend.requests.length;
    const a = await raw(gw.port, req([`GET ${path} HTTP/1.1`, 'Host: a', 'Connection: close']));
    expect(a.status).toBe(200);
    expect(a.text).toContain(`x-backend: ${who}`);
    expect(backend.requests[before]!.url).toBe(upstream);
    expect(backend.requests[before]!.headers['x-envoy-original-path']).toBe(path);
  });

  it.each(['/seldon/models/%69ris/api', '/seldon/models/IRIS/api', '/seldon/%6dodels/iris/api', '/seldon/models/iris', '/seldon/models/iris%2f/api'])(
    '%s → 404 (names are never decoded)',
    async (path) => {
      const a = await raw(gw.port, req([`GET ${path} HTTP/1.1`, 'Host: a', 'Connection: close']));
      expect(a.status).toBe(404);
    },
  );

  it('tricks towards the OAuth-guarded deployment get 400, 404 or its 401, never its upstream', async () => {
    const before = iris.requests.length;
    for (const path of ['/seldon/models/iris//api', '/seldon//models/iris/api', '/seldon/models/open/../iris/api', '/seldon/models/open/%2e%2e/iris/api']) {
      const a = await raw(gw.port, req([`GET ${path} HTTP/1.1`, 'Host: a', 'Connection: close']));
      expect([400, 401, 404], path).toContain(a.status);
    }
    expect(iris.requests.length).toBe(before);
  });
});

describe('hardened edge: forged headers', () => {
  let backend: HttpBackend;
  const gws: Record<string, TestGateway> = {};
  beforeAll(async () => {
    backend = await startHttpBackend({ name: 'iris' });
    const manifests = { 'iris.yaml': sdep('iris', 'models', { predictors: [{ name: 'main' }] }) };
    const resolve = { 'iris-main.models:8000': backend.port };
    gws['untrusted'] = await startTestGateway({ manifests, resolve, args: ['--trusted-proxies', '10.0.0.0/8,fd00::/8'] });
    gws['cidr'] = await startTestGateway({ manifests, resolve, args: ['--trusted-proxies', '192.168.0.0/16', '--trusted-proxies', '127.0.0.0/8'] });
    gws['all'] = await startTestGateway({ manifests, resolve, args: ['--trust-forwarded-headers'] });
  });
  afterAll(async () => {
    for (const gw of Object.values(gws)) await gw.stop();
    await backend?.close();
  });

  const forged = req([
    'GET /seldon/models/iris/h HTTP/1.1',
    'Host: a',
    'X-Forwarded-For: 6.6.6.6',
    'X-Forwarded-Proto: https',
    'x-seldon-predictor: forged',
    'X-Envoy-Upstream-Rq-Timeout-Ms: 1',
    'x-envoy-original-path: /forged',
    'X-Envoy-Retry-On: 5xx',
    'X-Custom: kept',
    'Connection: close',
  ]);

  it('untrusted peer: X-Forwarded-For and -Proto are replaced, x-seldon-predictor and x-envoy-* dropped', async () => {
    const before = backend.requests.length;
    expect((await raw(gws['untrusted']!.port, forged)).status).toBe(200);
    const h = backend.requests[before]!.headers;
    expect(h['x-forwarded-for']).toBe('127.0.0.1');
    expect(h['x-forwarded-proto']).toBe('http');
    expect(h['x-seldon-predictor']).toBeUndefined();
    expect(h['x-envoy-upstream-rq-timeout-ms']).toBeUndefined();
    expect(h['x-envoy-retry-on']).toBeUndefined();
    expect(h['x-envoy-original-path']).toBe('/seldon/models/iris/h');
    expect(h['x-custom']).toBe('kept');
  });

  it.each(['cidr', 'all'])('trusted peer (%s): its X-Forwarded-For is appended to, its -Proto kept; internal headers still dropped', async (which) => {
    const before = backend.requests.length;
    expect((await raw(gws[which]!.port, forged)).status).toBe(200);
    const h = backend.requests[before]!.headers;
    expect(h['x-forwarded-for']).toBe('6.6.6.6, 127.0.0.1');
    expect(h['x-forwarded-proto']).toBe('https');
    expect(h['x-seldon-predictor']).toBeUndefined();
    expect(h['x-envoy-retry-on']).toBeUndefined();
  });

  it('--trusted-proxies takes addresses and CIDRs only', () => {
    for (const bad of ['nonsense', '10.0.0.0/33', '10.0.0.0/8/1', 'fd00::/129']) expect(() => parseConfig('serve', ['--trusted-proxies', bad], {}), bad).toThrow(UsageError);
    expect(parseConfig('serve', [], { SELDON_GATEWAY_TRUSTED_PROXIES: '10.0.0.1, 10.1.0.0/16' }).edge.trustedProxies).toEqual(['10.0.0.1', '10.1.0.0/16']);
  });
});

describe('admin port', () => {
  it('binds 127.0.0.1 by default outside a cluster (0.0.0.0 inside one), never the public address', async () => {
    expect(parseConfig('serve', [], {}).listen.adminHost).toBe('127.0.0.1');
    expect(parseConfig('serve', [], { KUBERNETES_SERVICE_HOST: '10.0.0.1' }).listen.adminHost).toBe('0.0.0.0');
    const backend = await startHttpBackend({ name: 'iris' });
    const gw = await startTestGateway({ manifests: { 'iris.yaml': sdep('iris', 'models', { predictors: [{ name: 'main' }] }) }, resolve: { 'iris-main.models:8000': backend.port } });
    try {
      // The admin answers on loopback...
      expect((await raw(gw.adminPort, req(['GET /routes HTTP/1.1', 'Host: a', 'Connection: close']))).status).toBe(200);
      // ...and is not the public port's business.
      const pub = await raw(gw.port, req(['GET /routes HTTP/1.1', 'Host: a', 'Connection: close']));
      expect([pub.status, bodyOf(pub).status.reason]).toEqual([404, 'NO_ROUTE']);
      // On this machine's other addresses, nothing listens on the admin port.
      const external = Object.values(networkInterfaces())
        .flat()
        .find((i) => i && !i.internal && i.family === 'IPv4')?.address;
      if (external) {
        const err = await new Promise<string>((resolve) => {
          const s = net.connect(gw.adminPort, external);
          s.on('connect', () => {
            s.destroy();
            resolve('connected');
          });
          s.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
        });
        expect(err).toBe('ECONNREFUSED');
      }
    } finally {
      await gw.stop();
      await backend.close();
    }
  });
});
