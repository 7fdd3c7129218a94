/**
 * A request's trace context in its headers, without the OpenTelemetry SDK: which headers carry it,
 * how they are stripped and written on an upstream request (REST's raw header array, gRPC's header
 * object), and the trace id a client sent, for the access log when the gateway does not trace.
 */
import type { IncomingHttpHeaders } from 'node:http';

/** Every trace-context header the gateway reads and writes (lower case). */
export const TRACE_HEADERS: readonly string[] = ['traceparent', 'tracestate', 'b3', 'x-b3-traceid', 'x-b3-spanid', 'x-b3-parentspanid', 'x-b3-sampled', 'x-b3-flags'];
const TRACE_HEADER_SET = new Set(TRACE_HEADERS);

/** How a client sent B3 context (undefined: it did not), which is how the upstream gets it too. */
export type B3Form = 'single' | 'multi' | undefined;

/** Writing trace headers into one kind of upstream request headers. */
export interface HeaderWriter<C> {
  /** Remove every trace-context header (the client's). */
  strip(carrier: C): void;
  set(carrier: C, name: string, value: string): void;
}

/** REST: the upstream request's raw header array (`[name, value, name, value, …]`, names in any case). */
export const RAW_HEADERS: HeaderWriter<string[]> = {
  strip(h) {
    for (let i = h.length - 2; i >= 0; i -= 2) if (TRACE_HEADER_SET.has(h[i]!.toLowerCase())) h.splice(i, 2);
  },
  set(h, name, value) {
    for (let i = 0; i < h.length; i += 2) {
      if (h[i]!.length === name.length && h[i]!.toLowerCase() === name) {
        h[i + 1] = value;
        return;
      }
    }
    h.push(name, value);
  },
};

/** gRPC: an HTTP/2 header object (names lower case). */
export const HEADER_OBJECT: HeaderWriter<Record<string, unknown>> = {
  strip(h) {
    for (const name of TRACE_HEADERS) delete h[name];
  },
  set(h, name, value) {
    h[name] = value;
  },
};

const first = (v: string | string[] | undefined): string | undefined => (Array.isArray(v) ? v[0] : v);
const HEX32 = /^[0-9a-f]{32}$/;
const HEX16OR32 = /^(?:[0-9a-f]{16}|[0-9a-f]{32})$/;

/**
 * The trace id a client's context carries (W3C, else B3), for the access log when the gateway
 * does not trace itself; undefined when there is none or it is malformed.
 */
export function incomingTraceId(fields: FieldReader): string | undefined {
  const tp = fields.field('traceparent');
  if (tp !== undefined) {
    const id = tp.slice(3, 35).toLowerCase();
    if (tp.length >= 55 && tp[2] === '-' && tp[35] === '-' && HEX32.test(id) && id !== '0'.repeat(32)) return id;
  }
  const b3 = fields.field('b3') ?? fields.field('x-b3-traceid');
  if (b3 !== undefined) {
    const dash = b3.indexOf('-');
    const id = (dash < 0 ? b3 : b3.slice(0, dash)).toLowerCase();
    if (HEX16OR32.test(id)) return id.padStart(32, '0');
  }
  return undefined;
}

/** What `incomingTraceId` reads a request's fields with (a REST request is one: edge/rest-exchange.ts `field`). */
export interface FieldReader {
  field(name: string): string | undefined;
}

/** A header object (gRPC's) as a `FieldReader`: a field's first value. */
export const headerObjectFields = (headers: IncomingHttpHeaders): FieldReader => ({ field: (name) => first(headers[name]) });
