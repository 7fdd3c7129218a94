/**
 * CORS end to end (docs/routing.md#cors): a real gateway, a recording upstream that shows exactly
 * what the model received, raw HTTP/1.1 clients that show exactly which header lines came back.
 * Preflights from allowed origins are answered by the gateway (never reaching the model, before
 * auth); other requests from allowed origins get the policy's headers, replacing the model's;
 * everything else, and every deployment without a policy, passes as it did before.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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
  type RecordedRequest,
  type RecordingUpstream,
  writeRequest,
} from '../../fixtures/recording-upstream.js';
import { startCli, type CliGateway } from '../../helpers/cli.js';
import { sdep, startTestGateway, type TestGateway } from '../../helpers/gateway.js';
import { freePort } from '../../helpers/net.js';
import { fetchToken } from '../../helpers/oauth.js';

const PREDICT = '/api/v1.0/predictions';
const APP = 'https://app.example.com';

/** The policy of `web`: every field set. */
const WEB_CORS = JSON.stringify({
  origins: [APP, 'https://*.example.org'],
  methods: 'POST, GET',
  headers: ['Content-Type', 'X-Token'],
  credentials: true,
  exposed_headers: 'X-Upstream, X-Seldon-Predictor',
  max_age: '600',
});

/** `mapped`: one Mapping with its own cors (it wins), one without (the annotation applies). */
const MAPPED_CONFIG = [
  'apiVersion: getambassador.io/v2\nkind: Mapping\nname: own\nprefix: /seldon/models/mapped/own/\nservice: mapped-main.models:8000\ncors:\n  origins: http://localhost:3000\n  methods: [POST]\n  max_age: "86400"',
  'apiVersion: getambassador.io/v2\nkind: Mapping\nname: inh\nprefix: /seldon/models/mapped/inh/\nservice: mapped-main.models:8000',
].join('\n---\n');

/** Only the CORS-related header lines of an answer, names lower-cased, in order. */
const corsLines = (lines: readonly HeaderLine[]): string[] => lines.filter(([k]) => /^(access-control-|vary$)/i.test(k)).map(([k, v]) => `${k.toLowerCase()}: ${v}`);

