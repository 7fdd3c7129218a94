/**
 * Groups of hand-written Mappings as Emissary builds them (irhttpmappinggroup.py, irbasemappinggroup.py,
 * v3route.py): core keys every Mapping of a group must share, weights never scaled up (the rest falls
 * through to the next route, one draw per request as Envoy's runtime fractions), a regex or gRPC Mapping's
 * default `rewrite: /`, the Host as sent, and a redirect's Location that keeps its authority.
 */
import { describe, expect, it } from 'vitest';
import { match } from '../../../routing/table/match.js';
import { randomPicker, seededRandom } from '../../../routing/table/pick.js';
import { redirectLocation } from '../../../routing/table/redirect.js';
import { anythingDropped, checkDeployments } from '../../../routing/emissary/migration-report.js';
import { buildTable } from '../../../routing/table/builder.js';
import { emissaryWeights } from '../../../routing/values/weights.js';
import { DEFAULT_COMPILE_OPTIONS, type RouteRequest, type RouteTable, type Routed } from '../../../routing/types.js';
import type { SeldonDeployment } from '../../../routing/seldon/deployment.js';
import type { Redirect } from '../../../routing/emissary/mapping-policy.js';

const P = '/seldon/ns';

function sdep(name: string, docs: string[][]): SeldonDeployment {
  const config = docs.map((lines) => ['apiVersion: getambassador.io/v3alpha1', 'kind: Mapping', ...lines].join('\n')).join('\n---\n');
  return {
    apiVersion: 'machinelearning.seldon.io/v1',
    kind: 'SeldonDeployment',
    metadata: { name, namespace: 'ns', annotations: { 'seldon.io/ambassador-config': config } },
    spec: { predictors: [{ name: 'main', graph: { name: 'm', type: 'MODEL' } }] },
  } as SeldonDeployment;
}

const table = (...docs: string[][]): RouteTable => buildTable([sdep('sd', docs)], DEFAULT_COMPILE_OPTIONS);

function req(path: string, host = 'gw.example', kind: 'rest' | 'grpc' = 'rest', headers: Record<string, string> = {}): RouteRequest {
  return { kind, method: kind === 'grpc' ? 'POST' : 'GET', path, host, header: (n) => headers[n] };
}

function routed(t: RouteTable, r: RouteRequest, seed = 1): Routed {
  const d = match(t, r, randomPicker(seededRandom(seed)));
  if (!d.ok) throw new Error(`not routed: ${d.status} ${d.info}`);
  return d;
}

/** How often each Mapping takes `n` requests, one seeded picker for all. */
function histogram(t: RouteTable, path: string, n: number): Record<string, number> {
  const picker = randomPicker(seededRandom(42));
  const out: Record<string, number> = {};
  for (let i = 0; i < n; i++) {
    const d = match(t, req(path), picker);
    const k = d.ok ? d.backend.origin.predictor : String(d.status);
    out[k] = (out[k] ?? 0) + 1;
  }
  return out;
}

const reasons = (t: RouteTable, key = 'ns/sd'): string => t.deployments.get(key)!.reasons.join('\n');

describe('emissaryWeights (normalize_weights_in_mappings)', () => {
  it.each<[(number | null)[], (number | string)[]]>([
    [[10], [100]],
    [[150], [100]],
    [[null], [100]],
    [
      [10, 10],
      [10, 10],
    ],
    [
      [10, null],
      [10, 90],
    ],
    [
      [100, null],
      [100, 0],
    ],
    [
      [0, 0],
      [0, 0],
    ],
    [
      [null, null, null],
      [33, 33, 34],
    ],
    // Python's round, half to even: 2.5 is 2, and the last weightless Mapping takes the rest.
    [
      [95, null, null],
      [95, 2, 3],
    ],
    [
      [85, null, null, null, null],
      [85, 4, 4, 4, 3],
    ],
    [
      [91, null, null, null, null, null],
      [91, 2, 2, 2, 2, 1],
    ],
    [
      [60, 60],
      [100, 'over 100'],
    ],
    [
      [60, 60, null],
      [60, 'over 100', 40],
    ],
    [
      [-5, 10],
      ['negative', 100],
    ],
  ])('%j → %j', (weights, want) => {
    const got = emissaryWeights(weights).map((s) => ('percent' in s ? s.percent : s.refused));
    want.forEach((w, i) => (typeof w === 'number' ? expect(got[i]).toBe(w) : expect(got[i]).toContain(w)));
  });
});

