/** Upstream: how the models are dialled and picked. */
import { env, SERVE, type OptionSpec } from './option.js';
import type { Reader } from './read.js';
import { parseResolve, UsageError } from './values.js';
import { DEFAULT_OUTLIER_POLICY, type OutlierPolicy } from '../../routing/health/endpoints.js';
import { buildUpstreamTls, type UpstreamTlsContext } from './upstream-tls.js';

export const UPSTREAM_OPTIONS: readonly OptionSpec[] = [
  {
    flag: 'resolve',
    section: 'upstream',
    value: 'svc.ns:port=host:port',
    env: env('resolve'),
    kind: 'list',
    commands: SERVE,
    help: 'Dial <svc>.<ns>:<port> at <host>:<port> instead, like curl --resolve. Repeatable; env: comma-separated.',
  },
  { flag: 'connect-timeout', section: 'upstream', env: env('connect-timeout'), kind: 'duration', default: '3000ms', commands: SERVE, help: 'Upstream connect timeout, per attempt (TCP plus TLS).' },
  {
    flag: 'upstream-tls-verify',
    section: 'upstream',
    env: env('upstream-tls-verify'),
    kind: 'boolean',
    commands: SERVE,
    help: 'Verify upstream TLS certificates (predictors with ssl). Off by default: Seldon uses self-signed ones.',
  },
  {
    flag: 'upstream-ca',
    section: 'upstream',
    value: 'path',
    env: env('upstream-ca'),
    kind: 'string',
    commands: SERVE,
    help: 'PEM file of CA certificates to verify upstream TLS against (implies --upstream-tls-verify).',
  },
  {
    flag: 'retry-buffer',
    section: 'upstream',
    env: env('retry-buffer'),
    kind: 'bytes',
    default: '1MiB',
    commands: SERVE,
    help: 'Largest request body kept for retries; larger requests are not retried.',
  },
  {
    flag: 'balance',
    section: 'upstream',
    value: 'random|round-robin',
    env: env('balance'),
    kind: 'string',
    default: 'random',
    commands: SERVE,
    help: 'How a weighted split picks: random (one uniform draw per request) or round-robin (smooth weighted).',
  },
  {
    flag: 'random-seed',
    section: 'upstream',
    env: env('random-seed'),
    kind: 'int',
    commands: SERVE,
    help: "Seed the weighted pick (and payload logging's sampling draws) for reproducible splits (tests, demos).",
  },
  {
    flag: 'max-response-header-size',
    section: 'upstream',
    env: env('max-response-header-size'),
    kind: 'bytes',
    default: '60KiB',
    commands: SERVE,
    help: "Largest upstream response head (status line and headers); a larger one is answered 502 and never retried. Envoy's default is also 60 KiB.",
  },
  {
    flag: 'outlier-detection',
    section: 'upstream',
    value: 'on|off',
    env: env('outlier-detection'),
    kind: 'string',
    default: 'on',
    commands: SERVE,
    help: "Eject an endpoint that fails where its peers do not (docs/routing.md#endpoint-health); a predictor's seldon.io/gateway-outlier overrides it. off: nothing is ejected (the pick stays latency-aware).",
  },
  {
    flag: 'outlier-consecutive-local-failures',
    section: 'upstream',
    env: env('outlier-consecutive-local-failures'),
    kind: 'int',
    default: String(DEFAULT_OUTLIER_POLICY.consecutiveLocal),
    commands: SERVE,
    help: 'Failures without an answer in a row (refused, reset, timed out) that eject an endpoint.',
  },
  {
    flag: 'outlier-ejection-time',
    section: 'upstream',
    env: env('outlier-ejection-time'),
    kind: 'duration',
    default: '30s',
    commands: SERVE,
    help: "An ejection's length, times the number of times the endpoint was ejected (Envoy's base_ejection_time).",
  },
  {
    flag: 'outlier-max-ejection-time',
    section: 'upstream',
    env: env('outlier-max-ejection-time'),
    kind: 'duration',
    default: '300s',
    commands: SERVE,
    help: 'The longest ejection (max_ejection_time).',
  },
  {
    flag: 'outlier-max-ejected-percent',
    section: 'upstream',
    env: env('outlier-max-ejected-percent'),
    kind: 'int',
    default: String(DEFAULT_OUTLIER_POLICY.maxEjectedPercent),
    commands: SERVE,
    help: "At most this share of an upstream's endpoints is ejected at once, rounded down (0..100).",
  },
  {
    flag: 'slow-start',
    section: 'upstream',
    env: env('slow-start'),
    kind: 'duration',
    default: '10s',
    commands: SERVE,
    help: 'A new endpoint, or one back from ejection, ramps up to its full share over this long (0: at once).',
  },
];

