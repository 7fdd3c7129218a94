/**
 * The access log's line formats (observe/access-log.ts): JSON, the default, written straight into
 * the bytes of the batch that waits to be written (`encodeJsonLine`), and Envoy's text line.
 */
import { putLatin1 } from '../wire/http1-syntax.js';

/** A body the gateway decoded or compressed (docs/edge.md#compression): its coding, its bytes plain and encoded. */
export interface CodedBody {
  readonly encoding: string;
  readonly identityBytes: number;
  readonly encodedBytes: number;
}

/** What a request's line says of compression: each direction the gateway decoded or compressed. */
export interface CodedBodies {
  request: CodedBody | undefined;
  response: CodedBody | undefined;
}

/** One access log line: Envoy's fields and the gateway's. */
export interface AccessEntry {
  /** When the request arrived (epoch ms). */
  readonly startTime: number;
  /** The client connection's peer, `address:port` (Envoy's downstream_remote_address). */
  readonly clientAddress: string | undefined;
  /** X-Forwarded-For as the client sent it. */
  readonly forwardedFor: string | undefined;
  readonly method: string;
  /** Host, or gRPC's :authority. */
  readonly authority: string | undefined;
  /** The path, without its query string unless --access-log-query. */
  readonly path: string;
  /** HTTP/1.1, HTTP/1.0 or HTTP/2. */
  readonly protocol: string;
  /** HTTP status sent (499: the client went away first; gRPC: the :status, 200 for every gRPC status). */
  readonly responseCode: number;
  /** gRPC calls: the grpc-status the client got. */
  readonly grpcStatus: number | undefined;
  /** Body bytes received from the client (null: a Content-Length body that did not arrive whole) and sent to it. */
  readonly bytesReceived: number | null;
  readonly bytesSent: number;
  /** From arrival to the end of the answer, ms. */
  readonly durationMs: number;
  /** From sending upstream to the upstream's response head, ms; null when no upstream answered. */
  readonly upstreamMs: number | null;
  /** The address dialled (`host:port`: a pod endpoint or the Service), Envoy's upstream_host. */
  readonly upstreamHost: string | undefined;
  /** The upstream as the route names it (`<svc>.<ns>:<port>`), Envoy's upstream_cluster. */
  readonly upstreamCluster: string | undefined;
  readonly namespace: string | undefined;
  readonly deployment: string | undefined;
  readonly predictor: string | undefined;
  /** Attempts after the first (retries and replays), hedges apart. */
  readonly retries: number;
  /** Attempts sent as hedges, beside one in flight (docs/routing.md#hedged-requests). */
  readonly hedges: number;
  /** Shadows the request was mirrored to. */
  readonly shadows: number;
  /** The x-request-id the upstream saw (the client's, or the one the gateway made). */
  readonly requestId: string | undefined;
  /** The W3C trace id of the request (with --otlp-endpoint, or from the client's context). */
  readonly traceId: string | undefined;
  readonly userAgent: string | undefined;
  /** The client certificate's subject on a TLS connection that presented one (Envoy's downstream_peer_subject). */
  readonly peerSubject: string | undefined;
  /** Why the request went to its predictor's fallback (docs/routing.md#fallback-models; `predictor` answered it), or undefined. */
  readonly fallback: string | undefined;
  /** Set only when a body was decoded or compressed: a line without it is written as it always was. */
  readonly coded?: CodedBodies | undefined;
  /** Set only when the request was translated between protocols (docs/protocol-translation.md): `<client>-><model>`, `seldon->v2`. */
  readonly translated?: string | undefined;
}

/** What JSON.stringify would escape in a string (a surrogate: let it decide). */
const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/;

/**
 * ISO 8601 of an epoch-ms time, as Date#toISOString writes it, with the part up to the second
 * made once per second: most lines of a second share it (toISOString is most of a line's cost).
 */
