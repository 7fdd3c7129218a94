/**
 * The replicas' shared steering key (gateway/steer/keys.ts, docs/bandits.md#attribution) when
 * Redis is down while a gateway starts: real gateway processes of two workers each, a real
 * redis-server that only starts on its port later, and the bandit stand-in models of
 * test/helpers/bandit.ts.
 *
 * - gateway A, started while nothing listens on its --redis-url, starts (the wait for the key is
 *   bounded) and serves, signing with a key of its own: feedback sent back to A reaches the arm
 *   that served it and is credited to it once the store answers;
 * - once redis-server starts, A stores the shared key (asked on the connection's ready event),
 *   and a gateway B started afterwards credits A's tokens, and A credits B's;
 * - tokens A signed with its own key before Redis came up still verify on A (and on A only);
 * - a Redis that restarts empty gets the shared key back from the running gateways (each offers
 *   it again on reconnection), so a gateway C started afterwards credits their tokens.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyToken } from '../../../gateway/steer/attribution.js';
import { STEERING_KEY } from '../../../gateway/steer/keys.js';
import type { HttpBackend } from '../../fixtures/http-backend.js';
import { ARMS, ARM_TAG, BANDIT_MANIFEST, armResolves, banditModel, echoedArms, feedback, outcomes, predict, shares, type Prediction } from '../../helpers/bandit.js';
import { poll, startCli, type CliGateway } from '../../helpers/cli.js';
import { startRedis, type TestRedis } from '../../helpers/redis.js';

const DEPLOYMENT = 'models/rec';
/** The bandit's attributionTtl (the default, 1 h): only a check of the token's age. */
const TTL_MS = 3_600_000;
/** Arm c earns 1, the others 0. */
const rewardOf = (arm: string): number => (arm === 'c' ? 1 : 0);

/** The key stored in Redis (a bulk reply: `$64\r\n<hex>\r\n`), or undefined while there is none. */
async function storedKey(redis: TestRedis): Promise<Buffer | undefined> {
  const [head, value] = (await redis.command('GET', STEERING_KEY)).split('\r\n');
  return head?.startsWith('$') && head !== '$-1' && value ? Buffer.from(value, 'hex') : undefined;
}

const count = (predictions: readonly Prediction[]): Record<string, number> => Object.fromEntries(ARMS.map((a) => [a, predictions.filter((p) => p.arm === a).length]));
const sum = (...counts: Record<string, number>[]): Record<string, number> => Object.fromEntries(ARMS.map((a) => [a, counts.reduce((n, c) => n + c[a]!, 0)]));

