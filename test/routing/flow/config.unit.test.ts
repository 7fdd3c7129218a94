/**
 * `seldon.io/gateway-flow` (docs/flow-control.md): the annotation's fields and defaults, a
 * predictor's override, and what a bad value does (the deployment degrades, its predictors are
 * served without flow control, the reason is in its report).
 */
import { describe, expect, it } from 'vitest';
import { FLOW_ANNOTATION, FLOW_DEFAULTS, flowAnnotations, flowPolicy, parseFlowFields, type FlowFields } from '../../../routing/flow/config.js';
import { compileDeployment } from '../../../routing/compile/deployment.js';
import { DEFAULT_COMPILE_OPTIONS } from '../../../routing/types.js';
import { tableJson } from '../../../routing/table/describe.js';
import { buildTable } from '../../../routing/table/builder.js';
import type { SeldonDeployment } from '../../../routing/seldon/deployment.js';

function fields(raw: string): Exclude<FlowFields, 'off'> {
  const p = parseFlowFields(raw);
  if (!p.ok) throw new Error(p.error);
  if (p.value === 'off') throw new Error(`${raw} is off`);
  return p.value;
}
function error(raw: string): string {
  const p = parseFlowFields(raw);
  if (p.ok) throw new Error(`expected an error for ${raw}`);
  expect(p.error.startsWith(`${FLOW_ANNOTATION}: `)).toBe(true);
  return p.error;
}

describe('the flow annotation', () => {
  it('reads every field, in YAML or JSON', () => {
    const yaml = fields('concurrency: 4\nqueue: 100\nqueueTimeout: 1s\ntenant: header:X-Tenant\nscaleFromZero: 60s\n');
    expect(yaml).toEqual({ concurrency: 4, queue: 100, queueTimeoutMs: 1000, tenantHeader: 'x-tenant', scaleFromZeroMs: 60_000 });
    const json = fields('{"concurrency":"adaptive","queue":4,"queueTimeout":"100ms","tenant":"header:x-team","scaleFromZero":"1m30s"}');
    expect(json).toEqual({ concurrency: 'adaptive', queue: 4, queueTimeoutMs: 100, tenantHeader: 'x-team', scaleFromZeroMs: 90_000 });
  });

  it('makes every field optional: an empty value is all defaults', () => {
    expect(flowPolicy(fields(''))).toMatchObject(FLOW_DEFAULTS);
    expect(flowPolicy(fields('{}'))).toMatchObject({ concurrency: 'adaptive', queue: 100, queueTimeoutMs: 1000, tenantHeader: null, scaleFromZeroMs: 0 });
    expect(parseFlowFields('off')).toEqual({ ok: true, value: 'off' });
  });

  it('gives equal settings equal keys, and frozen policies', () => {
    const a = flowPolicy(fields('concurrency: 4\nqueue: 10'));
    const b = flowPolicy(fields('{"queue":10,"concurrency":4}'));
    expect(a.key).toBe(b.key);
    expect(Object.isFrozen(a)).toBe(true);
    expect(flowPolicy(fields('concurrency: 5\nqueue: 10')).key).not.toBe(a.key);
  });

  it('reads a quoted whole number as the number, as every whole number is read (routing/values/whole-number.ts)', () => {
    expect(fields('concurrency: "5"\nqueue: "10"')).toEqual(fields('concurrency: 5\nqueue: 10'));
  });

  it('refuses bad values with the field named', () => {
    expect(error('concurrency: 0')).toMatch(/concurrency must be an integer from 1/);
    expect(error('concurrency: 2.5')).toMatch(/concurrency/);
    expect(error('concurrency: fast')).toMatch(/concurrency.*"fast"/);
    expect(error('queue: -1')).toMatch(/queue must be an integer/);
    expect(error('queue: "10.5"')).toMatch(/queue/);
    expect(error('queueTimeout: 100')).toMatch(/queueTimeout.*bare number has no unit/);
    expect(error('scaleFromZero: 60')).toMatch(/scaleFromZero.*no unit/);
    expect(error('tenant: x-tenant')).toMatch(/tenant must be header:<name>/);
    expect(error('tenant: "header:x tenant"')).toMatch(/not a valid header name/);
    expect(error('tenant: "header:"')).toMatch(/empty header name/);
    expect(error('concurency: 4')).toMatch(/unknown field "concurency"/);
    expect(error('[1, 2]')).toMatch(/must be a mapping/);
    expect(error('concurrency: [4')).toMatch(/does not parse/);
  });

  it('lets a predictor override the deployment field by field, or turn it off', () => {
    const warnings: string[] = [];
    const warn = (w: string): void => void warnings.push(w);
    const flows = flowAnnotations('concurrency: 4\nqueue: 50');
    expect(flows.of('a', undefined, warn)).toMatchObject({ concurrency: 4, queue: 50, queueTimeoutMs: 1000 });
    expect(flows.of('a', undefined, warn)).toBe(flows.of('b', undefined, warn));
    expect(flows.of('b', 'queueTimeout: 200ms', warn)).toMatchObject({ concurrency: 4, queue: 50, queueTimeoutMs: 200 });
    expect(flows.of('c', 'off', warn)).toBeNull();
    expect(flows.of('d', 'queue: many', warn)).toBeNull();
    expect(warnings).toEqual([expect.stringMatching(/^predictor "d": seldon.io\/gateway-flow: queue must be/)]);
    // No deployment annotation: a predictor's own alone.
    expect(flowAnnotations(undefined).of('a', 'concurrency: 2', warn)).toMatchObject({ concurrency: 2, queue: 100 });
    expect(flowAnnotations(undefined).of('a', undefined, warn)).toBeNull();
  });
});

