/**
 * Reading Emissary's ambassador Module (routing/emissary/module.ts): both shapes, every key in one
 * class, one parser with the Mapping's for error_response_overrides and load_balancer, and a Module
 * the gateway does not fully honour refused whole with the key named.
 */
import { describe, expect, it } from 'vitest';
import { settingsFromModuleGzip } from '../../../routing/emissary/module-gzip.js';
import { inspectModule, moduleCompression, moduleCors, parseAmbassadorModule } from '../../../routing/emissary/module.js';
import { parseRetry } from '../../../routing/emissary/custom-config.js';
import { errorOverrides, loadBalancerOf } from '../../../routing/emissary/mapping-policy.js';
import { DEFAULT_BREAKER } from '../../../routing/types.js';

const v2 = (config: string): string => `apiVersion: getambassador.io/v2\nkind: Module\nname: ambassador\nconfig:\n${config.replace(/^/gm, '  ')}\n`;
const v3 = (config: string): string => `apiVersion: getambassador.io/v3alpha1\nkind: Module\nmetadata:\n  name: ambassador\nspec:\n  config:\n${config.replace(/^/gm, '    ')}\n`;
const refusal = (text: string): string => {
  try {
    parseAmbassadorModule(text);
  } catch (e) {
    return (e as Error).message;
  }
  return 'accepted';
};

