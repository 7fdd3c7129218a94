/**
 * At least once, through everything that goes wrong at once: a real Sentinel set (a primary, two
 * replicas, three sentinels), two gateway replicas (the real CLI) logging to one cloudevents sink
 * through its Redis stream, 2,000 predictions at 200/s (REST and gRPC, the real @grpc/grpc-js
 * client), and meanwhile:
 *
 * - the sink answers 503 for 10 s;
 * - replica A's cluster primary, its shipper, is SIGKILLed while it holds entries it read and could
 *   not deliver (its workers go with it): replica B claims them (XAUTOCLAIM after `claimIdle`);
 * - the Redis primary is SIGKILLed and a replica promoted (events appended before are on a replica
 *   already: WAIT 1; events logged meanwhile wait in the workers' memory).
 *
 * Every prediction is answered (logging never fails one), and every request, response and decision
 * event arrives with Seldon's attributes; duplicates are allowed and counted (printed), none is missing.
 * The traffic goes to replica B: a killed replica takes its own in-flight requests with it.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request, Agent } from 'undici';
import { grpcClients, startGrpcBackend, type GrpcBackend, type SeldonMessage } from '../../fixtures/grpc-backend.js';
import { startHttpBackend, type HttpBackend } from '../../fixtures/http-backend.js';
import { startCli, type CliGateway } from '../../helpers/cli.js';
import { startEventReceiver, type EventReceiver } from '../../helpers/event-receiver.js';
import { sdep, startTestGateway, type TestGateway } from '../../helpers/gateway.js';
import { md, predict as grpcPredict } from '../../helpers/grpc.js';
import { redisCli, startSentinelSet, type SentinelSet } from '../../helpers/redis-topology.js';
import { sleep, waitUntil } from '../../helpers/wait.js';
import { metricSum, scrape } from '../../helpers/observability.js';

const LOG = 'seldon.io/gateway-log';
const TOTAL = 2000;
const RATE = 200;
const TYPES = ['io.seldon.serving.inference.request', 'io.seldon.serving.inference.response', 'io.seldon.gateway.decision'];

describe('at least once: a sink down, a gateway primary and the Redis primary killed, under load', () => {
  let sentinel: SentinelSet;
  let receiver: EventReceiver;
  let model: HttpBackend;
  let grpcModel: GrpcBackend;
  let a: CliGateway;
  let b: CliGateway;
  const dir = mkdtempSync(join(tmpdir(), 'sgw-alo-'));

  beforeAll(async () => {
    [sentinel, receiver, model, grpcModel] = await Promise.all([startSentinelSet(), startEventReceiver(), startHttpBackend({ name: 'm' }), startGrpcBackend({ name: 'g' })]);
    mkdirSync(join(dir, 'manifests'));
    writeFileSync(join(dir, 'sinks.yaml'), `- name: logger\n  type: cloudevents\n  url: ${receiver.url}\n  retryMin: 50ms\n  retryMax: 500ms\n  claimIdle: 2s\n`);
    writeFileSync(join(dir, 'manifests', 'iris.yaml'), sdep('iris', 'ml', { predictors: [{ name: 'main', graph: { name: 'clf' } }] }, { [LOG]: 'sinks: [logger]' }));
    const args = [
      '--manifests',
      join(dir, 'manifests'),
      '--log-sinks',
      join(dir, 'sinks.yaml'),
      '--redis-url',
      sentinel.url,
      '--workers',
      '1',
      '--resolve',
      `iris-main.ml:8000=127.0.0.1:${model.port}`,
      '--resolve',
      `iris-main.ml:5001=127.0.0.1:${grpcModel.port}`,
      '--log-level',
      'warn',
    ];
    [a, b] = await Promise.all([startCli(args), startCli(args)]);
  }, 180_000);

  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    await Promise.all([receiver?.close(), model?.close(), grpcModel?.close(), sentinel?.stop()]);
    rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  it('2,000 predictions: every request, response and decision event arrives, duplicates counted, none missing', async () => {
    const agent = new Agent({ connections: 32 });
    const clients = grpcClients(`127.0.0.1:${b.port}`);
    const answered: boolean[] = new Array(TOTAL).fill(false);
    const one = async (i: number): Promise<void> => {
      const puid = `alo-${i}`;
      if (i % 2 === 0) {
        const r = await request(`http://127.0.0.1:${b.port}/seldon/ml/iris/api/v1.0/predictions`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'seldon-puid': puid },
          body: `{"data":{"ndarray":[[${i}]]}}`,
          dispatcher: agent,
        });
        await r.body.text();
        answered[i] = r.statusCode === 200;
      } else {
        const msg = { data: { ndarray: { values: [{ numberValue: i }] } } } as unknown as SeldonMessage;
        const o = await grpcPredict(clients, msg, md({ seldon: 'iris', namespace: 'ml', 'seldon-puid': puid }), { deadline: Date.now() + 20_000 });
        answered[i] = o.ok;
      }
    };
    const t0 = Date.now();
    const sent: Promise<void>[] = [];
    // The sink answers 503 for 10 s from 2.5 s in (the load runs 10 s); meanwhile replica A dies, then the Redis primary.
    const faults = (async () => {
      await sleep(2500);
      receiver.mode = 'unavailable';
      const retried = async (): Promise<number> => metricSum(await scrape(`http://127.0.0.1:${a.admin}`), 'seldon_gateway_log_events_total', { sink: 'logger', result: 'retried' });
      // Replica A's shipper has read entries it could not deliver: they are pending in its name when it dies.
      await waitUntil(async () => (await retried()) > 0, 10_000);
      a.child.kill('SIGKILL');
      await sleep(500);
      const old = sentinel.primary.port;
      await sentinel.primary.kill();
      await sentinel.waitForPromotion(old);
      await sleep(Math.max(0, t0 + 12_500 - Date.now()));
      receiver.mode = 'ok';
    })();
    // Paced: one request every 1000/RATE ms, whatever the answers take (an open loop).
    for (let i = 0; i < TOTAL; i++) {
      const wait = t0 + (i * 1000) / RATE - Date.now();
      if (wait > 0) await sleep(wait);
      sent.push(one(i));
    }
    await Promise.all(sent);
    await faults;
    clients.close();
    await agent.close();
    expect(answered.filter((x) => !x).length, 'predictions that failed').toBe(0);

    const expected = TOTAL * TYPES.length;
    await receiver.until((events) => new Set(events.map((e) => e.event.id)).size >= expected, 120_000).catch(() => undefined);
    const got = new Map<string, Set<string>>();
    for (const e of receiver.unique()) {
      const id = String(e.event['requestid']);
      if (!got.has(id)) got.set(id, new Set());
      got.get(id)!.add(e.event.type);
    }
    const missing: string[] = [];
    for (let i = 0; i < TOTAL; i++) for (const t of TYPES) if (!got.get(`alo-${i}`)?.has(t)) missing.push(`alo-${i} ${t}`);
    console.log(`at least once: ${receiver.unique().length} events, ${receiver.duplicates()} duplicate deliveries, ${receiver.posts} POSTs, ${missing.length} missing`);
    if (missing.length > 0) {
      const port = await sentinel.primaryPort();
      const info =
        port === undefined
          ? ''
          : `${await redisCli(port, 'XINFO', 'GROUPS', 'seldon-gateway:log:{logger}')}\n${await redisCli(port, 'XINFO', 'CONSUMERS', 'seldon-gateway:log:{logger}', 'shippers')}\nXLEN ${await redisCli(port, 'XLEN', 'seldon-gateway:log:{logger}')}`;
      console.log(`${info}\n${b.output().slice(-4000)}`);
    }
    expect(missing.slice(0, 20), `${missing.length} events missing`).toEqual([]);
    for (const e of receiver.unique().slice(0, 200)) {
      expect(e.event.specversion).toBe('1.0');
      expect({ ns: e.event['namespace'], svc: e.event['inferenceservicename'], endpoint: e.event['endpoint'], model: e.event['modelid'], protocol: e.event['protocol'] }).toEqual({
        ns: 'ml',
        svc: 'iris',
        endpoint: 'main',
        model: 'clf',
        protocol: 'seldon',
      });
    }
    expect(receiver.malformed).toEqual([]);
    // Replica B delivered what replica A had read and left pending when it died.
    expect(metricSum(await scrape(`http://127.0.0.1:${b.admin}`), 'seldon_gateway_log_claimed_total', { sink: 'logger' })).toBeGreaterThan(0);
  }, 240_000);
});

/**
 * No replica acknowledges (both killed): an append's `WAIT 1` times out, so its events are on the
 * primary only and do not count as logged; they are held for a replica (asked again with `WAIT`, not
 * written twice; newer events appended behind them), and the shipper delivers them from the
 * primary meanwhile, each once.
 */
