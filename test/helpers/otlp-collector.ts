/**
 * A real OTLP/HTTP trace receiver on 127.0.0.1 for the tracing tests: `POST /v1/traces` with an
 * `application/x-protobuf` body (gzip or not), decoded with OTLP's own message definitions
 * (test/protos/otlp-trace.proto) the way a collector decodes it, and answered 200 with an empty
 * ExportTraceServiceResponse. Every span is kept, flattened, with its resource's attributes.
 * `failWith` makes it answer that status instead (and keep nothing).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';
import * as protoLoader from '@grpc/proto-loader';
import { PROTO_DIR } from '../fixtures/grpc-backend.js';

export type AttributeValue = string | number | boolean | null;

export interface ExportedSpan {
  readonly traceId: string;
  readonly spanId: string;
  /** '' for a root span. */
  readonly parentSpanId: string;
  readonly traceState: string;
  readonly name: string;
  /** 1 internal, 2 server, 3 client. */
  readonly kind: number;
  readonly attributes: Readonly<Record<string, AttributeValue>>;
  /** 0 unset, 1 ok, 2 error. */
  readonly status: number;
  readonly resource: Readonly<Record<string, AttributeValue>>;
  readonly scope: string;
  readonly startNanos: bigint;
  readonly endNanos: bigint;
}

export interface OtlpCollector {
  readonly url: string;
  readonly port: number;
  readonly spans: ExportedSpan[];
  /** Export requests received, with their content type. */
  readonly requests: { contentType: string | undefined; path: string; spans: number }[];
  /** Answer every export with this HTTP status (undefined: 200). */
  failWith: number | undefined;
  close(): Promise<void>;
}

interface AnyValue {
  value?: string;
  stringValue?: string;
  boolValue?: boolean;
  intValue?: string;
  doubleValue?: number;
}
interface KeyValue {
  key: string;
  value: AnyValue | null;
}
interface DecodedSpan {
  traceId: Buffer;
  spanId: Buffer;
  parentSpanId: Buffer;
  traceState: string;
  name: string;
  kind: number;
  startTimeUnixNano: string;
  endTimeUnixNano: string;
  attributes: KeyValue[];
  status: { code: number } | null;
}
interface DecodedRequest {
  resourceSpans: { resource: { attributes: KeyValue[] } | null; scopeSpans: { scope: { name: string } | null; spans: DecodedSpan[] }[] }[];
}

let decoder: ((b: Buffer) => DecodedRequest) | undefined;

function decode(body: Buffer): DecodedRequest {
  if (!decoder) {
    const def = protoLoader.loadSync('otlp-trace.proto', { includeDirs: [PROTO_DIR], defaults: true, oneofs: true, longs: String, enums: Number });
    const service = def['opentelemetry.proto.collector.trace.v1.TraceService'] as protoLoader.ServiceDefinition;
    const method = service['Export']!;
    decoder = (b) => method.requestDeserialize(b) as DecodedRequest;
  }
  return decoder(body);
}

function valueOf(v: AnyValue | null): AttributeValue {
  if (!v) return null;
  switch (v.value) {
    case 'stringValue':
      return v.stringValue ?? '';
    case 'boolValue':
      return v.boolValue ?? false;
    case 'intValue':
      return Number(v.intValue);
    case 'doubleValue':
      return v.doubleValue ?? 0;
    default:
      return null;
  }
}

function attributes(kvs: readonly KeyValue[]): Record<string, AttributeValue> {
  const out: Record<string, AttributeValue> = {};
  for (const kv of kvs) out[kv.key] = valueOf(kv.value);
  return out;
}

export async function startOtlpCollector(): Promise<OtlpCollector> {
  const spans: ExportedSpan[] = [];
  const requests: OtlpCollector['requests'] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (collector.failWith !== undefined) {
        res.writeHead(collector.failWith).end();
        return;
      }
      let body = Buffer.concat(chunks);
      if (req.headers['content-encoding'] === 'gzip') body = gunzipSync(body);
      let decoded: DecodedRequest;
      try {
        decoded = decode(body);
      } catch {
        res.writeHead(400).end();
        return;
      }
      let n = 0;
      for (const rs of decoded.resourceSpans) {
        const resource = attributes(rs.resource?.attributes ?? []);
        for (const ss of rs.scopeSpans) {
          for (const s of ss.spans) {
            n++;
            spans.push({
              traceId: s.traceId.toString('hex'),
              spanId: s.spanId.toString('hex'),
              parentSpanId: s.parentSpanId.toString('hex'),
              traceState: s.traceState,
              name: s.name,
              kind: s.kind,
              attributes: attributes(s.attributes),
              status: s.status?.code ?? 0,
              resource,
              scope: ss.scope?.name ?? '',
              startNanos: BigInt(s.startTimeUnixNano),
              endNanos: BigInt(s.endTimeUnixNano),
            });
          }
        }
      }
      requests.push({ contentType: req.headers['content-type'], path: req.url ?? '', spans: n });
      res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  const collector: OtlpCollector = {
    url: `http://127.0.0.1:${port}`,
    port,
    spans,
    requests,
    failWith: undefined,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
  return collector;
}
