/**
 * Timeouts kept in a list per duration (gateway/upstream/timeout-lists.ts), on a clock the test
 * moves: each entry times out at its own due time, not before, in the order due; a stopped one
 * never does; one timer per list at a time; a list with nothing left is dropped when its timer runs out.
 */
import { describe, expect, it } from 'vitest';
import { COALESCE_FROM, Timeouts, type TimeoutEntry, type TimeoutList } from '../../../gateway/upstream/timeout-lists.js';
import { FakeClock } from '../../helpers/fake-clock.js';

class Entry implements TimeoutEntry {
  timeoutNext: TimeoutEntry | null = null;
  timeoutPrev: TimeoutEntry | null = null;
  timeoutDue = -1;
  timeoutList: TimeoutList | null = null;
  constructor(
    readonly name: string,
    private readonly log: string[],
    private readonly then?: () => void,
  ) {}
  timedOut(): void {
    this.log.push(this.name);
    this.then?.();
  }
}

describe('timeouts in a list per duration', () => {
  it('each at its own due time, in order, with one timer per list; stopped ones never', () => {
    const clock = new FakeClock();
    const t = new Timeouts(clock);
    const log: string[] = [];
    const a = new Entry('a', log);
    const b = new Entry('b', log);
    const c = new Entry('c', log);
    const d = new Entry('d', log);
    t.start(a, 100);
    clock.advance(10);
    t.start(b, 100);
    t.start(d, 30);
    clock.advance(10);
    t.start(c, 100);
    expect(clock.timers).toBe(2);
    t.stop(b);
    t.stop(b);
    clock.advance(19);
    expect(log).toEqual([]);
    clock.advance(1);
    expect(log).toEqual(['d']);
    clock.advance(59);
    expect(log).toEqual(['d']);
    clock.advance(1);
    expect(log).toEqual(['d', 'a']);
    clock.advance(19);
    expect(log).toEqual(['d', 'a']);
    clock.advance(1);
    expect(log).toEqual(['d', 'a', 'c']);
    expect(a.timeoutList).toBeNull();
    expect(clock.timers).toBe(0);
  });

  it('a list left empty keeps its timer until it fires, then is gone; started again, an entry moves to its new due time', () => {
    const clock = new FakeClock();
    const t = new Timeouts(clock);
    const log: string[] = [];
    const a = new Entry('a', log);
    t.start(a, 50);
    t.stop(a);
    expect(t.durations).toBe(1);
    expect(clock.timers).toBe(1);
    t.start(a, 50);
    clock.advance(25);
    t.start(a, 50);
    clock.advance(49);
    expect(log).toEqual([]);
    clock.advance(1);
    expect(log).toEqual(['a']);
    t.start(a, 20);
    t.stop(a);
    clock.advance(1000);
    expect(t.durations).toBe(0);
    expect(clock.timers).toBe(0);
    expect(log).toEqual(['a']);
  });

  it('an entry that times out may start another in its own list (a retry)', () => {
    const clock = new FakeClock();
    const t = new Timeouts(clock);
    const log: string[] = [];
    const second = new Entry('second', log);
    const first = new Entry('first', log, () => t.start(second, 40));
    t.start(first, 40);
    clock.advance(40);
    expect(log).toEqual(['first']);
    expect(clock.timers).toBe(1);
    clock.advance(40);
    expect(log).toEqual(['first', 'second']);
  });
});

