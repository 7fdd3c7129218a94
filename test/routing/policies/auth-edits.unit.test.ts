/**
 * An external auth allowance's header edits as Envoy's ext_authz applies them (routing/policies/auth-edits.ts):
 * sets, then appends joined to the request's first line, then removals; Host and pseudo-headers untouched.
 */
import { describe, expect, it } from 'vitest';
import { applyAuthEdits, applyAuthEditsToObject, authEditPlan, chainAuthEdits } from '../../../routing/policies/auth-edits.js';

const set = (name: string, value: string) => ({ name, value, append: false });
const add = (name: string, value: string) => ({ name, value, append: true });

describe('auth service edits', () => {
  it("an append joins the request's first line of the name with ',' (one line), or adds the name", () => {
    const h = ['Host', 'm', 'Foo', 'foo', 'foo', 'second'];
    applyAuthEdits(h, { headers: [add('foo', 'bar'), add('baz', 'bar'), add('baz', 'qux')], remove: [] });
    expect(h).toEqual(['Host', 'm', 'Foo', 'foo,bar', 'foo', 'second', 'baz', 'bar,qux']);
  });

  it('sets replace every line of the name, the last set wins, and an append to a set name joins the set value', () => {
    const h = ['X-User', 'mallory', 'x-user', 'eve', 'a', '1'];
    applyAuthEdits(h, { headers: [add('x-user', 'extra'), set('x-user', 'alice'), set('x-user', 'bob')], remove: [] });
    expect(h).toEqual(['a', '1', 'x-user', 'bob,extra']);
  });

  it('removals come last: a header set, appended or sent is gone', () => {
    const h = ['Secret', 's', 'keep', 'k'];
    applyAuthEdits(h, { headers: [set('x-a', '1'), add('keep', '2')], remove: ['secret', 'x-a'] });
    expect(h).toEqual(['keep', 'k,2']);
  });

  it('an auth service cannot add a second Host line, change a pseudo-header, or remove Host', () => {
    const h = ['Host', 'model.example', 'a', '1'];
    const edits = { headers: [set('host', 'evil.example'), add('host', 'x'), set(':path', '/admin')], remove: ['host', ':authority'] };
    applyAuthEdits(h, edits);
    expect(h).toEqual(['Host', 'model.example', 'a', '1']);
    expect(authEditPlan(edits).changes).toBe(false);
    const o: Record<string, string> = { ':path': '/p', host: 'model.example' };
    applyAuthEditsToObject(o, edits);
    expect(o).toEqual({ ':path': '/p', host: 'model.example' });
  });

  it("a gRPC call's metadata object: set, appended to its value (joined), removed", () => {
    const o: Record<string, string | string[]> = { foo: 'foo', tags: ['a', 'b'], secret: 's' };
    applyAuthEditsToObject(o, { headers: [add('foo', 'bar'), add('tags', 'c'), set('user', 'bob'), add('new', 'n')], remove: ['secret'] });
    expect(o).toEqual({ foo: 'foo,bar', tags: 'a,b,c', user: 'bob', new: 'n' });
  });

  it('the plan says whether anything changes (only then is the request matched again); chaining keeps the order', () => {
    expect(authEditPlan({ headers: [], remove: [] }).changes).toBe(false);
    expect(authEditPlan({ headers: [add('x', '1')], remove: [] }).changes).toBe(true);
    const ext = { headers: [set('x-user', 'svc')], remove: [] };
    const jwt = { headers: [set('x-user', 'claim')], remove: [] };
    expect(chainAuthEdits(ext, undefined)).toBe(ext);
    expect(authEditPlan(chainAuthEdits(ext, jwt)!).set.get('x-user')).toBe('claim');
  });

  it('an allowance without edits makes no plan of its own: every empty list shares one', () => {
    expect(authEditPlan({ headers: [], remove: [] })).toBe(authEditPlan({ headers: [], remove: [] }));
  });
});
