/**
 * edge/accept-guard.ts's descriptor count: what lets a poke on an accepted connection skip the
 * open/close probe while the process is far from its limit (test/accept-exhaustion.test.ts runs
 * the guard against a real `ulimit -n`).
 */
import { closeSync, openSync } from 'node:fs';
import { devNull } from 'node:os';
import { describe, expect, it } from 'vitest';
import { descriptorShortage, freeDescriptors } from '../../gateway/edge/accept-guard.js';

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
