/**
 * The access log: one line per REST request and gRPC call (`--access-log`, on by default as
 * Envoy's and ingress-nginx's are), JSON (`--access-log-format json`: Envoy's JSON access log
 * field names) or text (Envoy's default line, the gateway's fields appended), on stdout.
 *
 * What it never holds: request or response bodies, headers other than the ones named below, and
 * the query string of a path (where tokens such as `?access_token=` travel) unless
 * `--access-log-query` asks for it.
 *
 * It never slows a request: lines are queued and written in batches, every 50 ms or 64 KiB
 * (`AccessLogOutput`). A pipe or socket on stdout is written through libuv's non-blocking stream
 * (a reader that stopped reading parks no thread and no write); a file through one asynchronous
 * write at a time. Past `--access-log-buffer` bytes waiting, lines are dropped and counted
 * (`seldon_gateway_access_log_dropped_total`), as are the lines of a write that failed (a full disk).
 */
import { fstatSync, write as fsWrite } from 'node:fs';
import { Socket } from 'node:net';
import type { Writable } from 'node:stream';
import type { Backend, Routed } from '../../routing/types.js';

/** One access log line: Envoy's fields and the gateway's. */
export interface AccessEntry {
  /** When the request arrived (epoch ms). */
  readonly startTime: number;
  /** The client connection's peer, `address:port` (Envoy's downstream_remote_address). */
  readonly clientAddress: string | undefined;
  /** X-Forwarded-For as the client sent it. */
  readonly forwardedFor: string | undefined;
  readonly method: string;
  /** Host, or gRPC's :authority. */
  readonly authority: string | undefined;
  /** The path, without its query string unless --access-log-query. */
  readonly path: string;
  /** HTTP/1.1, HTTP/1.0 or HTTP/2. */
  readonly protocol: string;
  /** HTTP status sent (499: the client went away first; gRPC: the :status, 200 for every gRPC status). */
  readonly responseCode: number;
  /** gRPC calls: the grpc-status the client got. */
  readonly grpcStatus: number | undefined;
  /** Body bytes received from the client (null: a Content-Length body that did not arrive whole) and sent to it. */
  readonly bytesReceived: number | null;
  readonly bytesSent: number;
  /** From arrival to the end of the answer, ms. */
  readonly durationMs: number;
  /** From sending upstream to the upstream's response head, ms; null when no upstream answered. */
  readonly upstreamMs: number | null;
  /** The address dialled (`host:port`: a pod endpoint or the Service), Envoy's upstream_host. */
  readonly upstreamHost: string | undefined;
  /** The upstream as the route names it (`<svc>.<ns>:<port>`), Envoy's upstream_cluster. */
  readonly upstreamCluster: string | undefined;
  readonly namespace: string | undefined;
  readonly deployment: string | undefined;
  readonly predictor: string | undefined;
  /** Attempts after the first (retries and replays). */
  readonly retries: number;
  /** Shadows the request was mirrored to. */
  readonly shadows: number;
  /** The x-request-id the upstream saw (the client's, or the one the gateway made). */
  readonly requestId: string | undefined;
  /** The W3C trace id of the request (with --otlp-endpoint, or from the client's context). */
  readonly traceId: string | undefined;
  readonly userAgent: string | undefined;
  /** The client certificate's subject on a TLS connection that presented one (Envoy's downstream_peer_subject). */
  readonly peerSubject: string | undefined;
}

/**
 * The entry's fields that say where a routed request went, REST and gRPC alike: the route's
 * origin and shadows, the upstream it names (`upstreamCluster`) and the address dialled, the
 * attempts made, the time to the upstream's head (null: none answered).
 */
export function routedFields(
  decision: Routed,
  upstreamCluster: string,
  upstreamHost: string | undefined,
  attempts: number,
  upstreamSeconds: number | null,
): Pick<AccessEntry, 'upstreamMs' | 'upstreamHost' | 'upstreamCluster' | 'namespace' | 'deployment' | 'predictor' | 'retries' | 'shadows'> {
  const o = decision.backend.origin;
  return {
    upstreamMs: upstreamSeconds === null ? null : upstreamSeconds * 1000,
    upstreamHost,
    upstreamCluster,
    namespace: o.namespace,
    deployment: o.deployment,
    predictor: o.predictor,
    retries: Math.max(0, attempts - 1),
    shadows: decision.mirrors.length,
  };
}

/**
 * The fields of a request the gateway answered itself (no route, a refusal, a preflight), REST
 * and gRPC alike: no upstream, nothing retried or mirrored; the route's origin when it is known.
 */
