/**
 * What each half of a cloudevents sink through Redis costs per event (docs/payload-logging.md#delivery),
 * measured in this one process with no gateway around it, so that a change to either half shows in
 * seconds rather than in log-bench.ts's quarter of an hour; and beside them the floor that any
 * shipper of binary-mode CloudEvents pays on this machine, one POST per event:
 *
 *   floor    one keep-alive HTTP/1.1 POST of a 1 KiB event over raw sockets, `--connections` at a
 *            time: the request prebuilt, the answer found by its blank line (no parsing, no timers)
 *   writer   the data plane's half: the events of logged requests (a request and a response of
 *            1 KiB, a decision record) offered to the sink's writer (stream-writer.ts) at `--rate`
 *            events a second, batched and appended to the sink's stream; the CPU above the same
 *            loop offering nothing
 *   shipper  the control plane's half (shipper.ts): those events read from the stream, POSTed to
 *            a receiver in a process of its own (load/lib/node-backend.ts), acknowledged
 *
 * CPU is this process's (process.cpuUsage: every thread, the collector's included), per event; each
 * row the median of `--rounds` (after one more that warms up and is not counted).
 *
 *   npx vite-node load/log-ship-bench.ts [--events 3000] [--rate 150] [--connections 16] [--rounds 3]
 */
import { mkdtempSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Registry } from 'prom-client';
import { RedisConnection } from '../gateway/auth/redis.js';
import { parseLogSinks, type LogSinkConfig } from '../gateway/config/log-sinks.js';
import { fixedAttributes, newEvent, type EventHead } from '../gateway/payload-log/event.js';
import { LogMetrics } from '../gateway/payload-log/metrics.js';
import { LogSinks } from '../gateway/payload-log/sinks.js';
import { bufferKey } from '../gateway/payload-log/stream-writer.js';
import { startRedis } from '../test/helpers/redis.js';
import { nodeScript, runMain, sleep, startServer, waitFor } from './lib/children.js';
import { freePort, postStatus } from './lib/http.js';
import { f1, log, median, table } from './lib/report.js';

const LIB = join(dirname(fileURLToPath(import.meta.url)), 'lib');
/** How often the writer loop offers what came in meanwhile (a gateway's logged requests end one by one; 20 ms is close enough for a batch that lingers 200 ms). */
const TICK_MS = 20;

/** µs of this process's CPU (user and system, every thread) that `work` took. */
async function cpuUs(work: () => Promise<void>): Promise<number> {
  const t = process.cpuUsage();
  await work();
  const d = process.cpuUsage(t);
  return d.user + d.system;
}

/** `n` POSTs of `body` over `connections` keep-alive connections to `port`, each sent when the last answer on its connection arrived. */
async function rawPosts(port: number, n: number, connections: number, body: Buffer): Promise<void> {
  const head = `POST / HTTP/1.1\r\nhost: 127.0.0.1:${port}\r\nce-specversion: 1.0\r\nce-id: 1\r\nce-type: io.seldon.serving.inference.request\r\nce-source: bench\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n`;
  const request = Buffer.concat([Buffer.from(head), body]);
  const sockets = await Promise.all(
    Array.from(
      { length: connections },
      () =>
        new Promise<net.Socket>((resolve) => {
          const s = net.connect(port, '127.0.0.1', () => resolve(s));
        }),
    ),
  );
  let sent = 0;
  let answered = 0;
  await new Promise<void>((resolve) => {
    for (const s of sockets) {
      s.on('data', (d: Buffer) => {
        // One answer per chunk on loopback with one request in flight per connection.
        if (d.indexOf('\r\n\r\n') < 0) return;
        if (++answered === n) resolve();
        else if (sent < n) {
          sent++;
          s.write(request);
        }
      });
      if (sent < n) {
        sent++;
        s.write(request);
      }
    }
  });
  for (const s of sockets) s.destroy();
}

