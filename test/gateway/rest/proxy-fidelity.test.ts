/**
 * Proxy fidelity: every REST route kind crossed with every request body shape, through
 * each HTTP/1.1 server (the gateway's lane and Node's, --http1-server). For each
 * combination a raw-socket client sends exact bytes through one shared gateway to recording
 * upstreams (test/fixtures/recording-upstream.ts), and the test checks that
 *   - the upstream got exactly what was sent: method, target after the documented prefix rewrite,
 *     header lines in order and case (except the documented rules, test/helpers/fidelity.ts), the
 *     body bytes (sha256) complete, with allowed framing;
 *   - the client got exactly what the upstream answered: status line with its reason phrase,
 *     header lines, body bytes (except the documented hop-by-hop rules).
 * The shadow kind is checked twice: what the primary received, and the mirror's copy (Host with
 * `-shadow`; no copy over --shadow-max-body). The retry kind's first attempt answers 503; the route
 * retries (seldon.io/ambassador-retries) unless the body is over --retry-buffer.
 * Last, the route kinds once more with every upstream connection gone stale: the request sent a
 * second time on a new connection must reach the upstream as the same bytes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  connectRaw,
  headerValue,
  headerValues,
  readHttpResponse,
  requestBytes,
  sha256,
  startRecordingUpstream,
  writeRequest,
  type Answer,
  type HeaderLine,
  type RawRequestSpec,
  type RecordedRequest,
  type RecordingUpstream,
} from '../../fixtures/recording-upstream.js';
import {
  binaryOfSize,
  comparableClientLines,
  comparableUpstreamLines,
  expectedClientLines,
  expectedHost,
  expectedUpstreamLines,
  foreignConnectionTokens,
  forwardingHeaders,
  framingProblem,
  jsonOfSize,
  routeKinds,
  startRouteKindUpstreams,
  waitForCase,
  type Framing,
} from '../../helpers/fidelity.js';
import { sdep, startTestGateway, type TestGateway } from '../../helpers/gateway.js';
import { metric } from '../../helpers/metrics.js';
import { fetchToken } from '../../helpers/oauth.js';
import { waitUntil } from '../../helpers/wait.js';
import { getText, metricSum, parseMetrics } from '../../helpers/observability.js';

const NS = 'fid';
const PREDICT = '/api/v1.0/predictions';
const DATE = 'Mon, 01 Jan 2024 00:00:00 GMT';
const RETRY_BUFFER = 1024 * 1024; // the default --retry-buffer
const SHADOW_MAX_BODY = 4 * 1024 * 1024; // the default --shadow-max-body

interface Shape {
  name: string;
  framing: Framing;
  body: Buffer;
  contentType: string;
  chunkSize?: number;
  expectContinue?: boolean;
  drip?: { ms: number; pieces: number };
}

const SMALL_JSON = Buffer.from('{"data":{"ndarray":[[5.1,3.5,1.4,0.2]]}}');
const SHAPES: Shape[] = [
  { name: 'no body', framing: 'none', body: Buffer.alloc(0), contentType: 'application/json' },
  { name: 'empty (Content-Length: 0)', framing: 'cl', body: Buffer.alloc(0), contentType: 'application/json' },
  { name: '1 B', framing: 'cl', body: Buffer.from('7'), contentType: 'application/json' },
  { name: '64 KiB', framing: 'cl', body: jsonOfSize(64 * 1024), contentType: 'application/json' },
  { name: '10 MiB', framing: 'cl', body: jsonOfSize(10 * 1024 * 1024), contentType: 'application/json' },
  { name: 'Content-Length JSON', framing: 'cl', body: SMALL_JSON, contentType: 'application/json' },
  { name: 'chunked', framing: 'chunked', body: jsonOfSize(40_000), contentType: 'application/json', chunkSize: 4096 },
  { name: 'Expect: 100-continue', framing: 'cl', body: jsonOfSize(3000), contentType: 'application/json', expectContinue: true },
  { name: 'slow drip', framing: 'cl', body: jsonOfSize(2048), contentType: 'application/json', drip: { ms: 25, pieces: 5 } },
  { name: 'binary bytes', framing: 'cl', body: binaryOfSize(4096), contentType: 'application/octet-stream' },
];

type Kind = 'plain' | 'canary' | 'header route' | 'shadow primary' | 'shadow copy' | 'retry' | 'oauth front end' | 'gate-protected' | 'flow-limited' | 'bandit' | 'explainer' | 'custom Mapping';
const KINDS: Kind[] = ['plain', 'canary', 'header route', 'shadow primary', 'shadow copy', 'retry', 'oauth front end', 'gate-protected', 'flow-limited', 'bandit', 'explainer', 'custom Mapping'];
/** A flow-limited route: one request at a time at its model, a queue in front (seldon.io/gateway-flow). */
const FLOW = 'concurrency: 1\nqueue: 8';
/** The attribution token a bandit route adds to its answers (steer/bandit-edge.ts ARM_HEADER): the one header the client may get beyond the model's. */
const ARM_HEADER = 'seldon-gateway-arm';

