/**
 * The optional extra bound on mirrored work (--shadow-max-in-flight, docs/routing.md#shadows),
 * shared by REST and gRPC mirrors. By default there is none: as in Envoy, a shadow upstream's
 * copies are bounded by its circuit breaker alone (max_requests, max_pending_requests) and each
 * copy's timeout (upstream/mirror.ts). With a cap, a shadow upstream has at most `maxInFlight`
 * copies outstanding (waiting or sent); a copy beyond it is dropped (and counted by the caller).
 */
export class MirrorBudget {
  // Keyed by any per-upstream object: a REST UpstreamPool or a gRPC upstream (upstream/grpc-sessions.ts).
  private readonly inFlight = new WeakMap<object, number>();
  /** undefined: no cap of its own (0 given on the command line means the same). */
  readonly maxInFlight: number | undefined;

  constructor(maxInFlight: number | undefined) {
    this.maxInFlight = maxInFlight === undefined || maxInFlight <= 0 ? undefined : maxInFlight;
  }

  /** Take a slot for a mirror to `pool`; false when its cap is reached. */
  take(pool: object): boolean {
    if (this.maxInFlight === undefined) return true;
    const n = this.inFlight.get(pool) ?? 0;
    if (n >= this.maxInFlight) return false;
    this.inFlight.set(pool, n + 1);
    return true;
  }

  give(pool: object): void {
    if (this.maxInFlight === undefined) return;
    this.inFlight.set(pool, (this.inFlight.get(pool) ?? 1) - 1);
  }
}
