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
import type { ObserveConfig } from '../config/observe.js';
import { codeClass } from './code-class.js';
import { REQUEST_DURATION_METRIC, type GatewayMetrics } from './metrics.js';
import { GrpcObserve } from './observed-grpc.js';
import { RestObserve } from './observed-rest.js';
import { ShadowComparer, type Disagreement } from './shadow-compare.js';
import { Tracing } from './tracing.js';
import type { PayloadLogger } from './payload-tap.js';

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
const DURATION_BUCKETS = `${REQUEST_DURATION_METRIC}_bucket`;
/** The counters a window is made of (and the request duration histogram): all a sample needs from each process. */
export const OBSERVED_METRICS: readonly string[] = [REQUESTS, SHADOWS, COMPARISONS, REQUEST_DURATION_METRIC];
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
  /** Keyed `r|s|c|d \0 namespace \0 deployment \0 predictor \0 protocol \0 (kind \0 code | result | le)`. */
  readonly counts: ReadonlyMap<string, number>;
  /** Primary requests so far by deployment (`namespace \0 deployment`): [all, 4xx, 5xx]; computed once, for the timelines. */
  byDeployment?: Map<string, [number, number, number]>;
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
      const prefix = m.name === REQUESTS ? 'r' : m.name === SHADOWS ? 's' : m.name === COMPARISONS ? 'c' : m.name === REQUEST_DURATION_METRIC ? 'd' : undefined;
      if (prefix === undefined) continue;
      for (const v of m.values) {
        // The duration histogram: its buckets only, summed over code classes.
        if (prefix === 'd' && (v as { metricName?: string }).metricName !== DURATION_BUCKETS) continue;
        const l = v.labels as Record<string, string | number | undefined>;
        const tail = prefix === 'r' ? [label(l.kind), label(l.code)] : prefix === 'd' ? [label(l.le)] : [label(l.result)];
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

/** Request duration quantiles over a window, in seconds (as Prometheus' histogram_quantile interpolates them); null without requests. */
export interface Latency {
  readonly p50: number | null;
  readonly p99: number | null;
}

/** One step of a deployment's timeline: primary requests between two samples, and how many were 4xx and 5xx. */
export interface TimelinePoint {
  /** Seconds from the window's start to the end of this step. */
  readonly at: number;
  readonly seconds: number;
  readonly total: number;
  readonly c4xx: number;
  readonly c5xx: number;
}

/** The `q` quantile of cumulative buckets (upper bound → count), linear within a bucket; the highest finite bound past it. */
export function bucketQuantile(q: number, buckets: readonly (readonly [number, number])[]): number | null {
  const sorted = [...buckets].sort((a, b) => a[0] - b[0]);
  const total = sorted.length ? sorted[sorted.length - 1]![1] : 0;
  if (total <= 0) return null;
  const rank = q * total;
  let lowerBound = 0;
  let lowerCount = 0;
  for (const [bound, count] of sorted) {
    if (count >= rank) {
      if (!Number.isFinite(bound)) return lowerBound;
      return lowerBound + (bound - lowerBound) * ((rank - lowerCount) / Math.max(count - lowerCount, Number.MIN_VALUE));
    }
    lowerBound = bound;
    lowerCount = count;
  }
  return lowerBound;
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
    /** Per deployment (`namespace \0 deployment`), the steps from the window's start to now. */
    private readonly timelines: ReadonlyMap<string, readonly TimelinePoint[]> = new Map(),
    /** The steps' ends (seconds from the window's start), the same for every deployment. */
    readonly steps: readonly number[] = [],
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

  /** p50 and p99 of one predictor's request durations over the window (primary, every code class). */
  latency(namespace: string, deployment: string, predictor: string, protocol: string): Latency {
    const rec = this.index.get(['d', namespace, deployment, predictor, protocol].join(SEP));
    if (!rec) return { p50: null, p99: null };
    const buckets = Object.entries(rec).map(([le, n]) => [le === '+Inf' ? Infinity : Number(le), n] as const);
    return { p50: bucketQuantile(0.5, buckets), p99: bucketQuantile(0.99, buckets) };
  }

  /** A deployment's primary requests, step by step over the window (empty steps included). */
  timeline(namespace: string, deployment: string): readonly TimelinePoint[] {
    return this.timelines.get(namespace + SEP + deployment) ?? this.steps.map((at, i) => ({ at, seconds: at - (this.steps[i - 1] ?? 0), total: 0, c4xx: 0, c5xx: 0 }));
  }

  /** Comparison results of one shadow predictor: agree, disagree, skipped. */
  comparisons(namespace: string, deployment: string, predictor: string, protocol: string): Readonly<Record<string, number>> {
    return { ...(this.index.get(['c', namespace, deployment, predictor, protocol].join(SEP)) ?? {}) };
  }
}

/** A sample's primary requests by deployment: all, 4xx, 5xx (computed once per sample). */
function byDeployment(s: Sample): Map<string, [number, number, number]> {
  if (s.byDeployment) return s.byDeployment;
  const out = new Map<string, [number, number, number]>();
  for (const [key, n] of s.counts) {
    if (key.charCodeAt(0) !== 114 /* r */) continue;
    const [, namespace, deployment, , protocol, kind, code] = key.split(SEP);
    if (kind !== 'primary') continue;
    const k = namespace + SEP + deployment;
    let t = out.get(k);
    if (!t) out.set(k, (t = [0, 0, 0]));
    t[0] += n;
    const cls = codeClass(protocol === 'grpc' ? 'grpc' : 'rest', code!);
    if (cls === '4xx') t[1] += n;
    else if (cls === '5xx') t[2] += n;
  }
  s.byDeployment = out;
  return out;
}

/** Each deployment's steps between consecutive samples (a counter that went down counts from zero). */
function timelines(samples: readonly Sample[]): { steps: number[]; byDeployment: Map<string, TimelinePoint[]> } {
  const steps: number[] = [];
  const out = new Map<string, TimelinePoint[]>();
  if (samples.length < 2) return { steps, byDeployment: out };
  const t0 = samples[0]!.at;
  for (let i = 1; i < samples.length; i++) steps.push((samples[i]!.at - t0) / 1000);
  for (let i = 1; i < samples.length; i++) {
    const before = byDeployment(samples[i - 1]!);
    const now = byDeployment(samples[i]!);
    const at = steps[i - 1]!;
    const seconds = at - (steps[i - 2] ?? 0);
    for (const [k, t] of now) {
      const b = before.get(k);
      const d = (j: number): number => (b === undefined ? t[j]! : t[j]! >= b[j]! ? t[j]! - b[j]! : t[j]!);
      let line = out.get(k);
      if (!line) out.set(k, (line = steps.slice(0, i - 1).map((a, j) => ({ at: a, seconds: a - (steps[j - 1] ?? 0), total: 0, c4xx: 0, c5xx: 0 }))));
      line.push({ at, seconds, total: d(0), c4xx: d(1), c5xx: d(2) });
    }
    // Deployments seen before but not in this sample: an empty step.
    for (const line of out.values()) if (line.length < i) line.push({ at, seconds, total: 0, c4xx: 0, c5xx: 0 });
  }
  return { steps, byDeployment: out };
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
/** Samples in a window: 5 minutes at the default interval. */
export const WINDOW_SAMPLES = 30;
export const WINDOW_MS = WINDOW_SAMPLES * SAMPLE_INTERVAL_MS;

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
    const kept = this.samples.filter((s) => s.at >= oldest);
    const base = kept[0] ?? this.samples[this.samples.length - 1];
    const line = timelines(base ? [...(kept.length ? kept : [base]), now] : []);
    const window = new ObservedWindow(base ? (now.at - base.at) / 1000 : 0, new Date(base?.at ?? now.at), new Date(now.at), difference(now, base), line.byDeployment, line.steps);
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
  /** What gRPC calls are tapped with; undefined when neither the access log, tracing nor payload logging is on. */
  readonly grpc: GrpcObserve | undefined;
  /** Write what the access log holds and export the spans still queued, within `timeoutMs` (shutdown). */
  flush(timeoutMs?: number): Promise<void>;
}

/** How long a shutdown waits for access log lines and queued spans (a stuck stdout or a dead collector must not hold it). */
const FLUSH_MS = 2000;

/**
 * The predictor header (REST and gRPC), the access log and tracing (REST and gRPC), shadow
 * comparison (REST), as configured, counting into `metrics`. `accessSink` replaces stdout as
 * where access log lines go (tests); `payload`, with --log-sinks, logs the requests of routes with
 * a `seldon.io/gateway-log` policy (gateway/payload-log/).
 */
export function dataPlaneObservers(config: ObserveConfig, metrics: GatewayMetrics, accessSink?: AccessSink, log?: Logger, payload?: PayloadLogger): DataPlaneObservers {
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
  const rest = { predictorHeader: config.predictorHeader, accessLog, comparer, compareAll, tracing, payload };
  const grpc = { accessLog, tracing, payload };
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
