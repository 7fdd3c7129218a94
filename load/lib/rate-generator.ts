/**
 * Constant-rate, open-loop load generator, a child script of load/lib/fixed-rate.ts (no wrk2 here):
 * issues requests on a fixed schedule (request i is due at t0 + i/rate), whatever the server's
 * pace, over a fixed pool of keep-alive connections (undici), and records each latency from the
 * request's *scheduled* time, so a stall is charged to every request it delayed (no coordinated
 * omission). Also records the latency from the actual send, for comparison.
 *
 * Bounded: a fixed number of requests (rate x (warmup + duration)), at most `maxInFlight` in
 * flight (a due request over that bound is skipped and counted, never queued), a per-request
 * timeout, and a hard deadline after which whatever is left is aborted. The schedule loop spins
 * (setImmediate) for sub-millisecond pacing: pin this process to a core of its own.
 *
 * Configured by BENCH_RATE_CONFIG (JSON, see RateConfig); prints one line `BENCH_JSON {...}`.
 */
import { createHistogram } from 'node:perf_hooks';
import { Pool, type Dispatcher } from 'undici';

export interface RateConfig {
  readonly url: string;
  readonly method: 'GET' | 'POST';
  readonly body?: string;
  readonly headers: Record<string, string>;
  readonly rate: number;
  readonly durationMs: number;
  readonly warmupMs: number;
  readonly connections: number;
  readonly maxInFlight: number;
  readonly timeoutMs: number;
}

export interface RateResult {
  readonly scheduled: number;
  readonly completed: number;
  /** Completed including the warm-up (what the server handled while this ran). */
  readonly completedTotal: number;
  readonly ok2xx: number;
  readonly non2xx: number;
  readonly errors: number;
  readonly errorCodes: Record<string, number>;
  readonly skipped: number;
  readonly achievedRate: number;
  /** Latency from the scheduled time, microseconds. */
  readonly latencyUs: { p50: number; p90: number; p99: number; p999: number; max: number; mean: number };
  /** Latency from the actual send, microseconds. */
  readonly serviceUs: { p50: number; p99: number; max: number };
  /** Lag of the schedule loop behind due requests (p99, max), microseconds: large = the generator itself stalled. */
  readonly sendLagUs: { p99: number; max: number };
}

const config = JSON.parse(process.env.BENCH_RATE_CONFIG ?? 'null') as RateConfig | null;
if (!config) throw new Error('BENCH_RATE_CONFIG is required');

const target = new URL(config.url);
const pool = new Pool(target.origin, {
  connections: config.connections,
  pipelining: 1,
  keepAliveTimeout: 60_000,
  headersTimeout: config.timeoutMs,
  bodyTimeout: config.timeoutMs,
});
const path = target.pathname + target.search;
const body = config.body === undefined ? null : Buffer.from(config.body);
const headers: Record<string, string> = { ...config.headers };
if (body) headers['content-length'] = String(body.length);

const fromSchedule = createHistogram({ lowest: 1, highest: 120_000_000, figures: 3 });
const fromSend = createHistogram({ lowest: 1, highest: 120_000_000, figures: 3 });
const sendLag = createHistogram({ lowest: 1, highest: 120_000_000, figures: 3 });
let completed = 0;
let completedTotal = 0;
let ok2xx = 0;
let non2xx = 0;
let errors = 0;
let skipped = 0;
let inFlight = 0;
const errorCodes: Record<string, number> = {};
const aborts = new Set<(err?: Error) => void>();

const intervalMs = 1000 / config.rate;
const total = Math.round((config.rate * (config.warmupMs + config.durationMs)) / 1000);
const scheduledMeasured = Math.round((config.rate * config.durationMs) / 1000);
let issued = 0;
let firstMeasuredAt = 0;
let lastMeasuredEnd = 0;

const now = (): number => performance.now();
const t0 = now() + 5;
const tMeasure = t0 + config.warmupMs;

