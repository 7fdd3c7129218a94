/**
 * `seldon.io/gateway-log` (docs/payload-logging.md): which of a deployment's requests are logged,
 * what of them, and to which of the operator's sinks. Pure: read at compile time into a frozen
 * `LogPolicy` on each predictor's backends (null: nothing is logged, the common case, which the
 * request path tests with one property check).
 *
 * The annotation only names sinks; the operator configures them (where events go) with
 * --log-sinks. A tenant who can write a SeldonDeployment must never make the gateway send its
 * traffic to an address of the tenant's choosing, so a field that would say where events go is
 * refused by name, as is any unknown field, and a sink name the operator did not configure
 * degrades the deployment with nothing logged (nothing is sent anywhere), the reason in /routes,
 * the log and an Event. A predictor's own annotation of the same key overrides the deployment's
 * field by field (`off` turns logging off for it).
 */
import { readSize } from '../values/size.js';
import { checkHeaderName, parseFieldsDocument, type Parsed } from '../values/syntax.js';

export const LOG_ANNOTATION = 'seldon.io/gateway-log';

/** What is logged of a request: its payloads, the routing decision, or both. */
export type LogWhat = 'request' | 'response' | 'all' | 'decisions';

/** Where a request's sampling key is read: a header, or a claim of its verified JWT. */
export type SampleKey = { readonly kind: 'header' | 'claim'; readonly name: string };

export interface LogPolicy {
  /** Sink names (--log-sinks), each configured by the operator. */
  readonly sinks: readonly string[];
  /** The request event: the body the client sent. */
  readonly request: boolean;
  /** The response event: the body the client received (a feedback's body is a feedback event). */
  readonly response: boolean;
  /** The decision record (`io.seldon.gateway.decision`). */
  readonly decisions: boolean;
  /** The share of requests logged, 0 to 1. */
  readonly sample: number;
  /** Requests with the same key are all logged or none is; null: each request drawn on its own. */
  readonly sampleKey: SampleKey | null;
  /** Longest body logged; a longer one is logged cut, and marked so. */
  readonly maxBodyBytes: number;
  /** Seldon's `modelid`: the predictor's graph root (the node Seldon's executor logs for). */
  readonly modelId: string;
  /** Seldon's `protocol`: the deployment's `spec.protocol` (seldon, tensorflow, v2). */
  readonly protocol: string;
}

export const LOG_DEFAULTS = Object.freeze({ log: 'all' as LogWhat, sample: 1, maxBodyBytes: 1024 * 1024 });
/** Largest body cap an annotation may ask for: every logged body is held until its request ends. */
export const MAX_LOG_BODY_BYTES = 16 * 1024 * 1024;

const FIELDS = ['sinks', 'log', 'sample', 'sampleKey', 'maxBodyBytes'] as const;
/** Fields that would say where events go: the operator's alone (--log-sinks). */
const OPERATOR_FIELDS = ['url', 'uri', 'endpoint', 'target', 'host', 'stream', 'path', 'file', 'broker', 'topic', 'type'];
const WHAT: readonly LogWhat[] = ['request', 'response', 'all', 'decisions'];
const CLAIM = /^[A-Za-z0-9_.:/-]{1,128}$/;

const show = (v: unknown): string => JSON.stringify(v) ?? String(v);

/** The fields one annotation value sets (a partial policy), or `off`. */
export type LogFields = (Partial<Pick<LogPolicy, 'sinks' | 'sample' | 'sampleKey' | 'maxBodyBytes'>> & { readonly log?: LogWhat }) | 'off';

/** One annotation value (YAML or JSON) → the fields it sets, each checked; sink names against `known` (undefined: none configured). */
export function parseLogFields(raw: string, known: ReadonlySet<string> | undefined): Parsed<LogFields> {
  const fail = (error: string): Parsed<LogFields> => ({ ok: false, error: `${LOG_ANNOTATION}: ${error}` });
  const text = raw.trim();
  if (text === 'off' || text === 'none') return { ok: true, value: 'off' };
  const parsed = parseFieldsDocument(text, [...FIELDS, ...OPERATOR_FIELDS]);
  if (!parsed.ok) return fail(parsed.error);
  const doc = parsed.value;
  const named = OPERATOR_FIELDS.find((f) => f in doc);
  if (named !== undefined) return fail(`${named}: where events go is the operator's to say (--log-sinks); an annotation names sinks only`);
  const out: { -readonly [K in keyof Exclude<LogFields, 'off'>]: Exclude<LogFields, 'off'>[K] } = {};
  if (doc.sinks !== undefined && doc.sinks !== null) {
    const list = typeof doc.sinks === 'string' ? [doc.sinks] : doc.sinks;
    if (!Array.isArray(list) || list.length === 0 || !list.every((x) => typeof x === 'string' && x !== '')) return fail(`sinks: ${show(doc.sinks)} is not a list of sink names`);
    for (const s of list as string[]) {
      if (known === undefined || !known.has(s)) {
        const configured = known === undefined || known.size === 0 ? 'none is configured (--log-sinks)' : `configured: ${[...known].join(', ')}`;
        return fail(`sinks: "${s}" is not a sink of this gateway (${configured})`);
      }
    }
    out.sinks = [...new Set(list as string[])];
  }
  if (doc.log !== undefined && doc.log !== null) {
    if (!WHAT.includes(doc.log as LogWhat)) return fail(`log: ${show(doc.log)} is not one of ${WHAT.join(', ')}`);
    out.log = doc.log as LogWhat;
  }
  if (doc.sample !== undefined && doc.sample !== null) {
    const s = doc.sample;
    if (typeof s !== 'number' || !(s >= 0 && s <= 1)) return fail(`sample: ${show(s)} is not a number from 0 to 1`);
    out.sample = s;
  }
  if (doc.sampleKey !== undefined && doc.sampleKey !== null) {
    const m = typeof doc.sampleKey === 'string' ? /^(header|claim):(.+)$/.exec(doc.sampleKey.trim()) : null;
    if (m === null) return fail(`sampleKey: ${show(doc.sampleKey)} is not header:<name> or claim:<name>`);
    const kind = m[1] as SampleKey['kind'];
    const name = kind === 'header' ? m[2]!.trim().toLowerCase() : m[2]!.trim();
    const bad = kind === 'header' ? checkHeaderName(name) : CLAIM.test(name) ? undefined : `"${name}" is not a claim name`;
    if (bad !== undefined) return fail(`sampleKey: ${bad}`);
    out.sampleKey = { kind, name };
  }
  if (doc.maxBodyBytes !== undefined && doc.maxBodyBytes !== null) {
    const n = readSize(doc.maxBodyBytes);
    if (!n.ok) return fail(`maxBodyBytes: ${n.error}`);
    if (n.value > MAX_LOG_BODY_BYTES) return fail(`maxBodyBytes: ${show(doc.maxBodyBytes)} is not a size from 0 to ${MAX_LOG_BODY_BYTES}`);
    out.maxBodyBytes = n.value;
  }
  return { ok: true, value: out };
}

