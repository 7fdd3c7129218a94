/**
 * Helpers for the gRPC data-plane tests: metadata, awaited calls that hand back the status, and
 * small raw HTTP/2 upstreams for behaviour a grpc-js server cannot be made to show (resets,
 * GOAWAY, silence). Everything listens on 127.0.0.1.
 */
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { encodeSeldonMessage, grpcFrame, unaryCall, type GrpcClients, type SeldonMessage, type UnaryResult } from '../fixtures/grpc-backend.js';

/** Metadata from a record; `-bin` keys take Buffers, repeated keys arrays. */
export function md(entries: Record<string, string | Buffer | (string | Buffer)[]>): grpc.Metadata {
  const m = new grpc.Metadata();
  for (const [k, v] of Object.entries(entries)) for (const x of Array.isArray(v) ? v : [v]) m.add(k, x);
  return m;
}

export type Outcome = { ok: true; result: UnaryResult<SeldonMessage> } | { ok: false; error: grpc.ServiceError };

/** A Predict that never rejects: the outcome says OK or which status. */
export function predict(clients: GrpcClients, req: SeldonMessage, metadata: grpc.Metadata, options: Partial<grpc.CallOptions> = {}): Promise<Outcome> {
  return unaryCall(clients.seldon.Predict, clients.seldon, req, metadata, options).then(
    (result) => ({ ok: true as const, result }),
    (error: grpc.ServiceError) => ({ ok: false as const, error }),
  );
}

/** The backend that answered a successful Predict (meta.tags.backend). */
export function answeredBy(o: Outcome): string | undefined {
  return o.ok ? o.result.response.meta?.tags?.['backend']?.stringValue : undefined;
}

/** Run `task` for i = 0..n-1 with at most `concurrency` in flight. */
export async function pool<T>(n: number, concurrency: number, task: (i: number) => Promise<T>): Promise<T[]> {
  const out = new Array<T>(n);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < n) {
      const i = next++;
      out[i] = await task(i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, n) }, worker));
  return out;
}

export interface RawUpstream {
  readonly port: number;
  /** Streams received, by order of arrival (headers as received). */
  readonly streams: http2.IncomingHttpHeaders[];
  /** The same streams' header fields as received, `[name, value, …]` in order (repeated fields apart). */
  readonly rawStreams: string[][];
  readonly sessions: Set<http2.ServerHttp2Session>;
  close(): Promise<void>;
}

/**
 * A hand-driven HTTP/2 upstream: `onStream` decides per stream (n = 0-based arrival index).
 * Use `answerOk` for a valid gRPC reply.
 */
export async function startRawUpstream(
  onStream: (stream: http2.ServerHttp2Stream, n: number, headers: http2.IncomingHttpHeaders) => void,
  /** Where it listens: several "pods" share one port on 127.0.0.2, .3, …. Default 127.0.0.1, any port. */
  at: { host?: string; port?: number } = {},
): Promise<RawUpstream> {
  const server = http2.createServer();
  const streams: http2.IncomingHttpHeaders[] = [];
  const rawStreams: string[][] = [];
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on('session', (s) => {
    sessions.add(s);
    s.on('error', () => undefined);
    s.once('close', () => sessions.delete(s));
  });
  server.on('stream', (stream, headers, _flags, raw) => {
    stream.on('error', () => undefined);
    streams.push(headers);
    rawStreams.push(raw);
    onStream(stream, streams.length - 1, headers);
  });
  await new Promise<void>((r) => server.listen(at.port ?? 0, at.host ?? '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    streams,
    rawStreams,
    sessions,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sessions) s.destroy();
        server.close(() => r());
      }),
  };
}

/** A valid unary gRPC answer: headers, one SeldonMessage{strData}, trailers grpc-status 0. */
export function answerOk(stream: http2.ServerHttp2Stream, strData: string, trailers: Record<string, string> = {}): void {
  if (stream.destroyed) return;
  stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
  stream.once('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0', ...trailers }));
  stream.end(grpcFrame(encodeSeldonMessage({ strData })));
}