describe('core keys: a Mapping whose core key differs from its group is refused', () => {
  it('bypass_auth on a canary: refused whatever its name, with the reason; the group keeps the plain Mapping', () => {
    for (const canary of ['a-canary', 'z-canary']) {
      const t = table(['name: stable', `prefix: ${P}/x/`, 'service: stable'], [`name: ${canary}`, `prefix: ${P}/x/`, 'weight: 10', 'bypass_auth: true', 'service: canary']);
      expect(histogram(t, `${P}/x/y`, 200)).toEqual({ stable: 200 });
      expect(reasons(t)).toContain(`Mapping ns/sd/${canary} refused: its bypass_auth: true != -unset- (every Mapping of a group must share bypass_auth)`);
      expect(t.deployments.get('ns/sd')!.state).toBe('degraded');
    }
  });

  it('the same value on every Mapping is accepted; circuit_breakers and load_balancer compare as values, not as text', () => {
    const t = table(
      ['name: a', `prefix: ${P}/x/`, 'weight: 30', 'bypass_auth: true', 'circuit_breakers: [{max_connections: 5, max_requests: 7}]', 'service: a'],
      ['name: b', `prefix: ${P}/x/`, 'bypass_auth: true', 'circuit_breakers:', '- max_requests: 7', '  max_connections: 5', 'service: b'],
      ['name: c', `prefix: ${P}/y/`, 'load_balancer: {policy: round_robin}', 'service: c'],
      ['name: d', `prefix: ${P}/y/`, 'weight: 50', 'load_balancer: {policy: least_request}', 'service: d'],
      ['name: e', `prefix: ${P}/y/`, 'weight: 20', 'connect_timeout_ms: 100', 'service: e'],
    );
    expect(Object.keys(histogram(t, `${P}/x/`, 100)).sort()).toEqual(['a', 'b']);
    expect(reasons(t)).toMatch(/Mapping ns\/sd\/d refused: its load_balancer: \{"policy":"least_request"\} != \{"policy":"round_robin"\}/);
    expect(reasons(t)).toMatch(/Mapping ns\/sd\/e refused: its connect_timeout_ms: 100 != -unset-/);
    expect(histogram(t, `${P}/y/`, 50)).toEqual({ c: 50 });
  });

  it('migrate-check lists a Mapping its group refuses as dropped, with the reason', () => {
    const d = sdep('sd', [
      ['name: stable', `prefix: ${P}/x/`, 'service: stable'],
      ['name: skip', `prefix: ${P}/x/`, 'weight: 10', 'bypass_auth: true', 'service: canary'],
    ]);
    const checks = checkDeployments([d], buildTable([d], DEFAULT_COMPILE_OPTIONS));
    expect(checks[0]!.mappings.map((m) => [m.name, m.dropped])).toEqual([
      ['stable', null],
      ['skip', 'refused by its group: its bypass_auth: true != -unset- (every Mapping of a group must share bypass_auth)'],
    ]);
    expect(anythingDropped(checks, undefined)).toBe(true);
  });

  it('across deployments: the refused Mapping’s deployment is told why', () => {
    const t = buildTable(
      [sdep('one', [['name: plain', `prefix: ${P}/shared/`, 'service: one-main']]), sdep('two', [['name: skip', `prefix: ${P}/shared/`, 'weight: 50', 'bypass_auth: true', 'service: two-main']])],
      DEFAULT_COMPILE_OPTIONS,
    );
    expect(t.deployments.get('ns/two')!.state).toBe('degraded');
    expect(reasons(t, 'ns/two')).toContain('Mapping ns/two/skip refused: its bypass_auth: true');
  });
});

/** Each member's backend in the group at `path`, by Mapping name. */
function membersAt(t: RouteTable, path: string): Record<string, Routed['backend']> {
  const out: Record<string, Routed['backend']> = {};
  for (let seed = 1; Object.keys(out).length < 2 && seed < 200; seed++) {
    const d = routed(t, req(path), seed);
    out[d.backend.origin.predictor] = d.backend;
  }
  return out;
}

