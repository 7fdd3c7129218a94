/**
 * The soak's clients (load/soak.ts), a child script run pinned to the load core: open-loop streams at
 * fixed rates, none waiting for another, on a 5 ms tick (no spinning: the gateway is what is
 * measured, and this shares a 2-core machine with it).
 *
 *   stable-rest, stable-grpc   REST (undici, a pool of keep-alive connections) and gRPC (@grpc/grpc-js,
 *                              several channels, so both workers get calls) to the stable deployment
 *   chase-rest, chase-grpc     to a deployment drawn at random from the live churn ones, as the
 *                              runner last listed them (REST on a pool of its own)
 *   abusive                    clients that break off mid-request: an HTTP/1.1 head and part of its
 *                              body, or an h2c gRPC call's headers and part of its message, then the
 *                              connection destroyed after 0–20 ms
 *
 * An answer counts as good when it is 200 / gRPC OK and carries its own request id (the soak's pods
 * answer with the `x-pod-request` header they got). Every other outcome is a failure, reported at
 * once as a `FAIL {json}` line with its stream, target, when it was sent and ended, and why. Bounded:
 * at most `maxInFlight` per stream (a due request over it is skipped and counted), a timeout per request.
 *
 * Configured by SOAK_LOAD_CONFIG (JSON, see SoakLoadConfig). stdin lines: `{"chase":[names]}` (the live
 * churn deployments), `{"counts":true}` (answered by a `COUNTS {json}` line); stdin's end stops the
 * streams, and once what is in flight has ended (at most the timeout), `DONE {json}` is printed.
 * Self-contained (plain node runs it transpiled: no relative imports).
 */
import http2 from 'node:http2';
import net from 'node:net';
import { createHistogram, type RecordableHistogram } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import * as grpc from '@grpc/grpc-js';
import { Pool } from 'undici';

export interface SoakLoadConfig {
  readonly port: number;
  readonly namespace: string;
  readonly stable: string;
  readonly restRate: number;
  readonly grpcRate: number;
  /** Requests per second to the live churn deployments, half REST, half gRPC. */
  readonly chaseRate: number;
  readonly abuseRate: number;
  readonly connections: number;
  readonly channels: number;
  readonly timeoutMs: number;
  readonly maxInFlight: number;
}

export type StreamName = 'stable-rest' | 'stable-grpc' | 'chase-rest' | 'chase-grpc' | 'abusive';

export interface StreamCounts {
  sent: number;
  ok: number;
  failed: number;
  skipped: number;
  /** Latency of the good answers since the last report, ms (from the due time). */
  p50?: number;
  p99?: number;
  max?: number;
}

export interface SoakFailure {
  readonly stream: StreamName;
  readonly target: string;
  /** Epoch ms. */
  readonly sentAt: number;
  readonly endedAt: number;
  readonly reason: string;
}

const POD_REQUEST_ID = 'x-pod-request';
const PREDICT = '/seldon.protos.Seldon/Predict';
/** SeldonMessage{strData: "x"}: field 5, length 1. */
const GRPC_REQUEST = Buffer.from([0x2a, 0x01, 0x78]);
const REST_BODY = '{"data":{"ndarray":[[1,2,3,4]]}}';

const config = JSON.parse(process.env.SOAK_LOAD_CONFIG ?? 'null') as SoakLoadConfig | null;
if (!config) throw new Error('SOAK_LOAD_CONFIG is required');
const cfg: SoakLoadConfig = config;

const origin = `http://127.0.0.1:${cfg.port}`;
const poolOptions = { pipelining: 1, keepAliveTimeout: 60_000, headersTimeout: cfg.timeoutMs, bodyTimeout: cfg.timeoutMs };
const pool = new Pool(origin, { ...poolOptions, connections: cfg.connections });
// Chasing has connections of its own: a request to a churn deployment never waits behind the stable stream's.
const chasePool = new Pool(origin, { ...poolOptions, connections: Math.max(4, cfg.connections >> 2) });
const raw = (b: Buffer): Buffer => b;
const channels = Array.from(
  { length: cfg.channels },
  (_x, i) => new grpc.Client(`127.0.0.1:${cfg.port}`, grpc.credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1, 'grpc.soak_channel': i }),
);

