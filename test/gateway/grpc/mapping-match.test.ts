/**
 * Hand-written gRPC Mappings end to end (docs/routing.md#mapping-keys): the real @grpc/grpc-js client and
 * backends. A gRPC Mapping's hostname, host, headers and precedence choose between Mappings on one path as
 * on REST; one with a key the gateway does not honour receives no call.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { grpcClients, startGrpcBackend, type GrpcBackend } from '../../fixtures/grpc-backend.js';
import { answeredBy, md, predict } from '../../helpers/grpc.js';
import { sdep, startTestGateway, type TestGateway } from '../../helpers/gateway.js';

const NS = 'seldon';
const grpcMapping = (lines: string[], headers: string[] = []): string =>
  ['apiVersion: getambassador.io/v2', 'kind: Mapping', 'grpc: true', 'prefix: /seldon.protos.Seldon/', 'rewrite: /seldon.protos.Seldon/', ...lines, 'headers:', `  namespace: ${NS}`, ...headers].join(
    '\n',
  );

const CONFIG = [
  grpcMapping(['name: plain', 'service: plain-svc:5001']),
  grpcMapping(['name: glob', 'hostname: "*.example.com"', 'service: glob-svc:5001']),
  grpcMapping(['name: tenant', 'service: tenant-svc:5001'], ['  x-tenant: gold']),
  grpcMapping(['name: first', 'precedence: 5', 'hostname: "first.example.net"', 'service: first-svc:5001'], ['  x-tenant: gold']),
  grpcMapping(['name: labelled', 'labels: {ambassador: [{x: y}]}', 'service: labelled-svc:5001'], ['  x-labelled: "yes"']),
].join('\n---\n');

describe('hand-written gRPC Mappings', () => {
  const backends: Record<string, GrpcBackend> = {};
  let gw: TestGateway;

  beforeAll(async () => {
    const resolve: Record<string, number> = {};
    for (const name of ['plain', 'glob', 'tenant', 'first', 'labelled']) {
      backends[name] = await startGrpcBackend({ name });
      resolve[`${name}-svc.${NS}:5001`] = backends[name]!.port;
    }
    gw = await startTestGateway({ manifests: { 'g.yaml': sdep('g', NS, { predictors: [{ name: 'main' }] }, { 'seldon.io/ambassador-config': CONFIG }) }, resolve });
  });
  afterAll(async () => {
    await gw?.stop();
    await Promise.all(Object.values(backends).map((b) => b.close()));
  });

  /** Who answered a Predict sent with `authority` as :authority and `extra` metadata. */
  async function who(authority: string, extra: Record<string, string> = {}): Promise<string | undefined> {
    const clients = grpcClients(`127.0.0.1:${gw.port}`, { 'grpc.default_authority': authority });
    try {
      const o = await predict(clients, { strData: 'x' }, md({ namespace: NS, ...extra }));
      return o.ok ? answeredBy(o) : `status ${o.error.code} ${o.error.details}`;
    } finally {
      clients.close();
    }
  }

  it(':authority globs, header constraints and precedence choose the Mapping', async () => {
    expect(await who('a.example.com')).toBe('glob');
    expect(await who('gw.local')).toBe('plain');
    expect(await who('gw.local', { 'x-tenant': 'gold' })).toBe('tenant');
    // precedence 5 wins over the longer header constraints of the others, on its own Host.
    expect(await who('first.example.net', { 'x-tenant': 'gold' })).toBe('first');
    // Emissary's order: `:authority` + `*.example.com` (23) outweighs `x-tenant` + `gold` (12).
    expect(await who('a.example.com', { 'x-tenant': 'gold' })).toBe('glob');
  });

  it('a gRPC Mapping with a key the gateway does not honour receives no call', async () => {
    expect(await who('gw.local', { 'x-labelled': 'yes' })).toBe('plain');
    expect(backends['labelled']!.calls).toHaveLength(0);
    expect(gw.state.current.deployments.get(`${NS}/g`)?.reasons.join('\n')).toMatch(/Mapping "labelled" dropped: key "labels"/);
  });
});