class Request implements Dispatcher.DispatchHandler {
  private status = 0;
  private abort: ((err?: Error) => void) | undefined;
  constructor(
    private readonly scheduledAt: number,
    private readonly sentAt: number,
    private readonly record: boolean,
  ) {}
  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.abort = (err?: Error) => controller.abort(err ?? new Error('aborted'));
    aborts.add(this.abort);
  }
  onResponseStart(_controller: Dispatcher.DispatchController, statusCode: number): void {
    this.status = statusCode;
  }
  onResponseData(): void {}
  onResponseEnd(): void {
    const end = now();
    this.settle();
    completedTotal++;
    if (!this.record) return;
    completed++;
    lastMeasuredEnd = end;
    if (this.status >= 200 && this.status < 300) ok2xx++;
    else non2xx++;
    fromSchedule.record(Math.max(1, Math.round((end - this.scheduledAt) * 1000)));
    fromSend.record(Math.max(1, Math.round((end - this.sentAt) * 1000)));
  }
  onResponseError(_controller: Dispatcher.DispatchController, err: Error & { code?: string }): void {
    this.settle();
    if (!this.record) return;
    errors++;
    const code = err.code ?? err.message;
    errorCodes[code] = (errorCodes[code] ?? 0) + 1;
  }
  private settle(): void {
    inFlight--;
    if (this.abort) aborts.delete(this.abort);
  }
}

function send(scheduledAt: number, record: boolean): void {
  inFlight++;
  const sentAt = now();
  if (record) sendLag.record(Math.max(1, Math.round((sentAt - scheduledAt) * 1000)));
  pool.dispatch({ origin: target.origin, path, method: config!.method, headers, body }, new Request(scheduledAt, sentAt, record));
}

function tick(): void {
  const t = now();
  const due = Math.min(total, Math.floor((t - t0) / intervalMs) + 1);
  while (issued < due) {
    const scheduledAt = t0 + issued * intervalMs;
    const record = scheduledAt >= tMeasure;
    if (record && firstMeasuredAt === 0) firstMeasuredAt = scheduledAt;
    issued++;
    if (inFlight >= config!.maxInFlight) {
      if (record) skipped++;
      continue;
    }
    send(scheduledAt, record);
  }
  if (issued < total) setImmediate(tick);
  else drain();
}

function drain(): void {
  const deadline = now() + config!.timeoutMs + 1000;
  const wait = (): void => {
    if (inFlight > 0 && now() < deadline) {
      setTimeout(wait, 5);
      return;
    }
    for (const abort of [...aborts]) abort(new Error('deadline'));
    void finish();
  };
  wait();
}

async function finish(): Promise<void> {
  await pool.destroy().catch(() => undefined);
  const us = (v: number): number => Math.round(v);
  const measuredSpanMs = Math.max(1, (lastMeasuredEnd || now()) - (firstMeasuredAt || tMeasure));
  const result: RateResult = {
    scheduled: scheduledMeasured,
    completed,
    completedTotal,
    ok2xx,
    non2xx,
    errors,
    errorCodes,
    skipped,
    achievedRate: Math.round((completed / measuredSpanMs) * 1000),
    latencyUs: {
      p50: us(fromSchedule.percentile(50)),
      p90: us(fromSchedule.percentile(90)),
      p99: us(fromSchedule.percentile(99)),
      p999: us(fromSchedule.percentile(99.9)),
      max: us(fromSchedule.max),
      mean: Math.round(fromSchedule.mean),
    },
    serviceUs: { p50: us(fromSend.percentile(50)), p99: us(fromSend.percentile(99)), max: us(fromSend.max) },
    sendLagUs: { p99: us(sendLag.percentile(99)), max: us(sendLag.max) },
  };
  process.stdout.write(`BENCH_JSON ${JSON.stringify(result)}\n`);
  process.exit(0);
}

// A hard stop whatever happens: the schedule, the drain, and a margin.
setTimeout(
  () => {
    process.stderr.write('rate-generator: hard deadline reached\n');
    process.exit(3);
  },
  5 + config.warmupMs + config.durationMs + config.timeoutMs + 10_000,
).unref();

setTimeout(tick, 5);
