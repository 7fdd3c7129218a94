/**
 * A seeded simulation of flow control's decisions (routing/flow/core.ts) in front of a model of
 * fixed concurrency: the model serves `concurrency` requests at once (service time jittered ±20%)
 * and the rest wait inside it, unseen (gunicorn's backlog). Arrivals are Poisson streams, each
 * with its priority class and tenant. The clock is the simulation's; nothing sleeps. The
 * controller's part (timers, starting what a freed slot lets go) is played as
 * gateway/flow/controller.ts plays it.
 */
import { FlowCore, FlowWaiter } from '../../routing/flow/core.js';
import type { FlowPolicy } from '../../routing/flow/config.js';
import type { Priority } from '../../routing/flow/queue.js';
import { seededRandom } from '../../routing/table/pick.js';
import { TimeHeap } from '../../load/lib/time-heap.js';

/** The simulation's clock and what is due on it. */
export class Events {
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
export class Model {
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

/** A stream of Poisson arrivals. */
export interface SimStream {
  readonly label: string;
  /** Arrivals per second at simulated time `t` (ms). */
  readonly rate: (t: number) => number;
  readonly priority?: Priority;
  readonly tenant?: string;
}

/** What became of one stream's requests. */
export interface StreamOutcome {
  arrived: number;
  /** Answered: when, and the latency from arrival (wait included). */
  answered: { at: number; latency: number }[];
  /** Refused on arrival. */
  refusedAtOnce: number;
  /** Refused after waiting (displaced, overtaken, timed out): how long each waited, ms. */
  refusedAfter: number[];
}

export interface SimRun {
  readonly streams: Record<string, StreamOutcome>;
  readonly limits: { at: number; limit: number }[];
  readonly model: Model;
}

class W extends FlowWaiter {
  arrivedAt = 0;
  timer: { cancelled: boolean } | undefined;
  constructor(
    priority: Priority,
    tenant: string,
    readonly out: StreamOutcome,
  ) {
    super(priority, tenant);
  }
}

export interface SimOptions {
  readonly seed: number;
  readonly endMs: number;
  readonly policy: FlowPolicy;
  readonly streams: readonly SimStream[];
  /** Each request's budget (the route timeout), ms. */
  readonly budgetMs?: number;
  readonly concurrency?: number;
  /** Called every 100 ms of simulated time (the adaptive scenario's slowdown). */
  readonly onTick?: (t: number, model: Model) => void;
}

/** Offer the streams from 0 to `endMs` through a FlowCore in front of a simulated model. */
export function simulateFlow(o: SimOptions): SimRun {
  const ev = new Events();
  const model = new Model(ev, seededRandom(o.seed + 1), o.concurrency ?? 4);
  const core = new FlowCore<W>(o.policy, seededRandom(o.seed + 2));
  const streams: Record<string, StreamOutcome> = {};
  const limits: { at: number; limit: number }[] = [];
  const refusedLater = (w: W): void => void w.out.refusedAfter.push(ev.now - w.arrivedAt);
  const start = (w: W): void => {
    const sentAt = ev.now;
    const tag = core.started(ev.now, w.priority, w.tenant);
    model.send(() => {
      core.settled(ev.now, ev.now - sentAt, tag);
      w.out.answered.push({ at: ev.now, latency: ev.now - w.arrivedAt });
      pump();
    });
  };
  const pump = (): void => {
    for (let w = core.next(); w !== undefined; w = core.next()) {
      w.timer!.cancelled = true;
      start(w);
    }
  };
  o.streams.forEach((s, i) => {
    const out: StreamOutcome = { arrived: 0, answered: [], refusedAtOnce: 0, refusedAfter: [] };
    streams[s.label] = out;
    const rand = seededRandom(o.seed + 1000 * i);
    const arrive = (): void => {
      const w = new W(s.priority ?? 1, s.tenant ?? '', out);
      w.arrivedAt = ev.now;
      out.arrived++;
      const a = core.arrive(ev.now, w, o.budgetMs ?? 3000);
      if (a.kind === 'start') start(w);
      else if (a.kind === 'refuse') out.refusedAtOnce++;
      else {
        if (a.displaced) refusedLater(a.displaced);
        for (const v of a.overtaken ?? []) refusedLater(v);
        const timer = { cancelled: false };
        w.timer = timer;
        ev.at(a.deadline, () => {
          if (timer.cancelled || !core.leave(w)) return;
          core.timedOut(w);
          refusedLater(w);
        });
      }
      const r = s.rate(ev.now);
      ev.at(ev.now + (-Math.log(1 - rand()) / r) * 1000, arrive);
    };
    ev.at(0, arrive);
  });
  for (let t = 0; t < o.endMs; t += 100) {
    ev.at(t, () => {
      limits.push({ at: ev.now, limit: core.limit });
      o.onTick?.(ev.now, model);
    });
  }
  ev.runUntil(o.endMs);
  return { streams, limits, model };
}

export const p99 = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(s.length * 0.99))]!;
};
export const medianOf = (xs: readonly number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
export const between = (out: { readonly answered: readonly { at: number; latency: number }[] }, from: number, to: number): { at: number; latency: number }[] =>
  out.answered.filter((a) => a.at >= from && a.at < to);
