/**
 * The three classes of Mapping keys (docs/routing.md#mapping-keys): every key Emissary's CRDs define is
 * classified, the docs' table says the same, harmless keys warn once and keep their Mapping, and every key
 * that is not honoured (or not known) drops its Mapping: never a route without it.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseCustomConfig } from '../../../routing/emissary/custom-config.js';
import { MAPPING_KEYS, classifyMappingKey } from '../../../routing/emissary/mapping-keys.js';

/** The `json:` names of Emissary's MappingSpec (getambassador.io v2 and v3alpha1 crd_mapping.go), as a migrating team may write them. */
const EMISSARY_KEYS = [
  'ambassador_id', 'prefix', 'prefix_regex', 'prefix_exact', 'service', 'add_request_headers', 'add_response_headers', 'add_linkerd_headers',
  'auto_host_rewrite', 'case_sensitive', 'dns_type', 'docs', 'enable_ipv4', 'enable_ipv6', 'circuit_breakers', 'keepalive', 'cors', 'retry_policy',
  'respect_dns_ttl', 'grpc', 'host_redirect', 'host_rewrite', 'method', 'method_regex', 'outlier_detection', 'path_redirect', 'prefix_redirect',
  'regex_redirect', 'redirect_response_code', 'priority', 'precedence', 'cluster_tag', 'remove_request_headers', 'remove_response_headers',
  'resolver', 'rewrite', 'regex_rewrite', 'shadow', 'connect_timeout_ms', 'cluster_idle_timeout_ms', 'cluster_max_connection_lifetime_ms',
  'timeout_ms', 'idle_timeout_ms', 'tls', 'health_checks', 'v3health_checks', 'use_websocket', 'allow_upgrade', 'weight', 'bypass_auth',
  'auth_context_extensions', 'bypass_error_response_overrides', 'error_response_overrides', 'modules', 'host', 'host_regex', 'hostname',
  'headers', 'regex_headers', 'labels', 'envoy_override', 'load_balancer', 'query_parameters', 'regex_query_parameters', 'stats_name',
  'v3StatsName', 'metadata_labels', 'name', 'namespace', 'apiVersion', 'kind',
]; // prettier-ignore

const mapping = (extra: string): string => `apiVersion: getambassador.io/v2\nkind: Mapping\nname: m\nprefix: /seldon/ns/m/\nservice: svc\n${extra}`;

