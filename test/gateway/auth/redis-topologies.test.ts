/**
 * The shared store on the Redis platform teams run (docs/redis.md): two gateway processes (the CLI,
 * two workers each) on a real Sentinel set (a primary, two replicas, three sentinels) and on a real
 * Redis Cluster (three primaries, three replicas), on 127.0.0.1.
 *
 * - a rate limit of 10 per minute is exact across both gateways;
 * - a token issued through one gateway is accepted by the other; a bandit token signed by one is
 *   credited by the other;
 * - on the cluster, the keys of 12 deployments sit on at least 2 of the 3 primaries and no script
 *   fails (a CROSSSLOT error would send the limits to their fallback);
 * - the primary SIGKILLed under steady traffic: no prediction fails, the limits fall back and are
 *   shared (exact) again within 15 s of the promotion, the tokens, revocations and rewards written
 *   2 s before are still there, and a rollout under way takes every step once, its lease moving at
 *   most once (both gateways may say they hold it, for less than the lease's 5 s, when the failover
 *   lost a lease write: test/gateway/steer/lease-failover.test.ts). The timings are printed (`failover timings`);
 * - a URL naming no sentinel that answers, an unknown master, or a cluster seed that is down: the
 *   gateway starts in fallback and says why on /readyz and the admin page; routes that need no Redis serve.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHttpBackend, type HttpBackend } from '../../fixtures/http-backend.js';
import { ARMS, BANDIT_MANIFEST, armResolves, banditModel, feedback, outcomes, predict } from '../../helpers/bandit.js';
import { readyz, startCli, type CliGateway } from '../../helpers/cli.js';
import { sdep } from '../../helpers/gateway.js';
import { metric } from '../../helpers/metrics.js';
import { freePort } from '../../helpers/net.js';
import { bearer, fetchToken } from '../../helpers/oauth.js';
import { predictionStatus } from '../../helpers/predict.js';
import { rolloutManifest, rolloutOf, stepsOf } from '../../helpers/rollout.js';
import { monitor, redisCli, startRedisCluster, startSentinelSet, waitFor, type RedisClusterSet, type SentinelSet } from '../../helpers/redis-topology.js';
import { sleep, waitUntil } from '../../helpers/wait.js';

const PLAIN = ['open', 'limited', 'limited-after', 'steady', 'secure', 'temp', 'iris', ...Array.from({ length: 12 }, (_, i) => `d${String(i + 1).padStart(2, '0')}`)];

function manifests(dir: string): void {
  const write = (name: string, text: string): void => writeFileSync(join(dir, `${name}.yaml`), text);
  const pred = { predictors: [{ name: 'main' }] };
  write('open', sdep('open', 'models', pred));
  write('limited', sdep('limited', 'models', pred, { 'seldon.io/gateway-rate-limit': '10/m' }));
  write('limited-after', sdep('limited-after', 'models', pred, { 'seldon.io/gateway-rate-limit': '10/m' }));
  write('steady', sdep('steady', 'models', pred, { 'seldon.io/gateway-rate-limit': '6000/m' }));
  write('secure', sdep('secure', 'models', { oauth_key: 'securekey', oauth_secret: 'securesecret', ...pred }, { 'seldon.io/gateway-auth': 'oauth' }));
  write('temp', sdep('temp', 'models', { oauth_key: 'tempkey', oauth_secret: 'tempsecret', ...pred }, { 'seldon.io/gateway-auth': 'oauth' }));
  // 2 a minute: a bucket's key lives a minute, long enough to be found.
  for (const d of PLAIN.filter((n) => /^d\d\d$/.test(n))) write(d, sdep(d, 'models', pred, { 'seldon.io/gateway-rate-limit': '2/m' }));
  write('rec', BANDIT_MANIFEST);
  write('iris', rolloutManifest('gs://models/iris/v2', { steps: [10, 25, 50, 75, 100], minRequests: 15, maxLatencyShift: '400%', rateLimit: '6000/m' }));
}

const path = (d: string): string => `/seldon/models/${d}/api/v1.0/predictions`;

const post = predictionStatus;

/** `n` requests to deployment `d`, alternating between the gateways, each on its own connection (so every worker takes some). */
async function burst(gateways: CliGateway[], d: string, n: number): Promise<Map<number, number>> {
  const out = new Map<number, number>();
  for (let i = 0; i < n; i++) {
    const s = await post(gateways[i % gateways.length]!, path(d));
    out.set(s, (out.get(s) ?? 0) + 1);
  }
  return out;
}

