/**
 * Stalls of this process's event loop and its garbage collector, as Prometheus histograms with a
 * `worker` label (the cluster worker's id, or `primary` for the process that is not a worker), so
 * one stalled worker stands out after the primary sums the workers' metrics (the aggregation adds
 * series with equal labels only).
 *
 * - `seldon_gateway_event_loop_delay_seconds`: a timer is due every PROBE_INTERVAL_MS (in a cluster
 *   primary, which serves no traffic, every PRIMARY_PROBE_INTERVAL_MS); each time it
 *   fires, how late it fired is observed. A loop blocked for 30 ms (a GC pause, a table compile, a
 *   long synchronous task) makes the probe due during it fire up to 30 ms late, so the histogram's
 *   high buckets count the stalls every request waiting on that loop also waited through. It is the
 *   sampling perf_hooks.monitorEventLoopDelay does, but into buckets Prometheus can rate and
 *   aggregate (prom-client's `nodejs_eventloop_lag_*` gauges are reset at every scrape and averaged
 *   across workers). One timer every 10 ms is ~100 callbacks a second: nothing beside the traffic.
 * - `seldon_gateway_gc_pause_seconds{kind}`: every GC pause on the main thread (a PerformanceObserver
 *   of `gc` entries), by kind: minor (scavenge), major (mark-compact), incremental (incremental
 *   marking), weakcb (weak callbacks). prom-client's `nodejs_gc_duration_seconds` is no substitute:
 *   summed over the processes, with buckets 1 ms, 10 ms, 100 ms, and it records only the first entry
 *   of each batch its observer is handed (pauses between two turns of the loop count as one).
 *
 * One sampler per process, whatever the number of GatewayMetrics registries (the tests run many
 * gateways in one process): the histograms are created once and registered in each registry.
 * The timer is unref'd and the observer keeps nothing alive.
 */
import cluster from 'node:cluster';
import { PerformanceObserver, constants, type PerformanceEntry } from 'node:perf_hooks';
import { Histogram, type Registry } from 'prom-client';

export const EVENT_LOOP_DELAY_METRIC = 'seldon_gateway_event_loop_delay_seconds';
export const GC_PAUSE_METRIC = 'seldon_gateway_gc_pause_seconds';
/** How often the event-loop probe is due in a process that serves traffic. */
export const PROBE_INTERVAL_MS = 10;
/**
 * How often it is due in a cluster primary: its stalls delay route changes and scrapes, not
 * requests, and an idle process woken 100 times a second (this probe, and prom-client's own
 * event-loop monitor at the same rate) spends about 2% of a core on being woken.
 */
export const PRIMARY_PROBE_INTERVAL_MS = 100;

/** 1 ms (the timer's own granularity) to 1 s. */
const DELAY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1];
/** Scavenges take a fraction of a millisecond to a few; full collections of a large heap, tens. */
const GC_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1];

const GC_KINDS: ReadonlyMap<number, string> = new Map([
  [constants.NODE_PERFORMANCE_GC_MINOR, 'minor'],
  [constants.NODE_PERFORMANCE_GC_MAJOR, 'major'],
  [constants.NODE_PERFORMANCE_GC_INCREMENTAL, 'incremental'],
  [constants.NODE_PERFORMANCE_GC_WEAKCB, 'weakcb'],
]);

/** The `worker` label of this process: its cluster worker id, or `primary`. */
export function workerLabel(): string {
  return cluster.isWorker && cluster.worker ? String(cluster.worker.id) : 'primary';
}

function gcKind(entry: PerformanceEntry): string {
  const detail = (entry as PerformanceEntry & { detail?: unknown }).detail;
  const kind = typeof detail === 'object' && detail !== null && 'kind' in detail ? (detail as { kind: unknown }).kind : undefined;
  return (typeof kind === 'number' && GC_KINDS.get(kind)) || 'other';
}

interface Sampler {
  readonly delay: Histogram<'worker'>;
  readonly gc: Histogram<'worker' | 'kind'>;
}

let sampler: Sampler | undefined;

function startSampler(intervalMs: number): Sampler {
  const worker = workerLabel();
  const delay = new Histogram({
    name: EVENT_LOOP_DELAY_METRIC,
    help: `How late a timer due every ${PROBE_INTERVAL_MS} ms (${PRIMARY_PROBE_INTERVAL_MS} ms in a cluster primary) fired, by process (worker: the cluster worker id, or primary): the time the event loop was blocked and every request on it waited.`,
    labelNames: ['worker'],
    buckets: DELAY_BUCKETS,
    registers: [],
  });
  const gc = new Histogram({
    name: GC_PAUSE_METRIC,
    help: 'Garbage-collection pauses of the main thread, by process (worker) and kind: minor (scavenge), major (mark-compact), incremental (incremental marking), weakcb.',
    labelNames: ['worker', 'kind'],
    buckets: GC_BUCKETS,
    registers: [],
  });

  const probe = delay.labels(worker);
  let last = performance.now();
  setInterval(() => {
    const now = performance.now();
    const late = now - last - intervalMs;
    last = now;
    probe.observe(late > 0 ? late / 1000 : 0);
  }, intervalMs).unref();

  const byKind = new Map<string, Histogram.Internal<'worker' | 'kind'>>();
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      const kind = gcKind(entry);
      let child = byKind.get(kind);
      if (!child) byKind.set(kind, (child = gc.labels(worker, kind)));
      child.observe(entry.duration / 1000);
    }
  }).observe({ entryTypes: ['gc'] });
  return { delay, gc };
}

/** Start this process's sampler (once: the first call's interval holds) and expose its histograms in `registry`. */
export function registerRuntimeMetrics(registry: Registry, intervalMs: number): void {
  sampler ??= startSampler(intervalMs);
  if (!registry.getSingleMetric(EVENT_LOOP_DELAY_METRIC)) registry.registerMetric(sampler.delay);
  if (!registry.getSingleMetric(GC_PAUSE_METRIC)) registry.registerMetric(sampler.gc);
}
