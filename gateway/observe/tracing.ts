/**
 * Tracing with OpenTelemetry (`--otlp-endpoint`, `--trace-sample`): a server span per REST
 * request and gRPC call, a client span per upstream attempt and per shadow, exported over
 * OTLP/HTTP (protobuf) in batches. Without `--otlp-endpoint` none of this exists and the
 * proxies pay nothing for it.
 *
 * Context in: W3C `traceparent`/`tracestate`, else B3 (single `b3` or multi `X-B3-*`).
 * Context out, on each attempt and shadow: W3C always (a `tracestate` that came in goes on),
 * plus B3 in the form it came in, so a B3-only upstream keeps its trace; the client's own
 * trace headers are replaced, never forwarded beside ours.
 *
 * Head sampling, parent-based: a client's sampled context is always traced and its unsampled
 * one never (its headers then pass on untouched); a request without one starts a trace that is
 * sampled with probability `--trace-sample` (TraceIdRatioBased on its trace id). An unsampled new
 * trace costs a random id and one header, `traceparent: 00-<trace>-<id>-00`, so the services
 * behind the gateway follow its decision; no span object is made. Only sampled requests make
 * spans (the SDK's ParentBased(TraceIdRatioBased) sampler decides them, on the same trace id).
 *
 * Export never holds a request: ended spans wait in a bounded queue (BatchSpanProcessor, one
 * export in flight); a full queue drops spans, a collector that fails (or is not there) loses
 * its batch after the exporter's retries, and both are counted
 * (`seldon_gateway_tracing_spans_dropped_total{reason}`); delivered ones too.
 */
import { randomFillSync } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import type { Logger } from 'pino';
import {
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  TraceFlags,
  createNoopMeter,
  trace,
  type Attributes,
  type Context,
  type Counter,
  type Meter,
  type MeterProvider,
  type Span,
  type TextMapGetter,
  type TextMapSetter,
  type Tracer,
} from '@opentelemetry/api';
import { createRequire } from 'node:module';
import type * as OtelCore from '@opentelemetry/core';
import type * as OtelExporter from '@opentelemetry/exporter-trace-otlp-proto';
import type * as OtelB3 from '@opentelemetry/propagator-b3';
import type * as OtelResources from '@opentelemetry/resources';
import type * as OtelSdk from '@opentelemetry/sdk-trace';
import type { B3Propagator } from '@opentelemetry/propagator-b3';
import type { W3CTraceContextPropagator } from '@opentelemetry/core';
import type { IdGenerator, TraceIdRatioBasedSampler, TracerProvider } from '@opentelemetry/sdk-trace';
import { LogBudget } from './log-budget.js';
import type { GatewayMetrics } from './metrics.js';
import type { B3Form, HeaderWriter } from './trace-context.js';

const HEADERS_GETTER: TextMapGetter<IncomingHttpHeaders> = {
  keys: (c) => Object.keys(c),
  get: (c, k) => c[k],
};
const RECORD_SETTER: TextMapSetter<Record<string, string>> = {
  set: (c, k, v) => {
    c[k] = v;
  },
};

/**
 * Trace and span ids from a pooled crypto-random buffer (one `randomFillSync` per 256 ids).
 * `next`, when set, is the trace id of the next root span the SDK starts: the one the
 * sampling decision was made on.
 */
class PooledIds implements IdGenerator {
  private readonly pool = Buffer.allocUnsafe(4096);
  private at = this.pool.length;
  next: string | undefined;

  private hex(bytes: number): string {
    for (;;) {
      if (this.at + bytes > this.pool.length) {
        randomFillSync(this.pool);
        this.at = 0;
      }
      const s = this.pool.toString('hex', this.at, (this.at += bytes));
      // All zeros is not a valid id (2^-64 odds).
      if (s.charCodeAt(0) !== 48 || /[^0]/.test(s)) return s;
    }
  }

  generateTraceId(): string {
    const t = this.next;
    if (t === undefined) return this.hex(16);
    this.next = undefined;
    return t;
  }

  generateSpanId(): string {
    return this.hex(8);
  }
}

/**
 * The SDK's span processor reports its outcomes on an `otel.sdk.processor.span.processed`
 * counter; this meter provider turns them into the gateway's counters (all else is a no-op).
 */
function spanCounting(metrics: GatewayMetrics, failed: (error: string) => void): MeterProvider {
  const processed: Counter = {
    add(count: number, attributes?: Attributes) {
      const error = attributes?.['error.type'];
      if (error === undefined) metrics.spansExported.inc(count);
      else if (error === 'queue_full') metrics.spansDropped.labels('queue_full').inc(count);
      else {
        metrics.spansDropped.labels('export_failed').inc(count);
        failed(String(error));
      }
    },
  };
  const noop = createNoopMeter();
  const meter = Object.assign(Object.create(noop) as Meter, {
    createCounter: (name: string, options?: Parameters<Meter['createCounter']>[1]) => (name === 'otel.sdk.processor.span.processed' ? processed : noop.createCounter(name, options)),
  });
  return { getMeter: () => meter };
}