const sdep = (annotations: Record<string, string>, predictors: SeldonDeployment['spec'] extends infer S ? (S extends { predictors?: infer P } ? P : never) : never): SeldonDeployment => ({
  apiVersion: 'machinelearning.seldon.io/v1',
  kind: 'SeldonDeployment',
  metadata: { name: 'iris', namespace: 'models', annotations },
  spec: { predictors },
});

describe('compiling the flow annotation', () => {
  it('puts the policy on every backend of the predictor, REST and gRPC, and shows it in /routes', () => {
    const d = sdep({ [FLOW_ANNOTATION]: 'concurrency: 4\nqueue: 8\nqueueTimeout: 500ms' }, [{ name: 'main', graph: { name: 'm' } }]);
    const c = compileDeployment(d, DEFAULT_COMPILE_OPTIONS);
    expect(c.report.state).toBe('accepted');
    expect(c.routes.length).toBe(2);
    for (const r of c.routes) expect(r.backend.flow).toMatchObject({ concurrency: 4, queue: 8, queueTimeoutMs: 500 });
    const json = tableJson(buildTable([d], DEFAULT_COMPILE_OPTIONS));
    expect(json.deployments[0]!.routes[0]!.members[0]!.flow).toEqual({ concurrency: 4, queue: 8, queueTimeoutMs: 500, tenantHeader: null, scaleFromZeroMs: 0 });
  });

  it('leaves a deployment without the annotation without flow control', () => {
    const c = compileDeployment(sdep({}, [{ name: 'main', graph: { name: 'm' } }]), DEFAULT_COMPILE_OPTIONS);
    for (const r of c.routes) expect(r.backend.flow).toBeNull();
  });

  it('degrades a deployment with a bad value: served without limits, the reason in its report', () => {
    const c = compileDeployment(sdep({ [FLOW_ANNOTATION]: 'concurrency: 0' }, [{ name: 'main', graph: { name: 'm' } }]), DEFAULT_COMPILE_OPTIONS);
    expect(c.report.state).toBe('degraded');
    expect(c.report.reasons).toEqual([expect.stringMatching(/^seldon.io\/gateway-flow: concurrency must be .*: served without flow control$/)]);
    expect(c.routes.length).toBe(2);
    for (const r of c.routes) expect(r.backend.flow).toBeNull();
  });

  it("degrades on a predictor's bad override: that predictor alone is served without limits", () => {
    const c = compileDeployment(
      sdep({ [FLOW_ANNOTATION]: 'concurrency: 4' }, [
        { name: 'a', graph: { name: 'm' }, traffic: 50 },
        { name: 'b', graph: { name: 'm' }, traffic: 50, annotations: { [FLOW_ANNOTATION]: 'queueTimeout: 3' } },
      ]),
      DEFAULT_COMPILE_OPTIONS,
    );
    expect(c.report.state).toBe('degraded');
    expect(c.report.reasons).toEqual([expect.stringMatching(/^predictor "b": seldon.io\/gateway-flow: queueTimeout .*no unit.*: served without flow control$/)]);
    const byPred = new Map(c.routes.map((r) => [r.backend.origin.predictor, r.backend.flow]));
    expect(byPred.get('a')).toMatchObject({ concurrency: 4 });
    expect(byPred.get('b')).toBeNull();
  });
});
