/**
 * The rollout and bandit store (gateway/steer/store.ts), in Redis (a real redis-server) and in
 * memory, run through the same sequences: counts are consumed exactly once by the compare-and-set
 * write, only the lease holder advances (anyone may write a rollback), a lease moves only when it
 * lapses, a reward counts once per nonce, and the Redis script's decay is the pure `addReward`'s.
 * Concurrent rewards from many clients lose nothing.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisConnection } from '../../../gateway/auth/redis.js';
import { MemorySteerStore, RedisSteerStore, type SteerStore } from '../../../gateway/steer/store.js';
import { addReward } from '../../../routing/steering/bandit.js';
import { startRedis, type TestRedis } from '../../helpers/redis.js';
import { waitUntil } from '../../helpers/wait.js';

let redis: TestRedis;
let connection: RedisConnection;
let clock = 1_000_000;

beforeAll(async () => {
  redis = await startRedis();
  connection = new RedisConnection(redis.url, undefined);
  await waitUntil(async () => connection.up, 10_000);
});

afterAll(async () => {
  connection?.close();
  await redis?.stop();
});

const stores: [string, () => SteerStore][] = [
  ['redis', () => new RedisSteerStore(connection)],
  ['memory', () => new MemorySteerStore(() => clock)],
];

describe.each(stores)('the steering store (%s)', (name, make) => {
  const dep = (what: string): string => `ns-${name}/${what}`;

  it('counts are consumed exactly once: a write trims what it read, a stale epoch writes nothing', async () => {
    const s = make();
    const d = dep('consume');
    expect(await s.lease(d, 'me', 60_000)).toBe(true);
    await s.addCounts(d, 'r1', { 'main:n': 10, 'v2:n': 2 });
    await s.addCounts(d, 'r1', { 'main:n': 5 });
    const first = await s.pending(d, 'r1', 100);
    expect(first.state).toBeNull();
    expect(first.pieces.map((p) => p.counts)).toEqual([{ 'main:n': 10, 'v2:n': 2 }, { 'main:n': 5 }]);
    // Counts that arrive between the read and the write stay for the next decision.
    await s.addCounts(d, 'r1', { 'v2:n': 7 });
    expect(await s.writeState(d, 'r1', null, '{"step":1}', first.pieces.length, 'me', false)).toBe(true);
    // A second writer that read the same (old) epoch loses: nothing is written or trimmed.
    expect(await s.writeState(d, 'r1', null, '{"step":99}', first.pieces.length, 'me', false)).toBe(false);
    const second = await s.pending(d, 'r1', 100);
    expect(second.state).toEqual({ epoch: 1, json: '{"step":1}' });
    expect(second.pieces.map((p) => p.counts)).toEqual([{ 'v2:n': 7 }]);
    expect(await s.readState(d, 'r1')).toEqual({ epoch: 1, json: '{"step":1}' });
  });

  it('only the lease holder advances; anyone may write a rollback; a lease moves only once it lapses', async () => {
    const s = make();
    const d = dep('lease');
    expect(await s.lease(d, 'a', 200)).toBe(true);
    expect(await s.lease(d, 'b', 200)).toBe(false);
    expect(await s.lease(d, 'a', 200)).toBe(true);
    expect(await s.writeState(d, 'r', null, '{"phase":"Progressing"}', 0, 'b', false)).toBe(false);
    expect(await s.writeState(d, 'r', null, '{"phase":"RolledBack"}', 0, 'b', true)).toBe(true);
    // The lease lapses (real time in Redis, the injected clock in memory): b can take it.
    clock += 1000;
    await waitUntil(async () => s.lease(d, 'b', 200), 5000);
    expect(await s.writeState(d, 'r', 1, '{"phase":"Progressing"}', 0, 'b', false)).toBe(true);
    expect((await s.readState(d, 'r'))!.epoch).toBe(2);
  });

  it('a reward counts once per nonce, and decays as the pure addReward does', async () => {
    const s = make();
    const d = dep('reward');
    const halfLife = 3_600_000;
    expect(await s.reward(d, 'run', 'a', 0.9, 'nonce-1', 60_000, halfLife)).toBe('recorded');
    expect(await s.reward(d, 'run', 'a', 0.9, 'nonce-1', 60_000, halfLife)).toBe('duplicate');
    const one = (await s.arms(d, 'run')).arms.get('a')!;
    expect(one.s).toBeCloseTo(0.9, 12);
    expect(one.f).toBeCloseTo(0.1, 12);
    expect(one.n).toBe(1);
    clock += 1234;
    await waitUntil(async () => (await s.arms(d, 'run')).now > one.t, 5000);
    expect(await s.reward(d, 'run', 'a', 0.25, 'nonce-2', 60_000, halfLife)).toBe('recorded');
    const two = (await s.arms(d, 'run')).arms.get('a')!;
    const expected = addReward(one, 0.25, two.t, halfLife);
    expect(two.s).toBeCloseTo(expected.s, 12);
    expect(two.f).toBeCloseTo(expected.f, 12);
    expect(two.n).toBe(2);
    expect(two.s).toBeLessThan(0.9 + 0.25);
  });

  it('concurrent rewards from many clients lose nothing', async () => {
    const s = make();
    const d = dep('concurrent');
    const outcomes = await Promise.all(Array.from({ length: 500 }, (_, i) => s.reward(d, 'run', i % 2 ? 'a' : 'b', 1, `n-${i % 400}`, 60_000, null)));
    expect(outcomes.filter((o) => o === 'recorded')).toHaveLength(400);
    expect(outcomes.filter((o) => o === 'duplicate')).toHaveLength(100);
    const arms = (await s.arms(d, 'run')).arms;
    expect(arms.get('a')!.n + arms.get('b')!.n).toBe(400);
    expect(arms.get('a')!.s + arms.get('b')!.s).toBeCloseTo(400, 9);
  });
});
