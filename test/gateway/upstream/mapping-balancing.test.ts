/**
 * A Mapping's `load_balancer` over real sockets (docs/routing.md#a-mappings-upstream-balancing-connections-and-tls):
 * four model replicas on 127.0.0.2–127.0.0.5 behind an EndpointSlice from the Kubernetes API
 * stand-in, hand-written Mappings in `seldon.io/ambassador-config`, one gateway. What Emissary's
 * load-balancer acceptance test checks, here: a hashed key (header, cookie, source address) reaches
 * one replica every time, requests without the key spread; round robin takes each replica in turn;
 * a cookie with a ttl is made and handed to the client; when a replica leaves, only its keys move.
 */
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../../gateway/config/parse.js';
import { startGateway, type Gateway } from '../../../gateway/process/serve.js';
import { grpcClients, type GrpcClients } from '../../fixtures/grpc-backend.js';
import { endpointSlice, seldonDeployment, startFakeKubeApi, tempDir, until, writeKubeconfig, type FakeKubeApi } from '../../fixtures/fake-kube-api.js';
import { grpcReplicas, REPLICA_IPS, restReplicas, type Replicas } from '../../fixtures/loopback-replicas.js';
import { md, predict } from '../../helpers/grpc.js';
import { poll } from '../../helpers/cli.js';
import { grpcMapping, restMapping } from '../../helpers/mappings.js';

const NS = 'models';
let api: FakeKubeApi;
let tmp: ReturnType<typeof tempDir>;
let gw: Gateway;
let rest: Replicas;
let grpcR: Replicas;
let clients: GrpcClients;
let url: string;

const mapping = (name: string, lb: string[]): string => restMapping(name, NS, 'iris-default:8000', ['load_balancer:', ...lb.map((l) => `  ${l}`)]);

const slice = (ips: readonly string[]): void => {
  api.upsert(
    'endpointslices',
    endpointSlice(
      'iris-default',
      NS,
      'iris-default-abc',
      ips.map((ip) => ({ ip })),
      [
        { name: 'http', port: rest.port },
        { name: 'grpc', port: grpcR.port },
      ],
    ),
  );
};

beforeAll(async () => {
  api = await startFakeKubeApi();
  tmp = tempDir();
  rest = await restReplicas(['ok', 'ok', 'ok', 'ok']);
  grpcR = await grpcReplicas(['ok', 'ok', 'ok', 'ok']);
  slice(REPLICA_IPS);
  const mappings = [
    mapping('lb-header', ['policy: ring_hash', 'header: x-user']),
    mapping('lb-maglev', ['policy: maglev', 'header: x-user']),
    mapping('lb-cookie', ['policy: ring_hash', 'cookie:', '  name: lb-cookie']),
    mapping('lb-ttl', ['policy: maglev', 'cookie:', '  name: lb-ttl', '  ttl: 60s', `  path: /seldon/${NS}/lb-ttl/`]),
    mapping('lb-source', ['policy: ring_hash', 'source_ip: true']),
    mapping('lb-rr', ['policy: round_robin']),
    mapping('lb-least', ['policy: least_request']),
    grpcMapping('lb-grpc', NS, 'iris-default:5001', ['load_balancer:', '  policy: ring_hash', '  header: x-user']),
  ].join('\n---\n');
  api.upsert('seldondeployments', seldonDeployment('iris', NS, undefined, { 'seldon.io/ambassador-config': mappings }));
  const config = parseConfig(
    'serve',
    ['--kubernetes', '--kubeconfig', writeKubeconfig(tmp.dir, api), '--port', '0', '--admin-port', '0', '--host', '127.0.0.1', '--workers', '1', '--access-log', 'off'],
    {},
  );
  gw = await startGateway(config, { logger: pino({ level: 'silent' }) });
  await until(() => gw.ready(), 5000, 'ready');
  url = `http://127.0.0.1:${gw.port}`;
  clients = grpcClients(`127.0.0.1:${gw.port}`);
  // The Mappings route once the deployment is compiled and its slices are known.
  await poll(
    'routed',
    async () => (await fetch(`${url}/seldon/${NS}/lb-rr/`, { method: 'POST', body: '{}' })).status,
    (s) => s === 200,
    10_000,
  );
});

afterAll(async () => {
  clients?.close();
  await gw?.close();
  await rest?.close();
  await grpcR?.close();
  await api?.close();
  tmp?.cleanup();
});

