/**
 * The waiting line of one predictor under flow control (docs/flow-control.md#the-queue): priority
 * classes, fair shares between tenants inside a class, and who gives way when it is full. Pure
 * data structure: no clock, no timers; the controller (gateway/flow/) owns those.
 *
 * Algorithm:
 * - Three classes from `x-seldon-priority`: `critical` (0), `standard` (1, the default and any
 *   unknown value), `sheddable` (2). A lower number is always served first.
 * - Inside a class, deficit round robin with a quantum of one request (every request costs the
 *   same to the gateway; a model's time per request is unknown beforehand): each tenant with
 *   waiting requests is a FIFO, and the tenants take turns. A tenant that floods gets one turn per
 *   round like any other, so a light tenant waits for at most one request of each other tenant.
 * - Full: an arrival displaces the newest waiter of the lowest class below its own; failing that,
 *   in its own class, the newest waiter of the tenant with the most waiting, if that tenant has at
 *   least two more than the arrival's (fair dropping: the longest queue loses); otherwise the
 *   arrival itself is refused. So refusals fall on `sheddable` first and reach `critical` last.
 * - The tenant table holds only tenants with a waiting request (so never more than the queue), and
 *   at most `maxTenants`; tenants beyond that share one entry.
 * Every operation is O(1) but `ahead` and `victim`, which are O(tenants in the class).
 */

export type Priority = 0 | 1 | 2;
export const PRIORITIES = ['critical', 'standard', 'sheddable'] as const;
export type PriorityName = (typeof PRIORITIES)[number];
export const PRIORITY_HEADER = 'x-seldon-priority';

/** `x-seldon-priority`'s value (any case) → its class; absent or unknown: standard. */
export function priorityOf(value: string | undefined): Priority {
  if (value === undefined) return 1;
  switch (value.trim().toLowerCase()) {
    case 'critical':
      return 0;
    case 'sheddable':
      return 2;
    default:
      return 1;
  }
}

/** The tenant that tenants past `maxTenants` share. */
export const OVERFLOW_TENANT = '\u0000overflow';
/** Tenants one class keeps apart at most. */
export const MAX_TENANTS = 1000;

/** A waiting request, as the queue links it (intrusive: no allocation per push beyond the waiter). */
export class Waiter {
  /** Set by the queue: the tenant entry it waits in, null once it left the queue. */
  lane: Lane | null = null;
  prev: Waiter | null = null;
  next: Waiter | null = null;
  constructor(
    readonly priority: Priority,
    readonly tenant: string,
  ) {}
}

/** One tenant's FIFO inside one class; also a link in the class's ring of tenants with waiters. */
class Lane {
  head: Waiter | null = null;
  tail: Waiter | null = null;
  count = 0;
  prev: Lane | null = null;
  next: Lane | null = null;
  constructor(readonly tenant: string) {}
}

class PriorityClass {
  readonly lanes = new Map<string, Lane>();
  /** Tenants with waiters, in turn order: `first` is served next. */
  first: Lane | null = null;
  last: Lane | null = null;
  size = 0;
}

export class FlowQueue<W extends Waiter> {
  private readonly classes = [new PriorityClass(), new PriorityClass(), new PriorityClass()];
  private total = 0;

  constructor(private readonly maxTenants = MAX_TENANTS) {}

  get size(): number {
    return this.total;
  }

  sizeOf(p: Priority): number {
    return this.classes[p]!.size;
  }

  /** How many waiters would be served before a new arrival of class `p` and `tenant` (arrivals after it aside). */
  ahead(p: Priority, tenant: string): number {
    let n = 0;
    for (let i = 0; i < p; i++) n += this.classes[i]!.size;
    const c = this.classes[p]!;
    if (c.size === 0) return n;
    const key = this.laneKey(c, tenant);
    const own = c.lanes.get(key)?.count ?? 0;
    // Round robin: before its (own + 1)-th turn, every other tenant gets at most own + 1 turns.
    for (const lane of c.lanes.values()) n += lane.tenant === key ? lane.count : Math.min(lane.count, own + 1);
    return n;
  }

