/** Upstream: how the models are dialled and picked. */
import { env, SERVE, type OptionSpec } from './option.js';
import type { Reader } from './read.js';
import { parseResolve } from './values.js';

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
  { flag: 'random-seed', section: 'upstream', env: env('random-seed'), kind: 'int', commands: SERVE, help: 'Seed the weighted pick for reproducible splits (tests, demos).' },
  {
    flag: 'max-response-header-size',
    section: 'upstream',
    env: env('max-response-header-size'),
    kind: 'bytes',
    default: '60KiB',
    commands: SERVE,
    help: "Largest upstream response head (status line and headers); a larger one is answered 502 and never retried. Envoy's default is also 60 KiB.",
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
  };
}