describe("coalescing lists (the hedges': entries that mostly stop a little before they are due)", () => {
  /** Microtasks run: a start's queued run of what is due. */
  const settled = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
  const entries = (log: string[], clock: FakeClock, ...names: string[]): Entry[] => names.map((n) => new Entry(n, log, () => log.push(`@${clock.now() - 1_000}`)));
  /** Entries started 12 ms long one millisecond apart from 0, the first then stopped (its request answered): the others due at 13, 14… */
  const oneApart = (t: Timeouts, log: string[], clock: FakeClock, ...names: string[]): Entry[] => {
    const all = entries(log, clock, ...names);
    for (const x of all) {
      t.start(x, 12);
      clock.advance(1);
    }
    t.stop(all[0]!);
    return all;
  };

  it(`a busy list (${COALESCE_FROM} entries or more) sets its timer a whole duration on; what is due goes at the next start`, async () => {
    const clock = new FakeClock();
    const t = new Timeouts(clock, true);
    const log: string[] = [];
    const [a, b, c, e, d] = entries(log, clock, 'a', 'b', 'c', 'e', 'd') as [Entry, Entry, Entry, Entry, Entry];
    t.start(a, 12);
    clock.advance(5);
    t.start(b, 12);
    clock.advance(1);
    t.start(c, 12);
    clock.advance(1);
    t.start(e, 12);
    clock.advance(1);
    t.stop(a);
    // At 12 the timer finds b first (due 17) and two behind it: it runs again at 24, not at 17.
    clock.advance(10);
    expect(log).toEqual([]);
    expect(clock.timers).toBe(1);
    // A start at 18: b and c (due 17 and 18) go then, after the start itself.
    t.start(d, 12);
    expect(log).toEqual([]);
    await settled();
    expect(log).toEqual(['b', '@18', 'c', '@18']);
    // No start after that: e (due 19) goes with the timer at 24; d, alone, at its own due time, 30.
    clock.advance(6);
    expect(log).toEqual(['b', '@18', 'c', '@18', 'e', '@24']);
    clock.advance(5);
    expect(log).toHaveLength(6);
    clock.advance(1);
    expect(log.slice(6)).toEqual(['d', '@30']);
    clock.advance(100);
    expect(t.durations).toBe(0);
    expect(clock.timers).toBe(0);
  });

  it('when no start comes, an entry goes at most one duration late', () => {
    const clock = new FakeClock();
    const t = new Timeouts(clock, true);
    const log: string[] = [];
    oneApart(t, log, clock, 'a', 'b', 'c', 'e');
    // b, c and e are due at 13, 14 and 15; at 12 the timer runs again at 24.
    clock.advance(8);
    expect(log).toEqual([]);
    clock.advance(11);
    expect(log).toEqual([]);
    clock.advance(1);
    expect(log).toEqual(['b', '@24', 'c', '@24', 'e', '@24']);
  });

  it(`a list of fewer than ${COALESCE_FROM} entries keeps exact times`, () => {
    const clock = new FakeClock();
    const t = new Timeouts(clock, true);
    const log: string[] = [];
    // The first stops: one fewer than a busy list is left, the next due at 13.
    oneApart(t, log, clock, ...Array.from({ length: COALESCE_FROM }, (_x, i) => `e${i}`));
    clock.advance(12 - COALESCE_FROM);
    expect(log).toEqual([]);
    clock.advance(1);
    expect(log.slice(0, 2)).toEqual(['e1', '@13']);
    clock.advance(COALESCE_FROM);
    expect(log).toHaveLength(2 * (COALESCE_FROM - 1));
  });

  it('a list no start goes to any more (the delay in force changed) drains on exact times', () => {
    const clock = new FakeClock();
    const t = new Timeouts(clock, true);
    const log: string[] = [];
    oneApart(t, log, clock, 'a', 'b', 'c', 'e');
    // From now on the starts go to the 13 ms list.
    t.start(entries(log, clock, 'd')[0]!, 13);
    // At 12 the old list's timer is set for b (due 13), not a whole duration on.
    clock.advance(9);
    expect(log).toEqual(['b', '@13']);
    clock.advance(2);
    expect(log).toEqual(['b', '@13', 'c', '@14', 'e', '@15']);
    clock.advance(2);
    expect(log.slice(6)).toEqual(['d', '@17']);
    clock.advance(100);
    expect(t.durations).toBe(0);
  });

  it("a list that is not coalescing sets its timer for its first entry's due time, whatever follows it", () => {
    const clock = new FakeClock();
    const t = new Timeouts(clock);
    const log: string[] = [];
    oneApart(t, log, clock, 'a', 'b', 'c', 'e');
    clock.advance(9);
    expect(log).toEqual(['b', '@13']);
  });
});
