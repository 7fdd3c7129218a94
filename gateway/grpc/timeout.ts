/**
 * The `grpc-timeout` request header (gRPC over HTTP/2): 1 to 8 ASCII digits and a unit, one of
 * H M S m u n. The gateway reads the client's budget from it and, when the route timeout is
 * smaller (or time has passed on retries), writes the remaining budget for the upstream.
 */

const UNIT_MS: Readonly<Record<string, number>> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 0.001, n: 0.000_001 };
const MAX_DIGITS = 99_999_999;

/** Milliseconds, or undefined when the header is absent or malformed (then it is ignored). */
export function parseGrpcTimeout(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = value.length;
  if (n < 2 || n > 9) return undefined;
  const unit = UNIT_MS[value[n - 1]!];
  if (unit === undefined) return undefined;
  let digits = 0;
  for (let i = 0; i < n - 1; i++) {
    const c = value.charCodeAt(i) - 48;
    if (c < 0 || c > 9) return undefined;
    digits = digits * 10 + c;
  }
  return digits * unit;
}

/** A header value for `ms` (rounded up, at least 1 ms), in the finest unit that fits 8 digits. */
export function formatGrpcTimeout(ms: number): string {
  const m = Math.max(1, Math.ceil(ms));
  if (m <= MAX_DIGITS) return `${m}m`;
  const s = Math.ceil(m / 1000);
  if (s <= MAX_DIGITS) return `${s}S`;
  return `${Math.min(MAX_DIGITS, Math.ceil(s / 3600))}H`;
}
