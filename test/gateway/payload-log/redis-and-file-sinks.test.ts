/**
 * Payload logging through Redis and into files, with a real redis-server and a real gateway:
 *
 * - a cloudevents sink with --redis-url: every event is appended to the sink's stream and shipped
 *   from there; a sink answering 503 for a while loses nothing (each event arrives once it is back),
 *   and once it has taken everything the stream holds nothing (acknowledged entries are trimmed);
 * - a redis-stream sink: the events are entries of the operator's stream, attributes as fields;
 * - a file sink: JSON lines in the CloudEvents JSON format, and a rotated file is followed.
 */
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHttpBackend, type HttpBackend } from '../../fixtures/http-backend.js';
import { startEventReceiver, type EventReceiver } from '../../helpers/event-receiver.js';
import { sdep, startTestGateway, type TestGateway } from '../../helpers/gateway.js';
import { getText, post, predict, scrape, metricSum } from '../../helpers/observability.js';
import { startRedis, type TestRedis } from '../../helpers/redis.js';
import { redisCli } from '../../helpers/redis-topology.js';
import { waitUntil } from '../../helpers/wait.js';

const LOG = 'seldon.io/gateway-log';

describe('payload logging through Redis streams and files', () => {
  let redis: TestRedis;
  let receiver: EventReceiver;
  let model: HttpBackend;
  let gw: TestGateway;
  const dir = mkdtempSync(join(tmpdir(), 'sgw-log-'));
  const file = join(dir, 'events.jsonl');

  beforeAll(async () => {
    redis = await startRedis();
    receiver = await startEventReceiver();
    model = await startHttpBackend({ name: 'm' });
    const sinks = [
      `- name: logger\n  type: cloudevents\n  url: ${receiver.url}\n  retryMin: 20ms\n  retryMax: 200ms`,
      `- name: audit\n  type: redis-stream\n  stream: audit-events\n  maxLen: 1000`,
      `- name: sidecar\n  type: file\n  path: ${file}`,
    ].join('\n');
    writeFileSync(join(dir, 'sinks.yaml'), sinks);
    gw = await startTestGateway({
      manifests: {
        'shipped.yaml': sdep('shipped', 'ns', { predictors: [{ name: 'main' }] }, { [LOG]: 'sinks: [logger]' }),
        'audited.yaml': sdep('audited', 'ns', { predictors: [{ name: 'main' }] }, { [LOG]: 'sinks: [audit]\nlog: decisions' }),
        'filed.yaml': sdep('filed', 'ns', { predictors: [{ name: 'main' }] }, { [LOG]: 'sinks: [sidecar]\nlog: all' }),
      },
      resolve: { 'shipped-main.ns:8000': model.port, 'audited-main.ns:8000': model.port, 'filed-main.ns:8000': model.port },
      args: ['--log-sinks', join(dir, 'sinks.yaml'), '--redis-url', redis.url],
    });
  });

  afterAll(async () => {
    await gw?.stop();
    await model?.close();
    await receiver?.close();
    await redis?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a cloudevents sink answering 503 for a while loses nothing: its events wait in the stream, then all arrive, and the stream is trimmed', async () => {
    receiver.mode = 'unavailable';
    const ids: string[] = [];
    for (let i = 0; i < 150; i++) {
      const id = `shipped-${i}-${randomUUID()}`;
      ids.push(id);
      expect((await post(`${gw.url}/seldon/ns/shipped${predict}`, { 'seldon-puid': id })).status).toBe(200);
    }
    // Written to the stream before counting as logged, while the sink refuses them.
    await waitUntil(async () => metricSum(await scrape(gw.adminUrl), 'seldon_gateway_log_events_total', { sink: 'logger', result: 'buffered' }) === 450);
    expect(receiver.events).toHaveLength(0);
    // The page says the sink is failing and what waits for it in its stream.
    await waitUntil(async () =>
      /data-sink="logger">[^<]*<b>logger<\/b> \(cloudevents <code>[^<]+<\/code>, via redis\): failing since <time>[^<]+<\/time>; 0 delivered, 0 dropped, \d+ retried, 450 in its stream/.test(
        await getText(`${gw.adminUrl}/`),
      ),
    );
    expect(receiver.posts).toBeGreaterThan(0);
    receiver.mode = 'ok';
    await receiver.until((events) => new Set(events.map((e) => e.event.id)).size >= 450);
    const got = new Set(receiver.unique().map((e) => e.event['requestid']));
    for (const id of ids) expect(got.has(id), id).toBe(true);
    expect(receiver.unique()).toHaveLength(450);
    // Acknowledged entries leave the stream: it holds only what is owed.
    await waitUntil(async () => (await redisCli(redis.port, 'XLEN', 'seldon-gateway:log:{logger}')) === '0');
    const samples = await scrape(gw.adminUrl);
    expect(metricSum(samples, 'seldon_gateway_log_backlog', { sink: 'logger' })).toBe(0);
    expect(metricSum(samples, 'seldon_gateway_log_events_total', { sink: 'logger', result: 'delivered' })).toBe(450 + receiver.duplicates());
    expect(metricSum(samples, 'seldon_gateway_log_drops_total')).toBe(0);
  });

  it("a redis-stream sink: each event an entry of the operator's stream, its attributes as fields", async () => {
    const id = `audited-${randomUUID()}`;
    expect((await post(`${gw.url}/seldon/ns/audited${predict}`, { 'seldon-puid': id })).status).toBe(200);
    await waitUntil(async () => (await redisCli(redis.port, 'XRANGE', 'audit-events', '-', '+')).includes(id));
    const lines = (await redisCli(redis.port, 'XRANGE', 'audit-events', '-', '+')).split('\n');
    const at = lines.indexOf('requestid');
    expect(at).toBeGreaterThan(0);
    const fields = new Map<string, string>();
    for (let i = at - 10; i < lines.length - 1; i += 2) fields.set(lines[i]!, lines[i + 1]!);
    expect(fields.get('type')).toBe('io.seldon.gateway.decision');
    expect(fields.get('specversion')).toBe('1.0');
    expect(fields.get('inferenceservicename')).toBe('audited');
    expect(fields.get('datacontenttype')).toBe('application/json');
    expect(JSON.parse(fields.get('data')!)).toMatchObject({ deployment: 'ns/audited', predictor: 'main', status: 200 });
  });

  it('a file sink: JSON lines (CloudEvents JSON format), and a rotated file is followed', async () => {
    const id = `filed-${randomUUID()}`;
    expect((await post(`${gw.url}/seldon/ns/filed${predict}`, { 'seldon-puid': id }, '{"data":{"ndarray":[[3]]}}')).status).toBe(200);
    const lines = (): Record<string, unknown>[] =>
      existsSync(file)
        ? readFileSync(file, 'utf8')
            .split('\n')
            .filter(Boolean)
            .map((l) => JSON.parse(l) as Record<string, unknown>)
        : [];
    await waitUntil(async () => lines().filter((l) => l.requestid === id).length === 3);
    const req = lines().find((l) => l.requestid === id && l.type === 'io.seldon.serving.inference.request')!;
    expect(req).toMatchObject({ specversion: '1.0', inferenceservicename: 'filed', datacontenttype: 'application/json', data: { data: { ndarray: [[3]] } } });
    // logrotate's move: the next events go to a new file at the path.
    renameSync(file, `${file}.1`);
    const after = `after-${randomUUID()}`;
    await waitUntil(async () => {
      expect((await post(`${gw.url}/seldon/ns/filed${predict}`, { 'seldon-puid': after })).status).toBe(200);
      return lines().some((l) => l.requestid === after);
    });
    expect(readFileSync(`${file}.1`, 'utf8')).toContain(id);
  });
});
