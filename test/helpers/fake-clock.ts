/** A clock a test moves by hand (gateway/upstream/clock.ts): timers fire in order as `advance` passes them, never by themselves. */
import type { Clock, Timer } from '../../gateway/upstream/clock.js';

interface Pending {
  at: number;
  readonly ms: number;
  readonly fn: (arg: never) => void;
  readonly arg: unknown;
}

export class FakeClock implements Clock {
  private t = 1_000;
  private readonly pending = new Set<Pending>();

  now(): number {
    return this.t;
  }

  setTimeout<A>(fn: (arg: A) => void, ms: number, arg: A): Timer {
    const p: Pending = { at: this.t + ms, ms, fn: fn as (arg: never) => void, arg };
    this.pending.add(p);
    return p as unknown as Timer;
  }

  clearTimeout(timer: Timer): void {
    this.pending.delete(timer as unknown as Pending);
  }

  refresh(timer: Timer): void {
    const p = timer as unknown as Pending;
    p.at = this.t + p.ms;
    this.pending.add(p);
  }

  /** Timers not yet fired. */
  get timers(): number {
    return this.pending.size;
  }

  /** Move time on by `ms`, firing each timer that falls due, earliest first. */
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      let next: Pending | undefined;
      for (const p of this.pending) if (p.at <= end && (next === undefined || p.at < next.at)) next = p;
      if (next === undefined) break;
      this.pending.delete(next);
      this.t = next.at;
      (next.fn as (arg: unknown) => void)(next.arg);
    }
    this.t = end;
  }
}