export interface TracingOptions {
  /** The collector: `http://host:4318` (spans go to `/v1/traces`) or a full URL with its path. */
  readonly endpoint: string;
  /** Probability that a request without a sampled or unsampled context is traced (0..1). */
  readonly sample: number;
  /** Ended spans waiting for export, at most; more are dropped (counted). */
  readonly maxQueueSize?: number;
  /** How long a batch waits for more spans before it is sent. */
  readonly scheduledDelayMs?: number;
  /** How long one export (with the exporter's retries) may take. */
  readonly exportTimeoutMs?: number;
}

/** `--otlp-endpoint`: a base URL gets OTLP's `/v1/traces`; one with a path is used as it is. */
export function tracesUrl(endpoint: string): string {
  const u = new URL(endpoint);
  if (u.pathname === '' || u.pathname === '/') u.pathname = '/v1/traces';
  return u.toString();
}

/**
 * The OpenTelemetry SDK, loaded by the first Tracing: a process without --otlp-endpoint never loads
 * it (about 250 modules and 7 MB of every process's idle resident memory: docs/observability.md#memory).
 */
function loadSdk(): { core: typeof OtelCore; exporter: typeof OtelExporter; b3: typeof OtelB3; resources: typeof OtelResources; sdk: typeof OtelSdk } {
  const require = createRequire(import.meta.url);
  return {
    core: require('@opentelemetry/core') as typeof OtelCore,
    exporter: require('@opentelemetry/exporter-trace-otlp-proto') as typeof OtelExporter,
    b3: require('@opentelemetry/propagator-b3') as typeof OtelB3,
    resources: require('@opentelemetry/resources') as typeof OtelResources,
    sdk: require('@opentelemetry/sdk-trace') as typeof OtelSdk,
  };
}

const NO_ATTRIBUTES: Attributes = Object.freeze({});
const SERVER = { kind: SpanKind.SERVER } as const;

export class Tracing {
  private readonly provider: TracerProvider;
  private readonly tracer: Tracer;
  private readonly ids = new PooledIds();
  private readonly rootSampler: TraceIdRatioBasedSampler;
  private readonly w3c: W3CTraceContextPropagator;
  private readonly b3Single: B3Propagator;
  private readonly b3Multi: B3Propagator;
  /** The SDK's SamplingDecision.NOT_RECORD. */
  private readonly notRecord: number;
  private readonly failureLog = new LogBudget(1, 60_000);

  constructor(
    readonly options: TracingOptions,
    metrics: GatewayMetrics,
    log?: Logger,
  ) {
    const { core, exporter: otlp, b3, resources, sdk } = loadSdk();
    const { BatchSpanProcessor, ParentBasedSampler, TraceIdRatioBasedSampler, TracerProvider } = sdk;
    this.w3c = new core.W3CTraceContextPropagator();
    this.b3Single = new b3.B3Propagator({ injectEncoding: b3.B3InjectEncoding.SINGLE_HEADER });
    this.b3Multi = new b3.B3Propagator({ injectEncoding: b3.B3InjectEncoding.MULTI_HEADER });
    this.rootSampler = new TraceIdRatioBasedSampler(options.sample);
    this.notRecord = sdk.SamplingDecision.NOT_RECORD;
    const exporter = new otlp.OTLPTraceExporter({ url: tracesUrl(options.endpoint), timeoutMillis: options.exportTimeoutMs ?? 10_000, concurrencyLimit: 2 });
    const failed = (error: string): void => {
      const skipped = this.failureLog.take();
      if (skipped !== undefined) log?.warn({ endpoint: options.endpoint, error, ...(skipped ? { notLogged: skipped } : {}) }, 'spans could not be exported to the OTLP collector: dropped (counted)');
    };
    const maxQueueSize = options.maxQueueSize ?? 4096;
    const processor = new BatchSpanProcessor({
      exporter,
      maxQueueSize,
      maxExportBatchSize: Math.min(512, maxQueueSize),
      scheduledDelayMillis: options.scheduledDelayMs ?? 1000,
      exportTimeoutMillis: options.exportTimeoutMs ?? 10_000,
      selfObsMeterProvider: spanCounting(metrics, failed),
    });
    this.provider = new TracerProvider({
      // OTEL_SERVICE_NAME names the service, as in every OpenTelemetry SDK.
      resource: resources.resourceFromAttributes({ 'service.name': process.env.OTEL_SERVICE_NAME || 'seldon-gateway' }),
      sampler: new ParentBasedSampler({ root: this.rootSampler }),
      idGenerator: this.ids,
      spanProcessors: [processor],
    });
    this.tracer = this.provider.getTracer('seldon-gateway');
  }

