/**
 * A seeded simulation of hedged requests (docs/routing.md#hedged-requests) in front of model
 * replicas with a latency tail: open-loop requests spread over the gateway's workers, each worker
 * with its own endpoint health and pick (routing/health/endpoints.ts) and its own hedging state
 * (routing/hedge/delay.ts: the latency estimate, the budget, the delay in force), as the data
 * planes have them. Discrete events on a simulated clock: no sockets, no sleeping; the same seed
 * gives the same figures.
 *
 * What it leaves out: the gateway's own time (the replicas' answer time is the attempt's), retries
 * and failures (every attempt answers), and load at the model (a replica answers in its time
 * whatever else it is doing). A loser is cancelled when the winner answers, as the gateway does.
 *
 * Used by load/hedge-sim.ts (the tables in load/README.md#hedging-simulation-hedge-simts, which chose the
 * defaults) and test/routing/hedge/hedge-sim.test.ts.
 */
import { DEFAULT_OUTLIER_POLICY, EndpointHealth, judge, pickEndpoint } from '../../routing/health/endpoints.js';
import { hedgePolicy, type HedgePolicy } from '../../routing/hedge/config.js';
import { HedgeTrack } from '../../routing/hedge/delay.js';
import { seededRandom } from '../../routing/table/pick.js';
import { TimeHeap } from './time-heap.js';

/** What the replicas do. */
export interface TailShape {
  /** A replica's time for a request arriving at `at` (ms), pauses aside. */
  serviceMs(replica: number, at: number, random: () => number): number;
  /** A replica that stops answering for `forMs` every `everyMs` (each replica at its own phase). */
  readonly pause?: { readonly everyMs: number; readonly forMs: number; readonly replicas: number };
}

/** A model at `baseMs` with a right-skewed spread around it (exponential, a tenth of it on average): what a model and a busy machine look like. */
const fast = (baseMs: number, random: () => number): number => baseMs * (1 - 0.1 * Math.log(1 - random()));

/** The tail shapes around an 8 ms model, and one without a tail. */
export const SHAPES: Readonly<Record<string, TailShape>> = {
  'no tail': { serviceMs: (_r, _at, random) => fast(8, random) },
  '2% at 50x': { serviceMs: (_r, _at, random) => (random() < 0.02 ? fast(400, random) : fast(8, random)) },
  '10% at 5x': { serviceMs: (_r, _at, random) => (random() < 0.1 ? fast(40, random) : fast(8, random)) },
  'one pauses 2 s every 30 s': { serviceMs: (_r, _at, random) => fast(8, random), pause: { everyMs: 30_000, forMs: 2000, replicas: 1 } },
  '2% at 50x, 2x slower from 30 s': { serviceMs: (_r, at, random) => (random() < 0.02 ? fast(400, random) : fast(at < 30_000 ? 8 : 16, random)) },
};

export interface HedgeScenario {
  readonly shape: TailShape;
  /** Hedging's settings; null: none (the gateway without the annotation). */
  readonly policy: HedgePolicy | null;
  readonly replicas?: number;
  readonly workers?: number;
  /** Requests per second, open loop (evenly spaced, each to the next worker in turn). */
  readonly rate?: number;
  readonly seconds?: number;
  /** The time constant a budget's balance fades with (routing/hedge/budget.ts BUDGET_WINDOW_MS unless set). */
  readonly budgetWindowMs?: number;
  /** The latency estimate's half-life and the weight it keeps at least (routing/hedge/estimate.ts HALF_LIFE_MS, MIN_WEIGHT unless set). */
  readonly halfLifeMs?: number;
  readonly minWeight?: number;
  /** Latencies are counted from here (ms): the estimate's warm-up is not what is measured. */
  readonly warmupMs?: number;
}

export interface HedgeResult {
  readonly requests: number;
  /** Client latencies after the warm-up, sorted. */
  readonly latencies: Float64Array;
  /** Hedges sent, won (the client got the hedge's answer), and due but held, by why. */
  readonly hedges: number;
  readonly won: number;
  readonly held: { budget: number; no_endpoint: number };
  /** Attempts that reached a replica, per request. */
  readonly arrivalsPerRequest: number;
}

interface Endpoint {
  readonly health: EndpointHealth;
  readonly index: number;
  outstanding: number;
}

interface Attempt {
  readonly e: Endpoint;
  readonly sentAt: number;
  over: boolean;
}

interface Request {
  readonly at: number;
  readonly worker: Worker;
  readonly attempts: Attempt[];
  done: boolean;
}

interface Worker {
  readonly endpoints: Endpoint[];
  readonly track: HedgeTrack;
}

