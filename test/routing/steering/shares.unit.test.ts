/**
 * Live shares (routing/steering/shares.ts): how a deployment's override moves traffic among its own
 * members only, what sticky points do as a canary's weight grows, and that the table carries the
 * steering annotations (a malformed one degrades only its deployment).
 */
import { describe, expect, it } from 'vitest';
import { match } from '../../../routing/table/match.js';
import { randomPicker, seededRandom } from '../../../routing/table/pick.js';
import { steerGroup, stickyPoint, type SteerOverride } from '../../../routing/steering/shares.js';
import { buildTable } from '../../../routing/table/builder.js';
import { DEFAULT_COMPILE_OPTIONS, type Picker, type RouteGroup, type RouteTable, type Routed } from '../../../routing/types.js';
import type { SeldonDeployment } from '../../../routing/seldon/deployment.js';
import { BANDIT_DEFAULTS } from '../../../routing/steering/bandit.js';

function sdep(name: string, annotations: Record<string, string>, predictors: { name: string; traffic?: number; shadow?: boolean }[], extra: Record<string, unknown> = {}): SeldonDeployment {
  return {
    apiVersion: 'machinelearning.seldon.io/v1',
    kind: 'SeldonDeployment',
    metadata: { name, namespace: 'models', annotations },
    spec: { ...extra, predictors: predictors.map((p) => ({ ...p, graph: { name: 'm', implementation: 'SKLEARN_SERVER', modelUri: `gs://m/${p.name}` } })) },
  } as SeldonDeployment;
}

const ROLLOUT = { 'seldon.io/gateway-rollout': 'canary: v2\nsteps: [10, 50, 100]' };
const override = (percents: Record<string, number>, mirrors: Record<string, number> = {}, lead: string | null = null): SteerOverride => ({
  percents: new Map(Object.entries(percents)),
  mirrors: new Map(Object.entries(mirrors)),
  lead,
});

function restGroup(table: ReturnType<typeof buildTable>, prefix: string): RouteGroup {
  return table.restByPrefix.get(prefix)![0]!;
}

/** A REST request whose sticky point comes from its header, as the gateway computes it. */
function matchFor(t: RouteTable, path: string, headers: Record<string, string>, picker: Picker): Routed {
  const d = match(
    t,
    {
      kind: 'rest',
      method: 'POST',
      path,
      host: 'gw',
      header: (n) => headers[n],
      sticky: (spec) => (spec.kind === 'header' && headers[spec.name] !== undefined ? stickyPoint(headers[spec.name]!) : undefined),
    },
    picker,
  );
  if (!d.ok) throw new Error(d.info);
  return d;
}

const shares = (g: RouteGroup): Record<string, number> =>
  Object.fromEntries(g.members.map((m) => [`${m.backend.origin.deployment}/${m.backend.origin.predictor}`, Math.round(m.percent * 1000) / 1000]));