  /**
   * The trace of one request or call whose client sent `incoming`; `carrier` (the upstream
   * request headers, written with `writer`) is prepared: an unsampled new trace's traceparent
   * is set, a sampled trace's client headers are removed (each attempt sets its own). A sampled
   * trace's server span has no name yet: the caller names it (and sets its attributes) only then.
   */
  begin<C>(incoming: IncomingHttpHeaders, carrier: C, writer: HeaderWriter<C>): CallTrace<C> {
    const tp = incoming.traceparent;
    const b3 = incoming.b3;
    const mb3 = incoming['x-b3-traceid'];
    let form: B3Form;
    if (tp !== undefined || b3 !== undefined || mb3 !== undefined) {
      let parent: Context = this.w3c.extract(ROOT_CONTEXT, incoming, HEADERS_GETTER);
      if (trace.getSpanContext(parent) === undefined && (b3 !== undefined || mb3 !== undefined)) parent = this.b3Multi.extract(ROOT_CONTEXT, incoming, HEADERS_GETTER);
      const sc = trace.getSpanContext(parent);
      form = b3 !== undefined ? 'single' : mb3 !== undefined ? 'multi' : undefined;
      if (sc !== undefined) {
        // Parent-based: the client's decision stands. Unsampled: its headers pass on untouched.
        if ((sc.traceFlags & TraceFlags.SAMPLED) === 0) return new CallTrace(this, writer, sc.traceId, undefined, undefined);
        writer.strip(carrier);
        return new CallTrace(this, writer, sc.traceId, this.tracer.startSpan('', SERVER, parent), form);
      }
      // Malformed context: a new trace, and the client's headers go.
      writer.strip(carrier);
    }
    const traceId = this.ids.generateTraceId();
    if (this.rootSampler.shouldSample(ROOT_CONTEXT, traceId).decision === this.notRecord) {
      writer.set(carrier, 'traceparent', `00-${traceId}-${this.ids.generateSpanId()}-00`);
      return new CallTrace(this, writer, traceId, undefined, undefined);
    }
    this.ids.next = traceId;
    return new CallTrace(this, writer, traceId, this.tracer.startSpan('', SERVER, ROOT_CONTEXT), form);
  }

  /** A client span under `parent`. */
  child(parent: Span, name: string, attributes: Attributes): Span {
    return this.tracer.startSpan(name, { kind: SpanKind.CLIENT, attributes }, trace.setSpan(ROOT_CONTEXT, parent));
  }

  /** Write `span`'s context into `carrier`: W3C, and B3 in `form`. */
  inject<C>(span: Span, form: B3Form, carrier: C, writer: HeaderWriter<C>): void {
    const ctx = trace.setSpan(ROOT_CONTEXT, span);
    const out: Record<string, string> = {};
    this.w3c.inject(ctx, out, RECORD_SETTER);
    if (form === 'single') this.b3Single.inject(ctx, out, RECORD_SETTER);
    else if (form === 'multi') this.b3Multi.inject(ctx, out, RECORD_SETTER);
    writer.strip(carrier);
    for (const k in out) writer.set(carrier, k, out[k]!);
  }

  /** Export what is queued and stop, within `timeoutMs` (a dead collector must not hold a shutdown). */
  async shutdown(timeoutMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.provider.shutdown().catch(() => undefined),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, timeoutMs);
        timer.unref();
      }),
    ]);
    clearTimeout(timer);
  }
}

/** What a shadow's span needs when the shadow is over. */
export interface ShadowSpan {
  /** `status`: HTTP status (REST) or gRPC status; `failed`: no answer. */
  end(status: number, failed: boolean): void;
}

/** gRPC statuses a server span counts as errors (OpenTelemetry's RPC conventions). */
const GRPC_SERVER_ERRORS = new Set([2, 4, 12, 13, 14, 15]);

/**
 * One request's trace: its id (for the access log) and, when sampled, its server span, the span
 * of the attempt in flight and the shadows' spans. Unsampled, every method does nothing.
 */
export class CallTrace<C> {
  /** The span of the attempt sent last. */
  private attemptSpan: Span | undefined;
  /** Hedged: the spans of earlier attempts still in flight, by attempt number. */
  private earlier: Map<number, Span> | undefined;
  private attempts = 0;
  private hedges = 0;

  constructor(
    private readonly tracing: Tracing,
    private readonly writer: HeaderWriter<C>,
    readonly traceId: string,
    /** The server span, when this request is sampled. */
    readonly span: Span | undefined,
    private readonly form: B3Form,
  ) {}

