/**
 * Metric series follow what exists (docs/observability.md#series-of-what-is-gone): a series whose
 * `namespace`/`deployment` (and `predictor`, where the metric has one) name a SeldonDeployment or
 * predictor that is no longer in the route table, or whose `sink` names a log sink gone from
 * --log-sinks (payload-log/metrics.ts), is removed once it has been gone for the grace
 * (`--series-grace`, two scrape intervals by default), so a scrape still reads its last increments,
 * as kube-state-metrics drops a deleted object's series and Envoy frees a removed cluster's stats.
 * Prometheus marks the series stale at its next scrape. A subject that comes back within the grace
 * keeps its series; one that comes back later starts them again from zero (a counter reset, which
 * `rate()` handles).
 *
 * One reaper per registry, so per process: each worker reaps its own series, and the primary its
 * own (the rollout counters); the primary's `/metrics` sums what the workers hold at each scrape, so
 * it follows them. Series of an endpoint address are their owner's (upstream/health-reports.ts
 * removes them when the endpoint leaves); gauges computed from state at each read (route weights,
 * ready endpoints, flow control, rollouts) follow the state themselves and are not touched here.
 *
 * The clock is injected; `sweep()` is what the timer runs (and tests call).
 */
import type { Registry } from 'prom-client';
import type { RouteTable } from '../../routing/types.js';
import type { GatewayMetrics } from './metrics.js';

type Labels = Record<string, string | number>;

/** What exists now: deployments as `ns/name`, predictors as `ns/name/predictor`; the --log-sinks names, when known. */
export interface LiveSubjects {
  readonly deployments: ReadonlySet<string>;
  readonly predictors: ReadonlySet<string>;
  /** Log sinks (gateway/payload-log/): series with a `sink` label follow them; undefined: those are not touched. */
  readonly sinks?: ReadonlySet<string> | undefined;
}

/** A metric whose series can be removed by their labels: prom-client's, and observe/bound-series.ts's. */
interface Reapable {
  readonly name: string;
  readonly labelNames?: readonly string[];
  /** A gauge computed when read (prom-client's `collect` option): it follows its state itself. */
  readonly collect?: unknown;
  get(): Promise<{ values: { labels: Labels }[] }>;
  remove(labels: Labels): void;
}

/** The subjects of `table`: every deployment it knows (accepted, degraded, rejected or skipped) and every predictor a route names. */
export function liveSubjects(table: RouteTable): LiveSubjects {
  const deployments = new Set<string>(table.deployments.keys());
  const predictors = new Set<string>();
  for (const g of table.groups) {
    for (const m of g.members) add(m.backend.origin);
    for (const m of g.mirrors) add(m.backend.origin);
  }
  function add(o: { namespace: string; deployment: string; predictor: string }): void {
    deployments.add(`${o.namespace}/${o.deployment}`);
    predictors.add(`${o.namespace}/${o.deployment}/${o.predictor}`);
  }
  return { deployments, predictors };
}

export interface SeriesReaperOptions {
  readonly registry: Registry;
  /** What exists now (the process's current table). */
  readonly live: () => LiveSubjects;
  /** How long a series outlives its subject. */
  readonly graceMs: number;
  /** Wall-clock ms (injected: tests move it). */
  readonly now?: () => number;
  /** Told the number of series removed by a sweep (when any). */
  readonly reaped?: (series: number) => void;
}

export class SeriesReaper {
  /** Subject (`d\0ns/name` or `p\0ns/name/predictor`) → when it was first seen gone. Its owner: this reaper, which drops an entry once its series are gone or its subject is back. */
  private readonly goneSince = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<number> | undefined;
  private readonly now: () => number;

  constructor(private readonly o: SeriesReaperOptions) {
    this.now = o.now ?? Date.now;
  }

