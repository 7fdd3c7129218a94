/**
 * The bound on mirrored work (docs/routing.md#shadows), shared by REST and gRPC mirrors: at most
 * `maxInFlight` mirrors in flight per shadow upstream; a mirror beyond it is dropped (and counted
 * by the caller), never queued.
 */
export class MirrorBudget {
  // Keyed by any per-upstream object: a REST UpstreamPool or a gRPC upstream (grpc-upstreams.ts).
  private readonly inFlight = new WeakMap<object, number>();
  constructor(readonly maxInFlight: number) {}

  /** Take a slot for a mirror to `pool`; false when its bound is reached. */
  take(pool: object): boolean {
    const n = this.inFlight.get(pool) ?? 0;
    if (n >= this.maxInFlight) return false;
    this.inFlight.set(pool, n + 1);
    return true;
  }

  give(pool: object): void {
    this.inFlight.set(pool, (this.inFlight.get(pool) ?? 1) - 1);
  }
}
