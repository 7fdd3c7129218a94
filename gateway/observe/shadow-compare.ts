/**
 * Shadow comparison (what shadows are for): the shadow's answer to a mirrored request against
 * the answer the client got from the primary.
 *
 * Two answers agree when their status codes are equal and their bodies are equal: JSON bodies
 * (a JSON content type, no content-encoding, both parse) after parsing, with numbers equal
 * within a tolerance and the ignored top-level fields (`meta` by default) left out; any other
 * body byte for byte. Results are counted per shadow (`seldon_gateway_shadow_comparisons_total`)
 * and the last few disagreeing pairs are kept, bodies truncated, for the admin page.
 *
 * Cost to the primary: only on requests that mirror, with comparison on, the primary's answer
 * chunks are kept (references, no copy) up to `maxBodyBytes`. Parsing and comparing run after
 * the primary answer has been sent, once the shadow has answered, on a later tick; a pair over
 * the size limit is not compared (counted as skipped).
 */
import type { ComparisonResult, GatewayMetrics } from './metrics.js';
import type { Protocol } from '../../routing/types.js';
import type { Backend } from '../../routing/types.js';

export interface CompareSettings {
  /** Numbers agree when |a − b| ≤ tolerance × max(1, |a|, |b|). */
  readonly tolerance: number;
  /** Top-level JSON fields left out (`meta`: puid, tags and routing differ per predictor). */
  readonly ignore: readonly string[];
  /** Largest answer kept on either side. */
  readonly maxBodyBytes: number;
}

/** One side's answer: status, the headers that decide how to read the body, and the body. */
export interface Answer {
  readonly status: number;
  readonly contentType: string | undefined;
  readonly contentEncoding: string | undefined;
  readonly body: Buffer;
}

/** A disagreeing pair as the admin page shows it. */
export interface Disagreement {
  /** ISO time of the comparison. */
  readonly at: string;
  readonly namespace: string;
  readonly deployment: string;
  readonly protocol: Protocol;
  readonly primary: { readonly predictor: string; readonly deployment: string; readonly status: number; readonly body: string };
  readonly shadow: { readonly predictor: string; readonly deployment: string; readonly status: number; readonly body: string };
  /** What differed first, e.g. `status 200 ≠ 500` or `$.data.ndarray[0][1]: 0.25 ≠ 0.75`. */
  readonly why: string;
}

/** Bodies shown on the page are cut to this many bytes. */
export const SHOWN_BODY_BYTES = 2048;
/** Disagreements kept per process. */
export const KEPT_DISAGREEMENTS = 20;

const isJson = (ct: string | undefined): boolean => ct !== undefined && /^application\/(?:[\w.+-]*\+)?json\b/i.test(ct.trim());
const noEncoding = (enc: string | undefined): boolean => enc === undefined || enc === '' || enc.toLowerCase() === 'identity';

function parse(body: Buffer): { ok: true; value: unknown } | { ok: false } {
  try {
    return { ok: true, value: JSON.parse(body.toString('utf8')) as unknown };
  } catch {
    return { ok: false };
  }
}

