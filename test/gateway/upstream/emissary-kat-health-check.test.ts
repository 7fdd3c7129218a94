/**
 * Emissary's t_active_health_check.py NoHealthCheckTest, ported whole: five pods of a HealthCheckServer behind a
 * round_robin Mapping with no health check; `/healthcheck/makeUnhealthy/` makes the pod that receives it answer
 * 500 to every later request (cmd/kat-server/services/health_check_server.go: that request itself still gets
 * 200), and with nothing to eject it, one answer in five is that pod's 500. The KAT sends 1000 requests and
 * allows ±100 around 800/200 for Envoy's spread; the gateway's round robin visits the five pods in turn, so 100
 * requests give exactly 20 to each pod and exactly 20 500s. That is Emissary's meaning, which the gateway has
 * with `--outlier-detection off`; by default the gateway's passive endpoint health ejects a pod failing while
 * its peers answer (docs/routing.md#endpoint-health), a difference by design that migrate-check names: the
 * second describe shows it. The Mapping's own part (served, a 500 relayed as sent) is in
 * test/gateway/rest/emissary-kat-refused-keys.test.ts beside ActiveHealthCheckTest.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { katGet, katMapping } from '../../helpers/kat.js';
import { katPods, lbGateway } from '../../helpers/kat-pods.js';
import { poll } from '../../helpers/cli.js';
import { routesReport } from '../../helpers/observability.js';

const PODS = 5;

/** Five HealthCheckServer pods and one gateway over them (`args` its extra flags); what each pod received, in order. */
async function healthCheckPods(args: string[]): Promise<{ port: number; seen: string[][]; healthy: boolean[]; stop(): Promise<void> }> {
  const seen: string[][] = Array.from({ length: PODS }, () => []);
  const healthy: boolean[] = Array.from({ length: PODS }, () => true);
  // The KAT's HealthCheckServer: 200 while healthy, 500 after it received /makeUnhealthy/.
  const server =
    (pod: number) =>
    (req: IncomingMessage, res: ServerResponse): void => {
      seen[pod]!.push(req.url ?? '');
      const status = healthy[pod] ? 200 : 500;
      if (req.url === '/makeUnhealthy/') healthy[pod] = false;
      const body = JSON.stringify({ backend: `healthcheck-${pod + 1}`, request: { url: req.url } });
      res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    };
  const pods = await katPods('healthcheck', PODS, server);
  const resolver = ['apiVersion: getambassador.io/v3alpha1', 'kind: KubernetesEndpointResolver', 'name: endpoint'].join('\n');
  const mapping = katMapping('healthcheck-server-health', [
    'hostname: "*"',
    'prefix: /healthcheck/',
    `service: healthcheck-server:${pods.port}`,
    'resolver: endpoint',
    'load_balancer:',
    '  policy: round_robin',
  ]);
  const lb = await lbGateway('healthcheck-server', pods.port, [resolver, mapping], null, PODS, args).catch(async (err: unknown) => {
    await pods.close();
    throw err;
  });
  await poll(
    'routed',
    async () => (await katGet(lb.gw.port, '/healthcheck/')).status,
    (s) => s === 200,
    10_000,
  );
  expect(await routesReport(`http://127.0.0.1:${lb.gw.adminPort}`, 'kat')).toMatchObject({ state: 'accepted', reasons: [] });
  return {
    port: lb.gw.port,
    seen,
    healthy,
    async stop() {
      await lb.stop();
      await pods.close();
    },
  };
}

/** Phase 1: makeUnhealthy, answered 200 by the one pod that received it; that pod's index. */
async function makeOneUnhealthy(h: Awaited<ReturnType<typeof healthCheckPods>>): Promise<number> {
  expect((await katGet(h.port, '/healthcheck/')).status).toBe(200);
  expect((await katGet(h.port, '/healthcheck/makeUnhealthy/')).status).toBe(200);
  expect(h.seen.filter((urls) => urls.includes('/makeUnhealthy/'))).toHaveLength(1);
  expect(h.healthy.filter((ok) => !ok)).toHaveLength(1);
  return h.healthy.indexOf(false);
}

/** Phases 2 and 3: `n` GETs; each answer's status and the pod that wrote it, and what each pod received meanwhile. */
async function phase(h: Awaited<ReturnType<typeof healthCheckPods>>, n: number): Promise<{ statuses: number[]; backends: string[]; received: string[][] }> {
  const before = h.seen.map((urls) => urls.length);
  const statuses: number[] = [];
  const backends: string[] = [];
  for (let i = 0; i < n; i++) {
    const r = await katGet(h.port, '/healthcheck/');
    statuses.push(r.status);
    backends.push((JSON.parse(r.body.toString('utf8')) as { backend: string }).backend);
  }
  return { statuses, backends, received: h.seen.map((urls, pod) => urls.slice(before[pod]!)) };
}

describe("NoHealthCheckTest (t_active_health_check.py), Emissary's meaning: --outlier-detection off", () => {
  let h: Awaited<ReturnType<typeof healthCheckPods>>;
  beforeAll(async () => {
    h = await healthCheckPods(['--outlier-detection', 'off']);
  });
  afterAll(async () => {
    await h?.stop();
  });

  it("without a health check the unhealthy pod keeps its turn: 80 answers 200, 20 answer 500 (that pod's, as sent), 20 to each pod", async () => {
    const sick = await makeOneUnhealthy(h);
    const { statuses, backends, received } = await phase(h, 100);
    expect(statuses.filter((s) => s === 200)).toHaveLength(80);
    expect(statuses.filter((s) => s === 500)).toHaveLength(20);
    expect(new Set(backends.filter((_, i) => statuses[i] === 500))).toEqual(new Set([`healthcheck-${sick + 1}`]));
    expect(received.map((urls) => urls.length)).toEqual(Array.from({ length: PODS }, () => 20));
    expect(new Set(received.flat())).toEqual(new Set(['/']));
  });
});

describe("NoHealthCheckTest (t_active_health_check.py), the gateway's default: passive endpoint health (a difference by design)", () => {
  let h: Awaited<ReturnType<typeof healthCheckPods>>;
  beforeAll(async () => {
    h = await healthCheckPods([]);
  });
  afterAll(async () => {
    await h?.stop();
  });

  it('the pod answering 500 while its peers answer 200 is ejected after a few of its errors: later requests all reach healthy pods', async () => {
    const sick = await makeOneUnhealthy(h);
    const { statuses, received } = await phase(h, 100);
    const errors = statuses.filter((s) => s === 500).length;
    // docs/routing.md#endpoint-health: at least 5 errors, out after about 5–8 of them.
    expect(errors).toBeGreaterThanOrEqual(5);
    expect(errors).toBeLessThan(20);
    expect(received[sick]!.length).toBe(errors);
    // Once out (30 s, longer than this phase), the last answers are all 200.
    expect(statuses.slice(-50).every((s) => s === 200)).toBe(true);
  });
});
