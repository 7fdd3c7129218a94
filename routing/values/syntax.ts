/**
 * Parsing of annotation values (docs/routing.md#effective-annotations, docs/routing.md#annotations): header constraints and
 * RE2 patterns (whole numbers: `whole-number.ts`). Every parser returns a value or a human-readable error; none throws. Which
 * annotation holds which value, and what a bad one does, is `annotations.ts`.
 */
import { RE2JS } from 're2js';
import { parse as parseYaml } from 'yaml';

/** One header condition of a route: a value, presence, or an RE2 pattern the whole value matches. */
export type HeaderConstraint =
  | { readonly kind: 'exact'; readonly name: string; readonly value: string }
  | { readonly kind: 'presence'; readonly name: string }
  | { readonly kind: 'regex'; readonly name: string; readonly pattern: string; readonly test: (value: string) => boolean }
  /** A Mapping's `hostname` glob on `:authority`: `*.example.com` (a suffix) or `foo.*` (a prefix), lower case. */
  | { readonly kind: 'glob'; readonly name: string; readonly value: string };

export type Parsed<T> = { ok: true; value: T } | { ok: false; error: string };

/** RFC 9110 token characters, for header names. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9a-z]+$/;

/** Fields that name a connection, not a message (RFC 9113 §8.2.2): HTTP/2 forbids them, and nothing but the gateway's own framing may set them. */
export const CONNECTION_SPECIFIC_FIELDS: ReadonlySet<string> = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'http2-settings']);

/**
 * Largest RE2 program a pattern may compile to: Ambassador's `regex_max_size` default. Matching
 * is linear in the input but also in the program: a 16 KB header against `(?:a|aa){0,999}b`
 * (program size 4,998) took 385 ms, a stall of every request on that worker; at size 200, 2 ms.
 */
export const REGEX_MAX_SIZE = 200;
/**
 * Most regexes one SeldonDeployment may have compiled. Every process compiles them on each change,
 * on its event loop: 10,000 patterns of size 180 (a 244 KB annotation, under Kubernetes' 256 KB)
 * took 1.7 s, and one of size 5,000 takes 4 ms to compile before it is refused.
 */
export const REGEX_MAX_COUNT = 32;

/** What one SeldonDeployment's regexes may cost: each one's program size, and how many are compiled. */
export class RegexBudget {
  private left: number;

  constructor(
    readonly maxSize = REGEX_MAX_SIZE,
    readonly maxCount = REGEX_MAX_COUNT,
  ) {
    this.left = maxCount;
  }

  /** False once `maxCount` patterns were compiled (refused ones included). */
  take(): boolean {
    if (this.left <= 0) return false;
    this.left--;
    return true;
  }
}

/**
 * Compile a pattern with RE2 semantics (linear time; no backreferences or lookaround), full match,
 * within `budget`: refused over its program size (as Envoy measures a regex's cost), and once its
 * count is spent.
 */
export function compileFullMatch(pattern: string, budget = new RegexBudget()): Parsed<(value: string) => boolean> {
  if (!budget.take()) return { ok: false, error: `regex "${pattern}" is one too many: at most ${budget.maxCount} regexes in one SeldonDeployment` };
  let re: RE2JS;
  try {
    re = RE2JS.compile(pattern);
  } catch (e) {
    return { ok: false, error: `invalid regex "${pattern}": ${e instanceof Error ? e.message : String(e)}` };
  }
  const size = re.programSize();
  if (size > budget.maxSize) {
    return { ok: false, error: `regex "${pattern}" is too complex: its RE2 program size is ${size}, over ${budget.maxSize} (--regex-max-size, Ambassador's regex_max_size)` };
  }
  return { ok: true, value: (v: string) => re.matches(v) };
}

/**
 * `seldon.io/ambassador-header`: split on every `:`; one part is a presence match, an even count
 * is name:value pairs (an empty value is presence).
 */
export function parseHeaderAnnotation(raw: string): Parsed<HeaderConstraint[]> {
  const parts = raw.split(':').map((p) => p.trim());
  if (parts.length === 1) {
    const name = parts[0]!.toLowerCase();
    const bad = checkHeaderName(name);
    return bad ? { ok: false, error: `seldon.io/ambassador-header "${raw}": ${bad}` } : { ok: true, value: [{ kind: 'presence', name }] };
  }
  if (parts.length % 2 === 1) {
    return { ok: false, error: `seldon.io/ambassador-header "${raw}" has ${parts.length} ':'-separated parts; expected name or name:value pairs` };
  }
  const out: HeaderConstraint[] = [];
  const seen = new Set<string>();
  for (let i = 0; i < parts.length; i += 2) {
    const name = parts[i]!.toLowerCase();
    const value = parts[i + 1]!;
    const bad = checkHeaderName(name) ?? (seen.has(name) ? `header "${name}" appears twice` : undefined);
    if (bad) return { ok: false, error: `seldon.io/ambassador-header "${raw}": ${bad}` };
    seen.add(name);
    out.push(value === '' ? { kind: 'presence', name } : { kind: 'exact', name, value });
  }
  return { ok: true, value: out };
}