describe('steerGroup: a deployment override moves shares among its own members only', () => {
  it('a rollout weight moves the canary from its configured 0% to the live percent, the primary keeps the rest', () => {
    const t = buildTable([sdep('iris', ROLLOUT, [{ name: 'main' }, { name: 'v2', traffic: 0 }])], DEFAULT_COMPILE_OPTIONS);
    const g = restGroup(t, '/seldon/models/iris/');
    expect(g.steered).toBe(true);
    expect(shares(g)).toEqual({ 'iris/main': 100, 'iris/v2': 0 });
    const steered = steerGroup(g, new Map([['models/iris', override({ v2: 25 })]]));
    expect(shares(steered)).toEqual({ 'iris/main': 75, 'iris/v2': 25 });
    expect(steered.cumulative.at(-1)).toBeCloseTo(100, 9);
    // The table's group is untouched (it is shared by every request).
    expect(shares(g)).toEqual({ 'iris/main': 100, 'iris/v2': 0 });
  });

  it("before the first live shares: a bandit's arms split evenly, non-arms get nothing; a rollout keeps the configured traffic", () => {
    // A bandit spec that gives everything to the first predictor, as Seldon's defaults do.
    const bandit = buildTable(
      [sdep('rec', { 'seldon.io/gateway-bandit': 'arms: [a, b, c]' }, [{ name: 'a' }, { name: 'b', traffic: 0 }, { name: 'c', traffic: 0 }, { name: 'd', traffic: 0 }])],
      DEFAULT_COMPILE_OPTIONS,
    );
    expect(shares(restGroup(bandit, '/seldon/models/rec/'))).toEqual({ 'rec/a': 33.333, 'rec/b': 33.333, 'rec/c': 33.333, 'rec/d': 0 });
    expect(restGroup(bandit, '/seldon/models/rec/').warnings).toEqual([]);
    const rollout = buildTable(
      [
        sdep('iris', ROLLOUT, [
          { name: 'main', traffic: 70 },
          { name: 'v2', traffic: 30 },
        ]),
      ],
      DEFAULT_COMPILE_OPTIONS,
    );
    expect(shares(restGroup(rollout, '/seldon/models/iris/'))).toEqual({ 'iris/main': 70, 'iris/v2': 30 });
  });

  it('in a group shared with another deployment (the legacy pattern) the other keeps its share', () => {
    const a = sdep('fraud', ROLLOUT, [{ name: 'main' }, { name: 'v2', traffic: 0 }]);
    const b = sdep('fraud-v8', { 'seldon.io/ambassador-service-name': 'fraud', 'seldon.io/ambassador-weight': '20' }, [{ name: 'main' }]);
    const t = buildTable([a, b], DEFAULT_COMPILE_OPTIONS);
    const g = restGroup(t, '/seldon/models/fraud/');
    expect(shares(g)).toEqual({ 'fraud/main': 80, 'fraud/v2': 0, 'fraud-v8/main': 20 });
    expect(shares(steerGroup(g, new Map([['models/fraud', override({ v2: 50 })]])))).toEqual({ 'fraud/main': 40, 'fraud/v2': 40, 'fraud-v8/main': 20 });
  });

  it('a mirror phase adds the canary as a mirror at its percent, and a lead predictor is drawn first', () => {
    const t = buildTable([sdep('iris', ROLLOUT, [{ name: 'main' }, { name: 'v2', traffic: 0 }])], DEFAULT_COMPILE_OPTIONS);
    const g = restGroup(t, '/seldon/models/iris/');
    const s = steerGroup(g, new Map([['models/iris', override({ v2: 0 }, { v2: 30 }, 'v2')]]));
    expect(s.mirrors.map((m) => [m.backend.origin.predictor, m.percent])).toEqual([['v2', 30]]);
    expect(s.members[0]!.backend.origin.predictor).toBe('v2');
  });

  it('an empty bandit annotation is every default: all predictors are arms, split evenly', () => {
    const t = buildTable([sdep('rec', { 'seldon.io/gateway-bandit': '' }, [{ name: 'a' }, { name: 'b', traffic: 0 }])], DEFAULT_COMPILE_OPTIONS);
    expect(t.steering.get('models/rec')?.bandit?.config).toEqual({ arms: ['a', 'b'], ...BANDIT_DEFAULTS });
    expect(shares(restGroup(t, '/seldon/models/rec/'))).toEqual({ 'rec/a': 50, 'rec/b': 50 });
  });

  it('bandit shares replace the configured split; explainers and shadows are never steered', () => {
    const bandit = { 'seldon.io/gateway-bandit': 'arms: [a, b]' };
    const d = sdep('rec', bandit, [{ name: 'a' }, { name: 'b', traffic: 10 }, { name: 'audit', shadow: true }]);
    const t = buildTable([d], DEFAULT_COMPILE_OPTIONS);
    const g = restGroup(t, '/seldon/models/rec/');
    expect(g.mirrors.map((m) => m.backend.steered)).toEqual([false]);
    expect(shares(steerGroup(g, new Map([['models/rec', override({ a: 30, b: 70 })]])))).toEqual({ 'rec/a': 30, 'rec/b': 70 });
    expect(t.steering.get('models/rec')?.bandit?.config.arms).toEqual(['a', 'b']);
  });
});

