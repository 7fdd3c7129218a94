/**
 * Consistent hashing's pure parts (routing/table/hash-balance.ts): a key always reaches the same endpoint
 * while the set is unchanged, only a removed endpoint's keys move, the load spreads, and an unusable
 * endpoint is walked past.
 */
import { describe, expect, it } from 'vitest';
import { Maglev, Ring, hash53, hashTable, type HashTable } from '../../../routing/table/hash-balance.js';

const FOUR = ['10.0.0.1:9000', '10.0.0.2:9000', '10.0.0.3:9000', '10.0.0.4:9000'];
const KEYS = Array.from({ length: 1000 }, (_x, i) => `user-${i}`);
const ALL = (_i: number): boolean => true;

/** Each key's endpoint address under `table` over `addresses`. */
function assign(table: HashTable, addresses: readonly string[], usable = ALL): string[] {
  return KEYS.map((k) => addresses[table.lookup(hash53(k), usable)]!);
}

describe('hash53', () => {
  it('is a whole number below 2^53, stable, and seeded', () => {
    const h = hash53('abc');
    expect(Number.isSafeInteger(h)).toBe(true);
    expect(h).toBe(hash53('abc'));
    expect(hash53('abc', 1)).not.toBe(h);
    expect(hash53('abd')).not.toBe(h);
  });
});

describe.each([
  ['ring_hash', (a: readonly string[]) => new Ring(a)],
  ['maglev', (a: readonly string[]) => new Maglev(a)],
] as const)('%s', (_name, build) => {
  it('sends each of 1,000 keys to the same endpoint every time, and to every endpoint', () => {
    const first = assign(build(FOUR), FOUR);
    // A table built again from the same set (as after a refresh) agrees, key by key.
    expect(assign(build(FOUR), FOUR)).toEqual(first);
    expect(assign(build(FOUR), FOUR)).toEqual(first);
    const counts = new Map<string, number>();
    for (const a of first) counts.set(a, (counts.get(a) ?? 0) + 1);
    expect([...counts.keys()].sort()).toEqual(FOUR);
    // Spread: no endpoint takes more than 40% nor less than 12% (an even share is 25%).
    for (const c of counts.values()) {
      expect(c).toBeGreaterThan(120);
      expect(c).toBeLessThan(400);
    }
  });

  it('moves only the removed endpoint’s keys when one leaves (≤ 30% of all)', () => {
    const before = assign(build(FOUR), FOUR);
    const three = FOUR.filter((a) => a !== '10.0.0.3:9000');
    const after = assign(build(three), three);
    let moved = 0;
    for (let i = 0; i < KEYS.length; i++) {
      if (before[i] === after[i]) continue;
      moved++;
      expect(before[i]).toBe('10.0.0.3:9000');
    }
    expect(moved).toBe(before.filter((a) => a === '10.0.0.3:9000').length);
    expect(moved).toBeLessThanOrEqual(300);
  });

  it('does not depend on the order the source lists endpoints in', () => {
    const reversed = [...FOUR].reverse();
    expect(assign(build(reversed), reversed)).toEqual(assign(build(FOUR), FOUR));
  });

  it('walks past an unusable endpoint: only its keys go elsewhere, the others stay', () => {
    const t = build(FOUR);
    const before = assign(t, FOUR);
    const ejected = FOUR.indexOf('10.0.0.2:9000');
    const after = assign(t, FOUR, (i) => i !== ejected);
    for (let i = 0; i < KEYS.length; i++) {
      if (before[i] === '10.0.0.2:9000') expect(after[i]).not.toBe('10.0.0.2:9000');
      else expect(after[i]).toBe(before[i]);
    }
    // Nothing usable: the key's own endpoint.
    expect(assign(t, FOUR, () => false)).toEqual(before);
  });

  it('has one endpoint take every key, and an empty set none', () => {
    const one = ['10.0.0.9:80'];
    expect(new Set(assign(build(one), one))).toEqual(new Set(one));
    expect(build([]).lookup(hash53('k'), ALL)).toBe(-1);
  });
});

it('hashTable builds the policy’s table', () => {
  expect(hashTable('maglev', FOUR)).toBeInstanceOf(Maglev);
  expect(hashTable('ring_hash', FOUR)).toBeInstanceOf(Ring);
});
