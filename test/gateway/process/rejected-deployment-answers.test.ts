/**
 * A request for a SeldonDeployment the gateway rejected: the 404 (REST JSON, gRPC UNIMPLEMENTED
 * message) names the deployment and says why, as /routes does, so the client need not ask the
 * admin port. Real gateway, real HTTP client, the real @grpc/grpc-js client.
 */
import * as grpc from '@grpc/grpc-js';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { grpcClients, type GrpcClients } from '../../fixtures/grpc-backend.js';
import { md, predict } from '../../helpers/grpc.js';
import { sdep, startTestGateway, type TestGateway } from '../../helpers/gateway.js';

const WHY = 'deployment models/iris is rejected: predictor name "main" is used twice';

describe('a request for a rejected deployment', () => {
  let gw: TestGateway;
  let clients: GrpcClients;

  beforeAll(async () => {
    gw = await startTestGateway({ manifests: { 'iris.yaml': sdep('iris', 'models', { predictors: [{ name: 'main' }, { name: 'main', traffic: 20 }] }) } });
    clients = grpcClients(`127.0.0.1:${gw.port}`);
  });
  afterAll(async () => {
    clients?.close();
    await gw?.stop();
  });

  it('REST: 404 NO_ROUTE whose info names the deployment and the reason /routes shows', async () => {
    const routes = (await (await request(`${gw.adminUrl}/routes`)).body.json()) as { deployments: { name: string; state: string; reasons: string[] }[] };
    expect(routes.deployments.find((d) => d.name === 'iris')).toMatchObject({ state: 'rejected', reasons: ['predictor name "main" is used twice'] });
    const r = await request(`${gw.url}/seldon/models/iris/api/v1.0/predictions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"data":{"ndarray":[[1]]}}' });
    expect(r.statusCode).toBe(404);
    expect(await r.body.json()).toEqual({ status: { code: 404, info: `no route for /seldon/models/iris/api/v1.0/predictions: ${WHY}`, reason: 'NO_ROUTE', status: 'FAILURE' } });
  });

  it('gRPC: UNIMPLEMENTED with the same reason in its message', async () => {
    const o = await predict(clients, { strData: 'x' }, md({ seldon: 'iris', namespace: 'models' }));
    if (o.ok) throw new Error('expected a failure, got OK');
    expect(o.error.code).toBe(grpc.status.UNIMPLEMENTED);
    expect(o.error.details).toBe(`no route for gRPC /seldon.protos.Seldon/Predict with seldon="iris" namespace="models": ${WHY}`);
  });
});
