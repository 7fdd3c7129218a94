/**
 * prom-client's default process metrics (CPU, memory, heap, descriptors, handles, GC, version)
 * except its event-loop lag gauges (`nodejs_eventloop_lag_*`): the event loop has one set of
 * series, `seldon_gateway_event_loop_delay_seconds` (runtime-metrics.ts), a histogram per process
 * that sums across workers, where prom-client's gauges are reset at every scrape and averaged. Left
 * out, its monitor (a second timer sampling the loop at the same rate) does not run either.
 *
 * `collectDefaultMetrics` takes no list, so each default is registered by its own module, as
 * `collectDefaultMetrics` itself does (prom-client 15: lib/metrics/<name>, named by `metricsList`).
 */
import { createRequire } from 'node:module';
import { collectDefaultMetrics, type Registry } from 'prom-client';

type DefaultMetric = (registry: Registry, config: Record<string, unknown>) => void;

const require = createRequire(import.meta.url);
const LEFT_OUT = new Set(['eventLoopLag']);

export function collectProcessMetrics(registry: Registry): void {
  const names = (collectDefaultMetrics as unknown as { metricsList: readonly string[] }).metricsList;
  for (const name of names) {
    if (LEFT_OUT.has(name)) continue;
    (require(`prom-client/lib/metrics/${name}`) as DefaultMetric)(registry, {});
  }
}
