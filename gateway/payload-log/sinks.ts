/**
 * A process's log sinks, as --log-sinks last said (docs/payload-logging.md#sinks): what each
 * sink's events go through in this process, built from its entry and rebuilt when the entry
 * changes. Two roles, one class:
 *
 * - `writer` (each data plane): `emit` queues an event on each named sink's writer: a cloudevents
 *   sink's Redis stream (stream-writer.ts) with --redis-url, else its in-memory HTTP delivery
 *   (http-sink.ts); a redis-stream sink's stream; a file sink's file (file-sink.ts);
 * - `shipper` (each replica's control plane, with --redis-url): a cloudevents sink's shipper
 *   (shipper.ts), which delivers the stream every replica's writers fill.
 *
 * Lifetimes (docs/architecture.md#lifetimes): this set owns every writer and shipper (their
 * queues, timers, connections, files) and its sinks' gauges; a sink that leaves the file is closed
 * here and its gauges removed (LogMetrics.forget; its counters follow it after --series-grace, the
 * series reaper's), the events still waiting in this process's memory (or in a delivery then in
 * flight that fails) counted as dropped (`removed`), its Redis
 * stream set to expire in a week (shipper.ts `retire`: undelivered events wait that long for it to
 * come back); a sink whose entry
 * changed gets a new writer, which takes the old one's waiting events. At shutdown `drain` waits
 * (within the grace period) for the writers to hand on what they hold; what is left is counted
 * (`shutdown`).
 */
import type { Logger } from 'pino';
import type { RedisConnection } from '../auth/redis.js';
import type { LogSinkConfig } from '../config/log-sinks.js';
import type { LogEvent } from './event.js';
import { FileSink } from './file-sink.js';
import { HttpDelivery, type SinkHealth } from './http-sink.js';
import type { LogMetrics } from './metrics.js';
import type { Pump } from './pump.js';
import type { EventSink } from './request-log.js';
import { Shipper } from './shipper.js';
import { StreamWriter, bufferKey } from './stream-writer.js';

/** A sink as the admin page shows it. */
export interface SinkView {
  readonly name: string;
  readonly type: LogSinkConfig['type'];
  /** Where its events go: the URL (without its query), the stream key, the file. */
  readonly target: string;
  /** Where they wait first: this process's memory, or a Redis stream. */
  readonly via: 'memory' | 'redis';
  /** `ok`, `failing` (its last delivery failed; since when), `idle` (nothing delivered yet). */
  readonly state: 'ok' | 'failing' | 'idle';
  readonly failingSince: string | null;
}

interface Sink {
  readonly config: LogSinkConfig;
  readonly json: string;
  readonly writer?: Pump | undefined;
  readonly shipper?: Shipper | undefined;
}

const targetOf = (c: LogSinkConfig): string => (c.url !== undefined ? c.url.replace(/\?.*$/, '') : (c.stream ?? c.path ?? ''));

/** A sink as configured; its state from `health` when this process delivers it over HTTP (else `idle`: see its counts). */
export function sinkView(c: LogSinkConfig, redis: boolean, health?: SinkHealth): SinkView {
  const failing = health !== undefined && health.failingSince > 0;
  return {
    name: c.name,
    type: c.type,
    target: targetOf(c),
    via: redis && c.type !== 'file' ? 'redis' : 'memory',
    state: failing ? 'failing' : health?.last === undefined ? 'idle' : 'ok',
    failingSince: failing ? new Date(health.failingSince).toISOString() : null,
  };
}

export class LogSinks implements EventSink {
  private sinks = new Map<string, Sink>();

  constructor(
    private readonly d: {
      readonly role: 'writer' | 'shipper';
      /** The Redis connection events are written or shipped on (--redis-url); undefined: none. */
      readonly redis: RedisConnection | undefined;
      readonly metrics: LogMetrics;
      readonly log?: Logger | undefined;
    },
  ) {}

