import { describe, expect, it } from 'vitest';
import { requestId } from '../../../gateway/edge/request-id.js';

describe('requestId', () => {
  it('is a lower-case version 4 UUID of the RFC 9562 variant', () => {
    for (let i = 0; i < 1000; i++) expect(requestId()).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });

  it('does not repeat across many pool refills', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 20_000; i++) seen.add(requestId());
    expect(seen.size).toBe(20_000);
  });

  it('uses every hex digit in the random positions', () => {
    const digits = new Set(Array.from({ length: 200 }, requestId).join('').replace(/-/g, ''));
    expect(digits.size).toBe(16);
  });
});
