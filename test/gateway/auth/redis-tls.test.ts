/**
 * `rediss+sentinel://`: a Sentinel set that speaks TLS only (every node and sentinel, replication
 * too), its certificates signed by a private CA the gateway trusts through NODE_EXTRA_CA_CERTS
 * (docs/redis.md). The gateway finds the primary through the sentinels over TLS, shares a limit
 * through it, and follows a failover.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHttpBackend, type HttpBackend } from '../../fixtures/http-backend.js';
import { readyz, startCli, type CliGateway } from '../../helpers/cli.js';
import { sdep } from '../../helpers/gateway.js';
import { predictionStatus } from '../../helpers/predict.js';
import { redisCli, startSentinelSet, type SentinelSet } from '../../helpers/redis-topology.js';
import { certDir, makeCa } from '../../helpers/tls-certs.js';
import { waitUntil } from '../../helpers/wait.js';

async function status(gw: CliGateway): Promise<{ topology: string; url: string; connected: boolean; primary?: string }> {
  return (JSON.parse((await readyz(gw.admin)).body) as { redis: never }).redis;
}

const limited = (gw: CliGateway): Promise<number> => predictionStatus(gw, '/seldon/models/limited/api/v1.0/predictions');

describe('a Sentinel set over TLS (rediss+sentinel://)', () => {
  let certs: string;
  let set: SentinelSet;
  let model: HttpBackend;
  let gw: CliGateway;

  beforeAll(async () => {
    certs = certDir();
    const ca = makeCa(certs);
    const leaf = ca.issue({ cn: '127.0.0.1', san: ['IP:127.0.0.1', 'localhost'], serial: 7 });
    const files = { ca: join(certs, 'ca.pem'), cert: join(certs, 'redis.crt'), key: join(certs, 'redis.key') };
    writeFileSync(files.ca, ca.cert);
    writeFileSync(files.cert, leaf.cert);
    writeFileSync(files.key, leaf.key);
    set = await startSentinelSet({ tls: files });
    model = await startHttpBackend({ name: 'limited' });
    const dir = mkdtempSync(join(certs, 'manifests-'));
    writeFileSync(join(dir, 'limited.yaml'), sdep('limited', 'models', { predictors: [{ name: 'main' }] }, { 'seldon.io/gateway-rate-limit': '10/m' }));
    gw = await startCli(['--manifests', dir, '--workers', '2', '--redis-url', set.url, '--resolve', `limited-main.models:8000=127.0.0.1:${model.port}`], { env: { NODE_EXTRA_CA_CERTS: files.ca } });
    await waitUntil(async () => (await status(gw)).connected, 30_000);
  }, 120_000);

  afterAll(async () => {
    await gw?.stop();
    await Promise.all([model?.close(), set?.stop()]);
    rmSync(certs, { recursive: true, force: true });
  });

  it('finds the primary through the sentinels over TLS, shares a limit there, and follows a failover', async () => {
    expect(set.url.startsWith('rediss+sentinel://')).toBe(true);
    const before = await status(gw);
    expect(before).toMatchObject({ topology: 'sentinel', connected: true, primary: `127.0.0.1:${await set.primaryPort()}` });
    const statuses: number[] = [];
    for (let i = 0; i < 15; i++) statuses.push(await limited(gw));
    expect(statuses.filter((s) => s === 200)).toHaveLength(10);
    expect(model.requests).toHaveLength(10);
    const old = set.primary.port;
    await set.primary.kill();
    const promoted = await set.waitForPromotion(old);
    await waitUntil(async () => {
      const s = await status(gw);
      return s.connected && s.primary === `127.0.0.1:${promoted}`;
    }, 20_000);
    // The promoted replica has the bucket (over TLS replication), and the gateway uses it again.
    const bucket = 'seldon-gateway:ratelimit:{models/limited}:models/limited:10/m';
    expect(Number(await redisCli(promoted, 'GET', bucket))).toBeGreaterThan(Date.now());
    expect([200, 429]).toContain(await limited(gw));
    expect(await redisCli(promoted, 'INFO', 'commandstats')).toMatch(/cmdstat_(evalsha|eval):calls=/);
  }, 120_000);
});