describe('CORS', () => {
  let model: RecordingUpstream;
  let gw: TestGateway;
  let deadPort: number;

  async function send(spec: RawRequestSpec): Promise<RawResponse> {
    const { res, x } = await rawRequest(gw.port, { ...spec, headers: [['Host', 'gw.example'], ...spec.headers] }, 10_000);
    x.socket.destroy();
    if (!res) throw new Error('no answer');
    return res;
  }

  /** A preflight as a browser sends it. */
  const preflight = (path: string, origin: string, method = 'POST', headers?: string, caseId = 'x'): RawRequestSpec => ({
    method: 'OPTIONS',
    target: path,
    headers: [['Origin', origin], ['Access-Control-Request-Method', method], ...(headers ? ([['Access-Control-Request-Headers', headers]] as HeaderLine[]) : []), ['x-case', caseId]],
  });

  beforeAll(async () => {
    model = await startRecordingUpstream({
      name: 'model',
      // The model's own CORS headers, for the cases that check they are replaced or left alone.
      responder: (req) => {
        const base: HeaderLine[] = [
          ['Content-Type', 'application/json'],
          ['X-Upstream', 'model'],
        ];
        if (headerValue(req.headers, 'x-upstream-cors') !== undefined) {
          base.push(['Access-Control-Allow-Origin', '*'], ['access-control-allow-credentials', 'false'], ['Access-Control-Expose-Headers', 'x-model'], ['Vary', 'Accept-Encoding']);
        }
        if (headerValue(req.headers, 'x-vary-origin') !== undefined) base.push(['Vary', 'Accept, origin']);
        return { headers: base, body: '{"ok":true}' };
      },
    });
    deadPort = await freePort();
    const resolve: Record<string, number> = {};
    for (const d of ['web', 'open', 'mapped', 'plain', 'gated', 'limited', 'bad']) resolve[`${d}-main.models:8000`] = model.port;
    resolve['down-main.models:8000'] = deadPort;
    gw = await startTestGateway({
      manifests: {
        'web.yaml': sdep('web', 'models', { predictors: [{ name: 'main', explainer: { type: 'anchor_tabular' } }] }, { 'seldon.io/gateway-cors': WEB_CORS }),
        // YAML value, `*` everywhere, no credentials.
        'open.yaml': sdep('open', 'models', { predictors: [{ name: 'main' }] }, { 'seldon.io/gateway-cors': 'origins: "*"\nmethods: "*"\nheaders: "*"\n' }),
        'mapped.yaml': sdep('mapped', 'models', { predictors: [{ name: 'main' }] }, { 'seldon.io/ambassador-config': MAPPED_CONFIG, 'seldon.io/gateway-cors': JSON.stringify({ origins: APP }) }),
        'plain.yaml': sdep('plain', 'models', { predictors: [{ name: 'main' }] }),
        'gated.yaml': sdep(
          'gated',
          'models',
          { predictors: [{ name: 'main' }], oauth_key: 'gk', oauth_secret: 'gs' },
          { 'seldon.io/gateway-auth': 'oauth', 'seldon.io/gateway-cors': JSON.stringify({ origins: APP, headers: 'authorization' }) },
        ),
        'limited.yaml': sdep('limited', 'models', { predictors: [{ name: 'main' }] }, { 'seldon.io/gateway-rate-limit': '1/h', 'seldon.io/gateway-cors': JSON.stringify({ origins: APP }) }),
        'down.yaml': sdep('down', 'models', { predictors: [{ name: 'main' }] }, { 'seldon.io/gateway-cors': JSON.stringify({ origins: APP, credentials: true }) }),
        'bad.yaml': sdep('bad', 'models', { predictors: [{ name: 'main' }] }, { 'seldon.io/gateway-cors': '{"origins": ["https://app.example.com/"]}' }),
      },
      resolve,
    });
  });
  afterAll(async () => {
    await gw?.stop();
    await model?.close();
  });

  describe('preflights from an allowed origin are answered by the gateway', () => {
    it('200, every field of the policy, Vary: Origin, no body; the model sees nothing', async () => {
      const r = await send(preflight(`/seldon/models/web${PREDICT}`, APP, 'POST', 'content-type, x-token', 'pf-1'));
      expect(r.statusLine).toBe('HTTP/1.1 200 OK');
      expect(corsLines(r.headers)).toEqual([
        `access-control-allow-origin: ${APP}`,
        'access-control-allow-credentials: true',
        'access-control-allow-methods: POST, GET',
        'access-control-allow-headers: content-type, x-token',
        'access-control-max-age: 600',
        'vary: Origin',
      ]);
      expect(headerValue(r.headers, 'content-length')).toBe('0');
      expect(headerValue(r.headers, 'content-type')).toBeUndefined();
      expect(r.body.length).toBe(0);
      expect(model.byCase('pf-1')).toHaveLength(0);
    });

    it('a *. origin pattern allows subdomains, echoed as sent; the explainer route has the policy too', async () => {
      for (const origin of ['https://a.example.org', 'https://Deep.Sub.Example.org']) {
        const r = await send(preflight(`/seldon/models/web-explainer/main/api/v1.0/explain`, origin, 'POST', undefined, 'pf-2'));
        expect(r.status).toBe(200);
        expect(headerValue(r.headers, 'access-control-allow-origin')).toBe(origin);
      }
      expect(model.byCase('pf-2')).toHaveLength(0);
    });

    it('a method or header outside the lists is still answered 200 with the lists: the browser refuses (as with Envoy)', async () => {
      const r = await send(preflight(`/seldon/models/web${PREDICT}`, APP, 'DELETE', 'x-other', 'pf-3'));
      expect(r.status).toBe(200);
      expect(headerValue(r.headers, 'access-control-allow-methods')).toBe('POST, GET');
      expect(headerValue(r.headers, 'access-control-allow-headers')).toBe('content-type, x-token');
      expect(model.byCase('pf-3')).toHaveLength(0);
    });

    it('"*" origins echo the Origin as Envoy does; "*" methods and headers echo what the preflight asks; no max-age unless set', async () => {
      const r = await send(preflight(`/seldon/models/open/anything`, 'https://elsewhere.test:8443', 'PATCH', 'x-a, X-B', 'pf-4'));
      expect(r.status).toBe(200);
      expect(corsLines(r.headers)).toEqual([
        'access-control-allow-origin: https://elsewhere.test:8443',
        'access-control-allow-methods: PATCH',
        'access-control-allow-headers: x-a, X-B',
        'vary: Origin',
      ]);
      const nul = await send(preflight(`/seldon/models/open/anything`, 'null', 'POST', undefined, 'pf-4'));
      expect(headerValue(nul.headers, 'access-control-allow-origin')).toBe('null');
      // Nothing requested, nothing echoed.
      const bare = await send(preflight(`/seldon/models/open/anything`, 'https://x.test', 'GET', undefined, 'pf-4'));
      expect(headerValue(bare.headers, 'access-control-allow-headers')).toBeUndefined();
      expect(model.byCase('pf-4')).toHaveLength(0);
    });

    it('preflights need no credentials on an OAuth-gated route (CORS runs before auth); the real request still does, and its 401 is readable', async () => {
      const r = await send(preflight(`/seldon/models/gated${PREDICT}`, APP, 'POST', 'authorization', 'pf-5'));
      expect(r.status).toBe(200);
      expect(corsLines(r.headers)).toEqual([`access-control-allow-origin: ${APP}`, 'access-control-allow-headers: authorization', 'vary: Origin']);
      const denied = await send({
        target: `/seldon/models/gated${PREDICT}`,
        headers: [
          ['Origin', APP],
          ['Content-Type', 'application/json'],
          ['x-case', 'pf-5'],
        ],
        body: Buffer.from('{}'),
      });
      expect(denied.status).toBe(401);
      expect(JSON.parse(denied.body.toString()).status.reason).toBe('UNAUTHENTICATED');
      expect(corsLines(denied.headers)).toEqual([`access-control-allow-origin: ${APP}`, 'vary: Origin']);
      expect(headerValue(denied.headers, 'www-authenticate')).toMatch(/^Bearer/);
      expect(model.byCase('pf-5')).toHaveLength(0);
    });

    it("the OAuth front end's answers follow the policy of the route its token chose: the model's CORS headers replaced", async () => {
      const token = await fetchToken(gw.url, 'gkmodels', 'gs');
      const r = await send({
        target: '/api/v0.1/predictions',
        headers: [
          ['Origin', APP],
          ['Authorization', `Bearer ${token}`],
          ['Content-Type', 'application/json'],
          ['x-upstream-cors', '1'],
          ['x-case', 'fe-1'],
        ],
        body: Buffer.from('{"data":{"ndarray":[[1]]}}'),
      });
      expect(r.status).toBe(200);
      expect(corsLines(r.headers)).toEqual(['vary: Accept-Encoding', `access-control-allow-origin: ${APP}`, 'vary: Origin']);
      expect(model.byCase('fe-1')).toHaveLength(1);
      // Without an Origin the model's own headers pass as they are.
      const plain = await send({
        target: '/api/v0.1/predictions',
        headers: [
          ['Authorization', `Bearer ${token}`],
          ['Content-Type', 'application/json'],
          ['x-upstream-cors', '1'],
          ['x-case', 'fe-2'],
        ],
        body: Buffer.from('{"data":{"ndarray":[[1]]}}'),
      });
      expect(corsLines(plain.headers)).toEqual(['access-control-allow-origin: *', 'access-control-allow-credentials: false', 'access-control-expose-headers: x-model', 'vary: Accept-Encoding']);
    });
  });

  describe('what the gateway leaves to the model', () => {
    it('a preflight from an origin the policy does not allow reaches the model unchanged, and its answer comes back untouched', async () => {
      for (const [i, origin] of ['https://evil.example', 'https://example.org', 'http://app.example.com', 'https://app.example.com.evil.net'].entries()) {
        const id = `deny-${i}`;
        const r = await send(preflight(`/seldon/models/web${PREDICT}?q=1`, origin, 'POST', 'content-type', id));
        expect(r.status).toBe(200);
        expect(corsLines(r.headers)).toEqual([]);
        expect(r.body.toString()).toBe('{"ok":true}');
        const seen = model.byCase(id);
        expect(seen).toHaveLength(1);
        expect(seen[0]!.requestLine).toBe(`OPTIONS ${PREDICT}?q=1 HTTP/1.1`);
        expect(headerValue(seen[0]!.headers, 'origin')).toBe(origin);
        expect(headerValue(seen[0]!.headers, 'access-control-request-method')).toBe('POST');
      }
    });

    it('an OPTIONS without Access-Control-Request-Method is not a preflight: proxied, and the answer gets the CORS headers', async () => {
      const r = await send({
        method: 'OPTIONS',
        target: `/seldon/models/web${PREDICT}`,
        headers: [
          ['Origin', APP],
          ['x-case', 'opt-1'],
        ],
      });
      expect(model.byCase('opt-1')).toHaveLength(1);
      expect(r.status).toBe(200);
      expect(headerValue(r.headers, 'access-control-allow-origin')).toBe(APP);
      const empty = await send({
        method: 'OPTIONS',
        target: `/seldon/models/web${PREDICT}`,
        headers: [
          ['Origin', APP],
          ['Access-Control-Request-Method', ''],
          ['x-case', 'opt-2'],
        ],
      });
      expect(empty.status).toBe(200);
      expect(model.byCase('opt-2')).toHaveLength(1);
    });

    it("a deployment without a policy: a preflight reaches the model byte for byte, the answer is the model's", async () => {
      const sent: HeaderLine[] = [
        ['Origin', APP],
        ['Access-Control-Request-Method', 'POST'],
        ['Access-Control-Request-Headers', 'content-type'],
        ['x-case', 'plain-1'],
      ];
      const r = await send({ method: 'OPTIONS', target: `/seldon/models/plain${PREDICT}?a=%2F`, headers: sent });
      const seen = model.byCase('plain-1');
      expect(seen).toHaveLength(1);
      expect(seen[0]!.requestLine).toBe(`OPTIONS ${PREDICT}?a=%2F HTTP/1.1`);
      // The client's Host where and as it sent it, its other lines in order and case, and only the
      // gateway's usual forwarding headers besides (docs: "What passes through").
      const lines = seen[0]!.headers;
      expect(lines[0]).toEqual(['Host', 'gw.example']);
      const added = new Set(['connection', 'x-envoy-original-path', 'x-forwarded-for', 'x-forwarded-proto', 'x-request-id']);
      expect(lines.slice(1).filter(([k]) => !added.has(k.toLowerCase()))).toEqual(sent);
      expect(
        lines
          .slice(1)
          .filter(([k]) => added.has(k.toLowerCase()))
          .map(([k]) => k.toLowerCase())
          .sort(),
      ).toEqual([...added].sort());
      expect(seen[0]!.body.length).toBe(0);
      expect(r.status).toBe(200);
      expect(corsLines(r.headers)).toEqual([]);
      expect(r.body.toString()).toBe('{"ok":true}');
    });

    it("without an Origin header nothing is added, and the model's own CORS headers pass as they are", async () => {
      const r = await send({
        target: `/seldon/models/web${PREDICT}`,
        headers: [
          ['x-upstream-cors', '1'],
          ['x-case', 'no-origin'],
        ],
        body: Buffer.from('{}'),
      });
      expect(r.status).toBe(200);
      expect(corsLines(r.headers)).toEqual(['access-control-allow-origin: *', 'access-control-allow-credentials: false', 'access-control-expose-headers: x-model', 'vary: Accept-Encoding']);
      expect(r.headers.find(([k]) => k === 'access-control-allow-credentials')).toBeDefined(); // the model's case kept
    });

    it('an origin the policy does not allow: nothing added, nothing removed', async () => {
      const r = await send({
        target: `/seldon/models/web${PREDICT}`,
        headers: [
          ['Origin', 'https://evil.example'],
          ['x-upstream-cors', '1'],
        ],
        body: Buffer.from('{}'),
      });
      expect(corsLines(r.headers)).toEqual(['access-control-allow-origin: *', 'access-control-allow-credentials: false', 'access-control-expose-headers: x-model', 'vary: Accept-Encoding']);
    });

    it('hostile Origin values: two Origin lines or one with a path match nothing; an 8 KB subdomain is just a subdomain', async () => {
      const two = await send({
        target: `/seldon/models/web${PREDICT}`,
        headers: [
          ['Origin', APP],
          ['Origin', 'https://evil.example'],
          ['x-case', 'h-1'],
        ],
        body: Buffer.from('{}'),
      });
      expect(two.status).toBe(200);
      expect(corsLines(two.headers)).toEqual([]);
      const huge = await send(preflight(`/seldon/models/web${PREDICT}`, `https://${'a'.repeat(8000)}.example.org`, 'POST', undefined, 'h-2'));
      // A subdomain of example.org it is (the pattern allows any labels): answered, echoed.
      expect(huge.status).toBe(200);
      expect(model.byCase('h-2')).toHaveLength(0);
      const path = await send(preflight(`/seldon/models/web${PREDICT}`, `${APP}/x`, 'POST', undefined, 'h-3'));
      expect(model.byCase('h-3')).toHaveLength(1);
      expect(corsLines(path.headers)).toEqual([]);
    });

    it('a preflight with a body is answered, the body discarded, and the connection serves the next request', async () => {
      const x = await connectRaw(gw.port);
      try {
        const pf = preflight(`/seldon/models/web${PREDICT}`, APP, 'POST', undefined, 'body-1');
        await writeRequest(x, { ...pf, headers: [['Host', 'gw'], ...pf.headers], body: Buffer.alloc(200_000, 0x61) });
        const first = await readHttpResponse(x.reader, { method: 'OPTIONS', timeoutMs: 5000 });
        expect(first?.status).toBe(200);
        expect(headerValue(first!.headers, 'access-control-allow-origin')).toBe(APP);
        await writeRequest(x, {
          target: `/seldon/models/web${PREDICT}`,
          headers: [
            ['Host', 'gw'],
            ['x-case', 'body-2'],
          ],
          body: Buffer.from('{"next":1}'),
        });
        const second = await readHttpResponse(x.reader, { timeoutMs: 5000 });
        expect(second?.status).toBe(200);
        expect(second!.body.toString()).toBe('{"ok":true}');
        expect(model.byCase('body-1')).toHaveLength(0);
        expect(model.byCase('body-2').map((q) => q.body.toString())).toEqual(['{"next":1}']);
      } finally {
        x.socket.destroy();
      }
    });
  });

  describe('answers to allowed origins', () => {
    it("the policy's headers replace the model's; Vary gets Origin beside the model's; the request reaches the model as sent", async () => {
      const r = await send({
        target: `/seldon/models/web${PREDICT}`,
        headers: [
          ['Origin', APP],
          ['x-upstream-cors', '1'],
          ['Content-Type', 'application/json'],
          ['x-case', 'simple-1'],
        ],
        body: Buffer.from('{"data":1}'),
      });
      expect(r.status).toBe(200);
      expect(corsLines(r.headers)).toEqual([
        'vary: Accept-Encoding',
        `access-control-allow-origin: ${APP}`,
        'access-control-allow-credentials: true',
        'access-control-expose-headers: x-upstream, x-seldon-predictor',
        'vary: Origin',
      ]);
      expect(headerValues(r.headers, 'access-control-allow-origin')).toHaveLength(1);
      expect(r.body.toString()).toBe('{"ok":true}');
      const seen: RecordedRequest = model.byCase('simple-1')[0]!;
      expect(headerValue(seen.headers, 'origin')).toBe(APP);
      expect(seen.body.toString()).toBe('{"data":1}');
    });

    it('a Vary that already names Origin is not repeated; an Origin in capitals is allowed and echoed as sent', async () => {
      const r = await send({
        method: 'GET',
        target: `/seldon/models/web/health/status`,
        headers: [
          ['Origin', 'HTTPS://APP.EXAMPLE.COM'],
          ['x-vary-origin', '1'],
        ],
      });
      expect(corsLines(r.headers)).toEqual([
        'vary: Accept, origin',
        'access-control-allow-origin: HTTPS://APP.EXAMPLE.COM',
        'access-control-allow-credentials: true',
        'access-control-expose-headers: x-upstream, x-seldon-predictor',
      ]);
    });

    it('"*" without credentials: Access-Control-Allow-Origin is the Origin, as Envoy answers', async () => {
      const r = await send({
        method: 'GET',
        target: `/seldon/models/open/x`,
        headers: [
          ['Origin', 'https://any.test'],
          ['x-upstream-cors', '1'],
        ],
      });
      expect(corsLines(r.headers)).toEqual(['vary: Accept-Encoding', 'access-control-allow-origin: https://any.test', 'vary: Origin']);
    });

    it("the gateway's own errors carry the headers: 503 connect failure, 429 rate limit", async () => {
      const down = await send({ target: `/seldon/models/down${PREDICT}`, headers: [['Origin', APP]], body: Buffer.from('{}') });
      expect(down.status).toBe(503);
      expect(JSON.parse(down.body.toString()).status.reason).toBe('UPSTREAM_CONNECT_FAILURE');
      expect(corsLines(down.headers)).toEqual([`access-control-allow-origin: ${APP}`, 'access-control-allow-credentials: true', 'vary: Origin']);
      const first = await send({ target: `/seldon/models/limited${PREDICT}`, headers: [['Origin', APP]], body: Buffer.from('{}') });
      expect(first.status).toBe(200);
      const second = await send({ target: `/seldon/models/limited${PREDICT}`, headers: [['Origin', APP]], body: Buffer.from('{}') });
      expect(second.status).toBe(429);
      expect(headerValue(second.headers, 'retry-after')).toMatch(/^\d+$/);
      expect(corsLines(second.headers)).toEqual([`access-control-allow-origin: ${APP}`, 'vary: Origin']);
      // A preflight is never rate limited: it is answered before the gate.
      expect((await send(preflight(`/seldon/models/limited${PREDICT}`, APP))).status).toBe(200);
      // No Origin, no CORS headers on the error either.
      const plainErr = await send({ target: `/seldon/models/down${PREDICT}`, headers: [], body: Buffer.from('{}') });
      expect(plainErr.status).toBe(503);
      expect(corsLines(plainErr.headers)).toEqual([]);
    });

    it('no route (404) has no policy and no CORS headers', async () => {
      const r = await send(preflight('/seldon/models/nothing/x', APP));
      expect(r.status).toBe(404);
      expect(corsLines(r.headers)).toEqual([]);
    });
  });

  describe('Mapping cors and the annotation', () => {
    it("a Mapping's own cors wins on its prefix; a Mapping without one takes seldon.io/gateway-cors", async () => {
      const own = await send(preflight('/seldon/models/mapped/own/x', 'http://localhost:3000', 'POST', undefined, 'm-1'));
      expect(corsLines(own.headers)).toEqual(['access-control-allow-origin: http://localhost:3000', 'access-control-allow-methods: POST', 'access-control-max-age: 86400', 'vary: Origin']);
      expect(model.byCase('m-1')).toHaveLength(0);
      // The annotation's origin is not allowed on the Mapping that has its own: the preflight reaches the model.
      await send(preflight('/seldon/models/mapped/own/x', APP, 'POST', undefined, 'm-2'));
      expect(model.byCase('m-2')).toHaveLength(1);
      const inh = await send(preflight('/seldon/models/mapped/inh/x', APP, 'POST', undefined, 'm-3'));
      expect(corsLines(inh.headers)).toEqual([`access-control-allow-origin: ${APP}`, 'vary: Origin']);
      expect(model.byCase('m-3')).toHaveLength(0);
    });

    it('a malformed seldon.io/gateway-cors rejects that deployment alone, with the reason in /routes', async () => {
      const routes = (await (await request(`${gw.adminUrl}/routes`)).body.json()) as {
        deployments: { name: string; state: string; reasons: string[]; routes: { kind: string; members: { cors?: unknown }[] }[] }[];
      };
      const bad = routes.deployments.find((d) => d.name === 'bad')!;
      expect(bad.state).toBe('rejected');
      expect(bad.reasons.join('\n')).toMatch(/seldon\.io\/gateway-cors: origins: "https:\/\/app\.example\.com\/" is not an origin .*no path/);
      expect((await send(preflight(`/seldon/models/bad${PREDICT}`, APP))).status).toBe(404);
      expect((await send({ target: `/seldon/models/bad${PREDICT}`, headers: [], body: Buffer.from('{}') })).status).toBe(404);
      // Everyone else routes, and /routes shows their policies.
      expect((await send({ target: `/seldon/models/plain${PREDICT}`, headers: [], body: Buffer.from('{}') })).status).toBe(200);
      const web = routes.deployments.find((d) => d.name === 'web')!;
      expect(web.state).toBe('accepted');
      expect(web.routes.find((r) => r.kind === 'rest')!.members[0]!.cors).toEqual({
        origins: [APP, 'https://*.example.org'],
        methods: ['POST', 'GET'],
        headers: ['content-type', 'x-token'],
        exposedHeaders: ['x-upstream', 'x-seldon-predictor'],
        credentials: true,
        maxAge: '600',
      });
      expect(web.routes.find((r) => r.kind === 'grpc')!.members[0]!.cors).toBeUndefined();
    });

    it('a fixed annotation is live at once; removing it turns CORS off and OPTIONS reaches the model again', async () => {
      await gw.write('bad.yaml', sdep('bad', 'models', { predictors: [{ name: 'main' }] }, { 'seldon.io/gateway-cors': `{"origins": ["${APP}"]}` }));
      expect((await send(preflight(`/seldon/models/bad${PREDICT}`, APP, 'POST', undefined, 'fix-1'))).status).toBe(200);
      expect(model.byCase('fix-1')).toHaveLength(0);
      await gw.write('bad.yaml', sdep('bad', 'models', { predictors: [{ name: 'main' }] }));
      await send(preflight(`/seldon/models/bad${PREDICT}`, APP, 'POST', undefined, 'fix-2'));
      expect(model.byCase('fix-2')).toHaveLength(1);
    });
  });
});

