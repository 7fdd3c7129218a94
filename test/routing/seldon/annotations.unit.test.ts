/**
 * The annotation readers (routing/seldon/annotations.ts), one by one: the default when a key is absent,
 * the typed value, and what a bad value does (an error that rejects, or a warning and the default).
 * See docs/routing.md#annotations.
 */
import { describe, expect, it } from 'vitest';
import {
  Findings,
  ambassadorIdAnnotation,
  breakerAnnotations,
  gateAnnotations,
  headerAnnotations,
  legacyShadowAnnotation,
  legacyWeightAnnotation,
  ownerGateAnnotation,
  predictorAnnotations,
  retriesAnnotation,
  serviceNameAnnotation,
  timeoutAnnotation,
} from '../../../routing/seldon/annotations.js';
import { DEFAULT_BREAKER } from '../../../routing/types.js';

const ann = (o: Record<string, string>): Map<string, string> => new Map(Object.entries(o));
const DEFAULTS = { defaultTimeoutMs: 3000, defaultIdleTimeoutMs: 300_000 };

describe('match-defining annotations return an error', () => {
  it('service name: absent → the deployment name; empty → the name with a warning; a slash → error', () => {
    const f = new Findings();
    expect(serviceNameAnnotation(ann({}), 'iris', f)).toEqual({ ok: true, value: 'iris' });
    expect(serviceNameAnnotation(ann({ 'seldon.io/ambassador-service-name': '' }), 'iris', f)).toEqual({ ok: true, value: 'iris' });
    expect(f.warnings).toHaveLength(1);
    expect(serviceNameAnnotation(ann({ 'seldon.io/ambassador-service-name': 'fraud' }), 'fraud-v8', f)).toEqual({ ok: true, value: 'fraud' });
    expect(serviceNameAnnotation(ann({ 'seldon.io/ambassador-service-name': 'a/b' }), 'iris', f).ok).toBe(false);
  });

  it('headers: exact and regex ANDed; seldon/namespace left off gRPC with a warning; a bad value is an error', () => {
    const f = new Findings();
    const h = headerAnnotations(ann({ 'seldon.io/ambassador-header': 'x-region:eu:seldon:x', 'seldon.io/ambassador-regex-header': 'location: lond.*' }), f);
    expect(h.ok).toBe(true);
    if (!h.ok) return;
    expect(h.value.rest.map((c) => `${c.kind}:${c.name}`)).toEqual(['exact:x-region', 'exact:seldon', 'regex:location']);
    expect(h.value.grpc.map((c) => c.name)).toEqual(['x-region', 'location']);
    expect(f.warnings).toEqual(['header constraints on "seldon" or "namespace" are ignored on gRPC routes']);
    expect(headerAnnotations(ann({ 'seldon.io/ambassador-header': 'a:b:c' }), new Findings()).ok).toBe(false);
    expect(headerAnnotations(ann({ 'seldon.io/ambassador-regex-header': 'x:(' }), new Findings()).ok).toBe(false);
  });

  it('gateway-auth: oauth or none; anything else is an error', () => {
    expect(gateAnnotations(ann({ 'seldon.io/gateway-auth': 'OAuth' }), 'ns', 'x')).not.toBeTypeOf('string');
    expect(gateAnnotations(ann({ 'seldon.io/gateway-auth': 'oath' }), 'ns', 'x')).toBeTypeOf('string');
    const none = gateAnnotations(ann({}), 'ns', 'x');
    expect(typeof none !== 'string' && none.gate(null)).toBeNull();
  });

  it("a predictor's svc-name must be a DNS-1035 label; getambassador.io/config only warns", () => {
    const f = new Findings();
    expect(predictorAnnotations({ name: 'p', annotations: { 'seldon.io/svc-name': 'Bad_Name' } }, f)).toMatch(/DNS-1035/);
    expect(predictorAnnotations({ name: 'p', annotations: { 'getambassador.io/config': 'x' } }, f)).toBeNull();
    expect(f.warnings).toHaveLength(1);
  });
});

