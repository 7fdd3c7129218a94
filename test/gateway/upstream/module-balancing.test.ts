/**
 * The ambassador Module's `load_balancer` over real sockets: the balancer of every route whose Mapping
 * sets none, Seldon's generated routes (REST and gRPC, from the SeldonDeployment) and custom Mappings alike,
 * over the endpoints of their Service's EndpointSlices (four replicas on 127.0.0.2–127.0.0.5); a Mapping's
 * own `load_balancer` stays its own; a changed Module file is applied.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../../gateway/config/parse.js';
import { startGateway, type Gateway } from '../../../gateway/process/serve.js';
import { grpcClients, type GrpcClients } from '../../fixtures/grpc-backend.js';
import { endpointSlice, seldonDeployment, startFakeKubeApi, tempDir, until, writeKubeconfig, type FakeKubeApi } from '../../fixtures/fake-kube-api.js';
import { grpcReplicas, REPLICA_IPS, restReplicas, type Replicas } from '../../fixtures/loopback-replicas.js';
import { replaceFile } from '../../helpers/gateway.js';
import { md, predict } from '../../helpers/grpc.js';
import { poll } from '../../helpers/cli.js';
import { restMapping } from '../../helpers/mappings.js';

const NS = 'models';
const PREDICT = `/seldon/${NS}/iris/api/v1.0/predictions`;
const module = (config: string): string => `apiVersion: getambassador.io/v2\nkind: Module\nname: ambassador\nconfig:\n${config.replace(/^/gm, '  ')}\n`;

let api: FakeKubeApi;
let tmp: ReturnType<typeof tempDir>;
let dir: string;
let file: string;
let gw: Gateway;
let rest: Replicas;
let grpcR: Replicas;
let clients: GrpcClients;
let url: string;

beforeAll(async () => {
  api = await startFakeKubeApi();
  tmp = tempDir();
  rest = await restReplicas(['ok', 'ok', 'ok', 'ok']);
  grpcR = await grpcReplicas(['ok', 'ok', 'ok', 'ok']);
  api.upsert(
    'endpointslices',
    endpointSlice(
      'iris-default',
      NS,
      'iris-default-abc',
      REPLICA_IPS.map((ip) => ({ ip })),
      [
        { name: 'http', port: rest.port },
        { name: 'grpc', port: grpcR.port },
      ],
    ),
  );
  // Seldon's routes of iris (its predictor `default`: Service iris-default), and two Mappings to the same Service.
  api.upsert('seldondeployments', seldonDeployment('iris', NS));
  const mappings = [restMapping('plain', NS, 'iris-default:8000'), restMapping('own-rr', NS, 'iris-default:8000', ['load_balancer:', '  policy: round_robin'])].join('\n---\n');
  api.upsert('seldondeployments', seldonDeployment('custom', NS, undefined, { 'seldon.io/ambassador-config': mappings }));
  dir = mkdtempSync(join(tmpdir(), 'sgw-module-lb-'));
  file = join(dir, 'module.yaml');
  writeFileSync(file, module('load_balancer:\n  policy: ring_hash\n  header: x-user'));
  const config = parseConfig(
    'serve',
    ['--kubernetes', '--kubeconfig', writeKubeconfig(tmp.dir, api), '--port', '0', '--admin-port', '0', '--host', '127.0.0.1', '--workers', '1', '--access-log', 'off', '--ambassador-module', file],
    {},
  );
  gw = await startGateway(config, { logger: pino({ level: 'silent' }) });
  await until(() => gw.ready(), 5000, 'ready');
  url = `http://127.0.0.1:${gw.port}`;
  clients = grpcClients(`127.0.0.1:${gw.port}`);
  for (const path of [PREDICT, `/seldon/${NS}/plain/`, `/seldon/${NS}/own-rr/`]) {
    await poll(
      `routed ${path}`,
      async () => (await fetch(`${url}${path}`, { method: 'POST', body: '{}' })).status,
      (s) => s === 200,
      10_000,
    );
  }
});

afterAll(async () => {
  clients?.close();
  await gw?.close();
  await rest?.close();
  await grpcR?.close();
  await api?.close();
  tmp?.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

/** The replica (its address) that answered one prediction through `path`. */
async function replica(path: string, headers: Record<string, string> = {}): Promise<string> {
  const r = await fetch(`${url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: '{"data":{"ndarray":[1]}}' });
  expect(r.status).toBe(200);
  return ((await r.json()) as { meta: { tags: { replica: string } } }).meta.tags.replica;
}

async function replicas(n: number, path: string, headers: (i: number) => Record<string, string>): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < n; i++) out.push(await replica(path, headers(i)));
  return out;
}

/** The replica that answered one Predict on Seldon's gRPC route of iris. */
async function grpcReplica(user: string): Promise<string> {
  const o = await predict(clients, { strData: 'x' }, md({ seldon: 'iris', namespace: NS, 'x-user': user }));
  if (!o.ok) throw o.error;
  return o.result.response.strData!;
}

describe("the Module's load_balancer", () => {
  it.each([PREDICT, `/seldon/${NS}/plain/`])('%s (no balancer of its own): one x-user reaches one replica 30 times; 80 values reach all four', async (path) => {
    expect(new Set(await replicas(30, path, () => ({ 'x-user': 'alice' }))).size).toBe(1);
    expect(new Set(await replicas(80, path, (i) => ({ 'x-user': `user-${i}` }))).size).toBe(4);
  });

  it("Seldon's gRPC route: one metadata value reaches one replica 20 times; 60 values reach all four", async () => {
    const alice = new Set<string>();
    for (let i = 0; i < 20; i++) alice.add(await grpcReplica('alice'));
    expect(alice.size).toBe(1);
    expect(REPLICA_IPS).toContain([...alice][0]);
    const many = new Set<string>();
    for (let i = 0; i < 60; i++) many.add(await grpcReplica(`user-${i}`));
    expect(many.size).toBe(4);
  });

  it('a Mapping with its own load_balancer keeps it: round robin, whatever the x-user', async () => {
    const got = await replicas(8, `/seldon/${NS}/own-rr/`, () => ({ 'x-user': 'alice' }));
    expect(got.slice(4)).toEqual(got.slice(0, 4));
    expect([...got.slice(0, 4)].sort()).toEqual([...REPLICA_IPS].sort());
  });

  it("a changed Module is applied: round_robin takes Seldon's route to each replica in turn", async () => {
    replaceFile(file, module('load_balancer:\n  policy: round_robin'));
    const got = await poll(
      'round robin',
      () => replicas(8, PREDICT, () => ({ 'x-user': 'alice' })),
      (l) => new Set(l.slice(0, 4)).size === 4 && JSON.stringify(l.slice(4)) === JSON.stringify(l.slice(0, 4)),
      10_000,
    );
    expect([...got.slice(0, 4)].sort()).toEqual([...REPLICA_IPS].sort());
  });
});
