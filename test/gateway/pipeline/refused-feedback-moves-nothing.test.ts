/**
 * A bandit's feedback that the gate refuses moves nothing, over REST and over gRPC: refused by a
 * rate limit (429 / RESOURCE_EXHAUSTED), by OAuth (401 / UNAUTHENTICATED) or by the external auth
 * service (403 / PERMISSION_DENIED), it reaches no model, counts no feedback outcome and credits
 * no reward; the same token then credits normally, once, when the caller is allowed.
 *
 * Nothing here waits for time to pass: a refused feedback that had been credited would make the
 * allowed one with the same token a duplicate (the store's nonce), which the last checks see.
 */
import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as grpc from '@grpc/grpc-js';
import { request } from 'undici';
import type { HttpBackend } from '../../fixtures/http-backend.js';
import { grpcClients, startGrpcBackend, unaryCall, type GrpcBackend, type GrpcClients, type SeldonMessage } from '../../fixtures/grpc-backend.js';
import { md } from '../../helpers/grpc.js';
import { ARM_TAG, banditModel, echoedArms } from '../../helpers/bandit.js';
import { sdep, startTestGateway, type TestGateway } from '../../helpers/gateway.js';
import { listenLocal } from '../../helpers/net.js';
import { fetchToken } from '../../helpers/oauth.js';
import { waitUntil } from '../../helpers/wait.js';

const ARMS = ['a', 'b'] as const;
const BANDIT = 'arms: [a, b]\nfloor: 5%\nhalfLife: none';

/** How each deployment's gate refuses, and what lets the caller through afterwards. */
type Refusal = 'rate-limit' | 'oauth' | 'external';

/** A bandit deployment with arms a and b, gated as `refusal` says. */
function manifest(name: string, refusal: Refusal | 'none'): string {
  const annotations: Record<string, string> = { 'seldon.io/gateway-bandit': BANDIT };
  if (refusal === 'rate-limit') annotations['seldon.io/gateway-rate-limit'] = '1/h';
  if (refusal === 'external') annotations['seldon.io/gateway-auth'] = 'external';
  if (refusal === 'oauth') annotations['seldon.io/gateway-auth'] = 'oauth';
  const predictors = ARMS.map((a) => ({ name: a, graph: { name: 'model', implementation: 'SKLEARN_SERVER', modelUri: `gs://models/${name}/${a}` } }));
  // Each OAuth deployment registers its own client: `<name>models`, secret `s`.
  return sdep(name, 'models', { ...(refusal === 'oauth' ? { oauth_key: name, oauth_secret: 's' } : {}), predictors }, annotations);
}

/** An auth service that denies `Bearer deny` (403) and allows anything else. */
async function startAuthService(): Promise<{ port: number; close(): Promise<void> }> {
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(req.headers.authorization === 'Bearer deny' ? 403 : 200, { 'content-type': 'text/plain' });
      res.end(req.headers.authorization === 'Bearer deny' ? 'denied' : '');
    });
  });
  return listenLocal(server);
}

interface ArmState {
  readonly share: number;
  readonly mean: number;
  readonly rewards: number;
}