describe('tuning annotations keep the default and warn', () => {
  it('ambassador-id: absent or empty is default; never split on commas', () => {
    expect(ambassadorIdAnnotation(ann({}))).toBe('default');
    expect(ambassadorIdAnnotation(ann({ 'seldon.io/ambassador-id': '' }))).toBe('default');
    expect(ambassadorIdAnnotation(ann({ 'seldon.io/ambassador-id': 'a,b' }))).toBe('a,b');
  });

  it('timeouts: per kind, legacy key only without the new one, idle follows above 300 s, bad → default', () => {
    const f = new Findings();
    expect(timeoutAnnotation(ann({}), 'rest', DEFAULTS, f)).toEqual({ timeoutMs: 3000, idleTimeoutMs: 300_000 });
    expect(timeoutAnnotation(ann({ 'seldon.io/grpc-timeout': '0', 'seldon.io/rest-timeout': '5' }), 'grpc', DEFAULTS, f)).toEqual({ timeoutMs: 0, idleTimeoutMs: 300_000 });
    expect(timeoutAnnotation(ann({ 'seldon.io/rest-read-timeout': '400000' }), 'rest', DEFAULTS, f)).toEqual({ timeoutMs: 400_000, idleTimeoutMs: 400_000 });
    expect(timeoutAnnotation(ann({ 'seldon.io/rest-timeout': '10', 'seldon.io/rest-read-timeout': '20' }), 'rest', DEFAULTS, f).timeoutMs).toBe(10);
    expect(f.warnings).toHaveLength(0);
    expect(timeoutAnnotation(ann({ 'seldon.io/rest-timeout': '-1' }), 'rest', DEFAULTS, f).timeoutMs).toBe(3000);
    expect(f.warnings).toHaveLength(1);
  });

  it('retries: N > 0 is gateway-error × N; 0 is none; bad is none with a warning', () => {
    const f = new Findings();
    expect(retriesAnnotation(ann({ 'seldon.io/ambassador-retries': '2' }), f)).toEqual({ retryOn: 'gateway-error', numRetries: 2, perTryTimeoutMs: 0 });
    expect(retriesAnnotation(ann({ 'seldon.io/ambassador-retries': '0' }), f)).toBeNull();
    expect(retriesAnnotation(ann({ 'seldon.io/ambassador-retries': 'x' }), f)).toBeNull();
    expect(f.warnings).toHaveLength(1);
  });

  it('breakers: 0 means unset; all defaults give the shared default object', () => {
    const f = new Findings();
    expect(breakerAnnotations(ann({ 'seldon.io/ambassador-circuit-breakers-max-requests': '0' }), f)).toBe(DEFAULT_BREAKER);
    expect(breakerAnnotations(ann({ 'seldon.io/ambassador-circuit-breakers-max-pending-requests': '1' }), f)).toEqual({ ...DEFAULT_BREAKER, maxPendingRequests: 1 });
    expect(breakerAnnotations(ann({ 'seldon.io/ambassador-circuit-breakers-max-connections': 'many' }), f)).toBe(DEFAULT_BREAKER);
    expect(f.warnings).toHaveLength(1);
  });

  it('legacy weight is clamped to 0..100; legacy shadow takes any other value as true', () => {
    const f = new Findings();
    expect(legacyWeightAnnotation(ann({ 'seldon.io/ambassador-weight': '-5' }), f)).toBe(0);
    expect(legacyWeightAnnotation(ann({ 'seldon.io/ambassador-weight': '150' }), f)).toBe(100);
    expect(legacyWeightAnnotation(ann({ 'seldon.io/ambassador-weight': '20' }), f)).toBe(20);
    expect(legacyShadowAnnotation(ann({ 'seldon.io/ambassador-shadow': 'FALSE' }), f)).toBe(false);
    expect(legacyShadowAnnotation(ann({ 'seldon.io/ambassador-shadow': 'yes' }), f)).toBe(true);
    expect(f.warnings).toHaveLength(3);
  });

  it("an OAuth-gated deployment's gate carries its valid deployment-wide limit only", () => {
    expect(ownerGateAnnotation(ann({}), 'ns', 'x')).toBeNull();
    expect(ownerGateAnnotation(ann({ 'seldon.io/gateway-auth': 'oauth', 'seldon.io/gateway-rate-limit': '5/s' }), 'ns', 'x')).toEqual({
      auth: { namespace: 'ns', deployment: 'x' },
      rateLimits: [{ key: 'ns/x', count: 5, periodMs: 1000, text: '5/s' }],
      external: false,
      jwt: null,
    });
    expect(ownerGateAnnotation(ann({ 'seldon.io/gateway-auth': 'oauth', 'seldon.io/gateway-rate-limit': 'lots' }), 'ns', 'x')?.rateLimits).toEqual([]);
    // With --ext-auth-default on, the Services' gate carries the external check too.
    expect(ownerGateAnnotation(ann({ 'seldon.io/gateway-auth': 'oauth' }), 'ns', 'x', true)?.external).toBe(true);
  });
});