  /** Take the sinks as the file now says: new ones built, changed ones rebuilt, gone ones closed. */
  apply(configs: readonly LogSinkConfig[]): void {
    const next = new Map<string, Sink>();
    for (const c of configs) {
      const json = JSON.stringify(c);
      const old = this.sinks.get(c.name);
      if (old !== undefined && old.json === json) {
        next.set(c.name, old);
        continue;
      }
      const sink = this.build(c, json);
      next.set(c.name, sink);
      if (old === undefined) continue;
      // Changed: the new writer takes what the old one still held (and what of its delivery in flight fails).
      const handOn = (events: readonly LogEvent[]): void => {
        for (const e of events) if (sink.writer === undefined || !sink.writer.offer(e)) this.d.metrics.dropped(c.name, e.kind, 'overflow');
      };
      handOn(this.stop(old, handOn));
    }
    for (const [name, old] of this.sinks) {
      if (next.has(name)) continue;
      old.shipper?.retire();
      const lost = (events: readonly LogEvent[]): void => {
        for (const e of events) this.d.metrics.dropped(name, e.kind, 'removed');
      };
      const left = this.stop(old, lost);
      if (left.length > 0) this.d.log?.warn({ sink: name, dropped: left.length }, 'log sink removed with events still waiting: they are dropped');
      lost(left);
      this.d.metrics.forget(name);
    }
    this.sinks = next;
  }

  private build(c: LogSinkConfig, json: string): Sink {
    const { role, redis, metrics } = this.d;
    const held = (w: Pump): Pump => {
      metrics.holds(c.name, () => w.heldBytes);
      return w;
    };
    if (role === 'shipper') {
      if (c.type !== 'cloudevents' || redis === undefined) return { config: c, json };
      const shipper = new Shipper(c.name, redis, { ...c, url: c.url! }, metrics, this.d.log);
      shipper.start();
      return { config: c, json, shipper };
    }
    if (c.type === 'file') return { config: c, json, writer: held(new FileSink(c.name, c.path!, c, metrics)) };
    if (redis !== undefined) {
      const target = c.type === 'cloudevents' ? { key: bufferKey(c.name), buffer: true } : { key: c.stream!, buffer: false };
      return { config: c, json, writer: held(new StreamWriter(c.name, redis, target, c, metrics, this.d.log)) };
    }
    if (c.type === 'cloudevents') return { config: c, json, writer: held(new HttpDelivery(c.name, c.url!, c, metrics)) };
    // A redis-stream sink without --redis-url is refused when the file is read (config/log-sinks.ts).
    return { config: c, json };
  }

  /** Stop `s`: what its writer still held is returned; `orphans` takes what its delivery in flight gives back. */
  private stop(s: Sink, orphans: (events: readonly LogEvent[]) => void): LogEvent[] {
    s.shipper?.stop();
    return s.writer?.close(orphans) ?? [];
  }

  /** Queue `e` on each of `names` (never blocks; a full queue or a name no longer configured is a counted drop). */
  emit(names: readonly string[], e: LogEvent): void {
    for (const name of names) {
      const w = this.sinks.get(name)?.writer;
      if (w === undefined) this.d.metrics.dropped(name, e.kind, 'unknown_sink');
      else if (!w.offer(e)) this.d.metrics.dropped(name, e.kind, 'overflow');
    }
  }

  /** Each sink of this set, with the health of its HTTP deliveries when this process makes them. */
  views(): SinkView[] {
    return [...this.sinks.values()].map(({ config: c, writer, shipper }) => sinkView(c, this.d.redis !== undefined, shipper?.health ?? (writer instanceof HttpDelivery ? writer.health : undefined)));
  }

  /** Wait (at most `ms`) for every writer to hand on what it holds, then stop; what is left is counted as dropped. */
  async drain(ms: number): Promise<void> {
    await Promise.all([...this.sinks.values()].map((s) => s.writer?.drained(ms)));
    this.close();
  }

  close(): void {
    for (const [name, s] of this.sinks) {
      const lost = (events: readonly LogEvent[]): void => {
        for (const e of events) this.d.metrics.dropped(name, e.kind, 'shutdown');
      };
      lost(this.stop(s, lost));
    }
    this.sinks.clear();
  }
}