describe('Mapping keys', () => {
  it('every key Emissary defines has a class and a reason', () => {
    for (const key of EMISSARY_KEYS) {
      expect(Object.hasOwn(MAPPING_KEYS, key), key).toBe(true);
      expect(MAPPING_KEYS[key]!.why.length, key).toBeGreaterThan(10);
    }
    expect(classifyMappingKey('some_future_key')).toEqual({ class: 'drops', why: 'not a Mapping key the gateway knows' });
    expect(classifyMappingKey('__proto__').class).toBe('drops');
  });

  it("docs/routing.md's table says what the code does, key by key", () => {
    const doc = readFileSync(new URL('../../../docs/routing.md', import.meta.url), 'utf8');
    for (const [key, info] of Object.entries(MAPPING_KEYS)) {
      const row = doc.split('\n').find((l) => new RegExp(`^\\|\\s*\`${key}\`\\s*\\|\\s*(honoured|harmless|drops)\\s*\\|`).test(l));
      expect(row, key).toBeDefined();
      expect(row!.split('|')[2]!.trim(), key).toBe(info.class);
    }
  });

  it.each(Object.entries(MAPPING_KEYS).filter(([, i]) => i.class === 'drops'))('%s drops its Mapping, with the reason', (key, info) => {
    const c = parseCustomConfig(`${mapping(`${key}: x`)}\n---\n${mapping('').replace('name: m', 'name: kept').replace('/m/', '/kept/')}`, 'ns');
    expect(c.ok).toBe(true);
    if (!c.ok) return;
    expect(c.mappings.map((m) => m.name)).toEqual(['kept']);
    expect(c.warnings).toEqual([`Mapping "m" dropped: key "${key}" (${info.why}) not honoured`]);
  });

  it.each(Object.entries(MAPPING_KEYS).filter(([, i]) => i.class === 'harmless'))('%s is ignored with one warning, the Mapping kept', (key) => {
    const c = parseCustomConfig(`${mapping(`${key}: x`)}\n---\n${mapping(`${key}: y`).replace('name: m', 'name: m2')}`, 'ns');
    expect(c.ok && c.mappings.map((m) => m.name)).toEqual(['m', 'm2']);
    expect(c.ok && c.warnings.filter((w) => w.includes(`"${key}"`))).toHaveLength(1);
  });

  it('priority: default is harmless; another priority drops', () => {
    const ok = parseCustomConfig(mapping('priority: default'), 'ns');
    expect(ok.ok && ok.mappings).toHaveLength(1);
    const high = parseCustomConfig(mapping('priority: high'), 'ns');
    expect(high).toMatchObject({ ok: false });
  });

  it("resolver: Emissary's built-in Kubernetes resolvers keep the Mapping; a resolver resource (Consul) drops it, as the Module's does", () => {
    const two = (a: string, b: string): string => `${mapping(`resolver: ${a}`)}\n---\n${mapping(`resolver: ${b}`).replace('name: m', 'name: k').replace('/m/', '/k/')}`;
    const kept = parseCustomConfig(two('kubernetes-service', 'kubernetes-endpoint'), 'ns');
    expect(kept.ok && kept.mappings.map((m) => m.name)).toEqual(['m', 'k']);
    const consul = parseCustomConfig(two('consul-dc1', 'kubernetes-endpoint'), 'ns');
    expect(consul.ok && consul.mappings.map((m) => m.name)).toEqual(['k']);
    expect(consul.ok && consul.warnings).toEqual([
      'Mapping "m" dropped: resolver "consul-dc1": only the built-in Kubernetes resolvers (kubernetes-service, kubernetes-endpoint) are what the gateway does; a resolver resource (Consul) is not read',
    ]);
  });

  it('resolver: a KubernetesEndpointResolver or KubernetesServiceResolver of the annotation keeps the Mapping, read as built in; a ConsulResolver of that name does not (EndpointGrpcTest)', () => {
    const resolver = (kind: string): string => `apiVersion: getambassador.io/v3alpha1\nkind: ${kind}\nmetadata:\n  name: my-endpoint\nspec:\n  ambassador_id: [x]`;
    for (const kind of ['KubernetesEndpointResolver', 'KubernetesServiceResolver']) {
      const c = parseCustomConfig(`${mapping('resolver: my-endpoint')}\n---\n${resolver(kind)}`, 'ns');
      expect(c.ok && [c.mappings.map((m) => m.name), c.warnings]).toEqual([['m'], []]);
    }
    const consul = parseCustomConfig(`${mapping('resolver: my-endpoint')}\n---\n${resolver('ConsulResolver')}`, 'ns');
    expect(consul).toMatchObject({ ok: false });
  });

  it('a v3alpha1 resource (metadata and spec) reads as its spec', () => {
    const c = parseCustomConfig('apiVersion: getambassador.io/v3alpha1\nkind: Mapping\nmetadata:\n  name: res\n  namespace: ns\nspec:\n  prefix: /seldon/ns/r/\n  service: svc\n  method: POST', 'ns');
    expect(c.ok && c.mappings.map((m) => [m.name, m.headers])).toEqual([['res', [{ kind: 'exact', name: ':method', value: 'POST' }]]]);
  });

  it.each([
    ['weight: lots', /weight "lots" is not a whole number/],
    ['timeout_ms: soon', /timeout_ms "soon"/],
    ['retry_policy: {retry_on: sometimes}', /retry_on "sometimes"/],
    ['add_request_headers: {x-a: "%REQ(x)%"}', /substitutions are not supported/],
    ['tls: my-context', /tls "my-context" names no upstream TLS context/],
    ['hostname: "a.*.com"', /may only start or end the glob/],
    ['method_regex: true', /method_regex needs method/],
    ['load_balancer: {policy: ring_hash}', /needs exactly one of header, cookie, source_ip/],
    ['path_redirect: /x', /needs host_redirect: true/],
    ['allow_upgrade: [spdy/3]', /only websocket is relayed/],
    ['error_response_overrides: [{on_status_code: 404, body: {text_format: "%START_TIME%"}}]', /%START_TIME% is not supported/],
  ])('an honoured key with a value it cannot honour drops the Mapping: %s', (extra, why) => {
    const c = parseCustomConfig(mapping(extra), 'ns');
    expect(c.ok).toBe(false);
    expect(!c.ok && c.error).toMatch(why);
  });
});
