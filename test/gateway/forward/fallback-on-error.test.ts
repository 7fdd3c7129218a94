/**
 * Fallback on `error` (docs/routing.md#fallback-models), over real sockets: the predictor's final
 * attempt fails retriably (a model answering 503 after the route's retries, a refused connection,
 * gRPC UNAVAILABLE) and the request goes to the fallback with the body the gateway kept for retries:
 * the client gets the fallback's 200 marked `x-seldon-fallback: error`, the failure still counts
 * against the predictor. A body larger than the retry buffer cannot go again (counted `skipped`,
 * the predictor's answer stands); a feedback never falls back. The fallback's forward starts afresh
 * (its own retries), and each forward is counted once.
 */
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { grpcClients, startGrpcBackend, type GrpcBackend, type GrpcClients } from '../../fixtures/grpc-backend.js';
import { startHttpBackend, type HttpBackend } from '../../fixtures/http-backend.js';
import { answeredBy, md, predict, startRawUpstream, type RawUpstream } from '../../helpers/grpc.js';
import { sdep, startTestGateway, waitFor, type TestGateway } from '../../helpers/gateway.js';
import { metric } from '../../helpers/metrics.js';
import { freePort } from '../../helpers/net.js';
import { LogCapture } from '../../helpers/observability.js';

const FALLBACK = 'seldon.io/gateway-fallback';
const BODY = '{"data":{"ndarray":[[4,2]]}}';