async function redisStatus(gw: CliGateway): Promise<{ topology: string; connected: boolean; primary?: string; reason?: string; url: string }> {
  const r = await readyz(gw.admin);
  return (JSON.parse(r.body) as { redis: never }).redis;
}

const fallbackActive = async (gateways: CliGateway[]): Promise<number> => {
  let n = 0;
  for (const g of gateways) n += await metric(`http://127.0.0.1:${g.admin}`, 'seldon_gateway_rate_limit_fallback_active');
  return n;
};
const fallbackTotal = async (gateways: CliGateway[]): Promise<number> => {
  let n = 0;
  for (const g of gateways) {
    const text = await (await request(`http://127.0.0.1:${g.admin}/metrics`)).body.text();
    for (const line of text.split('\n')) if (line.startsWith('seldon_gateway_rate_limit_fallback_total{')) n += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return n;
};

/** Steady predictions through both gateways (the limited, the OAuth-guarded, the bandit and the rollout deployments) until stop(). */
function steadyTraffic(gateways: CliGateway[], token: string): { stop(): Promise<void>; failed: string[]; sent: () => number } {
  const failed: string[] = [];
  let sent = 0;
  let running = true;
  const targets: [string, Record<string, string>][] = [
    [path('steady'), {}],
    [path('secure'), bearer(token)],
    [path('rec'), {}],
    [path('iris'), {}],
    [path('iris'), {}],
    [path('iris'), {}],
  ];
  let n = 0;
  const loop = (async () => {
    const started = Date.now();
    // Bounded: three minutes at most whatever happens.
    while (running && Date.now() - started < 180_000) {
      const t0 = Date.now();
      await Promise.all(
        Array.from({ length: 6 }, async () => {
          const [p, h] = targets[n % targets.length]!;
          const gw = gateways[Math.floor(n / targets.length) % gateways.length]!;
          n++;
          const s = await post(gw, p, h);
          sent++;
          if (s !== 200) failed.push(`${new Date().toISOString()} ${p} → ${s}`);
        }),
      );
      const left = 100 - (Date.now() - t0);
      if (left > 0) await sleep(left);
    }
  })();
  return {
    failed,
    sent: () => sent,
    async stop() {
      running = false;
      await loop;
    },
  };
}

/** Who says it holds the rollout's lease, sampled until stop(): each change of holders (`0`, `1`, `0+1`) and when it was seen, gaps left out. */
function watchLease(gateways: CliGateway[]): { stop(): Promise<{ who: string; at: number }[]> } {
  const holders: { who: string; at: number }[] = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      const leaders = await Promise.all(gateways.map(async (g, i) => ((await rolloutOf(g).catch(() => undefined))?.leader ? String(i) : '')));
      const now = leaders.filter(Boolean).join('+');
      if (now !== '' && holders[holders.length - 1]?.who !== now) holders.push({ who: now, at: Date.now() });
      await sleep(200);
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return holders;
    },
  };
}

interface Store {
  /** One command to whichever node holds `key` now (the primary). */
  command(key: string, ...args: string[]): Promise<string>;
  /** Keys matching `pattern` on every primary, by primary port. */
  scan(pattern: string): Promise<Map<number, string[]>>;
}