/** A policy from its fields (sinks required), with the predictor's Seldon attributes. */
function policyOf(f: Exclude<LogFields, 'off'>, modelId: string, protocol: string): Parsed<LogPolicy> {
  if (f.sinks === undefined) return { ok: false, error: `${LOG_ANNOTATION}: sinks: name at least one sink (--log-sinks)` };
  const what = f.log ?? LOG_DEFAULTS.log;
  return {
    ok: true,
    value: Object.freeze({
      sinks: Object.freeze(f.sinks),
      request: what === 'request' || what === 'all',
      response: what === 'response' || what === 'all',
      decisions: what === 'decisions' || what === 'all',
      sample: f.sample ?? LOG_DEFAULTS.sample,
      sampleKey: f.sampleKey ?? null,
      maxBodyBytes: f.maxBodyBytes ?? LOG_DEFAULTS.maxBodyBytes,
      modelId,
      protocol,
    }),
  };
}

/** A deployment's logging, read once: its warnings, and each predictor's policy. */
export interface LogAnnotations {
  readonly warnings: readonly string[];
  /** The policy of predictor `predictor` (`own`: its own annotation value; `modelId`: its graph root), or null; a bad own value is warned and logs nothing. */
  of(predictor: string, own: unknown, modelId: string, warn: (msg: string) => void): LogPolicy | null;
}

/**
 * The deployment's annotation (`raw`), checked against the sink names the operator configured;
 * `protocol`: its `spec.protocol`. A bad value degrades the deployment: nothing of it is logged.
 */
export function logAnnotations(raw: string | undefined, known: ReadonlySet<string> | undefined, protocol: unknown): LogAnnotations {
  const warnings: string[] = [];
  const proto = typeof protocol === 'string' && protocol !== '' ? protocol : 'seldon';
  let base: LogFields | null = null;
  if (raw !== undefined) {
    const p = parseLogFields(raw, known);
    if (p.ok) base = p.value;
    else warnings.push(`${p.error}: nothing is logged`);
  }
  const bad = raw !== undefined && base === null;
  // A deployment-wide fault (no sinks) is said once, not once per predictor.
  const said = new Set<string>();
  const from = (f: LogFields, modelId: string, warn: (msg: string) => void, who: string): LogPolicy | null => {
    if (f === 'off') return null;
    const p = policyOf(f, modelId, proto);
    if (p.ok) return p.value;
    const msg = `${who}${p.error}: nothing is logged`;
    if (!said.has(msg)) warn(msg);
    said.add(msg);
    return null;
  };
  return {
    warnings,
    of(predictor, own, modelId, warn) {
      if (own === undefined) return base === null ? null : from(base, modelId, warn, '');
      if (bad) return null;
      const p = typeof own === 'string' ? parseLogFields(own, known) : { ok: false as const, error: `${LOG_ANNOTATION}: ${show(own)} is not a string` };
      if (!p.ok) {
        warn(`predictor "${predictor}": ${p.error}: nothing is logged`);
        return null;
      }
      if (p.value === 'off') return null;
      const merged = base === null || base === 'off' ? p.value : { ...base, ...p.value };
      return from(merged, modelId, warn, `predictor "${predictor}": `);
    },
  };
}

/** The root node of a predictor's graph, as Seldon's executor names the model it logs (`modelid`); the predictor's name without one. */
export function modelIdOf(graph: unknown, predictor: string): string {
  const name = graph !== null && typeof graph === 'object' ? (graph as { name?: unknown }).name : undefined;
  return typeof name === 'string' && name !== '' ? name : predictor;
}
