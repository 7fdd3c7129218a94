/** What a rollout is judged on: one predictor side's counts, one closed window of both sides, and which answers are errors. */
import type { Protocol } from '../../types.js';

/** One predictor side's counts in one window. */
export interface Tally {
  readonly requests: number;
  readonly errors: number;
  /** Counts per latency bucket (`latency-buckets.ts`), `LATENCY_BUCKET_COUNT` long. */
  readonly latency: readonly number[];
}

/**
 * One closed window of counts, ms on the store's clock. In the mirror phase `canary` counts the
 * mirrored requests (their errors and latencies are judged as live ones would be) and `agreement`
 * how many of the mirrored answers were compared with the primary's and agreed.
 */
export interface RolloutWindow {
  readonly start: number;
  readonly end: number;
  readonly primary: Tally;
  readonly canary: Tally;
  readonly agreement: { readonly compared: number; readonly agree: number };
}

const GRPC_ERRORS = new Set([2 /* UNKNOWN */, 4 /* DEADLINE_EXCEEDED */, 13 /* INTERNAL */, 14 /* UNAVAILABLE */]);

/** Whether an answer counts as an error: a 5xx status, or gRPC UNKNOWN, DEADLINE_EXCEEDED, INTERNAL or UNAVAILABLE (`code` is the grpc-status). */
export function isRolloutError(protocol: Protocol, code: number): boolean {
  return protocol === 'rest' ? code >= 500 && code <= 599 : GRPC_ERRORS.has(code);
}
