/** Observe: the access log, traces and the predictor header (shadow comparison: shadows.ts). */
import { env, SERVE, type OptionSpec } from './option.js';
import type { Reader } from './read.js';
import type { ShadowCompareConfig } from './shadows.js';
import { parseBool, UsageError } from './values.js';

export const OBSERVE_OPTIONS: readonly OptionSpec[] = [
  {
    flag: 'predictor-header',
    section: 'observe',
    env: env('predictor-header'),
    kind: 'boolean',
    commands: SERVE,
    help: 'Add x-seldon-predictor: <predictor> to every upstream answer (REST header, gRPC initial metadata), replacing any the upstream sent.',
  },
  {
    flag: 'access-log',
    section: 'observe',
    value: 'on|off',
    env: env('access-log'),
    kind: 'string',
    default: 'on',
    commands: SERVE,
    help: 'on: a line on stdout for every REST request and gRPC call (its fields: docs/observability.md#access-log), as Envoy and ingress-nginx write one; written without ever holding a request (what stdout cannot take in time is dropped and counted). off: none.',
  },
  {
    flag: 'access-log-format',
    section: 'observe',
    value: 'json|text',
    env: env('access-log-format'),
    kind: 'string',
    default: 'json',
    commands: SERVE,
    help: "json: one JSON object per line, with Envoy's JSON field names; text: Envoy's default access log line, the gateway's fields appended.",
  },
  {
    flag: 'access-log-sample',
    section: 'observe',
    value: 'fraction',
    env: env('access-log-sample'),
    kind: 'number',
    default: '1',
    commands: SERVE,
    help: 'Fraction (0..1) of requests the access log writes (0: none).',
  },
  {
    flag: 'access-log-query',
    section: 'observe',
    env: env('access-log-query'),
    kind: 'boolean',
    commands: SERVE,
    help: 'Write query strings in logged paths. Off: the path only, since queries can carry credentials (?access_token=).',
  },
  {
    flag: 'access-log-buffer',
    section: 'observe',
    env: env('access-log-buffer'),
    kind: 'bytes',
    default: '16MiB',
    commands: SERVE,
    help: "Access log bytes waiting for stdout, at most, per process (nginx's access_log buffer); past it, lines are dropped and counted in seldon_gateway_access_log_dropped_total.",
  },
  {
    flag: 'series-grace',
    section: 'observe',
    env: env('series-grace'),
    kind: 'duration',
    default: '60s',
    commands: SERVE,
    help: 'How long a metric series outlives the deployment or predictor it names once that is gone from the table (deleted, renamed, rejected), so that a scrape still reads its last increments; then it is removed from /metrics, as kube-state-metrics drops a deleted object. Keep it at least two scrape intervals (the bundled ServiceMonitor scrapes every 30 s).',
  },
  {
    flag: 'otlp-endpoint',
    section: 'observe',
    value: 'url',
    env: env('otlp-endpoint'),
    kind: 'string',
    commands: SERVE,
    help: 'OpenTelemetry collector to send traces to, over OTLP/HTTP (protobuf, batched), e.g. http://otel-collector:4318 (spans go to /v1/traces; a URL with a path is used as it is). Unset: no tracing, at no cost. OTEL_SERVICE_NAME names the service (default seldon-gateway).',
  },
  {
    flag: 'trace-sample',
    section: 'observe',
    value: 'fraction',
    env: env('trace-sample'),
    kind: 'number',
    default: '1',
    commands: SERVE,
    help: 'Head sampling: the fraction (0..1) of requests without a trace context that start a sampled trace. Parent-based: a W3C or B3 context the client sent decides for its request, sampled or not.',
  },
];

/** What is observed beside the traffic. */
export interface ObserveConfig {
  readonly predictorHeader: boolean;
  readonly accessLog: {
    readonly enabled: boolean;
    readonly format: 'json' | 'text';
    /** Fraction of requests logged, 0..1. */
    readonly sample: number;
    /** Keep query strings in logged paths. */
    readonly query: boolean;
    readonly bufferBytes: number;
  };
  /** How long series of a gone deployment or predictor stay (observe/series-reaper.ts), ms. */
  readonly seriesGraceMs: number;
  readonly tracing: {
    /** The OTLP/HTTP collector; undefined: tracing is off. */
    readonly endpoint: string | undefined;
    readonly sample: number;
  };
  readonly shadowCompare: ShadowCompareConfig;
}

export function buildObserve(read: Reader): Omit<ObserveConfig, 'shadowCompare'> {
  const accessLogSample = read.fraction('access-log-sample');
  const enabled = parseBool('--access-log', read.str('access-log'));
  const format = read.choice('access-log-format', ['json', 'text']);
  const traceSample = read.fraction('trace-sample');
  return {
    predictorHeader: read.bool('predictor-header'),
    accessLog: { enabled, format, sample: accessLogSample, query: read.bool('access-log-query'), bufferBytes: read.bytes('access-log-buffer') },
    seriesGraceMs: read.duration('series-grace'),
    tracing: { endpoint: otlpEndpoint(read), sample: traceSample },
  };
}

function otlpEndpoint(read: Reader): string | undefined {
  const endpoint = read.optStr('otlp-endpoint')?.trim() || undefined;
  if (endpoint === undefined) return undefined;
  let url: URL | undefined;
  try {
    url = new URL(endpoint);
  } catch {
    url = undefined;
  }
  if (url === undefined || (url.protocol !== 'http:' && url.protocol !== 'https:')) throw new UsageError(`--otlp-endpoint: "${endpoint}" is not an http:// or https:// URL`);
  return endpoint;
}
