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
import { encodeJsonLine, jsonLine, jsonLineBound, textLine, type AccessEntry } from './access-line.js';

export { isoTime, jsonLine, textLine, type AccessEntry } from './access-line.js';

/** The fields of a line that say where its request went (set on it when the request ends). */
type Where = { -readonly [K in 'upstreamMs' | 'upstreamHost' | 'upstreamCluster' | 'namespace' | 'deployment' | 'predictor' | 'retries' | 'hedges' | 'shadows']: AccessEntry[K] };

/**
 * Where a routed request went, REST and gRPC alike, set on its line: the route's origin and
 * shadows, the upstream it names (`upstreamCluster`) and the address dialled (the winner's, when
 * hedged), the attempts made (retries and replays; hedges apart), the time to the upstream's head
 * (null: none answered).
 */
export function routedInto<L extends Where>(line: L, decision: Routed, upstreamCluster: string, upstreamHost: string | undefined, attempts: number, upstreamSeconds: number | null, hedges = 0): L {
  const o = decision.backend.origin;
  line.upstreamMs = upstreamSeconds === null ? null : upstreamSeconds * 1000;
  line.upstreamHost = upstreamHost;
  line.upstreamCluster = upstreamCluster;
  line.namespace = o.namespace;
  line.deployment = o.deployment;
  line.predictor = o.predictor;
  line.retries = Math.max(0, attempts - 1 - hedges);
  line.hedges = hedges;
  line.shadows = decision.mirrors.length;
  return line;
}

/**
 * A request the gateway answered itself (no route, a refusal, a preflight), REST and gRPC alike,
 * set on its line: no upstream, nothing retried or mirrored; the route's origin when it is known.
 */
export function answeredInto<L extends Where>(line: L, backend: Backend | undefined): L {
  const o = backend?.origin;
  line.upstreamMs = null;
  line.upstreamHost = undefined;
  line.upstreamCluster = undefined;
  line.namespace = o?.namespace;
  line.deployment = o?.deployment;
  line.predictor = o?.predictor;
  line.retries = 0;
  line.hedges = 0;
  line.shadows = 0;
  return line;
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
  /** A JSON line encoded by the sink into its own bytes (`AccessLogOutput`), never built as a string. */
  writeJson?(entry: AccessEntry): unknown;
}

export class AccessLog {
  private readonly line: (e: AccessEntry) => string;
  /** JSON lines into a sink that encodes them itself. */
  private readonly encodes: boolean;

  constructor(
    private readonly sink: AccessSink,
    readonly options: AccessLogOptions,
    private readonly random: () => number = Math.random,
  ) {
    this.line = options.format === 'text' ? textLine : jsonLine;
    this.encodes = options.format !== 'text' && sink.writeJson !== undefined;
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
    if (this.encodes) this.sink.writeJson!(entry);
    else this.sink.write(this.line(entry));
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
 * pauses per logged request fell by a third (REST) and 40% (gRPC) in `npm run bench -- alloc`.
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
    if (this.refused(line.length)) return;
    // At most 3 bytes of UTF-8 per UTF-16 unit: the line fits in what is left of the batch.
    const filling = this.room(3 * line.length);
    this.accepted(filling.write(line, this.used));
  }

  /** A JSON line, encoded straight into the batch being filled. */
  writeJson(entry: AccessEntry): void {
    const bound = jsonLineBound(entry);
    if (this.refused(0)) return;
    const n = encodeJsonLine(entry, this.room(bound), this.used) - this.used;
    // Over the bound once its size is known: dropped, its bytes left to be written over.
    if (this.pendingBytes + n > this.maxBufferedBytes) this.dropped(1);
    else this.accepted(n);
  }

  /** No line of `length` more is taken (over the bound, or the stream is gone): it is counted as dropped. */
  private refused(length: number): boolean {
    const s = this.stream;
    if (this.pendingBytes + length > this.maxBufferedBytes || (s !== undefined && (s.destroyed || s.writableEnded))) {
      this.dropped(1);
      return true;
    }
    return false;
  }

  /** The batch to fill with `bytes` more at `used`: this one, or a new one when they would not fit. */
  private room(bytes: number): Buffer {
    if (this.filling === undefined || this.used + bytes > this.filling.length) {
      this.seal();
      this.filling = bytes > BATCH_BUFFER_BYTES ? Buffer.allocUnsafeSlow(bytes) : (this.spare.pop() ?? Buffer.allocUnsafeSlow(BATCH_BUFFER_BYTES));
    }
    return this.filling;
  }

  /** `n` bytes of a line were written at `used`: they wait for the next write. */
  private accepted(n: number): void {
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