let isoSecond = NaN;
let isoPrefix = '';
function isoPrefixOf(second: number): string {
  if (second !== isoSecond) {
    isoSecond = second;
    isoPrefix = new Date(second * 1000).toISOString().slice(0, 20);
  }
  return isoPrefix;
}
export function isoTime(epochMs: number): string {
  const ms = Math.floor(epochMs);
  const second = Math.floor(ms / 1000);
  const frac = ms - second * 1000;
  return `${isoPrefixOf(second)}${frac < 10 ? '00' : frac < 100 ? '0' : ''}${frac}Z`;
}
const ms = (v: number): number => Math.round(v * 1000) / 1000;

/** `s` as UTF-8 into `out` at `at` (room for it is the caller's: `jsonLineBound`); the index after it. */
function putText(out: Buffer, at: number, s: string): number {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x80) return at + out.write(s, at, 'utf8');
    out[at + i] = c;
  }
  return at + s.length;
}

/** A JSON string (or null); most values need no escaping, and skip the serializer. */
function putString(out: Buffer, at: number, s: string | undefined): number {
  if (s === undefined) return putLatin1(out, at, 'null');
  if (NEEDS_ESCAPE.test(s)) return putText(out, at, JSON.stringify(s));
  out[at] = 34;
  at = putText(out, at + 1, s);
  out[at] = 34;
  return at + 1;
}

/** A JSON number (or null). */
const putNumber = (out: Buffer, at: number, v: number | null | undefined): number => putLatin1(out, at, v === null || v === undefined ? 'null' : String(v));

/** A time as `"2025-01-31T12:00:00.007Z"`. */
function putTime(out: Buffer, at: number, epochMs: number): number {
  const whole = Math.floor(epochMs);
  const second = Math.floor(whole / 1000);
  const frac = whole - second * 1000;
  out[at] = 34;
  at = putLatin1(out, at + 1, isoPrefixOf(second));
  out[at] = 48 + Math.floor(frac / 100);
  out[at + 1] = 48 + (Math.floor(frac / 10) % 10);
  out[at + 2] = 48 + (frac % 10);
  out[at + 3] = 90;
  out[at + 4] = 34;
  return at + 5;
}

/** The line's fixed text, its string fields (at most 6 bytes per UTF-16 unit once escaped, and quotes), its numbers and times. */
const FIXED_BYTES = 660;
const s6 = (s: string | undefined): number => (s === undefined ? 4 : 6 * s.length + 2);

/** The compression fields of both directions: their names, numbers and codings (a few letters each). */
const CODED_BYTES = 320;

/** At least the bytes `encodeJsonLine` writes for `e`. */
export function jsonLineBound(e: AccessEntry): number {
  return (
    FIXED_BYTES +
    (e.coded === undefined ? 0 : CODED_BYTES) +
    (e.translated === undefined ? 0 : 16 + s6(e.translated)) +
    s6(e.clientAddress) +
    s6(e.forwardedFor) +
    s6(e.method) +
    s6(e.authority) +
    s6(e.path) +
    s6(e.protocol) +
    s6(e.upstreamHost) +
    s6(e.upstreamCluster) +
    s6(e.namespace) +
    s6(e.deployment) +
    s6(e.predictor) +
    s6(e.requestId) +
    s6(e.traceId) +
    s6(e.userAgent) +
    s6(e.peerSubject) +
    s6(e.fallback)
  );
}

/**
 * One JSON line into `out` at `at` (with room for `jsonLineBound(e)` bytes); the index after it.
 * The envelope (`level`, `severity`, `time`, `msg`) is the main log's (observe/log-format.ts), so
 * one pipeline reads both; the rest are Envoy's JSON field names. Written by hand, field by field
 * into the batch's bytes: a fixed field order, about half the cost of a generic serializer, and
 * no line built as a string first (a tree of strings of about 3 KB per line, flattened once more
 * to be encoded).
 */
