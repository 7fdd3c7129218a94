/**
 * `seldon.io/gateway-outlier` (docs/routing.md#endpoint-health): what the annotation sets over the
 * gateway's flags, per deployment and per predictor, and what a bad value does (the deployment is
 * degraded with the reason and served with the flags' settings).
 */
import { describe, expect, it } from 'vitest';
import { OUTLIER_ANNOTATION, outlierAnnotations, parseOutlierFields } from '../../../routing/health/outlier-config.js';
import { compileDeployment } from '../../../routing/compile/deployment.js';
import { DEFAULT_COMPILE_OPTIONS } from '../../../routing/types.js';
import type { SeldonDeployment } from '../../../routing/seldon/deployment.js';

const error = (raw: string): string => {
  const p = parseOutlierFields(raw);
  if (p.ok) throw new Error(`parsed: ${JSON.stringify(p.value)}`);
  return p.error;
};

describe('the annotation value', () => {
  it('off / none / on, and each field with its unit', () => {
    expect(parseOutlierFields('off')).toEqual({ ok: true, value: 'off' });
    expect(parseOutlierFields(' none ')).toEqual({ ok: true, value: 'off' });
    expect(parseOutlierFields('on')).toEqual({ ok: true, value: {} });
    expect(parseOutlierFields('consecutiveLocalFailures: 3\nejectionTime: 10s\nmaxEjectionTime: 2m\nmaxEjectedPercent: 34\nslowStart: 0s')).toEqual({
      ok: true,
      value: { consecutiveLocal: 3, baseEjectionMs: 10_000, maxEjectionMs: 120_000, maxEjectedPercent: 34, slowStartMs: 0 },
    });
    expect(parseOutlierFields('{"ejectionTime": "1m"}')).toEqual({ ok: true, value: { baseEjectionMs: 60_000 } });
  });

  it('says what is wrong with a bad value', () => {
    expect(error('ejectionTime: 30')).toMatch(/^seldon.io\/gateway-outlier: ejectionTime must be a duration .*no unit/);
    expect(error('consecutiveLocalFailures: 0')).toMatch(/consecutiveLocalFailures must be an integer from 1 to 1000, not 0/);
    expect(error('maxEjectedPercent: 150')).toMatch(/maxEjectedPercent must be an integer from 0 to 100, not 150/);
    expect(error('ejectionTime: 5m\nmaxEjectionTime: 1m')).toMatch(/maxEjectionTime must be at least ejectionTime/);
    expect(error('interval: 10s')).toMatch(/unknown field "interval"/);
    expect(error('[1, 2]')).toMatch(/must be a mapping of fields/);
  });

  it("a predictor's own value overrides the deployment's field by field; off turns it off for that one", () => {
    const a = outlierAnnotations('ejectionTime: 10s\nslowStart: 5s');
    const warnings: string[] = [];
    const warn = (w: string): number => warnings.push(w);
    expect(a.of('p', undefined, warn)).toEqual({ baseEjectionMs: 10_000, slowStartMs: 5_000 });
    expect(a.of('p', 'slowStart: 1s', warn)).toEqual({ baseEjectionMs: 10_000, slowStartMs: 1_000 });
    expect(a.of('p', 'off', warn)).toBeNull();
    expect(a.of('p', 'slowStart: 1', warn)).toBeUndefined();
    expect(warnings).toEqual([expect.stringMatching(/^predictor "p": seldon.io\/gateway-outlier: slowStart must be a duration/)]);
    expect(outlierAnnotations(undefined).of('p', undefined, warn)).toBeUndefined();
    expect(outlierAnnotations('off').of('p', undefined, warn)).toBeNull();
  });
});

const sdep = (annotations: Record<string, string>, predictorAnnotations?: Record<string, string>): SeldonDeployment => ({
  apiVersion: 'machinelearning.seldon.io/v1',
  kind: 'SeldonDeployment',
  metadata: { name: 'iris', namespace: 'models', annotations },
  spec: { predictors: [{ name: 'main', graph: { name: 'm' }, ...(predictorAnnotations ? { annotations: predictorAnnotations } : {}) }] },
});

describe('compiled onto the backends', () => {
  it('on every backend of the predictor, REST and gRPC; none without the annotation', () => {
    const c = compileDeployment(sdep({ [OUTLIER_ANNOTATION]: 'maxEjectedPercent: 25' }), DEFAULT_COMPILE_OPTIONS);
    expect(c.report.state).toBe('accepted');
    expect(c.routes.length).toBe(2);
    for (const r of c.routes) expect(r.backend.outlier).toEqual({ maxEjectedPercent: 25 });
    for (const r of compileDeployment(sdep({}), DEFAULT_COMPILE_OPTIONS).routes) expect(r.backend.outlier).toBeUndefined();
    for (const r of compileDeployment(sdep({}, { [OUTLIER_ANNOTATION]: 'off' }), DEFAULT_COMPILE_OPTIONS).routes) expect(r.backend.outlier).toBeNull();
  });

  it('a bad value degrades the deployment alone, with the reason, and it is served with the flags', () => {
    const c = compileDeployment(sdep({ [OUTLIER_ANNOTATION]: 'ejectionTime: soon' }), DEFAULT_COMPILE_OPTIONS);
    expect(c.report.state).toBe('degraded');
    expect(c.report.reasons).toEqual([expect.stringMatching(/^seldon.io\/gateway-outlier: ejectionTime must be a duration .*: served with the gateway's endpoint health settings$/)]);
    expect(c.routes.length).toBe(2);
    for (const r of c.routes) expect(r.backend.outlier).toBeUndefined();
  });
});
