/**
 * A translated tensor of doubles stays a list of unboxed doubles however many other kinds of lists the
 * translation has read (number-lists.ts): the REST translations of the built gateway, in a node of their own
 * (`--allow-natives-syntax` to ask V8 what a list holds; optimization on the main thread, so that it has happened
 * when the probe runs), are fed lists of objects, strings, booleans, nested lists and long integers until they are
 * optimized, and each way then gets a fresh 100×100 tensor, flat or nested. Boxed, each element would be a heap
 * number: ≈ 9 ns an element (≈ 90 µs of a 100×100 tensor's ≈ 2 ms) and work for the collector.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const PROBE = fileURLToPath(new URL('./probes/unboxed-doubles.mjs', import.meta.url));

interface Count {
  readonly lists: number;
  readonly doubles: number;
}

async function probe(): Promise<{ before: Record<string, Count>; after: Record<string, Count> }> {
  const { stdout } = await promisify(execFile)(process.execPath, ['--allow-natives-syntax', '--no-concurrent-recompilation', '--no-concurrent-osr', PROBE], { maxBuffer: 1 << 20 });
  return JSON.parse(stdout) as { before: Record<string, Count>; after: Record<string, Count> };
}

/** How many lists of numbers each way's documents hold: the tensor's one list, or its 100 rows. */
const LISTS: Record<string, number> = {
  'a Seldon tensor to a v2 model': 1,
  'a Seldon ndarray to a v2 model': 100,
  "a v2 model's flat answer to a Seldon client": 1,
  "a v2 model's nested answer to a Seldon client": 100,
  'a v2 request to a Seldon model': 1,
  'a v2 INT64 request to a Seldon model': 1,
  "a Seldon model's tensor answer to a v2 client": 1,
  "a Seldon model's ndarray answer to a v2 client": 100,
};

describe('a translated tensor of doubles', () => {
  it('stays unboxed in every REST translation, after lists of every kind went through them', async () => {
    const { before, after } = await probe();
    const unboxed = Object.fromEntries(Object.entries(LISTS).map(([k, lists]) => [k, { lists, doubles: lists }]));
    // Before any optimization every list is found holding doubles: the probe's own check works.
    expect(before).toEqual(unboxed);
    expect(after).toEqual(unboxed);
  });
});
