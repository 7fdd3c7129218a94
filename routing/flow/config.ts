/**
 * `seldon.io/gateway-flow` (docs/flow-control.md): how many requests a predictor's model gets at
 * once, how many may wait and for how long, whom to share fairly between, and how long to hold
 * requests while the predictor has no ready endpoint. Pure: read at compile time into a frozen
 * `FlowPolicy` on each predictor's backends (null: no flow control, the common case).
 *
 * A deployment's annotation applies to each of its predictors; a predictor's own annotation of the
 * same key overrides it field by field (`off` turns flow control off for that predictor). A bad
 * value (unknown field, concurrency under 1, a duration without a unit, a header name that is not
 * one) degrades the deployment: the predictors it covers are served without limits, and the
 * compile says why.
 */
import { parseDuration } from '../values/duration.js';
import { readWholeNumber } from '../values/whole-number.js';
import { checkHeaderName, parseFieldsDocument, predictorOverrides, type Parsed, type PredictorOverrides } from '../values/syntax.js';

export const FLOW_ANNOTATION = 'seldon.io/gateway-flow';

/** A predictor's flow control, compiled once; identical settings give equal `key`s. */
export interface FlowPolicy {
  /** Requests in flight at once per ready endpoint, or `adaptive`: found from latencies. */
  readonly concurrency: number | 'adaptive';
  /** Requests that may wait for a slot, per predictor (held ones while at zero included). */
  readonly queue: number;
  /** The longest a request waits for a slot, in ms. */
  readonly queueTimeoutMs: number;
  /** Lower-case request header whose value names a tenant, shared fairly inside each priority class; null: none. */
  readonly tenantHeader: string | null;
  /** How long a request is held while the predictor has no ready endpoint, in ms; 0: not held (fails fast). */
  readonly scaleFromZeroMs: number;
  /** Canonical text of the settings: the controller keeps a predictor's state while this is unchanged. */
  readonly key: string;
}

/** The defaults of every field, as docs/flow-control.md lists them. */
export const FLOW_DEFAULTS = Object.freeze({ concurrency: 'adaptive' as number | 'adaptive', queue: 100, queueTimeoutMs: 1000, tenantHeader: null as string | null, scaleFromZeroMs: 0 });

/** Largest queue per predictor: each waiting request holds a socket and its body. */
export const MAX_FLOW_QUEUE = 100_000;
/** Largest fixed concurrency per endpoint. */
export const MAX_FLOW_CONCURRENCY = 100_000;

const FIELDS = ['concurrency', 'queue', 'queueTimeout', 'tenant', 'scaleFromZero'] as const;
const show = (v: unknown): string => JSON.stringify(v) ?? String(v);

/** The fields one annotation value sets (a partial policy), or `off`, or an error. */
export type FlowFields = Partial<Omit<FlowPolicy, 'key'>> | 'off';

/** One annotation value (YAML or JSON) → the fields it sets. `off`/`none`: flow control off. */
export function parseFlowFields(raw: string): Parsed<FlowFields> {
  const fail = (error: string): Parsed<FlowFields> => ({ ok: false, error: `${FLOW_ANNOTATION}: ${error}` });
  const text = raw.trim();
  if (text === 'off' || text === 'none') return { ok: true, value: 'off' };
  const parsed = parseFieldsDocument(text, FIELDS);
  if (!parsed.ok) return fail(parsed.error);
  const doc = parsed.value;
  const out: { -readonly [K in keyof Omit<FlowPolicy, 'key'>]?: FlowPolicy[K] } = {};

  const c = doc.concurrency;
  if (c !== undefined && c !== null) {
    if (c === 'adaptive') out.concurrency = 'adaptive';
    else {
      const n = readWholeNumber(c, { min: 1, max: MAX_FLOW_CONCURRENCY });
      if (n.ok) out.concurrency = n.value;
      else return fail(`concurrency must be an integer from 1 to ${MAX_FLOW_CONCURRENCY} (per ready endpoint) or "adaptive", not ${show(c)}`);
    }
  }
  const q = doc.queue;
  if (q !== undefined && q !== null) {
    const n = readWholeNumber(q, { max: MAX_FLOW_QUEUE });
    if (!n.ok) return fail(`queue must be an integer from 0 to ${MAX_FLOW_QUEUE}, not ${show(q)}`);
    out.queue = n.value;
  }
  const t = doc.queueTimeout;
  if (t !== undefined && t !== null) {
    const ms = parseDuration(t);
    if (ms === null) return fail(`queueTimeout must be a duration like 250ms, 1s or 1m (a bare number has no unit), not ${show(t)}`);
    out.queueTimeoutMs = ms;
  }
  const h = doc.tenant;
  if (h !== undefined && h !== null) {
    const m = typeof h === 'string' ? /^header:(.*)$/.exec(h.trim()) : null;
    const name = m ? m[1]!.trim().toLowerCase() : '';
    const bad = m ? checkHeaderName(name) : 'not of the form header:<name>';
    if (bad !== undefined) return fail(`tenant must be header:<name>, like header:x-tenant, not ${show(h)} (${bad})`);
    out.tenantHeader = name;
  }
  const z = doc.scaleFromZero;
  if (z !== undefined && z !== null) {
    const ms = parseDuration(z);
    if (ms === null) return fail(`scaleFromZero must be a duration like 30s or 2m (a bare number has no unit), not ${show(z)}`);
    out.scaleFromZeroMs = ms;
  }
  return { ok: true, value: out };
}

/** The policy of settings `fields` over the defaults, frozen, with its key. */
export function flowPolicy(fields: Partial<Omit<FlowPolicy, 'key'>>): FlowPolicy {
  const p = { ...FLOW_DEFAULTS, ...fields };
  const key = `${p.concurrency}|${p.queue}|${p.queueTimeoutMs}|${p.tenantHeader ?? ''}|${p.scaleFromZeroMs}`;
  return Object.freeze({ concurrency: p.concurrency, queue: p.queue, queueTimeoutMs: p.queueTimeoutMs, tenantHeader: p.tenantHeader, scaleFromZeroMs: p.scaleFromZeroMs, key });
}

/** A deployment's flow annotation, read once: each predictor's policy (routing/values/syntax.ts `predictorOverrides`). */
export type FlowAnnotations = PredictorOverrides<FlowPolicy>;

/**
 * `seldon.io/gateway-flow` of a deployment (`raw`, absent: undefined). The policy of a predictor
 * without an override is one shared object.
 */
export function flowAnnotations(raw: string | undefined): FlowAnnotations {
  return predictorOverrides(FLOW_ANNOTATION, raw, parseFlowFields, flowPolicy, 'served without flow control');
}
