/**
 * `seldon.io/gateway-protocol` compiled (routing/policies/protocol.ts): each field and its refusals, the
 * defaults from spec.protocol and the graph, a predictor's own annotation over the deployment's, a
 * bad value degrading that deployment alone (served untranslated), no annotation changing nothing,
 * and what /routes shows.
 */
import { describe, expect, it } from 'vitest';
import { PROTOCOL_ANNOTATION, parseProtocolFields } from '../../../routing/policies/protocol.js';
import { tableJson } from '../../../routing/table/describe.js';
import { buildTable } from '../../../routing/table/builder.js';
import { DEFAULT_COMPILE_OPTIONS, type Backend, type DeploymentReport } from '../../../routing/types.js';
import type { SeldonDeployment } from '../../../routing/seldon/deployment.js';
import { parsedError, parsedValue } from '../../helpers/parsed.js';

const error = parsedError(parseProtocolFields);
const fields = parsedValue(parseProtocolFields);

function sdep(name: string, annotations: Record<string, string>, predictors: { name: string; own?: string; shadow?: boolean }[], protocol?: string): SeldonDeployment {
  return {
    metadata: { name, namespace: 'ns', annotations },
    spec: {
      ...(protocol !== undefined ? { protocol } : {}),
      predictors: predictors.map((p, i) => ({
        name: p.name,
        traffic: i === 0 ? 100 : 0,
        graph: { name: 'classifier' },
        ...(p.shadow ? { shadow: true } : {}),
        ...(p.own !== undefined ? { annotations: { [PROTOCOL_ANNOTATION]: p.own } } : {}),
      })),
    },
  };
}

function compiled(ds: SeldonDeployment[]): { reports: ReadonlyMap<string, DeploymentReport>; backends: Map<string, Backend> } {
  const t = buildTable(ds, DEFAULT_COMPILE_OPTIONS);
  const backends = new Map<string, Backend>();
  for (const g of t.groups) for (const m of [...g.members, ...g.mirrors]) backends.set(`${g.kind} ${m.backend.id}`, m.backend);
  return { reports: t.deployments, backends };
}

describe('the annotation value', () => {
  it('each field', () => {
    expect(fields('speaks: v2')).toEqual({ speaks: 'v2' });
    expect(fields('{"accept": ["seldon"], "modelName": "iris", "datatype": "FP32", "names": ["a", "b"]}')).toEqual({ accept: ['seldon'], modelName: 'iris', datatype: 'FP32', names: ['a', 'b'] });
    expect(fields('accept: v2, seldon')).toEqual({ accept: ['seldon', 'v2'] });
    // A version: Triton's a number (YAML reads it as one), MLServer's any name.
    expect(fields('modelVersion: 2')).toEqual({ modelVersion: '2' });
    expect(fields('modelVersion: v1.2-rc')).toEqual({ modelVersion: 'v1.2-rc' });
    expect(fields('')).toEqual({});
  });
  it('refusals name the field', () => {
    expect(error('speaks: grpc')).toMatch(/speaks must be seldon or v2, not "grpc"/);
    expect(error('accept: [kfserving]')).toMatch(/accept must list seldon and\/or v2/);
    expect(error('modelName: "../x"')).toMatch(/modelName must be a model name/);
    // A path segment: nothing that could leave it (a traversal, a query, an encoded slash), nor a number that is not a version.
    for (const bad of ['"../x"', '"2/infer?x=1"', '"a%2Fb"', '-1', '1.5', '""', '[2]']) expect(error(`modelVersion: ${bad}`)).toMatch(/modelVersion must be a version/);
    expect(error('datatype: FLOAT')).toMatch(/datatype must be one of BOOL/);
    expect(error('names: [1]')).toMatch(/names must be a list of strings/);
    expect(error('colour: red')).toMatch(/unknown field "colour"/);
    expect(error('[')).toMatch(/does not parse/);
  });
});

