/**
 * Tracing end to end: a real gateway exports over OTLP/HTTP (protobuf) to a real receiver
 * (helpers/otlp-collector.ts decodes what it gets with OTLP's message definitions), real REST
 * upstreams and real @grpc/grpc-js clients and servers. Checked: the server span's parent is the
 * client's context (W3C traceparent, B3 single, B3 multi; none: a root), attempts and shadows are
 * its children, the upstream got the context of exactly its attempt (parent id = that attempt's
 * span id) in the form the client used, retries make one span per attempt, an unsampled client
 * context passes untouched, head sampling keeps its ratio, a dead collector costs requests
 * nothing and the export queue is bounded and counted, and a shutdown flushes what is queued.
 */
import { randomBytes } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GatewayMetrics } from '../../../gateway/observe/metrics.js';
import { RAW_HEADERS, headerObjectFields, incomingTraceId } from '../../../gateway/observe/trace-context.js';
import { Tracing, tracesUrl } from '../../../gateway/observe/tracing.js';
import { startHttpBackend, type HttpBackend, type HttpRequestRecord } from '../../fixtures/http-backend.js';
import { grpcClients, startGrpcBackend, type GrpcBackend, type GrpcCallRecord, type GrpcClients } from '../../fixtures/grpc-backend.js';
import { answerOk, md, pool, predict, startRawUpstream, type RawUpstream } from '../../helpers/grpc.js';
import { post } from '../../helpers/observability.js';
import { sdep, startTestGateway, waitFor, type TestGateway } from '../../helpers/gateway.js';
import { freePort } from '../../helpers/net.js';
import { startOtlpCollector, type ExportedSpan, type OtlpCollector } from '../../helpers/otlp-collector.js';

const predictPath = '/api/v1.0/predictions';
const hex = (bytes: number): string => randomBytes(bytes).toString('hex');
const SERVER = 2;
const CLIENT = 3;

/** The spans of one trace, once at least `n` of them have been exported. */
async function traceSpans(collector: OtlpCollector, traceId: string, n: number): Promise<ExportedSpan[]> {
  await waitFor(() => collector.spans.filter((s) => s.traceId === traceId).length >= n, 10_000);
  return collector.spans.filter((s) => s.traceId === traceId);
}

const one = <T>(xs: readonly T[], what: string): T => {
  expect(xs, what).toHaveLength(1);
  return xs[0]!;
};

/** Every value of header `name` (any case) as the upstream received it. */
const rawValues = (rec: HttpRequestRecord, name: string): string[] => {
  const out: string[] = [];
  for (let i = 0; i < rec.rawHeaders.length; i += 2) if (rec.rawHeaders[i]!.toLowerCase() === name) out.push(rec.rawHeaders[i + 1]!);
  return out;
};

/** Attempt spans in the order they were sent (the first has no resend count). */
const byAttempt = (a: ExportedSpan, b: ExportedSpan): number => Number(a.attributes['http.request.resend_count'] ?? 0) - Number(b.attributes['http.request.resend_count'] ?? 0);

const byId = (requests: HttpRequestRecord[], id: string): HttpRequestRecord[] => requests.filter((r) => r.headers['x-request-id'] === id);

