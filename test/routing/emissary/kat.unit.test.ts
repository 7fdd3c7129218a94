/**
 * Emissary's own acceptance tests for Mapping matching (its KAT suite, python/tests/src/tests/kat/), ported:
 * each block gives the Mappings a KAT class configures (within one SeldonDeployment's namespace, under the
 * gateway's tenant prefix), the queries it sends, and the backend (or status) it expects. What a model and
 * a client receive on those routes is tested over sockets in test/gateway/rest/mapping-*.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { match } from '../../../routing/table/match.js';
import { randomPicker, seededRandom } from '../../../routing/table/pick.js';
import { buildTable } from '../../../routing/table/builder.js';
import { DEFAULT_COMPILE_OPTIONS, type CompileOptions, type RouteRequest, type RouteTable } from '../../../routing/types.js';
import type { SeldonDeployment } from '../../../routing/seldon/deployment.js';

const P = '/seldon/kat';

function table(...args: [Partial<CompileOptions>, ...string[][]] | string[][]): RouteTable {
  const options = Array.isArray(args[0]) ? {} : (args.shift() as Partial<CompileOptions>);
  const docs = args as string[][];
  const config = docs.map((lines) => ['apiVersion: getambassador.io/v3alpha1', 'kind: Mapping', ...lines].join('\n')).join('\n---\n');
  const d = {
    apiVersion: 'machinelearning.seldon.io/v1',
    kind: 'SeldonDeployment',
    metadata: { name: 'kat', namespace: 'kat', annotations: { 'seldon.io/ambassador-config': config } },
    spec: { predictors: [{ name: 'main', graph: { name: 'm', type: 'MODEL' } }] },
  } as SeldonDeployment;
  return buildTable([d], { ...DEFAULT_COMPILE_OPTIONS, ...options });
}

/** The Mapping a query reaches, or the status. */
function query(t: RouteTable, url: string, headers: Record<string, string> = {}, method = 'GET'): string {
  const lower = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
  const req: RouteRequest = { kind: 'rest', method, path: url, host: lower['host'] ?? 'ambassador.kat', header: (n) => lower[n] };
  const d = match(t, req, randomPicker(seededRandom(1)));
  return d.ok ? d.backend.origin.predictor : String(d.status);
}

