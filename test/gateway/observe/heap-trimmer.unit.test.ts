import { describe, expect, it } from 'vitest';
import { HeapTrimmer, IdleTrimmer, processMemory } from '../../../gateway/observe/process-memory.js';

const MiB = 1024 * 1024;

/** A process whose resident memory the test sets, and whose trims give back what the test says. */
function world(startRss: number) {
  const w = { now: 0, rss: startRss, trims: [] as number[], givesBack: 0 };
  const trimmer = new HeapTrimmer(
    32 * MiB,
    300_000,
    () => w.now,
    () => w.rss,
    () => {
      w.trims.push(w.now);
      w.rss -= w.givesBack;
    },
  );
  return { w, trimmer };
}

describe('giving back pooled pages when resident memory has grown', () => {
  it('trims once memory grew by the threshold since the last trim, never sooner than the interval', () => {
    const { w, trimmer } = world(150 * MiB);
    w.now = 60_000;
    w.rss = 200 * MiB;
    expect(trimmer.check(), 'grown, but within the interval since start').toBe(false);
    w.now = 300_000;
    w.givesBack = 45 * MiB;
    expect(trimmer.check()).toBe(true);
    expect(w.trims).toEqual([300_000]);
    // What the trim left (155 MB) is the new reference: 30 MB more is not enough, 32 MB is.
    w.now = 700_000;
    w.rss = 185 * MiB;
    expect(trimmer.check()).toBe(false);
    w.rss = 187 * MiB;
    expect(trimmer.check()).toBe(true);
    expect(w.trims).toEqual([300_000, 700_000]);
  });

  it('does not trim a process whose memory stays level, however long it runs', () => {
    const { w, trimmer } = world(150 * MiB);
    for (let minute = 1; minute <= 600; minute++) {
      w.now = minute * 60_000;
      w.rss = 150 * MiB + (minute % 7) * MiB;
      trimmer.check();
    }
    expect(w.trims).toEqual([]);
  });

  it('a trim that gives nothing back does not trim again before the interval', () => {
    const { w, trimmer } = world(100 * MiB);
    w.rss = 140 * MiB;
    const times: number[] = [];
    for (let minute = 1; minute <= 20; minute++) {
      w.now = minute * 60_000;
      if (trimmer.check()) times.push(minute);
      w.rss += 40 * MiB;
    }
    expect(times).toEqual([5, 10, 15, 20]);
  });

  it('the real collection gives back what ordinary full collections keep: pages freed by a heap that shrank', () => {
    // 80 MB of small objects, dropped: full collections free them, V8 keeps their pages pooled.
    const held = { junk: Array.from({ length: 800_000 }, (_x, i) => ({ i, pad: [i, i, i, i, i, i, i, i, i, i] })) };
    expect(held.junk.length).toBe(800_000);
    held.junk = [];
    const afterFull = processMemory('process', true).rss;
    const trimmer = new HeapTrimmer(0, 0);
    expect(trimmer.check()).toBe(true);
    const afterTrim = process.memoryUsage.rss();
    expect(afterFull - afterTrim, `resident ${(afterFull / MiB).toFixed(1)} MB after full collections, ${(afterTrim / MiB).toFixed(1)} MB after the trim`).toBeGreaterThan(16 * MiB);
  });
});

describe('giving back a worker’s memory once it is idle', () => {
  /** A worker whose clock, loop utilization and resident memory the test sets. */
  function idleWorld(startRss: number) {
    const w = { now: 0, busy: 0.5, rss: startRss, trims: [] as number[], givesBack: 0 };
    const trimmer = new IdleTrimmer(
      10_000,
      16 * MiB,
      0.02,
      () => w.now,
      () => w.busy,
      () => w.rss,
      () => {
        w.trims.push(w.now);
        w.rss -= w.givesBack;
      },
    );
    return { w, trimmer };
  }

  it('trims after the quiet lasted its time, once per growth; traffic starts the quiet again', () => {
    const { w, trimmer } = idleWorld(100 * MiB);
    // Under load: grown, but busy.
    for (w.now = 5_000; w.now <= 60_000; w.now += 5_000) {
      w.rss += 5 * MiB;
      expect(trimmer.check()).toBe(false);
    }
    // The load stops: quiet for 5 s, then 10 s.
    w.busy = 0.001;
    w.now = 65_000;
    expect(trimmer.check(), 'quiet for 5 s only').toBe(false);
    w.now = 70_000;
    w.givesBack = 50 * MiB;
    expect(trimmer.check()).toBe(true);
    expect(w.trims).toEqual([70_000]);
    // Still idle, nothing grew: no more pauses.
    for (w.now = 75_000; w.now <= 200_000; w.now += 5_000) expect(trimmer.check()).toBe(false);
    // A scrape now and then is not traffic; a burst is, and the quiet counts again from its end.
    w.busy = 0.3;
    w.rss += 40 * MiB;
    w.now = 205_000;
    expect(trimmer.check()).toBe(false);
    w.busy = 0.01;
    w.now = 210_000;
    expect(trimmer.check()).toBe(false);
    w.now = 215_000;
    expect(trimmer.check()).toBe(true);
    expect(w.trims).toEqual([70_000, 215_000]);
  });

  it('a worker that never grew past its start is never paused', () => {
    const { w, trimmer } = idleWorld(100 * MiB);
    w.busy = 0;
    for (w.now = 5_000; w.now <= 120_000; w.now += 5_000) expect(trimmer.check()).toBe(false);
    expect(w.trims).toEqual([]);
  });
});
