/**
 * Compression of REST answers and decoding of request bodies (docs/edge.md#compression): the
 * policy a backend carries and the two decisions made per request, pure and allocation-light.
 *
 * - `negotiate`: which of the codings the gateway offers a client's `Accept-Encoding` takes, by
 *   RFC 9110 §12.5.3 (q-values, `*`, `identity`), the gateway's order breaking ties.
 * - `compressible`: whether an answer may be compressed at all, as Envoy's compressor filter
 *   decides: long enough, a listed media type, not encoded already, no `no-transform`, a status
 *   with a body, not HEAD, not a range answer.
 * - `requestCoding`: the coding of a request body the gateway decodes for its model.
 */

/** The codings the gateway compresses answers with, named as HTTP names them. */
export type Coding = 'zstd' | 'br' | 'gzip';
export const CODINGS: readonly Coding[] = ['zstd', 'br', 'gzip'];

/** The codings a request body may arrive in that the gateway decodes (with `decodeRequests`). */
export type RequestCoding = Coding | 'deflate';

/** Envoy's compressor filter's default media types. */
export const DEFAULT_TYPES: readonly string[] = ['application/javascript', 'application/json', 'application/xhtml+xml', 'image/svg+xml', 'text/css', 'text/html', 'text/plain', 'text/xml'];

/** Envoy's default minimum length: shorter answers gain nothing from a coding's header. */
export const DEFAULT_MIN_LENGTH = 30;
/** Per coding: nginx's and Envoy's gzip default, and the fast levels of brotli and zstd. */
export const DEFAULT_LEVELS: Readonly<Record<Coding, number>> = Object.freeze({ gzip: 6, br: 4, zstd: 3 });
/** The range of each coding's level. */
export const LEVEL_RANGE: Readonly<Record<Coding, readonly [number, number]>> = Object.freeze({ gzip: [1, 9], br: [0, 11], zstd: [1, 22] });

/** A backend's compression, compiled once (null on a backend: neither compressed nor decoded, the common case). */
export interface CompressionPolicy {
  /** Offered to clients, in the gateway's order of preference; empty: answers are not compressed. */
  readonly algorithms: readonly Coding[];
  readonly levels: Readonly<Record<Coding, number>>;
  /** Answers shorter than this (by their Content-Length) are not compressed. */
  readonly minLength: number;
  /** Media types compressed (lower case, no parameters). */
  readonly types: ReadonlySet<string>;
  /** gzip's zlib memLevel and windowBits (the Emissary Module's `memory_level`, `window_bits`); undefined: zlib's. */
  readonly gzipMemLevel?: number;
  readonly gzipWindowBits?: number;
  /** An answer with an ETag is not compressed (the Module's `disable_on_etag_header`). */
  readonly skipEtag: boolean;
  /** Request bodies in a known coding are decoded before the model. */
  readonly decodeRequests: boolean;
  /** As /routes shows it. */
  readonly text: string;
}

/** The settings a policy is made of (flags, the Emissary Module, an annotation: each sets some). */
export type CompressionSettings = { -readonly [K in keyof Omit<CompressionPolicy, 'text' | 'types'>]?: CompressionPolicy[K] } & { types?: readonly string[] };

/** The policy of `s` over the defaults; null when it neither compresses nor decodes. */
export function compressionPolicy(s: CompressionSettings): CompressionPolicy | null {
  const algorithms = s.algorithms ?? [];
  const decodeRequests = s.decodeRequests ?? false;
  if (algorithms.length === 0 && !decodeRequests) return null;
  const levels = Object.freeze({ ...DEFAULT_LEVELS, ...s.levels });
  const types = (s.types ?? DEFAULT_TYPES).map((t) => t.trim().toLowerCase());
  const minLength = s.minLength ?? DEFAULT_MIN_LENGTH;
  const parts: string[] = [];
  if (algorithms.length) parts.push(`${algorithms.map((a) => `${a}=${levels[a]}`).join(',')} from ${minLength} bytes`);
  if (s.types !== undefined) parts.push(`types ${types.join(',')}`);
  if (s.skipEtag === true) parts.push('not with an ETag');
  if (decodeRequests) parts.push('requests decoded');
  return Object.freeze({
    algorithms: Object.freeze([...algorithms]),
    levels,
    minLength,
    types: new Set(types),
    ...(s.gzipMemLevel !== undefined ? { gzipMemLevel: s.gzipMemLevel } : {}),
    ...(s.gzipWindowBits !== undefined ? { gzipWindowBits: s.gzipWindowBits } : {}),
    skipEtag: s.skipEtag ?? false,
    decodeRequests,
    text: parts.join(', '),
  });
}

/** What `negotiate` reads of an answer's fields. */
export interface FieldGetter {
  get(name: string): string | undefined;
}

