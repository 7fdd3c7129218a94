/**
 * Timeouts kept in a list per duration (gateway/upstream/timeout-lists.ts), on a clock the test
 * moves: each entry times out at its own due time, not before, in the order due; a stopped one
 * never does; one timer per list at a time; a list with nothing left is dropped when its timer runs out.
 */
import { describe, expect, it } from 'vitest';
import { Timeouts, type TimeoutEntry, type TimeoutList } from '../../../gateway/upstream/timeout-lists.js';
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
