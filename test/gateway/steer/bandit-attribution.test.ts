/**
 * Bandits end to end over REST, with feedback sent the way the official Seldon Python client sends
 * it (`Feedback {request, response, reward}` with the prediction's whole answer as `response`):
 * three stand-in models that say who they are in their answers and record what they receive.
 *
 * - every feedback reaches the model that served its prediction, and each model receives exactly
 *   the feedback for its own predictions;
 * - the rewards recorded equal the feedback attributed, once per token: a replayed token is
 *   forwarded but counted as a duplicate, a forged or missing one moves nothing;
 * - the shares move to the arm that earns the most;
 * - the same with Redis across two gateways of two workers each, and without Redis in one gateway
 *   of two workers (rewards reach the primary over IPC).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import * as grpc from '@grpc/grpc-js';
import type { HttpBackend } from '../../fixtures/http-backend.js';
import { grpcClients, startGrpcBackend, unaryCall, type GrpcBackend, type GrpcClients, type SeldonMessage } from '../../fixtures/grpc-backend.js';
import { md } from '../../helpers/grpc.js';
import { ARMS, ARM_TAG, BANDIT_MANIFEST, armResolves, banditModel, echoedArms, feedback, outcomes, predict, shares, type Prediction } from '../../helpers/bandit.js';
import { startCli, type CliGateway } from '../../helpers/cli.js';
import { startRedis, type TestRedis } from '../../helpers/redis.js';
import { waitUntil } from '../../helpers/wait.js';

describe('bandit attribution over REST, as the Seldon client sends feedback', () => {
  let models: Record<string, HttpBackend>;
  let dir: string;
  let redis: TestRedis;
  let gateways: CliGateway[] = [];

  const start = (extra: string[]): Promise<CliGateway> =>
    startCli(['--manifests', dir, '--workers', '2', ...armResolves(models), '--log-level', 'warn', ...extra], {
      readyWithinMs: 30_000,
    });

  beforeAll(async () => {
    models = Object.fromEntries(await Promise.all(ARMS.map(async (a) => [a, await banditModel(a)] as const)));
    dir = mkdtempSync(join(tmpdir(), 'sgw-bandit-'));
    writeFileSync(join(dir, 'rec.yaml'), BANDIT_MANIFEST);
    redis = await startRedis();
  });

  afterEach(async () => {
    await Promise.all(gateways.map((g) => g.stop()));
    gateways = [];
    for (const m of Object.values(models)) m.requests.length = 0;
  });

  afterAll(async () => {
    await Promise.all([...Object.values(models ?? {}).map((m) => m.close()), redis?.stop()]);
    rmSync(dir, { recursive: true, force: true });
  });

  async function run(label: string): Promise<void> {
    // Arm c earns 1 every time, the others 0: the shares must move to c.
    const served: Record<string, number> = { a: 0, b: 0, c: 0 };
    const predictions: Prediction[] = [];
    for (let i = 0; i < 240; i++) {
      const gw = gateways[i % gateways.length]!;
      const p = await predict(gw);
      expect(p.header, label).toMatch(/^[A-Za-z0-9_.~-]+$/);
      // The token is in the answer's meta.tags too, next to what the model put in meta.
      expect(p.body.meta.tags?.[ARM_TAG]).toBe(p.header);
      expect((p.body.meta as { requestPath?: unknown }).requestPath).toEqual({ model: `rec-${p.arm}:1` });
      served[p.arm]!++;
      predictions.push(p);
      // Feedback through the other gateway: any replica accepts any token.
      expect(await feedback(gateways[(i + 1) % gateways.length]!, p.body, p.arm === 'c' ? 1 : 0)).toBe(200);
    }
    // From the first request on, every arm is drawn (the even prior before the first shares, then the floor).
    for (const a of ARMS) expect(served[a], `${label}: ${JSON.stringify(served)}`).toBeGreaterThan(0);
    // 100% of feedback reached the model that served its prediction, and each model got exactly its own.
    for (const a of ARMS) {
      const echoed = echoedArms(models[a]!);
      expect(
        echoed.every((x) => x === a),
        `${label}: ${a} received feedback for ${echoed.filter((x) => x !== a).join(',')}`,
      ).toBe(true);
      expect(echoed.length, label).toBe(served[a]);
    }
    // The rewards recorded equal the attributed feedback, arm by arm.
    await waitUntil(async () => {
      const s = await shares(gateways[0]!);
      return ARMS.every((a) => s?.[a]?.rewards === served[a]);
    }, 20_000);
    expect((await outcomes(gateways[0]!, 'attributed')) + (gateways[1] ? await outcomes(gateways[1], 'attributed') : 0)).toBe(240);
    // And the shares moved to c.
    await waitUntil(async () => ((await shares(gateways[0]!))?.c?.share ?? 0) > 60, 20_000);

    // A replayed token: forwarded to its arm, counted as a duplicate, recorded nothing.
    const replay = predictions[0]!;
    const before = (await shares(gateways[0]!))!;
    expect(await feedback(gateways[0]!, replay.body, 1)).toBe(200);
    await waitUntil(async () => (await outcomes(gateways[0]!, 'duplicate')) === 1, 10_000);
    expect(echoedArms(models[replay.arm]!).length).toBe(served[replay.arm]! + 1);
    // A forged token (another arm's name, the same signature) and no token: forwarded, never recorded.
    const forged = JSON.parse(JSON.stringify(replay.body)) as Prediction['body'];
    const other = replay.arm === 'c' ? 'a' : 'c';
    const parts = replay.header!.split('.');
    parts[1] = other;
    forged.meta.tags![ARM_TAG] = parts.join('.');
    expect(await feedback(gateways[0]!, forged, 1)).toBe(200);
    expect(await feedback(gateways[0]!, { data: { names: ['x'] }, meta: {} }, 1)).toBe(200);
    await waitUntil(async () => (await outcomes(gateways[0]!, 'forged')) === 1 && (await outcomes(gateways[0]!, 'unattributed')) === 1, 10_000);
    const after = (await shares(gateways[0]!))!;
    for (const a of ARMS) expect(after[a]!.rewards).toBe(before[a]!.rewards);
  }

  it('with Redis, two gateways of two workers: every reward credited to the arm that earned it, once', async () => {
    gateways = [await start(['--redis-url', redis.url]), await start(['--redis-url', redis.url])];
    await run('redis');
  }, 120_000);

  it('without Redis, one gateway of two workers: the same, the rewards recorded by the primary', async () => {
    gateways = [await start([])];
    await run('memory');
  }, 120_000);
});

describe('bandit attribution over gRPC, as the Seldon client sends feedback', () => {
  let backends: Record<string, GrpcBackend>;
  let dir: string;
  let redis: TestRedis;
  let gw: CliGateway | undefined;
  let clients: GrpcClients | undefined;

  beforeAll(async () => {
    backends = Object.fromEntries(await Promise.all(ARMS.map(async (a) => [a, await startGrpcBackend({ name: a })] as const)));
    dir = mkdtempSync(join(tmpdir(), 'sgw-bandit-grpc-'));
    writeFileSync(join(dir, 'rec.yaml'), BANDIT_MANIFEST);
    redis = await startRedis();
    gw = await startCli(['--manifests', dir, '--workers', '2', '--redis-url', redis.url, ...armResolves(backends, 5001), '--log-level', 'warn'], { readyWithinMs: 30_000 });
    clients = grpcClients(`127.0.0.1:${gw.port}`);
  });

  afterAll(async () => {
    clients?.close();
    await gw?.stop();
    await Promise.all([...Object.values(backends ?? {}).map((b) => b.close()), redis?.stop()]);
    rmSync(dir, { recursive: true, force: true });
  });

  it('Predict answers carry the token in metadata and meta.tags; SendFeedback reaches the arm that answered, once per token', async () => {
    const metadata = (): grpc.Metadata => md({ seldon: 'rec', namespace: 'models' });
    const served: Record<string, number> = { a: 0, b: 0, c: 0 };
    const answers: SeldonMessage[] = [];
    for (let i = 0; i < 120; i++) {
      const p = await unaryCall(clients!.seldon.Predict, clients!.seldon, { meta: {}, data: { ndarray: { values: [{ numberValue: 1 }] } } }, metadata());
      const arm = p.response.meta?.tags?.['backend']?.stringValue as string;
      const token = p.headers.get('seldon-gateway-arm')[0];
      expect(typeof token).toBe('string');
      // The model's own tags survive beside the token.
      expect(p.response.meta?.tags?.[ARM_TAG]?.stringValue).toBe(token);
      served[arm]!++;
      answers.push(p.response);
      const f = await unaryCall(clients!.seldon.SendFeedback, clients!.seldon, { request: { meta: {} }, response: p.response, reward: arm === 'c' ? 1 : 0 }, metadata());
      expect(f.response.meta?.tags?.['backend']?.stringValue).toBe(arm);
    }
    for (const a of ARMS) {
      const got = backends[a]!.feedbacks.map((f) => f.response?.meta?.tags?.['backend']?.stringValue);
      expect(got.every((x) => x === a)).toBe(true);
      expect(got.length).toBe(served[a]);
    }
    await waitUntil(async () => {
      const s = await shares(gw!);
      return ARMS.every((a) => s?.[a]?.rewards === served[a]);
    }, 20_000);
    // A replay is forwarded to its arm and recorded nothing.
    const first = answers[0]!;
    const arm = first.meta!.tags!['backend']!.stringValue as string;
    await unaryCall(clients!.seldon.SendFeedback, clients!.seldon, { response: first, reward: 1 }, metadata());
    expect(backends[arm]!.feedbacks.length).toBe(served[arm]! + 1);
    await waitUntil(async () => (await outcomes(gw!, 'duplicate')) === 1, 10_000);
    const s = (await shares(gw!))!;
    expect(s[arm]!.rewards).toBe(served[arm]);
  }, 120_000);
});
