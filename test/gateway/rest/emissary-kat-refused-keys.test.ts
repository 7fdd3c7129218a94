/**
 * Emissary's KAT classes whose config is a key the gateway does not run, ported as what the gateway does
 * with each (routing/emissary/module.ts, mapping-keys.ts): t_grpc_web.py AcceptanceGrpcWebTest and
 * t_grpc_bridge.py AcceptanceGrpcBridgeTest (their Module is refused with its reason), t_grpc_stats.py's three
 * classes (grpc_stats: Envoy's gRPC statistics filter, not run: refused with its reason), t_envoy_logs.py's three classes
 * (Envoy's access log: harmless, said as a warning, the gateway serves and writes no file at the path), and
 * t_active_health_check.py ActiveHealthCheckTest (its Mapping is dropped with the reason in /routes, the
 * rest of the deployment served) and NoHealthCheckTest (served; the model's 500 reaches the client as sent).
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HttpBackend } from '../../fixtures/http-backend.js';
import { routesReport } from '../../helpers/observability.js';
import { katGateway, katGet, katMapping, startKatBackend, type KatGateway } from '../../helpers/kat.js';
import { parseAmbassadorModule } from '../../../routing/emissary/module.js';

const moduleText = (lines: string[]): string => ['apiVersion: getambassador.io/v3alpha1', 'kind: Module', 'name: ambassador', 'config:', ...lines.map((l) => `  ${l}`)].join('\n');
const SVC = 'target.default:8000';
/** The KAT harness's resolver the health-check classes name (`resolver: endpoint`). */
const endpointResolver = ['apiVersion: getambassador.io/v3alpha1', 'kind: KubernetesEndpointResolver', 'name: endpoint'].join('\n');
const healthMapping = (name: string, prefix: string, extra: string[] = []): string =>
  katMapping(name, ['hostname: "*"', `prefix: ${prefix}`, `service: ${SVC}`, 'resolver: endpoint', 'load_balancer:', '  policy: round_robin', ...extra]);

describe('AcceptanceGrpcWebTest', () => {
  it('the class’s Module (enable_grpc_web: true) is refused with its reason', () => {
    expect(() => parseAmbassadorModule(moduleText(['enable_grpc_web: true']))).toThrow('config.enable_grpc_web: not honoured: gRPC-Web is not translated');
  });

  it('a gateway given it does not start', async () => {
    const model = await startKatBackend('target');
    try {
      await expect(
        katGateway({
          module: ['enable_grpc_web: true'],
          mappings: [katMapping('grpc-web', ['hostname: "*"', 'prefix: /echo.EchoService/', `service: ${SVC}`, 'grpc: true'])],
          resolve: { [SVC]: model.port },
        }),
      ).rejects.toThrow(/enable_grpc_web/);
    } finally {
      await model.close();
    }
  });
});

describe('AcceptanceGrpcBridgeTest', () => {
  it('the class’s Module (enable_grpc_http11_bridge: true) is refused with its reason', () => {
    expect(() => parseAmbassadorModule(moduleText(['enable_grpc_http11_bridge: true']))).toThrow('config.enable_grpc_http11_bridge: not honoured: the gRPC HTTP/1.1 bridge is not run');
  });
});

describe.each([
  ['AcceptanceGrpcStatsTest', ['grpc_stats:', '  all_methods: true', '  upstream_stats: true']],
  ['GrpcStatsTestOnlySelectedServices', ['grpc_stats:', '  all_methods: true', '  services:', '    - name: echo.EchoService', '      method_names: [EchoRequest]']],
  ['GrpcStatsTestNoUpstreamAllMethodsFalseInvalidKeys', ['grpc_stats:', '  all_methods: false', '  upstream_stats: false']],
])('%s', (_, lines) => {
  it('the class’s Module is refused with the reason: Envoy’s gRPC statistics are not made', () => {
    expect(() => parseAmbassadorModule(moduleText(lines))).toThrow(
      "config.grpc_stats: not honoured: Envoy's gRPC statistics filter is not run: its per-service and per-method counters are not made (the gateway's gRPC metrics on /metrics are its own)",
    );
  });
});