const counts: Record<StreamName, StreamCounts> = {
  'stable-rest': { sent: 0, ok: 0, failed: 0, skipped: 0 },
  'stable-grpc': { sent: 0, ok: 0, failed: 0, skipped: 0 },
  'chase-rest': { sent: 0, ok: 0, failed: 0, skipped: 0 },
  'chase-grpc': { sent: 0, ok: 0, failed: 0, skipped: 0 },
  abusive: { sent: 0, ok: 0, failed: 0, skipped: 0 },
};
const inFlight: Record<StreamName, number> = { 'stable-rest': 0, 'stable-grpc': 0, 'chase-rest': 0, 'chase-grpc': 0, abusive: 0 };
const latency = Object.fromEntries(Object.keys(counts).map((k) => [k, createHistogram({ lowest: 1, highest: 120_000_000, figures: 3 })])) as Record<StreamName, RecordableHistogram>;

/** Counts so far, with the latency of the good answers since the last time (which starts afresh). */
function report(): Record<StreamName, StreamCounts> {
  const out = {} as Record<StreamName, StreamCounts>;
  for (const k of Object.keys(counts) as StreamName[]) {
    const h = latency[k];
    out[k] = { ...counts[k], ...(h.count > 0 ? { p50: h.percentile(50) / 1000, p99: h.percentile(99) / 1000, max: h.max / 1000 } : {}) };
    h.reset();
  }
  return out;
}
let chase: string[] = [];
let seq = 0;
let stopping = false;

const print = (line: string): void => void process.stdout.write(line + '\n');

function ended(stream: StreamName, target: string, sentAt: number, reason: string | undefined, t0: number): void {
  inFlight[stream]--;
  if (reason === undefined) {
    counts[stream].ok++;
    latency[stream].record(Math.max(1, Math.round((performance.now() - t0) * 1000)));
    return;
  }
  counts[stream].failed++;
  const f: SoakFailure = { stream, target, sentAt, endedAt: Date.now(), reason };
  print(`FAIL ${JSON.stringify(f)}`);
}

function rest(stream: StreamName, target: string, due: number): void {
  const id = `${process.pid}-${++seq}`;
  const sentAt = Date.now();
  (stream === 'chase-rest' ? chasePool : pool)
    .request({
      path: `/seldon/${cfg.namespace}/${target}/api/v1.0/predictions`,
      method: 'POST',
      headers: { 'content-type': 'application/json', [POD_REQUEST_ID]: id },
      body: REST_BODY,
    })
    .then(async (r) => {
      const body = await r.body.text();
      if (r.statusCode !== 200) return `REST ${r.statusCode}: ${body.slice(0, 200)}`;
      return body.includes(`"request":"${id}"`) ? undefined : `REST 200 with an answer to another request: ${body.slice(0, 120)}`;
    })
    .catch((err: Error & { code?: string }) => `REST ${err.code ?? ''} ${err.message}`)
    .then((reason) => ended(stream, target, sentAt, reason, due));
}

function call(stream: StreamName, target: string, k: number, due: number): void {
  const id = `${process.pid}-${++seq}`;
  const sentAt = Date.now();
  const md = new grpc.Metadata();
  md.set('seldon', target);
  md.set('namespace', cfg.namespace);
  md.set(POD_REQUEST_ID, id);
  channels[k % channels.length]!.makeUnaryRequest(PREDICT, raw, raw, GRPC_REQUEST, md, { deadline: Date.now() + cfg.timeoutMs }, (err, res) => {
    if (err) ended(stream, target, sentAt, `gRPC ${grpc.status[err.code] ?? err.code}: ${err.details}`, due);
    else ended(stream, target, sentAt, res!.includes(`"request":"${id}"`) ? undefined : 'gRPC OK with an answer to another request', due);
  });
}

