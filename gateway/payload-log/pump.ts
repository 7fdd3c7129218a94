/**
 * Events waiting in one process's memory for one sink, and the loop that hands them on: a queue
 * bounded in bytes (past the bound a new event is refused, and counted as an overflow drop by the
 * caller) and a pump that takes batches, delivers them, and puts back what failed for a retry
 * after a backoff (doubling from the sink's `retryMin` to its `retryMax`). An event's bytes count
 * against the bound from the moment it is queued until it is settled (delivered or dropped), in
 * flight included, so the bound is what the process holds.
 *
 * Logging never blocks a request: `offer` only appends, and the pump runs on its own turns
 * (setImmediate, timers), never inside the caller.
 */
import { eventBytes, type LogEvent } from './event.js';
import type { EventResult, LogMetrics } from './metrics.js';

export interface PumpSettings {
  readonly batch: number;
  /** How long the first event of a batch waits for others (a full batch goes at once); default LINGER_MS. */
  readonly lingerMs?: number;
  readonly retryMinMs: number;
  readonly retryMaxMs: number;
  readonly queueBytes: number;
}

/** The wait before retry `failures` + 1: doubling from `minMs` up to `maxMs`, drawn from its upper half (many processes retrying one sink do not retry in step). */
export function backoffMs(failures: number, minMs: number, maxMs: number): number {
  const ms = Math.min(maxMs, minMs * 2 ** Math.min(failures, 20));
  return ms / 2 + Math.random() * (ms / 2);
}

/**
 * How long a batch gathers before it goes, unless full (`batch` events). Measured (load/README.md,
 * payload logging): at 500 requests/s a decision record per request sent at once (a Redis round
 * trip each) cost the gateway more CPU than the record itself; each call costs about as much
 * whatever it carries, so the fewer the better. A log is read later: a fifth of a second more is
 * nothing to it.
 */
export const LINGER_MS = 200;

/** What a delivery made of a batch: the events to try again later (the rest are settled). */
export type Undelivered = readonly LogEvent[];

export abstract class Pump {
  private readonly waiting: LogEvent[] = [];
  private bytes = 0;
  private running = false;
  private timer: NodeJS.Timeout | undefined;
  private scheduled: NodeJS.Timeout | undefined;
  /** The scheduled run is for a full batch (no linger): nothing to bring forward. */
  private immediate = false;
  private failures = 0;
  protected closed = false;
  /** After `close`: where the events a delivery then in flight gives back go (they are not tried again here). */
  private orphans: ((events: readonly LogEvent[]) => void) | undefined;
  /** Settles `drained()` once nothing is queued or in flight. */
  private idleWaiters: (() => void)[] = [];

  constructor(protected readonly settings: PumpSettings) {}

  /** Deliver `batch`; resolve with the events to retry (never rejects). */
  protected abstract deliver(batch: LogEvent[]): Promise<Undelivered>;

  /** Whether deliveries may be tried now (a Redis connection that is down: wait for it). */
  protected ready(): boolean {
    return true;
  }

  /** Bytes a subclass holds beside the queue (a stream writer's appends waiting for a replica): counted against the bound too. */
  protected extraBytes(): number {
    return 0;
  }

  /** Bytes held now: queued, in flight, and held beside. */
  get heldBytes(): number {
    return this.bytes + this.extraBytes();
  }

  get queued(): number {
    return this.waiting.length;
  }

  /** Queue `e`; false when the bound would be passed (the caller counts the drop). */
  offer(e: LogEvent): boolean {
    if (this.closed) return false;
    const b = eventBytes(e);
    if (this.bytes + this.extraBytes() + b > this.settings.queueBytes) return false;
    this.waiting.push(e);
    this.bytes += b;
    this.kick();
    return true;
  }