/** Request target and upstream target per kind. */
const TARGETS: Record<Kind, { path: string; upstreamPath: string }> = {
  plain: { path: `/seldon/${NS}/plain${PREDICT}?q=1&r=%2F`, upstreamPath: `${PREDICT}?q=1&r=%2F` },
  canary: { path: `/seldon/${NS}/canary${PREDICT}?q=2`, upstreamPath: `${PREDICT}?q=2` },
  'header route': { path: `/seldon/${NS}/plain${PREDICT}?h=1`, upstreamPath: `${PREDICT}?h=1` },
  'shadow primary': { path: `/seldon/${NS}/shadowed${PREDICT}?s=1`, upstreamPath: `${PREDICT}?s=1` },
  'shadow copy': { path: `/seldon/${NS}/shadowed${PREDICT}?s=2`, upstreamPath: `${PREDICT}?s=2` },
  retry: { path: `/seldon/${NS}/retry${PREDICT}`, upstreamPath: PREDICT },
  'oauth front end': { path: `/api/v0.1/predictions?o=1`, upstreamPath: `/api/v0.1/predictions?o=1` },
  'gate-protected': { path: `/seldon/${NS}/gated${PREDICT}`, upstreamPath: PREDICT },
  'flow-limited': { path: `/seldon/${NS}/flowed${PREDICT}?f=1`, upstreamPath: `${PREDICT}?f=1` },
  bandit: { path: `/seldon/${NS}/steered${PREDICT}?b=1`, upstreamPath: `${PREDICT}?b=1` },
  explainer: { path: `/seldon/${NS}/expl-explainer/main/api/v1.0/explain?e=1`, upstreamPath: '/api/v1.0/explain?e=1' },
  'custom Mapping': { path: `/seldon/${NS}/custom-route${PREDICT}?c=1`, upstreamPath: `${PREDICT}?c=1` },
};

const CUSTOM_CONFIG = ['apiVersion: ambassador/v1', 'kind: Mapping', 'name: fid-custom', `prefix: /seldon/${NS}/custom-route/`, `service: cust-svc.${NS}:8000`].join('\n');

