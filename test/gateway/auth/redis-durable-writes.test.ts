/**
 * Which writes a replica acknowledges (`WAIT 1`) before they count, on a real Sentinel set
 * (docs/redis.md): counted on the primary in `INFO commandstats`, and what happens when no replica can
 * acknowledge (both replicas killed): a token is still issued (counted as unacknowledged), a
 * revocation fails (its caller retries it), and a rate-limit check never waits.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisConnection, StoreUnavailable } from '../../../gateway/auth/redis.js';
import { RedisLimits } from '../../../gateway/auth/rate-limit.js';
import { RedisTokenStore, type TokenRecord } from '../../../gateway/auth/token-store.js';
import { RedisSteerStore } from '../../../gateway/steer/store.js';
import { redisCli, startSentinelSet, type SentinelSet } from '../../helpers/redis-topology.js';
import { waitUntil } from '../../helpers/wait.js';

/** Calls of `command` the primary has served so far. */
async function calls(port: number, command: string): Promise<number> {
  const stats = await redisCli(port, 'INFO', 'commandstats');
  return Number(new RegExp(`^cmdstat_${command}:calls=(\\d+)`, 'm').exec(stats)?.[1] ?? 0);
}

const record = (clientId: string): TokenRecord => ({ clientId, namespace: 'models', sdep: 'iris', scope: 'read', fp: 'fp1', expiresAt: Date.now() + 60_000 });
const limit = { key: 'models/iris', count: 1000, periodMs: 60_000, text: '1000/m' };

describe('durable writes on a Sentinel set', () => {
  let set: SentinelSet;
  let redis: RedisConnection;
  let primary: number;

  beforeAll(async () => {
    set = await startSentinelSet();
    primary = (await set.primaryPort())!;
    redis = new RedisConnection(set.url, undefined, 200);
    await waitUntil(async () => redis.up, 15_000);
  }, 60_000);

  afterAll(async () => {
    redis?.close();
    await set?.stop();
  });

  it('tokens, revocations, rollout state and lease wait for a replica; rate limits and rewards do not', async () => {
    const tokens = new RedisTokenStore(redis);
    const limits = new RedisLimits(redis);
    const steer = new RedisSteerStore(redis);
    let waits = await calls(primary, 'wait');
    const step = async (what: string, expected: number, op: () => Promise<unknown>): Promise<void> => {
      await op();
      const now = await calls(primary, 'wait');
      expect(now - waits, what).toBe(expected);
      waits = now;
    };
    const r = record('a');
    await step('a token issued: its record, then its client entry', 2, () => tokens.issue('a', { tokenHash: 'h-a', sealed: 's', fp: 'fp1', expiresAt: r.expiresAt }, { ...r }));
    await step('a revocation: the record marked, the entry dropped', 2, () => tokens.revoke('a', 'fp1'));
    await step('a lease', 1, () => steer.lease('models/iris', 'me', 5000));
    await step('a rollout state', 1, () => steer.writeState('models/iris', 'run1', null, '{}', 0, 'me', false));
    await step('a rate-limit check', 0, () => limits.take([limit]));
    await step('a reward', 0, () => steer.reward('models/iris', 'run1', 'main', 1, 'n1', 60_000, null));
    await step('counts', 0, () => steer.addCounts('models/iris', 'run1', { x: 1 }));
    expect(redis.unacknowledgedWrites).toBe(0);
  });

  it('no replica to acknowledge: a token is still issued (counted), a revocation fails to be retried, a limit check does not wait', async () => {
    const tokens = new RedisTokenStore(redis);
    const limits = new RedisLimits(redis);
    const r = record('b');
    await tokens.issue('b', { tokenHash: 'h-b', sealed: 's', fp: 'fp1', expiresAt: r.expiresAt }, { ...r });
    await Promise.all(set.replicas.map((n) => n.kill()));
    await waitUntil(async () => /connected_slaves:0/.test(await redisCli(primary, 'INFO', 'replication')), 15_000);

    const t0 = Date.now();
    await limits.take([limit]);
    expect(Date.now() - t0).toBeLessThan(150);

    const before = redis.unacknowledgedWrites;
    const c = record('c');
    expect(await tokens.issue('c', { tokenHash: 'h-c', sealed: 's', fp: 'fp1', expiresAt: c.expiresAt }, { ...c })).toBeNull();
    expect(await tokens.lookup('h-c')).toMatchObject({ clientId: 'c' });
    expect(redis.unacknowledgedWrites).toBe(before + 2);

    const failed = await tokens.revoke('b', 'fp1').then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(failed).toBeInstanceOf(StoreUnavailable);
    expect((failed as Error).message).toContain('no replica acknowledged within 200 ms');
  });
});
