/**
 * A seeded simulation of endpoint health (routing/health/endpoints.ts) in front of model replicas:
 * open-loop requests spread over the gateway's workers, each worker with its own detector and
 * picker over the same replicas, as the data planes have them. Discrete events on a simulated
 * clock: no sockets, no sleeping; the same seed gives the same figures.
 *
 * Used by load/health-sim.ts (the table in load/README.md) and test/routing/health/endpoints-sim.test.ts.
 */
import { DEFAULT_OUTLIER_POLICY, EndpointHealth, judge, pickEndpoint, type OutlierPolicy } from '../../routing/health/endpoints.js';
import { seededRandom } from '../../routing/table/pick.js';
import type { OutcomeKind } from '../../routing/types.js';
import { TimeHeap } from './time-heap.js';

/** What one replica does with a request: answer after `ms` (200), fail at once (500), never answer, or answer slowly. */
export type Behaviour = { readonly kind: 'ok'; readonly ms: number } | { readonly kind: 'fail'; readonly ms: number } | { readonly kind: 'hang' };

export interface Replica {
  /** Its behaviour before `healsAt` (ms), and after it. */
  readonly behaviour: Behaviour;
  readonly healsAt?: number;
  readonly healed?: Behaviour;
}

export interface Scenario {
  readonly replicas: readonly Replica[];
  readonly workers: number;
  /** Requests per second, open loop (evenly spaced, each to the next worker in turn). */
  readonly rate: number;
  readonly seconds: number;
  /** Share of requests that carry bad input: every replica answers them 500. */
  readonly badInput?: number;
  /** The route timeout (ms): a request not answered by then fails (504, a local-origin failure). */
  readonly timeoutMs?: number;
  /** Shares are counted from here (ms). */
  readonly warmupMs?: number;
  readonly policy?: OutlierPolicy;
  /** false: the detector off (the pick stays latency-aware). */
  readonly eject?: boolean;
}

export interface SimResult {
  readonly sent: number;
  /** Requests each replica received after the warm-up, as a share of those sent then. */
  readonly shares: number[];
  /** Requests that failed for the replica's fault (5xx of a replica that fails everything, timeouts). */
  readonly failed: number;
  /** Requests answered 500 because of their bad input (the model's own answer). */
  readonly badInputErrors: number;
  /** Ejections, all workers together, and the failures each replica caused before its first one. */
  readonly ejections: number;
  readonly failuresBeforeEjection: (number | null)[];
  /** Mean latency of the requests a replica answered 200. */
  readonly meanLatencyMs: number;
  /** Requests no endpoint could be picked for (must be 0: the gateway never makes its own 503). */
  readonly unpicked: number;
}

interface Sim {
  readonly health: EndpointHealth;
  outstanding: number;
}