describe.each(['gateway', 'node'] as const)('proxy fidelity (--http1-server %s): route kinds x body shapes', (server) => {
  const up: Record<string, RecordingUpstream> = {};
  /** What each upstream answered, per x-case (in order of attempts). */
  const answered = new Map<string, { upstream: string; answer: Answer }[]>();
  let gw: TestGateway;
  let token = '';

  /** The matrix answer: an odd status line, odd-case and repeated headers, a Date (so the gateway
   * adds none), a hop-by-hop Keep-Alive, and a body with every byte value, framed like the request. */
  const answerFor = (name: string, req: RecordedRequest, status = 'HTTP/1.1 201 Created By Model'): Answer => {
    const id = headerValue(req.headers, 'x-case') ?? 'none';
    const body = Buffer.concat([Buffer.from(JSON.stringify({ upstream: name, case: id, received: req.sha256 })), binaryOfSize(300)]);
    const a: Answer = {
      statusLine: status,
      headers: [
        ['Content-Type', 'application/x-model; charset=binary'],
        ['Date', DATE],
        ['X-Upstream', name],
        ['X-Dup', 'a'],
        ['x-dup', 'b'],
        ['X-Odd-CASE', 'MiXeD  value\tinner tab'],
        ['Keep-Alive', 'timeout=30'],
        ['Set-Cookie', 'a=1; Path=/'],
        ['Set-Cookie', 'b=2; Path=/'],
      ],
      body,
      framing: req.chunked ? 'chunked' : 'content-length',
      chunkSize: 100,
    };
    const list = answered.get(id) ?? [];
    list.push({ upstream: name, answer: a });
    answered.set(id, list);
    return a;
  };

  beforeAll(async () => {
    Object.assign(
      up,
      await startRouteKindUpstreams(
        ['plain', 'canaryMain', 'canaryCanary', 'header', 'shadowMain', 'shadowCopy', 'retry', 'oauth', 'gated', 'flowed', 'banditA', 'banditB', 'explainer', 'custom'],
        answerFor,
      ),
    );
    const kinds = routeKinds(NS, up, { key: 'fidkey', secret: 'fidsecret' });
    gw = await startTestGateway({
      manifests: {
        ...kinds.manifests,
        'expl.yaml': sdep('expl', NS, { predictors: [{ name: 'main', explainer: { type: 'AnchorTabular' } }] }),
        'cust.yaml': sdep('cust', NS, { predictors: [{ name: 'main' }] }, { 'seldon.io/ambassador-config': CUSTOM_CONFIG }),
        'flowed.yaml': sdep('flowed', NS, { predictors: [{ name: 'main' }] }, { 'seldon.io/gateway-flow': FLOW }),
        'steered.yaml': sdep('steered', NS, { predictors: [{ name: 'a' }, { name: 'b' }] }, { 'seldon.io/gateway-bandit': 'arms: [a, b]' }),
      },
      resolve: {
        ...kinds.resolve,
        [`flowed-main.${NS}:8000`]: up.flowed!.port,
        [`steered-a.${NS}:8000`]: up.banditA!.port,
        [`steered-b.${NS}:8000`]: up.banditB!.port,
        [`expl-main-explainer.${NS}:9000`]: up.explainer!.port,
        [`cust-svc.${NS}:8000`]: up.custom!.port,
      },
      args: ['--random-seed', '7', '--http1-server', server],
    });
    token = await fetchToken(gw.url, 'fidkeyfid', 'fidsecret');
  });
  afterAll(async () => {
    await gw?.stop();
    await Promise.all(Object.values(up).map((u) => u.close()));
  });

  /** The upstream(s) a kind's request may land on. */
  const upstreamsOf = (kind: Kind): RecordingUpstream[] => {
    const m: Record<Kind, string[]> = {
      plain: ['plain'],
      canary: ['canaryMain', 'canaryCanary'],
      'header route': ['header'],
      'shadow primary': ['shadowMain'],
      'shadow copy': ['shadowMain'],
      retry: ['retry'],
      'oauth front end': ['oauth'],
      'gate-protected': ['gated'],
      'flow-limited': ['flowed'],
      bandit: ['banditA', 'banditB'],
      explainer: ['explainer'],
      'custom Mapping': ['custom'],
    };
    return m[kind].map((n) => up[n]!);
  };

  function checkUpstream(got: RecordedRequest, sentLines: HeaderLine[], shape: Shape, kind: Kind, copy = false): void {
    const where = `${got.upstream} #${got.connection}.${got.indexOnConnection}`;
    expect(got.method, `${where}: method`).toBe('POST');
    expect(got.target, `${where}: target`).toBe(TARGETS[kind].upstreamPath);
    expect(got.version, `${where}: version`).toBe('HTTP/1.1');
    expect(comparableUpstreamLines(got.headers), `${where}: header lines`).toEqual(expectedUpstreamLines(sentLines, { dropAuthorization: kind === 'oauth front end', shadow: copy }));
    expect(headerValues(got.headers, 'host'), `${where}: Host`).toEqual(expectedHost(sentLines, { shadow: copy }));
    expect(foreignConnectionTokens(got.headers), `${where}: Connection of the upstream hop`).toEqual([]);
    const f = forwardingHeaders(got.headers);
    expect(f.xff, `${where}: x-forwarded-for`).toEqual(['127.0.0.1']);
    expect(f.proto, `${where}: x-forwarded-proto`).toEqual(['http']);
    expect(f.originalPath, `${where}: x-envoy-original-path`).toEqual([TARGETS[kind].path]);
    expect(f.requestId.length, `${where}: one x-request-id`).toBe(1);
    expect(f.requestId[0]).toMatch(/^[0-9a-f-]{36}$/);
    expect(got.complete, `${where}: body complete by its framing (${got.body.length} bytes arrived of ${shape.body.length} sent)`).toBe(true);
    expect({ bytes: got.body.length, sha256: got.sha256 }, `${where}: body`).toEqual({ bytes: shape.body.length, sha256: sha256(shape.body) });
    expect(framingProblem(shape.framing, shape.framing === 'cl' ? shape.body.length : undefined, got.headers, got.body.length), `${where}: framing`).toBeUndefined();
    expect(got.trailers).toEqual([]);
  }

  /** Mirrors to the shadow predictor dropped for their body size, so far. */
  const droppedCopies = async (): Promise<number> =>
    metricSum(parseMetrics(await getText(`${gw.adminUrl}/metrics`)), 'seldon_gateway_shadow_requests_total', { deployment: 'shadowed', predictor: 'copy', result: 'dropped_body_size' });

  describe.each(KINDS)('%s', (kind) => {
    it.each(SHAPES.map((s) => [s.name, s] as const))('%s', async (_name, shape) => {
      const id = `${kind}/${shape.name}`.replace(/[^A-Za-z0-9/.-]+/g, '_');
      const headers: HeaderLine[] = [
        ['Host', 'Models.Example.com:8443'],
        ['User-Agent', 'fidelity/1.0 (raw)'],
        ['Accept', '*/*'],
        ['Content-Type', shape.contentType],
        ['X-Case', id],
        ['X-Mixed-Case-Name', 'Value  with   inner  spaces'],
        ['x-dup', 'one'],
        ['X-Dup', 'two'],
        ['Seldon-Puid', 'puid-123'],
        ['Connection', 'keep-alive, X-Hop-Secret'],
        ['X-Hop-Secret', 'must not pass'],
        ['Keep-Alive', 'timeout=5'],
        ['X-Forwarded-For', '10.9.9.9'],
        ['X-Envoy-Original-Path', '/forged'],
      ];
      if (kind === 'header route') headers.push(['x-route', 'special']);
      if (kind === 'oauth front end') headers.push(['Authorization', `Bearer ${token}`]);
      if (shape.expectContinue) headers.push(['Expect', '100-continue']);
      const spec: RawRequestSpec = {
        method: 'POST',
        target: TARGETS[kind].path,
        headers,
        framing: shape.framing,
        ...(shape.framing === 'none' ? {} : { body: shape.body }),
        ...(shape.chunkSize ? { chunkSize: shape.chunkSize } : {}),
        ...(shape.expectContinue ? { expectContinueMs: 1000 } : {}),
        ...(shape.drip ? { dripMs: shape.drip.ms, dripPieces: shape.drip.pieces } : {}),
      };
      const sentLines = requestBytes(spec).lines;

      const droppedBefore = kind === 'shadow copy' ? await droppedCopies() : 0;
      const x = await connectRaw(gw.port);
      try {
        const writing = writeRequest(x, spec);
        const res = await readHttpResponse(x.reader, { method: 'POST', timeoutMs: 20_000 });
        await Promise.race([writing, new Promise((r) => setTimeout(r, 2000))]);
        expect(res, 'the client got no answer').not.toBeNull();
        if (res === null) return;

        // ---- what the upstream(s) got
        const overRetry = kind === 'retry' && shape.body.length > RETRY_BUFFER;
        const expectedAttempts = kind === 'retry' && !overRetry ? 2 : 1;
        const ups = upstreamsOf(kind);
        const got = await waitForCase(ups, id, expectedAttempts, 2000);
        expect(got.length, `requests that reached ${ups.map((u) => u.name).join('/')}`).toBe(expectedAttempts);
        for (const g of got) checkUpstream(g, sentLines, shape, kind);
        if (kind === 'retry' && got.length === 2) {
          expect(forwardingHeaders(got[1]!.headers).requestId, 'the retry carries the same x-request-id').toEqual(forwardingHeaders(got[0]!.headers).requestId);
        }
        if (kind === 'header route') expect(up.plain!.byCase(id)).toEqual([]);
        if (kind === 'shadow copy') {
          if (shape.body.length > SHADOW_MAX_BODY) {
            // Over --shadow-max-body: no mirror (documented, counted: once counted, it is decided).
            await waitUntil(async () => (await droppedCopies()) > droppedBefore);
            expect(up.shadowCopy!.byCase(id).length, 'a body over --shadow-max-body is not mirrored').toBe(0);
          } else {
            const copies = await waitForCase([up.shadowCopy!], id, 1, 3000);
            expect(copies.length, 'the shadow got its copy').toBe(1);
            checkUpstream(copies[0]!, sentLines, shape, kind, true);
            expect(forwardingHeaders(copies[0]!.headers).requestId, 'the copy carries the primary x-request-id').toEqual(forwardingHeaders(got[0]!.headers).requestId);
          }
        }

        // ---- what the client got
        if (shape.expectContinue) expect(res.interim, 'a 100 Continue before the answer').toContain('HTTP/1.1 100 Continue');
        const primaries = new Set(ups.map((u) => u.name));
        const answers = (answered.get(id) ?? []).filter((a) => primaries.has(a.upstream));
        const last = answers[answers.length - 1]?.answer;
        expect(last, 'the upstream answered').toBeDefined();
        if (last === undefined) return;
        expect(res.statusLine, 'status line').toBe(String(last.statusLine));
        // A bandit's answer (not JSON: its body is never spliced) carries its attribution token in one header of the gateway's own.
        if (kind === 'bandit') expect(headerValues(res.headers, ARM_HEADER).length, 'the bandit attribution token').toBe(1);
        const clientLines = kind === 'bandit' ? res.headers.filter(([k]) => k.toLowerCase() !== ARM_HEADER) : res.headers;
        expect(comparableClientLines(clientLines), 'response header lines').toEqual(
          expectedClientLines([...(last.headers ?? []), ...(last.framing === 'chunked' ? [] : [['Content-Length', String((last.body as Buffer).length)] as HeaderLine])]),
        );
        expect(res.complete, 'response body complete').toBe(true);
        expect({ bytes: res.body.length, sha256: res.sha256 }, 'response body').toEqual({ bytes: (last.body as Buffer).length, sha256: sha256(last.body as Buffer) });

        // ---- and the connection is still good for another request (keep-alive)
        const again: RawRequestSpec = {
          method: 'GET',
          target: `/seldon/${NS}/plain/health/ping`,
          headers: [
            ['Host', 'h'],
            ['X-Case', `${id}/again`],
          ],
          framing: 'none',
        };
        await writeRequest(x, again);
        const second = await readHttpResponse(x.reader, { method: 'GET', timeoutMs: 5000 });
        expect(second?.status, 'a second request on the same connection').toBe(201);
      } finally {
        x.socket.destroy();
      }
    });
  });

  it('the gateway reused its upstream connections (keep-alive) across the plain cases', () => {
    // The plain cases, plus the follow-up request of every case that got that far.
    expect(up.plain!.requests.length).toBeGreaterThanOrEqual(2 * SHAPES.length);
    expect(up.plain!.connections()).toBeLessThan(up.plain!.requests.length / 2);
    expect(up.plain!.requests.some((r) => r.indexOnConnection > 0)).toBe(true);
  });

  it("who read the requests: the lane all but the Expect ones, whose connections went to Node's server (chunked and over-64-KiB bodies stream through the lane)", async () => {
    const handed = {
      shape: await metric(gw.adminUrl, 'seldon_gateway_http1_handoffs_total{reason="request_shape"}'),
      large: await metric(gw.adminUrl, 'seldon_gateway_http1_handoffs_total{reason="large_body"}'),
    };
    expect(handed).toEqual(server === 'gateway' ? { shape: KINDS.length, large: 0 } : { shape: 0, large: 0 });
  });

  it('the canary members both took part (seeded pick)', () => {
    expect(up.canaryMain!.requests.length + up.canaryCanary!.requests.length).toBe(SHAPES.length);
    expect(up.canaryMain!.requests.length).toBeGreaterThan(0);
    expect(up.canaryCanary!.requests.length).toBeGreaterThan(0);
  });
});

