/**
 * One connection's timeout as a deadline check (the upstream client's connections and the
 * public HTTP/1.1 lane's). A connection moves its deadline at every phase and on progress, often
 * per request: moving it later costs no timer; the one timer is rescheduled only to fire sooner,
 * and when it fires early it re-arms for what is left.
 */
export class Deadline {
  private timer: NodeJS.Timeout | undefined;
  /** When the timer fires, in performance.now() ms. */
  private due = 0;
  /** The deadline it checks (0: none), in performance.now() ms. */
  private at = 0;
  /** The current allowance, in ms. */
  ms = 0;

  constructor(private readonly expired: () => void) {}

  /** Expire `ms` from now (0: never). */
  set(ms: number): void {
    this.setAt(performance.now(), ms);
  }

  /** Expire `ms` from `now` (performance.now() ms, read by the caller for other uses too; 0 ms: never). */
  setAt(now: number, ms: number): void {
    this.ms = ms;
    if (ms <= 0) {
      this.at = 0;
      return;
    }
    this.at = now + ms;
    if (this.timer !== undefined && this.due <= this.at) return;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.schedule(now, ms);
  }

  /** Push the deadline back by the whole allowance (progress was made), from `now` (performance.now() ms). */
  touch(now = performance.now()): void {
    if (this.at !== 0) this.at = now + this.ms;
  }

  /** No deadline for now; the timer, if any, lapses (so a deadline set again soon needs no new one). */
  stop(): void {
    this.at = 0;
  }

  /** No deadline, and no timer left behind (the connection is gone). */
  clear(): void {
    this.at = 0;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private schedule(now: number, ms: number): void {
    this.due = now + ms;
    this.timer = setTimeout(Deadline.check, ms, this);
    this.timer.unref();
  }

  private static check(this: void, d: Deadline): void {
    d.timer = undefined;
    if (d.at === 0) return;
    const now = performance.now();
    if (now < d.at) d.schedule(now, Math.ceil(d.at - now));
    else {
      d.at = 0;
      d.expired();
    }
  }
}