describe('a predictor whose final attempt fails falls back on error', () => {
  let broken: HttpBackend;
  let brokenGrpc: RawUpstream;
  let small: HttpBackend;
  /** Answers 503 to every other request, beginning with the first. */
  let flaky: HttpBackend;
  let smallGrpc: GrpcBackend;
  let gw: TestGateway;
  let clients: GrpcClients;
  const logs = new LogCapture();

  beforeAll(async () => {
    broken = await startHttpBackend({
      name: 'broken',
      handler: (_req, res) => {
        res.writeHead(503, { 'content-type': 'application/json' });
        res.end('{"status":{"code":503,"info":"busy"}}');
      },
    });
    brokenGrpc = await startRawUpstream((stream) => stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '14', 'grpc-message': 'model busy' }, { endStream: true }));
    small = await startHttpBackend({ name: 'small' });
    let calls = 0;
    flaky = await startHttpBackend({
      name: 'flaky',
      handler: (_req, res) => {
        const busy = calls++ % 2 === 0;
        res.writeHead(busy ? 503 : 200, { 'content-type': 'application/json' });
        res.end(busy ? '{"status":{"code":503,"info":"busy"}}' : '{"data":{"ndarray":[[1]]}}');
      },
    });
    smallGrpc = await startGrpcBackend({ name: 'small-grpc' });
    const closed = await freePort();
    const predictors = [{ name: 'main' }, { name: 'small' }];
    const on = { [FALLBACK]: 'to: {predictor: small}\non: [error]', 'seldon.io/ambassador-retries': '2' };
    gw = await startTestGateway({
      manifests: {
        'err.yaml': sdep('err', 'm', { predictors }, on),
        'gone.yaml': sdep('gone', 'm', { predictors }, on),
        'tgt.yaml': sdep('tgt', 'm', { predictors: [{ name: 'main' }] }, { [FALLBACK]: 'to: {target: rules}\non: error' }),
        'tgtg.yaml': sdep('tgtg', 'm', { predictors: [{ name: 'main' }] }, { [FALLBACK]: 'to: {target: rules-grpc}\non: error' }),
        'dep.yaml': sdep('dep', 'm', { predictors: [{ name: 'main' }] }, { [FALLBACK]: 'to: {deployment: baseline}\non: error' }),
        'baseline.yaml': sdep('baseline', 'm', { predictors: [{ name: 'cpu' }] }),
        'again.yaml': sdep('again', 'm', { predictors }, on),
        'tee.yaml': sdep('tee', 'm', { predictors: [{ name: 'main' }, { name: 'small' }, { name: 'copy', shadow: true }] }, on),
      },
      resolve: {
        'err-main.m:8000': broken.port,
        'err-main.m:5001': brokenGrpc.port,
        'err-small.m:8000': small.port,
        'err-small.m:5001': smallGrpc.port,
        'gone-main.m:8000': closed,
        'gone-small.m:8000': small.port,
        'tgt-main.m:8000': broken.port,
        'tgt-main.m:5001': brokenGrpc.port,
        'tgtg-main.m:5001': brokenGrpc.port,
        'again-main.m:8000': broken.port,
        'again-small.m:8000': flaky.port,
        'tee-main.m:8000': broken.port,
        'tee-small.m:8000': small.port,
        'tee-copy.m:8000': small.port,
        'dep-main.m:8000': broken.port,
        'dep-main.m:5001': brokenGrpc.port,
        'baseline-cpu.m:8000': small.port,
        'baseline-cpu.m:5001': smallGrpc.port,
      },
      // The target's one address serves both protocols in these tests' stand-ins: REST on `small`, gRPC (h2c) on `small-grpc`.
      accessSink: logs,
      args: ['--retry-buffer', '1KiB', '--fallback-target', `rules=http://127.0.0.1:${small.port}`, '--fallback-target', `rules-grpc=http://127.0.0.1:${smallGrpc.port}`],
    });
    clients = grpcClients(`127.0.0.1:${gw.port}`);
  });
  afterAll(async () => {
    clients?.seldon.close();
    await gw?.stop();
    await broken?.close();
    await brokenGrpc?.close();
    await small?.close();
    await flaky?.close();
    await smallGrpc?.close();
  });

  const post = async (n: string, body: string, path = 'predictions') => {
    const r = await request(`${gw.url}/seldon/m/${n}/api/v1.0/${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    return { status: r.statusCode, headers: r.headers, text: await r.body.text() };
  };
  const count = (deployment: string, protocol: string, result: string): Promise<number> =>
    metric(gw.adminUrl, `seldon_gateway_fallbacks_total{namespace="m",deployment="${deployment}",predictor="main",protocol="${protocol}",reason="error",to="predictor/small",result="${result}"}`);

  it('REST: a model answering 503 after its retries; the fallback gets the body whole and answers, marked', async () => {
    const before = broken.requests.length;
    const smallBefore = small.requests.length;
    const r = await post('err', BODY);
    expect(r.status).toBe(200);
    expect(r.headers['x-seldon-fallback']).toBe('error');
    expect(r.headers['x-seldon-model']).toBe('m/err/small');
    expect(JSON.parse(r.text).meta.tags.backend).toBe('small');
    // The first attempt and its two retries, then the fallback once.
    expect(broken.requests.length - before).toBe(3);
    expect(small.requests.slice(smallBefore).map((q) => [q.url, q.body.toString()])).toEqual([['/api/v1.0/predictions', BODY]]);
    expect(await count('err', 'rest', 'answered')).toBe(1);
    // The predictor's failure still counts against it; the answer is the fallback's.
    expect(await metric(gw.adminUrl, 'seldon_gateway_requests_total{namespace="m",deployment="err",predictor="main",protocol="rest",kind="primary",code="503"}')).toBe(1);
    expect(await metric(gw.adminUrl, 'seldon_gateway_requests_total{namespace="m",deployment="err",predictor="small",protocol="rest",kind="primary",code="200"}')).toBe(1);
  });

  it("the fallback's forward starts afresh: its own retries after the predictor spent all of its, each counted once", async () => {
    const before = broken.requests.length;
    const r = await post('again', BODY);
    expect(r.status).toBe(200);
    expect(r.headers['x-seldon-fallback']).toBe('error');
    expect(r.text).toBe('{"data":{"ndarray":[[1]]}}');
    expect(broken.requests.length - before).toBe(3);
    // The fallback's first attempt answered 503 and its first retry answered: the request's retries were not the predictor's spent ones.
    expect(flaky.requests.map((q) => [q.url, q.body.toString()])).toEqual([
      ['/api/v1.0/predictions', BODY],
      ['/api/v1.0/predictions', BODY],
    ]);
    expect(await metric(gw.adminUrl, 'seldon_gateway_requests_total{namespace="m",deployment="again",predictor="main",protocol="rest",kind="primary",code="503"}')).toBe(1);
    expect(await metric(gw.adminUrl, 'seldon_gateway_requests_total{namespace="m",deployment="again",predictor="small",protocol="rest",kind="primary",code="200"}')).toBe(1);
    expect(await metric(gw.adminUrl, 'seldon_gateway_requests_total{namespace="m",deployment="again",predictor="small",protocol="rest",kind="primary",code="503"}')).toBe(0);
  });

  it('REST: a refused connection; the request has one access line, the answer the client got', async () => {
    const r = await post('gone', BODY);
    expect(r.status).toBe(200);
    expect(r.headers['x-seldon-fallback']).toBe('error');
    expect(r.headers['x-seldon-model']).toBe('m/gone/small');
    expect(await count('gone', 'rest', 'answered')).toBe(1);
    const mine = (): Record<string, unknown>[] => logs.lines().filter((l) => l['path'] === '/seldon/m/gone/api/v1.0/predictions');
    await waitFor(() => mine().length > 0, 3000);
    expect(mine()).toHaveLength(1);
    expect(mine()[0]).toMatchObject({ response_code: 200, deployment: 'gone', predictor: 'small', fallback: 'error' });
  });

  it('gRPC: UNAVAILABLE from the model; the fallback answers, marked in the initial metadata', async () => {
    const before = brokenGrpc.streams.length;
    const o = await predict(clients, { strData: 'x' }, md({ seldon: 'err', namespace: 'm' }));
    expect(o.ok).toBe(true);
    if (o.ok) {
      expect(answeredBy(o)).toBe('small-grpc');
      expect(o.result.headers.get('x-seldon-fallback')).toEqual(['error']);
      expect(o.result.headers.get('x-seldon-model')).toEqual(['m/err/small']);
    }
    expect(brokenGrpc.streams.length - before).toBe(1);
    expect(smallGrpc.calls.at(-1)!.method).toBe('/seldon.protos.Seldon/Predict');
    expect(await count('err', 'grpc', 'answered')).toBe(1);
  });

  it("to an operator's target: REST keeps the path the model would have received; gRPC goes over h2c to an http:// one", async () => {
    const smallBefore = small.requests.length;
    const r = await post('tgt', BODY);
    expect(r.status).toBe(200);
    expect(r.headers['x-seldon-fallback']).toBe('error');
    expect(r.headers['x-seldon-model']).toBe('target/rules');
    expect(small.requests.slice(smallBefore).map((q) => [q.url, q.body.toString()])).toEqual([['/api/v1.0/predictions', BODY]]);
    expect(await metric(gw.adminUrl, 'seldon_gateway_fallbacks_total{namespace="m",deployment="tgt",predictor="main",protocol="rest",reason="error",to="target/rules",result="answered"}')).toBe(1);
    // The target's upstreams outlive a table change (no route names them).
    await gw.write('other.yaml', sdep('other', 'm', { predictors: [{ name: 'main' }] }));
    expect((await post('tgt', BODY)).headers['x-seldon-model']).toBe('target/rules');
    const o = await predict(clients, { strData: 'x' }, md({ seldon: 'tgtg', namespace: 'm' }));
    expect(o.ok).toBe(true);
    if (o.ok) {
      expect(answeredBy(o)).toBe('small-grpc');
      expect(o.result.headers.get('x-seldon-model')).toEqual(['target/rules-grpc']);
    }
  });

  it('to another deployment of the namespace, by its own routing, REST and gRPC', async () => {
    const r = await post('dep', BODY);
    expect(r.status).toBe(200);
    expect(r.headers['x-seldon-fallback']).toBe('error');
    expect(r.headers['x-seldon-model']).toBe('m/baseline/cpu');
    const o = await predict(clients, { strData: 'x' }, md({ seldon: 'dep', namespace: 'm' }));
    expect(o.ok).toBe(true);
    if (o.ok) {
      expect(answeredBy(o)).toBe('small-grpc');
      expect(o.result.headers.get('x-seldon-model')).toEqual(['m/baseline/cpu']);
    }
    expect(
      await metric(gw.adminUrl, 'seldon_gateway_fallbacks_total{namespace="m",deployment="dep",predictor="main",protocol="grpc",reason="error",to="deployment/m/baseline",result="answered"}'),
    ).toBe(1);
  });

  it('the shadow of the route gets its one copy, not one more for the fallback', async () => {
    const r = await post('tee', BODY);
    expect(r.headers['x-seldon-fallback']).toBe('error');
    await waitFor(() => small.requests.some((q) => q.headers['x-envoy-original-path']?.includes('/tee/') === true && q.url === '/api/v1.0/predictions'), 3000);
    expect(await metric(gw.adminUrl, 'seldon_gateway_shadow_requests_total{namespace="m",deployment="tee",predictor="copy",protocol="rest",result="mirrored"}')).toBe(1);
  });

  it('a body larger than the retry buffer cannot go again: counted skipped, the predictor answers', async () => {
    const big = JSON.stringify({ data: { ndarray: [Array.from({ length: 600 }, (_, i) => i)] } });
    expect(big.length).toBeGreaterThan(1024);
    const smallBefore = small.requests.length;
    const r = await post('err', big);
    expect(r.status).toBe(503);
    expect(r.headers['x-seldon-fallback']).toBeUndefined();
    expect(small.requests.length).toBe(smallBefore);
    expect(await count('err', 'rest', 'skipped')).toBe(1);
  });

  it('a feedback never falls back: its predictor answers it', async () => {
    const smallBefore = small.requests.length;
    const r = await post('err', '{"reward":1}', 'feedback');
    expect(r.status).toBe(503);
    expect(r.headers['x-seldon-fallback']).toBeUndefined();
    expect(small.requests.length).toBe(smallBefore);
  });
});