function topologySuite(kind: 'sentinel' | 'cluster'): void {
  describe(`two gateways (two workers each) on a Redis ${kind === 'sentinel' ? 'Sentinel set' : 'Cluster'}`, () => {
    let sentinel: SentinelSet | undefined;
    let cluster: RedisClusterSet | undefined;
    let url: string;
    let store: Store;
    let model: HttpBackend;
    /** Behind the 10-per-minute deployments alone: what it received is what the limits let through. */
    let limitedModel: HttpBackend;
    let arms: Record<string, HttpBackend>;
    let dir: string;
    let gateways: CliGateway[] = [];

    const start = (redisUrl: string): Promise<CliGateway> =>
      startCli(
        [
          '--manifests',
          dir,
          '--workers',
          '2',
          '--redis-url',
          redisUrl,
          ...PLAIN.flatMap((d) => ['--resolve', `${d}-main.models:8000=127.0.0.1:${d.startsWith('limited') ? limitedModel.port : model.port}`]),
          '--resolve',
          `iris-v2.models:8000=127.0.0.1:${model.port}`,
          ...armResolves(arms),
          '--log-level',
          'info',
        ],
        { readyWithinMs: 45_000 },
      );

    beforeAll(async () => {
      dir = mkdtempSync(join(tmpdir(), `sgw-${kind}-`));
      manifests(dir);
      model = await startHttpBackend({ name: 'model' });
      limitedModel = await startHttpBackend({ name: 'limited' });
      arms = Object.fromEntries(await Promise.all(ARMS.map(async (a) => [a, await banditModel(a)] as const)));
      if (kind === 'sentinel') {
        sentinel = await startSentinelSet();
        url = sentinel.url;
        store = {
          command: async (_key, ...args) => redisCli((await sentinel!.primaryPort())!, ...args),
          scan: async (pattern) => {
            const port = (await sentinel!.primaryPort())!;
            return new Map([[port, (await redisCli(port, '--scan', '--pattern', pattern)).split('\n').filter(Boolean)]]);
          },
        };
      } else {
        cluster = await startRedisCluster();
        url = cluster.url;
        store = {
          command: async (key, ...args) => redisCli(await cluster!.primaryOf(key), ...args),
          scan: async (pattern) => {
            const out = new Map<number, string[]>();
            for (const port of (await cluster!.primaries()).keys()) out.set(port, (await redisCli(port, '--scan', '--pattern', pattern)).split('\n').filter(Boolean));
            return out;
          },
        };
      }
      gateways = await Promise.all([start(url), start(url)]);
      // Both are connected to the primary and have the shared steering key.
      await waitUntil(async () => (await Promise.all(gateways.map(redisStatus))).every((s) => s.connected), 30_000);
    }, 180_000);

    afterAll(async () => {
      await Promise.all(gateways.map((g) => g.stop()));
      await Promise.all([model?.close(), limitedModel?.close(), ...Object.values(arms ?? {}).map((m) => m.close()), sentinel?.stop(), cluster?.stop()]);
      rmSync(dir, { recursive: true, force: true });
    }, 60_000);

    it('/readyz names the topology and the primary in use; the admin page too', async () => {
      for (const g of gateways) {
        const s = await redisStatus(g);
        expect(s.topology).toBe(kind);
        expect(s.connected).toBe(true);
        if (sentinel) expect(s.primary).toBe(`127.0.0.1:${await sentinel.primaryPort()}`);
        else expect(s.primary!.split(',').sort()).toEqual([...(await cluster!.primaries()).keys()].map((p) => `127.0.0.1:${p}`).sort());
      }
      const page = await (await request(`http://127.0.0.1:${gateways[0]!.admin}/`)).body.text();
      expect(page).toMatch(new RegExp(`redis ${kind} <code>[^<]+</code>, primary <b>127\\.0\\.0\\.1:\\d+`));
    });

    it('a rate limit of 10 per minute is exact across both gateways, one script (one round trip) per request', async () => {
      const bucket = 'seldon-gateway:ratelimit:{models/limited}:';
      const watch = await monitor(sentinel ? (await sentinel.primaryPort())! : await cluster!.primaryOf(bucket));
      const before = limitedModel.requests.length;
      const statuses = await burst(gateways, 'limited', 30);
      // What the gateways sent (MONITOR also shows the commands a script runs, as client "lua").
      const seen = (await watch.stop()).filter((l) => l.includes(bucket) && !l.includes(' lua] '));
      expect(Object.fromEntries(statuses)).toEqual({ 200: 10, 429: 20 });
      expect(limitedModel.requests.length - before).toBe(10);
      // One command per request: the script (EVAL the first time on a connection, EVALSHA after).
      expect(seen).toHaveLength(30);
      for (const l of seen) expect(l).toMatch(/"(evalsha|eval)"/);
    });

    it('a token issued through one gateway is accepted by the other; a bandit token signed by one is credited by the other', async () => {
      const t = await fetchToken(`http://127.0.0.1:${gateways[0]!.port}`, 'securekeymodels', 'securesecret');
      expect(await post(gateways[1]!, path('secure'), bearer(t))).toBe(200);
      expect(await post(gateways[1]!, path('secure'), bearer('not-a-token'))).toBe(401);
      const attributed = await outcomes(gateways[1]!, 'attributed');
      const p = await predict(gateways[0]!);
      expect(await feedback(gateways[1]!, p.body, 1)).toBe(200);
      await waitUntil(async () => (await outcomes(gateways[1]!, 'attributed')) === attributed + 1, 10_000);
      expect(await outcomes(gateways[1]!, 'forged')).toBe(0);
    });

    if (kind === 'cluster') {
      it('the keys of 12 deployments spread over the primaries, and no script fails (CROSSSLOT)', async () => {
        const ds = PLAIN.filter((n) => /^d\d\d$/.test(n));
        for (const d of ds) expect(Object.fromEntries(await burst(gateways, d, 2))).toEqual({ 200: 2 });
        const owners = new Set<number>();
        for (const d of ds) {
          const found = [...(await store.scan(`seldon-gateway:ratelimit:{models/${d}}:*`))].filter(([, keys]) => keys.length > 0);
          expect(found, d).toHaveLength(1);
          owners.add(found[0]![0]);
        }
        expect(owners.size).toBeGreaterThanOrEqual(2);
        // Every script ran in Redis: nothing fell back, no CROSSSLOT anywhere.
        expect(await fallbackTotal(gateways)).toBe(0);
        for (const g of gateways) expect(g.output()).not.toContain('CROSSSLOT');
      });
    }

    it('the primary killed under steady traffic: no prediction fails, limits shared again within 15 s of the promotion, nothing written 2 s before is lost, the rollout takes every step once', async () => {
      // Written before: a token, a revocation, rewards.
      const token = await fetchToken(`http://127.0.0.1:${gateways[0]!.port}`, 'securekeymodels', 'securesecret');
      const revoked = await fetchToken(`http://127.0.0.1:${gateways[1]!.port}`, 'tempkeymodels', 'tempsecret');
      const keyOf = (t: string): string => `seldon-gateway:oauth:token:${createHash('sha256').update(t).digest('base64url')}`;
      const revokedKey = keyOf(revoked);
      rmSync(join(dir, 'temp.yaml'));
      await waitFor('the revocation in the store', async () => ((await store.command(revokedKey, 'GET', revokedKey)).includes('"revoked":true') ? true : undefined));
      const creditedBefore = (await outcomes(gateways[0]!, 'attributed')) + (await outcomes(gateways[1]!, 'attributed'));
      for (let i = 0; i < 20; i++) {
        const p = await predict(gateways[i % 2]!);
        expect(await feedback(gateways[(i + 1) % 2]!, p.body, 1)).toBe(200);
      }
      await waitUntil(async () => (await outcomes(gateways[0]!, 'attributed')) + (await outcomes(gateways[1]!, 'attributed')) === creditedBefore + 20, 10_000);
      const armsKey = async (): Promise<string> => [...(await store.scan('seldon-gateway:steer:{models/rec}:*:arms')).values()].flat()[0]!;
      const rewardsIn = async (): Promise<number> => {
        const key = await armsKey();
        const fields = (await store.command(key, 'HGETALL', key)).split('\n');
        let n = 0;
        for (let i = 0; i + 1 < fields.length; i += 2) if (fields[i]!.endsWith(':n')) n += Number(fields[i + 1]);
        return n;
      };
      const rewardsBefore = await rewardsIn();
      expect(rewardsBefore).toBeGreaterThanOrEqual(20);

      const load = steadyTraffic(gateways, token);
      const lease = watchLease(gateways);
      let timings: Record<string, number> | undefined;
      try {
        // The rollout under way (past its first step), and the writes above at least 2 s old.
        await waitUntil(async () => ((await rolloutOf(gateways[0]!))?.weight ?? 0) >= 25, 90_000);
        const fallbacksBefore = await fallbackTotal(gateways);
        await sleep(2000); // the requirement's age of the writes, not a wait for an event
        let oldPort: number;
        const killedAt = Date.now();
        if (sentinel) {
          oldPort = sentinel.primary.port;
          await sentinel.primary.kill();
        } else {
          // The primary holding the rollout's state, its lease and its rate limit (one slot: {models/iris}); the
          // others checked after (rewards, tokens) are wherever their slots put them.
          oldPort = await cluster!.primaryOf('seldon-gateway:steer:{models/iris}:lease');
          await cluster!.nodes.find((n) => n.port === oldPort)!.kill();
        }
        const fellBack = waitFor('a limit decided locally', async () => ((await fallbackTotal(gateways)) > fallbacksBefore ? Date.now() : undefined), 30_000);
        if (sentinel) await sentinel.waitForPromotion(oldPort);
        else await cluster!.waitForPromotion(oldPort);
        const promotedAt = Date.now();
        const fellBackAt = await fellBack;
        // Shared again: no worker deciding locally, and a fresh 10/m limit exact across both gateways.
        await waitUntil(async () => (await fallbackActive(gateways)) === 0 && (await Promise.all(gateways.map(redisStatus))).every((s) => s.connected), 15_000).catch(async (err: Error) => {
          const states = JSON.stringify(await Promise.all(gateways.map(redisStatus)));
          throw new Error(`${err.message}: fallback active in ${await fallbackActive(gateways)} workers; ${states}\n${gateways[0]!.output().slice(-3000)}`);
        });
        const sharedAt = Date.now();
        expect(Object.fromEntries(await burst(gateways, 'limited-after', 30))).toEqual({ 200: 10, 429: 20 });
        expect(sharedAt - promotedAt).toBeLessThan(15_000);
        timings = { promotionMs: promotedAt - killedAt, fallbackMs: fellBackAt - killedAt, sharedAgainAfterPromotionMs: sharedAt - promotedAt };
        for (const g of gateways) expect((await redisStatus(g)).primary).not.toContain(`:${oldPort}`);
        // The rollout goes on to the end.
        await waitUntil(async () => (await rolloutOf(gateways[0]!))?.phase === 'Promoted', 90_000).catch(async (err: Error) => {
          const views = JSON.stringify(await Promise.all(gateways.map(rolloutOf)));
          const warnings = gateways.map((g) =>
            g
              .output()
              .split('\n')
              .filter((l) => /"level":(40|50)/.test(l))
              .slice(-15)
              .join('\n'),
          );
          throw new Error(`${err.message}: the rollout did not finish: ${views}\n${warnings.join('\n---\n')}`);
        });
      } finally {
        await load.stop();
      }
      const holders = await lease.stop();
      const shown = holders.map((h) => h.who);
      console.log(`failover timings (${kind}): ${JSON.stringify(timings)}; ${load.sent()} predictions; lease holders ${shown.join(' → ')}`);
      expect(load.failed).toEqual([]);
      expect(load.sent()).toBeGreaterThan(100);
      const steps = stepsOf((await rolloutOf(gateways[0]!))!);
      expect(steps).toEqual(['RolloutStarted 10', 'RolloutAdvanced 25', 'RolloutAdvanced 50', 'RolloutAdvanced 75', 'RolloutPromoted 100']);
      // Both may say they hold it when the failover lost a lease write (the other takes it on the promoted
      // replica), for less than the lease's 5 s from the lost renewal, as each counts it from before it sent
      // that renewal (gateway/steer/controller.ts); the steps above stay once each (the store fences the writes).
      // 2 s more for the sampling (a round of two views and 200 ms) on a busy machine.
      for (let i = 0; i < holders.length; i++) if (holders[i]!.who.includes('+')) expect((holders[i + 1]?.at ?? Date.now()) - holders[i]!.at, shown.join(' → ')).toBeLessThan(7000);
      expect(shown.filter((h) => !h.includes('+')).length, shown.join(' → ')).toBeLessThanOrEqual(2);
      // Still there: the token (on both gateways), the revocation, the rewards.
      for (const g of gateways) expect(await post(g, path('secure'), bearer(token))).toBe(200);
      expect(await store.command(revokedKey, 'GET', revokedKey)).toContain('"revoked":true');
      expect(await store.command('seldon-gateway:oauth:client:tempkeymodels', 'EXISTS', 'seldon-gateway:oauth:client:tempkeymodels')).toBe('0');
      expect(await rewardsIn()).toBeGreaterThanOrEqual(rewardsBefore);
    }, 300_000);

    it('a URL whose sentinels or seeds do not answer, or an unknown master: the gateway starts in fallback, says why, and serves what needs no Redis', async () => {
      const nobody = await freePort();
      const bad = kind === 'sentinel' ? [`redis+sentinel://127.0.0.1:${nobody}/sgwmaster`, `${url.replace(/\/[^/]+$/, '')}/nosuchmaster`] : [`redis+cluster://:secret@127.0.0.1:${nobody}`];
      for (const u of bad) {
        const g = await start(u);
        try {
          const s = await waitFor('a reason on /readyz', async () => {
            const r = await redisStatus(g);
            return r.reason && !r.reason.startsWith('not connected yet') ? r : undefined;
          });
          expect(s.connected).toBe(false);
          expect(s.url).not.toContain('secret');
          if (u.includes('nosuchmaster')) expect(s.reason).toContain('does not know a master named "nosuchmaster"');
          else expect(s.reason).toMatch(/ECONNREFUSED|unreachable|Failed to refresh slots cache/);
          expect(await post(g, path('open'))).toBe(200);
          // A limited route falls back to its local share; nothing fails.
          expect(await post(g, path('steady'))).toBe(200);
          const page = await (await request(`http://127.0.0.1:${g.admin}/`)).body.text();
          expect(page).toContain('unavailable, in fallback');
        } finally {
          await g.stop();
        }
      }
    }, 120_000);
  });
}