function show(v: unknown): string {
  const s = JSON.stringify(v);
  return s === undefined ? String(v) : s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

function kind(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v;
}

const IDENT = /^[A-Za-z_$][\w$]*$/;

/** The first difference between two parsed JSON values, or null when equal (within tolerance). */
export function jsonDifference(a: unknown, b: unknown, tolerance: number, path = '$'): string | null {
  if (typeof a === 'number' && typeof b === 'number') {
    if (a === b || Math.abs(a - b) <= tolerance * Math.max(1, Math.abs(a), Math.abs(b))) return null;
    return `${path}: ${a} ≠ ${b}`;
  }
  const ka = kind(a);
  const kb = kind(b);
  if (ka !== kb) return `${path}: ${ka} ${show(a)} ≠ ${kb} ${show(b)}`;
  if (ka === 'array') {
    const x = a as unknown[];
    const y = b as unknown[];
    if (x.length !== y.length) return `${path}: ${x.length} items ≠ ${y.length} items`;
    for (let i = 0; i < x.length; i++) {
      const d = jsonDifference(x[i], y[i], tolerance, `${path}[${i}]`);
      if (d !== null) return d;
    }
    return null;
  }
  if (ka === 'object') {
    const x = a as Record<string, unknown>;
    const y = b as Record<string, unknown>;
    const keys = new Set([...Object.keys(x), ...Object.keys(y)]);
    for (const k of [...keys].sort()) {
      const p = IDENT.test(k) ? `${path}.${k}` : `${path}[${JSON.stringify(k)}]`;
      if (!(k in x)) return `${p}: missing in the primary answer`;
      if (!(k in y)) return `${p}: missing in the shadow answer`;
      const d = jsonDifference(x[k], y[k], tolerance, p);
      if (d !== null) return d;
    }
    return null;
  }
  return a === b ? null : `${path}: ${show(a)} ≠ ${show(b)}`;
}

function withoutIgnored(v: unknown, ignore: readonly string[]): unknown {
  if (ignore.length === 0 || v === null || typeof v !== 'object' || Array.isArray(v)) return v;
  const out: Record<string, unknown> = { ...(v as Record<string, unknown>) };
  for (const k of ignore) delete out[k];
  return out;
}

/** Null when the two answers agree; otherwise what differed first. */
export function answerDifference(primary: Answer, shadow: Answer, settings: Pick<CompareSettings, 'tolerance' | 'ignore'>): string | null {
  if (primary.status !== shadow.status) return `status ${primary.status} ≠ ${shadow.status}`;
  if (isJson(primary.contentType) && isJson(shadow.contentType) && noEncoding(primary.contentEncoding) && noEncoding(shadow.contentEncoding)) {
    const a = parse(primary.body);
    const b = parse(shadow.body);
    if (a.ok && b.ok) return jsonDifference(withoutIgnored(a.value, settings.ignore), withoutIgnored(b.value, settings.ignore), settings.tolerance);
  }
  if (primary.body.equals(shadow.body)) return null;
  return `bodies differ (${primary.body.length} bytes ≠ ${shadow.body.length} bytes${primary.body.length === shadow.body.length ? ', same length' : ''})`;
}

function truncated(body: Buffer): string {
  if (body.length <= SHOWN_BODY_BYTES) return body.toString('utf8');
  return `${body.subarray(0, SHOWN_BODY_BYTES).toString('utf8')}… (${body.length} bytes)`;
}

/**
 * Collects one side's answer (head, then chunks), up to the size limit. Chunks are kept by
 * reference; `answer()` joins them once.
 */
export class AnswerCollector {
  status = 0;
  contentType: string | undefined;
  contentEncoding: string | undefined;
  private chunks: Buffer[] = [];
  private size = 0;
  /** Over the size limit: nothing kept. */
  tooLarge = false;

  constructor(private readonly limit: number) {}

  /** The upstream's raw headers (name, value, …). */
  head(status: number, rawHeaders: readonly string[]): void {
    this.status = status;
    for (let i = 0; i < rawHeaders.length; i += 2) {
      const name = rawHeaders[i]!;
      if (name.length !== 12 && name.length !== 16) continue;
      const n = name.toLowerCase();
      if (n === 'content-type') this.contentType = rawHeaders[i + 1]!;
      else if (n === 'content-encoding') this.contentEncoding = rawHeaders[i + 1]!;
    }
  }

  data(chunk: Buffer): void {
    if (this.tooLarge) return;
    this.size += chunk.length;
    if (this.size > this.limit) {
      this.tooLarge = true;
      this.chunks = [];
    } else this.chunks.push(chunk);
  }

  answer(): Answer {
    return { status: this.status, contentType: this.contentType, contentEncoding: this.contentEncoding, body: Buffer.concat(this.chunks, this.size) };
  }
}

/**
 * The primary side of one mirrored request: its answer as the client got it, and the shadows
 * waiting for it. Settled once: with the answer (complete upstream answer) or null (no upstream
 * answer, the client went away, or the exchange failed midway).
 */
export class PrimaryCapture extends AnswerCollector {
  private settled = false;
  private result: Answer | null | 'too-large' = null;
  private waiters: ((primary: Answer | null | 'too-large') => void)[] = [];

  constructor(
    readonly backend: Backend,
    limit: number,
  ) {
    super(limit);
  }

  /** The primary exchange ended; `complete`: a whole upstream answer reached the client. */
  end(complete: boolean): void {
    if (this.settled) return;
    this.settled = true;
    this.result = !complete ? null : this.tooLarge ? 'too-large' : this.answer();
    const waiters = this.waiters;
    this.waiters = [];
    // Always on a later tick: the comparison never runs inside the primary's response path.
    if (waiters.length) setImmediate(() => waiters.forEach((w) => w(this.result)));
  }

  /** Call `fn` with the primary answer once the primary has ended (on a later tick). */
  whenEnded(fn: (primary: Answer | null | 'too-large') => void): void {
    if (this.settled) setImmediate(() => fn(this.result));
    else this.waiters.push(fn);
  }
}

export class ShadowComparer {
  private readonly kept: Disagreement[] = [];

  constructor(
    readonly settings: CompareSettings,
    private readonly metrics: GatewayMetrics,
    private readonly keep = KEPT_DISAGREEMENTS,
  ) {}

  /** A capture for a request that mirrors. */
  capture(primary: Backend): PrimaryCapture {
    return new PrimaryCapture(primary, this.settings.maxBodyBytes);
  }

  /** A collector for a shadow's answer. */
  collector(): AnswerCollector {
    return new AnswerCollector(this.settings.maxBodyBytes);
  }

  /** The shadow answered in full: compare once the primary has ended. */
  shadowAnswered(capture: PrimaryCapture, shadow: Backend, protocol: Protocol, collected: AnswerCollector): void {
    capture.whenEnded((primary) => {
      if (primary === null || primary === 'too-large' || collected.tooLarge) {
        this.count(shadow, protocol, 'skipped');
        return;
      }
      const answer = collected.answer();
      const why = answerDifference(primary, answer, this.settings);
      if (why === null) {
        this.count(shadow, protocol, 'agree');
        return;
      }
      this.count(shadow, protocol, 'disagree');
      this.remember({
        at: new Date().toISOString(),
        namespace: shadow.origin.namespace,
        deployment: capture.backend.origin.deployment,
        protocol,
        primary: { predictor: capture.backend.origin.predictor, deployment: capture.backend.origin.deployment, status: primary.status, body: truncated(primary.body) },
        shadow: { predictor: shadow.origin.predictor, deployment: shadow.origin.deployment, status: answer.status, body: truncated(answer.body) },
        why,
      });
    });
  }

  /** The last disagreements, oldest first. */
  recent(): Disagreement[] {
    return [...this.kept];
  }

  private count(shadow: Backend, protocol: Protocol, result: ComparisonResult): void {
    this.metrics.comparison(shadow, protocol, result);
  }

  private remember(d: Disagreement): void {
    this.kept.push(d);
    if (this.kept.length > this.keep) this.kept.splice(0, this.kept.length - this.keep);
  }
}

/** Merge disagreement lists (from several processes): the last `keep`, oldest first. */
export function latestDisagreements(lists: readonly (readonly Disagreement[])[], keep = KEPT_DISAGREEMENTS): Disagreement[] {
  return lists
    .flat()
    .sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : 0))
    .slice(-keep);
}
