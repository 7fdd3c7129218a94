/**
 * Log sinks (--log-sinks): where payload and decision events go (docs/payload-logging.md), named by
 * the operator in a YAML file (a mounted ConfigMap). `seldon.io/gateway-log` annotations pick sinks
 * by name and can say nothing about where events go (routing/policies/log.ts).
 *
 * Three types: `cloudevents` (an HTTP endpoint taking CloudEvents in binary mode, as Seldon's
 * request logger and Alibi Detect's servers do; with --redis-url the events wait in a Redis stream
 * until it answered 2xx), `redis-stream` (a stream on the gateway's own Redis, for a consumer of the
 * operator's), `file` (JSON lines, for a Fluent Bit or Vector sidecar).
 */
import { parseDuration } from '../../routing/values/duration.js';
import { readSize } from '../../routing/values/size.js';
import { readWholeNumber } from '../../routing/values/whole-number.js';
import { env, BOTH, type OptionSpec } from './option.js';
import type { Reader } from './read.js';
import { httpUrl, readOperatorFile, yamlEntries } from './yaml-list.js';

export const LOG_SINK_OPTIONS: readonly OptionSpec[] = [
  {
    flag: 'log-sinks',
    section: 'observe',
    value: 'path',
    env: env('log-sinks'),
    kind: 'string',
    commands: BOTH,
    help: 'A YAML list of the sinks seldon.io/gateway-log may send payload and decision events to, each: name, type (cloudevents with url, redis-stream with stream on --redis-url, file with path), with optional tuning (timeout, concurrency, batch, retryMin, retryMax, queueBytes, maxLen, claimIdle). Applied again when the file changes. docs/payload-logging.md.',
  },
];

export type LogSinkType = 'cloudevents' | 'redis-stream' | 'file';

export interface LogSinkConfig {
  readonly name: string;
  readonly type: LogSinkType;
  /** cloudevents: where each event is POSTed. */
  readonly url?: string;
  /** redis-stream: the stream's key on --redis-url. */
  readonly stream?: string;
  /** file: the JSON-lines file, reopened when it is rotated. */
  readonly path?: string;
  /** cloudevents: how long one POST may take. */
  readonly timeoutMs: number;
  /** cloudevents: POSTs in flight at once, per shipping process. */
  readonly concurrency: number;
  /** Events sent (or read from the stream) per round. */
  readonly batch: number;
  /** The first wait after a failed delivery, doubled up to `retryMaxMs`. */
  readonly retryMinMs: number;
  readonly retryMaxMs: number;
  /** Events waiting in one process's memory, in bytes, at most (no Redis; or Redis away); past it new events are dropped and counted. */
  readonly queueBytes: number;
  /** Redis streams: the entries kept (`MAXLEN ~`); the oldest beyond it are trimmed, undelivered ones counted as dropped. */
  readonly maxLen: number;
  /** cloudevents with Redis: events left pending this long by a shipper (one that died) are claimed by another. */
  readonly claimIdleMs: number;
}

/** The tuning defaults, as docs/payload-logging.md lists them. */
export const SINK_DEFAULTS = Object.freeze({
  timeoutMs: 5000,
  concurrency: 16,
  batch: 100,
  retryMinMs: 100,
  retryMaxMs: 10_000,
  queueBytes: 64 * 1024 * 1024,
  maxLen: 1_000_000,
  claimIdleMs: 30_000,
});

