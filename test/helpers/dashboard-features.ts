/**
 * Two real gateways with traffic that drives each feature the Grafana dashboard shows, for the test
 * that runs the dashboard's queries against a real Prometheus scraping them:
 *
 * - `edge`: manifests, REST and gRPC models, with Redis (OAuth, rate limits, the steering store,
 *   payload logging's streams), payload logging to two cloudevents sinks, JWT providers, external
 *   auth, tracing to an OTLP collector, TLS beside cleartext on the public port, shadow comparison;
 *   deployments with retries, a timeout, a breaker, a shadow, a canary split, a rollout, a bandit,
 *   flow control, a rate limit, OAuth, JWT, external auth, and one rejected.
 * - `kube`: a fake Kubernetes API as its source, one deployment whose Service has two endpoints
 *   (one answering 503): ready endpoints, ejections, a relist after 410 Gone; and one hedged after
 *   10 ms whose two endpoints answer a request's first arrival after 100 ms and its hedge at once.
 *
 * Each of `features` drives one feature (`FEATURE_NAMES`, the names the dashboard test's table
 * uses); a driver whose state must be seen while it lasts (requests held in flight, a sink that is
 * down, an endpoint ejected) holds it until Prometheus has scraped it (`Watch.seen`).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { pino } from 'pino';
import { request } from 'undici';
import { parseConfig } from '../../gateway/config/parse.js';
import { startGateway, type Gateway } from '../../gateway/process/serve.js';
import { endpointSlice, seldonDeployment, startFakeKubeApi, writeKubeconfig, type FakeKubeApi } from '../fixtures/fake-kube-api.js';
import { grpcClients, startGrpcBackend, type GrpcBackend, type GrpcClients } from '../fixtures/grpc-backend.js';
import { startHttpBackend, type HttpBackend } from '../fixtures/http-backend.js';
import { signingKey, startIdentityProvider, type IdentityProvider } from '../fixtures/identity-provider.js';
import { banditModel } from './bandit.js';
import { poll } from './cli.js';
import { startEventReceiver, type EventReceiver } from './event-receiver.js';
import { replaceFile, sdep, startTestGateway, type TestGateway } from './gateway.js';
import { md, predict as grpcPredict } from './grpc.js';
import { raw, rawRequest } from './net.js';
import { basic, bearer, fetchToken } from './oauth.js';
import { post, scrape } from './observability.js';
import { startOtlpCollector, type OtlpCollector } from './otlp-collector.js';
import type { Scrape } from './prometheus.js';
import { startRedis, type TestRedis } from './redis.js';
import { certDir, makeCa, type Ca } from './tls-certs.js';

export const NS = 'models';
const PREDICT = '/api/v1.0/predictions';

/** What a driver asks of the Prometheus scraping the gateways: `expr` (a condition) holds now, or once within a deadline. */
export interface Watch {
  has(expr: string): Promise<boolean>;
  seen(expr: string, what: string): Promise<void>;
}

/**
 * One feature's traffic. Called twice, `round` 0 then 1, with a scrape of both gateways between:
 * a counter's series appears with its first count, and `rate()` shows only what it counts after
 * Prometheus has seen it, so each round counts again.
 */
export type Driver = (prometheus: Watch, round: number) => Promise<unknown>;

/** A model that holds the requests it gets while held (`hold()` returns the release): requests stay in flight as long as a test needs. */
interface GateModel extends HttpBackend {
  hold(): () => void;
}

async function gateModel(): Promise<GateModel> {
  let opened: Promise<void> = Promise.resolve();
  const m = await startHttpBackend({
    name: 'gate',
    handler: async (_req, res) => {
      await opened;
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"data":{"ndarray":[[1]]}}');
    },
  });
  const hold = (): (() => void) => {
    let release!: () => void;
    opened = new Promise<void>((r) => (release = r));
    return release;
  };
  return Object.assign(m, { hold });
}

