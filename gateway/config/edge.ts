/**
 * The client side of the public listeners (listed under Listen in `--help`): whom to trust, the
 * HTTP/1.1 guards, lingering close, error answers.
 */
import { BlockList } from 'node:net';
import { env, SERVE, type OptionSpec } from './option.js';
import type { Reader } from './read.js';
import { addTrustedProxy, UsageError } from './values.js';
import type { EdgeRules } from '../../routing/emissary/edge-rules.js';

export const EDGE_OPTIONS: readonly OptionSpec[] = [
  {
    flag: 'trusted-proxies',
    section: 'listen',
    value: 'cidr',
    env: env('trusted-proxies'),
    kind: 'list',
    commands: SERVE,
    help: "Peers (addresses or CIDRs) whose X-Forwarded-For/-Proto are kept and appended to; others' are replaced. Repeatable; env: comma-separated.",
  },
  {
    flag: 'trust-forwarded-headers',
    section: 'listen',
    env: env('trust-forwarded-headers'),
    kind: 'boolean',
    commands: SERVE,
    help: 'Trust X-Forwarded-For/-Proto from every peer (only behind a proxy that sets them).',
  },
  { flag: 'max-body', section: 'listen', env: env('max-body'), kind: 'bytes', default: '100MiB', commands: SERVE, help: 'Largest REST request body; larger ones get 413. 0: no limit.' },
  {
    flag: 'max-header-size',
    section: 'listen',
    env: env('max-header-size'),
    kind: 'bytes',
    default: '60KiB',
    commands: SERVE,
    help: "Largest request head (request line and headers; on HTTP/2 the header list); larger ones get 431. Envoy's default (Ambassador's max_request_headers_kb) is also 60 KiB.",
  },
  {
    flag: 'max-headers-count',
    section: 'listen',
    env: env('max-headers-count'),
    kind: 'int',
    default: '100',
    commands: SERVE,
    help: "Most header lines in an HTTP/1.1 request; more get 431 (never truncated). Envoy's default is also 100.",
  },
  {
    flag: 'client-header-timeout',
    section: 'listen',
    env: env('client-header-timeout'),
    kind: 'duration',
    default: '60s',
    commands: SERVE,
    help: 'A client must send its request headers within this (also the first byte of a connection); else 408.',
  },
  {
    flag: 'client-request-timeout',
    section: 'listen',
    env: env('client-request-timeout'),
    kind: 'duration',
    default: '300s',
    commands: SERVE,
    help: 'A client must send its whole REST request within this; else 408. 0: no limit.',
  },
  {
    flag: 'lingering-close',
    section: 'listen',
    value: 'on|off',
    env: env('lingering-close'),
    kind: 'string',
    default: 'on',
    commands: SERVE,
    help: "on: a connection closed while its client may still be sending (an answer before the whole request was read: the model's early answer, a 413 or 408, bytes after Connection: close) lingers as nginx's lingering_close does: the answer goes out, the gateway shuts its side and reads and drops what the client still sends, within --lingering-time, --lingering-timeout and --lingering-bytes, then closes. Closed at once, the client's system would reset the connection and drop the answer unread. off: closed as soon as the answer is sent.",
  },
  {
    flag: 'lingering-time',
    section: 'listen',
    env: env('lingering-time'),
    kind: 'duration',
    default: '30s',
    commands: SERVE,
    help: "The longest a lingering close reads after the answer was sent (nginx's lingering_time).",
  },
  {
    flag: 'lingering-timeout',
    section: 'listen',
    env: env('lingering-timeout'),
    kind: 'duration',
    default: '5s',
    commands: SERVE,
    help: "The longest a lingering close waits for more bytes from the client (nginx's lingering_timeout).",
  },
  {
    flag: 'lingering-bytes',
    section: 'listen',
    env: env('lingering-bytes'),
    kind: 'bytes',
    default: '100MiB',
    commands: SERVE,
    help: 'The most bytes a lingering close reads and drops before it closes (nginx has no such bound). Clients that send a whole body before reading the answer see it only when their body fits: keep it at least --max-body.',
  },
  {
    flag: 'http1-server',
    section: 'listen',
    value: 'gateway|node',
    env: env('http1-server'),
    kind: 'string',
    default: 'gateway',
    commands: SERVE,
    help: "Who serves HTTP/1.1 on the public port. gateway: the gateway's own lean server takes the proxied requests of the common shape and leaves every other request, and its connection, to Node's; node: Node's server takes every request.",
  },
  {
    flag: 'max-connections',
    section: 'listen',
    env: env('max-connections'),
    kind: 'int',
    default: '10000',
    commands: SERVE,
    help: 'Open client connections per process on the public port; more get 503 and are closed. 0: no limit.',
  },
  {
    flag: 'error-detail',
    section: 'listen',
    value: 'public|internal',
    env: env('error-detail'),
    kind: 'string',
    default: 'public',
    commands: SERVE,
    help: "What the gateway's own error answers say. public: the deployment and the reason, never internal addresses or library text (those go to the log and metrics); internal: the details too, for debugging.",
  },
];

