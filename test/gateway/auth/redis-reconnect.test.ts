/**
 * The shared store's connection comes back whatever cut it, on a real Sentinel set.
 *
 * The case that matters: ioredis's failover detector answers a sentinel's `+switch-master` by
 * disconnecting its connector, and when that lands while the client is still asking the sentinels
 * for the primary (a reconnect already under way: the old primary has just died), the connect
 * attempt throws "Connection is closed." and ioredis ends the connection for good (status `end`,
 * no retry). A gateway worker was left deciding rate limits locally until restarted. Here the
 * announcement is delivered at exactly that moment, as the detector does it.
 */
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisConnection } from '../../../gateway/auth/redis.js';
import { startSentinelSet, type SentinelSet } from '../../helpers/redis-topology.js';
import { waitUntil } from '../../helpers/wait.js';

describe('the store connection on a Sentinel set', () => {
  let set: SentinelSet;
  let redis: RedisConnection;

  beforeAll(async () => {
    set = await startSentinelSet();
    redis = new RedisConnection(set.url, undefined, 200);
    await waitUntil(async () => redis.up, 15_000);
  }, 60_000);

  afterAll(async () => {
    redis?.close();
    await set?.stop();
  });

  it('a failover announced while a reconnect is asking the sentinels: connected again, commands served', async () => {
    const client = redis.client as Redis;
    const connector = (client as unknown as { connector: { disconnect(): void } }).connector;
    const states: string[] = [];
    const track = (): void => void states.push(client.status);
    client.on('connecting', () => {
      track();
      // What FailoverDetector does on +switch-master: disconnect the connector mid-connect.
      if (states.filter((s) => s === 'connecting').length === 1) connector.disconnect();
    });
    client.on('end', track);
    client.stream.destroy();
    await waitUntil(async () => states.includes('end'), 10_000);
    await waitUntil(async () => redis.up, 10_000);
    expect(await client.ping()).toBe('PONG');
    expect(redis.status()).toMatchObject({ connected: true, reason: undefined });
  });
});