/** When a request sent to replica `i` at `at` needing `ms` of work is answered, the replica's pauses included. */
function finishOf(shape: TailShape, i: number, at: number, ms: number, replicas: number): number {
  const p = shape.pause;
  if (p === undefined || i >= p.replicas) return at + ms;
  // Replica i pauses during [k·every + phase, … + forMs), its phase spread over the period.
  const phase = (i * p.everyMs) / replicas + p.everyMs / 2;
  let t = at;
  let left = ms;
  for (;;) {
    const k = Math.floor((t - phase) / p.everyMs);
    const start = phase + k * p.everyMs;
    const end = start + p.forMs;
    if (t >= start && t < end) {
      t = end;
      continue;
    }
    const next = start + p.everyMs;
    if (t + left <= next) return t + left;
    left -= next - t;
    t = next + p.forMs;
  }
}

export function simulateHedging(s: HedgeScenario, seed: number): HedgeResult {
  const random = seededRandom(seed);
  const replicas = s.replicas ?? 4;
  const rate = s.rate ?? 150;
  const seconds = s.seconds ?? 60;
  const warmupMs = s.warmupMs ?? 5000;
  const policy = s.policy;
  const outlier = DEFAULT_OUTLIER_POLICY;
  const workers: Worker[] = Array.from({ length: s.workers ?? 2 }, () => {
    const track = new HedgeTrack(0, s.budgetWindowMs, s.halfLifeMs, s.minWeight);
    return { track, endpoints: Array.from({ length: replicas }, (_, index) => ({ index, outstanding: 0, health: new EndpointHealth(`10.0.0.${index + 1}:9000`, 0, false) })) };
  });
  const events = new TimeHeap<{ at: number; run: () => void }>();
  const latencies: number[] = [];
  let hedges = 0;
  let won = 0;
  let arrivals = 0;
  const held = { budget: 0, no_endpoint: 0 };
  const total = Math.round(rate * seconds);

  const send = (r: Request, now: number, avoid: readonly EndpointHealth[] | undefined): void => {
    const group = r.worker.endpoints;
    const e = pickEndpoint(group, avoid, now, outlier, random)!;
    const a: Attempt = { e, sentAt: now, over: false };
    r.attempts.push(a);
    e.outstanding++;
    arrivals++;
    const finish = finishOf(s.shape, e.index, now, s.shape.serviceMs(e.index, now, random), replicas);
    events.push({ at: finish, run: () => answered(r, a, finish) });
  };

  const answered = (r: Request, a: Attempt, now: number): void => {
    if (a.over) return;
    a.over = true;
    a.e.outstanding--;
    const group = r.worker.endpoints;
    judge(a.e.health, group, 'success', now - a.sentAt, now, outlier);
    r.done = true;
    if (r.at >= warmupMs) latencies.push(now - r.at);
    const first = r.attempts[0]!;
    if (a !== first) won++;
    // The first attempt's time feeds the estimate: its answer, or (lost) how long it had run when the first hedge went.
    if (policy !== null) r.worker.track.estimate.add(a === first ? now - first.sentAt : r.attempts[1]!.sentAt - first.sentAt, now);
    for (const o of r.attempts) {
      if (o.over) continue;
      o.over = true;
      o.e.outstanding--;
      judge(o.e.health, group, 'lost', now - o.sentAt, now, outlier);
    }
  };

  const due = (r: Request, now: number): void => {
    if (r.done || policy === null) return;
    const group = r.worker.endpoints;
    const tried = r.attempts.map((a) => a.e.health);
    const other = group.some((e) => !tried.includes(e.health) && !e.health.isEjected(now));
    if (!other) {
      held.no_endpoint++;
      return;
    }
    if (!r.worker.track.budget.withdraw(now)) {
      held.budget++;
      return;
    }
    hedges++;
    send(r, now, tried);
    if (r.attempts.length < policy.maxAttempts) arm(r, now);
  };

  const arm = (r: Request, now: number): void => {
    const delay = r.worker.track.delayMs(policy!, now);
    if (delay !== null) events.push({ at: now + delay, run: () => due(r, now + delay) });
  };

  for (let k = 0; k < total; k++) {
    const at = (k * 1000) / rate;
    events.push({
      at,
      run: () => {
        const worker = workers[k % workers.length]!;
        const r: Request = { at, worker, attempts: [], done: false };
        if (policy !== null) worker.track.budget.deposit(policy.budget, at);
        send(r, at, undefined);
        if (policy !== null) arm(r, at);
      },
    });
  }
  for (let ev = events.pop(); ev !== undefined; ev = events.pop()) ev.run();
  const sorted = Float64Array.from(latencies).sort();
  return { requests: total, latencies: sorted, hedges, won, held, arrivalsPerRequest: arrivals / total };
}

/** A policy as the annotation would give it (`{}`: the defaults). */
export const policyOf = (fields: Parameters<typeof hedgePolicy>[0]): HedgePolicy => hedgePolicy(fields);