describe("Emissary's KAT tests for Mapping matching", () => {
  it('t_queryparameter_routing.py QueryParameterRoutingTest: a value picks its Mapping over the plain one', () => {
    const t = table(
      ['name: target1', 'hostname: "*"', `prefix: ${P}/target/`, 'service: http://target1'],
      ['name: target2', 'hostname: "*"', `prefix: ${P}/target/`, 'service: http://target2', 'query_parameters:', '  test_param: target2'],
    );
    expect(query(t, `${P}/target/`)).toBe('target1');
    expect(query(t, `${P}/target/?test_param=target2`)).toBe('target2');
  });

  it('QueryParameterRoutingWithRegexTest: regex_query_parameters, RE2, the whole value', () => {
    const t = table(['name: target', 'hostname: "*"', `prefix: ${P}/target/`, 'service: http://target', 'regex_query_parameters:', '  test_param: "^[a-z].*"']);
    expect(query(t, `${P}/target/?test_param=hello`)).toBe('target');
    expect(query(t, `${P}/target/`)).toBe('404');
    expect(query(t, `${P}/target/?test_param=HeLlO`)).toBe('404');
  });

  it('QueryParameterPresentRoutingTest: ".*" needs the parameter present', () => {
    const t = table(['name: target', 'hostname: "*"', `prefix: ${P}/target/`, 'service: http://target', 'regex_query_parameters:', '  test_param: ".*"']);
    expect(query(t, `${P}/target/?test_param=true`)).toBe('target');
    expect(query(t, `${P}/target/`)).toBe('404');
  });

  it('t_headerrouting.py HeaderRoutingTest: a header value picks its Mapping over the plain one', () => {
    const t = table(
      ['name: target1', 'hostname: "*"', `prefix: ${P}/hr/`, 'service: http://target1'],
      ['name: target2', 'hostname: "*"', `prefix: ${P}/hr/`, 'service: http://target2', 'headers:', '  X-Route: target2'],
    );
    expect(query(t, `${P}/hr/`)).toBe('target1');
    expect(query(t, `${P}/hr/`, { 'X-Route': 'target2' })).toBe('target2');
  });

  it('t_mappingtests_plain.py HostHeaderMapping: host matches the Host exactly; a port the listener did not strip does not match', () => {
    const t = table(['name: hh', `prefix: ${P}/hh/`, 'service: http://target', 'host: inspector.external']);
    expect(query(t, `${P}/hh/`)).toBe('404');
    expect(query(t, `${P}/hh/`, { Host: 'inspector.internal' })).toBe('404');
    expect(query(t, `${P}/hh/`, { Host: 'inspector.external' })).toBe('hh');
    expect(query(t, `${P}/hh/`, { Host: 'inspector.external:8080' })).toBe('404');
  });

  it('SimpleMapping: a path that needs normalization reaches the Mapping it resolves to; x-envoy-original-path is the resolved path', () => {
    const t = table(['name: simple', 'hostname: "*"', `prefix: ${P}/simple/`, 'service: http://target']);
    expect(query(t, `${P}/simple/`)).toBe('simple');
    expect(query(t, `${P}/need-normalization/../simple/`)).toBe('simple');
    const d = match(t, { kind: 'rest', method: 'GET', path: `${P}/need-normalization/../simple/?q=1`, host: 'x', header: () => undefined }, randomPicker());
    expect(d.ok && [d.upstreamPath, d.originalPath]).toEqual(['/?q=1', `${P}/simple/?q=1`]);
  });

  it("t_mappingtests_default MergeSlashesDisabled / MergeSlashesEnabled: extra slashes match only with the Module's merge_slashes: true", () => {
    const doc = ['name: ms', 'hostname: "*"', `prefix: ${P}/ms/status/`, 'rewrite: /status/', 'service: http://target'];
    const kept = table(doc);
    const merged = table({ mergeSlashes: true }, doc);
    for (const url of [`/${P}/ms/status/200`, `/${P}/ms//status/200`, `${P}/ms//status/200`]) {
      expect(query(kept, url), url).toBe('404');
      expect(query(merged, url), url).toBe('ms');
    }
    expect([query(kept, `${P}/ms/status/200`), query(merged, `${P}/ms/status/200`)]).toEqual(['ms', 'ms']);
  });

  it('t_mappingtests_plain InvalidPortMapping: a service with an invalid port drops its Mapping, with the reason', () => {
    const t = table(['name: bad-port', 'hostname: "*"', `prefix: ${P}/bad/`, 'service: http://target:80.invalid'], ['name: fine', 'hostname: "*"', `prefix: ${P}/fine/`, 'service: http://target']);
    expect(t.deployments.get('kat/kat')?.reasons.join('\n')).toMatch(/Mapping "bad-port" dropped: .*port/);
    expect([query(t, `${P}/bad/`), query(t, `${P}/fine/`)]).toEqual(['404', 'fine']);
  });

  it('HostRedirectMapping: prefixes are case-sensitive unless case_sensitive: false; a regex prefix matches the whole path', () => {
    const t = table(
      ['name: r1', 'hostname: "*"', `prefix: ${P}/hrm/`, 'service: foobar.com', 'host_redirect: true'],
      ['name: r2', 'hostname: "*"', `prefix: ${P}/hrm-2/`, 'case_sensitive: false', 'service: foobar.com', 'host_redirect: true'],
      [
        'name: r5',
        'hostname: "*"',
        `prefix: "${P}/hrm-5/assets/([a-f0-9]{12})/images"`,
        'prefix_regex: true',
        'service: foobar.com',
        'host_redirect: true',
        'regex_redirect:',
        '  pattern: "/assets/([a-f0-9]{12})/images"',
        '  substitution: "/images/\\\\1"',
        'redirect_response_code: 308',
      ],
    );
    expect(t.deployments.get('kat/kat')?.reasons).toEqual([]);
    expect(query(t, `${P}/hrm/anything?itworked=true`)).toBe('r1');
    expect(query(t, `${P}/HRM/anything?itworked=true`)).toBe('404');
    expect(query(t, `${P}/hrm-2/anything?itworked=true`)).toBe('r2');
    expect(query(t, `${P}/HRM-2/anything?itworked=true`)).toBe('r2');
    expect(query(t, `${P}/hrm-5/assets/abcd0000f123/images`)).toBe('r5');
    expect(query(t, `${P}/hrm-5/assets/abcd0000f123/images/more`)).toBe('404');
    const d = match(t, { kind: 'rest', method: 'GET', path: `${P}/hrm-5/assets/abcd0000f123/images`, host: 'x', header: () => undefined }, randomPicker());
    const redirect = d.ok ? d.backend.mapping?.redirect : undefined;
    expect([redirect?.status, redirect?.host, redirect?.regex?.apply(`${P}/hrm-5/assets/abcd0000f123/images`)]).toEqual([308, 'foobar.com', `${P}/hrm-5/images/abcd0000f123`]);
  });

  /** Who 100 queries reach, one seeded picker for all (the KAT's histogram). */
  function hist(t: RouteTable, url: string, n = 100): Record<string, number> {
    const picker = randomPicker(seededRandom(9));
    const out: Record<string, number> = {};
    for (let i = 0; i < n; i++) {
      const d = match(t, { kind: 'rest', method: 'GET', path: url, host: 'ambassador.kat', header: () => undefined }, picker);
      const k = d.ok ? d.backend.origin.predictor : String(d.status);
      out[k] = (out[k] ?? 0) + 1;
    }
    return out;
  }

  it.each([0, 10, 50, 100])('t_mappingtests_plain.py CanaryMapping (weight %i): the canary takes its weight, the weightless Mapping the rest', (w) => {
    const t = table(['name: cm', 'hostname: "*"', `prefix: ${P}/cm/`, 'service: http://target'], ['name: cm-canary', 'hostname: "*"', `prefix: ${P}/cm/`, 'service: http://canary', `weight: ${w}`]);
    const h = hist(t, `${P}/cm/`);
    if (w === 0) expect(h).toEqual({ cm: 100 });
    else if (w === 100) expect(h).toEqual({ 'cm-canary': 100 });
    else {
      // The KAT's own bounds: within 25 of the weight, and everything routed.
      expect(Math.abs((h['cm-canary'] ?? 0) - w)).toBeLessThan(25);
      expect((h['cm-canary'] ?? 0) + (h['cm'] ?? 0)).toBe(100);
    }
  });

  it.each([0, 10, 50, 100])('CanaryDiffMapping (weight %i): each Mapping keeps its own host_rewrite', (w) => {
    const t = table(
      ['name: cdm', 'hostname: "*"', `prefix: ${P}/cdm/`, 'service: http://target', 'host_rewrite: canary.1.example.com'],
      ['name: cdm-canary', 'hostname: "*"', `prefix: ${P}/cdm/`, 'service: http://canary', 'host_rewrite: canary.2.example.com', `weight: ${w}`],
    );
    expect(t.deployments.get('kat/kat')?.reasons).toEqual([]);
    const picker = randomPicker(seededRandom(3));
    const seen: Record<string, Set<string>> = {};
    for (let i = 0; i < 100; i++) {
      const d = match(t, { kind: 'rest', method: 'GET', path: `${P}/cdm/`, host: 'ambassador.kat', header: () => undefined }, picker);
      if (!d.ok) throw new Error(d.info);
      (seen[d.backend.origin.predictor] ??= new Set()).add(d.backend.mapping!.hostRewrite!);
    }
    for (const [who, hosts] of Object.entries(seen)) expect([...hosts]).toEqual([who === 'cdm' ? 'canary.1.example.com' : 'canary.2.example.com']);
    if (w === 0) expect(Object.keys(seen)).toEqual(['cdm']);
    if (w === 100) expect(Object.keys(seen)).toEqual(['cdm-canary']);
  });

  it('t_regexrewrite_forwarding.py RegexRewriteForwardingTest: the pattern replaces what it matches, anywhere in the path', () => {
    const t = table(['name: rr', 'hostname: "*"', `prefix: ${P}/foo/`, 'service: http://foo', 'regex_rewrite:', `  pattern: "${P}/foo/baz"`, '  substitution: "/baz/foo"']);
    const up = (url: string): string => {
      const d = match(t, { kind: 'rest', method: 'GET', path: url, host: 'ambassador.kat', header: () => undefined }, randomPicker());
      return d.ok ? d.upstreamPath : String(d.status);
    };
    expect(up(`${P}/foo/bar`)).toBe(`${P}/foo/bar`);
    expect(up(`${P}/foo/baz`)).toBe('/baz/foo');
    expect(up(`${P}/ffoo/`)).toBe('404');
  });

  it('RegexRewriteForwardingWithExtractAndSubstituteTest: groups are substituted as \\1', () => {
    const t = table(['name: rr', 'hostname: "*"', `prefix: ${P}/foo/`, 'service: http://foo', 'regex_rewrite:', `  pattern: "${P}/foo/([0-9]*)/list"`, "  substitution: '/bar/\\1'"]);
    const up = (url: string): string => {
      const d = match(t, { kind: 'rest', method: 'GET', path: url, host: 'ambassador.kat', header: () => undefined }, randomPicker());
      return d.ok ? d.upstreamPath : String(d.status);
    };
    expect(up(`${P}/foo/123456789/list`)).toBe('/bar/123456789');
    expect(up(`${P}/foo/987654321/list`)).toBe('/bar/987654321');
    expect(up(`${P}/fooooo/123456789/list`)).toBe('404');
    expect(up(`${P}/foo/`)).toBe(`${P}/foo/`);
  });

  it('InvalidPortMapping: a service with an invalid port invalidates its Mapping, with the reason', () => {
    const t = table(['name: ipm', 'hostname: "*"', `prefix: ${P}/ipm/`, 'service: http://target:80.invalid']);
    expect(query(t, `${P}/ipm/`)).toBe('404');
    expect(t.deployments.get('kat/kat')?.reasons.join('\n')).toMatch(/invalid port/);
  });

  it('t_grpc.py AcceptanceGrpcTest: rewrite "" leaves a gRPC Mapping\'s prefix unaltered', () => {
    const t = table(['grpc: true', 'hostname: "*"', 'prefix: /echo.EchoService/', 'rewrite: ""', 'name: egrpc', 'service: egrpc', 'headers:', '  namespace: kat']);
    const d = match(t, { kind: 'grpc', method: 'POST', path: '/echo.EchoService/Echo', host: 'ambassador.kat', header: (n) => (n === 'namespace' ? 'kat' : undefined) }, randomPicker());
    expect(d.ok ? [d.backend.origin.predictor, d.upstreamPath] : d.status).toEqual(['egrpc', '/echo.EchoService/Echo']);
  });
});