/** A shadow that agrees with the primary (the same answer), disagrees, answers 503 or resets, in turn. */
const shadowModel = (): Promise<HttpBackend> => {
  let n = 0;
  return startHttpBackend({
    name: 'shadow',
    handler: (req, res) => {
      const turn = n++ % 4;
      if (turn === 3) return void req.socket.destroy();
      res.writeHead(turn === 2 ? 503 : 200, { 'content-type': 'application/json' });
      // The primary (the default stand-in) answers {"data":{"ndarray":[[1]]},"meta":…}; meta is not compared.
      res.end(JSON.stringify({ data: { ndarray: [[turn === 1 ? 2 : 1]] } }));
    },
  });
};

/** The external auth service: `Authorization: Bearer letmein` is allowed, anything else denied 403. */
async function authService(): Promise<{ port: number; close(): Promise<void> }> {
  const server = http.createServer((req, res) => res.writeHead(req.headers.authorization === 'Bearer letmein' ? 200 : 403).end());
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise<void>((r) => (server.closeAllConnections(), server.close(() => r()))),
  };
}

const ROLLOUT = 'canary: v2\nsteps: [20, 40, 60, 100]\ninterval: 1s\nminRequests: 20\nmaxErrorRate: "+50%"\nmaxLatencyShift: 300%';
const SINKS = (refusedRetry: string) => `- name: audit\n  type: cloudevents\n  url: AUDIT\n  retryMin: 20ms\n- name: strict\n  type: cloudevents\n  url: STRICT\n  retryMin: ${refusedRetry}\n`;

const manifests = (): Record<string, string> => ({
  'iris.yaml': sdep('iris', NS, { predictors: [{ name: 'default' }] }, { 'seldon.io/ambassador-retries': '2', 'seldon.io/rest-timeout': '300', 'seldon.io/gateway-log': 'sinks: [audit, strict]' }),
  'income.yaml': sdep('income', NS, {
    predictors: [
      { name: 'main', traffic: 75 },
      { name: 'canary', traffic: 25 },
    ],
  }),
  'churn.yaml': sdep('churn', NS, { predictors: [{ name: 'main' }, { name: 'shadow', shadow: true }] }),
  'reviews.yaml': sdep('reviews', NS, { predictors: [{ name: 'main' }, { name: 'v2' }] }, { 'seldon.io/gateway-rollout': ROLLOUT }),
  'rec.yaml': sdep('rec', NS, { predictors: [{ name: 'a' }, { name: 'b' }] }, { 'seldon.io/gateway-bandit': 'arms: [a, b]\nhalfLife: none' }),
  'narrow.yaml': sdep('narrow', NS, { predictors: [{ name: 'main' }] }, { 'seldon.io/ambassador-circuit-breakers-max-requests': '1' }),
  'queued.yaml': sdep('queued', NS, { predictors: [{ name: 'main' }] }, { 'seldon.io/gateway-flow': '{concurrency: 1, queue: 1, queueTimeout: 60s}' }),
  'limited.yaml': sdep('limited', NS, { predictors: [{ name: 'main' }] }, { 'seldon.io/gateway-rate-limit': '2/m' }),
  'zipped.yaml': sdep('zipped', NS, { predictors: [{ name: 'main' }] }, { 'seldon.io/gateway-compression': '{algorithms: [gzip], decodeRequests: true}' }),
  'secure.yaml': sdep('secure', NS, { predictors: [{ name: 'main' }], oauth_key: 'key', oauth_secret: 'secret' }, { 'seldon.io/gateway-auth': 'oauth' }),
  'signed.yaml': sdep('signed', NS, { predictors: [{ name: 'main' }] }, { 'seldon.io/gateway-jwt': JSON.stringify({ providers: ['corp'] }) }),
  'guarded.yaml': sdep('guarded', NS, { predictors: [{ name: 'main' }] }, { 'seldon.io/gateway-auth': 'external' }),
  'g.yaml': sdep('g', NS, { predictors: [{ name: 'main', graph: { name: 'grpc-model' } }] }),
  'broken.yaml': sdep('broken', NS, { predictors: [{ name: 'main' }] }, { 'seldon.io/gateway-auth': 'bogus' }),
});

