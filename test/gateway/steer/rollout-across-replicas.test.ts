/**
 * Rollouts end to end, as a platform team runs them: two gateway processes (two workers each)
 * sharing a real redis-server, two stand-in models whose error rate can be switched mid-run, and
 * traffic through both gateways. What is asserted is what the models received and what every
 * replica's /routes says:
 *
 * - a good canary advances step by step on both replicas and is promoted; every step is taken once;
 * - a canary whose errors jump is rolled back, and from then on no request reaches it;
 * - with Redis paused no step is taken; killing the lease holder skips no step and repeats none;
 * - a Redis that restarts empty mid-run does not send the run back to its first step (it goes on from
 *   the state a replica had).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startHttpBackend, type HttpBackend } from '../../fixtures/http-backend.js';
import { startCli, type CliGateway } from '../../helpers/cli.js';
import { startRedis, type TestRedis } from '../../helpers/redis.js';
import { rolloutManifest, rolloutOf, stepsOf } from '../../helpers/rollout.js';
import { waitUntil } from '../../helpers/wait.js';

/** The rollout every test here runs, by three steps unless told otherwise. */
const manifest = (canaryUri: string, steps: readonly number[] = [20, 50, 100]): string => rolloutManifest(canaryUri, { steps, minRequests: 30, maxLatencyShift: '200%' });

/** A model that answers 200, or 500 for every request while `failing`. */
function setFailing(model: HttpBackend, failing: boolean): void {
  model.setHandler((_req, res) => {
    res.writeHead(failing ? 500 : 200, { 'content-type': 'application/json' });
    res.end(failing ? '{"status":{"code":500,"info":"boom","status":"FAILURE"}}' : '{"data":{"ndarray":[[1]]}}');
  });
}

/** Requests spread over the gateways, `perSecond` of them, until `stop()`; counts the answers by status. */
function traffic(gateways: () => CliGateway[], perSecond: number): { stop(): Promise<void>; statuses: Map<number, number> } {
  const statuses = new Map<number, number>();
  let running = true;
  let n = 0;
  const one = async (): Promise<void> => {
    const list = gateways();
    const gw = list[n++ % list.length]!;
    try {
      const r = await request(`http://127.0.0.1:${gw.port}/seldon/models/iris/api/v1.0/predictions`, {
        method: 'POST',
        body: '{"data":{"ndarray":[[1]]}}',
        headers: { 'content-type': 'application/json' },
        headersTimeout: 5000,
        bodyTimeout: 5000,
      });
      await r.body.dump();
      statuses.set(r.statusCode, (statuses.get(r.statusCode) ?? 0) + 1);
    } catch {
      statuses.set(0, (statuses.get(0) ?? 0) + 1);
    }
  };
  const loop = (async () => {
    const started = Date.now();
    // Bounded: at most ten minutes of traffic whatever happens.
    while (running && Date.now() - started < 600_000) {
      const t0 = Date.now();
      await Promise.all(Array.from({ length: Math.ceil(perSecond / 10) }, one));
      const left = 100 - (Date.now() - t0);
      // The fixed rate itself: each tenth of a second's requests, then the rest of that tenth.
      if (left > 0) await new Promise((r) => setTimeout(r, left));
    }
  })();
  return {
    statuses,
    async stop() {
      running = false;
      await loop;
    },
  };
}

