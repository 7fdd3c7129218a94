/**
 * Mirroring (docs/routing.md#shadows): fire-and-forget copies of a request to shadow backends.
 *
 * Algorithm: the primary request is never held for a mirror. The copy is sent once the
 * request body is complete (the body is teed while it streams to the primary), with the same
 * method, the primary's rewritten path, the same headers and `Host: <host>-shadow`. Admission
 * and settlement are upstream/mirror.ts, shared with gRPC: a copy counts against its shadow
 * upstream's breaker, and one admitted waits in that upstream's pool for a connection as any
 * request does (up to max_connections open, the rest queued); one refused, or with a body over
 * `maxBodyBytes`, is dropped and counted. The copy runs to the shadow route's timeout from
 * admission, waiting included (one timer per copy, as the primary has); its connection's own timer
 * is the idle timeout. Its response is read and discarded, or, with comparison on
 * (observe/shadow-compare.ts), kept up to a limit and compared with the primary's once both have ended.
 */
import type { ResponseHandler, ResponseHead, UpstreamAttempt } from '../upstream/http1-client.js';
import { UpstreamError } from '../upstream/request-head.js';
import type { GatewayMetrics } from '../observe/metrics.js';
import type { ResponseTap } from '../observe/observed-rest.js';
import type { AnswerCollector, PrimaryCapture, ShadowComparer } from '../observe/shadow-compare.js';
import type { MirrorBudget } from '../upstream/mirror-budget.js';
import { MirrorAdmission, mirrorTimeoutMs } from '../upstream/mirror.js';
import { shadowHost } from '../edge/http-headers.js';
import { UpstreamFields } from '../edge/upstream-fields.js';
import type { Upstreams } from '../upstream/pools.js';
import type { Backend, Mirror } from '../../routing/types.js';

/** Discards (or collects, for comparison) the mirror's response and settles its slot exactly once. */
class MirrorExchange implements ResponseHandler {
  private done = false;
  private status = 0;
  private readonly sentAt = performance.now();
  private seconds: number | null = null;
  private attempt: UpstreamAttempt | undefined;
  /** The copy's route timeout, from admission: it covers the wait for a connection too. */
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly backend: Backend,
    private readonly settle: (backend: Backend, status: number, failed: boolean, seconds: number | null) => void,
    private readonly collect?: AnswerCollector,
  ) {
    const ms = mirrorTimeoutMs(backend);
    if (ms > 0) {
      this.timer = setTimeout(MirrorExchange.expired, ms, this);
      this.timer.unref();
    }
  }

  private static expired(this: void, x: MirrorExchange): void {
    x.timer = undefined;
    const err = new UpstreamError('UPSTREAM_HEADERS_TIMEOUT', `the mirror was not answered within ${mirrorTimeoutMs(x.backend)} ms`);
    if (x.attempt !== undefined) x.attempt.abort(err);
    else x.onError();
  }

  onConnect(attempt: UpstreamAttempt): void {
    this.attempt = attempt;
  }
  onHeaders(head: ResponseHead): boolean {
    this.status = head.status;
    this.seconds = (performance.now() - this.sentAt) / 1000;
    this.collect?.head(head.status, head.headers);
    return true;
  }
  onData(chunk: Buffer): boolean {
    this.collect?.data(chunk);
    return true;
  }
  onComplete(): void {
    this.finish(false);
  }
  onError(): void {
    this.finish(true);
  }
  private finish(failed: boolean): void {
    if (this.done) return;
    this.done = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.settle(this.backend, this.status, failed, this.seconds);
  }
}

export class RestMirrors extends MirrorAdmission {
  constructor(
    private readonly upstreams: Upstreams,
    budget: MirrorBudget,
    maxBodyBytes: number,
    metrics: GatewayMetrics,
    /** With --shadow-compare: shadow answers are compared with the primary's. */
    private readonly compare?: ShadowComparer | undefined,
  ) {
    super(budget, metrics, 'rest', maxBodyBytes);
  }

  /**
   * `headers`: the primary's upstream headers (copied, with `Host: <host>-shadow`); `capture`: the
   * primary's answer, when comparison is on (`compare.capture()`); `tap`: the primary's, which traces each shadow.
   */
  send(mirrors: readonly Mirror[], method: string, path: string, primaryHeaders: UpstreamFields, body: Buffer | null, capture?: PrimaryCapture, tap?: Pick<ResponseTap, 'shadow'>): void {
    const headers = primaryHeaders.list().slice();
    for (let i = 0; i < headers.length; i += 2) {
      if (headers[i]!.length === 4 && headers[i]!.toLowerCase() === 'host') headers[i + 1] = shadowHost(headers[i + 1]!);
    }
    for (const m of mirrors) {
      const up = this.upstreams.for(m.backend);
      if (!this.admit(up, m.backend)) continue;
      const endpoint = up.pick();
      if (endpoint === undefined) {
        this.settle(up, m.backend, true, 0, null);
        continue;
      }
      endpoint.outstanding++;
      const compare = capture ? this.compare : undefined;
      const collected = compare?.collector();
      const traced = tap?.shadow(m.backend, UpstreamFields.wrap(headers));
      const exchange = new MirrorExchange(
        m.backend,
        (backend, status, failed, seconds) => {
          endpoint.outstanding--;
          traced?.end(status, failed);
          this.settle(up, backend, failed, status, seconds);
          if (!failed && collected) compare!.shadowAnswered(capture!, backend, 'rest', collected);
        },
        collected,
      );
      endpoint.pool.dispatch(
        // The route timeout is the exchange's; the connection's own timer is the idle timeout, as the primary's.
        { method, path, headers: traced?.carrier.list() ?? headers, body, headersTimeout: m.backend.idleTimeoutMs, bodyTimeout: m.backend.idleTimeoutMs },
        exchange,
      );
    }
  }
}