describe('proxy fidelity: a request that finds its upstream connection stale', () => {
  /**
   * Every route kind's upstream, once `stale` is set, resets the next request on each connection
   * that carried an answer before (a model server closing idle keep-alive connections unannounced,
   * as gunicorn does). The gateway sends such a request once more on a new connection: the
   * upstream must get the same bytes both times, and the client the answer of the second send.
   */
  const SNS = 'fst';
  const up: Record<string, RecordingUpstream> = {};
  let gw: TestGateway;
  let stale = false;
  /** Per upstream: connections that carried an answer before `stale` was set, not yet reset. */
  const warm = new Map<string, Set<number>>();
  const answerOf = (name: string, req: RecordedRequest): Answer => ({
    statusLine: 'HTTP/1.1 200 Fine By Model',
    headers: [
      ['Content-Type', 'application/json'],
      ['X-Upstream', name],
      ['Date', DATE],
    ],
    body: JSON.stringify({ upstream: name, case: headerValue(req.headers, 'x-case'), received: req.sha256 }),
  });

  beforeAll(async () => {
    const retried = new Set<string>();
    for (const n of ['plain', 'header', 'canaryMain', 'canaryCanary', 'shadowMain', 'shadowCopy', 'retry', 'oauth', 'gated']) {
      warm.set(n, new Set());
      up[n] = await startRecordingUpstream({
        name: n,
        responder: (req) => {
          const w = warm.get(n)!;
          if (!stale) w.add(req.connection);
          else if (w.delete(req.connection)) return { reset: true };
          const id = headerValue(req.headers, 'x-case') ?? '';
          // The retry route's first answered attempt is a 503: a retry after a second send.
          if (n === 'retry' && stale && !retried.has(id)) {
            retried.add(id);
            return { ...answerOf(n, req), statusLine: 'HTTP/1.1 503 Service Unavailable' };
          }
          return answerOf(n, req);
        },
      });
    }
    const kinds = routeKinds(SNS, up, { key: 'stalekey', secret: 'stalesecret' });
    gw = await startTestGateway({ manifests: kinds.manifests, resolve: kinds.resolve, args: ['--random-seed', '7'] });
  });
  afterAll(async () => {
    await gw?.stop();
    await Promise.all(Object.values(up).map((u) => u.close()));
  });

  const cases: { kind: string; path: string; ups: string[]; copy?: string }[] = [
    { kind: 'plain', path: `/seldon/${SNS}/plain${PREDICT}?q=1`, ups: ['plain'] },
    { kind: 'canary', path: `/seldon/${SNS}/canary${PREDICT}`, ups: ['canaryMain', 'canaryCanary'] },
    { kind: 'shadow', path: `/seldon/${SNS}/shadowed${PREDICT}`, ups: ['shadowMain'], copy: 'shadowCopy' },
    { kind: 'retry', path: `/seldon/${SNS}/retry${PREDICT}`, ups: ['retry'] },
    { kind: 'gated', path: `/seldon/${SNS}/gated${PREDICT}`, ups: ['gated'] },
  ];

  async function send(path: string, id: string): Promise<{ statusLine: string; headers: HeaderLine[]; body: Buffer } | null> {
    const x = await connectRaw(gw.port);
    try {
      await writeRequest(x, {
        method: 'POST',
        target: path,
        headers: [
          ['Host', 'models.example.com'],
          ['Content-Type', 'application/json'],
          ['X-Case', id],
        ],
        framing: 'cl',
        body: SMALL_JSON,
      });
      return await readHttpResponse(x.reader, { method: 'POST', timeoutMs: 10_000 });
    } finally {
      x.socket.destroy();
    }
  }

  it('each route kind: the upstream got the same bytes on both sends, the client the second answer, byte for byte', async () => {
    // Warm every upstream's pool: sequential requests leave one idle connection per upstream (the
    // canary's seeded picks reach both members).
    for (const c of cases) for (let i = 0; i < (c.kind === 'canary' ? 8 : 1); i++) expect((await send(c.path, `warm/${c.kind}/${i}`))?.statusLine).toMatch(/^HTTP\/1\.1 200 /);
    expect(up.canaryMain!.requests.length * up.canaryCanary!.requests.length, 'both canary members warmed').toBeGreaterThan(0);
    stale = true;
    for (const c of cases) {
      const id = `stale/${c.kind}`;
      const res = await send(c.path, id);
      const got = await waitForCase(
        c.ups.map((n) => up[n]!),
        id,
        c.kind === 'retry' ? 3 : 2,
        3000,
      );
      // Reset (its connection was stale), then sent again; the retry route then retries its 503.
      expect(got.length, `${c.kind}: sends that reached the upstream`).toBe(c.kind === 'retry' ? 3 : 2);
      for (const g of got.slice(1)) {
        expect(g.rawHead.equals(got[0]!.rawHead), `${c.kind}: the same head, byte for byte`).toBe(true);
        expect(g.body.equals(got[0]!.body), `${c.kind}: the same body`).toBe(true);
      }
      expect(got[0]!.body.equals(SMALL_JSON), `${c.kind}: the body the client sent`).toBe(true);
      expect(got[1]!.connection, `${c.kind}: the second send on a new connection`).not.toBe(got[0]!.connection);
      if (c.copy) {
        const copies = await waitForCase([up[c.copy]!], id, 2, 3000);
        expect(copies.length, `${c.kind}: the copy, reset then sent again`).toBe(2);
        expect(copies[1]!.rawHead.equals(copies[0]!.rawHead) && copies[1]!.body.equals(copies[0]!.body), `${c.kind}: the copy's bytes, the same both times`).toBe(true);
        expect(headerValue(copies[1]!.headers, 'host')).toBe('models.example.com-shadow');
      }
      // What the client got: exactly the answer of the last send.
      const last = answerOf(got[got.length - 1]!.upstream, got[got.length - 1]!);
      expect(res, `${c.kind}: an answer`).not.toBeNull();
      expect(res!.statusLine).toBe(last.statusLine);
      expect(res!.body.equals(Buffer.from(last.body as string)), `${c.kind}: the answer's body`).toBe(true);
      expect(comparableClientLines(res!.headers)).toEqual(expectedClientLines([...(last.headers ?? []), ['Content-Length', String(Buffer.byteLength(last.body as string))]]));
    }
    // One second send per stale connection met: plain, canary, shadow primary and copy, retry, gated.
    expect(await metric(gw.adminUrl, 'seldon_gateway_upstream_replays_total')).toBe(6);
  });
});
