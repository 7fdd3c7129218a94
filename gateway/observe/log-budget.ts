/**
 * A bound on log lines for events a client or an outage can repeat at request rate (upstream
 * failures, caught bugs): at most `perInterval` lines per `intervalMs`; the rest are counted
 * and the count rides on the next line that gets through. Metrics count every event.
 */
export class LogBudget {
  private windowStart = -Infinity;
  private used = 0;
  private dropped = 0;

  constructor(
    private readonly perInterval = 10,
    private readonly intervalMs = 1000,
  ) {}

  /** undefined: do not log this one. Otherwise log it, with this many not logged before it. */
  take(): number | undefined {
    const now = Date.now();
    if (now - this.windowStart >= this.intervalMs) {
      this.windowStart = now;
      this.used = 0;
    }
    if (this.used >= this.perInterval) {
      this.dropped++;
      return undefined;
    }
    this.used++;
    const d = this.dropped;
    this.dropped = 0;
    return d;
  }
}