/**
 * The coding of `offered` a client's `Accept-Encoding` takes; null: the answer goes as it is (no
 * field, none acceptable, or identity preferred). RFC 9110 §12.5.3: a coding's own q-value, else
 * `*`'s; q=0 refuses it; equal q-values go by the gateway's order. A field without the header is
 * not compressed (any coding would be acceptable, but a client that says nothing may not decode).
 */
export function negotiate(accept: string | undefined, offered: readonly Coding[]): Coding | null {
  if (accept === undefined || accept === '' || offered.length === 0) return null;
  let star = -1;
  let identity = -1;
  // q-values per offered coding, -1: not named (up to the three codings, in `offered`'s order).
  let q0 = -1;
  let q1 = -1;
  let q2 = -1;
  let at = 0;
  const n = accept.length;
  while (at < n) {
    let end = accept.indexOf(',', at);
    if (end < 0) end = n;
    const item = accept.slice(at, end);
    at = end + 1;
    const semi = item.indexOf(';');
    const name = (semi < 0 ? item : item.slice(0, semi)).trim().toLowerCase();
    if (name === '') continue;
    const q = semi < 0 ? 1 : qValue(item.slice(semi + 1));
    if (q < 0) continue;
    if (name === '*') star = q;
    else if (name === 'identity') identity = q;
    else {
      const coding = name === 'x-gzip' ? 'gzip' : name;
      const i = offered.indexOf(coding as Coding);
      if (i === 0) q0 = q;
      else if (i === 1) q1 = q;
      else if (i === 2) q2 = q;
    }
  }
  let best: Coding | null = null;
  let bestQ = 0;
  for (let i = 0; i < offered.length && i < 3; i++) {
    const own = i === 0 ? q0 : i === 1 ? q1 : q2;
    const q = own >= 0 ? own : star >= 0 ? star : 0;
    if (q > bestQ) {
      bestQ = q;
      best = offered[i]!;
    }
  }
  // The client prefers the answer as it is.
  if (best !== null && identity > bestQ) return null;
  return best;
}

/** A weight's `q=` value (0 to 1, three decimals at most, RFC 9110 §12.4.2); -1 when malformed. */
function qValue(params: string): number {
  for (const p of params.split(';')) {
    const eq = p.indexOf('=');
    if (eq < 0 || p.slice(0, eq).trim().toLowerCase() !== 'q') continue;
    const v = p.slice(eq + 1).trim();
    if (!/^(?:0(?:\.[0-9]{0,3})?|1(?:\.0{0,3})?)$/.test(v)) return -1;
    return Number(v);
  }
  return 1;
}

/**
 * Whether an answer may be compressed (Envoy's compressor filter's conditions): a status with a
 * body (not 1xx, 204, 304), not to HEAD, not a range answer (206, or one with Content-Range), no
 * Content-Encoding already, no `Cache-Control: no-transform`, a listed media type, a length not
 * under the minimum (a chunked answer has none and is compressed), no ETag when told so.
 */
export function compressible(p: CompressionPolicy, method: string, status: number, fields: FieldGetter): boolean {
  if (status < 200 || status === 204 || status === 206 || status === 304 || method === 'HEAD') return false;
  const type = fields.get('content-type');
  if (type === undefined) return false;
  const semi = type.indexOf(';');
  if (!p.types.has((semi < 0 ? type : type.slice(0, semi)).trim().toLowerCase())) return false;
  const length = fields.get('content-length');
  if (length !== undefined && Number(length) < p.minLength) return false;
  const encoding = fields.get('content-encoding');
  if (encoding !== undefined && encoding.trim().toLowerCase() !== 'identity') return false;
  if (fields.get('content-range') !== undefined) return false;
  const cache = fields.get('cache-control');
  if (cache !== undefined && /(?:^|,)\s*no-transform\s*(?:,|$)/i.test(cache)) return false;
  return !(p.skipEtag && fields.get('etag') !== undefined);
}

/** A strong ETag made weak (a compressed answer is not the same bytes), as Envoy does; a weak one as it is. */
export function weakEtag(etag: string): string {
  const v = etag.trim();
  return v.startsWith('W/') ? v : `W/${v}`;
}

/**
 * The coding of a request body the gateway decodes: a single known coding; null for none or
 * `identity`; undefined for one it does not decode (several, or an unknown one: passed on as it came).
 */
export function requestCoding(contentEncoding: string | undefined): RequestCoding | null | undefined {
  if (contentEncoding === undefined) return null;
  const c = contentEncoding.trim().toLowerCase();
  if (c === '' || c === 'identity') return null;
  if (c === 'gzip' || c === 'x-gzip') return 'gzip';
  if (c === 'br' || c === 'zstd' || c === 'deflate') return c;
  return undefined;
}