describe('rollouts across replicas: two gateways, two workers each, one redis-server', () => {
  let redis: TestRedis;
  let main: HttpBackend;
  let canary: HttpBackend;
  let dir: string;
  let gateways: CliGateway[] = [];

  const start = (): Promise<CliGateway> =>
    startCli(
      [
        '--manifests',
        dir,
        '--workers',
        '2',
        '--redis-url',
        redis.url,
        '--resolve',
        `iris-main.models:8000=127.0.0.1:${main.port}`,
        '--resolve',
        `iris-v2.models:8000=127.0.0.1:${canary.port}`,
        '--log-level',
        'info',
      ],
      { readyWithinMs: 30_000 },
    );

  beforeAll(async () => {
    redis = await startRedis();
    main = await startHttpBackend({ name: 'main' });
    canary = await startHttpBackend({ name: 'v2' });
    setFailing(main, false);
    setFailing(canary, false);
    dir = mkdtempSync(join(tmpdir(), 'sgw-rollout-'));
  });

  afterEach(async () => {
    await Promise.all(gateways.map((g) => g.stop()));
    gateways = [];
  });

  afterAll(async () => {
    await Promise.all([main?.close(), canary?.close(), redis?.stop()]);
    rmSync(dir, { recursive: true, force: true });
  });

  it('a good canary advances one step at a time on both replicas and is promoted; every step is taken once', async () => {
    writeFileSync(join(dir, 'iris.yaml'), manifest('gs://models/iris/v2-good'));
    gateways = [await start(), await start()];
    const load = traffic(() => gateways, 150);
    try {
      await waitUntil(async () => (await rolloutOf(gateways[0]!))?.phase === 'Promoted', 90_000);
      await waitUntil(async () => (await rolloutOf(gateways[1]!))?.phase === 'Promoted', 10_000);
    } finally {
      await load.stop();
    }
    const r = (await rolloutOf(gateways[0]!))!;
    const steps = stepsOf(r);
    expect(steps).toEqual(['RolloutStarted 20', 'RolloutAdvanced 50', 'RolloutPromoted 100']);
    expect(r.weight).toBe(100);
    // Both replicas read one state; one of them decided.
    const other = (await rolloutOf(gateways[1]!))!;
    expect(other.run).toBe(r.run);
    expect([r.leader, other.leader].filter(Boolean)).toHaveLength(1);
    expect(load.statuses.get(200)).toBeGreaterThan(0);
    expect([...load.statuses.keys()]).toEqual([200]);
  }, 120_000);

  it('a canary whose errors jump is rolled back, and within 1.5 s of the decision no request reaches it', async () => {
    writeFileSync(join(dir, 'iris.yaml'), manifest('gs://models/iris/v2-bad'));
    gateways = [await start(), await start()];
    const load = traffic(() => gateways, 150);
    try {
      // Once the canary has live traffic, it starts failing every request.
      await waitUntil(async () => ((await rolloutOf(gateways[0]!))?.weight ?? 0) > 0, 60_000);
      setFailing(canary, true);
      await waitUntil(async () => (await rolloutOf(gateways[0]!))?.phase === 'RolledBack', 30_000);
      const rolledBackAt = Date.now();
      await waitUntil(async () => (await rolloutOf(gateways[1]!))?.phase === 'RolledBack', 5_000);
      const seen = canary.requests.length;
      // Wait until plenty of requests were sent after the decision had reached every worker.
      await waitUntil(async () => main.requests.filter((q) => q.receivedAt > rolledBackAt + 1500).length >= 200, 30_000);
      const late = canary.requests.filter((q) => q.receivedAt > rolledBackAt + 1500);
      expect(late).toHaveLength(0);
      expect(canary.requests.length - seen).toBeLessThan(150);
    } finally {
      await load.stop();
      setFailing(canary, false);
    }
    const r = (await rolloutOf(gateways[0]!))!;
    const back = r.transitions.find((t) => t.kind === 'RolloutRolledBack')!;
    expect(back.reason).toMatch(/error/i);
    expect(r.weight).toBe(0);
  }, 120_000);

  it('no step is taken while Redis is paused, and killing the lease holder skips no step and repeats none', async () => {
    writeFileSync(join(dir, 'iris.yaml'), manifest('gs://models/iris/v2-failover', [10, 20, 30, 40, 50, 100]));
    gateways = [await start(), await start()];
    const load = traffic(() => gateways, 150);
    try {
      await waitUntil(async () => ((await rolloutOf(gateways[0]!))?.step ?? -1) >= 1, 60_000);
      // Paused: the state read before and after the pause is the same step.
      const pausedAt = Date.now();
      await redis.command('CLIENT', 'PAUSE', '3000', 'ALL');
      // Redis answers again once the pause is over.
      await waitUntil(
        () =>
          redis.command('PING').then(
            () => true,
            () => false,
          ),
        10_000,
      );
      const resumedAt = Date.now();
      expect(resumedAt - pausedAt).toBeGreaterThanOrEqual(2900);
      await waitUntil(async () => ((await rolloutOf(gateways[0]!))?.transitions.length ?? 0) > 0, 10_000);
      const after = (await rolloutOf(gateways[0]!))!;
      // Transitions carry the store's clock (Redis TIME, this machine's clock): none inside the pause.
      const stepsDuringPause = after.transitions.filter((t) => (t.kind === 'RolloutAdvanced' || t.kind === 'RolloutPromoted') && t.at > pausedAt + 50 && t.at < resumedAt - 50);
      expect(stepsDuringPause).toEqual([]);
      // Kill the replica that holds the lease (once one holds it again after the pause); the other takes over.
      await waitUntil(async () => (await Promise.all(gateways.map(rolloutOf))).some((s) => s?.leader), 15_000);
      const states = await Promise.all(gateways.map(rolloutOf));
      const holder = states.findIndex((s) => s?.leader);
      expect(holder).toBeGreaterThanOrEqual(0);
      gateways[holder]!.child.kill('SIGKILL');
      const survivor = gateways[1 - holder]!;
      gateways = [survivor];
      await waitUntil(async () => (await rolloutOf(survivor))?.phase === 'Promoted', 90_000);
    } finally {
      await load.stop();
    }
    const r = (await rolloutOf(gateways[0]!))!;
    const weights = r.transitions.filter((t) => ['RolloutStarted', 'RolloutAdvanced', 'RolloutPromoted'].includes(t.kind)).map((t) => t.weight);
    expect(weights).toEqual([10, 20, 30, 40, 50, 100]);
  }, 180_000);

  it('a Redis that restarts empty mid-run: the run goes on from the step it had reached, not from the first', async () => {
    writeFileSync(join(dir, 'iris.yaml'), manifest('gs://models/iris/v2-amnesia', [10, 20, 30, 40, 50, 100]));
    gateways = [await start(), await start()];
    const load = traffic(() => gateways, 150);
    /** The steps each replica showed once Redis was back. */
    const after: number[] = [];
    let before: number[] = [];
    let startedAt: number | undefined;
    try {
      // Both replicas past the second step (a follower shows what it read within the last second).
      await waitUntil(async () => {
        before = (await Promise.all(gateways.map(rolloutOf))).map((s) => s?.step ?? -1);
        return before.every((s) => s >= 2);
      }, 60_000);
      startedAt = (await rolloutOf(gateways[0]!))!.transitions.find((t) => t.kind === 'RolloutStarted')!.at;
      await redis.kill();
      await redis.restart();
      await waitUntil(async () => {
        const states = await Promise.all(gateways.map(rolloutOf));
        for (const s of states) if (s) after.push(s.step);
        return states.every((s) => s?.phase === 'Promoted');
      }, 90_000);
    } finally {
      await load.stop();
    }
    // The run went on from a state a replica had (the leader's, or a follower's at most a decision behind),
    // never from its first step: nothing shown afterwards is under what both showed before.
    expect(Math.min(...after)).toBeGreaterThanOrEqual(Math.min(...before));
    const r = (await rolloutOf(gateways[0]!))!;
    // One run, started once, before the restart: its history goes on.
    expect(r.transitions.filter((t) => t.kind === 'RolloutStarted').map((t) => t.at)).toEqual([startedAt]);
    expect(r.transitions.filter((t) => ['RolloutStarted', 'RolloutAdvanced', 'RolloutPromoted'].includes(t.kind)).map((t) => t.weight)).toEqual([10, 20, 30, 40, 50, 100]);
  }, 180_000);
});
