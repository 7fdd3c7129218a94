/**
 * What the gateway observed over the last few minutes, for the admin page: requests per
 * predictor and status, shadow outcomes and comparison results, as differences of the
 * `requests_total`, `shadow_requests_total` and `shadow_comparisons_total` counters.
 *
 * Works the same with one process or many: the counters are gathered from every process that
 * serves traffic (the cluster primary asks its workers, observe/observed-cluster.ts) and summed, so no
 * per-process state is needed. A sample is kept every 10 s for 5 minutes; a window is the
 * difference between a fresh sample and the oldest kept one (the one taken at start, before
 * any traffic, while the gateway is younger than the window). A counter that went down (a
 * worker restarted) counts from zero.
 *
 * Also here: `dataPlaneObservers`, the observation options of one data plane, turned on; built
 * before the data plane, whose proxies take them in their constructors.
 */
import { AggregatorRegistry, type Registry } from 'prom-client';
import type { Logger } from 'pino';
import { AccessLog, AccessLogOutput, type AccessSink } from './access-log.js';
import type { ObserveConfig } from '../config.js';
import type { GatewayMetrics } from './metrics.js';
import { GrpcObserve } from './observed-grpc.js';
import { RestObserve } from './observed-rest.js';
import { ShadowComparer, type Disagreement } from './shadow-compare.js';
import { Tracing } from './tracing.js';

/** One registry's metrics as `registry.getMetricsAsJSON()` gives them (and IPC carries them). */
export type MetricsJson = Awaited<ReturnType<Registry['getMetricsAsJSON']>>;

/** Everything gathered from the processes serving traffic at one moment. */
export interface Gathered {
  /** One entry per process (the primary's own, then each worker's). */
  readonly metrics: readonly MetricsJson[];
  /** Their kept shadow disagreements, merged (oldest first). */
  readonly disagreements: readonly Disagreement[];
}

const REQUESTS = 'seldon_gateway_requests_total';
const SHADOWS = 'seldon_gateway_shadow_requests_total';
const COMPARISONS = 'seldon_gateway_shadow_comparisons_total';
/** The counters a window is made of: all a sample needs from each process. */
export const OBSERVED_METRICS: readonly string[] = [REQUESTS, SHADOWS, COMPARISONS];
const SEP = '\u0000';

/** `names` of a registry as `getMetricsAsJSON` gives them (only those, to keep samples cheap). */
export async function metricsJson(registry: Registry, names?: readonly string[]): Promise<MetricsJson> {
  if (!names) return registry.getMetricsAsJSON();
  const out = await Promise.all(names.map((n) => registry.getSingleMetric(n)?.get()));
  return out.filter((m) => m !== undefined) as MetricsJson;
}

/** Prometheus text for gathered metrics: one family per metric, summed across processes (one process: its own). */
export async function aggregatedText(g: Gathered): Promise<string> {
  return AggregatorRegistry.aggregate(g.metrics as MetricsJson[]).metrics();
}

interface Sample {
  readonly at: number;
  /** Keyed `r|s|c \0 namespace \0 deployment \0 predictor \0 protocol \0 (kind \0 code | result)`. */
  readonly counts: ReadonlyMap<string, number>;
}

function label(v: string | number | undefined): string {
  return v === undefined ? '' : String(v);
}

/** Sum the three counters over every process. */
export function sampleOf(metrics: readonly MetricsJson[], at: number): Sample {
  const counts = new Map<string, number>();
  const add = (key: string, v: number): void => {
    counts.set(key, (counts.get(key) ?? 0) + v);
  };
  for (const registry of metrics) {
    for (const m of registry) {
      const prefix = m.name === REQUESTS ? 'r' : m.name === SHADOWS ? 's' : m.name === COMPARISONS ? 'c' : undefined;
      if (prefix === undefined) continue;
      for (const v of m.values) {
        const l = v.labels as Record<string, string | number | undefined>;
        const tail = prefix === 'r' ? [label(l.kind), label(l.code)] : [label(l.result)];
        add([prefix, label(l.namespace), label(l.deployment), label(l.predictor), label(l.protocol), ...tail].join(SEP), v.value);
      }
    }
  }
  return { at, counts };
}

export interface RequestCounts {
  readonly total: number;
  /** By status code (HTTP for REST, gRPC status for gRPC). */
  readonly codes: Readonly<Record<string, number>>;
}

/** Counter differences over one window, indexed for the page. */
export class ObservedWindow {
  private readonly index = new Map<string, Record<string, number>>();

  constructor(
    /** Length of the window in seconds. */
    readonly seconds: number,
    readonly from: Date,
    readonly to: Date,
    deltas: ReadonlyMap<string, number>,
  ) {
    for (const [key, n] of deltas) {
      const cut = key.lastIndexOf(SEP);
      const head = key.slice(0, cut);
      let rec = this.index.get(head);
      if (!rec) this.index.set(head, (rec = {}));
      rec[key.slice(cut + 1)] = n;
    }
  }

  /** Primary (or shadow) requests of one predictor over the window, by status code. */
  requests(namespace: string, deployment: string, predictor: string, protocol: string, kind: 'primary' | 'shadow' = 'primary'): RequestCounts {
    const codes = this.index.get(['r', namespace, deployment, predictor, protocol, kind].join(SEP)) ?? {};
    let total = 0;
    for (const n of Object.values(codes)) total += n;
    return { total, codes: { ...codes } };
  }

  /** Shadow outcomes of one shadow predictor: mirrored, dropped_*, failed. */
  shadows(namespace: string, deployment: string, predictor: string, protocol: string): Readonly<Record<string, number>> {
    return { ...(this.index.get(['s', namespace, deployment, predictor, protocol].join(SEP)) ?? {}) };
  }