export function simulate(s: Scenario, seed: number): SimResult {
  const random = seededRandom(seed);
  const policy = s.policy ?? DEFAULT_OUTLIER_POLICY;
  const timeoutMs = s.timeoutMs ?? 3000;
  const warmupMs = s.warmupMs ?? 2000;
  const n = s.replicas.length;
  const workers: Sim[][] = Array.from({ length: s.workers }, () => s.replicas.map((_r, i) => ({ health: new EndpointHealth(`10.0.0.${i + 1}:9000`, 0, false), outstanding: 0 })));
  const events = new TimeHeap<{ at: number; run: () => void }>();
  const received = new Array<number>(n).fill(0);
  const failuresBefore: (number | null)[] = new Array<number | null>(n).fill(null);
  const failuresSoFar = new Array<number>(n).fill(0);
  let sentAfterWarmup = 0;
  let failed = 0;
  let badInputErrors = 0;
  let ejections = 0;
  let unpicked = 0;
  let okLatency = 0;
  let okCount = 0;
  const total = Math.round(s.rate * s.seconds);
  const behaviourAt = (r: Replica, t: number): Behaviour => (r.healsAt !== undefined && t >= r.healsAt ? r.healed! : r.behaviour);

  for (let k = 0; k < total; k++) {
    const at = (k * 1000) / s.rate;
    events.push({
      at,
      run: () => {
        const group = workers[k % s.workers]!;
        const e = pickEndpoint(group, undefined, at, policy, random);
        if (e === undefined) {
          unpicked++;
          return;
        }
        const i = group.indexOf(e);
        if (at >= warmupMs) {
          sentAfterWarmup++;
          received[i]!++;
        }
        e.outstanding++;
        const b = behaviourAt(s.replicas[i]!, at);
        const bad = s.badInput !== undefined && random() < s.badInput;
        let kind: OutcomeKind;
        let ms: number;
        if (b.kind === 'hang') {
          kind = 'local';
          ms = timeoutMs;
        } else {
          ms = b.ms * (0.5 + random());
          kind = b.kind === 'fail' || bad ? 'error' : 'success';
          if (ms > timeoutMs) {
            kind = 'local';
            ms = timeoutMs;
          }
        }
        events.push({
          at: at + ms,
          run: () => {
            e.outstanding--;
            if (kind === 'success') {
              okLatency += ms;
              okCount++;
            } else if (bad && b.kind !== 'hang') badInputErrors++;
            else {
              failed++;
              failuresSoFar[i]!++;
            }
            const ejection = judge(e.health, group, kind, ms, at + ms, policy, s.eject !== false);
            if (ejection !== undefined) {
              ejections++;
              failuresBefore[i] ??= failuresSoFar[i]!;
            }
          },
        });
      },
    });
  }
  for (let ev = events.pop(); ev !== undefined; ev = events.pop()) ev.run();
  return {
    sent: total,
    shares: received.map((r) => (sentAfterWarmup === 0 ? 0 : r / sentAfterWarmup)),
    failed,
    badInputErrors,
    ejections,
    failuresBeforeEjection: failuresBefore,
    meanLatencyMs: okCount === 0 ? 0 : okLatency / okCount,
    unpicked,
  };
}

const ok = (ms: number): Replica => ({ behaviour: { kind: 'ok', ms } });

/** The cases of load/README.md, four replicas behind two workers. */
export const SCENARIOS: Readonly<Record<string, Scenario>> = {
  healthy: { replicas: [ok(20), ok(20), ok(20), ok(20)], workers: 2, rate: 150, seconds: 20 },
  'one answers 500 at once': { replicas: [{ behaviour: { kind: 'fail', ms: 1 } }, ok(20), ok(20), ok(20)], workers: 2, rate: 150, seconds: 20 },
  'one never answers (timeout 1 s)': { replicas: [{ behaviour: { kind: 'hang' } }, ok(20), ok(20), ok(20)], workers: 2, rate: 100, seconds: 20, timeoutMs: 1000 },
  'one 10x slower': { replicas: [ok(200), ok(20), ok(20), ok(20)], workers: 2, rate: 150, seconds: 20 },
  '30% bad input, all answer it 500': { replicas: [ok(20), ok(20), ok(20), ok(20)], workers: 2, rate: 150, seconds: 20, badInput: 0.3 },
  'all four answer 500': {
    replicas: [{ behaviour: { kind: 'fail', ms: 1 } }, { behaviour: { kind: 'fail', ms: 1 } }, { behaviour: { kind: 'fail', ms: 1 } }, { behaviour: { kind: 'fail', ms: 1 } }],
    workers: 2,
    rate: 150,
    seconds: 20,
  },
  'one answers 500, heals at 10 s': {
    replicas: [{ behaviour: { kind: 'fail', ms: 1 }, healsAt: 10_000, healed: { kind: 'ok', ms: 20 } }, ok(20), ok(20), ok(20)],
    workers: 2,
    rate: 150,
    seconds: 60,
    warmupMs: 50_000,
  },
  'one of two answers 500': { replicas: [{ behaviour: { kind: 'fail', ms: 1 } }, ok(20)], workers: 2, rate: 150, seconds: 20 },
};
