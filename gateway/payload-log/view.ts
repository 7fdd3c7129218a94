/**
 * Each log sink as the admin page shows it (docs/payload-logging.md#seen): where its events go,
 * how its deliveries are going (the shippers here, or the one data plane of a single process),
 * and what every process counted (gathered metrics, summed: a cluster's workers deliver without
 * Redis on their own, so their state is what they count).
 */
import type { MetricsJson } from '../observe/observed.js';
import type { SinkView } from './sinks.js';

/** The metrics the page reads, gathered from every process. */
export const LOG_METRICS = ['seldon_gateway_log_events_total', 'seldon_gateway_log_buffer_bytes', 'seldon_gateway_log_backlog', 'seldon_gateway_log_oldest_seconds'] as const;

export interface SinkState extends SinkView {
  readonly buffered: number;
  readonly delivered: number;
  readonly retried: number;
  readonly dropped: number;
  /** Bytes waiting in the processes' memory now. */
  readonly bufferBytes: number;
  /** A cloudevents sink's stream with Redis: entries not yet acknowledged, and the oldest's age (s). */
  readonly backlog: number | null;
  readonly oldestSeconds: number | null;
}

/** Every sink's state: `views` (the shippers' first: theirs is the delivery with Redis) and the gathered counts. */
export function sinkStates(views: readonly SinkView[], gathered: readonly MetricsJson[]): SinkState[] {
  const sums = new Map<string, Record<string, number>>();
  const add = (sink: string, key: string, v: number, max = false): void => {
    let s = sums.get(sink);
    if (s === undefined) sums.set(sink, (s = {}));
    s[key] = max ? Math.max(s[key] ?? 0, v) : (s[key] ?? 0) + v;
  };
  for (const process of gathered) {
    for (const m of process) {
      for (const v of m.values) {
        const sink = String(v.labels.sink ?? '');
        if (m.name === 'seldon_gateway_log_events_total') add(sink, String(v.labels.result), v.value);
        else if (m.name === 'seldon_gateway_log_buffer_bytes') add(sink, 'bufferBytes', v.value);
        // Every replica's shipper measures the one stream: the largest seen, not a sum.
        else if (m.name === 'seldon_gateway_log_backlog') add(sink, 'backlog', v.value, true);
        else if (m.name === 'seldon_gateway_log_oldest_seconds') add(sink, 'oldest', v.value, true);
      }
    }
  }
  const seen = new Set<string>();
  const out: SinkState[] = [];
  for (const view of views) {
    if (seen.has(view.name)) continue;
    seen.add(view.name);
    const s = sums.get(view.name) ?? {};
    const shipped = view.via === 'redis' && view.type === 'cloudevents';
    out.push({
      ...view,
      buffered: s.buffered ?? 0,
      delivered: s.delivered ?? 0,
      retried: s.retried ?? 0,
      dropped: s.dropped ?? 0,
      bufferBytes: s.bufferBytes ?? 0,
      backlog: shipped ? (s.backlog ?? 0) : null,
      oldestSeconds: shipped ? (s.oldest ?? 0) : null,
    });
  }
  return out;
}