  /** Waiters of class `p` and `tenant`. */
  countOf(p: Priority, tenant: string): number {
    const c = this.classes[p]!;
    return c.lanes.get(this.laneKey(c, tenant))?.count ?? 0;
  }

  push(w: W): void {
    const c = this.classes[w.priority]!;
    const key = this.laneKey(c, w.tenant);
    let lane = c.lanes.get(key);
    if (lane === undefined) {
      lane = new Lane(key);
      c.lanes.set(key, lane);
    }
    // Its tenant joins the end of the round.
    if (lane.count === 0) this.ring(c, lane);
    w.lane = lane;
    w.prev = lane.tail;
    w.next = null;
    if (lane.tail) lane.tail.next = w;
    else lane.head = w;
    lane.tail = w;
    lane.count++;
    c.size++;
    this.total++;
  }

  /** The next to serve: the highest class's next tenant in turn, its oldest waiter. */
  pop(): W | undefined {
    for (const c of this.classes) {
      const lane = c.first;
      if (lane === null) continue;
      const w = lane.head as W;
      this.unlink(c, lane, w);
      // The tenant's turn is over: to the end of the round if it has more waiting.
      if (lane.count > 0 && c.last !== lane) {
        this.unring(c, lane);
        this.ring(c, lane);
      }
      return w;
    }
    return undefined;
  }

  /** Take a waiter out (its client left, it timed out, it was displaced); false if it is not waiting. */
  remove(w: W): boolean {
    const lane = w.lane;
    if (lane === null) return false;
    this.unlink(this.classes[w.priority]!, lane, w);
    return true;
  }

  /** Who gives way to an arrival of class `p` and `tenant` when the queue is full; undefined: the arrival is refused. */
  victim(p: Priority, tenant: string): W | undefined {
    for (let i = 2; i > p; i--) {
      const c = this.classes[i]!;
      if (c.size > 0) return this.longest(c)!.tail as W;
    }
    const c = this.classes[p]!;
    const longest = this.longest(c);
    if (longest === undefined) return undefined;
    const key = this.laneKey(c, tenant);
    const own = c.lanes.get(key)?.count ?? 0;
    return longest.tenant !== key && longest.count >= own + 2 ? (longest.tail as W) : undefined;
  }

  /** The tenant with the most waiting (the first in turn among equals). */
  private longest(c: PriorityClass): Lane | undefined {
    let best: Lane | undefined;
    for (let l = c.first; l !== null; l = l.next) if (best === undefined || l.count > best.count) best = l;
    return best;
  }

  private laneKey(c: PriorityClass, tenant: string): string {
    return c.lanes.size < this.maxTenants || c.lanes.has(tenant) ? tenant : OVERFLOW_TENANT;
  }

  private unlink(c: PriorityClass, lane: Lane, w: Waiter): void {
    if (w.prev) w.prev.next = w.next;
    else lane.head = w.next;
    if (w.next) w.next.prev = w.prev;
    else lane.tail = w.prev;
    w.prev = w.next = null;
    w.lane = null;
    lane.count--;
    c.size--;
    this.total--;
    if (lane.count === 0) {
      this.unring(c, lane);
      c.lanes.delete(lane.tenant);
    }
  }

  private ring(c: PriorityClass, lane: Lane): void {
    lane.prev = c.last;
    lane.next = null;
    if (c.last) c.last.next = lane;
    else c.first = lane;
    c.last = lane;
  }

  private unring(c: PriorityClass, lane: Lane): void {
    if (lane.prev) lane.prev.next = lane.next;
    else c.first = lane.next;
    if (lane.next) lane.next.prev = lane.prev;
    else c.last = lane.prev;
    lane.prev = lane.next = null;
  }
}