const LOG_WHY = "Envoy's access log; the gateway's is --access-log";
describe.each([
  ['EnvoyLogTest', ['envoy_log_format: MY_REQUEST %RESPONSE_CODE% "%REQ(:AUTHORITY)%" "%REQ(USER-AGENT)%" "%REQ(X-REQUEST-ID)%" "%UPSTREAM_HOST%"'], ['envoy_log_path', 'envoy_log_format']],
  ['EnvoyLogJSONTest', ['envoy_log_format:', '  protocol: "%PROTOCOL%"', '  duration: "%DURATION%"', 'envoy_log_type: json'], ['envoy_log_path', 'envoy_log_format', 'envoy_log_type']],
  ['EnvoyLogTypeJSONTest', ['envoy_log_format:', '  protocol: "%PROTOCOL%"', '  duration: "%DURATION%"', 'envoy_log_type: typed_json'], ['envoy_log_path', 'envoy_log_format', 'envoy_log_type']],
])('%s', (_, lines, keys) => {
  let dir: string;
  let logPath: string;
  let model: HttpBackend;
  let kat: KatGateway;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'sgw-kat-envoy-log-'));
    logPath = join(dir, 'ambassador.log');
    model = await startKatBackend('target');
    kat = await katGateway({
      module: [`envoy_log_path: ${logPath}`, ...lines],
      mappings: [katMapping('target', ['hostname: "*"', 'prefix: /target/', `service: ${SVC}`])],
      resolve: { [SVC]: model.port },
    });
  });
  afterAll(async () => {
    await kat?.stop();
    await model?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('the class’s Module is read: its Envoy log keys are harmless, each said as a warning with its reason', () => {
    const m = parseAmbassadorModule(moduleText([`envoy_log_path: ${logPath}`, ...lines]));
    expect(m.warnings).toEqual(keys.map((k) => `ambassador Module config.${k}: not read here: ${LOG_WHY}`));
  });

  it('the gateway serves under it, and writes no Envoy log at the path (its access log is --access-log)', async () => {
    const before = model.requests.length;
    const r = await katGet(kat.gw.port, '/target/', { 'x-case': 'envoy-log' });
    expect(r.status).toBe(200);
    expect((JSON.parse(r.body.toString('utf8')) as { backend: string }).backend).toBe('target');
    expect(model.requests.slice(before).map((q) => [q.url, q.headers['x-case']])).toEqual([['/', 'envoy-log']]);
    expect(existsSync(logPath)).toBe(false);
  });
});

describe('ActiveHealthCheckTest', () => {
  let model: HttpBackend;
  let kat: KatGateway;
  beforeAll(async () => {
    model = await startKatBackend('target');
    kat = await katGateway({
      module: null,
      mappings: [
        endpointResolver,
        healthMapping('healthcheck-server-health', '/healthcheck/', [
          'health_checks:',
          '- unhealthy_threshold: 1',
          '  interval: 1s',
          '  health_check:',
          '    http:',
          '      path: /healthcheck/actualcheck/',
        ]),
        healthMapping('healthcheck-server-plain', '/healthcheck-plain/'),
      ],
      resolve: { [SVC]: model.port },
    });
  });
  afterAll(async () => {
    await kat?.stop();
    await model?.close();
  });

  it('/routes: the class’s Mapping is dropped with the reason, the deployment degraded, not rejected', async () => {
    const report = await routesReport(kat.gw.adminUrl, 'kat');
    expect(report.state).toBe('degraded');
    expect(report.reasons).toEqual(['Mapping "healthcheck-server-health" dropped: key "health_checks" (active health checks are not run; the gateway\'s endpoint health is passive) not honoured']);
  });

  it('its prefix is not served (404, the model not called); the deployment’s other Mapping is', async () => {
    const before = model.requests.length;
    const dropped = await katGet(kat.gw.port, '/healthcheck/');
    expect(dropped.status).toBe(404);
    expect(model.requests.length).toBe(before);
    const served = await katGet(kat.gw.port, '/healthcheck-plain/', { 'x-case': 'plain' });
    expect(served.status).toBe(200);
    expect(model.requests.slice(before).map((q) => [q.url, q.headers['x-case']])).toEqual([['/', 'plain']]);
  });
});

describe('NoHealthCheckTest', () => {
  let model: HttpBackend;
  let kat: KatGateway;
  beforeAll(async () => {
    model = await startKatBackend('target');
    kat = await katGateway({ module: null, mappings: [endpointResolver, healthMapping('healthcheck-server-health', '/healthcheck/')], resolve: { [SVC]: model.port } });
  });
  afterAll(async () => {
    await kat?.stop();
    await model?.close();
  });

  it('the class’s Mapping is served, none dropped', async () => {
    expect(await routesReport(kat.gw.adminUrl, 'kat')).toMatchObject({ state: 'accepted', reasons: [] });
    const before = model.requests.length;
    const r = await katGet(kat.gw.port, '/healthcheck/', { 'x-case': 'ok' });
    expect(r.status).toBe(200);
    expect(model.requests.slice(before).map((q) => [q.url, q.headers['x-case']])).toEqual([['/', 'ok']]);
  });

  it('with no health check, a model’s 500 reaches the client as the model sent it', async () => {
    const before = model.requests.length;
    const r = await katGet(kat.gw.port, '/healthcheck/', { 'x-case': 'unhealthy', 'kat-req-http-requested-status': '500' });
    expect(r.status).toBe(500);
    expect((JSON.parse(r.body.toString('utf8')) as { backend: string }).backend).toBe('target');
    expect(model.requests.slice(before).map((q) => [q.url, q.headers['x-case']])).toEqual([['/', 'unhealthy']]);
  });
});