export function encodeJsonLine(e: AccessEntry, out: Buffer, at: number): number {
  at = putLatin1(out, at, '{"level":"info","severity":"INFO","time":');
  at = putTime(out, at, Date.now());
  at = putLatin1(out, at, ',"msg":"access","start_time":');
  at = putTime(out, at, e.startTime);
  at = putString(out, putLatin1(out, at, ',"downstream_remote_address":'), e.clientAddress);
  at = putString(out, putLatin1(out, at, ',"x_forwarded_for":'), e.forwardedFor);
  at = putString(out, putLatin1(out, at, ',"method":'), e.method);
  at = putString(out, putLatin1(out, at, ',"authority":'), e.authority);
  at = putString(out, putLatin1(out, at, ',"path":'), e.path);
  at = putString(out, putLatin1(out, at, ',"protocol":'), e.protocol);
  at = putNumber(out, putLatin1(out, at, ',"response_code":'), e.responseCode);
  at = putNumber(out, putLatin1(out, at, ',"grpc_status":'), e.grpcStatus);
  at = putNumber(out, putLatin1(out, at, ',"bytes_received":'), e.bytesReceived);
  at = putNumber(out, putLatin1(out, at, ',"bytes_sent":'), e.bytesSent);
  at = putNumber(out, putLatin1(out, at, ',"duration":'), ms(e.durationMs));
  at = putNumber(out, putLatin1(out, at, ',"upstream_service_time":'), e.upstreamMs === null ? null : ms(e.upstreamMs));
  at = putString(out, putLatin1(out, at, ',"upstream_host":'), e.upstreamHost);
  at = putString(out, putLatin1(out, at, ',"upstream_cluster":'), e.upstreamCluster);
  at = putString(out, putLatin1(out, at, ',"namespace":'), e.namespace);
  at = putString(out, putLatin1(out, at, ',"deployment":'), e.deployment);
  at = putString(out, putLatin1(out, at, ',"predictor":'), e.predictor);
  at = putNumber(out, putLatin1(out, at, ',"retries":'), e.retries);
  at = putNumber(out, putLatin1(out, at, ',"hedges":'), e.hedges);
  at = putNumber(out, putLatin1(out, at, ',"shadows":'), e.shadows);
  at = putString(out, putLatin1(out, at, ',"request_id":'), e.requestId);
  at = putString(out, putLatin1(out, at, ',"trace_id":'), e.traceId);
  at = putString(out, putLatin1(out, at, ',"user_agent":'), e.userAgent);
  at = putString(out, putLatin1(out, at, ',"downstream_peer_subject":'), e.peerSubject);
  at = putString(out, putLatin1(out, at, ',"fallback":'), e.fallback);
  if (e.coded !== undefined) at = putCoded(out, at, e.coded);
  if (e.translated !== undefined) at = putString(out, putLatin1(out, at, ',"translated":'), e.translated);
  return putLatin1(out, at, '}\n');
}

/** The compression fields, each direction only when it was decoded or compressed: `request_*` in from the client, `response_*` out to it. */
function putCoded(out: Buffer, at: number, c: CodedBodies): number {
  const q = c.request;
  if (q !== undefined) {
    at = putString(out, putLatin1(out, at, ',"request_encoding":'), q.encoding);
    at = putNumber(out, putLatin1(out, at, ',"request_bytes_encoded":'), q.encodedBytes);
    at = putNumber(out, putLatin1(out, at, ',"request_bytes_identity":'), q.identityBytes);
  }
  const r = c.response;
  if (r !== undefined) {
    at = putString(out, putLatin1(out, at, ',"response_encoding":'), r.encoding);
    at = putNumber(out, putLatin1(out, at, ',"response_bytes_identity":'), r.identityBytes);
    at = putNumber(out, putLatin1(out, at, ',"response_bytes_encoded":'), r.encodedBytes);
  }
  return at;
}

