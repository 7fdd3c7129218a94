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
 * (upstream/clock.ts): tests drive them. A list keeps its one timer and runs it again (`refresh`)
 * when the duration it needs is the one it was made with.
 *
 * Coalescing lists (the hedges', forward/hedge.ts) are for entries that nearly all stop a little
 * before they are due: a hedge's delay is just past most answers, so the timer set for the first
 * entry finds it stopped and must be set again for the next, which stops too: a wake-up of the
 * worker every few milliseconds for nothing (8-10% of a hedged route's CPU at 1,000 requests/s,
 * `npm run bench -- hedging`). There, what is due also goes at each start (after the caller's own
 * work, in a microtask: the worker is awake then anyway), and a busy list (COALESCE_FROM entries or
 * more: another request started behind its first) sets its timer a whole duration on rather
 * than at its first entry's due time. Only the list the last start went to does so (when the delay
 * in force changes, the starts go to its new list and the old one drains on exact times). An entry
 * goes late only when no start comes: under traffic by the gap to the next request, when traffic
 * stops at once by at most one duration; a list with fewer entries keeps exact times.
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

/** Entries from which a coalescing list relies on its starts (above). */
export const COALESCE_FROM = 2;

export class TimeoutList {
  head: TimeoutEntry | null = null;
  tail: TimeoutEntry | null = null;
  /** Entries in it. */
  size = 0;
  /** Its timer, kept to run again; `timerMs` the duration it was made with. */
  timer: Timer | undefined;
  timerMs = 0;
  /** The timer is running (it has not fired since it was last set). */
  armed = false;
  /** A run of what is due waits in a microtask (coalescing lists). */
  queued = false;
  /** That run, made once per list. */
  readonly runQueued = (): void => {
    this.queued = false;
    this.run(this);
  };

  constructor(
    readonly ms: number,
    /** Its `Timeouts`' run: what is due goes, then the timer is set again or the list dropped. */
    readonly run: (list: TimeoutList) => void,
  ) {}
}

export class Timeouts {
  /** One list per duration; a list is dropped when its timer fires with nothing in it. */
  private readonly lists = new Map<number, TimeoutList>();
  /** The list the last start went to (coalescing lists only: its starts check it); cleared with it when dropped. */
  private latest: TimeoutList | undefined;
  /** `run`, as its lists call it (one closure per `Timeouts`). */
  private readonly runList = (list: TimeoutList): void => this.run(list);

  /** `coalesce`: the hedges' lists (above). */
  constructor(
    private readonly clock: Clock,
    private readonly coalesce = false,
  ) {}

  /** `entry` times out `ms` (> 0) from now; started again, it moves to its new place. */
  start(entry: TimeoutEntry, ms: number): void {
    if (entry.timeoutList !== null) this.stop(entry);
    let list = this.lists.get(ms);
    if (list === undefined) this.lists.set(ms, (list = new TimeoutList(ms, this.runList)));
    const now = this.clock.now();
    if (this.coalesce) {
      this.latest = list;
      const first = list.head;
      // Not in the caller's stack: what goes runs other requests' code (a hedge is sent).
      if (first !== null && first.timeoutDue <= now && !list.queued) {
        list.queued = true;
        queueMicrotask(list.runQueued);
      }
    }
    entry.timeoutDue = now + ms;
    entry.timeoutList = list;
    entry.timeoutNext = null;
    entry.timeoutPrev = list.tail;
    if (list.tail !== null) list.tail.timeoutNext = entry;
    else list.head = entry;
    list.tail = entry;
    list.size++;
    if (!list.armed) this.arm(list, ms);
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
    list.size--;
    entry.timeoutDue = -1;
  }

  /** Durations with a list (for tests: what is left behind). */
  get durations(): number {
    return this.lists.size;
  }

  /** What is due in `list` goes; then, unless its timer runs, it is set for what is left, or the list is dropped. */
  private run(list: TimeoutList): void {
    const now = this.clock.now();
    let e = list.head;
    while (e !== null && e.timeoutDue <= now) {
      this.stop(e);
      e.timedOut();
      e = list.head;
    }
    // Running (a queued run, or an entry that went started another): it is set already.
    if (list.armed) return;
    if (e === null) {
      if (this.lists.get(list.ms) === list) this.lists.delete(list.ms);
      if (this.latest === list) this.latest = undefined;
    } else this.arm(list, this.coalesce && list === this.latest && list.size >= COALESCE_FROM ? list.ms : Math.max(1, Math.ceil(e.timeoutDue - now)));
  }

  private arm(list: TimeoutList, ms: number): void {
    list.armed = true;
    if (list.timer !== undefined && list.timerMs === ms) this.clock.refresh(list.timer);
    else {
      list.timer = this.clock.setTimeout(Timeouts.fire, ms, list);
      list.timerMs = ms;
    }
  }

  private static fire(this: void, list: TimeoutList): void {
    list.armed = false;
    list.run(list);
  }
}