export interface FeatureGateways {
  readonly edge: TestGateway;
  readonly kube: Gateway;
  readonly scrapes: readonly Scrape[];
  /** Each feature's driver, by the name the dashboard test's table gives it. */
  readonly features: Readonly<Record<Feature, Driver>>;
  stop(): Promise<void>;
}

export const FEATURE_NAMES = [
  'a running gateway',
  'a SeldonDeployment added',
  'REST traffic with model errors',
  'gRPC traffic with UNAVAILABLE answers',
  'a canary split',
  'a rollout',
  'a bandit with feedback',
  'requests no route takes',
  'retries of 503 answers',
  'a circuit breaker refusing',
  'route timeouts',
  'a shadow answering, failing and disagreeing (--shadow-compare)',
  'OAuth tokens, refusals and throttled logins',
  'a rate limit',
  'compressed answers and decoded requests',
  'malformed and handed-off HTTP/1.1 requests',
  'TLS handshakes, a refused certificate and a certificate reload',
  'tracing to an OTLP collector',
  'payload logging to a sink that is down, then up, and one that refuses',
  'external auth allowing and denying',
  'JWT checks and a providers file reload',
  'flow control holding, queueing and refusing',
  'endpoint routing on Kubernetes: ready endpoints, an ejection, a relist',
  'hedged requests on Kubernetes: each first attempt slow, its hedge quick',
  'Redis going away: local rate limits, OAuth revocations waiting, events held in memory',
] as const;
export type Feature = (typeof FEATURE_NAMES)[number];

