/**
 * Emissary's t_loadbalancer.py, ported: LoadBalancerTest (which `load_balancer` shapes a Mapping may have),
 * GlobalLoadBalancing (the Module's `load_balancer`, a Mapping's own replacing it) and PerMappingLoadBalancing
 * (ring_hash and maglev by header, source_ip and cookie, with and without a ttl). The KAT's three pods are three
 * kat-server stand-ins on 127.0.0.2–127.0.0.4 at one port, each answering with its own name, behind an
 * EndpointSlice served by the Kubernetes API stand-in; the KAT asserts which pod answered, so do these.
 *
 * Two things read differently here, neither changing a meaning: the KAT's `resolver: endpoint` names a
 * KubernetesEndpointResolver resource its harness creates; the gateway reads no resolver resources and always
 * balances over a Service's ready endpoints, which is `kubernetes-endpoint`, so these Mappings name that. And
 * the KAT's Services map port 80 to the pods' 8080; the gateway reads EndpointSlices, not Services, so the
 * Mappings name the pods' port, as a Service whose port equals its target port would. A Mapping without a
 * load_balancer dials the Service's own address (Emissary's kubernetes-service resolver), here the first pod.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { katGet, katMapping } from '../../helpers/kat.js';
import { katPods, lbGateway, POD_IPS } from '../../helpers/kat-pods.js';
import { poll } from '../../helpers/cli.js';
import { routesReport } from '../../helpers/observability.js';

/** `n` GETs of `path`; the pods that answered, in order, and each answer's Set-Cookie. */
async function backends(port: number, path: string, n: number, headers: Record<string, string> = {}): Promise<{ names: string[]; cookies: (string | string[] | undefined)[] }> {
  const names: string[] = [];
  const cookies: (string | string[] | undefined)[] = [];
  for (let i = 0; i < n; i++) {
    const r = await katGet(port, path, headers);
    expect(r.status, path).toBe(200);
    names.push((JSON.parse(r.body.toString()) as { backend: string }).backend);
    cookies.push(r.headers['set-cookie']);
  }
  return { names, cookies };
}
const distinct = (names: string[]): number => new Set(names).size;

const lbMapping = (name: string, service: string, lb: string[]): string =>
  katMapping(name, ['hostname: "*"', `prefix: /${name}/`, `service: ${service}`, 'resolver: kubernetes-endpoint', ...(lb.length > 0 ? ['load_balancer:', ...lb.map((l) => `  ${l}`)] : [])]);

describe('GlobalLoadBalancing (t_loadbalancer.py)', () => {
  let pods: Awaited<ReturnType<typeof katPods>>;
  let lb: Awaited<ReturnType<typeof lbGateway>>;
  const N = 'globalloadbalancing';
  beforeAll(async () => {
    pods = await katPods(N);
    const svc = `globalloadbalancing-service:${pods.port}`;
    lb = await lbGateway(
      'globalloadbalancing-service',
      pods.port,
      [
        katMapping(`${N}-header`, ['hostname: "*"', `prefix: /${N}-header/`, `service: ${svc}`, 'load_balancer:', '  policy: ring_hash', '  cookie:', '    name: lb-cookie']),
        katMapping(`${N}-generic`, ['hostname: "*"', `prefix: /${N}-generic/`, `service: ${svc}`]),
      ],
      ['resolver: kubernetes-endpoint', 'load_balancer:', '  policy: ring_hash', '  header: LB-HEADER'],
    );
    await poll(
      'routed',
      async () => (await katGet(lb.gw.port, `/${N}-generic/`)).status,
      (s) => s === 200,
      10_000,
    );
  });
  afterAll(async () => {
    await lb?.stop();
    await pods?.close();
  });

  it("the Mapping's own cookie policy replaces the Module's: no key spreads, LB-HEADER spreads, the cookie sticks", async () => {
    expect(distinct((await backends(lb.gw.port, `/${N}-header/`, 50)).names)).toBe(3);
    expect(distinct((await backends(lb.gw.port, `/${N}-header/`, 50, { 'lb-header': 'yes' })).names)).toBe(3);
    expect(distinct((await backends(lb.gw.port, `/${N}-header/`, 50, { cookie: 'lb-cookie=yes' })).names)).toBe(1);
  });

  it("the Mapping without one takes the Module's header policy: no key spreads, LB-HEADER sticks, the cookie spreads", async () => {
    expect(distinct((await backends(lb.gw.port, `/${N}-generic/`, 50)).names)).toBe(3);
    expect(distinct((await backends(lb.gw.port, `/${N}-generic/`, 50, { 'lb-header': 'yes' })).names)).toBe(1);
    expect(distinct((await backends(lb.gw.port, `/${N}-generic/`, 50, { cookie: 'lb-cookie=yes' })).names)).toBe(3);
  });
});

