/**
 * `seldon.io/gateway-fallback` compiled (routing/fallback/config.ts): what `to` and `on` take and
 * refuse, the default reasons, a predictor's own annotation over the deployment's, a fallback that
 * names no predictor of the deployment or no operator target (the deployment degraded, served
 * without a fallback), a fallback deployment that does not exist yet (degraded until it appears,
 * and again when it goes), and what /routes shows.
 */
import { describe, expect, it } from 'vitest';
import { FALLBACK_ANNOTATION, fallbackPolicy, parseFallbackFields } from '../../../routing/fallback/config.js';
import { tableJson } from '../../../routing/table/describe.js';
import { buildTable, TableBuilder } from '../../../routing/table/builder.js';
import { DEFAULT_COMPILE_OPTIONS, type Backend, type CompileOptions } from '../../../routing/types.js';
import type { SeldonDeployment } from '../../../routing/seldon/deployment.js';
import { parsedError, parsedValue } from '../../helpers/parsed.js';

const error = parsedError(parseFallbackFields);
const fields = parsedValue(parseFallbackFields);

function sdep(name: string, annotations: Record<string, string>, predictors: { name: string; own?: string; shadow?: boolean }[]): SeldonDeployment {
  return {
    metadata: { name, namespace: 'ns', annotations },
    spec: {
      predictors: predictors.map((p, i) => ({
        name: p.name,
        traffic: i === 0 ? 100 : 0,
        graph: { name: 'classifier' },
        ...(p.shadow ? { shadow: true } : {}),
        ...(p.own !== undefined ? { annotations: { [FALLBACK_ANNOTATION]: p.own } } : {}),
      })),
    },
  };
}

const OPTS: CompileOptions = { ...DEFAULT_COMPILE_OPTIONS, fallbackTargets: new Set(['rules']) };

/** Each backend of deployment `name` by kind and id (`rest ns/iris/main`), and its report. */
function compiled(ds: SeldonDeployment[], name = 'iris'): { state: string; reasons: readonly string[]; backends: Map<string, Backend> } {
  const t = buildTable(ds, OPTS);
  const r = t.deployments.get(`ns/${name}`)!;
  const backends = new Map<string, Backend>();
  for (const g of t.groups) for (const m of [...g.members, ...g.mirrors]) if (m.backend.origin.deployment === name) backends.set(`${g.kind} ${m.backend.id}`, m.backend);
  return { state: r.state, reasons: r.reasons, backends };
}

describe('the annotation value', () => {
  it('to a predictor, a deployment or a target; on as a list or a comma-separated string; off and none', () => {
    expect(fields('off')).toBe('off');
    expect(fields(' none ')).toBe('off');
    expect(fields('{"to": {"predictor": "small"}}')).toEqual({ to: { kind: 'predictor', name: 'small' } });
    expect(fields('to: {deployment: baseline}\non: [error, overload]')).toEqual({ to: { kind: 'deployment', name: 'baseline' }, on: ['overload', 'error'] });
    expect(fields('to: {target: rules}\non: "cold, unavailable"')).toEqual({ to: { kind: 'target', name: 'rules' }, on: ['unavailable', 'cold'] });
    expect(fields('on: error')).toEqual({ on: ['error'] });
  });

  it('the default reasons are unavailable, overload and cold; the label names where it goes', () => {
    const p = fallbackPolicy({ kind: 'predictor', name: 'small' }, undefined, 'ns');
    expect(p).toMatchObject({ unavailable: true, overload: true, cold: true, error: false, label: 'predictor/small' });
    expect(p.text).toBe('to predictor/small on unavailable, overload, cold');
    expect(fallbackPolicy({ kind: 'deployment', name: 'baseline' }, ['error'], 'ns')).toMatchObject({ label: 'deployment/ns/baseline', error: true, unavailable: false });
    expect(fallbackPolicy({ kind: 'target', name: 'rules' }, undefined, 'ns').label).toBe('target/rules');
  });

  it('says what is wrong with a bad value', () => {
    expect(error('to: small')).toMatch(/^seldon.io\/gateway-fallback: to must be one of \{predictor: <name>\}, \{deployment: <name>\}, \{target: <NAME>\}, not "small"$/);
    expect(error('to: {predictor: a, target: b}')).toMatch(/to must be one of/);
    expect(error('to: {model: a}')).toMatch(/to must be one of/);
    expect(error('to: {predictor: ""}')).toMatch(/to.predictor "" is not a valid predictor name/);
    expect(error('to: {target: "a b"}')).toMatch(/to.target "a b" is not a valid target name/);
    expect(error('to: {predictor: small}\non: [slow]')).toMatch(/on must list reasons among unavailable, overload, cold, error, not "slow"/);
    expect(error('to: {predictor: small}\non: []')).toMatch(/on must list reasons/);
    // Empty entries are no entries, as in every list (routing/values/list.ts): "overload,," is "overload".
    expect(parsedValue(parseFallbackFields)('to: {predictor: small}\non: "overload,,"')).toEqual(parsedValue(parseFallbackFields)('to: {predictor: small}\non: [overload]'));
    expect(error('to: {predictor: small}\non: ","')).toMatch(/on must list reasons .* not ","/);
    expect(error('to: {predictor: small}\nafter: 5ms')).toMatch(/unknown field "after"/);
    expect(error('[small]')).toMatch(/must be a mapping of fields/);
  });
});