describe('a bandit feedback refused by the gate moves nothing; the same token credits once allowed', () => {
  let gw: TestGateway;
  let auth: Awaited<ReturnType<typeof startAuthService>>;
  let models: Record<string, HttpBackend>;
  let grpcModels: Record<string, GrpcBackend>;
  let clients: GrpcClients;

  const NAMES: Record<'rest' | 'grpc', Record<Refusal, string>> = {
    rest: { 'rate-limit': 'rest-limited', oauth: 'rest-oauth', external: 'rest-external' },
    grpc: { 'rate-limit': 'grpc-limited', oauth: 'grpc-oauth', external: 'grpc-external' },
  };

  beforeAll(async () => {
    models = Object.fromEntries(await Promise.all(ARMS.map(async (a) => [a, await banditModel(a)] as const)));
    grpcModels = Object.fromEntries(await Promise.all(ARMS.map(async (a) => [a, await startGrpcBackend({ name: a })] as const)));
    auth = await startAuthService();
    const manifests: Record<string, string> = {};
    const resolve: Record<string, number> = {};
    for (const protocol of ['rest', 'grpc'] as const) {
      for (const [refusal, name] of Object.entries(NAMES[protocol]) as [Refusal, string][]) {
        manifests[`${name}.yaml`] = manifest(name, refusal);
        for (const a of ARMS) {
          resolve[`${name}-${a}.models:8000`] = models[a]!.port;
          resolve[`${name}-${a}.models:5001`] = grpcModels[a]!.port;
        }
      }
    }
    gw = await startTestGateway({ manifests, resolve, args: ['--ext-auth-service', `http://127.0.0.1:${auth.port}`, '--ext-auth-default', 'off'] });
    clients = grpcClients(`127.0.0.1:${gw.port}`);
  });

  afterAll(async () => {
    clients?.close();
    await gw?.stop();
    await Promise.all([...Object.values(models ?? {}).map((m) => m.close()), ...Object.values(grpcModels ?? {}).map((m) => m.close()), auth?.close()]);
  });

  /** The deployment's arms as /routes shows them (undefined until the store has answered once). */
  async function arms(name: string): Promise<Record<string, ArmState> | undefined> {
    const r = await request(`${gw.adminUrl}/routes`);
    const body = (await r.body.json()) as { deployments: { name: string; steering?: { bandit?: { arms: Record<string, ArmState> } } }[] };
    return body.deployments.find((d) => d.name === name)?.steering?.bandit?.arms;
  }

  /** The feedback outcomes counted for the deployment, by outcome. */
  async function outcomes(name: string): Promise<Record<string, number>> {
    const text = await (await request(`${gw.adminUrl}/metrics`)).body.text();
    const out: Record<string, number> = {};
    for (const line of text.split('\n')) {
      if (!line.startsWith('seldon_gateway_bandit_feedback_total{') || !line.includes(`deployment="${name}"`)) continue;
      const outcome = /outcome="([^"]+)"/.exec(line)![1]!;
      out[outcome] = (out[outcome] ?? 0) + Number(line.slice(line.lastIndexOf(' ') + 1));
    }
    return out;
  }

  /** Feedbacks the models received (REST: by the arm their echoed answer names; gRPC: as recorded). */
  const received = (protocol: 'rest' | 'grpc'): number =>
    protocol === 'rest' ? ARMS.reduce((n, a) => n + echoedArms(models[a]!).length, 0) : ARMS.reduce((n, a) => n + grpcModels[a]!.feedbacks.length, 0);

  // ---- REST ----

  async function restPredict(name: string, headers: Record<string, string>): Promise<{ arm: string; body: unknown; token: string }> {
    const r = await request(`${gw.url}/seldon/models/${name}/api/v1.0/predictions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: '{"meta":{},"data":{"ndarray":[[1,2]]}}',
    });
    const body = (await r.body.json()) as { data: { names: string[] }; meta: { tags?: Record<string, string> } };
    expect(r.statusCode).toBe(200);
    const token = body.meta.tags?.[ARM_TAG];
    expect(token).toBe(r.headers['seldon-gateway-arm']);
    return { arm: body.data.names[0]!, body, token: token! };
  }

  async function restFeedback(name: string, response: unknown, headers: Record<string, string>): Promise<number> {
    const r = await request(`${gw.url}/seldon/models/${name}/api/v1.0/feedback`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify({ request: { meta: {}, data: { ndarray: [[1, 2]] } }, response, reward: 1 }),
    });
    await r.body.dump();
    return r.statusCode;
  }

  // ---- gRPC ----

  const grpcMetadata = (name: string, extra: Record<string, string>): grpc.Metadata => md({ seldon: name, namespace: 'models', ...extra });

  async function grpcPredict(name: string, extra: Record<string, string>): Promise<{ arm: string; response: SeldonMessage; token: string }> {
    const p = await unaryCall(clients.seldon.Predict, clients.seldon, { meta: {}, data: { ndarray: { values: [{ numberValue: 1 }] } } }, grpcMetadata(name, extra));
    const token = p.headers.get('seldon-gateway-arm')[0] as string;
    expect(p.response.meta?.tags?.[ARM_TAG]?.stringValue).toBe(token);
    return { arm: p.response.meta?.tags?.['backend']?.stringValue as string, response: p.response, token };
  }

  /** A SendFeedback's gRPC status (0: OK). */
  async function grpcFeedback(name: string, response: SeldonMessage, extra: Record<string, string>): Promise<number> {
    try {
      await unaryCall(clients.seldon.SendFeedback, clients.seldon, { request: { meta: {} }, response, reward: 1 }, grpcMetadata(name, extra));
      return grpc.status.OK;
    } catch (err) {
      return (err as grpc.ServiceError).code;
    }
  }

  /** What a refused caller sends, what an allowed one sends, what the refusal is, and how the caller becomes allowed. */
  interface Case {
    readonly refused: Record<string, string>;
    readonly allowed: Record<string, string>;
    readonly status: { rest: number; grpc: number };
    /** Make the caller allowed (the rate limit lifted); the other cases change their credentials. */
    allow?(name: string): Promise<void>;
  }

  async function caseFor(refusal: Refusal, protocol: 'rest' | 'grpc', name: string): Promise<Case> {
    switch (refusal) {
      case 'rate-limit':
        return { refused: {}, allowed: {}, status: { rest: 429, grpc: grpc.status.RESOURCE_EXHAUSTED }, allow: (name) => gw.write(`${name}.yaml`, manifest(name, 'none')) };
      case 'oauth': {
        const token = await fetchToken(gw.url, `${name}models`, 's');
        const allowed: Record<string, string> = protocol === 'rest' ? { authorization: `Bearer ${token}` } : { oauth_token: token };
        const refused: Record<string, string> = protocol === 'rest' ? { authorization: 'Bearer not-a-token' } : { oauth_token: 'not-a-token' };
        return { refused, allowed, status: { rest: 401, grpc: grpc.status.UNAUTHENTICATED } };
      }
      case 'external':
        return { refused: { authorization: 'Bearer deny' }, allowed: { authorization: 'Bearer fine' }, status: { rest: 403, grpc: grpc.status.PERMISSION_DENIED } };
    }
  }

  for (const protocol of ['rest', 'grpc'] as const) {
    for (const refusal of ['rate-limit', 'oauth', 'external'] as const) {
      it(`${protocol}: a feedback refused by ${refusal === 'rate-limit' ? 'a rate limit' : refusal === 'oauth' ? 'OAuth' : 'the external auth service'} credits nothing; the same token credits once allowed`, async () => {
        const name = NAMES[protocol][refusal];
        const c = await caseFor(refusal, protocol, name);
        // The prediction is allowed (the rate limit's one request an hour; a good credential).
        const p = protocol === 'rest' ? await restPredict(name, c.allowed) : await grpcPredict(name, c.allowed);
        const echoed = received(protocol);
        const answer = protocol === 'rest' ? (p as { body: unknown }).body : (p as { response: SeldonMessage }).response;
        const send = (headers: Record<string, string>): Promise<number> => (protocol === 'rest' ? restFeedback(name, answer, headers) : grpcFeedback(name, answer as SeldonMessage, headers));
        const before = await arms(name);

        for (let i = 0; i < 3; i++) expect(await send(c.refused)).toBe(c.status[protocol]);
        // Refused: no model saw it.
        expect(received(protocol)).toBe(echoed);

        await c.allow?.(name);
        expect(await send(c.allowed)).toBe(protocol === 'rest' ? 200 : grpc.status.OK);
        expect(received(protocol)).toBe(echoed + 1);
        // Credited once, as the allowed feedback's own: the refused ones spent no nonce and counted nothing.
        await waitUntil(async () => (await arms(name))?.[p.arm]?.rewards === 1, 10_000);
        expect(await outcomes(name)).toEqual({ attributed: 1 });
        const after = (await arms(name))!;
        for (const a of ARMS) {
          expect(after[a]!.rewards).toBe(a === p.arm ? 1 : 0);
          // The other arm's mean is where it was (no reward reached it).
          if (a !== p.arm && before !== undefined) expect(after[a]!.mean).toBe(before[a]!.mean);
        }
      }, 60_000);
    }
  }
});
