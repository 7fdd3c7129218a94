/**
 * Coalesces source events into batches: the first event of a batch opens a window of `windowMs`,
 * and everything that arrives in it is delivered together, with only the latest event per key.
 * A burst of 1,000 changes to one object becomes one upsert; 1,000 changes a second to many
 * objects become about 1000/windowMs batches, each one table rebuild. The window is fixed (not
 * reset by each event), so a steady stream can never postpone delivery indefinitely.
 */
import type { SourceEvent } from './source.js';

export class EventBatcher {
  private pending = new Map<string, SourceEvent>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly deliver: (events: SourceEvent[]) => void,
    private readonly windowMs: number,
  ) {}

  get size(): number {
    return this.pending.size;
  }

  push(event: SourceEvent): void {
    // Delete first so the event moves to the end: a batch keeps the order of the last changes.
    this.pending.delete(event.key);
    this.pending.set(event.key, event);
    this.timer ??= setTimeout(() => this.flush(), this.windowMs);
  }

  /** Deliver what is pending now (also called by the timer). */
  flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.pending.size === 0) return;
    const events = [...this.pending.values()];
    this.pending = new Map();
    this.deliver(events);
  }

  /** Drop what is pending (the source is stopping). */
  cancel(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.pending.clear();
  }
}
