/**
 * Which requests are logged, and what a refused one logs, through a real gateway and a CloudEvents
 * receiver (the SDK's reading of every event):
 *
 * - `sample: 0.1` logs 200 ± 60 of 2,000 requests (the draws seeded with --random-seed);
 * - `sampleKey: header:x-user` and `claim:sub` (a verified JWT's): each caller's requests are all
 *   logged or none is, and both kinds of caller occur;
 * - requests refused by the JWT check, a rate limit and flow control each log a decision record
 *   naming the check and the reason, and no request or response event.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signingKey, startIdentityProvider, type IdentityProvider, type SigningKey } from '../../fixtures/identity-provider.js';
import { startHttpBackend, type HttpBackend } from '../../fixtures/http-backend.js';
import { decisionOf, startEventReceiver, type EventReceiver, type Received } from '../../helpers/event-receiver.js';
import { sdep, startTestGateway, type TestGateway } from '../../helpers/gateway.js';
import { pool } from '../../helpers/grpc.js';
import { metricSum, post, predict, scrape } from '../../helpers/observability.js';
import { waitUntil } from '../../helpers/wait.js';

const LOG = 'seldon.io/gateway-log';
const DECISION = 'io.seldon.gateway.decision';
const byService = (r: EventReceiver, svc: string): Received[] => r.unique().filter((e) => e.event['inferenceservicename'] === svc);

describe('payload logging: sampling, and refused requests', () => {
  let idp: IdentityProvider;
  let key: SigningKey;
  let receiver: EventReceiver;
  let model: HttpBackend;
  let gw: TestGateway;
  const dir = mkdtempSync(join(tmpdir(), 'sgw-log-'));
  const token = (sub: string): Promise<string> => idp.token({ sub, aud: 'seldon' }, key);

  beforeAll(async () => {
    idp = await startIdentityProvider();
    key = await signingKey('k1', 'RS256');
    idp.published = [key];
    receiver = await startEventReceiver();
    model = await startHttpBackend({ name: 'm' });
    writeFileSync(join(dir, 'sinks.yaml'), `- name: seldon\n  type: cloudevents\n  url: ${receiver.url}\n`);
    writeFileSync(join(dir, 'providers.yaml'), `- name: corp\n  issuer: ${idp.issuer}\n  jwksUri: ${idp.jwksUri}\n  audiences: [seldon]\n`);
    const jwt = '{"providers": ["corp"]}';
    const manifests: Record<string, string> = {
      'tenth.yaml': sdep('tenth', 'ns', { predictors: [{ name: 'main' }] }, { [LOG]: 'sinks: [seldon]\nlog: decisions\nsample: 0.1' }),
      'keyed.yaml': sdep('keyed', 'ns', { predictors: [{ name: 'main' }] }, { [LOG]: 'sinks: [seldon]\nlog: decisions\nsample: 0.5\nsampleKey: header:x-user' }),
      'claimed.yaml': sdep('claimed', 'ns', { predictors: [{ name: 'main' }] }, { [LOG]: 'sinks: [seldon]\nlog: decisions\nsample: 0.5\nsampleKey: claim:sub', 'seldon.io/gateway-jwt': jwt }),
      'guarded.yaml': sdep('guarded', 'ns', { predictors: [{ name: 'main' }] }, { [LOG]: 'sinks: [seldon]', 'seldon.io/gateway-jwt': jwt }),
      'limited.yaml': sdep('limited', 'ns', { predictors: [{ name: 'main' }] }, { [LOG]: 'sinks: [seldon]', 'seldon.io/gateway-rate-limit': '1/m' }),
      'flow.yaml': sdep('flow', 'ns', { predictors: [{ name: 'main' }] }, { [LOG]: 'sinks: [seldon]', 'seldon.io/gateway-flow': '{"concurrency": 1, "queue": 0}' }),
    };
    const resolve = Object.fromEntries(Object.keys(manifests).map((f) => [`${f.replace('.yaml', '')}-main.ns:8000`, model.port]));
    gw = await startTestGateway({ manifests, resolve, args: ['--log-sinks', join(dir, 'sinks.yaml'), '--jwt-providers', join(dir, 'providers.yaml'), '--random-seed', '7'] });
  });

  afterAll(async () => {
    await gw?.stop();
    await model?.close();
    await receiver?.close();
    await idp?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a 10% sample logs 200 ± 60 of 2,000 requests', async () => {
    const statuses = await pool(2000, 8, async () => (await post(`${gw.url}/seldon/ns/tenth${predict}`)).status);
    expect(statuses.every((s) => s === 200)).toBe(true);
    await settled(gw);
    const logged = byService(receiver, 'tenth').length;
    console.log(`sample 0.1: ${logged} of 2000 logged`);
    expect(logged).toBeGreaterThanOrEqual(140);
    expect(logged).toBeLessThanOrEqual(260);
  });

  it('sampling keyed on a header: each caller always in or always out', async () => {
    const users = Array.from({ length: 40 }, (_, i) => `user-${i}`);
    await pool(users.length * 10, 8, async (i) => expect((await post(`${gw.url}/seldon/ns/keyed${predict}`, { 'x-user': users[i % users.length]!, 'seldon-puid': `keyed-${i}` })).status).toBe(200));
    await settled(gw);
    const counts = new Map<string, number>();
    for (const e of byService(receiver, 'keyed')) {
      const i = Number(String(e.event['requestid']).slice('keyed-'.length));
      if (Number.isInteger(i)) counts.set(users[i % users.length]!, (counts.get(users[i % users.length]!) ?? 0) + 1);
    }
    for (const [u, n] of counts) expect(n, u).toBe(10);
    expect(counts.size).toBeGreaterThan(5);
    expect(counts.size).toBeLessThan(35);
  });

  it('sampling keyed on a verified JWT claim: each subject always in or always out', async () => {
    const subs = Array.from({ length: 20 }, (_, i) => `sub-${i}`);
    const tokens = await Promise.all(subs.map(token));
    await pool(subs.length * 5, 8, async (i) =>
      expect((await post(`${gw.url}/seldon/ns/claimed${predict}`, { authorization: `Bearer ${tokens[i % subs.length]}`, 'seldon-puid': `claimed-${i}` })).status).toBe(200),
    );
    await settled(gw);
    const counts = new Map<string, number>();
    for (const e of byService(receiver, 'claimed')) {
      const i = Number(String(e.event['requestid']).slice('claimed-'.length));
      counts.set(subs[i % subs.length]!, (counts.get(subs[i % subs.length]!) ?? 0) + 1);
    }
    for (const [s, n] of counts) expect(n, s).toBe(5);
    expect(counts.size).toBeGreaterThan(2);
    expect(counts.size).toBeLessThan(18);
  });

  it('refused by the JWT check, a rate limit, flow control: a decision record with the check and the reason, and no request or response event', async () => {
    const jwtId = `jwt-${randomUUID()}`;
    expect((await post(`${gw.url}/seldon/ns/guarded${predict}`, { 'seldon-puid': jwtId })).status).toBe(401);
    const limitIds = [`limit-a-${randomUUID()}`, `limit-b-${randomUUID()}`];
    expect((await post(`${gw.url}/seldon/ns/limited${predict}`, { 'seldon-puid': limitIds[0]! })).status).toBe(200);
    expect((await post(`${gw.url}/seldon/ns/limited${predict}`, { 'seldon-puid': limitIds[1]! })).status).toBe(429);
    const flowIds = [`flow-a-${randomUUID()}`, `flow-b-${randomUUID()}`];
    const slow = post(`${gw.url}/seldon/ns/flow/sleep/800${predict}`, { 'seldon-puid': flowIds[0]! });
    // The slow one holds the only slot once the model has it.
    await waitUntil(async () => model.requests.some((r) => r.url.includes('/sleep/800')), 10_000);
    expect((await post(`${gw.url}/seldon/ns/flow${predict}`, { 'seldon-puid': flowIds[1]! })).status).toBe(503);
    expect((await slow).status).toBe(200);
    const refused: [string, string, string, number][] = [
      [jwtId, 'jwt', 'UNAUTHENTICATED', 401],
      [limitIds[1]!, 'rate-limit', 'RATE_LIMITED', 429],
      [flowIds[1]!, 'flow-control', 'OVERLOADED', 503],
    ];
    await settled(gw);
    for (const [id, check, reason, status] of refused) {
      const events = receiver.unique().filter((e) => e.event['requestid'] === id);
      expect(
        events.map((e) => e.event.type),
        id,
      ).toEqual([DECISION]);
      const d = decisionOf(events[0]!);
      expect(d, id).toMatchObject({ refused: { check, reason }, status, attempts: [] });
      expect((d.refused as { message: string }).message.length).toBeGreaterThan(0);
    }
    // The requests let through log all three.
    for (const id of [limitIds[0]!, flowIds[0]!]) expect(receiver.unique().filter((e) => e.event['requestid'] === id)).toHaveLength(3);
  });
});

/** Wait until everything logged so far has been delivered: nothing left in the gateway's queues (a record is queued before its request's answer is sent). */
async function settled(gw: TestGateway): Promise<void> {
  await waitUntil(async () => metricSum(await scrape(gw.adminUrl), 'seldon_gateway_log_buffer_bytes') === 0, 30_000);
}
