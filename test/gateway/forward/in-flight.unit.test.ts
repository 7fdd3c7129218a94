/**
 * One request's attempts in flight (gateway/forward/in-flight.ts), as both codecs hold them: the attempt sent
 * last, the rivals a hedge leaves racing beside it, who leaves, who wins and who is cut.
 */
import { describe, expect, it } from 'vitest';
import { InFlight } from '../../../gateway/forward/in-flight.js';

describe("a request's attempts in flight", () => {
  it('an attempt sent alone is current and races nobody; a retry replaces it', () => {
    const f = new InFlight<string>();
    f.sent('first', false);
    expect([f.current, f.racing('first')]).toEqual(['first', false]);
    f.leave('first');
    expect(f.current).toBeUndefined();
    f.sent('retry', false);
    expect(f.current).toBe('retry');
    expect(f.clear()).toEqual({ current: 'retry', rivals: [] });
    expect(f.current).toBeUndefined();
  });

  it('a hedge races the first; the one that leaves hands the other over', () => {
    const f = new InFlight<string>();
    f.sent('first', false);
    f.sent('hedge', true);
    expect([f.current, f.racing('first'), f.racing('hedge'), f.racing('stranger')]).toEqual(['hedge', true, true, false]);
    f.leave('hedge');
    expect([f.current, f.racing('first')]).toEqual(['first', false]);
  });

  it('an attempt that is not current leaves: current stays, still racing the others', () => {
    const f = new InFlight<string>();
    f.sent('a', false);
    f.sent('b', true);
    f.sent('c', true);
    f.leave('a');
    expect([f.current, f.racing('c'), f.racing('b')]).toEqual(['c', true, true]);
  });

  it('the winner is current and every other attempt is cut, whichever was current', () => {
    const f = new InFlight<string>();
    f.sent('a', false);
    f.sent('b', true);
    f.sent('c', true);
    expect([...f.win('a')].sort()).toEqual(['b', 'c']);
    expect([f.current, f.racing('a')]).toEqual(['a', false]);
    const g = new InFlight<string>();
    g.sent('x', false);
    g.sent('y', true);
    expect(g.win('y')).toEqual(['x']);
    expect(g.clear()).toEqual({ current: 'y', rivals: [] });
  });

  it('cleared while hedged: current and each rival once', () => {
    const f = new InFlight<string>();
    f.sent('a', false);
    f.sent('b', true);
    expect(f.clear()).toEqual({ current: 'b', rivals: ['a'] });
    expect(f.clear()).toEqual({ current: undefined, rivals: [] });
  });
});