topologySuite('sentinel');
topologySuite('cluster');

/**
 * Ready only when warm (docs/redis.md#readiness): on a store created just now, two gateways (two
 * workers each) say ready only once every worker is connected with its scripts loaded on every
 * primary, so 30 requests sent the moment both say so are limited exactly, none decided locally.
 */
/**
 * What a cold client asks of a primary: connections open to it (this probe's one included) and scripts
 * loaded. (A script's first call on a connection may go as EVAL, ioredis's choice: one round trip all the same.)
 */
const coldWork = async (port: number): Promise<{ port: number; connections: number; load: number }> => {
  const info = await redisCli(port, 'INFO', 'clients', 'commandstats');
  const calls = (name: string): number => Number(new RegExp(`^cmdstat_${name}:calls=(\\d+)`, 'm').exec(info)?.[1] ?? 0);
  return { port, connections: Number(/^connected_clients:(\d+)/m.exec(info)?.[1]), load: calls('script\\|load') };
};

describe('cold start: the first requests after ready decide through the shared store', () => {
  for (const kind of ['cluster', 'sentinel'] as const) {
    it(`a fresh ${kind === 'cluster' ? 'Redis Cluster' : 'Sentinel set'}: 30 requests at once after ready, a limit of 10/m: exactly 10 allowed, nothing decided in fallback`, async () => {
      const dir = mkdtempSync(join(tmpdir(), `sgw-cold-${kind}-`));
      const limited = await startHttpBackend({ name: 'limited' });
      const set = kind === 'cluster' ? await startRedisCluster() : await startSentinelSet();
      let gateways: CliGateway[] = [];
      try {
        writeFileSync(join(dir, 'limited.yaml'), sdep('limited', 'models', { predictors: [{ name: 'main' }] }, { 'seldon.io/gateway-rate-limit': '10/m' }));
        // Warm is what is tested, not how fast this machine answers: a budget a busy machine meets, and below,
        // what the first requests asked of each primary (no connection opened, no script loaded).
        const args = ['--manifests', dir, '--workers', '2', '--redis-url', set.url, '--redis-timeout', '1s', '--resolve', `limited-main.models:8000=127.0.0.1:${limited.port}`];
        gateways = await Promise.all([startCli(args, { readyWithinMs: 45_000 }), startCli(args, { readyWithinMs: 45_000 })]);
        const primaries = kind === 'cluster' ? [...(await (set as RedisClusterSet).primaries()).keys()] : [(await (set as SentinelSet).primaryPort())!];
        const before = await Promise.all(primaries.map(coldWork));
        const statuses = await Promise.all(Array.from({ length: 30 }, (_x, i) => post(gateways[i % 2]!, path('limited'))));
        const counts = Object.fromEntries([200, 429].map((c) => [c, statuses.filter((x) => x === c).length]));
        expect({ counts, fallbacks: await fallbackTotal(gateways) }).toEqual({ counts: { 200: 10, 429: 20 }, fallbacks: 0 });
        expect(limited.requests.length).toBe(10);
        expect(await Promise.all(primaries.map(coldWork))).toEqual(before);
      } finally {
        await Promise.all(gateways.map((g) => g.stop()));
        await Promise.all([limited.close(), set.stop()]);
        rmSync(dir, { recursive: true, force: true });
      }
    }, 180_000);
  }
});

