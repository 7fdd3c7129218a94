/**
 * One logged event and its three written forms (docs/payload-logging.md#events):
 *
 * - a CloudEvent in HTTP binary content mode, as Seldon Core 1.17's executor writes it
 *   (`executor/logger`): `ce-specversion 1.0`, a fresh `ce-id` per event, `ce-type`
 *   `io.seldon.serving.inference.request` / `.response` / `io.seldon.serving.feedback`, `ce-source`,
 *   `ce-time`, the extensions `requestid` (the Seldon-Puid, or the gateway's request id), `modelid`,
 *   `inferenceservicename`, `namespace`, `endpoint` (the predictor) and `protocol`, the payload as
 *   the body with its own Content-Type (gRPC messages as protobuf bytes, `application/protobuf`);
 *   the gateway's decision record is one more type, `io.seldon.gateway.decision`, JSON;
 * - the same attributes as the fields of a Redis stream entry (`data` last); the gateway hands them to
 *   Redis as one JSON field (`entryArgs`), which the append script spreads into fields for an
 *   operator's stream and keeps whole in a cloudevents sink's own buffer (stream-writer.ts);
 * - a JSON line: the CloudEvents JSON format (structured mode), for a file a log shipper tails.
 *
 * Why by hand and not the `cloudevents` package (the tests' reference): its binary serializer
 * builds a `CloudEvent`, which validates every attribute with ajv on construction; the binary
 * mode is a dozen header strings. Writing them costs nothing per event beside the strings.
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';

export const EVENT_TYPES = {
  request: 'io.seldon.serving.inference.request',
  response: 'io.seldon.serving.inference.response',
  feedback: 'io.seldon.serving.feedback',
  decision: 'io.seldon.gateway.decision',
} as const;

export type EventKind = keyof typeof EVENT_TYPES;
export const EVENT_KINDS = Object.keys(EVENT_TYPES) as EventKind[];
const KIND_OF = new Map<string, EventKind>(EVENT_KINDS.map((k) => [EVENT_TYPES[k], k]));

/** `ce-source`: this process's host, as Seldon's executor names its pod (`http://<hostname>:<port>/`). */
export const EVENT_SOURCE = `http://${hostname()}/seldon-gateway`;
const SOURCE_JSON = JSON.stringify(EVENT_SOURCE);

export interface LogEvent {
  readonly kind: EventKind;
  /** `ce-id`: unique per event (a duplicate delivery carries the same one). */
  readonly id: string;
  /** `ce-time`, RFC 3339. */
  readonly time: string;
  readonly requestId: string;
  readonly modelId: string;
  /** The SeldonDeployment's name (`inferenceservicename`). */
  readonly service: string;
  readonly namespace: string;
  /** The predictor (`endpoint`). */
  readonly endpoint: string;
  readonly protocol: string;
  readonly contentType: string;
  /** The payload; a decision record's JSON stays a string until a sink needs its bytes (Redis takes it as it is). */
  readonly data: Buffer | string;
  /** Set when the body was cut to the policy's cap: its length before. */
  readonly bodyLength?: number | undefined;
  /**
   * REST, set when the gateway decoded the request body or compressed the answer
   * (docs/edge.md#compression): the coding the body had between the client and the gateway
   * (`requestencoding` on a request or feedback event, `responseencoding` on a response event).
   * `data` is the plain bytes all the same.
   */
  readonly encoding?: string | undefined;
  /**
   * Set when the gateway translated the request between protocols (docs/protocol-translation.md):
   * `<client>-><model>`, `seldon->v2`. The bodies are the client's message and the answer as the client got it.
   */
  readonly translated?: string | undefined;
  /** `modelid` to `protocol` as `entryArgs` writes them (`fixedAttributes`), when made once for many events. */
  readonly fixed?: string | undefined;
}

/** What every event of one request shares. */
export type EventHead = Omit<LogEvent, 'kind' | 'id' | 'time' | 'contentType' | 'data' | 'bodyLength' | 'encoding'>;

const q = JSON.stringify;

/**
 * The attributes from `modelid` to `protocol`, as JSON members, each with its comma before it: the
 * same for every event of a predictor, so a logger writes them once (LogEvent `fixed`) rather than
 * escape five strings per event.
 */
