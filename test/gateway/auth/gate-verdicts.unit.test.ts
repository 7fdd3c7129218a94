/**
 * The gate's verdicts, without sockets: a `Gatekeeper` with its real in-memory token store and
 * local rate limits decides; nothing is written (the proxies render verdicts, tested end to end in
 * oauth*.test.ts, test/gateway/auth/rate-limit.test.ts and test/gateway/grpc/edge.test.ts).
 */
import type { IncomingHttpHeaders } from 'node:http2';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Gatekeeper, type Allow, type Deny, type GateVerdict, type PendingVerdict } from '../../../gateway/auth/gate.js';
import { OAuth } from '../../../gateway/auth/oauth.js';
import { tokenHash } from '../../../gateway/auth/token-crypto.js';
import { RateLimiter } from '../../../gateway/auth/rate-limit.js';
import { MemoryTokenStore, type TokenStore } from '../../../gateway/auth/token-store.js';
import { grpcFrontEndCall } from '../../../gateway/edge/entry.js';
import { grpcStatusOf, GrpcStatus } from '../../../gateway/edge/errors.js';
import { GatewayMetrics } from '../../../gateway/observe/metrics.js';
import { RouteState } from '../../../gateway/process/route-state.js';
import { match } from '../../../routing/table/match.js';
import { randomPicker, seededRandom } from '../../../routing/table/pick.js';
import type { SeldonDeployment } from '../../../routing/seldon/deployment.js';
import { DEFAULT_COMPILE_OPTIONS, type Decision, type Routed } from '../../../routing/types.js';

const BEARER = 'Bearer realm="seldon-gateway"';

function sdep(name: string, key: string, annotations: Record<string, string>): SeldonDeployment {
  return {
    apiVersion: 'machinelearning.seldon.io/v1',
    kind: 'SeldonDeployment',
    metadata: { name, namespace: 'models', annotations },
    spec: { ...(key ? { oauth_key: key, oauth_secret: `${key}-secret` } : {}), predictors: [{ name: 'main' }] },
  } as SeldonDeployment;
}

interface Fixture {
  readonly gate: Gatekeeper;
  readonly oauth: OAuth;
  readonly state: RouteState;
  readonly metrics: GatewayMetrics;
}

/** A gate over `store`: iris and fraud are OAuth-gated, limited has a 1/m rate limit and no auth. */
function fixture(store: TokenStore): Fixture {
  const metrics = new GatewayMetrics();
  const state = new RouteState(DEFAULT_COMPILE_OPTIONS);
  state.apply(
    [
      sdep('iris', 'iriskey', { 'seldon.io/gateway-auth': 'oauth' }),
      sdep('fraud', 'fraudkey', { 'seldon.io/gateway-auth': 'oauth', 'seldon.io/gateway-rate-limit': '1/m' }),
      sdep('limited', '', { 'seldon.io/gateway-rate-limit': '1/m' }),
    ].map((deployment) => ({ type: 'upsert' as const, key: `models/${deployment.metadata!.name}`, deployment })),
  );
  const oauth = new OAuth({ store, state, ttlMs: 60_000, timeoutMs: 200, metrics });
  const limiter = new RateLimiter({ shared: null, timeoutMs: 200, metrics });
  const gate = new Gatekeeper({ oauth, limiter, state, picker: randomPicker(seededRandom(1)) });
  return { gate, oauth, state, metrics };
}

const basic = (id: string, secret: string): string => `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`;

/** A token for `key`'s client (its client id is the key and the namespace). */
async function tokenFor(f: Fixture, key: string): Promise<string> {
  const answer = await f.oauth.token(basic(`${key}models`, `${key}-secret`), 'client_credentials', '127.0.0.1');
  expect(answer.status).toBe(200);
  return (answer.body as { access_token: string }).access_token;
}

function restRoute(f: Fixture, deployment: string, query = ''): Routed {
  const d = match(
    f.state.current,
    { kind: 'rest', method: 'POST', path: `/seldon/models/${deployment}/api/v1.0/predictions${query}`, host: 'gw', header: () => undefined },
    randomPicker(seededRandom(1)),
  );
  if (!d.ok) throw new Error(`no route to ${deployment}: ${d.info}`);
  return d;
}

function grpcRoute(f: Fixture, deployment: string): Decision {
  const meta: Record<string, string> = { seldon: deployment, namespace: 'models' };
  return match(f.state.current, { kind: 'grpc', method: 'POST', path: '/seldon.protos.Seldon/Predict', host: 'gw', header: (n) => meta[n] }, randomPicker(seededRandom(1)));
}

const rest = (f: Fixture, d: Routed, authorization?: string, url = '/seldon/models/x/api/v1.0/predictions'): PendingVerdict =>
  f.gate.rest({ url, method: 'POST', headers: { authorization, host: 'gw' } }, d, f.state.current);

async function allowed(v: PendingVerdict): Promise<Allow> {
  const x: GateVerdict = await v;
  if (!x.allow) throw new Error(`denied: ${x.status} ${x.reason} ${x.message}`);
  return x;
}