describe('the shared steering key when Redis is down as a gateway starts', () => {
  let models: Record<string, HttpBackend>;
  let dir: string;
  let redis: TestRedis;
  let a: CliGateway | undefined;
  let b: CliGateway | undefined;
  let c: CliGateway | undefined;
  /** A's predictions while Redis was away: feedback for the first half was sent then, the rest is held back. */
  let early: Prediction[] = [];
  let held: Prediction[] = [];
  /** Rewards credited so far, arm by arm (the store is shared: every gateway's /routes shows them all). */
  let credited: Record<string, number> = { a: 0, b: 0, c: 0 };
  /** Feedback A has credited so far (its `attributed` outcomes). */
  let attributedOnA = 0;

  const start = (): Promise<CliGateway> => startCli(['--manifests', dir, '--workers', '2', ...armResolves(models), '--redis-url', redis.url, '--log-level', 'warn'], { readyWithinMs: 45_000 });

  /** Every model received feedback only for its own predictions, as many as `expected` says (since the last reset). */
  function expectFeedbackAtServingArms(expected: Record<string, number>, label: string): void {
    for (const arm of ARMS) {
      const echoed = echoedArms(models[arm]!);
      expect(
        echoed.filter((x) => x !== arm),
        `${label}: ${arm} received feedback for other arms`,
      ).toEqual([]);
      expect(echoed.length, `${label}: feedback received by ${arm}`).toBe(expected[arm]);
    }
  }

  const resetModels = (): void => {
    for (const m of Object.values(models)) m.requests.length = 0;
  };

  /** Until every arm's rewards in `gw`'s /routes equal `credited`. */
  const rewardsReach = async (gw: CliGateway): Promise<void> => {
    const rewards = async (): Promise<Record<string, number | undefined>> => {
      const s = await shares(gw);
      // No arm at all until the store has answered once.
      return Object.fromEntries(ARMS.map((arm) => [arm, s?.[arm]?.rewards]));
    };
    await poll(`rewards in /routes, expected ${JSON.stringify(credited)}`, rewards, (r) => ARMS.every((arm) => r[arm] === credited[arm]), 30_000);
  };

  /** Until `gw` has credited `n` feedbacks in all. */
  const attributedReach = (gw: CliGateway, name: string, n: number): Promise<number> =>
    poll(
      `feedback credited by ${name}`,
      () => outcomes(gw, 'attributed'),
      (got) => got === n,
      30_000,
    );

  beforeAll(async () => {
    models = Object.fromEntries(await Promise.all(ARMS.map(async (arm) => [arm, await banditModel(arm)] as const)));
    dir = mkdtempSync(join(tmpdir(), 'sgw-key-outage-'));
    writeFileSync(join(dir, 'rec.yaml'), BANDIT_MANIFEST);
    // Its port is chosen; nothing listens on it until restart().
    redis = await startRedis({ down: true });
  });

  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop(), c?.stop()]);
    await Promise.all([...Object.values(models ?? {}).map((m) => m.close()), redis?.stop()]);
    rmSync(dir, { recursive: true, force: true });
  });

  it('a gateway starts without Redis, serves, and credits feedback sent back to it to the arm that served', async () => {
    a = await start();
    // Still nothing on Redis's port: the start did not wait for it.
    await expect(redis.command('PING')).rejects.toThrow();
    for (let i = 0; i < 40; i++) {
      const p = await predict(a, { fresh: true });
      expect(p.header).toMatch(/^1\./);
      expect(p.body.meta.tags?.[ARM_TAG]).toBe(p.header);
      early.push(p);
    }
    // Even shares before any reward: more than one arm served, so "the arm that served" is not a given.
    expect(new Set(early.map((p) => p.arm)).size).toBeGreaterThan(1);
    held = early.slice(20);
    early = early.slice(0, 20);
    for (const p of early) expect(await feedback(a, p.body, rewardOf(p.arm))).toBe(200);
    // A verified its own tokens: each feedback went to the arm that served it, not to a fresh draw.
    expectFeedbackAtServingArms(count(early), 'during the outage');
    for (const bad of ['forged', 'expired', 'unattributed']) expect(await outcomes(a, bad), bad).toBe(0);
    // The rewards wait for the store.
    expect(await outcomes(a, 'attributed')).toBe(0);
  }, 120_000);

  it('once Redis starts, the gateway stores the shared key, and a second gateway credits its tokens (and it the second one’s)', async () => {
    await redis.restart();
    // A asks on the connection's ready event: nobody else is there to store the key.
    const shared = (await poll(
      'the shared key in Redis',
      () => storedKey(redis),
      (k) => k !== undefined,
      30_000,
    ))!;
    // The rewards that waited are credited, each to the arm that served.
    credited = sum(credited, count(early));
    attributedOnA += early.length;
    await attributedReach(a!, 'A', attributedOnA);
    await rewardsReach(a!);
    // A's workers sign with the shared key: several answers in a row, on connections of their own.
    let streak = 0;
    const signedWithShared = async (): Promise<number> => {
      const p = await predict(a!, { fresh: true });
      return (streak = verifyToken(shared, p.header!, DEPLOYMENT, Date.now(), TTL_MS).ok ? streak + 1 : 0);
    };
    await poll('answers of A in a row signed with the shared key', signedWithShared, (n) => n >= 6, 30_000);

    b = await start();
    resetModels();
    const fromA: Prediction[] = [];
    const fromB: Prediction[] = [];
    for (let i = 0; i < 40; i++) {
      // Three of four answered by A with feedback to B; the fourth the other way round.
      const [served, told, list] = i % 4 === 3 ? [b, a!, fromB] : [a!, b, fromA];
      const p = await predict(served, { fresh: true });
      list.push(p);
      expect(await feedback(told, p.body, rewardOf(p.arm))).toBe(200);
    }
    expectFeedbackAtServingArms(count([...fromA, ...fromB]), 'across gateways');
    credited = sum(credited, count(fromA), count(fromB));
    await attributedReach(b!, 'B', fromA.length);
    attributedOnA += fromB.length;
    await attributedReach(a!, 'A', attributedOnA);
    for (const gw of [a!, b]) for (const bad of ['forged', 'expired', 'unattributed', 'duplicate']) expect(await outcomes(gw, bad), bad).toBe(0);
    await rewardsReach(a!);
    await rewardsReach(b);
  }, 180_000);

  it('tokens signed before Redis came up still verify on the gateway that signed them, and only there', async () => {
    // B never knew A's own key: forged there (forwarded as drawn, nothing credited).
    for (const p of held) expect(await feedback(b!, p.body, rewardOf(p.arm))).toBe(200);
    expect(await outcomes(b!, 'forged')).toBe(held.length);
    resetModels();
    // A kept its own key as a second one: each credited to the arm that served it.
    for (const p of held) expect(await feedback(a!, p.body, rewardOf(p.arm))).toBe(200);
    expectFeedbackAtServingArms(count(held), 'held back');
    credited = sum(credited, count(held));
    attributedOnA += held.length;
    await attributedReach(a!, 'A', attributedOnA);
    expect(await outcomes(a!, 'forged')).toBe(0);
    await rewardsReach(a!);
    await rewardsReach(b!);
  }, 120_000);

  it('a Redis that restarts empty gets the same shared key back, and a gateway started after it credits the running ones’ tokens', async () => {
    const shared = (await storedKey(redis))!;
    await redis.kill();
    await redis.restart();
    // A and B offer their key again on reconnection (SET NX): the first to be back stores it.
    const back = await poll(
      'the shared key back in Redis',
      () => storedKey(redis),
      (k) => k !== undefined,
      30_000,
    );
    expect(back!.equals(shared)).toBe(true);
    c = await start();
    resetModels();
    const served: Prediction[] = [];
    for (let i = 0; i < 20; i++) {
      const p = await predict(i % 2 === 0 ? a! : b!, { fresh: true });
      served.push(p);
      expect(await feedback(c, p.body, rewardOf(p.arm))).toBe(200);
    }
    expectFeedbackAtServingArms(count(served), 'to a gateway started after Redis restarted');
    await attributedReach(c, 'C', served.length);
    for (const bad of ['forged', 'expired', 'unattributed', 'duplicate']) expect(await outcomes(c, bad), bad).toBe(0);
  }, 180_000);
});