  /**
   * An attempt is about to be sent with `carrier`: its span starts and the carrier gets its
   * context. The previous attempt's span ends, unless this one is a hedge beside it (`hedge`).
   */
  attempt(carrier: C, name: string, attributes: Attributes, hedge = false): void {
    const server = this.span;
    if (server === undefined) return;
    const previous = this.attemptSpan;
    if (hedge && previous !== undefined) (this.earlier ??= new Map()).set(this.attempts - 1, previous);
    else previous?.end();
    const a = this.tracing.child(server, name, attributes);
    if (this.attempts > 0) a.setAttribute('http.request.resend_count', this.attempts);
    if (hedge) {
      a.setAttribute('seldon.hedge', true);
      this.hedges++;
    }
    this.attempts++;
    this.attemptSpan = a;
    this.tracing.inject(a, this.form, carrier, this.writer);
  }

  /** Attempt `n`'s span (absent: the last one's), while it is open. */
  private spanOf(n: number | undefined): Span | undefined {
    return n === undefined || n === this.attempts - 1 ? this.attemptSpan : this.earlier?.get(n);
  }

  /** Attempt `n`'s span ends. */
  private endSpan(n: number | undefined, span: Span): void {
    if (span === this.attemptSpan) this.attemptSpan = undefined;
    else if (n !== undefined) this.earlier?.delete(n);
    span.end();
  }

  /** Attributes learnt once the attempt is under way (the address dialled). */
  attemptAttributes(attributes: Attributes): void {
    this.attemptSpan?.setAttributes(attributes);
  }

  /** The attempt's answer head: its HTTP status. */
  attemptStatus(status: number, n?: number): void {
    const a = this.spanOf(n);
    if (a === undefined) return;
    a.setAttribute('http.response.status_code', status);
    if (status >= 500) a.setStatus({ code: SpanStatusCode.ERROR });
  }

  /** The attempt failed without an answer (`error.type`: connect, reset, refused, idle, per_try_timeout…). */
  attemptFailed(error: string, n?: number): void {
    const a = this.spanOf(n);
    if (a === undefined) return;
    a.setAttribute('error.type', error);
    a.setStatus({ code: SpanStatusCode.ERROR });
    this.endSpan(n, a);
  }

  /** Hedged: attempt `n` was cut, another's answer won (not an error). */
  attemptLost(n: number): void {
    const a = this.spanOf(n);
    if (a === undefined) return;
    a.setAttribute('seldon.hedge.lost', true);
    this.endSpan(n, a);
  }

  /** A shadow copy is about to be sent with `carrier` (its own copy of the headers). */
  shadow(carrier: C, name: string, attributes: Attributes, grpc: boolean): ShadowSpan | undefined {
    const server = this.span;
    if (server === undefined) return undefined;
    const s = this.tracing.child(server, name, attributes);
    this.tracing.inject(s, this.form, carrier, this.writer);
    return {
      end: (status, failed) => {
        if (failed) {
          s.setAttribute('error.type', status > 0 ? String(status) : 'no_answer');
          s.setStatus({ code: SpanStatusCode.ERROR });
        } else if (grpc) {
          s.setAttribute('rpc.grpc.status_code', status);
          if (status !== 0) s.setStatus({ code: SpanStatusCode.ERROR });
        } else {
          s.setAttribute('http.response.status_code', status);
          if (status >= 500) s.setStatus({ code: SpanStatusCode.ERROR });
        }
        s.end();
      },
    };
  }

  /** The request is over: the attempt in flight and the server span end. `grpcStatus` for gRPC calls. */
  end(httpStatus: number, grpcStatus: number | undefined, attributes: Attributes = NO_ATTRIBUTES): void {
    const server = this.span;
    if (server === undefined) return;
    const a = this.attemptSpan;
    if (a !== undefined) {
      if (grpcStatus !== undefined) a.setAttribute('rpc.grpc.status_code', grpcStatus);
      a.end();
      this.attemptSpan = undefined;
    }
    if (this.earlier !== undefined) for (const s of this.earlier.values()) s.end();
    this.earlier = undefined;
    server.setAttributes(attributes);
    server.setAttribute('seldon.retries', Math.max(0, this.attempts - 1 - this.hedges));
    if (this.hedges > 0) server.setAttribute('seldon.hedges', this.hedges);
    if (grpcStatus !== undefined) {
      server.setAttribute('rpc.grpc.status_code', grpcStatus);
      if (GRPC_SERVER_ERRORS.has(grpcStatus)) server.setStatus({ code: SpanStatusCode.ERROR });
    } else {
      if (httpStatus > 0) server.setAttribute('http.response.status_code', httpStatus);
      if (httpStatus >= 500) server.setStatus({ code: SpanStatusCode.ERROR });
    }
    server.end();
  }
}