describe('the ambassador Module', () => {
  it('reads both shapes alike', () => {
    const config = 'max_request_headers_kb: 30\ncluster_request_timeout_ms: 1500\nregex_max_size: 500\nbuffer:\n  max_request_bytes: 2048';
    const want = { maxRequestHeaderBytes: 30 * 1024, defaultTimeoutMs: 1500, regexMaxSize: 500, maxRequestBodyBytes: 2048 };
    expect(parseAmbassadorModule(v2(config))).toEqual(want);
    expect(parseAmbassadorModule(v3(config))).toEqual(want);
    // Emissary's own tests write v3alpha1 in the flat shape too.
    expect(parseAmbassadorModule(v2(config).replace('getambassador.io/v2', 'getambassador.io/v3alpha1'))).toEqual(want);
  });

  it("ambassador_id: a Module for another gateway's id is refused (Emissary would not apply it)", () => {
    const text = (ids: string): string => `apiVersion: getambassador.io/v3alpha1\nkind: Module\nname: ambassador\nambassador_id: ${ids}\nconfig:\n  regex_max_size: 300\n`;
    expect(parseAmbassadorModule(text('[default, blue]'))).toEqual({ regexMaxSize: 300 });
    expect(parseAmbassadorModule(text('blue'), 'blue')).toEqual({ regexMaxSize: 300 });
    expect(() => parseAmbassadorModule(text('[green]'), 'blue')).toThrow('ambassador_id ["green"] does not name this gateway\'s AMBASSADOR_ID "blue": Emissary would not apply this Module');
  });

  it("ambassador_id absent is the default gateway's Module, as every Emissary resource without one (AmbassadorIDTest)", () => {
    const text = 'apiVersion: getambassador.io/v3alpha1\nkind: Module\nname: ambassador\nconfig:\n  regex_max_size: 300\n';
    expect(parseAmbassadorModule(text)).toEqual({ regexMaxSize: 300 });
    expect(() => parseAmbassadorModule(text, 'blue')).toThrow('ambassador_id "default" does not name this gateway\'s AMBASSADOR_ID "blue": Emissary would not apply this Module');
  });

  it('an empty file is no Module; a Module without config sets nothing', () => {
    expect(parseAmbassadorModule('')).toEqual({});
    expect(parseAmbassadorModule('apiVersion: getambassador.io/v2\nkind: Module\nname: ambassador\n')).toEqual({});
  });

  it('a file that is not the ambassador Module is refused with what it is', () => {
    expect(refusal('apiVersion: getambassador.io/v2\nkind: Module\nname: tls\nconfig: {}\n')).toBe('the Module named "tls": only the one named ambassador is read');
    expect(refusal('kind: Mapping\nname: x\n')).toBe('kind "Mapping": only the ambassador Module is read from this file');
    expect(refusal(`${v2('regex_max_size: 5')}---\n${v2('regex_max_size: 6')}`)).toBe('two Modules named ambassador');
    expect(refusal('- a\n- b\n')).toMatch(/^must be a Module/);
    expect(refusal('config: [\n')).toMatch(/^does not parse as YAML/);
  });

  it.each([
    ['max_request_headers_kb: 0', 'config.max_request_headers_kb: not honoured: 0 is not a whole number of at least 1'],
    ['cluster_request_timeout_ms: "3s"', 'config.cluster_request_timeout_ms: not honoured: "3s" is not a whole number of at least 1'],
    ['buffer:\n  max_request_bytes: 10\n  other: 1', 'config.buffer: not honoured: "other" is not a buffer setting the gateway knows'],
    ['lua_scripts: x', 'config.lua_scripts: not honoured: Lua scripts are not run'],
    ['use_remote_address: "no"', 'config.use_remote_address: not honoured: "no" is not true or false'],
    ['xff_num_trusted_hops: -1', 'config.xff_num_trusted_hops: not honoured: -1 is not a whole number of at least 0'],
    ['xff_num_trusted_hops: 1.5', 'config.xff_num_trusted_hops: not honoured: 1.5 is not a whole number of at least 0'],
    ['preserve_external_request_id: 0', 'config.preserve_external_request_id: not honoured: 0 is not true or false'],
    ['merge_slashes: "false"', 'config.merge_slashes: not honoured: "false" is not true or false'],
    ['strip_matching_host_port: yes', 'config.strip_matching_host_port: not honoured: "yes" is not true or false'],
    ['reject_requests_with_escaped_slashes: 1', 'config.reject_requests_with_escaped_slashes: not honoured: 1 is not true or false'],
    ['x_forwarded_proto_redirect: null', 'config.x_forwarded_proto_redirect: not honoured: null is not true or false'],
    ['ip_allow:\n  - peer: 127.0.0.1/33', 'config.ip_allow: not honoured: [0].peer: "127.0.0.1/33" is not an address or CIDR'],
    ['ip_deny:\n  - source: 10.0.0.0/8', 'config.ip_deny: not honoured: [0]: "source" is not peer or remote'],
    ['ip_allow:\n  - peer: 10.0.0.1\nip_deny:\n  - peer: 10.0.0.2', 'config.ip_deny: not honoured: ip_allow and ip_deny cannot both be given'],
    ['made_up: 1', 'config.made_up: not honoured: not a Module key the gateway knows'],
  ])('%s refuses the Module, naming the key', (config, message) => {
    expect(refusal(v2(config))).toBe(message);
  });

  it("values that say what the gateway does are honoured; Envoy's own process keys are harmless, with a warning each", () => {
    const text = v2(
      'use_remote_address: true\nxff_num_trusted_hops: 0\nmerge_slashes: true\nstrip_matching_host_port: false\nreject_requests_with_escaped_slashes: false\npreserve_external_request_id: true\nx_forwarded_proto_redirect: false\nregex_type: safe\ndiagnostics:\n  enabled: false\nadmin_port: 8001',
    );
    const m = parseAmbassadorModule(text);
    expect(m.warnings).toEqual([
      "ambassador Module config.diagnostics: not read here: Emissary's diagnostics pages; the gateway's admin port has its own (/routes, /metrics)",
      "ambassador Module config.admin_port: not read here: Envoy's admin port; the gateway's is --admin-port",
    ]);
    expect(inspectModule(text).keys.map((k) => [k.key, k.class])).toEqual([
      ['use_remote_address', 'honoured'],
      ['xff_num_trusted_hops', 'honoured'],
      ['merge_slashes', 'honoured'],
      ['strip_matching_host_port', 'honoured'],
      ['reject_requests_with_escaped_slashes', 'honoured'],
      ['preserve_external_request_id', 'honoured'],
      ['x_forwarded_proto_redirect', 'honoured'],
      ['regex_type', 'honoured'],
      ['diagnostics', 'harmless'],
      ['admin_port', 'harmless'],
    ]);
  });

  it('ip_allow / ip_deny: one principal per entry, peer or remote, an address or CIDR of either family', () => {
    expect(parseAmbassadorModule(v2('ip_allow:\n  - peer: 127.0.0.1\n  - remote: 99.99.0.0/16\n  - remote: "fd00::/8"')).ipPolicy).toEqual({
      action: 'allow',
      principals: [
        { kind: 'peer', address: '127.0.0.1', prefix: 32, family: 'ipv4' },
        { kind: 'remote', address: '99.99.0.0', prefix: 16, family: 'ipv4' },
        { kind: 'remote', address: 'fd00::', prefix: 8, family: 'ipv6' },
      ],
    });
  });

  it("cors: the Mapping's parser; a key it does not read is ignored and said, as Emissary's IRCORS ignores it", () => {
    const m = parseAmbassadorModule(v2('cors:\n  origins: [http://foo.example.com]\n  methods: [POST]'));
    expect(moduleCors(m)!.allowsOrigin('http://foo.example.com')).toBe(true);
    expect(moduleCors(m)!.allowsOrigin('http://bar.example.com')).toBe(false);
    expect(moduleCors(parseAmbassadorModule(v2('max_request_headers_kb: 8')))).toBeUndefined();
    expect(inspectModule(v2('cors:\n  origins: [http://foo.example.com]\n  colour: red')).keys[0]).toMatchObject({
      class: 'honoured',
      why: expect.stringMatching(/cors: key "colour" is not supported: ignored/),
    });
    expect(refusal(v2('cors:\n  methods: [POST]'))).toMatch(/^config\.cors: not honoured: cors: origins is required/);
  });

  it("retry_policy: the Mapping's parser", () => {
    expect(parseAmbassadorModule(v2('retry_policy:\n  retry_on: 5xx\n  num_retries: 3')).retryPolicy).toEqual(parseRetry({ retry_on: '5xx', num_retries: 3 }));
    expect(refusal(v2('retry_policy:\n  retry_on: sometimes'))).toMatch(/^config\.retry_policy: not honoured: retry_policy\.retry_on "sometimes" is not one of/);
  });

  it("gzip: compression's own reader of the block (routing/emissary/module-gzip.ts); a bad block refuses the Module", () => {
    const m = parseAmbassadorModule(v2('gzip:\n  min_content_length: 32\n  content_type: [application/json]'));
    expect(m.gzip).toEqual({ min_content_length: 32, content_type: ['application/json'] });
    const settings = settingsFromModuleGzip({ min_content_length: 32, content_type: ['application/json'] });
    expect(settings.ok && moduleCompression(m)).toEqual(settings.ok ? settings.value : null);
    expect(refusal(v2('gzip:\n  shrink_ray: true'))).toMatch(/^config\.gzip: not honoured: .*shrink_ray/);
  });

  it("error_response_overrides and load_balancer: one parser with the Mapping's, honoured; a bad value names what is wrong", () => {
    const overrides = 'error_response_overrides:\n  - on_status_code: 404\n    body:\n      text_format: "no such thing: %RESPONSE_CODE%"';
    const reading = inspectModule(v2(overrides));
    expect(reading.module.errorResponseOverrides).toEqual(errorOverrides([{ on_status_code: 404, body: { text_format: 'no such thing: %RESPONSE_CODE%' } }]));
    expect(reading.keys[0]!.class).toBe('honoured');
    expect(reading.keys[0]!.why).toMatch(/gRPC answers are HTTP 200: none applies/);
    // An empty list sets nothing (Emissary configures no filter for it).
    expect(parseAmbassadorModule(v2('error_response_overrides: []')).errorResponseOverrides).toBeUndefined();
    expect(refusal(v2('error_response_overrides:\n  - on_status_code: 200\n    body: {text_format: x}'))).toBe(
      'config.error_response_overrides: not honoured: error_response_overrides[0].on_status_code must be a status from 400 to 599',
    );
    const lb = inspectModule(v2('load_balancer:\n  policy: ring_hash\n  header: x-user'));
    expect(lb.module.loadBalancer).toEqual(loadBalancerOf({ policy: 'ring_hash', header: 'x-user' }));
    expect(lb.keys[0]).toMatchObject({ class: 'honoured', why: expect.stringMatching(/^ring_hash: the balancer of every route/) as unknown });
    expect(refusal(v2('load_balancer: 3'))).toBe('config.load_balancer: not honoured: load_balancer must be a map');
  });

  it("circuit_breakers: the default-priority entry's limits, Envoy's defaults for the fields it leaves out; a high entry accepted, never applied", () => {
    const m = parseAmbassadorModule(v2('circuit_breakers:\n  - max_connections: 5\n    max_requests: 7\n  - priority: high\n    max_connections: 9'));
    expect(m.circuitBreakers).toEqual({ ...DEFAULT_BREAKER, maxConnections: 5, maxRequests: 7 });
    expect(parseAmbassadorModule(v2('circuit_breakers:\n  - priority: DEFAULT\n    max_pending_requests: 2\n    max_retries: 1')).circuitBreakers).toEqual({
      ...DEFAULT_BREAKER,
      maxPendingRequests: 2,
      maxRetries: 1,
    });
    expect(parseAmbassadorModule(v2('circuit_breakers:\n  - priority: high\n    max_connections: 9')).circuitBreakers).toEqual(DEFAULT_BREAKER);
    expect(refusal(v2('circuit_breakers: {max_connections: 5}'))).toMatch(/^config\.circuit_breakers: not honoured: must be a list of thresholds/);
    expect(refusal(v2('circuit_breakers:\n  - max_connections: 0'))).toBe('config.circuit_breakers: not honoured: [0].max_connections: 0 is not a whole number of at least 1');
    expect(refusal(v2('circuit_breakers:\n  - max_connections: "5x"'))).toMatch(/\[0\]\.max_connections: "5x" is not a whole number/);
    expect(refusal(v2('circuit_breakers:\n  - priority: urgent'))).toBe('config.circuit_breakers: not honoured: [0].priority "urgent" is not default or high');
    expect(refusal(v2('circuit_breakers:\n  - max_connections: 1\n  - max_requests: 2'))).toBe('config.circuit_breakers: not honoured: [1]: a second entry of priority default');
    expect(refusal(v2('circuit_breakers:\n  - max_streams: 1'))).toMatch(/^config\.circuit_breakers: not honoured: \[0\]: "max_streams" is not a threshold the gateway knows/);
  });

  it('server_name: one line of visible characters, else the Module is refused', () => {
    expect(parseAmbassadorModule(v2('server_name: seldon-edge/1.0 (prod)')).serverName).toBe('seldon-edge/1.0 (prod)');
    expect(inspectModule(v2('server_name: x')).keys[0]).toMatchObject({ class: 'honoured' });
    for (const bad of ['""', '" padded"', '42', '"two\\nlines"', '[a]']) expect(refusal(v2(`server_name: ${bad}`))).toMatch(/^config\.server_name: not honoured: .* is not a header value/);
  });
});
