/**
 * External auth over HTTP end to end (docs/routing.md#external-auth): a real gateway, an HTTP auth
 * service written here (recording every check it is asked), a recording model that shows byte for
 * byte what it received, and raw HTTP/1.1 clients that show exactly what came back. Every route
 * kind (plain, canary, shadow) is checked before anything reaches a model; a denial is the auth
 * service's answer as it came; a dead, slow or garbage-speaking auth service fails closed.
 */
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  connectRaw,
  headerValue,
  headerValues,
  rawRequest,
  readHttpResponse,
  startRecordingUpstream,
  type HeaderLine,
  type RawRequestSpec,
  type RawResponse,
  type RecordingUpstream,
  writeRequest,
} from '../../fixtures/recording-upstream.js';
import { sdep, startTestGateway, type TestGateway } from '../../helpers/gateway.js';
import { metric } from '../../helpers/metrics.js';
import { freePort, listenLocal } from '../../helpers/net.js';
import { waitUntil } from '../../helpers/wait.js';

const PREDICT = '/api/v1.0/predictions';
const BODY = Buffer.from('{"data":{"ndarray":[[1.5,2.5]]},"note":"\u00e9t\u00e9"}', 'utf8');

/** One check as the auth service received it. */
interface Check {
  readonly method: string;
  readonly url: string;
  /** Header lines as received (names lower-cased by node:http's rawHeaders? no: as sent). */
  readonly raw: string[];
  readonly body: Buffer;
}

/**
 * An HTTP auth service, as oauth2-proxy or an in-house one behaves: `Bearer good` is allowed (with
 * identity headers, a replaced Authorization, a header removed, a refreshed cookie, and a header it
 * is not allowed to set); a request without credentials is redirected to a login page with a CSRF
 * cookie (oauth2-proxy's way); `Bearer slow` is answered after `slowMs`; anything else is 401.
 */
async function startAuthService(slowMs: number): Promise<{ port: number; checks: Check[]; close(): Promise<void> }> {
  const checks: Check[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      checks.push({ method: req.method!, url: req.url!, raw: req.rawHeaders, body: Buffer.concat(chunks) });
      const auth = req.headers.authorization;
      if (auth === 'Bearer good') {
        res.writeHead(
          200,
          [
            ['X-Auth-User', 'alice'],
            ['Authorization', 'Bearer internal-token'],
            ['X-Not-Allowed', 'must not reach the model'],
            ['x-envoy-auth-headers-to-remove', 'x-api-secret'],
            ['Set-Cookie', 'session=refreshed; Path=/; HttpOnly'],
          ].flat(),
        );
        res.end('ignored body of an allowance');
      } else if (auth === undefined) {
        res.writeHead(302, { Location: 'https://login.example/oauth2/start?rd=%2Fseldon', 'Set-Cookie': '_oauth2_proxy_csrf=abc123; Path=/; Secure', 'Content-Type': 'text/html' });
        res.end('<a href="https://login.example/oauth2/start">Found</a>');
      } else if (auth === 'Bearer slow') {
        setTimeout(() => {
          res.writeHead(200);
          res.end();
        }, slowMs).unref();
      } else {
        res.writeHead(401, { 'WWW-Authenticate': 'Bearer realm="corp"', 'Content-Type': 'text/plain', 'X-Internal-Detail': 'policy 17 said no' });
        res.end('go away');
      }
    });
  });
  return { ...(await listenLocal(server)), checks };
}

/** The header lines of a raw list whose names are among `names` (lower-case), as `name: value`. */
const linesNamed = (raw: readonly string[], names: readonly string[]): string[] => {
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) if (names.includes(raw[i]!.toLowerCase())) out.push(`${raw[i]!.toLowerCase()}: ${raw[i + 1]!}`);
  return out;
};
const namesOf = (raw: readonly string[]): string[] => raw.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase());
const lowerLines = (lines: readonly HeaderLine[]): string[] => lines.map(([k, v]) => `${k.toLowerCase()}: ${v}`);

