/**
 * The attempts of a hedged request racing beside the one its codec holds (gateway/forward/rivals.ts):
 * who is still in flight, who leaves the race, who is cut when one wins, whichever of them is the
 * codec's `current` (the attempt sent last).
 */
import { describe, expect, it } from 'vitest';
import { Rivals } from '../../../gateway/forward/rivals.js';

describe('the attempts racing beside the one a codec holds', () => {
  it('the first attempt, joined by a hedge: each is against the other; the one that leaves hands the other over', () => {
    const r = new Rivals<string>();
    r.add('first');
    let current: string | undefined = 'hedge';
    expect(r.against('first', current)).toBe(true);
    expect(r.against('hedge', current)).toBe(true);
    expect(r.against('stranger', current)).toBe(false);
    // The hedge (current) fails: the first is what the codec holds now, alone.
    current = r.leave('hedge', current);
    expect(current).toBe('first');
    expect(r.empty).toBe(true);
    expect(r.against('first', current)).toBe(false);
  });

  it('an attempt that is not current leaves: current stays', () => {
    const r = new Rivals<string>();
    r.add('a');
    r.add('b');
    const current = r.leave('a', 'c');
    expect(current).toBe('c');
    expect(r.against('c', current)).toBe(true);
    expect(r.against('b', current)).toBe(true);
    expect(r.against('a', current)).toBe(false);
  });

  it('the winner gets the others to cut, current among them when it is not the winner', () => {
    const r = new Rivals<string>();
    r.add('a');
    r.add('b');
    expect(r.losers('a', 'c').sort()).toEqual(['b', 'c']);
    const s = new Rivals<string>();
    s.add('a');
    expect(s.losers('c', 'c')).toEqual(['a']);
  });
});
