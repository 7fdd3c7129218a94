/**
 * Payload logging on a Redis Cluster (three primaries, three replicas): a cloudevents sink's
 * stream is one key, so one slot; its appends (with `WAIT 1`), the shipper's group reads, claims,
 * acknowledgements and trims all go to that slot's primary. Every event of 100 predictions
 * arrives, the sink answering 503 for the first half; a redis-stream sink's entries are on the
 * primary of its key's slot.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHttpBackend, type HttpBackend } from '../../fixtures/http-backend.js';
import { startEventReceiver, type EventReceiver } from '../../helpers/event-receiver.js';
import { sdep, startTestGateway, type TestGateway } from '../../helpers/gateway.js';
import { metricSum, post, predict, scrape } from '../../helpers/observability.js';
import { redisCli, startRedisCluster, type RedisClusterSet } from '../../helpers/redis-topology.js';
import { waitUntil } from '../../helpers/wait.js';

describe('payload logging on a Redis Cluster', () => {
  let cluster: RedisClusterSet;
  let receiver: EventReceiver;
  let model: HttpBackend;
  let gw: TestGateway;
  const dir = mkdtempSync(join(tmpdir(), 'sgw-log-cluster-'));

  beforeAll(async () => {
    [cluster, receiver, model] = await Promise.all([startRedisCluster(), startEventReceiver('unavailable'), startHttpBackend({ name: 'm' })]);
    writeFileSync(
      join(dir, 'sinks.yaml'),
      `- name: logger\n  type: cloudevents\n  url: ${receiver.url}\n  retryMin: 20ms\n  retryMax: 200ms\n- name: audit\n  type: redis-stream\n  stream: audit-events\n`,
    );
    gw = await startTestGateway({
      manifests: {
        'iris.yaml': sdep('iris', 'ml', { predictors: [{ name: 'main' }] }, { 'seldon.io/gateway-log': 'sinks: [logger, audit]' }),
      },
      resolve: { 'iris-main.ml:8000': model.port },
      args: ['--log-sinks', join(dir, 'sinks.yaml'), '--redis-url', cluster.url],
    });
  }, 180_000);

  afterAll(async () => {
    await gw?.stop();
    await Promise.all([receiver?.close(), model?.close(), cluster?.stop()]);
    rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  it('every event of 100 predictions arrives through the stream, the sink refusing the first half', async () => {
    for (let i = 0; i < 100; i++) {
      if (i === 50) receiver.mode = 'ok';
      expect((await post(`${gw.url}/seldon/ml/iris${predict}`, { 'seldon-puid': `cluster-${i}` })).status).toBe(200);
    }
    await receiver.until((events) => new Set(events.map((e) => e.event.id)).size >= 300, 60_000);
    const ids = new Set(receiver.unique().map((e) => String(e.event['requestid'])));
    for (let i = 0; i < 100; i++) expect(ids.has(`cluster-${i}`)).toBe(true);
    await waitUntil(async () => metricSum(await scrape(gw.adminUrl), 'seldon_gateway_log_events_total', { sink: 'audit', result: 'delivered' }) === 300);
    const port = await cluster.primaryOf('audit-events');
    expect(await redisCli(port, '-c', 'XLEN', 'audit-events')).toBe('300');
    const buffer = await cluster.primaryOf('seldon-gateway:log:{logger}');
    await waitUntil(async () => (await redisCli(buffer, 'XLEN', 'seldon-gateway:log:{logger}')) === '0', 30_000);
  }, 120_000);
});