/** A client that sends part of a request and goes away. */
function abuse(target: string, k: number): void {
  const after = Math.floor(Math.random() * 20);
  const done = (): void => void (inFlight.abusive--, counts.abusive.ok++);
  if (k % 2 === 0) {
    const s = net.connect(cfg.port, '127.0.0.1');
    s.on('error', () => undefined);
    s.once('close', done);
    s.once('connect', () => {
      s.write(`POST /seldon/${cfg.namespace}/${target}/api/v1.0/predictions HTTP/1.1\r\nHost: soak\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"data":{"ndarray":[[`);
      setTimeout(() => s.destroy(), after);
    });
    return;
  }
  const session = http2.connect(origin);
  session.on('error', () => undefined);
  session.once('close', done);
  session.once('connect', () => {
    const st = session.request({ ':method': 'POST', ':path': PREDICT, 'content-type': 'application/grpc', te: 'trailers', seldon: target, namespace: cfg.namespace });
    st.on('error', () => undefined);
    // A gRPC frame that announces 100 bytes, and 3 of them.
    st.write(Buffer.from([0, 0, 0, 0, 100, 0x2a, 0x62, 0x78]));
    setTimeout(() => session.destroy(), after);
  });
}

interface Stream {
  readonly name: StreamName;
  readonly rate: number;
  due: number;
  /** The k-th request, due at `due` (performance.now() ms). */
  send(k: number, due: number): void;
}

const pickChase = (): string | undefined => (chase.length === 0 ? undefined : chase[Math.floor(Math.random() * chase.length)]);

const streams: Stream[] = [
  { name: 'stable-rest', rate: cfg.restRate, due: 0, send: (_k, due) => rest('stable-rest', cfg.stable, due) },
  { name: 'stable-grpc', rate: cfg.grpcRate, due: 0, send: (k, due) => call('stable-grpc', cfg.stable, k, due) },
  { name: 'chase-rest', rate: cfg.chaseRate / 2, due: 0, send: (_k, due) => rest('chase-rest', pickChase()!, due) },
  { name: 'chase-grpc', rate: cfg.chaseRate / 2, due: 0, send: (k, due) => call('chase-grpc', pickChase()!, k, due) },
  { name: 'abusive', rate: cfg.abuseRate, due: 0, send: (k) => abuse(k % 3 === 2 ? (pickChase() ?? cfg.stable) : cfg.stable, k) },
];

const t0 = performance.now();
const tick = setInterval(() => {
  if (stopping) return;
  const elapsed = (performance.now() - t0) / 1000;
  for (const s of streams) {
    const due = Math.floor(elapsed * s.rate);
    for (; s.due < due; s.due++) {
      // Chasing waits for the first live churn deployment; the schedule does not.
      if (s.name.startsWith('chase') && chase.length === 0) continue;
      if (inFlight[s.name] >= cfg.maxInFlight) {
        counts[s.name].skipped++;
        continue;
      }
      counts[s.name].sent++;
      inFlight[s.name]++;
      s.send(s.due, t0 + (s.due * 1000) / s.rate);
    }
  }
}, 5);

createInterface({ input: process.stdin })
  .on('line', (line) => {
    const msg = JSON.parse(line) as { chase?: string[]; counts?: boolean };
    if (msg.chase !== undefined) chase = msg.chase;
    if (msg.counts) print(`COUNTS ${JSON.stringify(report())}`);
  })
  .on('close', () => {
    stopping = true;
    clearInterval(tick);
    const deadline = Date.now() + cfg.timeoutMs + 2000;
    const wait = (): void => {
      if (Object.values(inFlight).some((n) => n > 0) && Date.now() < deadline) return void setTimeout(wait, 20);
      print(`DONE ${JSON.stringify(report())}`);
      for (const c of channels) c.close();
      void Promise.allSettled([pool.destroy(), chasePool.destroy()]).finally(() => process.exit(0));
    };
    wait();
  });

print('SOAK_LOAD_READY 1');