/** How upstreams are dialled and picked (the REST pools and the gRPC sessions take it whole). */
export interface UpstreamConfig {
  readonly resolve: ReadonlyMap<string, { host: string; port: number }>;
  readonly connectTimeoutMs: number;
  readonly tlsVerify: boolean;
  /** --upstream-ca: the PEM file's path (the data plane reads it once). */
  readonly caFile: string | undefined;
  readonly maxResponseHeaderBytes: number;
  readonly retryBufferBytes: number;
  readonly balance: 'random' | 'round-robin';
  readonly randomSeed: number | undefined;
  /** Endpoint health's defaults (docs/routing.md#endpoint-health); `outlierDetection` false: nothing ejected unless a predictor turns it on. */
  readonly outlierDetection: boolean;
  readonly outlier: OutlierPolicy;
  /** --upstream-tls-context: the contexts a Mapping's `tls: <name>` may name, their files read. */
  readonly tlsContexts: ReadonlyMap<string, UpstreamTlsContext>;
}

export function buildUpstream(read: Reader): UpstreamConfig {
  const caFile = read.optStr('upstream-ca');
  return {
    resolve: new Map(read.list('resolve').map(parseResolve)),
    connectTimeoutMs: read.duration('connect-timeout'),
    tlsVerify: read.bool('upstream-tls-verify') || caFile !== undefined,
    caFile,
    maxResponseHeaderBytes: read.bytes('max-response-header-size'),
    retryBufferBytes: read.bytes('retry-buffer'),
    balance: read.choice('balance', ['random', 'round-robin']),
    randomSeed: read.optInt('random-seed'),
    outlierDetection: read.choice('outlier-detection', ['on', 'off']) === 'on',
    outlier: outlierPolicy(read),
    tlsContexts: buildUpstreamTls(read),
  };
}

function outlierPolicy(read: Reader): OutlierPolicy {
  const consecutiveLocal = read.int('outlier-consecutive-local-failures');
  if (consecutiveLocal < 1) throw new UsageError(`--outlier-consecutive-local-failures must be at least 1, not ${consecutiveLocal}`);
  const maxEjectedPercent = read.int('outlier-max-ejected-percent');
  if (maxEjectedPercent < 0 || maxEjectedPercent > 100) throw new UsageError(`--outlier-max-ejected-percent must be 0..100, not ${maxEjectedPercent}`);
  const baseEjectionMs = read.duration('outlier-ejection-time');
  const maxEjectionMs = read.duration('outlier-max-ejection-time');
  if (baseEjectionMs <= 0) throw new UsageError('--outlier-ejection-time must be more than 0');
  if (maxEjectionMs < baseEjectionMs) throw new UsageError(`--outlier-max-ejection-time (${maxEjectionMs} ms) must be at least --outlier-ejection-time (${baseEjectionMs} ms)`);
  return { ...DEFAULT_OUTLIER_POLICY, consecutiveLocal, maxEjectedPercent, baseEjectionMs, maxEjectionMs, slowStartMs: read.duration('slow-start') };
}