describe('compiled onto the backends', () => {
  it('speaks defaults to spec.protocol (v2 and kfserving mean v2), accept to the other, modelName to the graph root', () => {
    const { backends } = compiled([
      sdep('a', { [PROTOCOL_ANNOTATION]: '' }, [{ name: 'main' }], 'v2'),
      sdep('b', { [PROTOCOL_ANNOTATION]: '' }, [{ name: 'main' }], 'kfserving'),
      sdep('c', { [PROTOCOL_ANNOTATION]: '' }, [{ name: 'main' }]),
    ]);
    expect(backends.get('rest ns/a/main')!.translate).toMatchObject({ speaks: 'v2', accept: ['seldon'], modelName: 'classifier', datatype: null, names: null });
    expect(backends.get('grpc ns/a/main')!.translate).toBe(backends.get('rest ns/a/main')!.translate);
    expect(backends.get('rest ns/b/main')!.translate!.speaks).toBe('v2');
    expect(backends.get('rest ns/c/main')!.translate).toMatchObject({ speaks: 'seldon', accept: ['v2'] });
  });
  it("a predictor's own annotation overrides field by field: a canary moves a model to v2, a shadow too", () => {
    const d = sdep('iris', { [PROTOCOL_ANNOTATION]: 'modelName: iris' }, [{ name: 'main' }, { name: 'next', own: 'speaks: v2' }, { name: 'shadow', own: 'speaks: v2', shadow: true }]);
    const { backends, reports } = compiled([d]);
    expect(reports.get('ns/iris')!.state).toBe('accepted');
    expect(backends.get('rest ns/iris/main')!.translate).toMatchObject({ speaks: 'seldon', accept: ['v2'], modelName: 'iris' });
    expect(backends.get('rest ns/iris/next')!.translate).toMatchObject({ speaks: 'v2', accept: ['seldon'], modelName: 'iris' });
    expect(backends.get('rest ns/iris/shadow')!.translate).toMatchObject({ speaks: 'v2' });
  });
  it('no annotation: no translation, and /routes says nothing of it', () => {
    const d = sdep('plain', {}, [{ name: 'main' }], 'v2');
    const { backends } = compiled([d]);
    expect(backends.get('rest ns/plain/main')!.translate).toBeNull();
    expect(JSON.stringify(tableJson(buildTable([d], DEFAULT_COMPILE_OPTIONS)))).not.toContain('protocol');
  });
  it('a bad value degrades that deployment alone, served untranslated, with the reason', () => {
    const { backends, reports } = compiled([sdep('bad', { [PROTOCOL_ANNOTATION]: 'speaks: grpc' }, [{ name: 'main' }]), sdep('good', { [PROTOCOL_ANNOTATION]: 'speaks: v2' }, [{ name: 'main' }])]);
    expect(reports.get('ns/bad')).toMatchObject({ state: 'degraded', reasons: [expect.stringMatching(/seldon.io\/gateway-protocol: speaks must be seldon or v2.*served untranslated/)] });
    expect(backends.get('rest ns/bad/main')!.translate).toBeNull();
    expect(reports.get('ns/good')!.state).toBe('accepted');
    expect(backends.get('rest ns/good/main')!.translate!.speaks).toBe('v2');
  });
  it('tensorflow needs speaks said', () => {
    const { backends, reports } = compiled([sdep('tf', { [PROTOCOL_ANNOTATION]: 'accept: [v2]' }, [{ name: 'main' }], 'tensorflow')]);
    expect(reports.get('ns/tf')!.reasons[0]).toMatch(/speaks must be said/);
    expect(backends.get('rest ns/tf/main')!.translate).toBeNull();
  });
  it('/routes shows it', () => {
    const json = JSON.stringify(tableJson(buildTable([sdep('iris', { [PROTOCOL_ANNOTATION]: 'speaks: v2\ndatatype: FP32' }, [{ name: 'main' }])], DEFAULT_COMPILE_OPTIONS)));
    expect(json).toContain('"protocol":{"speaks":"v2","accept":["seldon"],"modelName":"classifier","datatype":"FP32","names":null}');
  });
});
