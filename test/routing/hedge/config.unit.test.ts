/**
 * `seldon.io/gateway-hedge` compiled (routing/hedge/config.ts): what each field takes and what it
 * refuses, the defaults, a predictor's own annotation over the deployment's, what a bad value does
 * (the deployment degraded, served without hedging), what is never hedged by construction
 * (shadows, explainers, custom Mappings), and what /routes shows.
 */
import { describe, expect, it } from 'vitest';
import { HEDGE_ANNOTATION, hedgePolicy, parseHedgeFields } from '../../../routing/hedge/config.js';
import { tableJson } from '../../../routing/table/describe.js';
import { buildTable } from '../../../routing/table/builder.js';
import { DEFAULT_COMPILE_OPTIONS, type Backend } from '../../../routing/types.js';
import type { SeldonDeployment } from '../../../routing/seldon/deployment.js';
import { parsedError, parsedValue } from '../../helpers/parsed.js';

const error = parsedError(parseHedgeFields);
const fields = parsedValue(parseHedgeFields);

function sdep(annotations: Record<string, string>, predictors: { name: string; own?: string; shadow?: boolean; explainer?: boolean }[]): SeldonDeployment {
  return {
    metadata: { name: 'iris', namespace: 'ns', annotations },
    spec: {
      predictors: predictors.map((p, i) => ({
        name: p.name,
        traffic: i === 0 ? 100 : 0,
        graph: { name: 'classifier' },
        ...(p.shadow ? { shadow: true } : {}),
        ...(p.explainer ? { explainer: { type: 'AnchorTabular' } } : {}),
        ...(p.own !== undefined ? { annotations: { [HEDGE_ANNOTATION]: p.own } } : {}),
      })),
    },
  };
}

/** Each backend of the deployment by its id and kind (`rest ns/iris/main`, `grpc …`), and its report. */
function compiled(d: SeldonDeployment): { state: string; reasons: readonly string[]; backends: Map<string, Backend> } {
  const t = buildTable([d], DEFAULT_COMPILE_OPTIONS);
  const r = t.deployments.get(`ns/${d.metadata!.name}`)!;
  const backends = new Map<string, Backend>();
  for (const g of t.groups) for (const m of [...g.members, ...g.mirrors]) backends.set(`${g.kind} ${m.backend.id}`, m.backend);
  return { state: r.state, reasons: r.reasons, backends };
}

describe('the annotation value', () => {
  it('on, off and none; a percentile or a fixed delay; bounds, budget and attempts', () => {
    expect(fields('off')).toBe('off');
    expect(fields(' none ')).toBe('off');
    expect(fields('on')).toEqual({});
    expect(fields('{"after": "p95", "budget": "10%"}')).toEqual({ quantile: 0.95, budget: 0.1 });
    expect(fields('after: 20ms\nbudget: 5%')).toEqual({ quantile: null, afterMs: 20, budget: 0.05 });
    expect(fields('after: p99.9')).toEqual({ quantile: 0.999 });
    expect(fields('min: 2x\nmax: 250ms\nmaxAttempts: 3')).toEqual({ minMedians: 2, minMs: 0, maxMs: 250, maxAttempts: 3 });
    expect(fields('min: 5ms\nmax: none')).toEqual({ minMs: 5, minMedians: 0, maxMs: Infinity });
  });

  it('the defaults: after p95, at least 1.5x the median, no upper bound, 5%, two attempts; a fixed delay is taken as written', () => {
    expect(hedgePolicy({})).toMatchObject({ quantile: 0.95, minMs: 0, minMedians: 1.5, maxMs: Infinity, budget: 0.05, maxAttempts: 2 });
    expect(hedgePolicy({}).text).toBe('after p95, min 1.5x median, max none, budget 5%, maxAttempts 2');
    expect(hedgePolicy({ quantile: null, afterMs: 20 })).toMatchObject({ quantile: null, afterMs: 20, minMedians: 0 });
    expect(hedgePolicy({ quantile: null, afterMs: 20, budget: 0.1 }).text).toBe('after 20ms, min 0ms, max none, budget 10%, maxAttempts 2');
  });

  it('says what is wrong with a bad value', () => {
    expect(error('after: 20')).toMatch(/^seldon.io\/gateway-hedge: after must be a percentile .* or a duration like 20ms \(a bare number has no unit\), not 20$/);
    expect(error('after: p100')).toMatch(/after must be a percentile/);
    expect(error('after: p10')).toMatch(/after must be a percentile/);
    expect(error('after: 0ms')).toMatch(/after must be a percentile/);
    expect(error('min: 1.5')).toMatch(/min must be a duration like 5ms or a multiple of the median like 1.5x, not 1.5/);
    expect(error('max: 0s')).toMatch(/max must be a duration like 500ms or none/);
    expect(error('min: 50ms\nmax: 20ms')).toMatch(/max must be at least min/);
    expect(error('budget: 5')).toMatch(/budget must be a percent of requests above 0% and at most 100%, like 5%, not 5/);
    expect(error('budget: 0%')).toMatch(/budget must be a percent/);
    expect(error('budget: 120%')).toMatch(/budget must be a percent/);
    expect(error('maxAttempts: 1')).toMatch(/maxAttempts must be an integer from 2 to 5, not 1/);
    expect(error('maxAttempts: 6')).toMatch(/maxAttempts must be an integer from 2 to 5/);
    expect(error('delay: 5ms')).toMatch(/unknown field "delay"/);
    expect(error('[p95]')).toMatch(/must be a mapping of fields/);
  });
});

