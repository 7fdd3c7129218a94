/**
 * The adaptive limit (routing/flow-limit.ts) with the queue and early refusal (routing/flow-core.ts)
 * against a seeded simulated model of fixed concurrency: it serves 4 requests at once and the rest
 * wait inside it, unseen (gunicorn's backlog). The clock is the simulation's; nothing sleeps.
 */
import { describe, expect, it } from 'vitest';
import { FlowCore, FlowWaiter } from '../../routing/flow-core.js';
import { flowPolicy } from '../../routing/flow-config.js';
import { seededRandom } from '../../routing/pick.js';
import { priorityOf } from '../../routing/flow-queue.js';
import { TimeHeap } from '../../load/lib/time-heap.js';

/** The simulation's clock and what is due on it. */
class Events {
  private readonly heap = new TimeHeap<{ at: number; run: () => void }>();
  now = 0;
  at(at: number, run: () => void): void {
    this.heap.push({ at, run });
  }
  runUntil(end: number): void {
    for (let e = this.heap.peek(); e !== undefined && e.at <= end; e = this.heap.peek()) {
      this.heap.pop();
      this.now = e.at;
      e.run();
    }
    this.now = end;
  }
}

/** A model serving `concurrency` requests at once, the rest in its backlog (FIFO); service time × `slowdown`. */
class Model {
  slowdown = 1;
  private busy = 0;
  private readonly backlog: (() => void)[] = [];
  constructor(
    private readonly ev: Events,
    private readonly rand: () => number,
    private readonly concurrency = 4,
    private readonly serviceMs = 50,
  ) {}
  get capacityPerS(): number {
    return (this.concurrency * 1000) / (this.serviceMs * this.slowdown);
  }
  send(done: () => void): void {
    if (this.busy < this.concurrency) this.serve(done);
    else this.backlog.push(done);
  }
  private serve(done: () => void): void {
    this.busy++;
    const ms = this.serviceMs * this.slowdown * (0.8 + 0.4 * this.rand());
    this.ev.at(this.ev.now + ms, () => {
      this.busy--;
      const next = this.backlog.shift();
      if (next) this.serve(next);
      done();
    });
  }
}

interface Run {
  answered: { at: number; latency: number }[];
  refused: number;
  timedOut: number;
  limits: { at: number; limit: number }[];
}

class W extends FlowWaiter {
  arrivedAt = 0;
  timer: { cancelled: boolean } | undefined;
}

/** Offer Poisson arrivals at `rate(t)`/s from 0 to `endMs` through a FlowCore in front of `model`. */
function simulate(seed: number, endMs: number, rate: (t: number) => number, onTick?: (t: number, model: Model) => void) {
  const ev = new Events();
  const rand = seededRandom(seed);
  const model = new Model(ev, seededRandom(seed + 1));
  const core = new FlowCore<W>(flowPolicy({ concurrency: 'adaptive', queue: 4, queueTimeoutMs: 100 }), seededRandom(seed + 2));
  const run: Run = { answered: [], refused: 0, timedOut: 0, limits: [] };
  const start = (w: W): void => {
    const sentAt = ev.now;
    const tag = core.started(ev.now);
    model.send(() => {
      core.settled(ev.now, ev.now - sentAt, tag);
      run.answered.push({ at: ev.now, latency: ev.now - w.arrivedAt });
      pump();
    });
  };
  const pump = (): void => {
    for (let w = core.next(); w !== undefined; w = core.next()) {
      w.timer!.cancelled = true;
      start(w);
    }
  };
  const arrive = (): void => {
    const w = new W(priorityOf(undefined), '');
    w.arrivedAt = ev.now;
    const a = core.arrive(ev.now, w, 3000);
    if (a.kind === 'start') start(w);
    else if (a.kind === 'refuse') run.refused++;
    else {
      if (a.displaced) run.refused++;
      const timer = { cancelled: false };
      w.timer = timer;
      ev.at(a.deadline, () => {
        if (timer.cancelled || !core.leave(w)) return;
        core.timedOut(w);
        run.timedOut++;
      });
    }
    const r = rate(ev.now);
    ev.at(ev.now + (-Math.log(1 - rand()) / r) * 1000, arrive);
  };
  ev.at(0, arrive);
  for (let t = 0; t < endMs; t += 100) {
    ev.at(t, () => {
      run.limits.push({ at: ev.now, limit: core.limit });
      onTick?.(ev.now, model);
    });
  }
  ev.runUntil(endMs);
  return { run, model };
}

