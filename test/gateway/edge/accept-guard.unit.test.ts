/**
 * edge/accept-guard.ts's descriptor count: what lets a poke on an accepted connection skip the
 * open/close probe while the process is far from its limit (test/gateway/edge/descriptor-exhaustion.test.ts runs
 * the guard against a real `ulimit -n`), and the cheaper bound a check takes far from the limit.
 */
import { closeSync, openSync } from 'node:fs';
import { devNull } from 'node:os';
import { describe, expect, it } from 'vitest';
import { descriptorShortage, freeDescriptors, freeDescriptorsAtLeast, headroom, systemFreeDescriptors } from '../../../gateway/edge/accept-guard.js';

describe.runIf(process.platform === 'linux')('freeDescriptors', () => {
  it('is the limit less the descriptors open: opening ten takes ten, closing them gives them back', () => {
    const before = freeDescriptors(10_000)!;
    expect(before).toBeGreaterThan(0);
    expect(before).toBeLessThan(10_000);
    const fds = Array.from({ length: 10 }, () => openSync(devNull, 'r'));
    try {
      expect(freeDescriptors(10_000)).toBe(before - 10);
    } finally {
      for (const fd of fds) closeSync(fd);
    }
    expect(freeDescriptors(10_000)).toBe(before);
  });

  it('is undefined without a known limit', () => {
    expect(freeDescriptors(undefined)).toBeUndefined();
  });
});

describe('descriptorShortage', () => {
  it('finds none when the descriptors can be opened, and leaves none open', () => {
    const before = freeDescriptors(10_000);
    expect(descriptorShortage(48)).toBeUndefined();
    expect(freeDescriptors(10_000)).toBe(before);
  });
});

describe.runIf(process.platform === 'linux')('the cheap counts a check takes far from the limit', () => {
  const open = (n: number): number[] => Array.from({ length: n }, () => openSync(devNull, 'r'));
  // Below what the system has free, so that the process's own count decides.
  const limit = (): number => Math.min(100_000, Math.floor(systemFreeDescriptors()! / 2));

  it('freeDescriptorsAtLeast never counts more free than there are, and does not move with each descriptor opened', () => {
    const max = limit();
    const exact = freeDescriptors(max)!;
    const bound = freeDescriptorsAtLeast(max)!;
    expect(bound).toBeLessThanOrEqual(exact);
    // The table has room for the descriptors open, and is sized in powers of two.
    const table = max - bound;
    const openNow = max - exact;
    expect(table & (table - 1)).toBe(0);
    expect(table).toBeGreaterThanOrEqual(openNow);
    const one = open(1);
    try {
      if (openNow + 1 <= table) expect(freeDescriptorsAtLeast(max)).toBe(bound);
    } finally {
      for (const fd of one) closeSync(fd);
    }
    // Outgrow the table: the bound falls with it and stays under the exact count.
    const fds = open(table - openNow + 1);
    try {
      const grown = freeDescriptorsAtLeast(max)!;
      expect(grown).toBeLessThan(bound);
      expect(grown).toBeLessThanOrEqual(freeDescriptors(max)!);
    } finally {
      for (const fd of fds) closeSync(fd);
    }
    expect(freeDescriptorsAtLeast(undefined)).toBeUndefined();
  });

  it('systemFreeDescriptors falls by the handles opened anywhere in the system (here: ours)', () => {
    const before = systemFreeDescriptors()!;
    expect(before).toBeGreaterThan(0);
    const fds = open(1000);
    try {
      // Other processes open and close files too: allow them some.
      expect(before - systemFreeDescriptors()!).toBeGreaterThan(500);
    } finally {
      for (const fd of fds) closeSync(fd);
    }
  });

  it('headroom takes the bound when it leaves enough, else the exact count', () => {
    const max = limit();
    expect(headroom(max, 1)).toBe(freeDescriptorsAtLeast(max));
    expect(headroom(max, max)).toBe(freeDescriptors(max));
    // A limit nearly used up: the exact count says so.
    const used = max - freeDescriptors(max)!;
    expect(headroom(used + 10, 48)).toBe(10);
    expect(headroom(undefined, 48)).toBeUndefined();
  });
});
