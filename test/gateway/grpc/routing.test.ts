/**
 * gRPC routing end to end, on the shared public port: real gateway (startGateway), real
 * @grpc/grpc-js client and backends, real HTTP/2 on 127.0.0.1.
 */
import http2 from 'node:http2';
import net from 'node:net';
import { once } from 'node:events';
import * as grpc from '@grpc/grpc-js';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { grpcClients, startGrpcBackend, type GrpcBackend, type GrpcClients } from '../../fixtures/grpc-backend.js';
import { startHttpBackend, type HttpBackend } from '../../fixtures/http-backend.js';
import { answeredBy, md, pool, predict } from '../../helpers/grpc.js';
import { sdep, startTestGateway, type TestGateway } from '../../helpers/gateway.js';

describe('gRPC routing on the shared port', () => {
  const backends: Record<string, GrpcBackend> = {};
  let rest: HttpBackend;
  let gw: TestGateway;
  let clients: GrpcClients;

  beforeAll(async () => {
    for (const name of ['iris-a', 'iris-b', 'main', 'canary', 'eu', 'lond', 'plain']) backends[name] = await startGrpcBackend({ name });
    rest = await startHttpBackend({ name: 'rest-iris-a' });
    gw = await startTestGateway({
      manifests: {
        'iris-a.yaml': sdep('iris', 'a', { predictors: [{ name: 'default' }] }),
        'iris-b.yaml': sdep('iris', 'b', { predictors: [{ name: 'default' }] }),
        'split.yaml': sdep('split', 'models', { predictors: [{ name: 'main' }, { name: 'canary', traffic: 25 }] }),
        // docs/routing.md#several-deployments-behind-one-name: header and regex-header variants behind one external name.
        'fraud.yaml': sdep('fraud', 'models', { predictors: [{ name: 'main' }] }),
        'fraud-eu.yaml': sdep('fraud-eu', 'models', { predictors: [{ name: 'main' }] }, { 'seldon.io/ambassador-service-name': 'fraud', 'seldon.io/ambassador-header': 'x-region:eu' }),
        'fraud-lond.yaml': sdep('fraud-lond', 'models', { predictors: [{ name: 'main' }] }, { 'seldon.io/ambassador-service-name': 'fraud', 'seldon.io/ambassador-regex-header': 'location: lond.*' }),
        'blue.yaml': sdep('blue', 'models', { predictors: [{ name: 'main' }] }, { 'seldon.io/ambassador-id': 'blue' }),
      },
      resolve: {
        'iris-default.a:5001': backends['iris-a']!.port,
        'iris-default.a:8000': rest.port,
        'iris-default.b:5001': backends['iris-b']!.port,
        'split-main.models:5001': backends['main']!.port,
        'split-canary.models:5001': backends['canary']!.port,
        'fraud-main.models:5001': backends['plain']!.port,
        'fraud-eu-main.models:5001': backends['eu']!.port,
        'fraud-lond-main.models:5001': backends['lond']!.port,
        'blue-main.models:5001': backends['plain']!.port,
      },
      args: ['--random-seed', '7'],
    });
    clients = grpcClients(`127.0.0.1:${gw.port}`);
  });
  afterAll(async () => {
    clients?.close();
    await gw?.stop();
    await rest?.close();
    await Promise.all(Object.values(backends).map((b) => b.close()));
  });

  it('routes unary Predict by seldon + namespace metadata, path and :authority unchanged', async () => {
    const before = backends['iris-a']!.calls.length;
    const o = await predict(clients, { strData: 'hello' }, md({ seldon: 'iris', namespace: 'a', 'x-extra': 'kept', 'trace-bin': Buffer.from([0, 1, 2, 255]) }));
    expect(o.ok).toBe(true);
    expect(answeredBy(o)).toBe('iris-a');
    if (o.ok) expect(o.result.response.strData).toBe('hello');
    const call = backends['iris-a']!.calls[before]!;
    expect(call.method).toBe('/seldon.protos.Seldon/Predict');
    expect(call.authority).toBe(`127.0.0.1:${gw.port}`);
    expect(call.metadata).toMatchObject({ seldon: 'iris', namespace: 'a', 'x-extra': 'kept' });
    expect(Buffer.from(call.metadata['trace-bin'] as string, 'base64')).toEqual(Buffer.from([0, 1, 2, 255]));
  });

  it("drops metadata forging the gateway's own headers (x-seldon-predictor, x-envoy-*)", async () => {
    const before = backends['iris-a']!.calls.length;
    const o = await predict(clients, { strData: 'x' }, md({ seldon: 'iris', namespace: 'a', 'x-seldon-predictor': 'forged', 'x-envoy-overloaded': 'true', 'x-kept': '1' }));
    expect(o.ok).toBe(true);
    const seen = backends['iris-a']!.calls[before]!.metadata;
    expect(seen['x-kept']).toBe('1');
    expect(seen['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    expect(seen['x-seldon-predictor']).toBeUndefined();
    expect(seen['x-envoy-overloaded']).toBeUndefined();
  });

  it('passes custom trailers and failure statuses through unchanged', async () => {
    const ok = await predict(clients, { strData: 'trailer:x-t=1;trailer:x-u=two' }, md({ seldon: 'iris', namespace: 'a' }));
    expect(ok.ok).toBe(true);
    if (ok.ok) {
      expect(ok.result.trailers.get('x-t')).toEqual(['1']);
      expect(ok.result.trailers.get('x-u')).toEqual(['two']);
      expect(ok.result.headers.get('x-backend')).toEqual(['iris-a']);
    }
    const bad = await predict(clients, { strData: 'fail:9:not ready: yet % 100' }, md({ seldon: 'iris', namespace: 'a' }));
    expect(bad.ok).toBe(false);
    if (!bad.ok) {
      expect(bad.error.code).toBe(grpc.status.FAILED_PRECONDITION);
      expect(bad.error.details).toBe('not ready: yet % 100');
      expect(bad.error.metadata.get('x-backend')).toEqual(['iris-a']);
    }
  });

  it('routes every method of seldon.protos.*, inference.* (SendFeedback, metadata, ModelInfer)', async () => {
    const m = md({ seldon: 'iris', namespace: 'b' });
    const fb = await new Promise<grpc.ServiceError | null>((r) => clients.seldon.SendFeedback({ reward: 1 }, m, (e) => r(e)));
    expect(fb).toBeNull();
    const meta = await new Promise<string | undefined>((r, j) => clients.seldon.ModelMetadata({ name: 'x' }, m, (e, v) => (e ? j(e) : r(v?.custom?.['backend']))));
    expect(meta).toBe('iris-b');
    const inf = await new Promise<string | undefined>((r, j) =>
      clients.inference.ModelInfer({ model_name: 'm', inputs: [{ name: 'i', datatype: 'FP32', shape: [1], contents: { fp32_contents: [1.5] } }] }, m, (e, v) => (e ? j(e) : r(v?.id))),
    );
    expect(inf).toBe('iris-b');
  });

  it('never mixes two deployments with the same name in two namespaces', async () => {
    const results = await pool(200, 20, (i) => predict(clients, { strData: String(i) }, md({ seldon: 'iris', namespace: i % 2 ? 'b' : 'a' })));
    results.forEach((o, i) => expect(answeredBy(o)).toBe(i % 2 ? 'iris-b' : 'iris-a'));
  });

  it('without namespace metadata a call is UNIMPLEMENTED, asking for namespace metadata without naming namespaces', async () => {
    // Tenant isolation: outside single-namespace mode a call must say its
    // namespace, whether or not the name is served in several; no message names a namespace.
    for (const seldon of ['iris', 'split']) {
      const o = await predict(clients, { strData: 'x' }, md({ seldon }));
      expect(o.ok).toBe(false);
      if (!o.ok) {
        expect(o.error.code).toBe(grpc.status.UNIMPLEMENTED);
        expect(o.error.details).toContain('"namespace" metadata');
        expect(o.error.details).not.toMatch(/\ba, b\b|\(a\b|\bb\)|models/);
      }
    }
  });

  it('no route is UNIMPLEMENTED naming the seldon and namespace it looked for', async () => {
    for (const [metadata, text] of [
      [{ seldon: 'nope', namespace: 'a' }, 'seldon="nope" namespace="a"'],
      [{ namespace: 'a' }, 'no "seldon" metadata'],
      [{ seldon: 'blue', namespace: 'models' }, 'seldon="blue" namespace="models"'], // ambassador-id "blue": skipped
    ] as const) {
      const o = await predict(clients, { strData: 'x' }, md(metadata));
      expect(o.ok).toBe(false);
      if (!o.ok) {
        expect(o.error.code).toBe(grpc.status.UNIMPLEMENTED);
        expect(o.error.details).toContain(text);
        expect(o.error.details).toContain('/seldon.protos.Seldon/Predict');
      }
    }
    const unrouted = await gw.metrics.registry.getSingleMetricAsString('seldon_gateway_unrouted_requests_total');
    expect(unrouted).toMatch(/protocol="grpc",reason="NO_ROUTE"} [1-9]/);
  });

  it('routes on header and regex-header constraints over metadata; the plain group otherwise', async () => {
    expect(answeredBy(await predict(clients, {}, md({ seldon: 'fraud', namespace: 'models', 'x-region': 'eu' })))).toBe('eu');
    expect(answeredBy(await predict(clients, {}, md({ seldon: 'fraud', namespace: 'models', location: 'londinium' })))).toBe('lond');
    expect(answeredBy(await predict(clients, {}, md({ seldon: 'fraud', namespace: 'models', location: 'xlondon' })))).toBe('plain');
    expect(answeredBy(await predict(clients, {}, md({ seldon: 'fraud', namespace: 'models', 'x-region': 'us' })))).toBe('plain');
    expect(answeredBy(await predict(clients, {}, md({ seldon: 'fraud', namespace: 'models' })))).toBe('plain');
    // Repeated metadata is matched joined with ',' (so "eu" alone must be the whole value).
    expect(answeredBy(await predict(clients, {}, md({ seldon: 'fraud', namespace: 'models', 'x-region': ['eu', 'us'] })))).toBe('plain');
  });

  it('splits 75/25 within ±1.5 points over 10,000 calls', async () => {
    const counts = { main: 0, canary: 0, other: 0 };
    const m = md({ seldon: 'split', namespace: 'models' });
    const started = Date.now();
    await pool(10_000, 200, async () => {
      const who = answeredBy(await predict(clients, {}, m));
      if (who === 'main' || who === 'canary') counts[who]++;
      else counts.other++;
    });
    expect(Date.now() - started).toBeLessThan(25_000);
    expect(counts.other).toBe(0);
    expect(Math.abs(counts.main / 100 - 75)).toBeLessThanOrEqual(1.5);
    expect(Math.abs(counts.canary / 100 - 25)).toBeLessThanOrEqual(1.5);
    // 10,000 calls: seconds alone, minutes on a busy machine.
  }, 240_000);

  it('REST and gRPC interleave on one port (and one h2c connection carries many calls)', async () => {
    const tasks: Promise<string | undefined>[] = [];
    for (let i = 0; i < 50; i++) {
      tasks.push(predict(clients, { strData: `g${i}` }, md({ seldon: 'iris', namespace: 'a' })).then(answeredBy));
      tasks.push(
        request(`${gw.url}/seldon/a/iris/api/v1.0/predictions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"data":{"ndarray":[[1]]}}' }).then(async (r) => {
          await r.body.text();
          return r.statusCode === 200 ? 'rest' : `rest ${r.statusCode}`;
        }),
      );
    }
    const out = await Promise.all(tasks);
    expect(out.filter((x) => x === 'iris-a')).toHaveLength(50);
    expect(out.filter((x) => x === 'rest')).toHaveLength(50);
  });

  it('non-gRPC HTTP/2 requests are REST (served as over HTTP/1.1; no route: the REST 404 JSON)', async () => {
    const session = http2.connect(gw.url);
    session.on('error', () => undefined);
    const send = async (path: string): Promise<[http2.IncomingHttpHeaders, string]> => {
      const req = session.request({ ':method': 'POST', ':path': path, 'content-type': 'application/json' });
      req.end('{}');
      const [headers] = (await once(req, 'response')) as [http2.IncomingHttpHeaders];
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (d: string) => (body += d));
      await once(req, 'end');
      return [headers, body];
    };
    const [served] = await send('/seldon/a/iris/api/v1.0/predictions');
    const [headers, body] = await send('/seldon/a/nope/api/v1.0/predictions');
    session.close();
    expect(served[':status']).toBe(200);
    expect(headers[':status']).toBe(404);
    expect(headers['content-type']).toBe('application/json');
    const parsed = JSON.parse(body) as { status: { code: number; reason: string; status: string; info: string } };
    expect(parsed.status).toMatchObject({ code: 404, reason: 'NO_ROUTE', status: 'FAILURE' });
    expect(parsed.status.info).toContain('/seldon/a/nope/api/v1.0/predictions');
  });

  it('a :path with a dot segment only encoded separators delimit is INTERNAL (BAD_REQUEST), trailers-only', async () => {
    const session = http2.connect(gw.url);
    session.on('error', () => undefined);
    const req = session.request({ ':method': 'POST', ':path': '/seldon.protos.Seldon/..%2fPredict', 'content-type': 'application/grpc', te: 'trailers', seldon: 'iris', namespace: 'a' });
    req.end();
    const [headers, flags] = (await once(req, 'response')) as [http2.IncomingHttpHeaders, number];
    req.resume();
    session.close();
    expect(flags & http2.constants.NGHTTP2_FLAG_END_STREAM).toBeTruthy();
    expect(headers[':status']).toBe(200);
    expect(headers['content-type']).toBe('application/grpc');
    expect(headers['grpc-status']).toBe('13');
    expect(decodeURIComponent(String(headers['grpc-message']))).toContain('".." segments');
  });

  it('a :path with a dot segment is resolved before routing, as Envoy normalises it', async () => {
    const session = http2.connect(gw.url);
    session.on('error', () => undefined);
    const req = session.request({ ':method': 'POST', ':path': '/seldon.protos.Seldon/../Predict', 'content-type': 'application/grpc', te: 'trailers', seldon: 'iris', namespace: 'a' });
    req.end();
    const [headers] = (await once(req, 'response')) as [http2.IncomingHttpHeaders, number];
    req.resume();
    await once(req, 'end');
    session.close();
    // `/Predict` is no gRPC method the generated routes serve: no route, as for any other such path.
    expect(headers['grpc-status'] ?? (req as unknown as { rstCode?: number }).rstCode).toBeDefined();
    expect(decodeURIComponent(String(headers['grpc-message']))).toContain('no route for gRPC /Predict');
  });

  it('survives garbage after the preface and keeps serving', async () => {
    for (const junk of [Buffer.from('this is not an HTTP/2 frame at all\r\n\r\n'), Buffer.alloc(64, 0xff), Buffer.from('000004080000000000', 'hex')]) {
      const s = net.connect(gw.port, '127.0.0.1');
      s.on('error', () => undefined);
      await once(s, 'connect');
      s.write('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
      s.write(junk);
      await Promise.race([once(s, 'close'), new Promise((r) => setTimeout(r, 300))]);
      s.destroy();
    }
    // A preface cut short, then half-closed (Node never notices that FIN: the idle timeout ends it).
    const s = net.connect(gw.port, '127.0.0.1');
    s.on('error', () => undefined);
    await once(s, 'connect');
    s.end('PRI * HTTP/2.0\r\n');
    await once(s, 'finish');
    // Served while that connection sits half-closed (the gateway has its bytes and FIN), and after it is reset.
    expect(answeredBy(await predict(clients, {}, md({ seldon: 'iris', namespace: 'a' })))).toBe('iris-a');
    s.destroy();
    expect(answeredBy(await predict(clients, {}, md({ seldon: 'iris', namespace: 'a' })))).toBe('iris-a');
  });

  it('counts gRPC calls in the shared metrics with the gRPC status as code', async () => {
    const text = await gw.metrics.registry.getSingleMetricAsString('seldon_gateway_requests_total');
    expect(text).toMatch(/namespace="a",deployment="iris",predictor="default",protocol="grpc",kind="primary",code="0"} [1-9]/);
    expect(text).toMatch(/protocol="grpc",kind="primary",code="9"} 1/);
  });
});

describe('gRPC routing in single-namespace mode', () => {
  let backend: GrpcBackend;
  let other: GrpcBackend;
  let gw: TestGateway;
  let clients: GrpcClients;
  beforeAll(async () => {
    backend = await startGrpcBackend({ name: 'models-iris' });
    other = await startGrpcBackend({ name: 'other-iris' });
    gw = await startTestGateway({
      manifests: {
        'iris.yaml': sdep('iris', 'models', { predictors: [{ name: 'default' }] }),
        'other.yaml': sdep('iris', 'other', { predictors: [{ name: 'default' }] }),
      },
      resolve: { 'iris-default.models:5001': backend.port, 'iris-default.other:5001': other.port },
      args: ['--single-namespace', '--namespace', 'models'],
    });
    clients = grpcClients(`127.0.0.1:${gw.port}`);
  });
  afterAll(async () => {
    clients?.close();
    await gw?.stop();
    await backend?.close();
    await other?.close();
  });

  it('a call with only seldon metadata means the gateway namespace', async () => {
    expect(answeredBy(await predict(clients, {}, md({ seldon: 'iris' })))).toBe('models-iris');
    expect(answeredBy(await predict(clients, {}, md({ seldon: 'iris', namespace: 'models' })))).toBe('models-iris');
  });
});