async function denied(v: PendingVerdict): Promise<Deny> {
  const x: GateVerdict = await v;
  if (x.allow) throw new Error(`allowed: ${x.decision.backend.id}`);
  return x;
}

describe('Gatekeeper verdicts (REST routes)', () => {
  let store: MemoryTokenStore;
  let f: Fixture;
  beforeEach(() => {
    store = new MemoryTokenStore();
    f = fixture(store);
  });
  afterEach(() => {
    f.oauth.close();
    store.close();
    vi.useRealTimers();
  });

  it("allow: the deployment's own token, with the credential to strip and the decision unchanged", async () => {
    const d = restRoute(f, 'iris');
    const v = await allowed(rest(f, d, `Bearer ${await tokenFor(f, 'iriskey')}`));
    expect(v.strip).toEqual(['authorization']);
    expect(v.decision).toBe(d);
  });

  it('allow: a token in the query leaves the upstream path without it', async () => {
    const token = await tokenFor(f, 'iriskey');
    const d = restRoute(f, 'iris', `?access_token=${token}&x=1`);
    expect(d.upstreamPath).toContain('access_token=');
    const v = await allowed(rest(f, d, undefined, `/seldon/models/iris/api/v1.0/predictions?access_token=${token}&x=1`));
    expect(v.decision.upstreamPath).not.toContain('access_token');
    expect(v.decision.upstreamPath).toContain('x=1');
    expect(v.decision.backend).toBe(d.backend);
  });

  it('deny: no token → 401 UNAUTHENTICATED with the bare challenge (gRPC UNAUTHENTICATED)', async () => {
    const route = restRoute(f, 'iris');
    const v = await denied(rest(f, route));
    expect(v).toMatchObject({ status: 401, reason: 'UNAUTHENTICATED', message: 'Full authentication is required to access this resource', headers: { 'www-authenticate': BEARER } });
    expect(v.body).toBeUndefined();
    expect(grpcStatusOf(v.reason)).toBe(GrpcStatus.UNAUTHENTICATED);
    // The gate only says what the refusal counts; it writes nothing itself.
    expect(v.tally).toEqual({ authFailure: 'missing', check: 'oauth', backend: route.backend });
    expect((await f.metrics.authFailures.get()).values).toEqual([]);
  });

  it('deny: a bad token → 401 invalid_token', async () => {
    const v = await denied(rest(f, restRoute(f, 'iris'), 'Bearer bogus'));
    expect(v).toMatchObject({ status: 401, reason: 'UNAUTHENTICATED', message: 'Invalid access token', headers: { 'www-authenticate': `${BEARER}, error="invalid_token"` } });
  });

  it("deny: another deployment's token → 403 FORBIDDEN (gRPC PERMISSION_DENIED)", async () => {
    const v = await denied(rest(f, restRoute(f, 'iris'), `Bearer ${await tokenFor(f, 'fraudkey')}`));
    expect(v).toMatchObject({
      status: 403,
      reason: 'FORBIDDEN',
      message: 'this token is for models/fraud, not for models/iris',
      headers: { 'www-authenticate': `${BEARER}, error="insufficient_scope"` },
    });
    expect(grpcStatusOf(v.reason)).toBe(GrpcStatus.PERMISSION_DENIED);
  });

  it('deny: an expired token → 401 (the memory store forgets it: invalid; a record read past its expiry: expired)', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const token = await tokenFor(f, 'iriskey');
    // The record as the store holds it, read before it expires (Redis can hand one back a little late).
    const record = await store.lookup(tokenHash(token));
    expect(record).not.toBeNull();
    vi.setSystemTime(Date.now() + 61_000);
    const forgotten = await denied(rest(f, restRoute(f, 'iris'), `Bearer ${token}`));
    expect(forgotten).toMatchObject({ status: 401, reason: 'UNAUTHENTICATED', message: 'Invalid access token' });
    // A store that still returns the record once it has expired.
    const late: TokenStore = Object.assign(Object.create(store) as TokenStore, { lookup: async () => record });
    const g = fixture(late);
    try {
      const v = await denied(rest(g, restRoute(g, 'iris'), `Bearer ${token}`));
      expect(v).toMatchObject({ status: 401, reason: 'UNAUTHENTICATED', message: 'Access token expired', headers: { 'www-authenticate': `${BEARER}, error="invalid_token"` } });
    } finally {
      g.oauth.close();
    }
  });

  it('deny: the token store unavailable → 503 AUTH_BACKEND_UNAVAILABLE, retry-after 1 (gRPC UNAVAILABLE, no metadata)', async () => {
    const down: TokenStore = Object.assign(Object.create(store) as TokenStore, { lookup: () => Promise.reject(new Error('connection refused')) });
    const g = fixture(down);
    try {
      const v = await denied(rest(g, restRoute(g, 'iris'), 'Bearer whatever'));
      expect(v).toMatchObject({ status: 503, reason: 'AUTH_BACKEND_UNAVAILABLE', message: 'the token store is unavailable for models/iris', headers: { 'retry-after': '1' } });
      expect(v.metadata).toBeUndefined();
      expect(grpcStatusOf(v.reason)).toBe(GrpcStatus.UNAVAILABLE);
    } finally {
      g.oauth.close();
    }
  });

  it('rate limits alone: decided at once (no promise), then 429 RATE_LIMITED with retry-after in both protocols', async () => {
    const d = restRoute(f, 'limited');
    const first = rest(f, d);
    expect(first).not.toBeInstanceOf(Promise);
    expect(first).toEqual({ allow: true, decision: d, strip: [] });
    const second = rest(f, d);
    expect(second).not.toBeInstanceOf(Promise);
    const v = second as Deny;
    expect(v.allow).toBe(false);
    expect(v.status).toBe(429);
    expect(v.reason).toBe('RATE_LIMITED');
    expect(v.message).toMatch(/^rate limit 1\/m of models\/limited exceeded: retry in \d+ s$/);
    expect(v.headers?.['retry-after']).toMatch(/^\d+$/);
    expect(v.metadata).toEqual(v.headers);
    expect(grpcStatusOf(v.reason)).toBe(GrpcStatus.RESOURCE_EXHAUSTED);
  });

  it('auth, then the rate limit: the second call with a good token is limited', async () => {
    const token = await tokenFor(f, 'fraudkey');
    const d = restRoute(f, 'fraud');
    await allowed(rest(f, d, `Bearer ${token}`));
    expect(await denied(rest(f, d, `Bearer ${token}`))).toMatchObject({ status: 429, reason: 'RATE_LIMITED' });
  });
});