/** One prediction through `path`; the replica that answered (its address) and the answer's Set-Cookie. */
async function send(path: string, headers: Record<string, string> = {}): Promise<{ replica: string; setCookie: string | null }> {
  const r = await fetch(`${url}/seldon/${NS}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: '{"data":{"ndarray":[1]}}' });
  expect(r.status).toBe(200);
  const body = (await r.json()) as { meta: { tags: { replica: string } } };
  return { replica: body.meta.tags.replica, setCookie: r.headers.get('set-cookie') };
}

const replicasOf = async (n: number, path: string, headers: (i: number) => Record<string, string>): Promise<string[]> => {
  const out: string[] = [];
  for (let i = 0; i < n; i++) out.push((await send(path, headers(i))).replica);
  return out;
};

describe('hashing on a header', () => {
  it.each(['lb-header', 'lb-maglev'])('%s: one value reaches one replica 30 times; 100 values reach all four; no value spreads', async (name) => {
    expect(new Set(await replicasOf(30, `/${name}/`, () => ({ 'x-user': 'alice' }))).size).toBe(1);
    expect(new Set(await replicasOf(100, `/${name}/`, (i) => ({ 'x-user': `user-${i}` }))).size).toBe(4);
    expect(new Set(await replicasOf(60, `/${name}/`, () => ({}))).size).toBeGreaterThanOrEqual(3);
  });

  it('gRPC: one metadata value reaches one replica 20 times; 60 values reach all four', async () => {
    const call = async (user: string): Promise<string> => {
      const o = await predict(clients, { strData: 'x' }, md({ seldon: 'lb-grpc', namespace: NS, 'x-user': user }));
      if (!o.ok) throw o.error;
      return o.result.response.strData!;
    };
    const alice = new Set<string>();
    for (let i = 0; i < 20; i++) alice.add(await call('alice'));
    expect(alice.size).toBe(1);
    expect(REPLICA_IPS).toContain([...alice][0]);
    const many = new Set<string>();
    for (let i = 0; i < 60; i++) many.add(await call(`user-${i}`));
    expect(many.size).toBe(4);
  });
});

describe('hashing on a cookie', () => {
  it('with the cookie: one replica; without it and without ttl: spread, and no cookie is made', async () => {
    const withCookie = await replicasOf(30, '/lb-cookie/', () => ({ cookie: 'other=1; lb-cookie=yes' }));
    expect(new Set(withCookie).size).toBe(1);
    const none: string[] = [];
    for (let i = 0; i < 60; i++) {
      const r = await send('/lb-cookie/');
      expect(r.setCookie).toBeNull();
      none.push(r.replica);
    }
    expect(new Set(none).size).toBeGreaterThanOrEqual(3);
  });

  it('with a ttl: a client without the cookie gets one (Envoy’s form), and with it comes back to the same replica', async () => {
    const first = await send('/lb-ttl/');
    expect(first.setCookie).toMatch(/^lb-ttl="[0-9a-f]{16}"; Max-Age=60; Path=\/seldon\/models\/lb-ttl\/; HttpOnly$/);
    const value = /^lb-ttl=("[0-9a-f]{16}")/.exec(first.setCookie!)![1]!;
    for (let i = 0; i < 20; i++) {
      const again = await send('/lb-ttl/', { cookie: `lb-ttl=${value}` });
      expect(again.replica).toBe(first.replica);
      expect(again.setCookie).toBeNull();
    }
    // Other clients get other cookies, and land on several replicas.
    const landed = new Set<string>();
    for (let i = 0; i < 40; i++) landed.add((await send('/lb-ttl/')).replica);
    expect(landed.size).toBeGreaterThanOrEqual(3);
  });
});

describe('other policies', () => {
  it('source_ip: every request from one client address reaches one replica', async () => {
    expect(new Set(await replicasOf(30, '/lb-source/', (i) => ({ 'x-user': `user-${i}` }))).size).toBe(1);
  });

  it('round_robin: eight requests in a row reach each replica twice, in turn', async () => {
    const got = await replicasOf(8, '/lb-rr/', () => ({}));
    expect(got.slice(4)).toEqual(got.slice(0, 4));
    expect([...got.slice(0, 4)].sort()).toEqual([...REPLICA_IPS].sort());
  });

  it('least_request: requests spread over the replicas', async () => {
    expect(new Set(await replicasOf(60, '/lb-least/', () => ({}))).size).toBeGreaterThanOrEqual(3);
  });
});

describe('when a replica leaves', () => {
  it.each(['lb-header', 'lb-maglev'])('%s: only its keys move; the others stay where they were', async (name) => {
    const keys = Array.from({ length: 40 }, (_x, i) => `key-${i}`);
    const before = await replicasOf(keys.length, `/${name}/`, (i) => ({ 'x-user': keys[i]! }));
    const gone = REPLICA_IPS[2]!;
    expect(before).toContain(gone);
    slice(REPLICA_IPS.filter((ip) => ip !== gone));
    try {
      // The set changed once the gateway's slices say so: no key reaches the replica that left.
      const after = await poll(
        'the replica left',
        () => replicasOf(keys.length, `/${name}/`, (i) => ({ 'x-user': keys[i]! })),
        (l) => !l.includes(gone),
        10_000,
      );
      for (let i = 0; i < keys.length; i++) {
        if (before[i] === gone) expect(after[i]).not.toBe(gone);
        else expect(after[i]).toBe(before[i]);
      }
    } finally {
      slice(REPLICA_IPS);
      await poll(
        'the replica is back',
        () => replicasOf(keys.length, `/${name}/`, (i) => ({ 'x-user': keys[i]! })),
        (l) => l.includes(gone),
        10_000,
      );
    }
  });
});