describe('tracing: REST and gRPC spans over OTLP/HTTP', () => {
  let collector: OtlpCollector;
  let backend: HttpBackend;
  let shadowBackend: HttpBackend;
  let flaky: HttpBackend;
  let grpcMain: GrpcBackend;
  let grpcAudit: GrpcBackend;
  let grpcFlaky: RawUpstream;
  let gw: TestGateway;
  let clients: GrpcClients;

  beforeAll(async () => {
    collector = await startOtlpCollector();
    backend = await startHttpBackend({ name: 'main' });
    shadowBackend = await startHttpBackend({ name: 'shadow' });
    const seen = new Map<string, number>();
    flaky = await startHttpBackend({
      name: 'flaky',
      handler: (req, res) => {
        const id = String(req.headers['x-request-id']);
        const n = (seen.get(id) ?? 0) + 1;
        seen.set(id, n);
        res.writeHead(n === 1 ? 503 : 200, { 'content-type': 'application/json' });
        res.end(n === 1 ? '{"status":{"code":503}}' : '{"data":{"ndarray":[[1]]}}');
      },
    });
    grpcMain = await startGrpcBackend({ name: 'main' });
    grpcAudit = await startGrpcBackend({ name: 'audit' });
    grpcFlaky = await startRawUpstream((s, n) => {
      s.resume();
      if (n % 2 === 0) s.respond({ ':status': 503 }, { endStream: true });
      else answerOk(s, 'second try');
    });
    gw = await startTestGateway({
      manifests: {
        'plain.yaml': sdep('plain', 'm', { predictors: [{ name: 'main' }] }),
        'mirror.yaml': sdep('mirror', 'm', { predictors: [{ name: 'main' }, { name: 'shadow', shadow: true }] }),
        'retry.yaml': sdep('retry', 'm', { predictors: [{ name: 'main' }] }, { 'seldon.io/ambassador-retries': '1' }),
        'g.yaml': sdep('g', 'm', { predictors: [{ name: 'main' }, { name: 'audit', shadow: true }] }),
        'gr.yaml': sdep('gr', 'm', { predictors: [{ name: 'main' }] }, { 'seldon.io/ambassador-retries': '1' }),
      },
      resolve: {
        'plain-main.m:8000': backend.port,
        'mirror-main.m:8000': backend.port,
        'mirror-shadow.m:8000': shadowBackend.port,
        'retry-main.m:8000': flaky.port,
        'g-main.m:5001': grpcMain.port,
        'g-audit.m:5001': grpcAudit.port,
        'gr-main.m:5001': grpcFlaky.port,
      },
      args: ['--otlp-endpoint', collector.url, '--trace-sample', '1'],
    });
    clients = grpcClients(`127.0.0.1:${gw.port}`);
  });
  afterAll(async () => {
    clients?.close();
    await gw?.stop();
    for (const b of [backend, shadowBackend, flaky]) await b?.close();
    for (const b of [grpcMain, grpcAudit]) await b?.close();
    await grpcFlaky?.close();
    await collector?.close();
  });

  it("REST, W3C traceparent: the server span is the client span's child, the attempt the server span's, the upstream the attempt's", async () => {
    const traceId = hex(16);
    const parent = hex(8);
    const id = `w3c-${hex(4)}`;
    const r = await post(`${gw.url}/seldon/m/plain${predictPath}?secret=1`, { traceparent: `00-${traceId}-${parent}-01`, tracestate: 'vendor=abc', 'x-request-id': id, 'user-agent': 'trace-test/1' });
    expect(r.status).toBe(200);
    const spans = await traceSpans(collector, traceId, 2);
    const server = one(
      spans.filter((s) => s.kind === SERVER),
      'server spans',
    );
    const attempt = one(
      spans.filter((s) => s.kind === CLIENT),
      'attempt spans',
    );
    expect(server.parentSpanId).toBe(parent);
    expect(attempt.parentSpanId).toBe(server.spanId);
    expect(server.traceState).toBe('vendor=abc');
    expect(server.name).toBe('POST /seldon/m/plain/');
    expect(server.attributes).toMatchObject({
      'http.request.method': 'POST',
      'url.path': `/seldon/m/plain${predictPath}`,
      'http.route': '/seldon/m/plain/',
      'http.response.status_code': 200,
      'seldon.namespace': 'm',
      'seldon.deployment': 'plain',
      'seldon.predictor': 'main',
      'seldon.upstream': 'plain-main.m:8000',
      'seldon.retries': 0,
      'seldon.request_id': id,
      'user_agent.original': 'trace-test/1',
      'client.address': '127.0.0.1',
    });
    // The query string stays out of traces.
    expect(JSON.stringify(server.attributes)).not.toContain('secret');
    expect(attempt.attributes).toMatchObject({
      'http.request.method': 'POST',
      'server.address': '127.0.0.1',
      'server.port': backend.port,
      'network.peer.address': '127.0.0.1',
      'http.response.status_code': 200,
    });
    expect(server.resource['service.name']).toBe('seldon-gateway');
    const rec = one(byId(backend.requests, id), 'upstream requests');
    // Exactly one traceparent, ours: the client's is replaced, never forwarded beside it.
    expect(rawValues(rec, 'traceparent')).toEqual([`00-${traceId}-${attempt.spanId}-01`]);
    expect(rawValues(rec, 'tracestate')).toEqual(['vendor=abc']);
    expect(rec.headers.b3).toBeUndefined();
    expect(rec.headers['x-b3-traceid']).toBeUndefined();
    expect(collector.requests.every((q) => q.contentType === 'application/x-protobuf' && q.path === '/v1/traces')).toBe(true);
  });

  it("REST, B3 single: parent from b3, and the upstream gets b3 (single) and traceparent with the attempt's id", async () => {
    const traceId = hex(16);
    const parent = hex(8);
    const id = `b3s-${hex(4)}`;
    expect((await post(`${gw.url}/seldon/m/plain${predictPath}`, { b3: `${traceId}-${parent}-1`, 'x-request-id': id })).status).toBe(200);
    const spans = await traceSpans(collector, traceId, 2);
    const server = one(
      spans.filter((s) => s.kind === SERVER),
      'server spans',
    );
    const attempt = one(
      spans.filter((s) => s.kind === CLIENT),
      'attempt spans',
    );
    expect(server.parentSpanId).toBe(parent);
    expect(attempt.parentSpanId).toBe(server.spanId);
    const rec = one(byId(backend.requests, id), 'upstream requests');
    expect(rawValues(rec, 'b3')).toEqual([`${traceId}-${attempt.spanId}-1`]);
    expect(rawValues(rec, 'traceparent')).toEqual([`00-${traceId}-${attempt.spanId}-01`]);
    expect(rec.headers['x-b3-traceid']).toBeUndefined();
  });

  it("REST, B3 multi: parent from X-B3-*, and the upstream gets X-B3-* with the attempt's id", async () => {
    const traceId = hex(16);
    const parent = hex(8);
    const id = `b3m-${hex(4)}`;
    const r = await post(`${gw.url}/seldon/m/plain${predictPath}`, { 'X-B3-TraceId': traceId, 'X-B3-SpanId': parent, 'X-B3-ParentSpanId': hex(8), 'X-B3-Sampled': '1', 'x-request-id': id });
    expect(r.status).toBe(200);
    const spans = await traceSpans(collector, traceId, 2);
    const server = one(
      spans.filter((s) => s.kind === SERVER),
      'server spans',
    );
    const attempt = one(
      spans.filter((s) => s.kind === CLIENT),
      'attempt spans',
    );
    expect(server.parentSpanId).toBe(parent);
    const rec = one(byId(backend.requests, id), 'upstream requests');
    expect(rawValues(rec, 'x-b3-traceid')).toEqual([traceId]);
    expect(rawValues(rec, 'x-b3-spanid')).toEqual([attempt.spanId]);
    expect(rawValues(rec, 'x-b3-sampled')).toEqual(['1']);
    // The client's X-B3-ParentSpanId is not passed on: it named its own span's parent.
    expect(rec.headers['x-b3-parentspanid']).toBeUndefined();
    expect(rec.headers.b3).toBeUndefined();
    expect(rawValues(rec, 'traceparent')).toEqual([`00-${traceId}-${attempt.spanId}-01`]);
  });

  it('REST without a context: a root span, and the upstream gets its trace', async () => {
    const id = `root-${hex(4)}`;
    expect((await post(`${gw.url}/seldon/m/plain${predictPath}`, { 'x-request-id': id })).status).toBe(200);
    const rec = one(byId(backend.requests, id), 'upstream requests');
    const tp = rawValues(rec, 'traceparent');
    expect(tp).toHaveLength(1);
    const [, traceId, attemptId, flags] = tp[0]!.split('-');
    expect(flags).toBe('01');
    const spans = await traceSpans(collector, traceId!, 2);
    const server = one(
      spans.filter((s) => s.kind === SERVER),
      'server spans',
    );
    expect(server.parentSpanId).toBe('');
    expect(
      one(
        spans.filter((s) => s.kind === CLIENT),
        'attempt spans',
      ).spanId,
    ).toBe(attemptId);
  });

  it('an unsampled client context is followed: no spans, and its headers pass untouched', async () => {
    const traceId = hex(16);
    const parent = hex(8);
    const id = `off-${hex(4)}`;
    expect((await post(`${gw.url}/seldon/m/plain${predictPath}`, { traceparent: `00-${traceId}-${parent}-00`, tracestate: 'k=v', 'x-request-id': id })).status).toBe(200);
    const rec = one(byId(backend.requests, id), 'upstream requests');
    expect(rawValues(rec, 'traceparent')).toEqual([`00-${traceId}-${parent}-00`]);
    expect(rawValues(rec, 'tracestate')).toEqual(['k=v']);
    // A sampled request after it: once its spans are in, the unsampled one would have been too.
    const later = hex(16);
    await post(`${gw.url}/seldon/m/plain${predictPath}`, { traceparent: `00-${later}-${hex(8)}-01` });
    await traceSpans(collector, later, 2);
    expect(collector.spans.filter((s) => s.traceId === traceId)).toEqual([]);
  });

  it('a malformed traceparent starts a new trace and is not forwarded', async () => {
    const id = `bad-${hex(4)}`;
    expect((await post(`${gw.url}/seldon/m/plain${predictPath}`, { traceparent: '00-zzzz-not-a-context', 'x-request-id': id })).status).toBe(200);
    const rec = one(byId(backend.requests, id), 'upstream requests');
    const tp = rawValues(rec, 'traceparent');
    expect(tp).toHaveLength(1);
    expect(tp[0]).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
    const spans = await traceSpans(collector, tp[0]!.split('-')[1]!, 2);
    expect(
      one(
        spans.filter((s) => s.kind === SERVER),
        'server spans',
      ).parentSpanId,
    ).toBe('');
  });

  it("a retry: one span per attempt under the server span, each attempt's upstream request carries its own span id", async () => {
    const traceId = hex(16);
    const id = `retry-${hex(4)}`;
    expect((await post(`${gw.url}/seldon/m/retry${predictPath}`, { traceparent: `00-${traceId}-${hex(8)}-01`, 'x-request-id': id })).status).toBe(200);
    const spans = await traceSpans(collector, traceId, 3);
    const server = one(
      spans.filter((s) => s.kind === SERVER),
      'server spans',
    );
    const attempts = spans.filter((s) => s.kind === CLIENT).sort(byAttempt);
    expect(attempts).toHaveLength(2);
    for (const a of attempts) expect(a.parentSpanId).toBe(server.spanId);
    expect(attempts[0]!.attributes['http.response.status_code']).toBe(503);
    expect(attempts[0]!.status).toBe(2);
    expect(attempts[1]!.attributes).toMatchObject({ 'http.response.status_code': 200, 'http.request.resend_count': 1 });
    expect(server.attributes).toMatchObject({ 'seldon.retries': 1, 'http.response.status_code': 200 });
    const recs = byId(flaky.requests, id);
    expect(recs.map((r) => rawValues(r, 'traceparent'))).toEqual(attempts.map((a) => [`00-${traceId}-${a.spanId}-01`]));
  });

  it("a shadow: its own child span, and the shadow upstream gets the shadow span's context", async () => {
    const traceId = hex(16);
    const id = `mirror-${hex(4)}`;
    expect((await post(`${gw.url}/seldon/m/mirror${predictPath}`, { traceparent: `00-${traceId}-${hex(8)}-01`, 'x-request-id': id })).status).toBe(200);
    const spans = await traceSpans(collector, traceId, 3);
    const server = one(
      spans.filter((s) => s.kind === SERVER),
      'server spans',
    );
    const shadow = one(
      spans.filter((s) => s.attributes['seldon.shadow'] === true),
      'shadow spans',
    );
    const attempt = one(
      spans.filter((s) => s.kind === CLIENT && s.attributes['seldon.shadow'] === undefined),
      'attempt spans',
    );
    expect(shadow.parentSpanId).toBe(server.spanId);
    expect(shadow.kind).toBe(CLIENT);
    expect(shadow.attributes).toMatchObject({ 'seldon.predictor': 'shadow', 'seldon.deployment': 'mirror', 'http.response.status_code': 200 });
    expect(attempt.parentSpanId).toBe(server.spanId);
    expect(server.attributes['seldon.shadows']).toBe(1);
    await waitFor(() => byId(shadowBackend.requests, id).length === 1);
    expect(rawValues(byId(shadowBackend.requests, id)[0]!, 'traceparent')).toEqual([`00-${traceId}-${shadow.spanId}-01`]);
    expect(rawValues(one(byId(backend.requests, id), 'primary'), 'traceparent')).toEqual([`00-${traceId}-${attempt.spanId}-01`]);
  });

  it('a request the gateway answers itself (no route) still has its server span', async () => {
    const traceId = hex(16);
    const parent = hex(8);
    expect((await post(`${gw.url}/seldon/m/nowhere${predictPath}`, { traceparent: `00-${traceId}-${parent}-01` })).status).toBe(404);
    const server = one(await traceSpans(collector, traceId, 1), 'spans');
    expect(server).toMatchObject({ kind: SERVER, parentSpanId: parent });
    expect(server.attributes['http.response.status_code']).toBe(404);
  });

  const grpcMeta = (seldon: string, extra: Record<string, string>): grpc.Metadata => md({ seldon, namespace: 'm', ...extra });
  const callsWith = (b: GrpcBackend, traceId: string): GrpcCallRecord[] => b.calls.filter((c) => JSON.stringify(c.metadata).includes(traceId));

  it("gRPC, W3C: server span (rpc attributes), attempt and shadow children, each upstream with its span's context", async () => {
    const traceId = hex(16);
    const parent = hex(8);
    const o = await predict(clients, { strData: 'traced' }, grpcMeta('g', { traceparent: `00-${traceId}-${parent}-01`, tracestate: 'g=1' }));
    expect(o.ok).toBe(true);
    const spans = await traceSpans(collector, traceId, 3);
    const server = one(
      spans.filter((s) => s.kind === SERVER),
      'server spans',
    );
    const shadow = one(
      spans.filter((s) => s.attributes['seldon.shadow'] === true),
      'shadow spans',
    );
    const attempt = one(
      spans.filter((s) => s.kind === CLIENT && s.attributes['seldon.shadow'] === undefined),
      'attempt spans',
    );
    expect(server.parentSpanId).toBe(parent);
    expect(server.name).toBe('seldon.protos.Seldon/Predict');
    expect(server.attributes).toMatchObject({
      'rpc.system': 'grpc',
      'rpc.service': 'seldon.protos.Seldon',
      'rpc.method': 'Predict',
      'rpc.grpc.status_code': 0,
      'seldon.namespace': 'm',
      'seldon.deployment': 'g',
      'seldon.predictor': 'main',
      'seldon.upstream': 'g-main.m:5001',
      'seldon.retries': 0,
    });
    expect(attempt.parentSpanId).toBe(server.spanId);
    expect(attempt.attributes).toMatchObject({ 'rpc.system': 'grpc', 'server.port': grpcMain.port, 'rpc.grpc.status_code': 0 });
    expect(shadow.parentSpanId).toBe(server.spanId);
    expect(shadow.attributes).toMatchObject({ 'seldon.predictor': 'audit', 'rpc.grpc.status_code': 0 });
    const call = one(callsWith(grpcMain, traceId), 'primary calls');
    expect(call.metadata.traceparent).toBe(`00-${traceId}-${attempt.spanId}-01`);
    expect(call.metadata.tracestate).toBe('g=1');
    // The request id the model received (the gateway made it), on the server span as REST's has it.
    expect(call.metadata['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    expect(server.attributes['seldon.request_id']).toBe(call.metadata['x-request-id']);
    await waitFor(() => callsWith(grpcAudit, traceId).length === 1);
    expect(callsWith(grpcAudit, traceId)[0]!.metadata.traceparent).toBe(`00-${traceId}-${shadow.spanId}-01`);
  });

  it('gRPC, B3 single and multi: the parent comes from them and the upstream gets the same form', async () => {
    const single = hex(16);
    const singleParent = hex(8);
    expect((await predict(clients, { strData: 'b3' }, grpcMeta('g', { b3: `${single}-${singleParent}-1` }))).ok).toBe(true);
    const multi = hex(16);
    const multiParent = hex(8);
    expect((await predict(clients, { strData: 'b3m' }, grpcMeta('g', { 'x-b3-traceid': multi, 'x-b3-spanid': multiParent, 'x-b3-sampled': '1' }))).ok).toBe(true);

    const s1 = await traceSpans(collector, single, 3);
    const server1 = one(
      s1.filter((s) => s.kind === SERVER),
      'server spans',
    );
    const attempt1 = one(
      s1.filter((s) => s.kind === CLIENT && s.attributes['seldon.shadow'] === undefined),
      'attempt spans',
    );
    expect(server1.parentSpanId).toBe(singleParent);
    const c1 = one(callsWith(grpcMain, single), 'calls');
    expect(c1.metadata.b3).toBe(`${single}-${attempt1.spanId}-1`);
    expect(c1.metadata['x-b3-traceid']).toBeUndefined();

    const s2 = await traceSpans(collector, multi, 3);
    const server2 = one(
      s2.filter((s) => s.kind === SERVER),
      'server spans',
    );
    const attempt2 = one(
      s2.filter((s) => s.kind === CLIENT && s.attributes['seldon.shadow'] === undefined),
      'attempt spans',
    );
    expect(server2.parentSpanId).toBe(multiParent);
    const c2 = one(callsWith(grpcMain, multi), 'calls');
    expect(c2.metadata).toMatchObject({ 'x-b3-traceid': multi, 'x-b3-spanid': attempt2.spanId, 'x-b3-sampled': '1', traceparent: `00-${multi}-${attempt2.spanId}-01` });
    expect(c2.metadata.b3).toBeUndefined();
  });

  it("gRPC retry: two attempt spans, the first with the upstream's 503, each upstream stream with its own span id", async () => {
    const traceId = hex(16);
    const before = grpcFlaky.streams.length;
    const o = await predict(clients, { strData: 'again' }, grpcMeta('gr', { traceparent: `00-${traceId}-${hex(8)}-01` }));
    expect(o.ok).toBe(true);
    const spans = await traceSpans(collector, traceId, 3);
    const server = one(
      spans.filter((s) => s.kind === SERVER),
      'server spans',
    );
    const attempts = spans.filter((s) => s.kind === CLIENT).sort(byAttempt);
    expect(attempts).toHaveLength(2);
    expect(attempts[0]!.attributes['http.response.status_code']).toBe(503);
    expect(attempts[1]!.attributes).toMatchObject({ 'rpc.grpc.status_code': 0, 'http.request.resend_count': 1 });
    expect(server.attributes).toMatchObject({ 'seldon.retries': 1, 'rpc.grpc.status_code': 0 });
    const streams = grpcFlaky.streams.slice(before);
    expect(streams.map((h) => h.traceparent)).toEqual(attempts.map((a) => `00-${traceId}-${a.spanId}-01`));
  });
});

describe('head sampling', () => {
  let collector: OtlpCollector;
  let backend: HttpBackend;
  let gw: TestGateway;
  beforeAll(async () => {
    collector = await startOtlpCollector();
    backend = await startHttpBackend({ name: 'main' });
    gw = await startTestGateway({
      manifests: { 'plain.yaml': sdep('plain', 'm', { predictors: [{ name: 'main' }] }) },
      resolve: { 'plain-main.m:8000': backend.port },
      args: ['--otlp-endpoint', collector.url, '--trace-sample', '0.25'],
    });
  });
  afterAll(async () => {
    await gw?.stop();
    await backend?.close();
    await collector?.close();
  });

  it('--trace-sample 0.25 over 400 requests: within bounds, every request carries a context, spans exactly for the sampled ones', async () => {
    const N = 400;
    const statuses = await pool(N, 8, async () => (await post(`${gw.url}/seldon/m/plain${predictPath}`)).status);
    expect(statuses.every((s) => s === 200)).toBe(true);
    const contexts = backend.requests.map((r) => rawValues(r, 'traceparent'));
    expect(contexts.every((c) => c.length === 1 && /^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$/.test(c[0]!))).toBe(true);
    const sampled = contexts.filter((c) => c[0]!.endsWith('-01')).map((c) => c[0]!.split('-')[1]!);
    // Binomial(400, 0.25): mean 100, sd 8.7; 60..140 is beyond 4.5 sd on each side.
    expect(sampled.length).toBeGreaterThanOrEqual(60);
    expect(sampled.length).toBeLessThanOrEqual(140);
    await waitFor(() => collector.spans.filter((s) => s.kind === SERVER).length >= sampled.length, 10_000);
    const traced = new Set(collector.spans.filter((s) => s.kind === SERVER).map((s) => s.traceId));
    expect([...traced].sort()).toEqual([...new Set(sampled)].sort());
    // Unsampled: each its own trace id too (the upstream follows the decision).
    expect(new Set(contexts.map((c) => c[0]!.split('-')[1])).size).toBe(N);
  });
});

describe('a collector that is not there, or fails', () => {
  it('costs requests nothing: every request is answered and proxied', async () => {
    const dead = await freePort();
    const backend = await startHttpBackend({ name: 'main' });
    const gw = await startTestGateway({
      manifests: { 'plain.yaml': sdep('plain', 'm', { predictors: [{ name: 'main' }] }) },
      resolve: { 'plain-main.m:8000': backend.port },
      args: ['--otlp-endpoint', `http://127.0.0.1:${dead}`, '--trace-sample', '1'],
    });
    try {
      const statuses = await pool(300, 16, async () => (await post(`${gw.url}/seldon/m/plain${predictPath}`)).status);
      expect(statuses.filter((s) => s !== 200)).toEqual([]);
      expect(backend.requests).toHaveLength(300);
    } finally {
      // A shutdown with spans that cannot go anywhere still ends (bounded wait).
      const t0 = Date.now();
      await gw.stop();
      expect(Date.now() - t0).toBeLessThan(8000);
      await backend.close();
    }
  });

  it('the export queue is bounded: spans past it are dropped and counted, failed exports counted, nothing else kept', async () => {
    const metrics = new GatewayMetrics();
    const dead = await freePort();
    const tracing = new Tracing({ endpoint: `http://127.0.0.1:${dead}`, sample: 1, maxQueueSize: 16, scheduledDelayMs: 50, exportTimeoutMs: 300 }, metrics, pino({ level: 'silent' }));
    const N = 200;
    for (let i = 0; i < N; i++) {
      const t = tracing.begin({}, [] as string[], RAW_HEADERS);
      t.end(200, undefined);
    }
    const count = async (): Promise<{ queueFull: number; failed: number; exported: number }> => {
      const text = await metrics.registry.metrics();
      const v = (re: RegExp): number => Number(re.exec(text)?.[1] ?? 0);
      return {
        queueFull: v(/seldon_gateway_tracing_spans_dropped_total\{reason="queue_full"\} (\d+)/),
        failed: v(/seldon_gateway_tracing_spans_dropped_total\{reason="export_failed"\} (\d+)/),
        exported: v(/seldon_gateway_tracing_spans_exported_total (\d+)/),
      };
    };
    // At most 16 wait and 16 are in the export in flight; every other span is dropped at once, not queued.
    expect((await count()).queueFull).toBeGreaterThanOrEqual(N - 32);
    const deadline = Date.now() + 8000;
    let c = await count();
    while (c.queueFull + c.failed < N && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
      c = await count();
    }
    expect(c.exported).toBe(0);
    expect(c.queueFull + c.failed).toBe(N);
    expect(c.failed).toBeGreaterThan(0);
    expect(c.failed).toBeLessThanOrEqual(32);
    await tracing.shutdown(1000);
  });

  it('a collector answering errors: the spans are counted as failed exports', async () => {
    const collector = await startOtlpCollector();
    collector.failWith = 400;
    const metrics = new GatewayMetrics();
    const tracing = new Tracing({ endpoint: collector.url, sample: 1, scheduledDelayMs: 20, exportTimeoutMs: 2000 }, metrics);
    try {
      for (let i = 0; i < 5; i++) tracing.begin({}, [] as string[], RAW_HEADERS).end(200, undefined);
      await tracing.shutdown(3000);
      const text = await metrics.registry.metrics();
      expect(text).toMatch(/seldon_gateway_tracing_spans_dropped_total\{reason="export_failed"\} 5\b/);
    } finally {
      await collector.close();
    }
  });
});

describe('shutdown and the pieces', () => {
  it('a shutdown exports the spans still queued', async () => {
    const collector = await startOtlpCollector();
    const backend = await startHttpBackend({ name: 'main' });
    const gw = await startTestGateway({
      manifests: { 'plain.yaml': sdep('plain', 'm', { predictors: [{ name: 'main' }] }) },
      resolve: { 'plain-main.m:8000': backend.port },
      args: ['--otlp-endpoint', collector.url],
    });
    const traceId = hex(16);
    expect((await post(`${gw.url}/seldon/m/plain${predictPath}`, { traceparent: `00-${traceId}-${hex(8)}-01` })).status).toBe(200);
    // Stopped at once: the batch delay (1 s) has not passed; the spans go out with the shutdown.
    await gw.stop();
    expect(collector.spans.filter((s) => s.traceId === traceId)).toHaveLength(2);
    await backend.close();
    await collector.close();
  });

  it("without --otlp-endpoint the client's context passes untouched and none is added", async () => {
    const backend = await startHttpBackend({ name: 'main' });
    const gw = await startTestGateway({ manifests: { 'plain.yaml': sdep('plain', 'm', { predictors: [{ name: 'main' }] }) }, resolve: { 'plain-main.m:8000': backend.port } });
    try {
      const tp = `00-${hex(16)}-${hex(8)}-01`;
      await post(`${gw.url}/seldon/m/plain${predictPath}`, { traceparent: tp, b3: 'x', 'x-request-id': 'keep' });
      await post(`${gw.url}/seldon/m/plain${predictPath}`, { 'x-request-id': 'none' });
      const keep = one(byId(backend.requests, 'keep'), 'requests');
      expect(rawValues(keep, 'traceparent')).toEqual([tp]);
      expect(rawValues(keep, 'b3')).toEqual(['x']);
      const none = one(byId(backend.requests, 'none'), 'requests');
      expect(rawValues(none, 'traceparent')).toEqual([]);
    } finally {
      await gw.stop();
      await backend.close();
    }
  });

  it('reads trace ids and endpoints as OpenTelemetry users write them', () => {
    expect(tracesUrl('http://collector:4318')).toBe('http://collector:4318/v1/traces');
    expect(tracesUrl('http://collector:4318/')).toBe('http://collector:4318/v1/traces');
    expect(tracesUrl('https://collector/custom/path')).toBe('https://collector/custom/path');
    const id = hex(16);
    expect(incomingTraceId(headerObjectFields({ traceparent: `00-${id}-${hex(8)}-01` }))).toBe(id);
    expect(incomingTraceId(headerObjectFields({ traceparent: `00-${'0'.repeat(32)}-${hex(8)}-01` }))).toBeUndefined();
    expect(incomingTraceId(headerObjectFields({ traceparent: 'garbage', b3: `${id}-${hex(8)}-1` }))).toBe(id);
    expect(incomingTraceId(headerObjectFields({ 'x-b3-traceid': 'abcdef0123456789' }))).toBe('0000000000000000abcdef0123456789');
    expect(incomingTraceId(headerObjectFields({ b3: '0' }))).toBeUndefined();
    expect(incomingTraceId(headerObjectFields({}))).toBeUndefined();
  });
});