describe('at least once: appends no replica acknowledges', () => {
  let sentinel: SentinelSet;
  let receiver: EventReceiver;
  let model: HttpBackend;
  let gw: TestGateway;
  const dir = mkdtempSync(join(tmpdir(), 'sgw-unacked-'));

  beforeAll(async () => {
    [sentinel, receiver, model] = await Promise.all([startSentinelSet(), startEventReceiver(), startHttpBackend({ name: 'm' })]);
    writeFileSync(join(dir, 'sinks.yaml'), `- name: logger\n  type: cloudevents\n  url: ${receiver.url}\n  retryMin: 50ms\n  retryMax: 200ms\n`);
    gw = await startTestGateway({
      manifests: { 'iris.yaml': sdep('iris', 'ml', { predictors: [{ name: 'main' }] }, { [LOG]: 'sinks: [logger]\nlog: decisions' }) },
      resolve: { 'iris-main.ml:8000': model.port },
      args: ['--log-sinks', join(dir, 'sinks.yaml'), '--redis-url', sentinel.url, '--redis-timeout', '200ms'],
    });
  }, 120_000);

  afterAll(async () => {
    await gw?.stop();
    await Promise.all([receiver?.close(), model?.close(), sentinel?.stop()]);
    rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  it('not counted as logged, held for a replica; delivered once each from the primary, none written twice', async () => {
    await Promise.all(sentinel.replicas.map((n) => n.kill()));
    for (let i = 0; i < 50; i++) {
      const r = await request(`${gw.url}/seldon/ml/iris/api/v1.0/predictions`, { method: 'POST', headers: { 'content-type': 'application/json', 'seldon-puid': `unacked-${i}` }, body: '{}' });
      await r.body.dump();
      expect(r.statusCode).toBe(200);
    }
    await receiver.until((events) => new Set(events.map((e) => e.event['requestid'])).size >= 50);
    const samples = await scrape(gw.adminUrl);
    expect(metricSum(samples, 'seldon_gateway_log_events_total', { sink: 'logger', result: 'buffered' })).toBe(0);
    // Held in memory until a replica has them (counted against the sink's queue bound).
    expect(metricSum(samples, 'seldon_gateway_log_buffer_bytes', { sink: 'logger' })).toBeGreaterThan(0);
    const port = (await sentinel.primaryPort())!;
    const stream = await redisCli(port, 'XINFO', 'STREAM', 'seldon-gateway:log:{logger}');
    expect(/entries-added\n(\d+)/.exec(stream)?.[1]).toBe('50');
    expect(receiver.unique()).toHaveLength(50);
    expect(receiver.duplicates()).toBe(0);
  }, 120_000);
});
