/**
 * A Mapping's header edits as Envoy applies a route's (gateway/forward/mapping-edits.ts), on REST's
 * field lists and gRPC's header objects: removals first, then additions in order, `append: false`
 * replacing in place; the Host it gives; which error override a status gets (the Mapping's own, else the Module's).
 */
import { describe, expect, it } from 'vitest';
import { editFields, editHeaderObject, errorOverrideFor, overrideBody, upstreamHost } from '../../../gateway/forward/mapping-edits.js';
import { NO_POLICY, withRouteDefaults, type ErrorOverride, type HeaderEdits, type MappingPolicy } from '../../../routing/emissary/mapping-policy.js';

const policy = (p: Partial<MappingPolicy>): MappingPolicy => ({ ...NO_POLICY, ...p });

const EDITS: HeaderEdits = {
  remove: ['x-gone', 'dup'],
  add: [
    { name: 'dup', value: 'added', append: true },
    { name: 'zoo', value: 'Zoo', append: false },
    { name: 'new', value: 'n', append: false },
    { name: 'aoo', value: 'aoo', append: true },
  ],
};

describe('header edits', () => {
  it('on a field list: removals (any case), then additions; append false replaces the first in place and drops the rest', () => {
    const list = ['Host', 'h', 'X-Gone', '1', 'Zoo', 'a', 'aoo', 'AooA', 'DUP', 'x', 'zoo', 'b'];
    editFields(list, EDITS);
    expect(list).toEqual(['Host', 'h', 'Zoo', 'Zoo', 'aoo', 'AooA', 'dup', 'added', 'new', 'n', 'aoo', 'aoo']);
  });

  it('on an HTTP/2 header object: a repeated field becomes an array of values', () => {
    const h: Record<string, string | string[]> = { 'x-gone': '1', dup: 'x', zoo: ['a', 'b'], aoo: 'AooA' };
    editHeaderObject(h, EDITS);
    expect(h).toEqual({ dup: 'added', zoo: 'Zoo', new: 'n', aoo: ['AooA', 'aoo'] });
  });
});

describe('the Host the model gets', () => {
  const up = { host: 'svc.ns', port: 8000, tls: false };
  it('host_rewrite as written; auto_host_rewrite the service host without its port; neither: the client’s', () => {
    expect(upstreamHost(policy({ hostRewrite: 'a.example:81' }), up)).toBe('a.example:81');
    expect(upstreamHost(policy({ autoHostRewrite: true }), up)).toBe('svc.ns');
    expect(upstreamHost(policy({}), up)).toBeUndefined();
  });
});

describe('error overrides', () => {
  const own: ErrorOverride = { status: 503, body: 'mine %RESPONSE_CODE%', contentType: 'text/plain' };
  const fallback: ErrorOverride[] = [
    { status: 503, body: 'module', contentType: 'text/plain' },
    { status: 404, body: 'module 404', contentType: 'text/plain' },
  ];
  const route = (p: MappingPolicy | null): MappingPolicy | null => withRouteDefaults(p, { errorOverrides: fallback, loadBalancer: undefined });
  it('a route’s list: the Mapping’s own whole, else the Module’s (a route without policy too), none with bypass', () => {
    expect(errorOverrideFor(503, route(policy({ errorOverrides: [own] }))!.errorOverrides)).toBe(own);
    expect(errorOverrideFor(404, route(policy({ errorOverrides: [own] }))!.errorOverrides)).toBeUndefined();
    expect(errorOverrideFor(404, route(policy({}))!.errorOverrides)).toBe(fallback[1]);
    expect(errorOverrideFor(404, route(null)!.errorOverrides)).toBe(fallback[1]);
    expect(errorOverrideFor(503, route(policy({ bypassErrorOverrides: true }))!.errorOverrides)).toBeUndefined();
    expect(withRouteDefaults(null, { errorOverrides: undefined, loadBalancer: undefined })).toBeNull();
    expect(errorOverrideFor(503, [])).toBeUndefined();
    expect(overrideBody(own, 503).toString()).toBe('mine 503');
  });
});
