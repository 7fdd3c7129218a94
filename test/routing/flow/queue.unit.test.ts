/**
 * The flow queue (routing/flow/queue.ts) and the per-predictor decisions (routing/flow/core.ts):
 * priority order, displacement, fairness between tenants, early refusal from the estimated wait,
 * Retry-After, holding while at zero, and how a fixed limit is shared between processes.
 */
import { describe, expect, it } from 'vitest';
import { FlowQueue, OVERFLOW_TENANT, Waiter, priorityOf, type Priority } from '../../../routing/flow/queue.js';
import { FlowCore, FlowWaiter } from '../../../routing/flow/core.js';
import { flowPolicy } from '../../../routing/flow/config.js';
import { fixedShare } from '../../../routing/flow/limit.js';
import { seededRandom } from '../../../routing/table/pick.js';

class Named extends Waiter {
  constructor(
    p: Priority,
    tenant: string,
    readonly name: string,
  ) {
    super(p, tenant);
  }
}
const drain = (q: FlowQueue<Named>): string[] => {
  const out: string[] = [];
  for (let w = q.pop(); w !== undefined; w = q.pop()) out.push(w.name);
  return out;
};

describe('priority classes', () => {
  it('reads x-seldon-priority, unknown and absent values as standard', () => {
    expect([priorityOf('critical'), priorityOf(' Sheddable '), priorityOf('standard'), priorityOf('urgent'), priorityOf(undefined)]).toEqual([0, 2, 1, 1, 1]);
  });

  it('serves a higher class first, FIFO inside a class of one tenant', () => {
    const q = new FlowQueue<Named>();
    q.push(new Named(2, '', 's1'));
    q.push(new Named(1, '', 'n1'));
    q.push(new Named(0, '', 'c1'));
    q.push(new Named(1, '', 'n2'));
    q.push(new Named(0, '', 'c2'));
    expect(q.size).toBe(5);
    expect(drain(q)).toEqual(['c1', 'c2', 'n1', 'n2', 's1']);
    expect(q.size).toBe(0);
  });

  it('gives way to a higher arrival: the newest of the lowest class, sheddable before standard, never critical to standard', () => {
    const q = new FlowQueue<Named>();
    const n1 = new Named(1, '', 'n1');
    const s1 = new Named(2, '', 's1');
    const s2 = new Named(2, '', 's2');
    for (const w of [n1, s1, s2]) q.push(w);
    expect(q.victim(0, '')).toBe(s2);
    expect(q.victim(1, '')).toBe(s2);
    expect(q.victim(2, '')).toBeUndefined();
    q.remove(s2);
    q.remove(s1);
    expect(q.victim(0, '')).toBe(n1);
    expect(q.victim(1, '')).toBeUndefined();
    const c = new FlowQueue<Named>();
    c.push(new Named(0, '', 'c'));
    expect(c.victim(1, '')).toBeUndefined();
  });

  it('frees the place of a waiter that leaves, whatever its position', () => {
    const q = new FlowQueue<Named>();
    const ws = ['a', 'b', 'c', 'd'].map((n) => new Named(1, n === 'c' ? 't2' : 't1', n));
    for (const w of ws) q.push(w);
    expect(q.remove(ws[1]!)).toBe(true);
    expect(q.remove(ws[1]!)).toBe(false);
    expect(q.remove(ws[2]!)).toBe(true);
    expect(q.size).toBe(2);
    expect(drain(q)).toEqual(['a', 'd']);
  });
});