describe("group-level keys: Envoy's route takes them from the group, not from each Mapping", () => {
  const pair = (stable: string[], canary: string[]): RouteTable =>
    table(['name: stable', `prefix: ${P}/x/`, 'service: stable', ...stable], ['name: stable-canary', `prefix: ${P}/x/`, 'weight: 50', 'service: canary', ...canary]);

  it('add_request_headers and add_response_headers are merged over the group, the last by name winning a shared name; both Mappings send all', () => {
    const t = pair(['add_request_headers: {x-a: stable, x-both: stable}', 'add_response_headers: {x-r: stable}'], ['add_request_headers: {x-b: canary, x-both: canary}']);
    const m = membersAt(t, `${P}/x/`);
    for (const name of ['stable', 'stable-canary']) {
      expect(m[name]!.mapping!.requestHeaders!.add.map((a) => `${a.name}=${a.value}`)).toEqual(['x-a=stable', 'x-both=canary', 'x-b=canary']);
      expect(m[name]!.mapping!.responseHeaders!.add.map((a) => `${a.name}=${a.value}`)).toEqual(['x-r=stable']);
    }
    expect(reasons(t)).toContain(
      "add_request_headers is the route's in Emissary, not each Mapping's: merged from ns/sd/stable, ns/sd/stable-canary applies to every Mapping of the group, also to ns/sd/stable, ns/sd/stable-canary, which set it otherwise or not at all",
    );
    expect(reasons(t)).toContain(
      "add_response_headers is the route's in Emissary, not each Mapping's: merged from ns/sd/stable applies to every Mapping of the group, also to ns/sd/stable-canary, which sets it otherwise or not at all",
    );
  });

  it("retry_policy, cors and remove_request_headers: the last Mapping by name that sets one gives it to all; the other keys stay each Mapping's own", () => {
    const t = pair(
      ['retry_policy: {retry_on: 5xx, num_retries: 1}', 'remove_request_headers: [x-drop-a]', 'timeout_ms: 1000', 'host_rewrite: a.example'],
      ['retry_policy: {retry_on: gateway-error, num_retries: 3}', 'cors: {origins: "https://a.example"}', 'timeout_ms: 2000'],
    );
    const m = membersAt(t, `${P}/x/`);
    for (const name of ['stable', 'stable-canary']) {
      expect(m[name]!.retry).toEqual({ retryOn: 'gateway-error', numRetries: 3, perTryTimeoutMs: 0 });
      expect(m[name]!.cors!.origins).toEqual(['https://a.example']);
      expect(m[name]!.mapping!.requestHeaders!.remove).toEqual(['x-drop-a']);
    }
    expect([m.stable!.timeoutMs, m['stable-canary']!.timeoutMs]).toEqual([1000, 2000]);
    expect([m.stable!.mapping!.hostRewrite, m['stable-canary']!.mapping?.hostRewrite ?? null]).toEqual(['a.example', null]);
    expect(reasons(t)).toContain(
      "retry_policy is the route's in Emissary, not each Mapping's: ns/sd/stable-canary's (the last by name that sets it) applies to every Mapping of the group, also to ns/sd/stable, which sets it otherwise or not at all",
    );
    expect(reasons(t)).toContain(
      "cors is the route's in Emissary, not each Mapping's: ns/sd/stable-canary's (the last by name that sets it) applies to every Mapping of the group, also to ns/sd/stable, which sets it otherwise or not at all",
    );
  });

  it("regex_rewrite from the group replaces each Mapping's rewrite; the path the model gets is the same from both", () => {
    const t = pair(['rewrite: /v1/'], ["regex_rewrite: {pattern: '^/seldon/ns/x/(.*)$', substitution: '/v2/\\1'}"]);
    expect(reasons(t)).toContain(
      `${P}/x/: regex_rewrite is the route's in Emissary, not each Mapping's: ns/sd/stable-canary's (the last by name that sets it) applies to every Mapping of the group, also to ns/sd/stable, which sets it otherwise or not at all`,
    );
    const paths = new Set<string>();
    for (let seed = 1; seed < 40; seed++) paths.add(routed(t, req(`${P}/x/predict`), seed).upstreamPath);
    expect([...paths]).toEqual(['/v2/predict']);
  });

  it('the same value on every Mapping, or a key set by neither: nothing to warn and nothing changed', () => {
    const t = pair(['retry_policy: {retry_on: 5xx, num_retries: 1}'], ['retry_policy: {num_retries: 1, retry_on: 5xx}', 'timeout_ms: 99']);
    expect(reasons(t)).not.toMatch(/the route's in Emissary/);
    expect(t.deployments.get('ns/sd')!.state).toBe('accepted');
  });

  it("each Mapping's add_linkerd_headers names its own service, whatever the group adds", () => {
    const t = pair(['add_linkerd_headers: true', 'add_request_headers: {x-a: "1"}'], ['add_linkerd_headers: true']);
    const m = membersAt(t, `${P}/x/`);
    const l5d = (name: string): string | undefined => m[name]!.mapping!.requestHeaders!.add.find((a) => a.name === 'l5d-dst-override')?.value;
    expect([l5d('stable'), l5d('stable-canary')]).toEqual(['stable.ns:80', 'canary.ns:80']);
    expect(m['stable-canary']!.mapping!.requestHeaders!.add.map((a) => a.name)).toEqual(['x-a', 'l5d-dst-override']);
  });

  it('migrate-check tells the team, and drops nothing for it', () => {
    const d = sdep('sd', [
      ['name: stable', `prefix: ${P}/x/`, 'service: stable'],
      ['name: stable-canary', `prefix: ${P}/x/`, 'weight: 10', 'retry_policy: {retry_on: 5xx, num_retries: 2}', 'service: canary'],
    ]);
    const checks = checkDeployments([d], buildTable([d], DEFAULT_COMPILE_OPTIONS));
    expect(checks[0]!.mappings.map((m) => [m.name, m.dropped])).toEqual([
      ['stable', null],
      ['stable-canary', null],
    ]);
    expect(checks[0]!.reasons).toEqual([
      `${P}/x/: retry_policy is the route's in Emissary, not each Mapping's: ns/sd/stable-canary's (the last by name that sets it) applies to every Mapping of the group, also to ns/sd/stable, which sets it otherwise or not at all`,
    ]);
    expect(anythingDropped(checks, undefined)).toBe(false);
  });

  it("across deployments of one namespace: the group's retry_policy reaches the other deployment's Mapping, and both deployments are told", () => {
    const t = buildTable(
      [
        sdep('one', [['name: plain', `prefix: ${P}/shared/`, 'service: one-main']]),
        sdep('two', [['name: retrying', `prefix: ${P}/shared/`, 'weight: 50', 'retry_policy: {retry_on: 5xx, num_retries: 2}', 'service: two-main']]),
      ],
      DEFAULT_COMPILE_OPTIONS,
    );
    const m = membersAt(t, `${P}/shared/`);
    expect([m.plain!.retry?.numRetries, m.retrying!.retry?.numRetries]).toEqual([2, 2]);
    const told = `${P}/shared/: retry_policy is the route's in Emissary, not each Mapping's: ns/two/retrying's (the last by name that sets it) applies to every Mapping of the group, also to ns/one/plain, which sets it otherwise or not at all`;
    expect([reasons(t, 'ns/one'), reasons(t, 'ns/two')]).toEqual([told, told]);
  });

  it('a shadow keeps its own keys and gives the group none', () => {
    const t = table(['name: main', `prefix: ${P}/x/`, 'service: main'], ['name: shadow', `prefix: ${P}/x/`, 'shadow: true', 'retry_policy: {retry_on: 5xx, num_retries: 2}', 'service: shadow']);
    const d = routed(t, req(`${P}/x/`));
    expect(d.backend.retry).toBeNull();
    expect(reasons(t)).not.toMatch(/the route's in Emissary/);
  });
});

describe('weights: what they leave falls through to the next route', () => {
  it('10 and 10 over a catch-all: 10/10/80 (never scaled to 50/50)', () => {
    const t = table(['name: w1', `prefix: ${P}/w/`, 'weight: 10', 'service: w1'], ['name: w2', `prefix: ${P}/w/`, 'weight: 10', 'service: w2'], ['name: all', `prefix: ${P}/`, 'service: all']);
    const h = histogram(t, `${P}/w/x`, 20_000);
    expect(Math.abs(h['w1']! / 20_000 - 0.1)).toBeLessThan(0.01);
    expect(Math.abs(h['w2']! / 20_000 - 0.1)).toBeLessThan(0.01);
    expect(Math.abs(h['all']! / 20_000 - 0.8)).toBeLessThan(0.01);
  });

  it('without a next route the rest is a 404; a lone Mapping takes all whatever its weight', () => {
    const t = table(
      ['name: w1', `prefix: ${P}/w/`, 'weight: 30', 'service: w1'],
      ['name: w2', `prefix: ${P}/w/`, 'weight: 20', 'service: w2'],
      ['name: lone', `prefix: ${P}/l/`, 'weight: 5', 'service: l'],
    );
    const h = histogram(t, `${P}/w/x`, 20_000);
    expect(Math.abs(h['404']! / 20_000 - 0.5)).toBeLessThan(0.015);
    expect(histogram(t, `${P}/l/`, 100)).toEqual({ lone: 100 });
  });

  it('a shadow Mapping mirrors its weight in percent: 0 to 100, anything else refuses it with the reason', () => {
    const t = table(
      ['name: main', `prefix: ${P}/s/`, 'service: main'],
      ['name: half', `prefix: ${P}/s/`, 'shadow: true', 'weight: 50', 'service: half'],
      ['name: neg', `prefix: ${P}/s/`, 'shadow: true', 'weight: -5', 'service: neg'],
      ['name: over', `prefix: ${P}/s/`, 'shadow: true', 'weight: 150', 'service: over'],
    );
    const d = routed(t, req(`${P}/s/x`));
    expect(d.group.mirrors.map((m) => [m.backend.origin.predictor, m.percent])).toEqual([['half', 50]]);
    expect(reasons(t)).toContain(`Mapping "neg" dropped: a shadow Mapping's weight must be 0 to 100 (the percent of requests mirrored), not -5`);
    expect(reasons(t)).toContain(`Mapping "over" dropped: a shadow Mapping's weight must be 0 to 100 (the percent of requests mirrored), not 150`);
  });

  it('one draw per request for every route, as Envoy: 20 % stays in the first group, the second (30, 30) gets what lies between', () => {
    const t = table(
      ['name: a', `prefix: ${P}/w/x/`, 'weight: 10', 'service: a'],
      ['name: b', `prefix: ${P}/w/x/`, 'weight: 10', 'service: b'],
      ['name: c', `prefix: ${P}/w/`, 'weight: 30', 'service: c'],
      ['name: d', `prefix: ${P}/w/`, 'weight: 30', 'service: d'],
      ['name: e', `prefix: ${P}/`, 'weight: 50', 'service: e'],
      ['name: f', `prefix: ${P}/`, 'service: f'],
    );
    // r < 10: a; r < 20: b; r < 30: c; r < 60: d; r < 50 would be e but was taken: e none; the rest f.
    const h = histogram(t, `${P}/w/x/y`, 20_000);
    for (const [k, p] of [
      ['a', 0.1],
      ['b', 0.1],
      ['c', 0.1],
      ['d', 0.3],
      ['f', 0.4],
    ] as const)
      expect(Math.abs((h[k] ?? 0) / 20_000 - p)).toBeLessThan(0.015);
    expect(h['e']).toBeUndefined();
  });
});

describe('rewrite, case and Host', () => {
  it('prefix_regex: the default rewrite / replaces the whole path; an explicit one is honoured; case_sensitive: false leaves the regex alone', () => {
    const t = table(
      ['name: rx', `prefix: "${P}/rx/[a-z]+"`, 'prefix_regex: true', 'service: rx'],
      ['name: rw', `prefix: "${P}/rw/.*"`, 'prefix_regex: true', 'rewrite: /v2/', 'service: rw'],
      ['name: nc', `prefix: "${P}/nc/[a-z]+"`, 'prefix_regex: true', 'case_sensitive: false', 'service: nc'],
    );
    expect(routed(t, req(`${P}/rx/abc?x=1`)).upstreamPath).toBe('/?x=1');
    expect(routed(t, req(`${P}/rw/a/b`)).upstreamPath).toBe('/v2/');
    expect(routed(t, req(`${P}/nc/abc`)).upstreamPath).toBe('/');
    expect(match(t, req(`${P}/nc/ABC`), randomPicker(seededRandom(1))).ok).toBe(false);
  });

  it('gRPC: rewrite renames the service the model is called with; "" leaves the path; the default / drops the service name', () => {
    const t = table(
      ['name: renamed', 'grpc: true', 'prefix: /legacy.Seldon/', 'rewrite: /seldon.protos.Seldon/', 'headers: {namespace: ns}', 'service: g:5001'],
      ['name: kept', 'grpc: true', 'prefix: /seldon.protos.Seldon/', 'rewrite: ""', 'headers: {namespace: ns}', 'service: g:5001'],
      ['name: bare', 'grpc: true', 'prefix: /bare.Svc/', 'headers: {namespace: ns}', 'service: g:5001'],
    );
    const g = (path: string): Routed => routed(t, req(path, 'gw', 'grpc', { namespace: 'ns' }));
    expect(g('/legacy.Seldon/Predict').upstreamPath).toBe('/seldon.protos.Seldon/Predict');
    expect(g('/seldon.protos.Seldon/Predict').upstreamPath).toBe('/seldon.protos.Seldon/Predict');
    expect(g('/bare.Svc/Predict').upstreamPath).toBe('/Predict');
    expect(reasons(t)).toMatch(/bare: a gRPC Mapping without rewrite is rewritten to "\/"/);
  });

  it('host, hostname and host_regex match the Host as sent: case and port count', () => {
    const t = table(
      ['name: plain', `prefix: ${P}/h/`, 'service: p'],
      ['name: host', `prefix: ${P}/h/`, 'host: api.example.com', 'service: h'],
      ['name: glob', `prefix: ${P}/g/`, 'hostname: "*.Example.com"', 'service: g'],
      ['name: pre', `prefix: ${P}/g/`, 'hostname: "api.*"', 'service: g'],
      ['name: re', `prefix: ${P}/r/`, 'host: "[a-z]+\\\\.example\\\\.org"', 'host_regex: true', 'service: r'],
    );
    const who = (path: string, host: string): string => {
      const d = match(t, req(path, host), randomPicker(seededRandom(1)));
      return d.ok ? d.backend.origin.predictor : String(d.status);
    };
    expect(who(`${P}/h/`, 'api.example.com')).toBe('host');
    expect(who(`${P}/h/`, 'API.example.com')).toBe('plain');
    expect(who(`${P}/h/`, 'api.example.com:443')).toBe('plain');
    expect(who(`${P}/g/`, 'a.Example.com')).toBe('glob');
    expect(who(`${P}/g/`, '.Example.com')).toBe('glob');
    expect(who(`${P}/g/`, 'a.example.com')).toBe('404');
    expect(who(`${P}/g/`, 'api.x')).toBe('pre');
    expect(who(`${P}/g/`, 'API.x')).toBe('404');
    expect(who(`${P}/r/`, 'abc.example.org')).toBe('re');
    expect(who(`${P}/r/`, 'ABC.example.org')).toBe('404');
  });
});

describe('redirect Location', () => {
  it('a path that does not start with / is made one: the authority is always the configured one', () => {
    const t = table(['name: r', `prefix: ${P}/r/`, 'service: good.example.com', 'host_redirect: true']);
    const d = routed(t, req(`${P}/r/x`));
    // A rewrite built past the parser's check (a pattern that eats the leading /) still cannot move the authority.
    const r: Redirect = { host: 'good.example.com', scheme: null, path: null, prefix: null, status: 301, regex: { pattern: '^/.*?/r/', substitution: '', apply: (p) => p.replace(/^\/.*?\/r\//, '') } };
    const loc = redirectLocation(r, d.group, `${P}/r/@evil.com/x?q=1`, 'http');
    expect(loc).toBe('http://good.example.com/@evil.com/x?q=1');
    expect(new URL(loc).host).toBe('good.example.com');
  });
});