describe('Gatekeeper verdicts (OAuth front end and gRPC)', () => {
  let store: MemoryTokenStore;
  let f: Fixture;
  beforeEach(() => {
    store = new MemoryTokenStore();
    f = fixture(store);
  });
  afterEach(() => {
    f.oauth.close();
    store.close();
  });

  it("REST front end: the owner's route; a missing token gets the Spring OAuth2 body; dot segments 400 at once", async () => {
    expect(f.gate.frontEndActive).toBe(true);
    const token = await tokenFor(f, 'iriskey');
    const ok = await allowed(f.gate.api({ url: '/api/v1.0/predictions', method: 'POST', headers: { authorization: `Bearer ${token}`, host: 'gw' } }));
    expect(ok.decision.backend.origin.deployment).toBe('iris');
    expect(ok.strip).toEqual(['authorization']);
    const missing = await denied(f.gate.api({ url: '/api/v1.0/predictions', method: 'POST', headers: {} }));
    expect(missing).toMatchObject({ status: 401, headers: { 'www-authenticate': BEARER } });
    expect(JSON.parse(missing.body!)).toEqual({ error: 'unauthorized', error_description: 'Full authentication is required to access this resource' });
    const dots = f.gate.api({ url: '/api/v1.0/../predictions', method: 'POST', headers: {} });
    expect(dots).not.toBeInstanceOf(Promise);
    expect(dots).toMatchObject({ allow: false, status: 400, reason: 'BAD_REQUEST' });
  });

  it('gRPC front end: oauth_token (or a Bearer authorization) is stripped; the owner decides the route', async () => {
    const token = await tokenFor(f, 'iriskey');
    const headers: IncomingHttpHeaders = { ':path': '/seldon.protos.Seldon/Predict', oauth_token: token };
    expect(grpcFrontEndCall(headers, f.gate.frontEndActive)).toBe(true);
    const none = grpcRoute(f, 'nobody');
    expect(none.ok).toBe(false);
    const v = await allowed(f.gate.grpc(headers, none));
    expect(v.strip).toEqual(['oauth_token']);
    expect(v.decision.backend.origin.deployment).toBe('iris');
    expect(headers.oauth_token).toBe(token); // the gate changes nothing itself
    const b = await allowed(f.gate.grpc({ ':path': '/seldon.protos.Seldon/Predict', authorization: `Bearer ${token}` }, none));
    expect(b.strip).toEqual(['oauth_token', 'authorization']);
    const other = await denied(f.gate.grpc({ ':path': '/other.Service/Call', oauth_token: token }, none));
    expect(other.reason).toBe('NO_ROUTE');
    expect(grpcStatusOf(other.reason)).toBe(GrpcStatus.UNIMPLEMENTED);
  });

  it('gRPC gated route: a bad token is UNAUTHENTICATED; a good one is allowed on the route it matched', async () => {
    const d = grpcRoute(f, 'iris');
    expect(d.ok).toBe(true);
    const bad = await denied(f.gate.grpc({ oauth_token: 'bogus' }, d));
    expect(grpcStatusOf(bad.reason)).toBe(GrpcStatus.UNAUTHENTICATED);
    expect(bad.message).toBe('Invalid access token');
    const ok = await allowed(f.gate.grpc({ oauth_token: await tokenFor(f, 'iriskey') }, d));
    expect(ok.decision).toBe(d);
  });
});
