/**
 * `load_balancer` as Emissary validates it (routing/emissary/mapping-policy.ts `loadBalancerOf`), the cases of
 * Emissary's load-balancer acceptance test: the valid shapes are read, and a Mapping with any other
 * (two hash keys, a key on round_robin or least_request, an unknown policy) is dropped, as Emissary
 * answers 404 for it.
 */
import { describe, expect, it } from 'vitest';
import { isDrop, loadBalancerOf } from '../../../routing/emissary/mapping-policy.js';

describe('load_balancer', () => {
  it.each([
    [{ policy: 'round_robin' }, { policy: 'round_robin' }],
    [{ policy: 'least_request' }, { policy: 'least_request' }],
    [
      { policy: 'ring_hash', header: 'Test-Header' },
      { policy: 'ring_hash', hashOn: { kind: 'header', name: 'test-header' } },
    ],
    [
      { policy: 'ring_hash', source_ip: true },
      { policy: 'ring_hash', hashOn: { kind: 'source_ip' } },
    ],
    [
      { policy: 'ring_hash', cookie: { name: 'test-cookie' } },
      { policy: 'ring_hash', hashOn: { kind: 'cookie', name: 'test-cookie', ttlMs: null, path: null } },
    ],
    [
      { policy: 'maglev', cookie: { name: 'c', ttl: '60s', path: '/a/' } },
      { policy: 'maglev', hashOn: { kind: 'cookie', name: 'c', ttlMs: 60_000, path: '/a/' } },
    ],
  ])('%j is read', (raw, want) => {
    expect(loadBalancerOf(raw)).toEqual(want);
  });

  it.each([
    [{ policy: 'ring_hash', cookie: { name: 'test-cookie' }, header: 'test-header', source_ip: true }, 'needs exactly one of header, cookie, source_ip'],
    [{ policy: 'round_robin', cookie: { name: 'test-cookie' } }, 'round_robin takes no other key'],
    [{ policy: 'rr' }, 'is not one of round_robin, least_request, ring_hash, maglev'],
    [{ policy: 'least_request', cookie: { name: 'test-cookie' } }, 'least_request takes no other key'],
    [{ policy: 'ring_hash' }, 'needs exactly one of header, cookie, source_ip'],
  ])('%j drops its Mapping: %s', (raw, why) => {
    const out = loadBalancerOf(raw);
    expect(isDrop(out)).toBe(true);
    if (isDrop(out)) expect(out.why).toContain(why);
  });
});