describe('fairness between tenants', () => {
  it('takes turns between tenants inside a class (round robin of one request)', () => {
    const q = new FlowQueue<Named>();
    for (let i = 1; i <= 4; i++) q.push(new Named(1, 'A', `a${i}`));
    q.push(new Named(1, 'B', 'b1'));
    q.push(new Named(1, 'B', 'b2'));
    q.push(new Named(1, 'C', 'c1'));
    expect(drain(q)).toEqual(['a1', 'b1', 'c1', 'a2', 'b2', 'a3', 'a4']);
  });

  it("estimates a light tenant's place behind a flood as one round, not the flood", () => {
    const q = new FlowQueue<Named>();
    for (let i = 0; i < 50; i++) q.push(new Named(1, 'A', `a${i}`));
    expect(q.ahead(1, 'B')).toBe(1);
    expect(q.ahead(1, 'A')).toBe(50);
    expect(q.ahead(0, 'B')).toBe(0);
    expect(q.ahead(2, 'B')).toBe(50);
  });

  it('when full, drops the newest of the tenant with the most waiting, not the light one', () => {
    const q = new FlowQueue<Named>();
    const as = [1, 2, 3].map((i) => new Named(1, 'A', `a${i}`));
    for (const w of as) q.push(w);
    q.push(new Named(1, 'B', 'b1'));
    expect(q.victim(1, 'B')).toBe(as[2]);
    expect(q.victim(1, 'A')).toBeUndefined();
  });

  it('keeps at most maxTenants apart; the rest share one entry', () => {
    const q = new FlowQueue<Named>(2);
    q.push(new Named(1, 'A', 'a'));
    q.push(new Named(1, 'B', 'b'));
    const c = new Named(1, 'C', 'c');
    const d = new Named(1, 'D', 'd');
    q.push(c);
    q.push(d);
    expect(c.lane?.tenant).toBe(OVERFLOW_TENANT);
    expect(d.lane).toBe(c.lane);
    expect(drain(q)).toEqual(['a', 'b', 'c', 'd']);
  });

  it('over a long run, gives a light tenant everything it asks while a heavy one floods', () => {
    // A model finishing one request per tick; A offers 3 per tick, B one every 4 ticks; queue 20.
    const core = new FlowCore<FlowWaiter>(flowPolicy({ concurrency: 1, queue: 20, queueTimeoutMs: 60_000 }), seededRandom(1));
    const served = { A: 0, B: 0 };
    const asked = { A: 0, B: 0 };
    const refusedB: number[] = [];
    let running: FlowWaiter | undefined;
    const offer = (t: number, tenant: 'A' | 'B'): void => {
      asked[tenant]++;
      const w = new FlowWaiter(1, tenant);
      const a = core.arrive(t, w, Infinity);
      if (a.kind === 'start') {
        core.started(t);
        running = w;
      } else if (a.kind === 'refuse' && tenant === 'B') refusedB.push(t);
    };
    for (let t = 0; t < 4000; t++) {
      if (running) {
        served[running.tenant as 'A' | 'B']++;
        core.settled(t, 1, 0);
        running = core.next();
        if (running) core.started(t);
      }
      for (let i = 0; i < 3; i++) offer(t, 'A');
      if (t % 4 === 0) offer(t, 'B');
    }
    expect(served.B / asked.B).toBeGreaterThanOrEqual(0.95);
    expect(served.A).toBeGreaterThan(2900);
  });
});

describe('admitting a flooding tenant', () => {
  it("estimates a backlogged tenant's wait at its own recent pace, so what it admits still starts in time", () => {
    // One request at a time, 1 ms each; A offers 3 per ms, B one every 4 ms; queue timeout 40 ms.
    const core = new FlowCore<Timed>(flowPolicy({ concurrency: 1, queue: 1000, queueTimeoutMs: 40, tenantHeader: 'x-tenant' }), seededRandom(1));
    let running: Timed | undefined;
    const late = { A: 0, B: 0 };
    const served = { A: 0, B: 0 };
    const start = (w: Timed, t: number): void => {
      core.started(t, 1, w.tenant);
      running = w;
      if (t >= 3000 && t > w.deadline) late[w.tenant as 'A' | 'B']++;
    };
    for (let t = 0; t < 6000; t++) {
      if (running) {
        if (t >= 3000) served[running.tenant as 'A' | 'B']++;
        core.settled(t, 1, 0);
        running = undefined;
        const next = core.next();
        if (next) start(next, t);
      }
      for (const tenant of ['A', 'A', 'A', ...(t % 4 === 0 ? ['B'] : [])]) {
        const w = new Timed(1, tenant);
        const a = core.arrive(t, w, Infinity);
        if (a.kind === 'start') start(w, t);
        else if (a.kind === 'wait') w.deadline = a.deadline;
      }
    }
    // Once the rates are known (after 2 s), nothing admitted starts after its deadline.
    expect(late).toEqual({ A: 0, B: 0 });
    expect(served.B).toBeGreaterThanOrEqual(0.95 * 750);
  });
});

