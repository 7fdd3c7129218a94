/**
 * The deadline of a gRPC call before the upstream's response headers
 * (docs/routing.md#timeouts-retries-and-circuit-breakers): the client's `grpc-timeout`, counted
 * from its arrival, and the route timeout, counted from the end of the request; whichever comes
 * first ends the call with DEADLINE_EXCEEDED. One timer, on the call's clock; the call's
 * `deadlineExpired` says which ran out. The client's budget also goes upstream: a retry carries
 * what is left of it.
 */
import type { Clock, Timer } from '../upstream/clock.js';
import { formatGrpcTimeout, parseGrpcTimeout } from './timeout.js';

export interface DeadlineOwner {
  deadlineExpired(why: 'client' | 'route'): void;
}

export class CallDeadline {
  /** The client's grpc-timeout as sent. */
  readonly clientTimeout: string | undefined;
  /** Its absolute deadline (clock ms). */
  private readonly clientAt: number | undefined;
  private at = Infinity;
  private why: 'client' | 'route' = 'route';
  private timer: Timer | undefined;

  constructor(
    private readonly owner: DeadlineOwner,
    private readonly clock: Clock,
    grpcTimeout: string | string[] | undefined,
    /** When the call arrived (clock ms); default: now. */
    arrivedAt = clock.now(),
  ) {
    this.clientTimeout = typeof grpcTimeout === 'string' ? grpcTimeout : undefined;
    const ms = parseGrpcTimeout(this.clientTimeout);
    this.clientAt = ms === undefined ? undefined : arrivedAt + ms;
  }

  /** The client's deadline runs (from the call's arrival). */
  startClient(): void {
    if (this.clientAt !== undefined) this.arm(this.clientAt, 'client');
  }

  /** The request has ended: the route timeout runs from now, unless the client's ends first. */
  startRoute(ms: number): void {
    if (ms > 0) this.arm(this.clock.now() + ms, 'route');
  }

  /** What is left of the client's budget, as the retry's grpc-timeout (undefined: it gave none). */
  remaining(): string | undefined {
    return this.clientAt === undefined ? undefined : formatGrpcTimeout(this.clientAt - this.clock.now());
  }

  private arm(at: number, why: 'client' | 'route'): void {
    if (at >= this.at) return;
    if (this.timer) this.clock.clearTimeout(this.timer);
    this.at = at;
    this.why = why;
    this.timer = this.clock.setTimeout(CallDeadline.expired, Math.max(0, at - this.clock.now()), this);
  }

  /** The response headers came, or the call is over. */
  clear(): void {
    if (this.timer) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    this.at = Infinity;
  }

  private static expired(this: void, d: CallDeadline): void {
    d.timer = undefined;
    d.owner.deadlineExpired(d.why);
  }
}