  /** Sweep every `everyMs` (a quarter of the grace, within 1 to 15 s, when not given). */
  start(everyMs = Math.min(15_000, Math.max(1_000, this.o.graceMs / 4))): void {
    this.timer = setInterval(() => void this.sweep(), everyMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Remove the series whose subject has been gone for the grace; returns how many. One sweep at a time. */
  sweep(): Promise<number> {
    return (this.running ??= this.sweepOnce().finally(() => (this.running = undefined)));
  }

  private async sweepOnce(): Promise<number> {
    const live = this.o.live();
    const now = this.now();
    const seen = new Set<string>();
    const doomed: { metric: Reapable; labels: Labels; subject: string }[] = [];
    for (const m of this.o.registry.getMetricsAsArray() as unknown as Reapable[]) {
      const names = m.labelNames ?? [];
      if (m.collect !== undefined) continue;
      const byDeployment = names.includes('namespace') && names.includes('deployment');
      const sinks = byDeployment ? undefined : names.includes('sink') ? live.sinks : undefined;
      if (!byDeployment && sinks === undefined) continue;
      const byPredictor = names.includes('predictor');
      const series = new Map<string, Labels>();
      for (const { labels } of (await m.get()).values) {
        const own = seriesLabels(labels, names);
        series.set(names.map((n) => String(own[n])).join('\u0000'), own);
      }
      for (const labels of series.values()) {
        const subject = sinks === undefined ? deploymentSubject(labels, byPredictor, live) : sinkSubject(labels, sinks);
        if (subject === undefined) continue;
        seen.add(subject);
        let since = this.goneSince.get(subject);
        if (since === undefined) this.goneSince.set(subject, (since = now));
        if (now - since >= this.o.graceMs) doomed.push({ metric: m, labels, subject });
      }
    }
    for (const { metric, labels, subject } of doomed) {
      metric.remove(labels);
      seen.delete(subject);
    }
    // An entry goes once its series are gone or its subject is back.
    for (const subject of this.goneSince.keys()) if (!seen.has(subject)) this.goneSince.delete(subject);
    if (doomed.length > 0) this.o.reaped?.(doomed.length);
    return doomed.length;
  }
}

/** A series' deployment or predictor (`d\0ns/name`, `p\0ns/name/predictor`) when it is gone; undefined while it exists, or for no subject. */
function deploymentSubject(labels: Labels, byPredictor: boolean, live: LiveSubjects): string | undefined {
  const dep = String(labels['deployment']);
  // Not routed (empty labels): the gateway's own answers, never a subject.
  if (dep === '') return undefined;
  const name = `${String(labels['namespace'])}/${dep}${byPredictor ? `/${String(labels['predictor'])}` : ''}`;
  if ((byPredictor ? live.predictors : live.deployments).has(name)) return undefined;
  return `${byPredictor ? 'p' : 'd'}\u0000${name}`;
}

/** A series' log sink (`s\0name`) when it left --log-sinks (its late counts, a request in flight or a delivery that settled after, included). */
function sinkSubject(labels: Labels, sinks: ReadonlySet<string>): string | undefined {
  const sink = String(labels['sink'] ?? '');
  return sink === '' || sinks.has(sink) ? undefined : `s\u0000${sink}`;
}

/** A value's labels as its series has them: a histogram's bucket bound (`le`) is not a label of the series. */
function seriesLabels(labels: Labels, names: readonly string[]): Labels {
  const out: Labels = {};
  for (const n of names) out[n] = labels[n] ?? '';
  return out;
}

/** The series reaper of a process's metrics, over the table it routes on and the log sinks it compiled against (not started). */
export function seriesReaper(
  metrics: GatewayMetrics,
  state: { readonly current: RouteTable; readonly options: { readonly logSinks?: ReadonlySet<string> | undefined } },
  graceMs: number,
): SeriesReaper {
  const live = (): LiveSubjects => ({ ...liveSubjects(state.current), sinks: state.options.logSinks });
  return new SeriesReaper({ registry: metrics.registry, live, graceMs, reaped: () => metrics.seriesRemoved() });
}