/** `seldon.io/ambassador-regex-header`: newline-separated `name:pattern`, split at the first `:`. */
export function parseRegexHeaderAnnotation(raw: string, regexes = new RegexBudget()): Parsed<HeaderConstraint[]> {
  const out: HeaderConstraint[] = [];
  for (const line of raw.split(/\r?\n/)) {
    if (line.trim() === '') continue;
    const colon = line.indexOf(':');
    const name = (colon < 0 ? line : line.slice(0, colon)).trim().toLowerCase();
    const pattern = colon < 0 ? '' : line.slice(colon + 1).trim();
    const bad = checkHeaderName(name) ?? (pattern === '' ? `entry "${line.trim()}" has no pattern` : undefined);
    if (bad) return { ok: false, error: `seldon.io/ambassador-regex-header: ${bad}` };
    const test = compileFullMatch(pattern, regexes);
    if (!test.ok) return { ok: false, error: `seldon.io/ambassador-regex-header: ${test.error}` };
    out.push({ kind: 'regex', name, pattern, test: test.value });
  }
  return { ok: true, value: out };
}

export function checkHeaderName(name: string): string | undefined {
  if (name === '') return 'empty header name';
  if (!TOKEN.test(name)) return `"${name}" is not a valid header name`;
  return undefined;
}

/** Canonical text of one constraint, for group keys and precedence ordering. */
export function constraintText(c: HeaderConstraint): string {
  switch (c.kind) {
    case 'exact':
      return `${c.name}=${c.value}`;
    case 'presence':
      return `${c.name}`;
    case 'regex':
      return `${c.name}~${c.pattern}`;
    case 'glob':
      return `${c.name}≈${c.value}`;
  }
}

/** Precedence weight of one constraint (docs/routing.md#precedence-and-no-match): presence counts 1, a regex adds 1. */
export function constraintWeight(c: HeaderConstraint): number {
  switch (c.kind) {
    case 'exact':
      return c.name.length + c.value.length;
    case 'presence':
      return c.name.length + 1;
    case 'regex':
      return c.name.length + c.pattern.length + 1;
    case 'glob':
      return c.name.length + c.value.length;
  }
}

/**
 * An annotation written as a YAML (or JSON) mapping of the fields `fields`, every one optional: the
 * mapping (an empty value is `{}`), or an error text (unparsable, not a mapping, an unknown field).
 */
export function parseFieldsDocument(raw: string, fields: readonly string[]): Parsed<Record<string, unknown>> {
  let doc: unknown;
  try {
    doc = raw.trim() === '' ? null : parseYaml(raw, { maxAliasCount: 100 });
  } catch (e) {
    return { ok: false, error: `does not parse as YAML or JSON: ${(e instanceof Error ? e.message : String(e)).split('\n')[0]}` };
  }
  if (doc === null || doc === undefined) return { ok: true, value: {} };
  if (typeof doc !== 'object' || Array.isArray(doc)) return { ok: false, error: `must be a mapping of fields (${fields.join(', ')}), not ${JSON.stringify(doc) ?? String(doc)}` };
  const unknown = Object.keys(doc).filter((k) => !fields.includes(k));
  if (unknown.length) return { ok: false, error: `unknown field ${JSON.stringify(unknown[0])} (fields: ${fields.join(', ')})` };
  return { ok: true, value: doc as Record<string, unknown> };
}

/** A plain mapping (not null, not a list), as YAML and JSON documents hold them. */
export const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** A deployment's annotation that its predictors' own annotations override field by field: read once, `of` gives each predictor its value (null: none). */
export interface PredictorOverrides<P> {
  /** What was ignored of the deployment's value. */
  readonly warnings: readonly string[];
  /** Predictor `predictor`'s value, its own annotation `own` (absent: undefined) over the deployment's; a bad own value warns through `warn`. */
  of(predictor: string, own: unknown, warn: (msg: string) => void): P | null;
}

/**
 * `raw`, the deployment's value of annotation `key` (absent: undefined), parsed by `parse` into
 * fields or `off`, each predictor's value built from the fields (its own over the deployment's) by
 * `build`. A bad value is ignored, said with `without` (`served without …`): the deployment's for
 * every predictor, a predictor's own for it. Predictors without their own share one value.
 */
export function predictorOverrides<F extends object, P>(
  key: string,
  raw: string | undefined,
  parse: (raw: string) => Parsed<F | 'off'>,
  build: (fields: F) => P,
  without: string,
): PredictorOverrides<P> {
  const warnings: string[] = [];
  let base: F | 'off' | null = null;
  if (raw !== undefined) {
    const p = parse(raw);
    if (p.ok) base = p.value;
    else warnings.push(`${p.error}: ${without}`);
  }
  const shared = base === null || base === 'off' ? null : build(base);
  const bad = raw !== undefined && base === null;
  return {
    warnings,
    of(predictor, own, warn) {
      if (own === undefined) return shared;
      if (bad) return null;
      const p = typeof own === 'string' ? parse(own) : { ok: false as const, error: `${key}: ${JSON.stringify(own) ?? String(own)} is not a string` };
      if (!p.ok) {
        warn(`predictor "${predictor}": ${p.error}: ${without}`);
        return null;
      }
      if (p.value === 'off') return null;
      return build({ ...(base === null || base === 'off' ? {} : base), ...p.value } as F);
    },
  };
}