describe('sticky points', () => {
  it('as the canary weight rises a client only ever moves from the primary to the canary, never back', () => {
    const t = buildTable(
      [sdep('iris', { ...ROLLOUT, 'seldon.io/gateway-rollout': 'canary: v2\nsteps: [10, 50, 100]\nsticky: header:x-user-id' }, [{ name: 'main' }, { name: 'v2', traffic: 0 }])],
      DEFAULT_COMPILE_OPTIONS,
    );
    const g = restGroup(t, '/seldon/models/iris/');
    expect(g.sticky).toEqual({ kind: 'header', name: 'x-user-id' });
    const picker = randomPicker(seededRandom(1));
    const users = Array.from({ length: 2000 }, (_, i) => `user-${i}`);
    let onCanary = new Set<string>();
    for (const w of [1, 5, 10, 25, 50, 75, 100]) {
      const s = steerGroup(g, new Map([['models/iris', override({ v2: w }, {}, 'v2')]]));
      const now = new Set(users.filter((u) => picker.pick(s, undefined, stickyPoint(u))!.origin.predictor === 'v2'));
      for (const u of onCanary) expect(now.has(u), `${u} moved back at ${w}%`).toBe(true);
      // Weights are kept in aggregate: within 3 points of the share at 2,000 users.
      expect(Math.abs((now.size / users.length) * 100 - w)).toBeLessThan(3);
      onCanary = now;
    }
  });

  it('the same value always lands on the same point; points spread evenly', () => {
    expect(stickyPoint('alice')).toBe(stickyPoint('alice'));
    const buckets = new Array<number>(10).fill(0);
    for (let i = 0; i < 10_000; i++) buckets[Math.floor(stickyPoint(`id-${i}`) * 10)]!++;
    for (const b of buckets) expect(Math.abs(b - 1000)).toBeLessThan(120);
  });

  it('match takes a sticky request to the place its key falls, the same one every time', () => {
    const t = buildTable([sdep('iris', { 'seldon.io/gateway-sticky': 'header:x-user-id' }, [{ name: 'main' }, { name: 'v2', traffic: 50 }])], DEFAULT_COMPILE_OPTIONS);
    const picks = new Set<string>();
    for (let i = 0; i < 20; i++) picks.add(matchFor(t, '/seldon/models/iris/api/v1.0/predictions', { 'x-user-id': 'bob' }, randomPicker(seededRandom(i))).backend.origin.predictor);
    expect(picks.size).toBe(1);
  });
});

describe('steering annotations in the table', () => {
  it('a malformed rollout degrades only its deployment: static traffic applies, the reason is listed', () => {
    const bad = sdep('iris', { 'seldon.io/gateway-rollout': 'canary: nope' }, [{ name: 'main' }, { name: 'v2', traffic: 30 }]);
    const good = sdep('other', ROLLOUT, [{ name: 'main' }, { name: 'v2' }]);
    const t = buildTable([bad, good], DEFAULT_COMPILE_OPTIONS);
    const r = t.deployments.get('models/iris')!;
    expect(r.state).toBe('degraded');
    expect(r.reasons.join(' ')).toMatch(/gateway-rollout/);
    expect(t.steering.has('models/iris')).toBe(false);
    expect(shares(restGroup(t, '/seldon/models/iris/'))).toEqual({ 'iris/main': 70, 'iris/v2': 30 });
    expect(t.deployments.get('models/other')!.state).toBe('accepted');
    expect(t.steering.has('models/other')).toBe(true);
  });

  it('a rollout and a bandit on one deployment degrade it; neither applies', () => {
    const d = sdep('iris', { ...ROLLOUT, 'seldon.io/gateway-bandit': 'arms: [main, v2]' }, [{ name: 'main' }, { name: 'v2' }]);
    const t = buildTable([d], DEFAULT_COMPILE_OPTIONS);
    expect(t.deployments.get('models/iris')!.state).toBe('degraded');
    expect(t.steering.has('models/iris')).toBe(false);
    expect(restGroup(t, '/seldon/models/iris/').steered).toBe(false);
  });

  it("a new run starts when the canary's spec changes, not when its traffic is written after a promotion", () => {
    const run = (p: { name: string; traffic?: number }[], uri = 'gs://m/v2'): string => {
      const d = sdep('iris', ROLLOUT, p);
      (d.spec!.predictors![1]!.graph as { modelUri: string }).modelUri = uri;
      return buildTable([d], DEFAULT_COMPILE_OPTIONS).steering.get('models/iris')!.rollout!.run;
    };
    const base = run([{ name: 'main' }, { name: 'v2', traffic: 0 }]);
    expect(run([{ name: 'main' }, { name: 'v2', traffic: 100 }])).toBe(base);
    expect(run([{ name: 'main' }, { name: 'v2', traffic: 0 }], 'gs://m/v3')).not.toBe(base);
  });
});