/** One JSON line as a string (for a sink that takes strings: tests). */
export function jsonLine(e: AccessEntry): string {
  const out = Buffer.allocUnsafe(jsonLineBound(e));
  return out.toString('utf8', 0, encodeJsonLine(e, out, 0));
}

/** A quoted text field: `"-"` when absent; quotes, backslashes and control characters escaped (no line injection). */
function t(s: string | undefined): string {
  if (s === undefined || s === '') return '"-"';
  return /["\\\x00-\x1f\x7f]/.test(s) ? `"${s.replace(/["\\\x00-\x1f\x7f]/g, (c) => (c === '"' || c === '\\' ? `\\${c}` : `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`))}"` : `"${s}"`;
}

/** A bare text field that is a number or absent (`-`). */
const tn = (v: number | null | undefined): string => (v === null || v === undefined ? '-' : String(v));

/**
 * Envoy's default line, then the gateway's fields:
 * `[START_TIME] "METHOD PATH PROTOCOL" RESPONSE_CODE RESPONSE_FLAGS BYTES_RECEIVED BYTES_SENT DURATION
 * UPSTREAM_SERVICE_TIME "X-FORWARDED-FOR" "USER-AGENT" "X-REQUEST-ID" "AUTHORITY" "UPSTREAM_HOST"`
 * `GRPC_STATUS "NAMESPACE/DEPLOYMENT/PREDICTOR" "UPSTREAM_CLUSTER" RETRIES SHADOWS "TRACE_ID" "CLIENT_ADDRESS" "PEER_SUBJECT" HEDGES "FALLBACK"`
 * (HEDGES and FALLBACK last: the fields before them are where they were before).
 * RESPONSE_FLAGS is always `-` (kept so Envoy's parsers read the line). A request whose body the
 * gateway decoded or whose answer it compressed has six more:
 * `"REQUEST_ENCODING" REQUEST_BYTES_ENCODED REQUEST_BYTES_IDENTITY "RESPONSE_ENCODING" RESPONSE_BYTES_IDENTITY RESPONSE_BYTES_ENCODED`
 * (`-` for the direction that was not); any other line ends at FALLBACK. A request translated between
 * protocols has those six (all `-` when nothing was coded) and `"TRANSLATED"` (`seldon->v2`) after them.
 */
export function textLine(e: AccessEntry): string {
  const route = e.deployment === undefined ? undefined : `${e.namespace}/${e.deployment}/${e.predictor}`;
  return (
    `[${isoTime(e.startTime)}] ${t(`${e.method} ${e.path} ${e.protocol}`)} ${e.responseCode} - ${tn(e.bytesReceived)} ${e.bytesSent} ${ms(e.durationMs)} ${e.upstreamMs === null ? '-' : ms(e.upstreamMs)}` +
    ` ${t(e.forwardedFor)} ${t(e.userAgent)} ${t(e.requestId)} ${t(e.authority)} ${t(e.upstreamHost)}` +
    ` ${tn(e.grpcStatus)} ${t(route)} ${t(e.upstreamCluster)} ${e.retries} ${e.shadows} ${t(e.traceId)} ${t(e.clientAddress)} ${t(e.peerSubject)} ${e.hedges} ${t(e.fallback)}` +
    (e.translated !== undefined ? `${textCoded(e.coded ?? NOTHING_CODED)} ${t(e.translated)}\n` : e.coded === undefined ? '\n' : `${textCoded(e.coded)}\n`)
  );
}

const NOTHING_CODED: CodedBodies = { request: undefined, response: undefined };

function textCoded(c: CodedBodies): string {
  const q = c.request;
  const r = c.response;
  return ` ${t(q?.encoding)} ${tn(q?.encodedBytes)} ${tn(q?.identityBytes)} ${t(r?.encoding)} ${tn(r?.identityBytes)} ${tn(r?.encodedBytes)}`;
}