export function answeredFields(backend: Backend | undefined): ReturnType<typeof routedFields> {
  const o = backend?.origin;
  return {
    upstreamMs: null,
    upstreamHost: undefined,
    upstreamCluster: undefined,
    namespace: o?.namespace,
    deployment: o?.deployment,
    predictor: o?.predictor,
    retries: 0,
    shadows: 0,
  };
}

export type AccessLogFormat = 'json' | 'text';

export interface AccessLogOptions {
  /** Fraction of requests logged, 0..1 (--access-log-sample). */
  readonly sample: number;
  readonly format: AccessLogFormat;
  /** Keep query strings in logged paths (--access-log-query). */
  readonly query: boolean;
}

/** Where lines go: `AccessLogOutput` in production, any stream in tests. */
export interface AccessSink {
  write(line: string): unknown;
}

/** What JSON.stringify would escape in a string (a surrogate: let it decide). */
const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/;
/** A JSON string (or null); most values need no escaping, and skip the serializer. */
const q = (s: string | undefined): string => (s === undefined ? 'null' : NEEDS_ESCAPE.test(s) ? JSON.stringify(s) : `"${s}"`);

/**
 * ISO 8601 of an epoch-ms time, as Date#toISOString writes it, with the part up to the second
 * made once per second: most lines of a second share it (toISOString is most of a line's cost).
 */
let isoSecond = NaN;
let isoPrefix = '';
export function isoTime(epochMs: number): string {
  const ms = Math.floor(epochMs);
  const second = Math.floor(ms / 1000);
  if (second !== isoSecond) {
    isoSecond = second;
    isoPrefix = new Date(second * 1000).toISOString().slice(0, 20);
  }
  const frac = ms - second * 1000;
  return `${isoPrefix}${frac < 10 ? '00' : frac < 100 ? '0' : ''}${frac}Z`;
}
const n = (v: number | null | undefined): string => (v === null || v === undefined ? 'null' : String(v));
const ms = (v: number): number => Math.round(v * 1000) / 1000;

/**
 * One JSON line. The envelope (`level`, `severity`, `time`, `msg`) is the main log's
 * (observe/log-format.ts), so one pipeline reads both; the rest are Envoy's JSON field names.
 * Built by hand: a fixed field order, and about half the cost of a generic serializer.
 */
export function jsonLine(e: AccessEntry): string {
  return (
    `{"level":"info","severity":"INFO","time":"${isoTime(Date.now())}","msg":"access"` +
    `,"start_time":"${isoTime(e.startTime)}","downstream_remote_address":${q(e.clientAddress)},"x_forwarded_for":${q(e.forwardedFor)}` +
    `,"method":${q(e.method)},"authority":${q(e.authority)},"path":${q(e.path)},"protocol":${q(e.protocol)}` +
    `,"response_code":${e.responseCode},"grpc_status":${n(e.grpcStatus)},"bytes_received":${n(e.bytesReceived)},"bytes_sent":${e.bytesSent}` +
    `,"duration":${ms(e.durationMs)},"upstream_service_time":${e.upstreamMs === null ? 'null' : ms(e.upstreamMs)},"upstream_host":${q(e.upstreamHost)},"upstream_cluster":${q(e.upstreamCluster)}` +
    `,"namespace":${q(e.namespace)},"deployment":${q(e.deployment)},"predictor":${q(e.predictor)},"retries":${e.retries},"shadows":${e.shadows}` +
    `,"request_id":${q(e.requestId)},"trace_id":${q(e.traceId)},"user_agent":${q(e.userAgent)},"downstream_peer_subject":${q(e.peerSubject)}}\n`
  );
}