/** The events of one logged request, as request-log.ts makes them. */
function loggedRequest(i: number, body: Buffer, record: string, base: Omit<EventHead, 'requestId'>): ReturnType<typeof newEvent>[] {
  const head: EventHead = { ...base, requestId: `bench-${i}` };
  return [newEvent(head, 'request', 'application/json', Buffer.from(body)), newEvent(head, 'response', 'application/json', Buffer.from(body)), newEvent(head, 'decision', 'application/json', record)];
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      events: { type: 'string', default: '3000' },
      rate: { type: 'string', default: '150' },
      connections: { type: 'string', default: '16' },
      rounds: { type: 'string', default: '3' },
    },
  });
  const events = Number(values.events);
  const rate = Number(values.rate);
  const connections = Number(values.connections);
  const rounds = Number(values.rounds);
  const dir = mkdtempSync(join(tmpdir(), 'log-ship-bench-'));
  const port = await freePort();
  const receiver = startServer('receiver', join(dir, 'receiver.log'), undefined, [process.execPath, ...nodeScript(LIB, 'node-backend')], { BENCH_PORT: String(port) });
  await waitFor('receiver', receiver, async () => (await postStatus(`http://127.0.0.1:${port}/`, '{}')) === 200);
  const redis = await startRedis();
  const sinks: LogSinkConfig[] = parseLogSinks(`- name: logger\n  type: cloudevents\n  url: http://127.0.0.1:${port}/\n  concurrency: ${connections}\n`);
  const connection = new RedisConnection(redis.url, undefined);
  for (const until = Date.now() + 10_000; !connection.up; await sleep(20)) if (Date.now() > until) throw new Error('Redis did not connect within 10 s');
  const metrics = LogMetrics.of(new Registry());
  const body = Buffer.from(`{"data":{"ndarray":[[${Array.from({ length: 200 }, (_, i) => (i / 1000).toFixed(3)).join(',')}]]}}`.slice(0, 1024).padEnd(1024, ' '));
  const record = JSON.stringify({
    deployment: 'payload',
    predictor: 'main',
    reason: 'weights',
    weights: { main: 100 },
    attempts: [{ endpoint: '127.0.0.1:8000', status: 200 }],
    status: 200,
    latencyMs: 1.234,
  });
  const base = { modelId: 'main', service: 'payload', namespace: 'models', endpoint: 'main', protocol: 'seldon', fixed: undefined };
  const fixed = fixedAttributes(base);
  const head = { ...base, fixed };
  const key = bufferKey('logger');

  /** The writer loop: `rate` events a second for `events`, offered or not. */
  const offer = async (writer: LogSinks | undefined): Promise<void> => {
    const perTick = Math.max(3, Math.round((rate * TICK_MS) / 1000 / 3) * 3);
    for (let made = 0; made < events; made += perTick) {
      for (let i = made; i < made + perTick && i < events; i += 3) for (const e of loggedRequest(i, body, record, head)) if (writer !== undefined) writer.emit(['logger'], e);
      await sleep(TICK_MS);
    }
    await writer?.drain(30_000);
  };
  /** Until the shippers' group has read and acknowledged every entry. */
  const shipped = async (): Promise<void> => {
    const until = Date.now() + 120_000;
    for (;;) {
      const groups = (await connection.client.call('XINFO', 'GROUPS', key)) as unknown[][];
      const g = groups[0];
      if (g !== undefined && Number(g[g.indexOf('lag') + 1]) === 0 && Number(g[g.indexOf('pending') + 1]) === 0) return;
      if (Date.now() > until) throw new Error('the shipper did not deliver every event within 2 minutes');
      await sleep(20);
    }
  };

  const floor: number[] = [];
  const writer: number[] = [];
  const shipper: number[] = [];
  // Round 0 warms up (the JIT, the connections) and is not counted.
  for (let round = 0; round <= rounds; round++) {
    await connection.client.call('DEL', key);
    floor.push((await cpuUs(() => rawPosts(port, events, connections, body))) / events);
    const idle = await cpuUs(() => offer(undefined));
    const w = new LogSinks({ role: 'writer', redis: connection, metrics });
    w.apply(sinks);
    writer.push(Math.max(0, (await cpuUs(() => offer(w))) - idle) / events);
    const length = Number(await connection.client.call('XLEN', key));
    if (length !== events) throw new Error(`the stream holds ${length} events, not ${events}`);
    const s = new LogSinks({ role: 'shipper', redis: connection, metrics });
    shipper.push(
      (await cpuUs(async () => {
        s.apply(sinks);
        await shipped();
      })) / events,
    );
    s.close();
    if (round === 0) {
      for (const xs of [floor, writer, shipper]) xs.length = 0;
      continue;
    }
    log(`round ${round}: floor ${f1(floor.at(-1))}, writer ${f1(writer.at(-1))}, shipper ${f1(shipper.at(-1))} µs CPU per event`);
  }
  log(
    table(
      ['half', 'µs CPU per event (median)'],
      [
        ['floor: one raw keep-alive POST', f1(median(floor))],
        ['writer: offered, batched, appended to the stream', f1(median(writer))],
        ['shipper: read, POSTed, acknowledged', f1(median(shipper))],
      ],
    ),
  );
  log(`${events} events per round (a third each request, response, decision; bodies 1 KiB), offered at ${rate}/s, ${connections} connections to the receiver, ${rounds} rounds`);
  connection.close();
  receiver.child.kill('SIGTERM');
  await redis.stop();
}

runMain('log-ship-bench', main);
