/**
 * Defaults a team moving from Ambassador depends on, as Emissary's Envoy has them: request heads up
 * to 60 KiB (HTTP/1.1 and HTTP/2), and `x-envoy-upstream-service-time` on every answer of a model
 * (REST headers, gRPC initial metadata). Real gateway, real model servers, real clients.
 */
import http2 from 'node:http2';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { grpcClients, startGrpcBackend, type GrpcBackend, type GrpcClients } from '../../fixtures/grpc-backend.js';
import { startHttpBackend, type HttpBackend } from '../../fixtures/http-backend.js';
import { md, predict } from '../../helpers/grpc.js';
import { sdep, startTestGateway, type TestGateway } from '../../helpers/gateway.js';
import { raw } from '../../helpers/net.js';

const PREDICT = '/seldon/models/iris/api/v1.0/predictions';

describe("Envoy's defaults", () => {
  let model: HttpBackend;
  let grpcModel: GrpcBackend;
  let gw: TestGateway;
  let clients: GrpcClients;

  beforeAll(async () => {
    // The model takes heads as large as the gateway (Node's own default is 16 KiB).
    model = await startHttpBackend({ name: 'iris', maxHeaderSize: 128 * 1024 });
    grpcModel = await startGrpcBackend({ name: 'iris-grpc' });
    gw = await startTestGateway({
      manifests: { 'iris.yaml': sdep('iris', 'models', { predictors: [{ name: 'main' }] }) },
      resolve: { 'iris-main.models:8000': model.port, 'iris-main.models:5001': grpcModel.port },
    });
    clients = grpcClients(`127.0.0.1:${gw.port}`);
  });
  afterAll(async () => {
    clients?.close();
    await gw?.stop();
    await model?.close();
    await grpcModel?.close();
  });

  it('a 50 KiB request header reaches the model by default (HTTP/1.1), byte for byte', async () => {
    const big = 'j'.repeat(50 * 1024);
    const before = model.requests.length;
    const res = await request(`${gw.url}${PREDICT}`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-big-token': big }, body: '{}' });
    await res.body.text();
    expect(res.statusCode).toBe(200);
    expect(model.requests[before]!.headers['x-big-token']).toBe(big);
  });

  it('a head over 60 KiB gets 431 and reaches no model', async () => {
    const before = model.requests.length;
    const out = await raw(gw.port, `GET ${PREDICT} HTTP/1.1\r\nHost: x\r\nX-Big: ${'b'.repeat(62 * 1024)}\r\n\r\n`);
    expect(out.text).toMatch(/^HTTP\/1\.1 431/);
    expect(model.requests.length).toBe(before);
  });

  it('a 50 KiB request header reaches the model over HTTP/2 (REST on h2c)', async () => {
    const big = 'k'.repeat(50 * 1024);
    const before = model.requests.length;
    const session = http2.connect(`http://127.0.0.1:${gw.port}`);
    try {
      const status = await new Promise<number>((resolve, reject) => {
        const s = session.request({ ':method': 'POST', ':path': PREDICT, 'content-type': 'application/json', 'x-big-token': big });
        s.on('response', (h) => resolve(Number(h[':status'])));
        s.on('error', reject);
        s.end('{}');
        s.resume();
      });
      expect(status).toBe(200);
    } finally {
      session.close();
    }
    expect(model.requests[before]!.headers['x-big-token']).toBe(big);
  });

  it('REST answers say how long the model took: x-envoy-upstream-service-time, whole milliseconds', async () => {
    const started = performance.now();
    const res = await request(`${gw.url}${PREDICT}?sleep=120`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    await res.body.text();
    const elapsed = performance.now() - started;
    expect(res.statusCode).toBe(200);
    const v = res.headers['x-envoy-upstream-service-time'];
    expect(v).toMatch(/^[0-9]+$/);
    // The model waited 120 ms before its head; the gateway cannot have seen it sooner, nor later than the client did.
    expect(Number(v)).toBeGreaterThanOrEqual(120);
    expect(Number(v)).toBeLessThanOrEqual(Math.ceil(elapsed));
  });

  it("a model's own x-envoy-upstream-service-time is replaced by the gateway's, as Envoy's router does", async () => {
    const liar = await startHttpBackend({
      name: 'liar',
      handler: (_req, res) => {
        res.writeHead(200, { 'content-type': 'application/json', 'X-Envoy-Upstream-Service-Time': '99999', 'x-kept': 'yes', 'content-length': 26 });
        res.end('{"data":{"ndarray":[[2]]}}');
      },
    });
    const own = await startTestGateway({
      manifests: { 'liar.yaml': sdep('liar', 'models', { predictors: [{ name: 'main' }] }) },
      resolve: { 'liar-main.models:8000': liar.port },
    });
    try {
      const answer = (await raw(own.port, 'POST /seldon/models/liar/api/v1.0/predictions HTTP/1.1\r\nHost: gw\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}')).text;
      expect(answer.startsWith('HTTP/1.1 200 ')).toBe(true);
      const head = answer.split('\r\n\r\n')[0]!;
      const times = head.split('\r\n').filter((l) => /^x-envoy-upstream-service-time:/i.test(l));
      expect(times).toHaveLength(1);
      expect(times[0]).toMatch(/^x-envoy-upstream-service-time: [0-9]+$/);
      expect(Number(times[0]!.split(': ')[1])).toBeLessThan(99999);
      expect(head).toMatch(/\r\nx-kept: yes\r\n/i);
      expect(answer.endsWith('{"data":{"ndarray":[[2]]}}')).toBe(true);
    } finally {
      await own.stop();
      await liar.close();
    }
  });

  it('gRPC answers carry it in their initial metadata', async () => {
    const started = performance.now();
    const o = await predict(clients, { strData: 'sleep:80' }, md({ seldon: 'iris', namespace: 'models' }));
    const elapsed = performance.now() - started;
    expect(o.ok).toBe(true);
    if (!o.ok) return;
    const v = o.result.headers.get('x-envoy-upstream-service-time');
    expect(v).toHaveLength(1);
    expect(String(v[0])).toMatch(/^[0-9]+$/);
    expect(Number(v[0])).toBeGreaterThanOrEqual(80);
    expect(Number(v[0])).toBeLessThanOrEqual(Math.ceil(elapsed));
  });

  it("the gateway's own answers (no model asked) carry none", async () => {
    const res = await request(`${gw.url}/seldon/models/nothing-here/api/v1.0/predictions`, { method: 'POST', body: '{}' });
    await res.body.text();
    expect(res.statusCode).toBe(404);
    expect(res.headers['x-envoy-upstream-service-time']).toBeUndefined();
  });
});