describe('CORS through the CLI with workers', () => {
  let model: RecordingUpstream;
  let cli: CliGateway;
  let dir: string;
  beforeAll(async () => {
    model = await startRecordingUpstream({ name: 'model' });
    dir = mkdtempSync(join(tmpdir(), 'sgw-cors-'));
    writeFileSync(join(dir, 'web.yaml'), sdep('web', 'models', { predictors: [{ name: 'main' }] }, { 'seldon.io/gateway-cors': 'origins: https://app.example.com\ncredentials: true\nmax_age: 60' }));
    cli = await startCli(['--manifests', dir, '--workers', '2', '--resolve', `web-main.models:8000=127.0.0.1:${model.port}`]);
  });
  afterAll(async () => {
    await cli?.stop();
    await model?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('every worker answers preflights and adds the headers (each compiles the policy itself)', async () => {
    for (let i = 0; i < 6; i++) {
      const pf = await request(`http://127.0.0.1:${cli.port}/seldon/models/web${PREDICT}`, {
        method: 'OPTIONS',
        headers: { origin: APP, 'access-control-request-method': 'POST', connection: 'close' },
      });
      await pf.body.dump();
      expect(pf.statusCode).toBe(200);
      expect(pf.headers['access-control-allow-origin']).toBe(APP);
      expect(pf.headers['access-control-max-age']).toBe('60');
      const r = await request(`http://127.0.0.1:${cli.port}/seldon/models/web${PREDICT}`, {
        method: 'POST',
        headers: { origin: APP, 'content-type': 'application/json', connection: 'close' },
        body: '{}',
      });
      await r.body.dump();
      expect(r.statusCode).toBe(200);
      expect(r.headers['access-control-allow-credentials']).toBe('true');
    }
    expect(model.requests.filter((q) => q.method === 'OPTIONS')).toHaveLength(0);
    expect(model.requests.filter((q) => q.method === 'POST')).toHaveLength(6);
  });
});