describe('external auth over HTTP', () => {
  let auth: Awaited<ReturnType<typeof startAuthService>>;
  let model: RecordingUpstream;
  let shadow: RecordingUpstream;
  let gw: TestGateway;

  async function send(spec: RawRequestSpec): Promise<RawResponse> {
    const { res, x } = await rawRequest(gw.port, { ...spec, headers: [['Host', 'gw.example'], ...spec.headers] }, 10_000);
    x.socket.destroy();
    if (!res) throw new Error('no answer');
    return res;
  }

  const predict = (path: string, caseId: string, extra: HeaderLine[] = []): RawRequestSpec => ({
    target: path,
    headers: [['Content-Type', 'application/json'], ['x-case', caseId], ...extra],
    body: BODY,
  });

  beforeAll(async () => {
    auth = await startAuthService(2000);
    model = await startRecordingUpstream({ name: 'model' });
    shadow = await startRecordingUpstream({ name: 'shadow' });
    const resolve: Record<string, number> = {};
    for (const s of ['plain-main', 'split-main', 'split-canary', 'mirrored-main', 'public-main']) resolve[`${s}.models:8000`] = model.port;
    resolve['mirrored-audit.models:8000'] = shadow.port;
    gw = await startTestGateway({
      manifests: {
        'plain.yaml': sdep('plain', 'models', { predictors: [{ name: 'main' }], oauth_key: 'pk', oauth_secret: 'ps' }),
        'split.yaml': sdep('split', 'models', {
          predictors: [
            { name: 'main', traffic: 50 },
            { name: 'canary', traffic: 50 },
          ],
        }),
        'mirrored.yaml': sdep('mirrored', 'models', { predictors: [{ name: 'main' }, { name: 'audit', shadow: true }] }),
        // Its own Service bypasses; the same flag on a Mapping to another deployment's Service does not.
        'public.yaml': sdep(
          'public',
          'models',
          { predictors: [{ name: 'main' }] },
          {
            'seldon.io/ambassador-config': [
              'apiVersion: getambassador.io/v2\nkind: Mapping\nname: open\nprefix: /seldon/models/public/open/\nservice: public-main.models:8000\nbypass_auth: true',
              'apiVersion: getambassador.io/v2\nkind: Mapping\nname: borrowed\nprefix: /seldon/models/public/borrowed/\nservice: plain-main.models:8000\nbypass_auth: true',
            ].join('\n---\n'),
          },
        ),
      },
      resolve,
      args: [
        '--ext-auth-service',
        `http://127.0.0.1:${auth.port}`,
        '--ext-auth-path-prefix',
        '/check',
        '--ext-auth-timeout',
        '300ms',
        '--ext-auth-allowed-request-headers',
        'X-Tenant',
        '--ext-auth-allowed-authorization-headers',
        'x-auth-user',
      ],
    });
  });
  afterAll(async () => {
    await gw?.stop();
    await model?.close();
    await shadow?.close();
    await auth?.close();
  });

  it('asks the auth service with the method, the prefixed path and the allowed headers only, no body', async () => {
    const before = auth.checks.length;
    const r = await send(
      predict(`/seldon/models/plain${PREDICT}?x=1`, 'ask', [
        ['Authorization', 'Bearer good'],
        ['X-Tenant', 't1'],
        ['X-Api-Secret', 's3cret'],
        ['User-Agent', 'probe/1'],
        ['Cookie', 'a=b'],
      ]),
    );
    expect(r.status).toBe(200);
    expect(auth.checks).toHaveLength(before + 1);
    const c = auth.checks[before]!;
    expect(c.method).toBe('POST');
    expect(c.url).toBe(`/check/seldon/models/plain${PREDICT}?x=1`);
    expect(namesOf(c.raw).sort()).toEqual(['authorization', 'connection', 'content-length', 'cookie', 'host', 'user-agent', 'x-forwarded-for', 'x-forwarded-host', 'x-forwarded-proto', 'x-tenant']);
    expect(linesNamed(c.raw, ['authorization', 'cookie', 'host', 'user-agent', 'x-forwarded-for', 'x-forwarded-host', 'x-forwarded-proto', 'x-tenant', 'content-length'])).toEqual([
      'host: gw.example',
      'authorization: Bearer good',
      'x-tenant: t1',
      'user-agent: probe/1',
      'cookie: a=b',
      'x-forwarded-for: 127.0.0.1',
      'x-forwarded-proto: http',
      'x-forwarded-host: gw.example',
      'content-length: 0',
    ]);
    expect(c.body.length).toBe(0);
  });

  it('dot segments resolved: the auth service is asked for the path as routed, and the model gets that as x-envoy-original-path', async () => {
    // Envoy's ext_authz sends :path as the connection manager normalised it, so `/public/../plain` is judged as `/plain`.
    const before = auth.checks.length;
    const r = await send(predict(`/seldon/models/public/../plain/x/./..${PREDICT}?x=/../y`, 'dots', [['Authorization', 'Bearer good']]));
    expect(r.status).toBe(200);
    expect(auth.checks.map((c) => c.url).slice(before)).toEqual([`/check/seldon/models/plain${PREDICT}?x=/../y`]);
    const [seen] = model.byCase('dots');
    expect([seen!.target, headerValue(seen!.headers, 'x-envoy-original-path')]).toEqual([`${PREDICT}?x=/../y`, `/seldon/models/plain${PREDICT}?x=/../y`]);
  });

  it('allowed: the model gets the body byte for byte, the allowed headers set, the removed one gone; the cookie goes to the client', async () => {
    const r = await send(
      predict(`/seldon/models/plain${PREDICT}`, 'allow', [
        ['Authorization', 'Bearer good'],
        ['X-Api-Secret', 's3cret'],
        ['X-Auth-User', 'mallory'],
      ]),
    );
    expect(r.status).toBe(200);
    expect(headerValues(r.headers, 'set-cookie')).toEqual(['session=refreshed; Path=/; HttpOnly']);
    const [seen] = model.byCase('allow');
    expect(seen).toBeDefined();
    expect(seen!.body.equals(BODY)).toBe(true);
    const lines = lowerLines(seen!.headers);
    expect(lines).toContain('authorization: Bearer internal-token');
    expect(lines.filter((l) => l.startsWith('authorization:'))).toEqual(['authorization: Bearer internal-token']);
    // The client's forged identity is replaced, not kept beside the auth service's.
    expect(lines.filter((l) => l.startsWith('x-auth-user:'))).toEqual(['x-auth-user: alice']);
    expect(headerValue(seen!.headers, 'x-api-secret')).toBeUndefined();
    expect(headerValue(seen!.headers, 'x-not-allowed')).toBeUndefined();
    expect(headerValue(seen!.headers, 'set-cookie')).toBeUndefined();
    expect(headerValue(seen!.headers, 'content-type')).toBe('application/json');
  });

  it("denied: the auth service's status, allowed headers and body as they came; the model sees nothing", async () => {
    const r = await send(predict(`/seldon/models/plain${PREDICT}`, 'deny', [['Authorization', 'Bearer bad']]));
    expect(r.statusLine).toBe('HTTP/1.1 401 Unauthorized');
    expect(r.body.toString()).toBe('go away');
    expect(headerValue(r.headers, 'www-authenticate')).toBe('Bearer realm="corp"');
    expect(headerValue(r.headers, 'content-type')).toBe('text/plain');
    expect(headerValue(r.headers, 'x-internal-detail')).toBeUndefined();
    expect(model.byCase('deny')).toHaveLength(0);
  });

  it("oauth2-proxy's way: a redirect to the login page with its cookie passes through", async () => {
    const r = await send(predict(`/seldon/models/plain${PREDICT}`, 'login'));
    expect(r.status).toBe(302);
    expect(headerValue(r.headers, 'location')).toBe('https://login.example/oauth2/start?rd=%2Fseldon');
    expect(headerValues(r.headers, 'set-cookie')).toEqual(['_oauth2_proxy_csrf=abc123; Path=/; Secure']);
    expect(r.body.toString()).toBe('<a href="https://login.example/oauth2/start">Found</a>');
    expect(model.byCase('login')).toHaveLength(0);
  });

  it('a canary split and a shadowed deployment are checked: denied requests reach no member and are never mirrored', async () => {
    for (let i = 0; i < 6; i++) expect((await send(predict(`/seldon/models/split${PREDICT}`, 'split-deny', [['Authorization', 'Bearer bad']]))).status).toBe(401);
    expect((await send(predict(`/seldon/models/mirrored${PREDICT}`, 'mirror-deny', [['Authorization', 'Bearer bad']]))).status).toBe(401);
    expect((await send(predict(`/seldon/models/mirrored${PREDICT}`, 'mirror-allow', [['Authorization', 'Bearer good']]))).status).toBe(200);
    // The allowed one is mirrored (with the auth service's headers); by then the denied one would have been too.
    await waitUntil(async () => shadow.byCase('mirror-allow').length === 1, 5000);
    expect(headerValue(shadow.byCase('mirror-allow')[0]!.headers, 'x-auth-user')).toBe('alice');
    expect(shadow.byCase('mirror-allow')[0]!.body.equals(BODY)).toBe(true);
    expect(model.byCase('split-deny')).toHaveLength(0);
    expect(model.byCase('mirror-deny')).toHaveLength(0);
    expect(shadow.byCase('mirror-deny')).toHaveLength(0);
  });

  it("bypass_auth skips the check for the Mapping's own deployment's Service only", async () => {
    const before = auth.checks.length;
    const open = await send(predict('/seldon/models/public/open/predict', 'bypass-own', [['Authorization', 'Bearer bad']]));
    expect(open.status).toBe(200);
    expect(auth.checks).toHaveLength(before);
    expect(model.byCase('bypass-own')).toHaveLength(1);
    const borrowed = await send(predict('/seldon/models/public/borrowed/predict', 'bypass-other', [['Authorization', 'Bearer bad']]));
    expect(borrowed.status).toBe(401);
    expect(auth.checks).toHaveLength(before + 1);
    expect(model.byCase('bypass-other')).toHaveLength(0);
  });

  it("the gateway's own /oauth/token is not checked", async () => {
    const before = auth.checks.length;
    const basic = `Basic ${Buffer.from('pkmodels:ps').toString('base64')}`;
    const r = await request(`${gw.url}/oauth/token`, { method: 'POST', headers: { authorization: basic, 'content-type': 'application/x-www-form-urlencoded' }, body: 'grant_type=client_credentials' });
    expect(JSON.parse(await r.body.text())).toHaveProperty('access_token');
    expect(r.statusCode).toBe(200);
    expect(auth.checks).toHaveLength(before);
  });

  it('a slow auth service fails closed with 403 (status_on_error) at the timeout, counted', async () => {
    const before = await metric(gw.adminUrl, 'seldon_gateway_ext_auth_total{protocol="rest",result="timeout"}');
    const r = await send(predict(`/seldon/models/plain${PREDICT}`, 'slow', [['Authorization', 'Bearer slow']]));
    expect(r.status).toBe(403);
    expect(JSON.parse(r.body.toString()).status.reason).toBe('AUTH_BACKEND_UNAVAILABLE');
    expect(model.byCase('slow')).toHaveLength(0);
    expect(await metric(gw.adminUrl, 'seldon_gateway_ext_auth_total{protocol="rest",result="timeout"}')).toBe(before + 1);
    expect(await metric(gw.adminUrl, 'seldon_gateway_ext_auth_total{protocol="rest",result="allowed"}')).toBeGreaterThan(0);
    expect(await metric(gw.adminUrl, 'seldon_gateway_ext_auth_total{protocol="rest",result="denied"}')).toBeGreaterThan(0);
  });
});