  /** Comparison results of one shadow predictor: agree, disagree, skipped. */
  comparisons(namespace: string, deployment: string, predictor: string, protocol: string): Readonly<Record<string, number>> {
    return { ...(this.index.get(['c', namespace, deployment, predictor, protocol].join(SEP)) ?? {}) };
  }
}

function difference(now: Sample, base: Sample | undefined): Map<string, number> {
  const out = new Map<string, number>();
  for (const [key, n] of now.counts) {
    const before = base?.counts.get(key) ?? 0;
    const d = n >= before ? n - before : n; // went down: the process restarted, count from zero
    if (d > 0) out.set(key, d);
  }
  return out;
}

export const SAMPLE_INTERVAL_MS = 10_000;
export const WINDOW_MS = 5 * 60_000;

/** Samples of the counters every `intervalMs`, kept for `windowMs`. */
export class TrafficHistory {
  private samples: Sample[] = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly gather: () => Promise<Gathered>,
    readonly intervalMs = SAMPLE_INTERVAL_MS,
    readonly windowMs = WINDOW_MS,
    private readonly clock: () => number = Date.now,
  ) {}

  /** Sample on a timer from now on; resolves once the first sample (the baseline) is taken. */
  start(): Promise<void> {
    this.timer = setInterval(() => void this.sample().catch(() => undefined), this.intervalMs);
    this.timer.unref();
    return this.sample().then(
      () => undefined,
      () => undefined,
    );
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  private keep(s: Sample): void {
    this.samples.push(s);
    const oldest = s.at - this.windowMs;
    while (this.samples.length > 1 && this.samples[0]!.at < oldest) this.samples.shift();
  }

  private async sample(): Promise<void> {
    const at = this.clock();
    this.keep(sampleOf((await this.gather()).metrics, at));
  }

  /** A fresh gather, and the window from the oldest kept sample to it. */
  async observe(): Promise<{ window: ObservedWindow; disagreements: readonly Disagreement[]; gathered: Gathered }> {
    const at = this.clock();
    const g = await this.gather();
    const now = sampleOf(g.metrics, at);
    const oldest = now.at - this.windowMs;
    const base = this.samples.find((s) => s.at >= oldest) ?? this.samples[this.samples.length - 1];
    const window = new ObservedWindow(base ? (now.at - base.at) / 1000 : 0, new Date(base?.at ?? now.at), new Date(now.at), difference(now, base));
    return { window, disagreements: g.disagreements, gathered: g };
  }
}

/** The observation options of one data plane, built before the data plane is. */
export interface DataPlaneObservers {
  /** --predictor-header: answers name their predictor (REST and gRPC). */
  readonly predictorHeader: boolean;
  readonly comparer: ShadowComparer | undefined;
  readonly accessLog: AccessLog | undefined;
  /** --otlp-endpoint: the tracer provider and its exporter. */
  readonly tracing: Tracing | undefined;
  /** What the REST proxy taps answers with; undefined when nothing is observed (no per-request cost). */
  readonly rest: RestObserve | undefined;
  /** What gRPC calls are tapped with; undefined when neither the access log nor tracing is on. */
  readonly grpc: GrpcObserve | undefined;
  /** Write what the access log holds and export the spans still queued, within `timeoutMs` (shutdown). */
  flush(timeoutMs?: number): Promise<void>;
}

/** How long a shutdown waits for access log lines and queued spans (a stuck stdout or a dead collector must not hold it). */
const FLUSH_MS = 2000;

/**
 * The predictor header (REST and gRPC), the access log and tracing (REST and gRPC), shadow
 * comparison (REST), as configured, counting into `metrics`. `accessSink` replaces stdout as
 * where access log lines go (tests).
 */
export function dataPlaneObservers(config: ObserveConfig, metrics: GatewayMetrics, accessSink?: AccessSink, log?: Logger): DataPlaneObservers {
  const sc = config.shadowCompare;
  // Without --shadow-compare, only a rollout's mirrored canary answers are compared (its agreement check).
  const comparer = new ShadowComparer({ tolerance: sc.tolerance, ignore: sc.ignore, maxBodyBytes: sc.maxBodyBytes }, metrics);
  const compareAll = sc.enabled;
  const al = config.accessLog;
  let output: AccessLogOutput | undefined;
  let accessLog: AccessLog | undefined;
  if (al.enabled && al.sample > 0) {
    const options = { sample: al.sample, format: al.format, query: al.query };
    if (accessSink) accessLog = new AccessLog(accessSink, options);
    else {
      output = new AccessLogOutput(1, al.bufferBytes, (lines) => metrics.accessLogDropped.inc(lines));
      accessLog = new AccessLog(output, options);
    }
  }
  const t = config.tracing;
  const tracing = t.endpoint === undefined ? undefined : new Tracing({ endpoint: t.endpoint, sample: t.sample }, metrics, log);
  const rest = { predictorHeader: config.predictorHeader, accessLog, comparer, compareAll, tracing };
  const grpc = { accessLog, tracing };
  return {
    predictorHeader: config.predictorHeader,
    comparer,
    accessLog,
    tracing,
    rest: RestObserve.needed(rest) ? new RestObserve(rest) : undefined,
    grpc: GrpcObserve.needed(grpc) ? new GrpcObserve(grpc) : undefined,
    flush: async (timeoutMs = FLUSH_MS) => {
      await Promise.all([output?.flush(timeoutMs), tracing?.shutdown(timeoutMs)]);
    },
  };
}
