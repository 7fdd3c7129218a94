/**
 * The ambassador Module's edge keys as the listeners take them (config/ambassador-module.ts `moduleEdge`):
 * Envoy's client address rule mapped onto --trusted-proxies and a hop count, a flag given explicitly
 * naming the peers; and the pure pieces requests meet (routing/emissary/edge-rules.ts).
 */
import { describe, expect, it } from 'vitest';
import { edgeChanged, moduleEdge, type ModuleBase } from '../../../gateway/config/ambassador-module.js';
import { parseAmbassadorModule } from '../../../routing/emissary/module.js';
import { clientFromForwarded, forwardedAddress, hasEscapedSlash, stripMatchingPort } from '../../../routing/emissary/edge-rules.js';

const v2 = (config: string): string => `apiVersion: getambassador.io/v2\nkind: Module\nname: ambassador\nconfig:\n${config.replace(/^/gm, '  ')}\n`;

const base = (edge: Partial<ModuleBase['edge']> = {}): ModuleBase => ({
  edge: { maxHeaderBytes: 61440, maxBodyBytes: 100, trustForwardedHeaders: false, trustedProxies: [], ...edge },
  compile: { defaultTimeoutMs: 3000 },
  given: [],
});

const edgeOf = (config: string, b = base()): ModuleBase['edge'] => moduleEdge(b, parseAmbassadorModule(v2(config)));

describe("the Module's edge keys", () => {
  it("a Module that says what the gateway does sets no rules (none of their code runs) and trusts no peer's X-Forwarded-For", () => {
    const e = edgeOf(
      'use_remote_address: true\nxff_num_trusted_hops: 0\nstrip_matching_host_port: false\nreject_requests_with_escaped_slashes: false\nx_forwarded_proto_redirect: false\npreserve_external_request_id: true',
    );
    expect(e.rules).toBeUndefined();
    expect(e.trustForwardedHeaders).toBe(false);
    expect(moduleEdge(base(), undefined).rules).toBeUndefined();
  });

  it.each([
    ['xff_num_trusted_hops: 1', 1, true],
    ['xff_num_trusted_hops: 3', 3, true],
    ['use_remote_address: false', 1, false],
    ['use_remote_address: false\nxff_num_trusted_hops: 2', 3, false],
  ])("%s: every peer's X-Forwarded-For is kept, the client %i from its right", (config, hops, append) => {
    const e = edgeOf(config);
    expect(e.trustForwardedHeaders).toBe(true);
    expect(e.rules).toMatchObject({ clientHops: hops, appendPeer: append });
  });

  it('--trusted-proxies given: only those peers are trusted, the Module still counts the hops', () => {
    const e = edgeOf('xff_num_trusted_hops: 2', base({ trustedProxies: ['10.0.0.0/8'] }));
    expect(e.trustForwardedHeaders).toBe(false);
    expect(e.trustedProxies).toEqual(['10.0.0.0/8']);
    expect(e.rules?.clientHops).toBe(2);
  });

  it('the other keys each set their rule; a change of any is a listener change', () => {
    const all = edgeOf('strip_matching_host_port: true\nreject_requests_with_escaped_slashes: true\nx_forwarded_proto_redirect: true\npreserve_external_request_id: false');
    expect(all.rules).toEqual({ clientHops: 1, appendPeer: true, replaceRequestId: true, stripMatchingHostPort: true, rejectEscapedSlashes: true, httpsRedirect: true });
    expect(edgeChanged(all, edgeOf('strip_matching_host_port: true'))).toBe(true);
    expect(edgeChanged(all, edgeOf('strip_matching_host_port: true\nreject_requests_with_escaped_slashes: true\nx_forwarded_proto_redirect: true\npreserve_external_request_id: false'))).toBe(false);
    expect(edgeChanged(edgeOf('merge_slashes: false'), edgeOf('merge_slashes: true'))).toBe(false);
  });

  it('the client in X-Forwarded-For: the nth entry from the right, trimmed; none when the list is shorter or the entry empty', () => {
    expect(clientFromForwarded('1.1.1.1, 2.2.2.2,3.3.3.3', 1)).toBe('3.3.3.3');
    expect(clientFromForwarded('1.1.1.1, 2.2.2.2,3.3.3.3', 2)).toBe('2.2.2.2');
    expect(clientFromForwarded('1.1.1.1, 2.2.2.2,3.3.3.3', 3)).toBe('1.1.1.1');
    expect(clientFromForwarded('1.1.1.1, 2.2.2.2,3.3.3.3', 4)).toBeUndefined();
    expect(clientFromForwarded('1.1.1.1, ', 1)).toBeUndefined();
    expect(clientFromForwarded(undefined, 1)).toBeUndefined();
  });

  it('an X-Forwarded-For entry in the forms proxies write is read as its address (port and brackets dropped)', () => {
    expect(clientFromForwarded('9.9.9.9, 1.2.3.4:5678', 1)).toBe('1.2.3.4');
    expect(clientFromForwarded('[2001:db8::1]:443,1.1.1.1', 2)).toBe('2001:db8::1');
    for (const [entry, address] of [
      ['1.2.3.4', '1.2.3.4'],
      ['1.2.3.4:5678', '1.2.3.4'],
      ['2001:db8::1', '2001:db8::1'],
      ['[2001:db8::1]', '2001:db8::1'],
      ['[2001:db8::1]:443', '2001:db8::1'],
      ['::ffff:1.2.3.4', '::ffff:1.2.3.4'],
      // Not an address in any of those forms: as it is (the ip policy refuses it).
      ['1.2.3.4:', '1.2.3.4:'],
      ['1.2.3.4:x', '1.2.3.4:x'],
      ['[2001:db8::1', '[2001:db8::1'],
      ['[2001:db8::1]x', '[2001:db8::1]x'],
      ['unknown', 'unknown'],
      ['host:80', 'host:80'],
    ])
      expect(forwardedAddress(entry!), entry).toBe(address);
  });

  it("a Host's port is dropped only when it is the listener's", () => {
    expect(stripMatchingPort('api.example.com:8080', 8080)).toBe('api.example.com');
    expect(stripMatchingPort('api.example.com:80', 8080)).toBe('api.example.com:80');
    expect(stripMatchingPort('api.example.com', 8080)).toBe('api.example.com');
    expect(stripMatchingPort('[::1]:8080', 8080)).toBe('[::1]');
    expect(stripMatchingPort('[::1]', 8080)).toBe('[::1]');
    expect(stripMatchingPort('a:8080', undefined)).toBe('a:8080');
  });

  it('escaped slashes: %2F and %5C in any case, in the path only', () => {
    for (const p of ['/a%2Fb', '/a%2fb', '/a%5Cb', '/a%5cb', '/%2F']) expect(hasEscapedSlash(p)).toBe(true);
    for (const p of ['/a/b', '/a%20b', '/a%2', '/a?x=%2F', '/a%25%32F']) expect(hasEscapedSlash(p)).toBe(false);
  });
});
