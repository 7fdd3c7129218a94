/**
 * Timeouts of the request path kept in one list per duration (a route's timeout, a per-try
 * timeout), as Node keeps its own timers, but with the request itself as the list's entry: no timer
 * object, no async-hook ids, nothing allocated per request. Entries of one duration are due in the
 * order they were started, so a list needs one timer, for its first entry; an entry that stops (its
 * request ended, as nearly all do) is unlinked at once.
 *
 * A list whose last entry stopped keeps its timer until it fires, and is dropped then if still
 * empty, so steady traffic never makes or clears a timer per request, and a duration no route
 * uses any more leaves nothing behind once its timer has run out. The timers are the clock's
 * (upstream/clock.ts): tests drive them.
 */
import type { Clock, Timer } from './clock.js';

/** What a list holds: the request (or attempt) itself carries the links. */
export interface TimeoutEntry {
  timeoutNext: TimeoutEntry | null;
  timeoutPrev: TimeoutEntry | null;
  /** When it is due (clock ms); -1 while in no list. */
  timeoutDue: number;
  timeoutList: TimeoutList | null;
  /** Its time ran out (it has left its list). */
  timedOut(): void;
}

export class TimeoutList {
  head: TimeoutEntry | null = null;
  tail: TimeoutEntry | null = null;
  timer: Timer | undefined;

  constructor(
    readonly ms: number,
    readonly owner: Timeouts,
  ) {}
}

export class Timeouts {
  /** One list per duration; a list is dropped when its timer fires with nothing in it. */
  private readonly lists = new Map<number, TimeoutList>();

  constructor(private readonly clock: Clock) {}

  /** `entry` times out `ms` (> 0) from now; started again, it moves to its new place. */
  start(entry: TimeoutEntry, ms: number): void {
    if (entry.timeoutList !== null) this.stop(entry);
    let list = this.lists.get(ms);
    if (list === undefined) this.lists.set(ms, (list = new TimeoutList(ms, this)));
    entry.timeoutDue = this.clock.now() + ms;
    entry.timeoutList = list;
    entry.timeoutNext = null;
    entry.timeoutPrev = list.tail;
    if (list.tail !== null) list.tail.timeoutNext = entry;
    else list.head = entry;
    list.tail = entry;
    if (list.timer === undefined) list.timer = this.clock.setTimeout(Timeouts.fire, ms, list);
  }

  /** `entry` will not time out (its request ended); a no-op when it is in no list. */
  stop(entry: TimeoutEntry): void {
    const list = entry.timeoutList;
    if (list === null) return;
    const prev = entry.timeoutPrev;
    const next = entry.timeoutNext;
    if (prev !== null) prev.timeoutNext = next;
    else list.head = next;
    if (next !== null) next.timeoutPrev = prev;
    else list.tail = prev;
    entry.timeoutNext = entry.timeoutPrev = null;
    entry.timeoutList = null;
    entry.timeoutDue = -1;
  }

  /** Durations with a list (for tests: what is left behind). */
  get durations(): number {
    return this.lists.size;
  }

  private static fire(this: void, list: TimeoutList): void {
    list.timer = undefined;
    const self = list.owner;
    const now = self.clock.now();
    let e = list.head;
    while (e !== null && e.timeoutDue <= now) {
      self.stop(e);
      e.timedOut();
      e = list.head;
    }
    if (e !== null) list.timer ??= self.clock.setTimeout(Timeouts.fire, Math.max(1, Math.ceil(e.timeoutDue - now)), list);
    else if (list.timer === undefined && self.lists.get(list.ms) === list) self.lists.delete(list.ms);
  }
}