/** A waiter whose deadline the test sets (FlowWaiter has one). */
class Timed extends FlowWaiter {}

const W = (p: Priority = 1, tenant = ''): FlowWaiter => new FlowWaiter(p, tenant);

describe('the decisions of one predictor', () => {
  it('starts requests up to the limit, then queues, then refuses when the queue is full', () => {
    const core = new FlowCore<FlowWaiter>(flowPolicy({ concurrency: 2, queue: 1, queueTimeoutMs: 1000 }), seededRandom(1));
    expect(core.limit).toBe(2);
    expect(core.arrive(0, W(), Infinity).kind).toBe('start');
    core.started(0);
    expect(core.arrive(0, W(), Infinity).kind).toBe('start');
    core.started(0);
    const q = W();
    expect(core.arrive(0, q, Infinity)).toEqual({ kind: 'wait', deadline: 1000, displaced: undefined });
    const r = core.arrive(0, W(), Infinity);
    expect(r).toMatchObject({ kind: 'refuse', why: 'the queue is full', retryAfterS: 1 });
    expect(core.refused).toEqual([0, 1, 0]);
    core.settled(10, 100, 0);
    expect(core.next()).toBe(q);
    expect(core.next()).toBeUndefined();
  });

  it('lets a critical arrival displace a queued sheddable one, counted as its refusal', () => {
    const core = new FlowCore<FlowWaiter>(flowPolicy({ concurrency: 1, queue: 1, queueTimeoutMs: 1000 }), seededRandom(1));
    core.arrive(0, W(), Infinity);
    core.started(0);
    const s = W(2);
    expect(core.arrive(0, s, Infinity).kind).toBe('wait');
    const c = W(0);
    expect(core.arrive(0, c, Infinity)).toEqual({ kind: 'wait', deadline: 1000, displaced: s });
    expect(core.refused).toEqual([0, 0, 1]);
    expect(core.arrive(0, W(2), Infinity).kind).toBe('refuse');
    expect(core.arrive(0, W(0), Infinity).kind).toBe('refuse');
  });

  it('refuses a waiting request at once when arrivals of a higher class push its expected start past its deadline, not after waiting it out', () => {
    const core = new FlowCore<FlowWaiter>(flowPolicy({ concurrency: 1, queue: 100, queueTimeoutMs: 1000 }), seededRandom(1));
    // One answer teaches a service time of 100 ms.
    core.arrive(0, W(), Infinity);
    core.started(0);
    core.settled(100, 100, 0);
    core.arrive(100, W(), Infinity);
    core.started(100);
    const s = W(1);
    expect(core.arrive(100, s, Infinity)).toMatchObject({ kind: 'wait', deadline: 1100 });
    // Seven critical arrivals still leave it time: it would start at 100 + 8 × 100 = 900 ms.
    for (let i = 0; i < 7; i++) expect(core.arrive(100, W(0), Infinity)).toMatchObject({ kind: 'wait', overtaken: undefined });
    // The eighth would start it at 1,010 ms, later than one completion before its deadline: refused now, at 110 ms.
    expect(core.arrive(110, W(0), Infinity)).toMatchObject({ kind: 'wait', overtaken: [s] });
    expect(core.refused).toEqual([0, 1, 0]);
    expect(core.queue.size).toBe(8);
    expect(core.leave(s)).toBe(false);
  });

  it('refuses at once a request that could not start within the queue timeout, from its place and the observed service time', () => {
    const core = new FlowCore<FlowWaiter>(flowPolicy({ concurrency: 2, queue: 100, queueTimeoutMs: 100 }), seededRandom(1));
    // Two in flight; service time observed at 50 ms: two slots free every 50 ms.
    for (const t of [0, 0]) {
      core.arrive(t, W(), Infinity);
      core.started(t);
    }
    core.settled(50, 50, 0);
    core.arrive(50, W(), Infinity);
    core.started(50);
    // Places 1..3 wait 25, 50, 75 ms: queued; place 4 would wait 100 ms, later than one completion
    // (25 ms) before the queue timeout (admissionBound): refused, so that a steady overload does not
    // time out what it admitted.
    for (let i = 0; i < 3; i++) expect(core.arrive(50, W(), Infinity).kind).toBe('wait');
    const r = core.arrive(50, W(), Infinity);
    expect(r).toMatchObject({ kind: 'refuse', why: 'it could not start within the queue timeout of 100 ms' });
    // A critical request stands ahead of them all: it waits.
    expect(core.arrive(50, W(0), Infinity).kind).toBe('wait');
  });

  it('estimates the wait from the time between completions while saturated, when it is longer than service time / limit', () => {
    const core = new FlowCore<FlowWaiter>(flowPolicy({ concurrency: 2, queue: 100, queueTimeoutMs: 1000 }), seededRandom(1));
    for (let i = 0; i < 2; i++) {
      core.arrive(0, W(), Infinity);
      core.started(0);
    }
    // Before any answer nothing is refused by estimate: 50 wait.
    for (let i = 0; i < 50; i++) expect(core.arrive(0, W(), Infinity).kind).toBe('wait');
    // The model answers in 50 ms, but a slot frees only every 40 ms (not 25): the gateway's own delays.
    for (let t = 40; t <= 1000; t += 40) {
      core.settled(t, 50, 0);
      core.next();
      core.started(t);
    }
    expect(core.queue.size).toBe(25);
    // The 26th in line would start in about 26 × 40 = 1,040 ms (over 800): refused; at 25 ms apart it would be 650.
    expect(core.arrive(1000, W(), Infinity)).toMatchObject({ kind: 'refuse', why: 'it could not start within the queue timeout of 1000 ms' });
    // Retry-After: 25 queued and 2 in flight, 40 ms apart: 1.08 s, rounded up.
    expect(core.retryAfterS()).toBe(2);
  });

  it('counts the share of the model higher classes take: a lower class waits longer, and is refused at once when they take it all', () => {
    const core = new FlowCore<FlowWaiter>(flowPolicy({ concurrency: 1, queue: 100, queueTimeoutMs: 1000 }), seededRandom(1));
    // Ten seconds of critical requests, 10 a second, 50 ms each: half of the model.
    for (let t = 0; t < 10_000; t += 100) {
      core.started(t, 0);
      core.settled(t + 50, 50, 0);
    }
    core.arrive(10_000, W(0), Infinity);
    core.started(10_000, 0);
    // Critical requests took a little over half the model lately (their rate weighted over 2 s, the
    // last one included): standard ones wait (k + 1) × 50 ms / (1 − a little over 0.5), about 105 ms
    // each, and room is kept for three times the spread of the critical arrivals meanwhile (√(rate ×
    // wait) of them): the 3rd is admitted (316 + 3 × 192 = 892 ms, within 95% of the queue timeout),
    // the 4th not (421 + 3 × 221 = 1,084 ms), where 19 would be without the critical traffic.
    const kinds = Array.from({ length: 10 }, () => core.arrive(10_000, W(1), Infinity).kind);
    expect(kinds).toEqual([...Array(3).fill('wait'), ...Array(7).fill('refuse')]);
    // Standard requests starting at 10 a second too: the two classes take the whole model.
    for (let t = 10_000; t < 20_000; t += 100) {
      core.started(t, 0);
      core.started(t + 50, 1);
    }
    expect(core.arrive(20_000, W(2), Infinity)).toMatchObject({ kind: 'refuse', why: 'requests of higher priority take the whole model' });
  });

  it('refuses at once a request whose wait and service would outlast what is left of its timeout', () => {
    const core = new FlowCore<FlowWaiter>(flowPolicy({ concurrency: 1, queue: 100, queueTimeoutMs: 10_000 }), seededRandom(1));
    core.arrive(0, W(), Infinity);
    core.started(0);
    core.settled(200, 200, 0);
    core.arrive(200, W(), Infinity);
    core.started(200);
    // Wait 200 ms + service 200 ms: 400 ms needed.
    expect(core.arrive(200, W(), 399)).toMatchObject({ kind: 'refuse', why: 'it could not be answered within the 399 ms left of its timeout' });
    expect(core.arrive(200, W(), 400)).toMatchObject({ kind: 'wait', deadline: 600 });
  });

  it('chooses Retry-After from the time to drain what is queued and in flight', () => {
    const core = new FlowCore<FlowWaiter>(flowPolicy({ concurrency: 1, queue: 100, queueTimeoutMs: 60_000 }), seededRandom(1));
    core.arrive(0, W(), Infinity);
    core.started(0);
    core.settled(500, 500, 0);
    core.arrive(500, W(), Infinity);
    core.started(500);
    for (let i = 0; i < 5; i++) core.arrive(500, W(), Infinity);
    // 5 queued + 1 in flight at 500 ms each, one at a time: 3 s.
    expect(core.retryAfterS()).toBe(3);
  });

  it('holds requests while no endpoint is ready, up to the queue, and lets them go in order when one is', () => {
    const core = new FlowCore<FlowWaiter>(flowPolicy({ concurrency: 1, queue: 2, queueTimeoutMs: 100, scaleFromZeroMs: 60_000 }), seededRandom(1));
    core.setEndpoints(0);
    expect(core.holding).toBe(true);
    expect(core.limit).toBe(0);
    const a = W();
    const b = W();
    expect(core.arrive(0, a, 5000)).toEqual({ kind: 'wait', deadline: 5000, displaced: undefined });
    expect(core.arrive(0, b, Infinity)).toEqual({ kind: 'wait', deadline: 60_000, displaced: undefined });
    expect(core.arrive(0, W(), Infinity).kind).toBe('refuse');
    expect(core.retryAfterS()).toBe(60);
    expect(core.next()).toBeUndefined();
    core.setEndpoints(2);
    expect(core.limit).toBe(2);
    expect(core.next()).toBe(a);
    core.started(1);
    expect(core.next()).toBe(b);
  });

  it('without scaleFromZero, lets requests through to fail fast while no endpoint is ready', () => {
    const core = new FlowCore<FlowWaiter>(flowPolicy({ concurrency: 1 }), seededRandom(1));
    core.setEndpoints(0);
    expect(core.holding).toBe(false);
    expect(core.arrive(0, W(), Infinity).kind).toBe('start');
  });

  it('follows the ready endpoint count with a fixed limit', () => {
    const core = new FlowCore<FlowWaiter>(flowPolicy({ concurrency: 4 }), seededRandom(1));
    core.setEndpoints(3);
    expect(core.limit).toBe(12);
  });
});

describe('sharing a fixed limit', () => {
  it('splits concurrency × endpoints between replicas, then between worker processes by index', () => {
    expect(fixedShare(8, 1, 1, 0)).toBe(8);
    expect([0, 1].map((i) => fixedShare(8, 2, 1, i))).toEqual([4, 4]);
    expect([0, 1, 2].map((i) => fixedShare(8, 1, 3, i))).toEqual([3, 3, 2]);
    expect([0, 1].map((i) => fixedShare(8, 2, 2, i))).toEqual([2, 2]);
    // Fewer slots than processes: each process still serves one at a time.
    expect([0, 1, 2, 3].map((i) => fixedShare(2, 1, 4, i))).toEqual([1, 1, 1, 1]);
    expect(fixedShare(0, 1, 1, 0)).toBe(0);
  });
});
