/**
 * A `cloudevents` sink's HTTP side: one POST per event in binary content mode (event.ts), as
 * Seldon's executor sends them (binary mode carries one event per request), over the gateway's
 * own pooled keep-alive HTTP/1.1 client (upstream/http1-client.ts, as the external auth client).
 * What the answer means for the event: 2xx delivered; 408, 429, any 5xx or no answer (refused,
 * reset, timed out) is the sink's trouble, so the event is sent again later; any other 4xx is the
 * sink refusing this event, which it would refuse again.
 */
import { isIP } from 'node:net';
import { Http1Pool, type ResponseHandler, type ResponseHead, type UpstreamAttempt } from '../upstream/http1-client.js';
import { binaryHeaders, dataBytes, type LogEvent } from './event.js';
import type { LogMetrics } from './metrics.js';
import { Pump, withLimit, type PumpSettings, type Undelivered } from './pump.js';

export type PostResult = 'delivered' | 'retry' | 'rejected';

/** The largest answer body read (and dropped) from a sink. */
const MAX_ANSWER_BYTES = 64 * 1024;
/** Deliveries of one event a sink refuses with a 4xx before it is dropped (a 4xx may be a sink's hiccup too). */
export const REJECTIONS_KEPT = 3;

export class CloudEventsPoster {
  private readonly pool: Http1Pool;
  private readonly path: string;
  private readonly host: string;

  constructor(
    url: string,
    private readonly timeoutMs: number,
    connections: number,
  ) {
    const u = new URL(url);
    const host = u.hostname.startsWith('[') ? u.hostname.slice(1, -1) : u.hostname;
    const tls = u.protocol === 'https:' ? { ...(isIP(host) === 0 ? { servername: host } : {}), rejectUnauthorized: true } : undefined;
    const port = u.port !== '' ? Number(u.port) : tls ? 443 : 80;
    this.pool = new Http1Pool({ host, port, connections, connectTimeoutMs: Math.min(timeoutMs, 5000), maxHeadBytes: 64 * 1024, tls });
    this.path = `${u.pathname}${u.search}`;
    this.host = u.host;
  }

  post(e: LogEvent): Promise<PostResult> {
    return new Promise<PostResult>((resolve) => {
      const answer = new SinkAnswer(resolve, this.timeoutMs);
      this.pool.dispatch(
        { method: 'POST', path: this.path, headers: ['host', this.host, ...binaryHeaders(e)], body: dataBytes(e), headersTimeout: this.timeoutMs, bodyTimeout: this.timeoutMs },
        answer,
      );
    });
  }

  close(): void {
    void this.pool.destroy().catch(() => undefined);
  }
}

/** One answer of the sink, read to its end (so the connection is kept) and judged. */
class SinkAnswer implements ResponseHandler {
  private attempt: UpstreamAttempt | undefined;
  private status = 0;
  private size = 0;
  private done = false;
  /** The whole POST, queueing for a connection included. */
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly resolve: (r: PostResult) => void,
    timeoutMs: number,
  ) {
    this.timer = setTimeout(() => this.attempt?.abort(Object.assign(new Error('the sink did not answer in time'), { code: 'SINK_TIMEOUT' })), timeoutMs);
    this.timer.unref();
  }

  onConnect(attempt: UpstreamAttempt): void {
    this.attempt = attempt;
  }

  onHeaders(head: ResponseHead): boolean {
    this.status = head.status;
    return true;
  }

  onData(chunk: Buffer): boolean {
    this.size += chunk.length;
    if (this.size > MAX_ANSWER_BYTES) {
      // Taken, by its status; the rest of its answer is not read.
      if (this.status >= 200 && this.status < 300) this.end('delivered');
      this.attempt?.abort(new Error('the sink answered with too large a body'));
    }
    return true;
  }

  onComplete(): void {
    const s = this.status;
    this.end(s >= 200 && s < 300 ? 'delivered' : s === 408 || s === 429 || s >= 500 ? 'retry' : 'rejected');
  }

  onError(): void {
    this.end('retry');
  }

  private end(r: PostResult): void {
    if (this.done) return;
    this.done = true;
    clearTimeout(this.timer);
    this.resolve(r);
  }
}

/** How a cloudevents sink's POSTs have been going (the admin page). */
export class SinkHealth {
  /** The last POST's outcome. */
  last: PostResult | undefined;
  /** Since when (ms) the sink has been failing; 0: it is not. */
  failingSince = 0;

  seen(r: PostResult): void {
    this.last = r;
    if (r === 'delivered') this.failingSince = 0;
    else if (this.failingSince === 0) this.failingSince = Date.now();
  }
}

/**
 * A cloudevents sink without Redis: its events wait in this process's memory (bounded in bytes),
 * are POSTed `concurrency` at a time, batch after batch, and those that failed are sent again
 * after a backoff. Dropped only on overflow (or refused three times).
 */
export class HttpDelivery extends Pump {
  private readonly poster: CloudEventsPoster;
  private readonly rejections = new WeakMap<LogEvent, number>();
  /** How its last POSTs went (the admin page). */
  readonly health = new SinkHealth();

  constructor(
    private readonly sink: string,
    url: string,
    settings: PumpSettings & { readonly timeoutMs: number; readonly concurrency: number },
    private readonly metrics: LogMetrics,
  ) {
    super(settings);
    this.poster = new CloudEventsPoster(url, settings.timeoutMs, settings.concurrency);
    this.concurrency = settings.concurrency;
  }

  private readonly concurrency: number;

  protected async deliver(batch: LogEvent[]): Promise<Undelivered> {
    const results = await withLimit(batch, this.concurrency, (e) => this.poster.post(e));
    const again: LogEvent[] = [];
    for (let i = 0; i < batch.length; i++) {
      const e = batch[i]!;
      const r = results[i]!;
      this.health.seen(r);
      if (r === 'delivered') this.metrics.count(this.sink, e.kind, 'delivered');
      else if (r === 'rejected' && (this.rejections.get(e) ?? 0) + 1 >= REJECTIONS_KEPT) this.metrics.dropped(this.sink, e.kind, 'rejected');
      else {
        if (r === 'rejected') this.rejections.set(e, (this.rejections.get(e) ?? 0) + 1);
        this.metrics.count(this.sink, e.kind, 'retried');
        again.push(e);
      }
    }
    return again;
  }

  override close(orphans?: (events: readonly LogEvent[]) => void): LogEvent[] {
    const left = super.close(orphans);
    this.poster.close();
    return left;
  }
}