export const fixedAttributes = (h: Omit<EventHead, 'requestId' | 'fixed'>): string =>
  `,"modelid":${q(h.modelId)},"inferenceservicename":${q(h.service)},"namespace":${q(h.namespace)},"endpoint":${q(h.endpoint)},"protocol":${q(h.protocol)}`;

/**
 * `ce-id`s: UUID-shaped, unique per event: a random UUID per process whose last 48 bits count up. A
 * fresh randomUUID per event cost more than the rest of its attributes together (load/README.md,
 * payload logging), as bandit-edge.ts found for its nonces.
 */
let idBase = randomUUID().slice(0, 24);
let idCount = 0;
function eventId(): string {
  if (++idCount >= 2 ** 48) {
    idBase = randomUUID().slice(0, 24);
    idCount = 0;
  }
  return idBase + idCount.toString(16).padStart(12, '0');
}

/** `ce-time` (RFC 3339, ms), its date and time to the second made once a second. */
let second = -1;
let secondText = '';
function timeNow(): string {
  const ms = Date.now();
  const s = Math.floor(ms / 1000);
  if (s !== second) {
    second = s;
    secondText = new Date(s * 1000).toISOString().slice(0, 20);
  }
  return `${secondText}${String(ms - s * 1000).padStart(3, '0')}Z`;
}

export function newEvent(head: EventHead, kind: EventKind, contentType: string, data: Buffer | string, bodyLength?: number, encoding?: string): LogEvent {
  // Written out field by field (one shape for every event), not spread.
  return {
    kind,
    id: eventId(),
    time: timeNow(),
    requestId: head.requestId,
    modelId: head.modelId,
    service: head.service,
    namespace: head.namespace,
    endpoint: head.endpoint,
    protocol: head.protocol,
    contentType,
    data,
    bodyLength,
    encoding,
    translated: head.translated,
    fixed: head.fixed,
  };
}

/** An event's payload as bytes (an HTTP body, a JSON line). */
export const dataBytes = (e: LogEvent): Buffer => (typeof e.data === 'string' ? Buffer.from(e.data) : e.data);

/** Bytes an event holds while it waits (its payload and its attributes, roughly). */
export const eventBytes = (e: LogEvent): number => e.data.length + 256;

/** CloudEvents' HTTP binding: a header value percent-encodes a space, `"`, `%` and what is not printable ASCII (spec 3.1.3.2). */
function headerValue(v: string): string {
  return /^[\x21\x23-\x24\x26-\x7e]*$/.test(v)
    ? v
    : Array.from(Buffer.from(v, 'utf8'), (b) => (b >= 0x21 && b <= 0x7e && b !== 0x22 && b !== 0x25 ? String.fromCharCode(b) : `%${b.toString(16).toUpperCase().padStart(2, '0')}`)).join('');
}

/** The extension that names a body's coding with the client: the request's, or the answer's. */
const encodingAttribute = (kind: EventKind): string => (kind === 'response' ? 'responseencoding' : 'requestencoding');

/** The attributes, as CloudEvents names them (context attributes, then the extensions). */
function attributes(e: LogEvent): [string, string][] {
  const a: [string, string][] = [
    ['specversion', '1.0'],
    ['id', e.id],
    ['type', EVENT_TYPES[e.kind]],
    ['source', EVENT_SOURCE],
    ['time', e.time],
    ['requestid', e.requestId],
    ['modelid', e.modelId],
    ['inferenceservicename', e.service],
    ['namespace', e.namespace],
    ['endpoint', e.endpoint],
    ['protocol', e.protocol],
  ];
  if (e.bodyLength !== undefined) a.push(['truncated', 'true'], ['bodylength', String(e.bodyLength)]);
  if (e.encoding !== undefined) a.push([encodingAttribute(e.kind), e.encoding]);
  if (e.translated !== undefined) a.push(['translated', e.translated]);
  return a;
}

/** Binary content mode: the attributes as `ce-` headers, the payload as the body with its Content-Type. */
export function binaryHeaders(e: LogEvent): string[] {
  const h: string[] = [];
  for (const [k, v] of attributes(e)) h.push(`ce-${k}`, headerValue(v));
  h.push('content-type', e.contentType);
  return h;
}