export async function startFeatureGateways(): Promise<FeatureGateways> {
  const dir = mkdtempSync(join(tmpdir(), 'sgw-dashboard-'));
  const closers: (() => Promise<unknown> | void)[] = [() => rmSync(dir, { recursive: true, force: true })];
  const stop = async (): Promise<void> => {
    for (const c of closers.reverse()) await c();
  };
  try {
    const plain = await startHttpBackend({ name: 'plain' });
    const gate = await gateModel();
    const shadow = await shadowModel();
    // The rollout's canary fails 1 request in 10, within what its rollout allows: its error check has a rate to show.
    let canaryAnswers = 0;
    const canary = await startHttpBackend({
      name: 'canary',
      handler: (_req, res) => void res.writeHead(canaryAnswers++ % 10 === 0 ? 500 : 200, { 'content-type': 'application/json' }).end('{"data":{"ndarray":[[1]]}}'),
    });
    const arms = { a: await banditModel('a'), b: await banditModel('b') };
    const grpcModel: GrpcBackend = await startGrpcBackend({ name: 'g-main' });
    closers.push(
      () => plain.close(),
      () => gate.close(),
      () => shadow.close(),
      () => canary.close(),
      () => arms.a.close(),
      () => arms.b.close(),
      () => grpcModel.close(),
    );
    const redis: TestRedis = await startRedis();
    closers.push(() => redis.stop());
    const audit: EventReceiver = await startEventReceiver('unavailable');
    const strict: EventReceiver = await startEventReceiver('refuse');
    closers.push(
      () => audit.close(),
      () => strict.close(),
    );
    const idp: IdentityProvider = await startIdentityProvider();
    idp.published = [await signingKey('k1')];
    const auth = await authService();
    const collector: OtlpCollector = await startOtlpCollector();
    closers.push(
      () => idp.close(),
      () => auth.close(),
      () => collector.close(),
    );
    const certs = certDir();
    closers.push(() => rmSync(certs, { recursive: true, force: true }));
    const ca: Ca = makeCa(certs);
    const writeCert = (serial: number): void => {
      const pem = ca.issue({ cn: 'gateway.test', san: ['localhost', 'IP:127.0.0.1'], serial });
      replaceFile(join(certs, 'tls.key'), pem.key);
      replaceFile(join(certs, 'tls.crt'), pem.cert);
    };
    writeCert(2);
    const sinks = join(dir, 'sinks.yaml');
    const sinksText = (retry: string): string => SINKS(retry).replace('AUDIT', audit.url).replace('STRICT', strict.url);
    writeFileSync(sinks, sinksText('10ms'));
    const providers = join(dir, 'providers.yaml');
    const providersText = (skew: string): string => `- name: corp\n  issuer: ${idp.issuer}\n  jwksUri: ${idp.jwksUri}\n  audiences: [seldon]\n  clockSkew: ${skew}\n`;
    writeFileSync(providers, providersText('30s'));

    const resolve: Record<string, number> = {};
    for (const s of [
      'iris-default',
      'income-main',
      'income-canary',
      'churn-main',
      'reviews-main',
      'narrow-main',
      'limited-main',
      'zipped-main',
      'secure-main',
      'signed-main',
      'guarded-main',
      'broken-main',
    ])
      resolve[`${s}.${NS}:8000`] = plain.port;
    resolve[`churn-shadow.${NS}:8000`] = shadow.port;
    resolve[`reviews-v2.${NS}:8000`] = canary.port;
    resolve[`queued-main.${NS}:8000`] = gate.port;
    resolve[`rec-a.${NS}:8000`] = arms.a.port;
    resolve[`rec-b.${NS}:8000`] = arms.b.port;
    resolve[`g-main.${NS}:5001`] = grpcModel.port;
    const edge = await startTestGateway({
      manifests: manifests(),
      resolve,
      args: [
        ...['--redis-url', redis.url, '--log-sinks', sinks, '--jwt-providers', providers],
        ...['--ext-auth-service', `http://127.0.0.1:${auth.port}`, '--ext-auth-default', 'off'],
        ...['--otlp-endpoint', collector.url, '--trace-sample', '1', '--shadow-compare'],
        ...['--tls-cert', join(certs, 'tls.crt'), '--tls-key', join(certs, 'tls.key'), '--tls-allow-cleartext'],
      ],
    });
    closers.push(() => edge.stop());
    const grpc: GrpcClients = grpcClients(`127.0.0.1:${edge.port}`);
    closers.push(() => grpc.close());

    // The Kubernetes gateway: iris's Service has two endpoints, the second answering every request 503.
    const api: FakeKubeApi = await startFakeKubeApi();
    closers.push(() => api.close());
    const model = await startHttpBackend({ name: 'kube-model' });
    const failing = await startHttpBackend({ name: 'kube-failing', host: '127.0.0.2', port: model.port, handler: (_req, res) => void res.writeHead(503).end() });
    closers.push(
      () => model.close(),
      () => failing.close(),
    );
    // The hedged deployment's two endpoints (127.0.0.3, 127.0.0.4) answer a request's first arrival after 100 ms and
    // its second (the hedge: the same x-request-id) at once: every request is hedged and its hedge wins, whichever
    // endpoint latency-aware picking prefers.
    const arrived = new Set<string>();
    const firstSlow: http.RequestListener = (req, res) => {
      const id = String(req.headers['x-request-id']);
      const first = !arrived.has(id);
      arrived.add(id);
      req.resume();
      setTimeout(() => res.writeHead(200, { 'content-type': 'application/json' }).end('{"data":{"ndarray":[[1]]}}'), first ? 100 : 0);
    };
    const slow = await startHttpBackend({ name: 'kube-hedged-a', host: '127.0.0.3', handler: firstSlow });
    const quick = await startHttpBackend({ name: 'kube-hedged-b', host: '127.0.0.4', port: slow.port, handler: firstSlow });
    closers.push(
      () => slow.close(),
      () => quick.close(),
    );
    api.upsert('seldondeployments', seldonDeployment('iris', NS));
    api.upsert('seldondeployments', seldonDeployment('hedged', NS, { predictors: [{ name: 'main' }] }, { 'seldon.io/gateway-hedge': 'after: 10ms\nbudget: 100%' }));
    api.upsert('endpointslices', endpointSlice('hedged-main', NS, 'hedged-main-1', [{ ip: '127.0.0.3' }, { ip: '127.0.0.4' }], [{ name: 'http', port: slow.port }]));
    api.upsert('endpointslices', endpointSlice('iris-default', NS, 'iris-default-1', [{ ip: '127.0.0.1' }, { ip: '127.0.0.2' }], [{ name: 'http', port: model.port }]));
    const kubeConfig = parseConfig(
      'serve',
      [
        ...['--kubernetes', '--kubeconfig', writeKubeconfig(dir, api), '--port', '0', '--admin-port', '0', '--host', '127.0.0.1'],
        ...['--workers', '1', '--access-log', 'off', '--redis-url', redis.url],
        // The failing endpoint is out for 2 s, then 4 s…: ejected again in each round.
        ...['--outlier-ejection-time', '2s'],
      ],
      {},
    );
    const kube = await startGateway(kubeConfig, { logger: pino({ level: 'silent' }) });
    closers.push(() => kube.close());
    await poll(
      'the Kubernetes gateway ready',
      async () => kube.ready(),
      (r) => r,
      30_000,
    );

    const url = (dep: string, suffix = ''): string => `${edge.url}/seldon/${NS}/${dep}${PREDICT}${suffix}`;
    const times = async (n: number, f: (i: number) => Promise<unknown>): Promise<void> => {
      for (let i = 0; i < n; i++) await f(i);
    };
    const steer = async (): Promise<void> => {
      for (let i = 0; i < 20; i++) {
        await post(url('reviews'));
        const p = await post(url('rec'));
        const answer = JSON.parse(p.text) as { data: { names: string[] } };
        const feedback = JSON.stringify({ request: {}, response: answer, reward: answer.data.names[0] === 'b' ? 1 : 0 });
        await post(`${edge.url}/seldon/${NS}/rec/api/v1.0/feedback`, {}, feedback);
      }
    };
    const https = (trusted: string | undefined): Promise<number> =>
      new Promise((resolve) => {
        const options = { host: '127.0.0.1', port: edge.port, servername: 'localhost', path: `/seldon/${NS}/iris${PREDICT}`, method: 'POST', headers: { 'content-type': 'application/json' } };
        // A fresh handshake each time (no agent, no session to resume): one series of the handshakes counter.
        const req = httpsRequest({ ...options, agent: false, ...(trusted ? { ca: trusted } : {}) }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        });
        req.on('error', () => resolve(0));
        req.end('{"data":{"ndarray":[[1]]}}');
      });
    const steering = async (): Promise<{ rollout?: { step: number }; bandit?: { arms: Record<string, { rewards: number }> } }[]> => {
      const routes = (await (await request(`${edge.adminUrl}/routes`)).body.json()) as {
        deployments: { steering?: { rollout?: { step: number }; bandit?: { arms: Record<string, { rewards: number }> } } }[];
      };
      return routes.deployments.flatMap((d) => (d.steering ? [d.steering] : []));
    };

    const features: Record<Feature, Driver> = {
      'a running gateway': async () => undefined,
      'a SeldonDeployment added': (_p, round) => edge.write(`late-${round}.yaml`, sdep(`late-${round}`, NS, { predictors: [{ name: 'main' }] })),
      'REST traffic with model errors': () => times(20, (i) => post(url('iris', i % 5 === 0 ? '?status=500' : ''))),
      'gRPC traffic with UNAVAILABLE answers': () => times(10, (i) => grpcPredict(grpc, { strData: i % 2 ? 'fail:14:down' : 'ok' }, md({ seldon: 'g', namespace: NS }))),
      'a canary split': () => times(20, () => post(url('income'))),
      // To its second step, then its third (of four): a step change in each round, still rolling out.
      'a rollout': (_p, round) =>
        poll(
          `the rollout at step ${round + 1}`,
          async () => (await steer(), (await steering()).find((s) => s.rollout)?.rollout?.step ?? 0),
          (step) => step >= round + 1,
          60_000,
        ),
      'a bandit with feedback': (_p, round) =>
        poll(
          'the bandit rewarded',
          async () => (await steer(), Object.values((await steering()).find((s) => s.bandit)?.bandit?.arms ?? {})),
          (a) => a.some((x) => x.rewards > round * 20),
          60_000,
        ),
      'requests no route takes': () => times(3, () => post(`${edge.url}/seldon/${NS}/nowhere${PREDICT}`)),
      'retries of 503 answers': () => times(3, () => post(url('iris', '?status=503'))),
      'a circuit breaker refusing': async () => {
        await Promise.all([post(url('narrow', '?sleep=300')), post(url('narrow', '?sleep=300')), post(url('narrow', '?sleep=300'))]);
      },
      'route timeouts': () => times(2, () => post(url('iris', '?sleep=1000'))),
      'a shadow answering, failing and disagreeing (--shadow-compare)': () => times(12, () => post(url('churn'))),
      'OAuth tokens, refusals and throttled logins': async () => {
        const token = await fetchToken(edge.url, `key${NS}`, 'secret');
        await post(`${edge.url}/api/v0.1/predictions`, bearer(token));
        await post(url('secure'));
        await post(url('secure'), bearer('not-a-token'));
        // Failed logins from one address until the throttle answers 429 (it stays spent for the test).
        await times(12, () =>
          request(`${edge.url}/oauth/token`, {
            method: 'POST',
            headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(`key${NS}`, 'wrong') },
            body: 'grant_type=client_credentials',
          }).then((r) => r.body.dump()),
        );
      },
      'a rate limit': () => times(4, () => post(url('limited'))),
      // The model echoes the decoded request: a JSON answer the gateway compresses for the client.
      'compressed answers and decoded requests': () =>
        times(4, () =>
          post(url('zipped', '?echo=1'), { 'content-encoding': 'gzip', 'accept-encoding': 'gzip' }, gzipSync(JSON.stringify({ data: { ndarray: [Array.from({ length: 200 }, (_, i) => i)] } }))),
        ),
      'malformed and handed-off HTTP/1.1 requests': async () => {
        await raw(edge.port, rawRequest(['GET / HTTP/1.1', 'Host: x', 'Bad Header Line']));
        await (await request(url('iris'), { method: 'HEAD' })).body.dump();
      },
      'TLS handshakes, a refused certificate and a certificate reload': async (p, round) => {
        await https(ca.cert);
        // A client that does not trust the gateway's CA ends the handshake.
        await https(undefined);
        writeCert(3 + round);
        await p.seen(`sum(seldon_gateway_tls_certificate_reloads_total) >= ${round + 1}`, 'the certificate reloaded');
      },
      'tracing to an OTLP collector': (_p, round) =>
        poll(
          'spans at the collector',
          async () => (await post(url('income')), collector.spans.length),
          (n) => n > round,
          30_000,
        ),
      'payload logging to a sink that is down, then up, and one that refuses': async (p, round) => {
        await times(3, () => post(url('iris')));
        if (round === 0) {
          await p.seen('max(seldon_gateway_log_backlog) > 0 and max(seldon_gateway_log_pending) > 0 and max(seldon_gateway_log_oldest_seconds) > 0', "the down sink's backlog");
          audit.mode = 'ok';
        }
        replaceFile(sinks, sinksText(`${20 + round}ms`));
        await p.seen(`sum(seldon_gateway_log_sinks_reloads_total) >= ${round + 1}`, 'the sinks file reloaded');
        await p.seen('sum(seldon_gateway_log_drops_total) > 0', 'events the strict sink refused');
      },
      'external auth allowing and denying': async () => {
        await post(url('guarded'), bearer('letmein'));
        await post(url('guarded'));
      },
      'JWT checks and a providers file reload': async (p, round) => {
        await post(url('signed'), bearer(await idp.token({ aud: 'seldon', sub: 'alice' })));
        await post(url('signed'));
        replaceFile(providers, providersText(`${20 + round}s`));
        await p.seen(`sum(seldon_gateway_jwt_provider_reloads_total) >= ${round + 1}`, 'the providers file reloaded');
      },
      'flow control holding, queueing and refusing': async (p) => {
        const release = gate.hold();
        const held = [post(url('queued'), { 'x-seldon-priority': 'sheddable' }), post(url('queued'), { 'x-seldon-priority': 'sheddable' })];
        await p.seen('max(seldon_gateway_flow_inflight) > 0 and max(seldon_gateway_flow_queued) > 0', 'a request in flight and one queued');
        // The queue is full: the next is refused at once.
        await post(url('queued'), { 'x-seldon-priority': 'sheddable' });
        release();
        await Promise.all(held);
      },
      'endpoint routing on Kubernetes: ready endpoints, an ejection, a relist': async (p, round) => {
        const kubeUrl = `http://127.0.0.1:${kube.port}/seldon/${NS}/iris${PREDICT}`;
        // Requests until the failing endpoint is out (again: it is back after its ejection time) and Prometheus saw it out.
        await poll(
          'the failing endpoint ejected, seen by Prometheus',
          async () => (await times(4, () => post(kubeUrl)), await p.has(`max(seldon_gateway_upstream_ejected_endpoints) > 0 and sum(seldon_gateway_upstream_ejections_total) >= ${round + 1}`)),
          (yes) => yes,
          30_000,
        );
        api.compact();
        api.expireWatches();
        await p.seen(`sum(seldon_gateway_source_resyncs_total) >= ${round + 1}`, 'the relist');
      },
      'hedged requests on Kubernetes: each first attempt slow, its hedge quick': async (p) => {
        const hedgedUrl = `http://127.0.0.1:${kube.port}/seldon/${NS}/hedged${PREDICT}`;
        // Each round adds hedges won to what Prometheus has seen, so that the rate shows them.
        const before = (await scrape(`http://127.0.0.1:${kube.adminPort}`)).filter((s) => s.name === 'seldon_gateway_hedges_total' && s.labels.result === 'won').reduce((a, s) => a + s.value, 0);
        await times(6, () => post(hedgedUrl));
        await p.seen(`sum(seldon_gateway_hedges_total{result="won"}) >= ${before + 3}`, 'hedges won this round');
      },
      // Last, and in the last round only: the rollout and the bandit need the store.
      'Redis going away: local rate limits, OAuth revocations waiting, events held in memory': async (p, round) => {
        if (round === 0) return;
        await redis.kill();
        // A changed secret revokes the client's tokens: the store must confirm it, and cannot.
        await edge.write('secure.yaml', sdep('secure', NS, { predictors: [{ name: 'main' }], oauth_key: 'key', oauth_secret: 'other' }, { 'seldon.io/gateway-auth': 'oauth' }));
        await times(2, () => post(url('limited')));
        await times(3, () => post(url('iris')));
        await p.seen('max(seldon_gateway_rate_limit_fallback_active) > 0', 'rate limits decided locally');
        // Counted again once Prometheus has the series.
        await times(2, () => post(url('limited')));
        await p.seen('max(seldon_gateway_oauth_revocations_pending) > 0', 'a revocation waiting');
        await p.seen('sum(seldon_gateway_log_buffer_bytes) > 0', 'events held in memory');
      },
    };
    return {
      edge,
      kube,
      scrapes: [{ target: `127.0.0.1:${edge.adminPort}` }, { target: `127.0.0.1:${kube.adminPort}` }],
      features,
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