/** A TCP server that answers every connection with bytes that are not HTTP. */
async function startGarbageServer(): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('error', () => undefined);
    s.once('data', () => s.end('HELLO THIS IS NOT HTTP\r\n\r\n'));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

/** An auth service that is failing: every check gets a 503 with words of its own, as an overloaded one answers. */
async function startFailingAuthService(): Promise<{ port: number; checks: number; close(): Promise<void> }> {
  const state = { checks: 0 };
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      state.checks++;
      res.writeHead(503, { 'Content-Type': 'text/plain', 'WWW-Authenticate': 'Bearer realm="down"', 'Retry-After': '7' });
      res.end('auth backend db-7 is overloaded');
    });
  });
  const { port, close } = await listenLocal(server);
  return {
    port,
    get checks() {
      return state.checks;
    },
    close,
  };
}

describe('external auth failures', () => {
  let model: RecordingUpstream;
  let garbage: Awaited<ReturnType<typeof startGarbageServer>>;
  let failing: Awaited<ReturnType<typeof startFailingAuthService>>;
  const gateways: TestGateway[] = [];

  beforeAll(async () => {
    model = await startRecordingUpstream({ name: 'model' });
    garbage = await startGarbageServer();
    failing = await startFailingAuthService();
  });
  afterAll(async () => {
    for (const g of gateways) await g.stop();
    await model?.close();
    await garbage?.close();
    await failing?.close();
  });

  async function gatewayWith(args: string[]): Promise<TestGateway> {
    const g = await startTestGateway({ manifests: { 'plain.yaml': sdep('plain', 'models', { predictors: [{ name: 'main' }] }) }, resolve: { 'plain-main.models:8000': model.port }, args });
    gateways.push(g);
    return g;
  }

  async function post(g: TestGateway, caseId: string): Promise<RawResponse> {
    const { res, x } = await rawRequest(
      g.port,
      {
        target: `/seldon/models/plain${PREDICT}`,
        headers: [
          ['Host', 'gw'],
          ['x-case', caseId],
          ['Content-Type', 'application/json'],
        ],
        body: BODY,
      },
      10_000,
    );
    x.socket.destroy();
    if (!res) throw new Error('no answer');
    return res;
  }

  it("a dead auth service: 403, the gateway's words only; another --ext-auth-status-on-error is used as given", async () => {
    const dead = await freePort();
    const g = await gatewayWith(['--ext-auth-service', `127.0.0.1:${dead}`]);
    const r = await post(g, 'dead');
    expect(r.status).toBe(403);
    const body = JSON.parse(r.body.toString()) as { status: { reason: string; info: string } };
    expect(body.status.reason).toBe('AUTH_BACKEND_UNAVAILABLE');
    expect(body.status.info).not.toContain(String(dead));
    const g503 = await gatewayWith(['--ext-auth-service', `127.0.0.1:${dead}`, '--ext-auth-status-on-error', '503']);
    expect((await post(g503, 'dead-503')).status).toBe(503);
    expect(model.byCase('dead')).toHaveLength(0);
    expect(model.byCase('dead-503')).toHaveLength(0);
    expect(await metric(g.adminUrl, 'seldon_gateway_ext_auth_total{protocol="rest",result="error"}')).toBe(1);
  });

  it("an auth service answering 5xx has failed, as Envoy takes it: --ext-auth-status-on-error in the gateway's words, never its own", async () => {
    const g = await gatewayWith(['--ext-auth-service', `http://127.0.0.1:${failing.port}`]);
    const r = await post(g, 'auth-503');
    expect(failing.checks).toBeGreaterThanOrEqual(1);
    expect(r.status).toBe(403);
    const body = JSON.parse(r.body.toString()) as { status: { reason: string } };
    expect(body.status.reason).toBe('AUTH_BACKEND_UNAVAILABLE');
    expect(r.body.toString()).not.toContain('db-7');
    expect(headerValue(r.headers, 'www-authenticate')).toBeUndefined();
    expect(headerValue(r.headers, 'retry-after')).toBeUndefined();
    expect(model.byCase('auth-503')).toHaveLength(0);
    expect(await metric(g.adminUrl, 'seldon_gateway_ext_auth_total{protocol="rest",result="error"}')).toBe(1);
    expect(await metric(g.adminUrl, 'seldon_gateway_ext_auth_total{protocol="rest",result="denied"}')).toBe(0);
    // Under --ext-auth-failure-mode-allow the same answer lets the request through, unchanged.
    const open = await gatewayWith(['--ext-auth-service', `http://127.0.0.1:${failing.port}`, '--ext-auth-failure-mode-allow']);
    expect((await post(open, 'auth-503-open')).status).toBe(200);
    expect(model.byCase('auth-503-open')[0]!.body.equals(BODY)).toBe(true);
    expect(await metric(open.adminUrl, 'seldon_gateway_ext_auth_total{protocol="rest",result="error_allowed"}')).toBe(1);
  });

  it('an auth service that answers garbage fails closed; its bytes are never returned', async () => {
    const g = await gatewayWith(['--ext-auth-service', `http://127.0.0.1:${garbage.port}`]);
    const r = await post(g, 'garbage');
    expect(r.status).toBe(403);
    expect(r.body.toString()).not.toContain('HELLO');
    expect(model.byCase('garbage')).toHaveLength(0);
  });

  it('--ext-auth-failure-mode-allow lets requests through unchanged when the check fails, counted as error_allowed', async () => {
    const g = await gatewayWith(['--ext-auth-service', `http://127.0.0.1:${garbage.port}`, '--ext-auth-failure-mode-allow']);
    const r = await post(g, 'fail-open');
    expect(r.status).toBe(200);
    expect(model.byCase('fail-open')[0]!.body.equals(BODY)).toBe(true);
    expect(await metric(g.adminUrl, 'seldon_gateway_ext_auth_total{protocol="rest",result="error_allowed"}')).toBe(1);
  });

  it('--ext-auth-default off: only seldon.io/gateway-auth: external is checked', async () => {
    const dead = await freePort();
    const g = await startTestGateway({
      manifests: {
        'plain.yaml': sdep('plain', 'models', { predictors: [{ name: 'main' }] }),
        'guarded.yaml': sdep('guarded', 'models', { predictors: [{ name: 'main' }] }, { 'seldon.io/gateway-auth': 'external' }),
      },
      resolve: { 'plain-main.models:8000': model.port, 'guarded-main.models:8000': model.port },
      args: ['--ext-auth-service', `127.0.0.1:${dead}`, '--ext-auth-default', 'off'],
    });
    gateways.push(g);
    expect((await post(g, 'unguarded')).status).toBe(200);
    const { res, x } = await rawRequest(
      g.port,
      {
        target: `/seldon/models/guarded${PREDICT}`,
        headers: [
          ['Host', 'gw'],
          ['x-case', 'guarded'],
        ],
        body: BODY,
      },
      10_000,
    );
    x.socket.destroy();
    expect(res?.status).toBe(403);
    expect(model.byCase('guarded')).toHaveLength(0);
  });
});

