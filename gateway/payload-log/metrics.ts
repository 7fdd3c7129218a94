/**
 * Payload logging's metrics (docs/payload-logging.md#seen). Labelled by sink and event type only:
 * a deployment's traffic shows in the request metrics, not here.
 *
 * - `seldon_gateway_log_events_total{sink,type,result}`: `buffered` (written to the Redis stream
 *   that holds a cloudevents sink's events until it answers: the event counts as logged), `delivered`
 *   (the sink took it: a 2xx, an XADD to a redis-stream sink, a line written), `retried` (a delivery
 *   that failed and will be tried again), `dropped` (lost; why: the drops counter).
 * - `seldon_gateway_log_drops_total{sink,reason}`: `overflow` (the process's queue was full),
 *   `rejected` (the sink refused the event with a 4xx three times), `unknown_sink` (a name gone from
 *   --log-sinks while the table still named it: a request in flight through the change), `removed`
 *   (waiting for a sink when it left --log-sinks), `shutdown` (still waiting when the process stopped).
 * - `seldon_gateway_log_buffer_bytes{sink}`: events waiting in this process's memory.
 * - `seldon_gateway_log_sinks_reloads_total{result}`: the --log-sinks file read again while running.
 * - `seldon_gateway_log_claimed_total{sink}`: entries this replica's shipper claimed from another that
 *   left them pending past `claimIdle` (a replica that died).
 * - `seldon_gateway_log_backlog{sink}`, `seldon_gateway_log_pending{sink}`,
 *   `seldon_gateway_log_oldest_seconds{sink}`: a cloudevents sink's Redis stream as its shipper last
 *   saw it (every replica's primary reports the one stream): entries not yet acknowledged, of them
 *   those a shipper has read, and the age of the oldest.
 *
 * One set per registry (a single process's control plane and data plane share theirs). The series
 * of a sink go when it leaves --log-sinks: its gauges at once (`forget`, called by the sink set's
 * owner, payload-log/sinks.ts), its counters after `--series-grace` (each process's series reaper,
 * observe/series-reaper.ts, which follows the sink names that process's table compiled against).
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { EventKind } from './event.js';

export type EventResult = 'buffered' | 'delivered' | 'retried' | 'dropped';
export type DropReason = 'overflow' | 'rejected' | 'unknown_sink' | 'removed' | 'shutdown';

/** A cloudevents sink's stream, as its shipper last measured it. */
export interface Backlog {
  readonly entries: number;
  readonly pending: number;
  readonly oldestSeconds: number;
}

export class LogMetrics {
  readonly events: Counter<'sink' | 'type' | 'result'>;
  readonly drops: Counter<'sink' | 'reason'>;
  readonly reloads: Counter<'result'>;
  readonly claimed: Counter<'sink'>;
  /** Bytes each sink holds in this process's memory now, read at scrape time; keyed by sink, removed by `forget` (sinks.ts, when the sink leaves the file). */
  private readonly held = new Map<string, () => number>();
  /** Each cloudevents sink's stream as its shipper last measured it; the same owner. */
  private readonly backlogs = new Map<string, Backlog>();

  private constructor(registry: Registry) {
    const registers = [registry];
    this.events = new Counter({
      name: 'seldon_gateway_log_events_total',
      help: 'Payload and decision events by sink, type and what became of them (buffered, delivered, retried, dropped).',
      labelNames: ['sink', 'type', 'result'],
      registers,
    });
    this.drops = new Counter({
      name: 'seldon_gateway_log_drops_total',
      help: 'Events lost, by sink and reason (overflow, rejected, unknown_sink, removed, shutdown).',
      labelNames: ['sink', 'reason'],
      registers,
    });
    this.reloads = new Counter({
      name: 'seldon_gateway_log_sinks_reloads_total',
      help: 'Changes of the --log-sinks file read while running: success (in use now) or failure (invalid, or an entry refused: the sinks before stay in use).',
      labelNames: ['result'],
      registers,
    });
    this.claimed = new Counter({
      name: 'seldon_gateway_log_claimed_total',
      help: "Entries of a cloudevents sink's stream this replica's shipper claimed from another that left them pending longer than claimIdle (one that died).",
      labelNames: ['sink'],
      registers,
    });
    const held = this.held;
    new Gauge({
      name: 'seldon_gateway_log_buffer_bytes',
      help: "Bytes of events waiting in this process's memory for their sink (or for Redis).",
      labelNames: ['sink'],
      registers,
      collect() {
        this.reset();
        for (const [sink, bytes] of held) this.set({ sink }, bytes());
      },
    });
    const backlogs = this.backlogs;
    const gauge = (name: string, help: string, value: (b: Backlog) => number): Gauge<'sink'> =>
      new Gauge({
        name,
        help,
        labelNames: ['sink'],
        registers,
        // Every replica's primary measures the same stream: the largest, not the sum.
        aggregator: 'max',
        collect() {
          this.reset();
          for (const [sink, b] of backlogs) this.set({ sink }, value(b));
        },
      });
    gauge('seldon_gateway_log_backlog', "Entries of a cloudevents sink's Redis stream its sink has not acknowledged yet.", (b) => b.entries);
    gauge('seldon_gateway_log_pending', 'Of those, entries a shipper has read and not yet delivered (sent, or waiting for a retry).', (b) => b.pending);
    gauge('seldon_gateway_log_oldest_seconds', "Age of the oldest entry of a cloudevents sink's stream not yet acknowledged (0: none).", (b) => b.oldestSeconds);
  }

  private static readonly byRegistry = new WeakMap<Registry, LogMetrics>();

  static of(registry: Registry): LogMetrics {
    let m = LogMetrics.byRegistry.get(registry);
    if (m === undefined) LogMetrics.byRegistry.set(registry, (m = new LogMetrics(registry)));
    return m;
  }

  count(sink: string, type: EventKind, result: EventResult, n = 1): void {
    this.events.inc({ sink, type, result }, n);
  }

  dropped(sink: string, type: EventKind, reason: DropReason): void {
    this.events.inc({ sink, type, result: 'dropped' });
    this.drops.inc({ sink, reason });
  }

  /** `bytes` tells what `sink` holds in memory now. */
  holds(sink: string, bytes: () => number): void {
    this.held.set(sink, bytes);
  }

  backlog(sink: string, b: Backlog): void {
    this.backlogs.set(sink, b);
  }

  /**
   * The sink left --log-sinks: its gauges go at once (what it holds and its stream's backlog). Its
   * counters' series are the series reaper's (observe/series-reaper.ts): removed `--series-grace`
   * after it left, so a scrape still reads its last counts, the events lost with it included.
   */
  forget(sink: string): void {
    this.held.delete(sink);
    this.backlogs.delete(sink);
  }

  /** What one sink's state reads as now (the admin page; delivered and dropped since start). */
  stateOf(sink: string): { readonly bufferBytes: number; readonly backlog: Backlog | undefined } {
    return { bufferBytes: this.held.get(sink)?.() ?? 0, backlog: this.backlogs.get(sink) };
  }
}
