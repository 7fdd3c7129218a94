/**
 * A sink removed from --log-sinks lets go of everything it held in this process: its POSTs in
 * flight end and its connections to the sink close, its file is closed (a write in flight
 * included), its timers stop (nothing is sent to it again), the bytes it held leave the gauge, and
 * what it still held, in memory or in flight, is counted as dropped (`removed`). Over real sockets:
 * a sink that never answers, a file. (Its counters' series follow after --series-grace:
 * test/gateway/observe/series-reaper.unit.test.ts.)
 */
import { mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { RedisConnection } from '../../../gateway/auth/redis.js';
import { parseLogSinks } from '../../../gateway/config/log-sinks.js';
import { newEvent, type EventHead } from '../../../gateway/payload-log/event.js';
import { LogMetrics } from '../../../gateway/payload-log/metrics.js';
import { LogSinks } from '../../../gateway/payload-log/sinks.js';
import { startEventReceiver, type EventReceiver } from '../../helpers/event-receiver.js';
import { startRedis } from '../../helpers/redis.js';
import { waitUntil } from '../../helpers/wait.js';

const head: EventHead = { requestId: 'r1', modelId: 'clf', service: 'iris', namespace: 'ml', endpoint: 'main', protocol: 'seldon' };

/** This process's descriptors open on `path`. */
function openOn(path: string): number {
  let n = 0;
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      if (readlinkSync(`/proc/self/fd/${fd}`) === path) n++;
    } catch {
      // Closed meanwhile (the listing's own descriptor).
    }
  }
  return n;
}

describe('a sink removed from --log-sinks', () => {
  let receiver: EventReceiver | undefined;
  const dir = mkdtempSync(join(tmpdir(), 'sgw-sink-life-'));

  afterEach(async () => {
    await receiver?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('releases what it held: POSTs in flight end, connections and its file close, nothing more is sent, its gauge goes', async () => {
    receiver = await startEventReceiver('hang');
    const path = join(dir, 'events.jsonl');
    const registry = new Registry();
    const metrics = LogMetrics.of(registry);
    const sinks = new LogSinks({ role: 'writer', redis: undefined, metrics });
    // Batches of four, POSTed four at once: one batch in flight when the sink is removed, six events waiting.
    const configs = parseLogSinks(`- name: hole\n  type: cloudevents\n  url: ${receiver.url}\n  concurrency: 4\n  batch: 4\n- name: disk\n  type: file\n  path: ${path}\n  batch: 1\n`);
    sinks.apply(configs);
    for (let i = 0; i < 10; i++) sinks.emit(['hole', 'disk'], newEvent(head, 'request', 'application/json', `{"i":${i}}`));

    // Four POSTs the sink never answers are in flight on four connections; the file has every event.
    await waitUntil(async () => receiver!.posts >= 4 && receiver!.openConnections() === 4);
    await waitUntil(async () => readFileSync(path, 'utf8').split('\n').length > 10);
    expect(openOn(path)).toBe(1);
    const held = async (): Promise<string[]> => (await registry.metrics()).split('\n').filter((l) => l.startsWith('seldon_gateway_log_buffer_bytes{'));
    expect(await held()).toEqual([expect.stringMatching(/^seldon_gateway_log_buffer_bytes\{sink="hole"\} [1-9]/), 'seldon_gateway_log_buffer_bytes{sink="disk"} 0']);

    sinks.apply([]);
    await waitUntil(async () => receiver!.openConnections() === 0);
    await waitUntil(async () => openOn(path) === 0);
    expect(await held()).toEqual([]);
    // What waited, and what was in flight when it went (its POSTs failed as their connections closed), is counted as lost.
    const dropped = async (reason: string): Promise<number> =>
      (await metrics.drops.get()).values.filter((v) => v.labels.sink === 'hole' && v.labels.reason === reason).reduce((a, v) => a + v.value, 0);
    await waitUntil(async () => (await dropped('removed')) === 10);
    expect(receiver.posts).toBe(4);
    // A request still in flight through the change: its event is dropped as for a sink no longer named; nothing is sent.
    sinks.emit(['hole'], newEvent(head, 'request', 'application/json', '{}'));
    expect(await dropped('unknown_sink')).toBe(1);
    expect([receiver.posts, receiver.openConnections()]).toEqual([4, 0]);
  });

  it('a Redis stream writer removed or rebuilt lets go of the connection it shared: its listener goes with it', async () => {
    const redis = await startRedis();
    const connection = new RedisConnection(redis.url, undefined);
    try {
      await waitUntil(async () => connection.up);
      // What the connection tells of its state, and to whom: private, read here for its count alone.
      const listening = (): number => (connection as unknown as { listeners: unknown[] }).listeners.length;
      const before = listening();
      const sinks = new LogSinks({ role: 'writer', redis: connection, metrics: LogMetrics.of(new Registry()) });
      sinks.apply(parseLogSinks('- name: audit\n  type: redis-stream\n  stream: audit\n'));
      expect(listening()).toBe(before + 1);
      // Changed (a new writer) ten times, then removed: none of the old writers stays listening.
      for (let i = 1; i <= 10; i++) sinks.apply(parseLogSinks(`- name: audit\n  type: redis-stream\n  stream: audit\n  maxLen: ${1000 + i}\n`));
      expect(listening()).toBe(before + 1);
      sinks.apply([]);
      expect(listening()).toBe(before);
    } finally {
      connection.close();
      await redis.stop();
    }
  });
});