/** A Redis stream entry's fields: the attributes, `datacontenttype`, then `data` (an operator's stream has these). */
export function streamFields(e: LogEvent): (string | Buffer)[] {
  const f: (string | Buffer)[] = [];
  for (const [k, v] of attributes(e)) f.push(k, v);
  f.push('datacontenttype', e.contentType, 'data', dataBytes(e));
  return f;
}

/**
 * The two arguments an event is appended with: its attributes as one JSON object (`datacontenttype`
 * with them), and its payload. Why not every field an argument: ioredis handles each argument on
 * its own, and a dozen per event cost the gateway more than the decision record it carries
 * (load/README.md, payload logging).
 */
export function entryArgs(e: LogEvent): [string, Buffer | string] {
  // Written out rather than built as an object and stringified: one string per event, no garbage.
  const cut = e.bodyLength === undefined ? '' : `,"truncated":"true","bodylength":"${e.bodyLength}"`;
  const coded = (e.encoding === undefined ? '' : `,"${encodingAttribute(e.kind)}":${q(e.encoding)}`) + (e.translated === undefined ? '' : `,"translated":${q(e.translated)}`);
  const json = `{"specversion":"1.0","id":"${e.id}","type":"${EVENT_TYPES[e.kind]}","source":${SOURCE_JSON},"time":"${e.time}","requestid":${q(e.requestId)}${e.fixed ?? fixedAttributes(e)}${cut}${coded},"datacontenttype":${e.contentType === 'application/json' ? '"application/json"' : q(e.contentType)}}`;
  return [json, e.data];
}

/** An event back from its stream entry's fields (as read with the Buffer replies): the flat fields, or `ce` (the attributes' JSON) and `data`; undefined when it is not one of ours. */
export function fromStreamFields(fields: readonly Buffer[]): LogEvent | undefined {
  const m = new Map<string, Buffer>();
  for (let i = 0; i + 1 < fields.length; i += 2) m.set(fields[i]!.toString(), fields[i + 1]!);
  const ce = m.get('ce');
  let attrs: Record<string, unknown> | undefined;
  if (ce !== undefined) {
    try {
      attrs = JSON.parse(ce.toString()) as Record<string, unknown>;
    } catch {
      return undefined;
    }
  }
  const s = (k: string): string => (attrs !== undefined ? String(attrs[k] ?? '') : (m.get(k)?.toString() ?? ''));
  const kind = KIND_OF.get(s('type'));
  const data = m.get('data');
  if (kind === undefined || data === undefined || s('id') === '') return undefined;
  const length = attrs !== undefined ? (attrs.bodylength as string | undefined) : m.get('bodylength')?.toString();
  const coding = s(encodingAttribute(kind));
  const translated = s('translated');
  return {
    kind,
    id: s('id'),
    time: s('time'),
    requestId: s('requestid'),
    modelId: s('modelid'),
    service: s('inferenceservicename'),
    namespace: s('namespace'),
    endpoint: s('endpoint'),
    protocol: s('protocol'),
    contentType: s('datacontenttype'),
    data,
    ...(length !== undefined ? { bodyLength: Number(length) } : {}),
    ...(coding !== '' ? { encoding: coding } : {}),
    ...(translated !== '' ? { translated } : {}),
  };
}

const JSON_TYPE = /^application\/(?:[\w.+-]*\+)?json\b/i;

/** The CloudEvents JSON format: a JSON payload inline as `data` (when whole and valid), any other as `data_base64`. */
export function jsonLine(e: LogEvent): string {
  const o: Record<string, string> = {};
  for (const [k, v] of attributes(e)) o[k] = v;
  o.datacontenttype = e.contentType;
  const head = JSON.stringify(o).slice(0, -1);
  if (e.bodyLength === undefined && JSON_TYPE.test(e.contentType) && e.data.length > 0) {
    const text = typeof e.data === 'string' ? e.data : e.data.toString('utf8');
    try {
      JSON.parse(text);
      // The payload as it came, not re-serialised: numbers keep their digits.
      return `${head},"data":${text.replace(/\n/g, ' ')}}\n`;
    } catch {
      // Not JSON after all: base64, below.
    }
  }
  return `${head},"data_base64":"${dataBytes(e).toString('base64')}"}\n`;
}