const TYPES: readonly LogSinkType[] = ['cloudevents', 'redis-stream', 'file'];
const COMMON = ['name', 'type', 'timeout', 'concurrency', 'batch', 'retryMin', 'retryMax', 'queueBytes', 'maxLen', 'claimIdle'];
const TARGET: Record<LogSinkType, string> = { cloudevents: 'url', 'redis-stream': 'stream', file: 'path' };
const NAME = /^[a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?$/;
const show = (v: unknown): string => JSON.stringify(v) ?? String(v);

function whole(v: unknown, what: string, fallback: number, min: number, max: number): number {
  if (v === undefined || v === null) return fallback;
  const n = readWholeNumber(v, { min, max });
  if (!n.ok || n.value < min) throw new Error(`${what}: ${show(v)} is not a whole number from ${min} to ${max}`);
  return n.value;
}

function size(v: unknown, what: string, fallback: number): number {
  if (v === undefined || v === null) return fallback;
  const n = readSize(v);
  if (!n.ok || n.value < 1024) throw new Error(`${what}: ${show(v)} is not a size of at least 1KiB like 64MiB${n.ok ? '' : `: ${n.error}`}`);
  return n.value;
}

function duration(v: unknown, what: string, fallback: number, min: number): number {
  if (v === undefined || v === null) return fallback;
  const ms = parseDuration(v);
  if (ms === null || ms < min) throw new Error(`${what}: ${show(v)} is not a duration of at least ${min} ms like 500ms or 5s`);
  return ms;
}

/** The sinks a file's text describes; throws with the entry and field at fault. */
export function parseLogSinks(text: string): LogSinkConfig[] {
  const out: LogSinkConfig[] = [];
  for (const [i, s] of yamlEntries(text, 'sinks', 'a list of sinks (- name: …, type: …)').entries()) {
    const at = `sinks[${i}]`;
    if (typeof s.name !== 'string' || !NAME.test(s.name)) throw new Error(`${at}.name: ${show(s.name)} is not a name (lower-case letters, digits, "-", "_", ".")`);
    const where = `sink "${s.name}"`;
    if (out.some((o) => o.name === s.name)) throw new Error(`${where}: named twice`);
    if (!TYPES.includes(s.type as LogSinkType)) throw new Error(`${where}.type: ${show(s.type)} is not one of ${TYPES.join(', ')}`);
    const type = s.type as LogSinkType;
    const target = TARGET[type];
    const unknown = Object.keys(s).find((k) => !COMMON.includes(k) && k !== target);
    if (unknown !== undefined) throw new Error(`${where}: unknown field "${unknown}" (a ${type} sink takes ${target}, ${COMMON.slice(2).join(', ')})`);
    const t = s[target];
    if (typeof t !== 'string' || t.trim() === '') throw new Error(`${where}.${target}: ${show(t)} is not ${type === 'cloudevents' ? 'a URL' : type === 'file' ? 'a path' : 'a stream key'}`);
    const retryMinMs = duration(s.retryMin, `${where}.retryMin`, SINK_DEFAULTS.retryMinMs, 1);
    out.push({
      name: s.name,
      type,
      ...(type === 'cloudevents' ? { url: httpUrl(t, `${where}.url`) } : type === 'file' ? { path: t } : { stream: t }),
      timeoutMs: duration(s.timeout, `${where}.timeout`, SINK_DEFAULTS.timeoutMs, 1),
      concurrency: whole(s.concurrency, `${where}.concurrency`, SINK_DEFAULTS.concurrency, 1, 1024),
      batch: whole(s.batch, `${where}.batch`, SINK_DEFAULTS.batch, 1, 10_000),
      retryMinMs,
      retryMaxMs: duration(s.retryMax, `${where}.retryMax`, Math.max(retryMinMs, SINK_DEFAULTS.retryMaxMs), retryMinMs),
      queueBytes: size(s.queueBytes, `${where}.queueBytes`, SINK_DEFAULTS.queueBytes),
      maxLen: whole(s.maxLen, `${where}.maxLen`, SINK_DEFAULTS.maxLen, 1, 1_000_000_000),
      claimIdleMs: duration(s.claimIdle, `${where}.claimIdle`, SINK_DEFAULTS.claimIdleMs, 100),
    });
  }
  return out;
}

/**
 * What a sink needs of this gateway beyond its own entry: a redis-stream sink needs --redis-url.
 * Throws naming the sink; checked at start (exit 2) and on every reload (the old set stays).
 */
export function checkLogSinks(sinks: readonly LogSinkConfig[], redisUrl: string | undefined): void {
  for (const s of sinks) {
    if (s.type === 'redis-stream' && !redisUrl) throw new Error(`sink "${s.name}": a redis-stream sink needs --redis-url`);
  }
}

/** The names `seldon.io/gateway-log` may refer to (routing/types.ts `CompileOptions.logSinks`). */
export const sinkNames = (sinks: readonly LogSinkConfig[]): ReadonlySet<string> => new Set(sinks.map((s) => s.name));

/**
 * --log-sinks: the file read and checked at start (a bad one exits 2, naming the entry); re-read
 * while serving (process/log-sinks-file.ts). `serving`: what the sinks need of the gateway is checked
 * too (`routes` only compiles against their names).
 */
export function buildLogSinks(read: Reader, redisUrl: string | undefined, serving: boolean): { readonly file: string | undefined; readonly sinks: readonly LogSinkConfig[] } {
  const got = readOperatorFile(read, 'log-sinks', (text) => {
    const sinks = parseLogSinks(text);
    if (serving) checkLogSinks(sinks, redisUrl);
    return sinks;
  });
  return { file: got?.file, sinks: got?.value ?? [] };
}
