/**
 * The retry rules REST and gRPC share (gateway/forward/retry-rule.ts), directly: which failures
 * and statuses each `retry_on` covers, and the bounds of the jittered backoff over many draws.
 */
import { describe, expect, it } from 'vitest';
import { backoffMs, retriesOn, type AttemptFailure } from '../../../gateway/forward/retry-rule.js';
import type { RetryOn, RetryPolicy } from '../../../routing/types.js';

const policy = (retryOn: RetryOn): RetryPolicy => ({ retryOn, numRetries: 3, perTryTimeoutMs: 0 });

const FAILURES: readonly AttemptFailure[] = ['connect', 'reset', 'refused', 'timeout', 'idle'];
const STATUSES: readonly number[] = [200, 204, 301, 400, 404, 408, 409, 429, 499, 500, 501, 502, 503, 504, 505, 599];

/** What each retry_on covers, written out (Envoy's x-envoy-retry-on meanings). */
const COVERS: Record<RetryOn, readonly AttemptFailure[]> = {
  'gateway-error': ['connect', 'reset', 'refused', 502, 503, 504],
  '5xx': ['connect', 'reset', 'refused', 500, 501, 502, 503, 504, 505, 599],
  'connect-failure': ['connect'],
  'retriable-4xx': [409],
  'refused-stream': ['refused'],
};

describe('retriesOn', () => {
  for (const [on, covered] of Object.entries(COVERS) as [RetryOn, readonly AttemptFailure[]][]) {
    it(`retry_on ${on} covers exactly ${covered.join(', ')}`, () => {
      const got = [...FAILURES, ...STATUSES].filter((w) => retriesOn(policy(on), w));
      expect(got).toEqual([...FAILURES, ...STATUSES].filter((w) => covered.includes(w)));
    });
  }

  it('without a policy nothing retries', () => {
    for (const w of [...FAILURES, ...STATUSES]) expect(retriesOn(null, w), String(w)).toBe(false);
  });

  it('never retries a timeout or an idle timeout, whatever the policy', () => {
    for (const on of Object.keys(COVERS) as RetryOn[]) {
      expect(retriesOn(policy(on), 'timeout'), on).toBe(false);
      expect(retriesOn(policy(on), 'idle'), on).toBe(false);
    }
  });

  it('never retries a success or an ordinary client error', () => {
    for (const on of Object.keys(COVERS) as RetryOn[]) for (const s of [200, 201, 400, 404, 429]) expect(retriesOn(policy(on), s), `${on} ${s}`).toBe(false);
  });
});

describe('backoffMs', () => {
  const DRAWS = 4000;
  /** The cap of retry n: 25 ms × 2ⁿ, at most 250 ms. */
  const CAPS: [number, number][] = [
    [0, 25],
    [1, 50],
    [2, 100],
    [3, 200],
    [4, 250],
    [5, 250],
    [20, 250],
  ];

  for (const [n, cap] of CAPS) {
    it(`retry ${n}: full jitter over [0, ${cap}) ms`, () => {
      const draws = Array.from({ length: DRAWS }, () => backoffMs(n));
      const min = Math.min(...draws);
      const max = Math.max(...draws);
      const mean = draws.reduce((a, b) => a + b, 0) / DRAWS;
      expect(min).toBeGreaterThanOrEqual(0);
      expect(max).toBeLessThan(cap);
      // Full jitter: the whole range is used, evenly (the mean of a uniform draw is cap/2).
      expect(min).toBeLessThan(cap * 0.05);
      expect(max).toBeGreaterThan(cap * 0.95);
      expect(mean).toBeGreaterThan(cap * 0.45);
      expect(mean).toBeLessThan(cap * 0.55);
    });
  }

  it('varies from draw to draw (no fixed delay)', () => {
    expect(new Set(Array.from({ length: 50 }, () => backoffMs(2))).size).toBeGreaterThan(40);
  });
});
