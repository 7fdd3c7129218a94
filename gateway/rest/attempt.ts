/**
 * One attempt of a REST exchange (rest/forwarded-exchange.ts): the endpoint it was sent to (counted in that
 * endpoint's outstanding requests while it runs), the upstream client's handle of it, its per-try
 * timer and the client's callbacks (upstream/http1-client.ts `ResponseHandler`), which it passes
 * to its exchange with itself. Once the exchange is done with it (`end`: answered, failed, lost
 * to a hedge, or the exchange is over), whatever it still reports is dropped here: an exchange
 * only hears from the attempts in flight. One that ended with its answer still coming has that
 * answer read and dropped by the client, whose connection is then kept.
 */
import type { Clock } from '../upstream/clock.js';
import { AttemptBase } from '../forward/attempt-base.js';
import type { Endpoint } from '../upstream/pools.js';
import type { ResponseHandler, ResponseHead, UpstreamAttempt } from '../upstream/http1-client.js';
import type { UpstreamRequest } from '../upstream/request-head.js';
import type { Backend } from '../../routing/types.js';

const NO_HEADERS: readonly string[] = [];

/** Why the gateway cut an attempt: the route timeout, its per-try timeout, the client (gone, or answered), or another attempt's answer won (`lost`). */
export type AbortReason = 'timeout' | 'per-try-timeout' | 'client' | 'lost';

/**
 * The error a cut attempt fails with. One per reason, made once (`AttemptAborted.BY`), never
 * thrown and never changed: a cut (every hedge's loser) makes no object and captures no stack,
 * which cost tens of microseconds a loser (a CPU profile of `npm run bench -- hedging`).
 */
export class AttemptAborted extends Error {
  static readonly BY: Readonly<Record<AbortReason, AttemptAborted>> = Object.freeze({
    timeout: new AttemptAborted('timeout'),
    'per-try-timeout': new AttemptAborted('per-try-timeout'),
    client: new AttemptAborted('client'),
    lost: new AttemptAborted('lost'),
  });

  private constructor(readonly why: AbortReason) {
    super(why);
  }
}

/** What an attempt reports to its exchange. */
export interface AttemptOwner {
  attemptHeaders(a: RestAttempt, head: ResponseHead): boolean;
  attemptData(a: RestAttempt, chunk: Buffer): boolean;
  attemptComplete(a: RestAttempt): void;
  attemptFailed(a: RestAttempt, err: Error & { code?: string }): void;
}

export class RestAttempt extends AttemptBase implements ResponseHandler, UpstreamRequest {
  // ---- the request it sends (upstream/request-head.ts `UpstreamRequest`: the attempt is its own, no object per attempt) ----
  method = '';
  path = '';
  headers: UpstreamRequest['headers'] = NO_HEADERS;
  body: UpstreamRequest['body'] = null;
  headersTimeout = 0;
  bodyTimeout = 0;
  /** Its answer is read and dropped: a retry was decided on its status. */
  discard = false;
  /** Its answer head arrived. */
  answered = false;
  private upstream: UpstreamAttempt | undefined;
  /** The exchange is done with it. */
  private over = false;
  private counted = true;

  constructor(
    private readonly owner: AttemptOwner,
    readonly endpoint: Endpoint,
    backend: Backend,
    clock: Clock,
    n = 0,
    hedge = false,
  ) {
    super(clock, n, hedge);
    endpoint.outstanding++;
    this.startTryTimer(backend, RestAttempt.expired);
  }

  /** What it sends: the request line, the fields, the body; its answer's head and body gaps bounded by `idleMs`. */
  request(method: string, path: string, headers: UpstreamRequest['headers'], body: UpstreamRequest['body'], idleMs: number): this {
    this.method = method;
    this.path = path;
    this.headers = headers;
    this.body = body;
    this.headersTimeout = idleMs;
    this.bodyTimeout = idleMs;
    return this;
  }

  private static expired(this: void, a: RestAttempt): void {
    a.abort(AttemptAborted.BY['per-try-timeout']);
  }

  /** Cut it upstream (the client's handle reports the error to `onError`). */
  abort(err: AttemptAborted): void {
    const u = this.upstream;
    this.upstream = undefined;
    u?.abort(err);
  }

  /** Read on from the upstream (the client took what was written). */
  resume(): void {
    this.upstream?.resume();
  }

  /** `chunk` of the answer reached the client's socket and is kept by nobody (upstream/http1-connection.ts reuses its memory). */
  passed(chunk: Buffer): void {
    this.upstream?.passed(chunk);
  }

  /** The exchange is done with it: its endpoint's count and its timer end; what it reports from now on is dropped. */
  end(): void {
    this.over = true;
    this.stopTimer();
    if (this.counted) {
      this.counted = false;
      this.endpoint.outstanding--;
    }
  }

  // ---- the upstream client's handler (the head as offsets over the bytes read: nothing is built) ----

  onConnect(attempt: UpstreamAttempt): void {
    if (this.over) attempt.abort(AttemptAborted.BY.client);
    else this.upstream = attempt;
  }

  onHeaders(head: ResponseHead): boolean {
    if (this.over) return true;
    this.stopTimer();
    this.answered = true;
    return this.owner.attemptHeaders(this, head);
  }

  onData(chunk: Buffer): boolean {
    if (this.over || this.discard) return true;
    return this.owner.attemptData(this, chunk);
  }

  onComplete(): void {
    if (!this.over) this.owner.attemptComplete(this);
  }

  onError(err: Error & { code?: string }): void {
    this.stopTimer();
    if (!this.over) this.owner.attemptFailed(this, err);
  }
}