/** The client side of the public listeners: trust, HTTP/1.1 guards, error answers. */
export interface EdgeConfig {
  /** Addresses and CIDRs as given (validated); `trustForwardedHeaders` trusts every peer. */
  readonly trustedProxies: readonly string[];
  readonly trustForwardedHeaders: boolean;
  /** 0: no limit. */
  readonly maxBodyBytes: number;
  readonly maxHeaderBytes: number;
  readonly maxHeadersCount: number;
  readonly clientHeaderTimeoutMs: number;
  /** 0: no limit. */
  readonly clientRequestTimeoutMs: number;
  /** 0: no limit. */
  readonly maxConnections: number;
  /** public: error answers name the deployment and reason only; internal: addresses and library text too. */
  readonly errorDetail: 'public' | 'internal';
  /** gateway: the lean HTTP/1.1 server (edge/http1-lane.ts) in front of Node's; node: Node's alone. */
  readonly http1Server: 'gateway' | 'node';
  /** How a connection whose client may still be sending is closed (edge/lingering-close.ts). */
  readonly lingering: LingerConfig;
  /** A client connection with no request in flight is closed after this long (the ambassador Module's listener_idle_timeout_ms); absent: 65 s for HTTP/1.1, 5 min for HTTP/2. */
  readonly connectionIdleMs?: number;
  /** The ambassador Module's edge keys (config/ambassador-module.ts `moduleEdge`); absent: the gateway's own behaviour, and none of their code runs. */
  readonly rules?: EdgeRules;
}

/** --lingering-*: nginx's lingering close, and a byte budget. */
export interface LingerConfig {
  /** Off: closed as soon as the answer is sent. */
  readonly enabled: boolean;
  /** The longest the client's bytes are read after the answer was sent (lingering_time), ms. */
  readonly timeMs: number;
  /** The longest wait for more bytes (lingering_timeout), ms. */
  readonly timeoutMs: number;
  /** The most bytes read and dropped. */
  readonly maxBytes: number;
}

export function buildEdge(read: Reader): EdgeConfig {
  const trustedProxies = read.list('trusted-proxies').flatMap((x) =>
    x
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
  );
  for (const entry of trustedProxies) addTrustedProxy(new BlockList(), entry);
  const clientHeaderTimeoutMs = read.duration('client-header-timeout');
  const clientRequestTimeoutMs = read.duration('client-request-timeout');
  if (clientHeaderTimeoutMs === 0) throw new UsageError('--client-header-timeout: must be more than 0');
  if (clientRequestTimeoutMs > 0 && clientRequestTimeoutMs < clientHeaderTimeoutMs) {
    throw new UsageError('--client-request-timeout: must be 0 or at least --client-header-timeout');
  }
  return {
    trustedProxies,
    trustForwardedHeaders: read.bool('trust-forwarded-headers'),
    maxBodyBytes: read.bytes('max-body'),
    maxHeaderBytes: read.bytes('max-header-size'),
    maxHeadersCount: Math.max(1, read.int('max-headers-count')),
    clientHeaderTimeoutMs,
    clientRequestTimeoutMs,
    maxConnections: read.int('max-connections'),
    errorDetail: read.choice('error-detail', ['public', 'internal']),
    http1Server: read.choice('http1-server', ['gateway', 'node']),
    lingering: buildLingering(read),
  };
}

function buildLingering(read: Reader): LingerConfig {
  const lingering: LingerConfig = {
    enabled: read.choice('lingering-close', ['on', 'off']) === 'on',
    timeMs: read.duration('lingering-time'),
    timeoutMs: read.duration('lingering-timeout'),
    maxBytes: read.bytes('lingering-bytes'),
  };
  for (const [flag, v] of [
    ['lingering-time', lingering.timeMs],
    ['lingering-timeout', lingering.timeoutMs],
  ] as const) {
    if (lingering.enabled && v === 0) throw new UsageError(`--${flag}: must be more than 0 (--lingering-close off closes at once)`);
  }
  return lingering;
}
