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
import { request } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import * as grpc from '@grpc/grpc-js';
import { startHttpBackend, type HttpBackend } from './fixtures/http-backend.js';
import { grpcClients, startGrpcBackend, unaryCall, type GrpcBackend, type GrpcClients, type SeldonMessage } from './fixtures/grpc-backend.js';
import { md } from './grpc-helpers.js';
import { startCli, type CliGateway } from './helpers/cli.js';
import { startRedis, type TestRedis } from './helpers/redis.js';
import { waitUntil } from './helpers/wait.js';

const ARMS = ['a', 'b', 'c'] as const;
const TAG = 'seldon.io/gateway-arm';

const MANIFEST = `apiVersion: machinelearning.seldon.io/v1
kind: SeldonDeployment
metadata:
  name: rec
  namespace: models
  annotations:
    seldon.io/gateway-bandit: |
      arms: [a, b, c]
      floor: 5%
      halfLife: none
spec:
  predictors:
${ARMS.map((a) => `  - name: ${a}\n    graph: {name: model, implementation: SKLEARN_SERVER, modelUri: "gs://models/rec/${a}"}`).join('\n')}
`;

/** A model that answers predictions naming itself, and feedback with an empty SeldonMessage. */
function model(name: string): Promise<HttpBackend> {
  return startHttpBackend({
    name,
    handler: (req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(req.url?.endsWith('/feedback') ? '{}' : JSON.stringify({ data: { names: [name], ndarray: [[1]] }, meta: { requestPath: { model: `rec-${name}:1` } } }));
    },
  });
}

interface Prediction {
  arm: string;
  header: string | undefined;
  body: { data: { names: string[] }; meta: { tags?: Record<string, string> } };
}

async function predict(gw: CliGateway): Promise<Prediction> {
  const r = await request(`http://127.0.0.1:${gw.port}/seldon/models/rec/api/v1.0/predictions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: '{"meta":{},"data":{"ndarray":[[1,2]]}}',
  });
  const body = (await r.body.json()) as Prediction['body'];
  expect(r.statusCode).toBe(200);
  return { arm: body.data.names[0]!, header: r.headers['seldon-gateway-arm'] as string | undefined, body };
}

async function feedback(gw: CliGateway, response: unknown, reward: number): Promise<number> {
  const r = await request(`http://127.0.0.1:${gw.port}/seldon/models/rec/api/v1.0/feedback`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ request: { meta: {}, data: { ndarray: [[1, 2]] } }, response, reward }),
  });
  await r.body.dump();
  return r.statusCode;
}

/** Feedback bodies a model received: the arm named in each echoed response. */
function echoedArms(m: HttpBackend): string[] {
  return m.requests.filter((q) => q.url.endsWith('/feedback')).map((q) => (JSON.parse(q.body.toString()) as { response: Prediction['body'] }).response.data.names[0]!);
}

async function shares(gw: CliGateway): Promise<Record<string, { share: number; rewards: number }> | undefined> {
  const r = await request(`http://127.0.0.1:${gw.admin}/routes`);
  const body = (await r.body.json()) as { deployments: { name: string; steering?: { bandit?: { arms: Record<string, { share: number; rewards: number }> } } }[] };
  return body.deployments.find((d) => d.name === 'rec')?.steering?.bandit?.arms;
}

/** Feedback outcomes counted by a gateway (summed over its workers and arms). */
async function outcomes(gw: CliGateway, outcome: string): Promise<number> {
  const text = await (await request(`http://127.0.0.1:${gw.admin}/metrics`)).body.text();
  let n = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith('seldon_gateway_bandit_feedback_total{') && line.includes(`outcome="${outcome}"`)) n += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return n;
}

describe('bandit attribution over REST, as the Seldon client sends feedback', () => {
  let models: Record<string, HttpBackend>;
  let dir: string;
  let redis: TestRedis;
  let gateways: CliGateway[] = [];

  const start = (extra: string[]): Promise<CliGateway> =>
    startCli(['--manifests', dir, '--workers', '2', ...ARMS.flatMap((a) => ['--resolve', `rec-${a}.models:8000=127.0.0.1:${models[a]!.port}`]), '--log-level', 'warn', ...extra], {
      readyWithinMs: 30_000,
    });

  beforeAll(async () => {
    models = Object.fromEntries(await Promise.all(ARMS.map(async (a) => [a, await model(a)] as const)));
    dir = mkdtempSync(join(tmpdir(), 'sgw-bandit-'));
    writeFileSync(join(dir, 'rec.yaml'), MANIFEST);
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
      expect(p.body.meta.tags?.[TAG]).toBe(p.header);
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
      return s !== undefined && ARMS.every((a) => s[a]!.rewards === served[a]);
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
    forged.meta.tags![TAG] = parts.join('.');
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
    writeFileSync(join(dir, 'rec.yaml'), MANIFEST);
    redis = await startRedis();
    gw = await startCli(
      ['--manifests', dir, '--workers', '2', '--redis-url', redis.url, ...ARMS.flatMap((a) => ['--resolve', `rec-${a}.models:5001=127.0.0.1:${backends[a]!.port}`]), '--log-level', 'warn'],
      { readyWithinMs: 30_000 },
    );
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
      expect(p.response.meta?.tags?.[TAG]?.stringValue).toBe(token);
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
      return s !== undefined && ARMS.every((a) => s[a]!.rewards === served[a]);
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
