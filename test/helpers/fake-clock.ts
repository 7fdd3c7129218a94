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
    const p: Pending = { at: this.now() + ms, ms, fn: fn as (arg: never) => void, arg };
    this.pending.add(p);
    return p as unknown as Timer;
  }

  clearTimeout(timer: Timer): void {
    this.pending.delete(timer as unknown as Pending);
  }

  refresh(timer: Timer): void {
    const p = timer as unknown as Pending;
    p.at = this.now() + p.ms;
    this.pending.add(p);
  }

  /** Timers not yet fired. */
  get timers(): number {
    return this.pending.size;
  }

  /** Move time on by `ms`, firing each timer that falls due, earliest first. */
  advance(ms: number): void {
    const end = this.t + ms;
    this.fireDue(end, (at) => (this.t = at));
    this.t = end;
  }

  /** Fire each timer due by `end`, earliest first (`at`: told each one's time before it fires). */
  protected fireDue(end: number, at: (t: number) => void = () => undefined): void {
    for (;;) {
      let next: Pending | undefined;
      for (const p of this.pending) if (p.at <= end && (next === undefined || p.at < next.at)) next = p;
      if (next === undefined) break;
      this.pending.delete(next);
      at(next.at);
      (next.fn as (arg: unknown) => void)(next.arg);
    }
  }
}

/**
 * A clock on `performance.now()`'s timeline, moved ahead by hand, whose timers fire only as `advance` passes
 * them: for a whole gateway (startTestGateway `clock`), whose edges stamp arrivals with `performance.now()`.
 * A gRPC call's deadline counts from that stamp, so a call that arrives after an `advance` looks older by it.
 */
export class AheadClock extends FakeClock {
  private ahead = 0;

  override now(): number {
    return performance.now() + this.ahead;
  }

  /** Move time on by `ms`, firing each timer that falls due, earliest first. */
  override advance(ms: number): void {
    this.ahead += ms;
    this.fireDue(this.now());
  }
}