describe('external auth with include_body', () => {
  let auth: Awaited<ReturnType<typeof startAuthService>>;
  let model: RecordingUpstream;
  let gw: TestGateway;
  let partial: TestGateway;

  beforeAll(async () => {
    auth = await startAuthService(2000);
    model = await startRecordingUpstream({ name: 'model' });
    const common = { manifests: { 'plain.yaml': sdep('plain', 'models', { predictors: [{ name: 'main' }] }) }, resolve: { 'plain-main.models:8000': model.port } };
    gw = await startTestGateway({ ...common, args: ['--ext-auth-service', `http://127.0.0.1:${auth.port}`, '--ext-auth-include-body', '64'] });
    partial = await startTestGateway({ ...common, args: ['--ext-auth-service', `http://127.0.0.1:${auth.port}`, '--ext-auth-include-body', '16', '--ext-auth-allow-partial'] });
  });
  afterAll(async () => {
    await gw?.stop();
    await partial?.stop();
    await model?.close();
    await auth?.close();
  });

  it('a body within max_bytes goes with the check, and whole to the model once allowed', async () => {
    const before = auth.checks.length;
    const { res, x } = await rawRequest(
      gw.port,
      {
        target: `/seldon/models/plain${PREDICT}`,
        headers: [
          ['Host', 'gw'],
          ['x-case', 'small'],
          ['Authorization', 'Bearer good'],
        ],
        body: BODY,
      },
      10_000,
    );
    x.socket.destroy();
    expect(res?.status).toBe(200);
    const c = auth.checks[before]!;
    expect(c.body.equals(BODY)).toBe(true);
    expect(linesNamed(c.raw, ['content-length', 'x-envoy-auth-partial-body'])).toEqual(['x-envoy-auth-partial-body: false', `content-length: ${BODY.length}`]);
    expect(model.byCase('small')[0]!.body.equals(BODY)).toBe(true);
  });

  it('a larger body without allow_partial: 413 before the auth service is asked', async () => {
    const before = auth.checks.length;
    const big = Buffer.alloc(200_000, 0x61);
    const { res, x } = await rawRequest(
      gw.port,
      {
        target: `/seldon/models/plain${PREDICT}`,
        headers: [
          ['Host', 'gw'],
          ['x-case', 'big'],
          ['Authorization', 'Bearer good'],
        ],
        body: big,
      },
      10_000,
    );
    x.socket.destroy();
    expect(res?.status).toBe(413);
    expect(auth.checks).toHaveLength(before);
    expect(model.byCase('big')).toHaveLength(0);
  });

  it('allow_partial: the first max_bytes are checked; a denial comes while the client has sent only the start of its body', async () => {
    const before = auth.checks.length;
    const x = await connectRaw(partial.port);
    const start = Buffer.from('0123456789abcdefghijklmnopqrstuvwxyz');
    // A 10 MB body is announced; only its first 36 bytes are sent before the answer is read.
    await writeRequest(x, {
      target: `/seldon/models/plain${PREDICT}`,
      headers: [
        ['Host', 'gw'],
        ['x-case', 'partial'],
        ['Authorization', 'Bearer bad'],
        ['Content-Length', String(10 * 1024 * 1024)],
      ],
      body: start,
      framing: 'none',
    });
    await new Promise<void>((r) => x.socket.write(start, () => r()));
    const res = await readHttpResponse(x.reader, { timeoutMs: 10_000 });
    x.socket.destroy();
    expect(res?.status).toBe(401);
    expect(headerValue(res!.headers, 'connection')).toBe('close');
    const c = auth.checks[before]!;
    expect(c.body.toString()).toBe('0123456789abcdef');
    expect(linesNamed(c.raw, ['x-envoy-auth-partial-body'])).toEqual(['x-envoy-auth-partial-body: true']);
    expect(model.byCase('partial')).toHaveLength(0);
  });
});
