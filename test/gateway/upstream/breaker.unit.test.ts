/**
 * The circuit breaker of one upstream (gateway/upstream/breaker.ts), directly: which limit refuses a
 * request and when, that a refusal takes no slot, retry slots apart from request slots, and the
 * overflow text that error bodies and grpc-message carry.
 */
import { describe, expect, it } from 'vitest';
import { Breaker, overflowInfo, type Overflow } from '../../../gateway/upstream/breaker.js';
import type { BreakerLimits } from '../../../routing/types.js';

const limits = (o: Partial<BreakerLimits>): BreakerLimits => ({ maxConnections: 1024, maxPendingRequests: 1024, maxRequests: 1024, maxRetries: 3, ...o });

/** Enter `n` times; the results in order. */
function enterMany(b: Breaker, n: number): (Overflow | null)[] {
  return Array.from({ length: n }, () => b.enter());
}

describe('breaker: request slots', () => {
  it('admits up to max_requests in flight, then refuses with max_requests', () => {
    const b = new Breaker(limits({ maxRequests: 4 }));
    expect(enterMany(b, 4)).toEqual([null, null, null, null]);
    expect(b.inFlight).toBe(4);
    expect(b.enter()).toBe('max_requests');
    expect(b.enter()).toBe('max_requests');
    expect(b.inFlight).toBe(4); // a refusal takes no slot
  });

  it('counts requests beyond max_connections as pending and refuses past max_pending_requests', () => {
    const b = new Breaker(limits({ maxConnections: 2, maxPendingRequests: 3, maxRequests: 100 }));
    // 2 on connections + 3 pending are admitted; the sixth would be the fourth pending.
    expect(enterMany(b, 5)).toEqual([null, null, null, null, null]);
    expect(b.enter()).toBe('max_pending_requests');
    expect(b.inFlight).toBe(5);
  });

  it('with no pending allowed, admits exactly max_connections', () => {
    const b = new Breaker(limits({ maxConnections: 3, maxPendingRequests: 0 }));
    expect(enterMany(b, 4)).toEqual([null, null, null, 'max_pending_requests']);
  });

  it('names max_requests when both limits are reached', () => {
    const b = new Breaker(limits({ maxConnections: 1, maxPendingRequests: 1, maxRequests: 2 }));
    expect(enterMany(b, 3)).toEqual([null, null, 'max_requests']);
  });

  it('leave gives a slot back, and the next request is admitted again', () => {
    const b = new Breaker(limits({ maxRequests: 2 }));
    enterMany(b, 2);
    expect(b.enter()).toBe('max_requests');
    b.leave();
    expect(b.inFlight).toBe(1);
    expect(b.enter()).toBeNull();
    expect(b.inFlight).toBe(2);
    b.leave();
    b.leave();
    expect(b.inFlight).toBe(0);
    expect(enterMany(b, 3)).toEqual([null, null, 'max_requests']);
  });

  it('a limit of zero refuses every request', () => {
    expect(new Breaker(limits({ maxRequests: 0 })).enter()).toBe('max_requests');
    expect(new Breaker(limits({ maxConnections: 0, maxPendingRequests: 0 })).enter()).toBe('max_pending_requests');
  });
});

describe('breaker: retry slots', () => {
  it('admits up to max_retries retries in flight; leaveRetry frees one', () => {
    const b = new Breaker(limits({ maxRetries: 2 }));
    expect([b.enterRetry(), b.enterRetry(), b.enterRetry()]).toEqual([true, true, false]);
    expect(b.retriesInFlight).toBe(2);
    b.leaveRetry();
    expect(b.retriesInFlight).toBe(1);
    expect(b.enterRetry()).toBe(true);
    expect(b.enterRetry()).toBe(false);
  });

  it('max_retries 0 refuses every retry', () => {
    const b = new Breaker(limits({ maxRetries: 0 }));
    expect(b.enterRetry()).toBe(false);
    expect(b.retriesInFlight).toBe(0);
  });

  it('retry slots and request slots are counted apart', () => {
    const b = new Breaker(limits({ maxRequests: 1, maxRetries: 1 }));
    expect(b.enterRetry()).toBe(true);
    expect(b.enter()).toBeNull(); // a retry slot does not use a request slot
    expect(b.enter()).toBe('max_requests');
    expect(b.enterRetry()).toBe(false); // nor a request slot a retry slot
    b.leave();
    expect(b.retriesInFlight).toBe(1);
    b.leaveRetry();
    expect(b.inFlight).toBe(0);
    expect(b.enterRetry()).toBe(true);
  });
});

describe('overflowInfo', () => {
  const l = limits({ maxConnections: 7, maxPendingRequests: 11, maxRequests: 13, maxRetries: 2 });

  it('names the upstream, the limit and its value', () => {
    expect(overflowInfo('max_requests', 'iris-main.models:8000', l)).toBe('circuit breaker open for iris-main.models:8000: max_requests (13) reached');
    expect(overflowInfo('max_pending_requests', 'iris-main.models:8000', l)).toBe('circuit breaker open for iris-main.models:8000: max_pending_requests (11) reached');
    expect(overflowInfo('max_retries', 'a:1', l)).toBe('circuit breaker open for a:1: max_retries (2) reached');
  });

  it("matches what the breaker's own refusal reports", () => {
    const b = new Breaker(limits({ maxConnections: 0, maxPendingRequests: 1 }));
    b.enter();
    const what = b.enter();
    expect(what).not.toBeNull();
    expect(overflowInfo(what!, 'u', b.limits)).toBe('circuit breaker open for u: max_pending_requests (1) reached');
  });
});
