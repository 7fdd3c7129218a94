/**
 * The one reader of circuit breakers: a Mapping's and the Module's `circuit_breakers` (Emissary's
 * irbasemapping.py `validate_circuit_breakers`, v3cluster.py `get_circuit_breakers`), and the
 * `seldon.io/ambassador-circuit-breakers-*` annotations field by field. A value one place refuses is
 * refused everywhere; what a refusal costs is the place's (the Mapping dropped, the Module refused,
 * the annotation's default kept with a warning).
 */
import { DEFAULT_BREAKER, type BreakerLimits } from '../types.js';
import { readWholeNumber } from '../values/whole-number.js';
import { isObj, type Parsed } from '../values/syntax.js';

type Field = keyof BreakerLimits;

/**
 * Each threshold, its limit field and its least value. Envoy reads 0 as "none allowed": no retry, no
 * pending request, no request in flight (every one 503 with `x-envoy-overloaded`), honoured here as
 * there. `max_connections: 0` would leave every request waiting for a connection that is never
 * opened: refused rather than served with a meaning of the gateway's own.
 */
export const BREAKER_FIELDS: Readonly<Record<string, { readonly field: Field; readonly min: number }>> = {
  max_connections: { field: 'maxConnections', min: 1 },
  max_pending_requests: { field: 'maxPendingRequests', min: 0 },
  max_requests: { field: 'maxRequests', min: 0 },
  max_retries: { field: 'maxRetries', min: 0 },
};

const SHAPE = 'a list of thresholds ({max_connections, max_pending_requests, max_requests, max_retries, priority})';

/**
 * `circuit_breakers`: a list of thresholds, each with an optional `priority` (`default` or `high`, any
 * case). The default-priority entry (at most one) gives the limits, a field it does not name keeping
 * Envoy's default; a `high` entry is checked and never applies, as no route here is of high priority.
 * An empty list: Envoy's defaults. A field is a whole number (routing/values/whole-number.ts); an unknown
 * field, a bad priority or a second default entry is refused.
 */
export function readCircuitBreakers(v: unknown): Parsed<BreakerLimits> {
  const fail = (error: string): Parsed<BreakerLimits> => ({ ok: false, error });
  if (!Array.isArray(v)) return fail(`must be ${SHAPE}`);
  let found: BreakerLimits | undefined;
  for (const [i, e] of v.entries()) {
    if (!isObj(e)) return fail(`[${i}] must be a map`);
    const priority = e.priority === undefined ? 'default' : typeof e.priority === 'string' ? e.priority.toLowerCase() : '';
    if (priority !== 'default' && priority !== 'high') return fail(`[${i}].priority ${JSON.stringify(e.priority) ?? String(e.priority)} is not default or high`);
    const limits: { -readonly [K in Field]: number } = { ...DEFAULT_BREAKER };
    for (const [key, value] of Object.entries(e)) {
      if (key === 'priority') continue;
      const f = Object.hasOwn(BREAKER_FIELDS, key) ? BREAKER_FIELDS[key]! : undefined;
      if (f === undefined) return fail(`[${i}]: "${key}" is not a threshold the gateway knows (${Object.keys(BREAKER_FIELDS).join(', ')})`);
      const n = readWholeNumber(value, { min: f.min });
      if (!n.ok) return fail(`[${i}].${key}: ${n.error}`);
      limits[f.field] = n.value;
    }
    if (priority === 'high') continue;
    if (found !== undefined) return fail(`[${i}]: a second entry of priority default`);
    found = limits;
  }
  return { ok: true, value: sameAsDefault(found) ? DEFAULT_BREAKER : found! };
}

/**
 * One `seldon.io/ambassador-circuit-breakers-<field>` annotation: the same reader, with Seldon's rule that
 * 0 is unset (its operator wrote no field for 0, so Emissary applied Envoy's default): null for 0, the
 * number, or why it is refused. Every threshold's least value is 0 or 1, so a number past 0 meets it.
 */
export function readBreakerAnnotation(raw: string): Parsed<number | null> {
  const n = readWholeNumber(raw);
  if (!n.ok) return n;
  return n.value === 0 ? { ok: true, value: null } : n;
}

function sameAsDefault(b: BreakerLimits | undefined): boolean {
  return (
    b === undefined ||
    (b.maxConnections === DEFAULT_BREAKER.maxConnections &&
      b.maxPendingRequests === DEFAULT_BREAKER.maxPendingRequests &&
      b.maxRequests === DEFAULT_BREAKER.maxRequests &&
      b.maxRetries === DEFAULT_BREAKER.maxRetries)
  );
}