  /** Deliver soon (a batch gathering, the connection came back), unless a run or a backoff is under way; a full batch at once. */
  kick(): void {
    if (this.running || this.timer !== undefined || this.closed || this.waiting.length === 0) return;
    const full = this.waiting.length >= this.settings.batch;
    if (this.scheduled !== undefined) {
      if (!full || this.immediate) return;
      clearTimeout(this.scheduled);
    }
    this.immediate = full;
    this.scheduled = setTimeout(
      () => {
        this.scheduled = undefined;
        this.immediate = false;
        void this.run();
      },
      full ? 0 : (this.settings.lingerMs ?? LINGER_MS),
    );
    this.scheduled.unref();
  }

  private async run(): Promise<void> {
    if (this.running || this.closed) return;
    if (this.waiting.length === 0) {
      this.notifyIdle();
      return;
    }
    if (!this.ready()) {
      this.backoff();
      return;
    }
    this.running = true;
    try {
      // Batch after batch while whole ones wait; a partial one gathers first (kick, below).
      do {
        const batch = this.waiting.splice(0, this.settings.batch);
        const again = await this.deliver(batch);
        if (this.closed) {
          // Closed while it was in flight (the sink left --log-sinks, or the process stops): what failed is its closer's.
          if (again.length > 0) this.orphans?.(again);
          return;
        }
        const retry = new Set(again);
        for (const e of batch) if (!retry.has(e)) this.bytes -= eventBytes(e);
        if (again.length > 0) {
          // Back at the front, in their order: a retry is not overtaken by newer events.
          this.waiting.unshift(...again);
          this.failures++;
          break;
        }
        this.failures = 0;
      } while (this.waiting.length >= this.settings.batch && !this.closed);
    } finally {
      this.running = false;
    }
    if (this.failures > 0 && this.waiting.length > 0) this.backoff();
    else if (this.waiting.length === 0) this.notifyIdle();
    else this.kick();
  }

  private backoff(): void {
    if (this.timer !== undefined || this.closed) return;
    this.timer = setTimeout(
      () => {
        this.timer = undefined;
        void this.run();
      },
      backoffMs(this.failures, this.settings.retryMinMs, this.settings.retryMaxMs),
    );
    this.timer.unref();
  }

  private notifyIdle(): void {
    const w = this.idleWaiters;
    this.idleWaiters = [];
    for (const f of w) f();
  }

  /** Resolves once nothing is queued or in flight, or after `ms` (then false). */
  drained(ms: number): Promise<boolean> {
    if (this.waiting.length === 0 && !this.running) return Promise.resolve(true);
    return new Promise<boolean>((resolve) => {
      const t = setTimeout(() => resolve(false), ms);
      t.unref();
      this.idleWaiters.push(() => {
        clearTimeout(t);
        resolve(true);
      });
    });
  }

  /**
   * Stop: nothing more is delivered; the events still waiting are returned, and those of a delivery
   * in flight that fails are given to `orphans` when it ends (the caller counts them, or hands them on).
   */
  close(orphans?: (events: readonly LogEvent[]) => void): LogEvent[] {
    this.closed = true;
    this.orphans = orphans;
    if (this.timer !== undefined) clearTimeout(this.timer);
    if (this.scheduled !== undefined) clearTimeout(this.scheduled);
    this.timer = undefined;
    this.scheduled = undefined;
    const left = this.waiting.splice(0);
    this.bytes = 0;
    this.notifyIdle();
    return left;
  }
}

/** Count `result` for each event of `events` (one increment per type: a batch is mostly one type). */
export function countAll(metrics: LogMetrics, sink: string, events: readonly LogEvent[], result: EventResult): void {
  if (events.length === 0) return;
  const kind = events[0]!.kind;
  let same = 0;
  for (const e of events) if (e.kind === kind) same++;
  if (same === events.length) {
    metrics.count(sink, kind, result, same);
    return;
  }
  for (const e of events) metrics.count(sink, e.kind, result);
}

/** Run `work` over `items` with at most `limit` at once; resolves when every one has. */
export async function withLimit<T, R>(items: readonly T[], limit: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await work(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
  return out;
}