describe('a malformed --redis-url', () => {
  it('is a one-line usage error naming the URL (its password redacted), exit 2', () => {
    const main = join(import.meta.dirname, '../../..', 'dist', 'gateway', 'main.js');
    const cases: [string, RegExp][] = [
      ['redis+sentinel://:s3cret@127.0.0.1:26379', /no master name/],
      ['redis+sentinel://:s3cret@127.0.0.1:99999/mymaster', /99999 is not a port/],
      ['redis+cluster://:s3cret@127.0.0.1:7000/0', /a cluster URL has no path/],
      ['redis+mesh://:s3cret@127.0.0.1:7000', /the scheme is not/],
      ['redis+sentinel://:s3cret@127.0.0.1:26379/m/x', /is not <masterName>\[\/<db>\]/],
    ];
    for (const [u, why] of cases) {
      const r = spawnSync(process.execPath, [main, 'serve', '--manifests', tmpdir(), '--redis-url', u], { encoding: 'utf8', timeout: 30_000 });
      expect(r.status, r.stderr).toBe(2);
      const lines = r.stderr.trim().split('\n');
      expect(lines, r.stderr).toHaveLength(1);
      expect(lines[0]).toMatch(why);
      expect(lines[0]).toContain(u.replace('s3cret', 'redacted').split('/').slice(0, 3).join('/'));
      expect(lines[0]).not.toContain('s3cret');
    }
  });
});