/** A quoted text field: `"-"` when absent; quotes, backslashes and control characters escaped (no line injection). */
function t(s: string | undefined): string {
  if (s === undefined || s === '') return '"-"';
  return /["\\\x00-\x1f\x7f]/.test(s) ? `"${s.replace(/["\\\x00-\x1f\x7f]/g, (c) => (c === '"' || c === '\\' ? `\\${c}` : `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`))}"` : `"${s}"`;
}

/** A bare text field that is a number or absent (`-`). */
const tn = (v: number | null | undefined): string => (v === null || v === undefined ? '-' : String(v));

/**
 * Envoy's default line, then the gateway's fields:
 * `[START_TIME] "METHOD PATH PROTOCOL" RESPONSE_CODE RESPONSE_FLAGS BYTES_RECEIVED BYTES_SENT DURATION
 * UPSTREAM_SERVICE_TIME "X-FORWARDED-FOR" "USER-AGENT" "X-REQUEST-ID" "AUTHORITY" "UPSTREAM_HOST"`
 * `GRPC_STATUS "NAMESPACE/DEPLOYMENT/PREDICTOR" "UPSTREAM_CLUSTER" RETRIES SHADOWS "TRACE_ID" "CLIENT_ADDRESS" "PEER_SUBJECT"`.
 * RESPONSE_FLAGS is always `-` (kept so Envoy's parsers read the line).
 */
export function textLine(e: AccessEntry): string {
  const route = e.deployment === undefined ? undefined : `${e.namespace}/${e.deployment}/${e.predictor}`;
  return (
    `[${isoTime(e.startTime)}] ${t(`${e.method} ${e.path} ${e.protocol}`)} ${e.responseCode} - ${tn(e.bytesReceived)} ${e.bytesSent} ${ms(e.durationMs)} ${e.upstreamMs === null ? '-' : ms(e.upstreamMs)}` +
    ` ${t(e.forwardedFor)} ${t(e.userAgent)} ${t(e.requestId)} ${t(e.authority)} ${t(e.upstreamHost)}` +
    ` ${tn(e.grpcStatus)} ${t(route)} ${t(e.upstreamCluster)} ${e.retries} ${e.shadows} ${t(e.traceId)} ${t(e.clientAddress)} ${t(e.peerSubject)}\n`
  );
}

export class AccessLog {
  private readonly line: (e: AccessEntry) => string;

  constructor(
    private readonly sink: AccessSink,
    readonly options: AccessLogOptions,
    private readonly random: () => number = Math.random,
  ) {
    this.line = options.format === 'text' ? textLine : jsonLine;
  }

  /** Fraction of requests logged. */
  get sample(): number {
    return this.options.sample;
  }

  /** One draw: is this request logged? */
  sampled(): boolean {
    const s = this.options.sample;
    return s >= 1 || this.random() < s;
  }

  /** A request target as logged: without its query string, unless --access-log-query. */
  path(url: string): string {
    if (this.options.query) return url;
    const i = url.indexOf('?');
    return i < 0 ? url : url.slice(0, i);
  }

  write(entry: AccessEntry): void {
    this.sink.write(this.line(entry));
  }
}

/**
 * Lines wait at most this long to be written, or until FLUSH_BYTES wait: a write per batch, not
 * per request (each write is a syscall, and for a file a thread-pool round trip).
 */
const FLUSH_MS = 50;
const FLUSH_BYTES = 64 * 1024;
/** A file that answered EAGAIN is tried again after this long. */
const RETRY_MS = 50;

/** A batch's buffer: room for FLUSH_BYTES and a few lines more (a line longer than that gets one of its own). */
const BATCH_BUFFER_BYTES = FLUSH_BYTES + 16 * 1024;
/** Written batches' buffers kept for the next ones, at most. */
const SPARE_BUFFERS = 4;

/** Encoded lines waiting to be written (a view of `whole`), and how many lines they are (a failed write counts them). */
interface Batch {
  readonly whole: Buffer;
  readonly bytes: Buffer;
  readonly lines: number;
}

/**
 * Access log lines on their way to a file descriptor (stdout), never blocking the caller: see
 * the module comment. `dropped(lines)` is told of every line lost (over the bound, or in a
 * failed write).
 *
 * Each line is encoded into the batch being filled as it is accepted, so what waits is bytes outside
 * the JS heap, in buffers reused from batch to batch. Before, lines waited as the strings they were
 * built as (a tree of about 3 KB each), every young collection that met them copied them, and a
 * batch was joined into one more string on the heap before the write encoded it: with this, GC
 * pauses per logged request fell by a third (REST) and 40% (gRPC) in load/alloc-bench.ts.
 */
export class AccessLogOutput implements AccessSink {
  /** Sealed batches, oldest first. */
  private queue: Batch[] = [];
  /** The batch being filled, its bytes used, its lines. */
  private filling: Buffer | undefined;
  private used = 0;
  private lines = 0;
  private queuedBytes = 0;
  /** A write is due: on the timer (lines wait) or at once (a batch is full). */
  private timer: NodeJS.Timeout | undefined;
  private immediate = false;
  /** A pipe, socket or terminal: libuv's stream. Otherwise (a file, /dev/null) `fd` is written directly. */
  private readonly stream: Writable | undefined;
  /** File writes: one in flight. */
  private writing = false;
  private idleWaiters: (() => void)[] = [];
  /** Buffers of written batches, reused: a steady log allocates none. */
  private readonly spare: Buffer[] = [];

  constructor(
    private readonly fd: number,
    private readonly maxBufferedBytes: number,
    private readonly dropped: (lines: number) => void,
  ) {
    let kind: 'stream' | 'file' = 'file';
    try {
      const st = fstatSync(fd);
      if (st.isFIFO() || st.isSocket()) kind = 'stream';
    } catch {
      // Not stat-able: written as a file; a failed write counts its lines.
    }
    if (kind === 'stream') {
      // stdout's own stream where it is ours to share (the main log writes there too).
      this.stream = fd === 1 ? process.stdout : fd === 2 ? process.stderr : new Socket({ fd, readable: false, writable: true });
      // A reader that went away (EPIPE) or a broken descriptor: the lines are counted as they come.
      this.stream.on('error', () => undefined);
    }
  }

  /** Bytes accepted but not yet written. */
  get pendingBytes(): number {
    return this.queuedBytes + (this.stream?.writableLength ?? 0);
  }

  write(line: string): void {
    const s = this.stream;
    if (this.pendingBytes + line.length > this.maxBufferedBytes || (s !== undefined && (s.destroyed || s.writableEnded))) {
      this.dropped(1);
      return;
    }
    // At most 3 bytes of UTF-8 per UTF-16 unit: the line fits in what is left of the batch.
    if (this.filling === undefined || this.used + 3 * line.length > this.filling.length) {
      this.seal();
      this.filling = 3 * line.length > BATCH_BUFFER_BYTES ? Buffer.allocUnsafeSlow(3 * line.length) : (this.spare.pop() ?? Buffer.allocUnsafeSlow(BATCH_BUFFER_BYTES));
    }
    const n = this.filling.write(line, this.used);
    this.used += n;
    this.lines++;
    this.queuedBytes += n;
    if (this.queuedBytes >= FLUSH_BYTES) {
      if (!this.immediate) {
        this.immediate = true;
        setImmediate(this.drainQueue);
      }
    } else if (this.timer === undefined) {
      this.timer = setTimeout(this.drainQueue, FLUSH_MS);
      // Not what keeps a process alive: a shutdown flushes (`flush`).
      this.timer.unref();
    }
  }

  /** The batch being filled joins the queue. */
  private seal(): void {
    if (this.filling === undefined || this.lines === 0) return;
    this.queue.push({ whole: this.filling, bytes: this.filling.subarray(0, this.used), lines: this.lines });
    this.filling = undefined;
    this.used = 0;
    this.lines = 0;
  }

  private readonly drainQueue = (): void => {
    this.immediate = false;
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    this.seal();
    if (this.stream !== undefined) {
      for (const b of this.queue.splice(0)) {
        this.queuedBytes -= b.bytes.length;
        this.stream.write(b.bytes, (err) => {
          if (err) this.dropped(b.lines);
          this.recycle(b);
          this.notifyIdle();
        });
      }
      return;
    }
    if (!this.writing) this.writeFile();
  };

  /** One file write of the oldest batch; the next follows when it is done. */
  private writeFile(): void {
    const b = this.queue.shift();
    if (b === undefined) {
      this.notifyIdle();
      return;
    }
    this.writing = true;
    this.writeBytes(b.bytes, b);
  }

  /** Write `bytes` (the rest of `batch`) at the file's end; a short write goes on with the rest. */
  private writeBytes(bytes: Buffer, batch: Batch): void {
    fsWrite(this.fd, bytes, 0, bytes.length, null, (err: NodeJS.ErrnoException | null, written: number) => {
      if (err) {
        if (err.code === 'EAGAIN') {
          setTimeout(() => this.writeBytes(bytes, batch), RETRY_MS).unref();
          return;
        }
        this.dropped(batch.lines);
      } else if (written < bytes.length) {
        this.writeBytes(bytes.subarray(written), batch);
        return;
      }
      this.queuedBytes -= batch.bytes.length;
      this.recycle(batch);
      this.writing = false;
      this.writeFile();
    });
  }

  /** A batch is written (or failed): its buffer serves again. */
  private recycle(b: Batch): void {
    if (b.whole.length === BATCH_BUFFER_BYTES && this.spare.length < SPARE_BUFFERS) this.spare.push(b.whole);
  }

  private notifyIdle(): void {
    if (this.idleWaiters.length === 0 || this.pendingBytes > 0 || this.writing) return;
    const w = this.idleWaiters;
    this.idleWaiters = [];
    for (const f of w) f();
  }

  /** Resolves once every accepted line is written, or after `timeoutMs` (a stuck reader must not hold a shutdown). */
  flush(timeoutMs: number): Promise<void> {
    if (this.queue.length > 0 || this.lines > 0) this.drainQueue();
    if (this.pendingBytes === 0 && !this.writing) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, timeoutMs);
      timer.unref();
      this.idleWaiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
      if (this.stream !== undefined && this.queue.length === 0) {
        // Lines already handed to the stream: it says when its buffer is empty.
        this.stream.once('drain', () => this.notifyIdle());
        this.stream.write('', () => this.notifyIdle());
      }
    });
  }
}
