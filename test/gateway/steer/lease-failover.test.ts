/**
 * The rollout lease through a Sentinel failover (gateway/steer/controller.ts, store.ts): two
 * controllers, as two replicas of the gateway run them, on a real Sentinel set (a primary, two
 * replicas, three sentinels), driven tick by tick on an injected clock.
 *
 * Redis replicates asynchronously: a lease the primary took and no replica had yet is gone once a
 * replica is promoted, and the other controller takes it there while the first still believes it
 * holds it. The design bounds that, it does not exclude it (docs/rollouts.md#replicas-and-the-store):
 * a holder believes for the lease's time from before its last renewal was sent, by its own clock, so
 * never longer than the store kept the lease; and what it decides is fenced by the store (a state
 * write checks the holder and the epoch in one script), so each step is taken once.
 */
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisConnection } from '../../../gateway/auth/redis.js';
import { SteerController, type SteerPlanes } from '../../../gateway/steer/controller.js';
import { RedisSteerStore } from '../../../gateway/steer/store.js';
import { ROLLOUT_ANNOTATION } from '../../../routing/steering/rollout/config.js';
import type { SeldonDeployment } from '../../../routing/seldon/deployment.js';
import { buildTable } from '../../../routing/table/builder.js';
import { DEFAULT_COMPILE_OPTIONS } from '../../../routing/types.js';
import { redisCli, startSentinelSet, waitFor, type SentinelSet } from '../../helpers/redis-topology.js';

const DEPLOYMENT = 'models/iris';
const LEASE_KEY = `seldon-gateway:steer:{${DEPLOYMENT}}:lease`;
/** Long against the test's real time: the store never lets the lease lapse by itself here. */
const LEASE_MS = 60_000;
/** How long a lease write waits for a replica's acknowledgement (WAIT's timeout). */
const ACK_MS = 200;

const TABLE = buildTable(
  [
    {
      apiVersion: 'machinelearning.seldon.io/v1',
      kind: 'SeldonDeployment',
      metadata: { name: 'iris', namespace: 'models', annotations: { [ROLLOUT_ANNOTATION]: 'canary: v2\nsteps: [10, 50, 100]\ninterval: 1s\nminRequests: 15' } },
      spec: { predictors: ['main', 'v2'].map((p) => ({ name: p, graph: { name: 'model', implementation: 'SKLEARN_SERVER', modelUri: `gs://models/iris/${p}` } })) },
    } as SeldonDeployment,
  ],
  DEFAULT_COMPILE_OPTIONS,
);
/** No data planes: nothing counted, the shares applied nowhere. */
const PLANES: SteerPlanes = { takeCounts: async () => ({}), steer: () => undefined };

let set: SentinelSet;
const connections: RedisConnection[] = [];
/** Both replicas' clock (ms): it moves only when a test moves it. */
let clock = 1_000_000;

/** A replica's controller: its own connection to the set, the shared clock. */
async function replica(): Promise<{ controller: SteerController; connection: RedisConnection; leads: () => boolean }> {
  const connection = new RedisConnection(set.url, undefined, ACK_MS);
  connections.push(connection);
  await waitFor('the connection ready', async () => (connection.up ? true : undefined));
  const controller = new SteerController({
    store: new RedisSteerStore(connection),
    planes: PLANES,
    table: () => TABLE,
    log: pino({ level: 'silent' }),
    leaseMs: LEASE_MS,
    storeTimeoutMs: 5_000,
    now: () => clock,
  });
  const leads = (): boolean => controller.rolloutViews().find((v) => v.deployment === DEPLOYMENT)!.leader;
  return { controller, connection, leads };
}

/**
 * A tick that reached the store. A sentinel's late word of the switch can make a connection reconnect after both
 * were up: a tick then finds the store unreachable (and holds nothing, as it must), and the next one reaches it.
 */