describe('compiled onto the backends', () => {
  it("every backend of each predictor, REST and gRPC, but the fallback predictor's own; none without the annotation", () => {
    const c = compiled([sdep('iris', { [FALLBACK_ANNOTATION]: 'to: {predictor: small}' }, [{ name: 'main' }, { name: 'small' }])]);
    expect(c.state).toBe('accepted');
    expect(c.backends.get('rest ns/iris/main')!.fallback).toMatchObject({ label: 'predictor/small', unavailable: true, error: false });
    expect(c.backends.get('grpc ns/iris/main')!.fallback).toBe(c.backends.get('rest ns/iris/main')!.fallback);
    expect(c.backends.get('rest ns/iris/small')!.fallback).toBeNull();
    for (const b of compiled([sdep('iris', {}, [{ name: 'main' }])]).backends.values()) expect(b.fallback).toBeNull();
  });

  it("a predictor's own annotation overrides the deployment's field by field; off turns it off there", () => {
    const c = compiled([
      sdep('iris', { [FALLBACK_ANNOTATION]: 'to: {predictor: small}\non: [overload]' }, [{ name: 'main' }, { name: 'canary', own: 'on: [error]' }, { name: 'quiet', own: 'off' }, { name: 'small' }]),
    ]);
    expect(c.backends.get('rest ns/iris/main')!.fallback).toMatchObject({ label: 'predictor/small', on: ['overload'] });
    expect(c.backends.get('rest ns/iris/canary')!.fallback).toMatchObject({ label: 'predictor/small', on: ['error'] });
    expect(c.backends.get('rest ns/iris/quiet')!.fallback).toBeNull();
    // A predictor may have one where its deployment has none.
    const own = compiled([sdep('iris', {}, [{ name: 'main' }, { name: 'canary', own: 'to: {target: rules}' }])]);
    expect(own.backends.get('rest ns/iris/main')!.fallback).toBeNull();
    expect(own.backends.get('rest ns/iris/canary')!.fallback).toMatchObject({ label: 'target/rules' });
  });

  it('shadows never fall back and are never a fallback', () => {
    const c = compiled([sdep('iris', { [FALLBACK_ANNOTATION]: 'to: {predictor: small}' }, [{ name: 'main' }, { name: 'small' }, { name: 'copy', shadow: true }])]);
    expect(c.backends.get('rest ns/iris/copy')!.fallback).toBeNull();
    const toShadow = compiled([sdep('iris', { [FALLBACK_ANNOTATION]: 'to: {predictor: copy}' }, [{ name: 'main' }, { name: 'copy', shadow: true }])]);
    expect(toShadow.state).toBe('degraded');
    expect(toShadow.reasons).toEqual([expect.stringMatching(/to.predictor "copy" is not a predictor of this deployment \(shadows cannot answer\): served without a fallback$/)]);
  });

  it('a bad value, an unknown predictor or target degrades the deployment alone, with the reason; its predictors are served without a fallback', () => {
    const other = sdep('other', {}, [{ name: 'main' }]);
    const bad = compiled([sdep('iris', { [FALLBACK_ANNOTATION]: 'to: {predictor: small}\non: soon' }, [{ name: 'main' }, { name: 'small', own: 'on: [error]' }]), other]);
    expect(bad.state).toBe('degraded');
    expect(bad.reasons).toEqual([expect.stringMatching(/^seldon.io\/gateway-fallback: on must list reasons .*: served without a fallback$/)]);
    for (const b of bad.backends.values()) expect(b.fallback).toBeNull();
    expect(compiled([other], 'other').state).toBe('accepted');

    const unknown = compiled([sdep('iris', { [FALLBACK_ANNOTATION]: 'to: {predictor: tiny}' }, [{ name: 'main' }])]);
    expect(unknown.reasons).toEqual(['seldon.io/gateway-fallback: to.predictor "tiny" is not a predictor of this deployment (shadows cannot answer): served without a fallback']);
    const target = compiled([sdep('iris', {}, [{ name: 'main', own: 'to: {target: elsewhere}' }])]);
    expect(target.state).toBe('degraded');
    expect(target.reasons).toEqual(['predictor "main": seldon.io/gateway-fallback: to.target "elsewhere" is not a --fallback-target of this gateway (rules): served without a fallback']);
    const self = compiled([sdep('iris', {}, [{ name: 'main', own: 'to: {predictor: main}' }])]);
    expect(self.reasons).toEqual(['predictor "main": seldon.io/gateway-fallback: to.predictor "main" is the predictor itself: served without a fallback']);
    const badName = compiled([sdep('iris', { [FALLBACK_ANNOTATION]: 'to: {deployment: Not_A_Name}' }, [{ name: 'main' }])]);
    expect(badName.reasons).toEqual(['seldon.io/gateway-fallback: to.deployment "Not_A_Name" is not a valid deployment name: served without a fallback']);
    const noTo = compiled([sdep('iris', { [FALLBACK_ANNOTATION]: 'on: [error]' }, [{ name: 'main' }])]);
    expect(noTo.reasons).toEqual(['seldon.io/gateway-fallback: to is required: predictors without their own are served without a fallback']);
  });

  it('a fallback deployment that does not exist degrades the deployment until it appears, and again once it goes', () => {
    const b = new TableBuilder(OPTS);
    b.upsert(sdep('iris', { [FALLBACK_ANNOTATION]: 'to: {deployment: baseline}' }, [{ name: 'main' }]));
    let t = b.build();
    expect(t.deployments.get('ns/iris')).toMatchObject({
      state: 'degraded',
      reasons: ['seldon.io/gateway-fallback: deployment ns/baseline does not exist or serves no route: no fallback until it does'],
    });
    b.upsert(sdep('baseline', {}, [{ name: 'cpu' }]));
    t = b.build();
    expect(t.deployments.get('ns/iris')).toMatchObject({ state: 'accepted', reasons: [] });
    b.remove('ns/baseline');
    t = b.build();
    expect(t.deployments.get('ns/iris')!.state).toBe('degraded');
    // Once iris names it no more, its coming and going says nothing of iris.
    b.upsert(sdep('iris', {}, [{ name: 'main' }]));
    b.upsert(sdep('baseline', {}, [{ name: 'cpu' }]));
    t = b.build();
    expect(t.deployments.get('ns/iris')!.state).toBe('accepted');
  });

  it('/routes shows the policy of each predictor with a fallback', () => {
    const t = buildTable([sdep('iris', { [FALLBACK_ANNOTATION]: '{"to": {"target": "rules"}, "on": "error,overload"}' }, [{ name: 'main' }])], OPTS);
    const member = tableJson(t).deployments[0]!.routes.find((r) => r.kind === 'rest')!.members[0]!;
    expect(member.fallback).toEqual({ to: 'target/rules', on: ['overload', 'error'] });
    const plain = buildTable([sdep('iris', {}, [{ name: 'main' }])], OPTS);
    expect(tableJson(plain).deployments[0]!.routes[0]!.members[0]!).not.toHaveProperty('fallback');
  });
});