describe('PerMappingLoadBalancing (t_loadbalancer.py)', () => {
  let pods: Awaited<ReturnType<typeof katPods>>;
  let lb: Awaited<ReturnType<typeof lbGateway>>;
  const N = 'permappingloadbalancing';
  const POLICIES = ['ring_hash', 'maglev'];
  beforeAll(async () => {
    pods = await katPods(N);
    const svc = `permappingloadbalancing-service:${pods.port}`;
    lb = await lbGateway(
      'permappingloadbalancing-service',
      pods.port,
      POLICIES.flatMap((p) => [
        lbMapping(`${N}-header-${p}`, svc, [`policy: ${p}`, 'header: LB-HEADER']),
        lbMapping(`${N}-sourceip-${p}`, svc, [`policy: ${p}`, 'source_ip: true']),
        lbMapping(`${N}-cookie-${p}`, svc, [`policy: ${p}`, 'cookie:', '  name: lb-cookie', '  ttl: 125s', '  path: /foo']),
        lbMapping(`${N}-cookie-no-ttl-${p}`, svc, [`policy: ${p}`, 'cookie:', '  name: lb-cookie']),
      ]),
      null,
    );
    await poll(
      'routed',
      async () => (await katGet(lb.gw.port, `/${N}-header-maglev/`)).status,
      (s) => s === 200,
      10_000,
    );
  });
  afterAll(async () => {
    await lb?.stop();
    await pods?.close();
  });

  describe.each(POLICIES)('%s', (p) => {
    it('header: without LB-HEADER the three pods answer; with it one does', async () => {
      expect(distinct((await backends(lb.gw.port, `/${N}-header-${p}/`, 50)).names)).toBe(3);
      expect(distinct((await backends(lb.gw.port, `/${N}-header-${p}/`, 50, { 'lb-header': 'yes' })).names)).toBe(1);
    });

    it('source_ip: all 50 from one client address reach one pod', async () => {
      const { names } = await backends(lb.gw.port, `/${N}-sourceip-${p}/`, 50);
      expect(distinct(names)).toBe(1);
      expect(names.filter((n) => n === names[0])).toHaveLength(50);
    });

    it('cookie with ttl and path: without the cookie each answer sets one (Max-Age=125, Path=/foo) and the three pods answer; with it, one pod and no Set-Cookie', async () => {
      const fresh = await backends(lb.gw.port, `/${N}-cookie-${p}/`, 50);
      for (const c of fresh.cookies) {
        expect(typeof c).toBe('string');
        expect(c).toContain('lb-cookie=');
        expect(c).toContain('Max-Age=125');
        expect(c).toContain('Path=/foo');
      }
      expect(distinct(fresh.names)).toBe(3);
      const kept = await backends(lb.gw.port, `/${N}-cookie-${p}/`, 50, { cookie: 'lb-cookie=yes' });
      expect(kept.cookies.every((c) => c === undefined)).toBe(true);
      expect(distinct(kept.names)).toBe(1);
    });

    it('cookie without ttl: with the cookie, one pod and no Set-Cookie', async () => {
      const kept = await backends(lb.gw.port, `/${N}-cookie-no-ttl-${p}/`, 50, { cookie: 'lb-cookie=yes' });
      expect(kept.cookies.every((c) => c === undefined)).toBe(true);
      expect(distinct(kept.names)).toBe(1);
    });
  });
});

describe('LoadBalancerTest (t_loadbalancer.py)', () => {
  let pods: Awaited<ReturnType<typeof katPods>>;
  let lb: Awaited<ReturnType<typeof lbGateway>>;
  const N = 'loadbalancertest';
  beforeAll(async () => {
    pods = await katPods('loadbalancertest-http');
    const svc = `loadbalancertest-service:${pods.port}`;
    lb = await lbGateway(
      'loadbalancertest-service',
      pods.port,
      [
        katMapping(`${N}-0`, ['hostname: "*"', `prefix: /${N}-0/`, `service: ${svc}`]),
        lbMapping(`${N}-1`, svc, ['policy: round_robin']),
        lbMapping(`${N}-2`, svc, ['policy: ring_hash', 'header: test-header']),
        lbMapping(`${N}-3`, svc, ['policy: ring_hash', 'source_ip: True']),
        lbMapping(`${N}-4`, svc, ['policy: ring_hash', 'cookie:', '  name: test-cookie']),
        lbMapping(`${N}-5`, svc, ['policy: ring_hash', 'cookie:', '  name: test-cookie', 'header: test-header', 'source_ip: True']),
        lbMapping(`${N}-6`, svc, ['policy: round_robin', 'cookie:', '  name: test-cookie']),
        lbMapping(`${N}-7`, svc, ['policy: rr']),
        lbMapping(`${N}-8`, svc, ['policy: least_request']),
        lbMapping(`${N}-9`, svc, ['policy: least_request', 'cookie:', '  name: test-cookie']),
      ],
      null,
    );
    await poll(
      'routed',
      async () => (await katGet(lb.gw.port, `/${N}-0/`)).status,
      (s) => s === 200,
      10_000,
    );
  });
  afterAll(async () => {
    await lb?.stop();
    await pods?.close();
  });

  it.each([0, 1, 2, 3, 4, 8])('[%i] a valid load_balancer: 200 from a pod', async (i) => {
    const r = await katGet(lb.gw.port, `/${N}-${i}/`);
    expect(r.status).toBe(200);
    expect(POD_IPS.slice(0, 3).map((_, p) => `loadbalancertest-http-${p + 1}`)).toContain((JSON.parse(r.body.toString()) as { backend: string }).backend);
  });

  it.each([5, 6, 7, 9])('[%i] an invalid load_balancer drops its Mapping: 404, with the reason in /routes', async (i) => {
    expect((await katGet(lb.gw.port, `/${N}-${i}/`)).status).toBe(404);
    const reasons = (await routesReport(`http://127.0.0.1:${lb.gw.adminPort}`, 'kat')).reasons;
    expect(reasons.some((r) => r.startsWith(`Mapping "${N}-${i}" dropped: load_balancer`))).toBe(true);
  });
});