async function reachingTick(controller: SteerController): Promise<void> {
  await waitFor('a tick that reaches the store', async () => {
    await controller.tick();
    return controller.rolloutViews().find((v) => v.deployment === DEPLOYMENT)!.storeUnreachable ? undefined : true;
  });
}

beforeAll(async () => {
  set = await startSentinelSet();
}, 60_000);

afterAll(async () => {
  for (const c of connections) c.close();
  await set?.stop();
});

describe('the rollout lease through a Sentinel failover', () => {
  it('a lease only the old primary had: after the promotion the other replica takes it, the first believes it holds it for at most the lease time, and only the holder writes a step', async () => {
    const a = await replica();
    const b = await replica();
    const oldPort = set.primary.port;
    // The replicas stall and the primary drops its links to them: what it writes now, no replica will have.
    for (const r of set.replicas) r.pause();
    const askedAt = clock;
    try {
      await redisCli(oldPort, 'CLIENT', 'KILL', 'TYPE', 'replica');
      await a.controller.tick();
      // The primary took A's lease, acknowledged by no replica (counted all the same), and dies with it.
      expect(await redisCli(oldPort, 'GET', LEASE_KEY)).toMatch(/:/);
      expect(a.leads()).toBe(true);
      await set.primary.kill();
    } finally {
      for (const r of set.replicas) r.resume();
    }
    const newPort = await set.waitForPromotion(oldPort);
    // Lost with the old primary: the promoted replica never had it, and B takes it there.
    expect(await redisCli(newPort, 'GET', LEASE_KEY)).toBe('');
    await waitFor('both controllers on the new primary', async () => (a.connection.up && b.connection.up ? true : undefined));
    await reachingTick(b.controller);
    const stored = await redisCli(newPort, 'GET', `seldon-gateway:steer:{${DEPLOYMENT}}:${b.controller.rolloutViews()[0]!.run}:state`);
    // The window the design allows: both believe, A on the lease the failover lost.
    expect([a.leads(), b.leads()]).toEqual([true, true]);
    // A's belief ends the lease time after it sent that renewal, by its own clock, whatever it hears.
    clock = askedAt + LEASE_MS - 1;
    expect(a.leads()).toBe(true);
    clock = askedAt + LEASE_MS;
    expect(a.leads()).toBe(false);
    // A's next tick hears the truth: B's lease, so no write of A's; the stored state is B's first (epoch 1).
    await reachingTick(a.controller);
    expect(a.leads()).toBe(false);
    expect(stored).toMatch(/^1\|/);
    expect(await redisCli(newPort, 'GET', `seldon-gateway:steer:{${DEPLOYMENT}}:${b.controller.rolloutViews()[0]!.run}:state`)).toBe(stored);
    // B renews, and holds it alone.
    await reachingTick(b.controller);
    expect([a.leads(), b.leads()]).toEqual([false, true]);
  }, 90_000);

  it('a holder acts for the lease time from before it sent its last renewal, by its own clock, not until the store says otherwise', async () => {
    const c = await replica();
    const d = await replica();
    // Whoever held it before (the test above) lets it go: a fresh lease for C.
    await redisCli((await set.primaryPort())!, 'DEL', LEASE_KEY);
    const renewedAt = clock;
    await reachingTick(c.controller);
    await reachingTick(d.controller);
    expect([c.leads(), d.leads()]).toEqual([true, false]);
    clock = renewedAt + LEASE_MS - 1;
    expect(c.leads()).toBe(true);
    // The store still names C (its TTL is Redis's, and real time has hardly moved): C stops anyway.
    clock = renewedAt + LEASE_MS;
    expect(c.leads()).toBe(false);
    expect(await redisCli((await set.primaryPort())!, 'GET', LEASE_KEY)).toMatch(/:/);
    // Renewed, it holds it again for a lease's time from this renewal.
    await reachingTick(c.controller);
    expect([c.leads(), d.leads()]).toEqual([true, false]);
    clock += LEASE_MS;
    expect(c.leads()).toBe(false);
  }, 90_000);
});