describe('compiled onto the backends', () => {
  it('every backend of each predictor, REST and gRPC; none without the annotation', () => {
    const c = compiled(sdep({ [HEDGE_ANNOTATION]: 'after: p90' }, [{ name: 'main' }]));
    expect(c.state).toBe('accepted');
    expect(c.backends.get('rest ns/iris/main')!.hedge).toMatchObject({ quantile: 0.9, budget: 0.05 });
    expect(c.backends.get('grpc ns/iris/main')!.hedge).toBe(c.backends.get('rest ns/iris/main')!.hedge);
    for (const b of compiled(sdep({}, [{ name: 'main' }])).backends.values()) expect(b.hedge).toBeNull();
  });

  it("a predictor's own annotation overrides the deployment's field by field; off turns it off there", () => {
    const c = compiled(sdep({ [HEDGE_ANNOTATION]: 'after: p95\nbudget: 10%' }, [{ name: 'main' }, { name: 'canary', own: 'after: 30ms' }, { name: 'quiet', own: 'off' }]));
    expect(c.backends.get('rest ns/iris/main')!.hedge).toMatchObject({ quantile: 0.95, budget: 0.1 });
    expect(c.backends.get('rest ns/iris/canary')!.hedge).toMatchObject({ quantile: null, afterMs: 30, budget: 0.1, minMedians: 0 });
    expect(c.backends.get('rest ns/iris/quiet')!.hedge).toBeNull();
    // A predictor may be hedged where its deployment is not.
    const own = compiled(sdep({}, [{ name: 'main' }, { name: 'canary', own: 'on' }]));
    expect(own.backends.get('rest ns/iris/main')!.hedge).toBeNull();
    expect(own.backends.get('rest ns/iris/canary')!.hedge).toMatchObject({ quantile: 0.95 });
  });

  it('shadows and explainers are never hedged', () => {
    const c = compiled(
      sdep({ [HEDGE_ANNOTATION]: 'on' }, [
        { name: 'main', explainer: true },
        { name: 'copy', shadow: true },
      ]),
    );
    expect(c.backends.get('rest ns/iris/main')!.hedge).not.toBeNull();
    expect(c.backends.get('rest ns/iris/main#explainer')!.hedge).toBeNull();
    expect(c.backends.get('rest ns/iris/copy')!.hedge).toBeNull();
  });

  it('custom Ambassador Mappings are never hedged', () => {
    const config = JSON.stringify({ apiVersion: 'getambassador.io/v2', kind: 'Mapping', name: 'm', prefix: '/seldon/ns/iris/', service: 'iris-main.ns:8000' });
    const c = compiled(sdep({ [HEDGE_ANNOTATION]: 'on', 'seldon.io/ambassador-config': config }, [{ name: 'main' }]));
    expect(c.backends.size).toBeGreaterThan(0);
    for (const b of c.backends.values()) expect(b.hedge).toBeNull();
  });

  it('a bad value degrades the deployment alone, with the reason; its predictors are served without hedging', () => {
    const c = compiled(sdep({ [HEDGE_ANNOTATION]: 'after: soon' }, [{ name: 'main' }, { name: 'canary', own: 'budget: 10%' }]));
    expect(c.state).toBe('degraded');
    expect(c.reasons).toEqual([expect.stringMatching(/^seldon.io\/gateway-hedge: after must be .*: served without hedging$/)]);
    for (const b of c.backends.values()) expect(b.hedge).toBeNull();
    const own = compiled(sdep({}, [{ name: 'main', own: 'maxAttempts: 9' }]));
    expect(own.state).toBe('degraded');
    expect(own.reasons).toEqual([expect.stringMatching(/^predictor "main": seldon.io\/gateway-hedge: maxAttempts must be .*: served without hedging$/)]);
  });

  it('/routes shows the policy of each hedged predictor', () => {
    const t = buildTable([sdep({ [HEDGE_ANNOTATION]: '{"after": "p99", "budget": "2.5%", "max": "1s"}' }, [{ name: 'main' }])], DEFAULT_COMPILE_OPTIONS);
    const member = tableJson(t).deployments[0]!.routes.find((r) => r.kind === 'rest')!.members[0]!;
    expect(member.hedge).toEqual({ after: 'p99', minMs: 0, minMedians: 1.5, maxMs: 1000, budgetPercent: 2.5, maxAttempts: 2 });
    const plain = buildTable([sdep({}, [{ name: 'main' }])], DEFAULT_COMPILE_OPTIONS);
    expect(tableJson(plain).deployments[0]!.routes[0]!.members[0]!.hedge).toBeUndefined();
  });
});