const p99 = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(s.length * 0.99))]!;
};
const medianOf = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
const between = (run: Run, from: number, to: number) => run.answered.filter((a) => a.at >= from && a.at < to);

describe('the adaptive limit against a model of fixed concurrency 4 (50 ms, capacity 80/s)', () => {
  const unloaded = (slowdown: number): number => {
    const { run } = simulate(
      7,
      30_000,
      () => 8 / slowdown,
      (_t, m) => (m.slowdown = slowdown),
    );
    return p99(run.answered.map((a) => a.latency));
  };

  it('answers at least 85% of capacity at 2x overload, with p99 at most 4x the unloaded p99 (queue 4, queueTimeout 100ms)', () => {
    const base = unloaded(1);
    for (const seed of [1, 2, 3]) {
      const { run } = simulate(seed, 20_000, () => 160);
      const steady = between(run, 2000, 20_000);
      const rate = steady.length / 18;
      expect(rate, `seed ${seed}: ${rate.toFixed(1)}/s`).toBeGreaterThanOrEqual(0.85 * 80);
      expect(p99(steady.map((a) => a.latency)), `seed ${seed}: p99 vs unloaded ${base.toFixed(1)} ms`).toBeLessThanOrEqual(4 * base);
    }
  });

  it('refuses nothing at half capacity, from the first request on (probes included)', () => {
    for (let seed = 1; seed <= 12; seed++) {
      const { run } = simulate(seed, 30_000, () => 40);
      expect({ refused: run.refused, timedOut: run.timedOut }, `seed ${seed}`).toEqual({ refused: 0, timedOut: 0 });
      expect(run.answered.length / 30, `seed ${seed}`).toBeGreaterThan(36);
    }
  });

  it('brings the limit down within 5 s of the model slowing 3x, and keeps at least 80% of the new capacity', () => {
    const slowBase = unloaded(3);
    for (const seed of [4, 5, 6]) {
      const { run } = simulate(
        seed,
        30_000,
        () => 160,
        (t, m) => (m.slowdown = t >= 15_000 ? 3 : 1),
      );
      const before = run.limits.filter((l) => l.at >= 10_000 && l.at < 15_000);
      const typical = medianOf(before.map((l) => l.limit));
      const after = run.limits.filter((l) => l.at >= 15_000 && l.at < 20_000);
      if (process.env.FLOW_SIM_DEBUG)
        console.log(
          seed,
          typical,
          run.limits
            .filter((l) => l.at >= 14_000 && l.at < 22_000)
            .map((l) => l.limit)
            .join(' '),
          between(run, 15_000, 30_000).length / 15,
        );
      // Down within 5 s: below its usual level before (probes aside), and under the model's concurrency plus what fills its queue.
      expect(Math.min(...after.map((l) => l.limit)), `seed ${seed}`).toBeLessThan(typical);
      expect(typical).toBeGreaterThanOrEqual(4);
      const slowCapacity = 80 / 3;
      const rate = between(run, 15_000, 30_000).length / 15;
      expect(rate, `seed ${seed}: ${rate.toFixed(1)}/s of ${slowCapacity.toFixed(1)}/s`).toBeGreaterThanOrEqual(0.8 * slowCapacity);
      const settled = between(run, 20_000, 30_000).map((a) => a.latency);
      expect(p99(settled), `seed ${seed}: p99 vs slow unloaded ${slowBase.toFixed(1)} ms`).toBeLessThanOrEqual(4 * slowBase);
    }
  });
});
