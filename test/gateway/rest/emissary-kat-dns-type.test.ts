/**
 * Emissary's t_dns_type.py, ported: LogicalDnsType, LogicalDnsTypeEndpoint, DnsTtl, DnsTtlEndpoint and
 * DnsTtlDnsType. Each class is one Mapping on /foo/ that sets `dns_type: logical_dns`, `respect_dns_ttl: true`
 * or both, with or without `resolver: endpoint`, and asserts only that the request reaches the upstream (200:
 * "not getting a 400 is confirmation that this setting works"). The keys choose how Envoy's cluster resolves
 * the Service's name; the gateway resolves with the system resolver whatever they say (docs/routing.md#mapping-keys:
 * harmless), so each Mapping is served as written. The five run in one gateway, each class's Mapping on
 * /<class>/foo/ so that one request names its class; each test asserts what the kat-server stand-in received.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HttpBackend } from '../../fixtures/http-backend.js';
import { routesReport } from '../../helpers/observability.js';
import { katGateway, katGet, katMapping, startKatBackend, type KatGateway } from '../../helpers/kat.js';

const SVC = 'target.default:8000';
const CLASSES: Record<string, string[]> = {
  LogicalDnsType: ['dns_type: logical_dns'],
  LogicalDnsTypeEndpoint: ['dns_type: logical_dns', 'resolver: endpoint'],
  DnsTtl: ['respect_dns_ttl: true'],
  DnsTtlEndpoint: ['respect_dns_ttl: true', 'resolver: endpoint'],
  DnsTtlDnsType: ['respect_dns_ttl: true', 'dns_type: logical_dns'],
};

describe('t_dns_type.py', () => {
  let model: HttpBackend;
  let kat: KatGateway;
  beforeAll(async () => {
    model = await startKatBackend('target');
    const resolver = ['apiVersion: getambassador.io/v3alpha1', 'kind: KubernetesEndpointResolver', 'name: endpoint'].join('\n');
    const mappings = Object.entries(CLASSES).map(([name, keys]) => katMapping(`${name.toLowerCase()}-foo`, [`prefix: /${name.toLowerCase()}/foo/`, `service: ${SVC}`, 'hostname: "*"', ...keys]));
    kat = await katGateway({ module: null, mappings: [resolver, ...mappings], resolve: { [SVC]: model.port } });
  });
  afterAll(async () => {
    await kat?.stop();
    await model?.close();
  });

  it('every Mapping is served, none dropped; each key is named once as changing nothing here', async () => {
    const report = await routesReport(kat.gw.adminUrl, 'kat');
    // "degraded": the deployment's config says something the gateway does not do, each key said once.
    expect(report).toMatchObject({ state: 'degraded' });
    expect(report.reasons).toEqual([
      'Mapping key "dns_type" changes nothing here: ignored (the gateway resolves with the system resolver)',
      'Mapping key "respect_dns_ttl" changes nothing here: ignored (the gateway resolves with the system resolver)',
    ]);
  });

  for (const name of Object.keys(CLASSES)) {
    it(`${name}: /foo/ reaches the upstream (200), which receives / with the request's own header`, async () => {
      const before = model.requests.length;
      const r = await katGet(kat.gw.port, `/${name.toLowerCase()}/foo/`, { 'x-case': name });
      expect(r.status).toBe(200);
      expect((JSON.parse(r.body.toString('utf8')) as { backend: string }).backend).toBe('target');
      expect(model.requests.slice(before).map((q) => [q.method, q.url, q.headers['x-case']])).toEqual([['GET', '/', name]]);
    });
  }
});
