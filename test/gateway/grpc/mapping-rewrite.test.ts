/**
 * A gRPC Mapping's `rewrite` over real gRPC (@grpc/grpc-js client and server): a Mapping that renames a
 * service calls the model with the new name, `rewrite: ""` leaves the path as called (Emissary's
 * AcceptanceGrpcTest), and a Mapping without `rewrite` gets Emissary's default `/`: the model is called at
 * `/Predict`, which it does not serve (UNIMPLEMENTED), and the deployment's reasons say so.
 */
import * as grpc from '@grpc/grpc-js';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { grpcClients, loadSeldonProtos, startGrpcBackend, type GrpcBackend, type SeldonMessage } from '../../fixtures/grpc-backend.js';
import { answeredBy, md, predict } from '../../helpers/grpc.js';
import { sdep, startTestGateway, type TestGateway } from '../../helpers/gateway.js';

const NS = 'seldon';
const mapping = (lines: string[]): string => ['apiVersion: getambassador.io/v3alpha1', 'kind: Mapping', 'grpc: true', ...lines, 'headers:', `  namespace: ${NS}`].join('\n');

const CONFIG = [
  mapping(['name: renamed', 'prefix: /legacy.Seldon/', 'rewrite: /seldon.protos.Seldon/', 'service: renamed-svc:5001']),
  mapping(['name: asis', 'prefix: /seldon.protos.Seldon/', 'rewrite: ""', 'service: asis-svc:5001']),
  mapping(['name: bare', 'prefix: /bare.Seldon/', 'service: bare-svc:5001']),
].join('\n---\n');

/** A client for the Seldon service under another name: the same methods at `/<service>/<Method>`. */
function renamedClient(address: string, service: string): grpc.Client {
  const def = loadSeldonProtos().seldon;
  const renamed: grpc.ServiceDefinition = Object.fromEntries(Object.entries(def).map(([k, m]) => [k, { ...m, path: m.path.replace('/seldon.protos.Seldon/', `/${service}/`) }]));
  const Ctor = grpc.makeGenericClientConstructor(renamed, service);
  return new Ctor(address, grpc.credentials.createInsecure());
}

function call(client: grpc.Client, req: SeldonMessage): Promise<{ backend?: string; code: number; details?: string }> {
  return new Promise((resolve) => {
    (client as unknown as { Predict: (r: SeldonMessage, m: grpc.Metadata, cb: (e: grpc.ServiceError | null, r?: SeldonMessage) => void) => void }).Predict(req, md({ namespace: NS }), (e, r) =>
      resolve(e ? { code: e.code, details: e.details } : { code: 0, backend: r?.meta?.tags?.['backend']?.stringValue }),
    );
  });
}

describe("a gRPC Mapping's rewrite", () => {
  const backends: Record<string, GrpcBackend> = {};
  let gw: TestGateway;

  beforeAll(async () => {
    const resolve: Record<string, number> = {};
    for (const name of ['renamed', 'asis', 'bare']) {
      backends[name] = await startGrpcBackend({ name });
      resolve[`${name}-svc.${NS}:5001`] = backends[name]!.port;
    }
    gw = await startTestGateway({ manifests: { 'g.yaml': sdep('g', NS, { predictors: [{ name: 'main' }] }, { 'seldon.io/ambassador-config': CONFIG }) }, resolve });
  });
  afterAll(async () => {
    await gw?.stop();
    await Promise.all(Object.values(backends).map((b) => b.close()));
  });

  it('renames the service: the client calls /legacy.Seldon/Predict, the model is called at /seldon.protos.Seldon/Predict', async () => {
    const client = renamedClient(`127.0.0.1:${gw.port}`, 'legacy.Seldon');
    try {
      const r = await call(client, { strData: 'renamed' });
      expect(r).toEqual({ code: 0, backend: 'renamed' });
    } finally {
      client.close();
    }
    expect(backends['renamed']!.calls.map((c) => c.method)).toEqual(['/seldon.protos.Seldon/Predict']);
  });

  it('rewrite "" leaves the path as called (AcceptanceGrpcTest)', async () => {
    const clients = grpcClients(`127.0.0.1:${gw.port}`);
    try {
      const o = await predict(clients, { strData: 'x' }, md({ namespace: NS }));
      expect(answeredBy(o)).toBe('asis');
    } finally {
      clients.close();
    }
    expect(backends['asis']!.calls.map((c) => c.method)).toEqual(['/seldon.protos.Seldon/Predict']);
  });

  it('without rewrite, Emissary’s default / calls the model at /Predict (UNIMPLEMENTED there), and the reasons say so', async () => {
    const client = renamedClient(`127.0.0.1:${gw.port}`, 'bare.Seldon');
    try {
      const r = await call(client, { strData: 'x' });
      expect(r.code).toBe(grpc.status.UNIMPLEMENTED);
    } finally {
      client.close();
    }
    expect(backends['bare']!.calls).toHaveLength(0);
    const routes = (await (await request(`${gw.adminUrl}/routes`)).body.json()) as { deployments: { name: string; reasons: string[] }[] };
    expect(routes.deployments.find((d) => d.name === 'g')!.reasons.join('\n')).toMatch(/bare: a gRPC Mapping without rewrite is rewritten to "\/"/);
  });
});
