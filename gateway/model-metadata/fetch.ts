/**
 * One fetch of a v2 model's metadata, over the transport its route uses, to the endpoints its
 * requests go to: REST `GET /v2/models/<m>` on the upstream's HTTP/1.1 pool, gRPC
 * `inference.GRPCInferenceService/ModelMetadata` on its HTTP/2 sessions. Bounded: an answer larger
 * than `maxBytes` is cut as soon as it says so (its Content-Length) or passes it, never buffered
 * whole; the fetch ends within `timeoutMs` (one timer per fetch, never per request). What it yields
 * is the answer as JSON holds it, for routing/policies/model-metadata.ts to check, or a reason.
 */
import http2, { type ClientHttp2Stream, type IncomingHttpHeaders } from 'node:http2';
import type { ResponseHandler, ResponseHead, UpstreamAttempt } from '../upstream/http1-client.js';
import type { UpstreamPool } from '../upstream/pools.js';
import type { GrpcUpstream } from '../upstream/grpc-sessions.js';
import { UpstreamError } from '../upstream/request-head.js';
import { readModelMetadataResponse, writeModelMetadataRequest } from '../translate/v2-proto.js';
import { MESSAGE_HEAD, lengthPrefixed, onlyMessage } from '../wire/grpc-message.js';

const { NGHTTP2_CANCEL } = http2.constants;

export type Fetched = { readonly ok: true; readonly doc: unknown } | { readonly ok: false; readonly reason: string };

export interface FetchLimits {
  readonly timeoutMs: number;
  readonly maxBytes: number;
}

/** A model name and version as a path: each a segment, encoded. */
export function metadataPath(model: string, version: string): string {
  const m = `/v2/models/${encodeURIComponent(model)}`;
  return version === '' ? m : `${m}/versions/${encodeURIComponent(version)}`;
}

/** REST: `GET /v2/models/<m>` on an endpoint of `up`. */
export function fetchRest(up: UpstreamPool, model: string, version: string, limits: FetchLimits, done: (r: Fetched) => void): void {
  const endpoint = up.pick();
  if (endpoint === undefined) return done({ ok: false, reason: `no ready endpoint for ${up.name}` });
  endpoint.outstanding++;
  const fetch = new RestFetch(limits, (r) => {
    endpoint.outstanding--;
    done(r);
  });
  endpoint.pool.dispatch({ method: 'GET', path: metadataPath(model, version), headers: ['accept', 'application/json'], body: null, headersTimeout: 0, bodyTimeout: 0 }, fetch);
}

class RestFetch implements ResponseHandler {
  private attempt: UpstreamAttempt | undefined;
  private status = 0;
  private chunks: Buffer[] = [];
  private size = 0;
  private settled = false;
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly limits: FetchLimits,
    private readonly done: (r: Fetched) => void,
  ) {
    this.timer = setTimeout(() => this.cut(`no answer within ${limits.timeoutMs} ms`), limits.timeoutMs);
    this.timer.unref();
  }

  onConnect(attempt: UpstreamAttempt): void {
    this.attempt = attempt;
  }

  onHeaders(head: ResponseHead): boolean {
    this.status = head.status;
    // Said too large: cut before a byte of it is read.
    if (head.length > this.limits.maxBytes) this.cut(`its answer is ${head.length} bytes, more than ${this.limits.maxBytes}`);
    return true;
  }

  onData(chunk: Buffer): boolean {
    if (this.settled) return false;
    this.size += chunk.length;
    if (this.size > this.limits.maxBytes) {
      this.cut(`its answer is more than ${this.limits.maxBytes} bytes`);
      return false;
    }
    this.chunks.push(chunk);
    return true;
  }

  onComplete(): void {
    if (this.settled) return;
    const body = Buffer.concat(this.chunks, this.size);
    this.chunks = [];
    if (this.status !== 200) return this.settle({ ok: false, reason: `it answered ${this.status}` });
    let doc: unknown;
    try {
      doc = JSON.parse(body.toString('utf8'));
    } catch (err) {
      return this.settle({ ok: false, reason: `its answer is not JSON (${(err as Error).message.slice(0, 80)})` });
    }
    this.settle({ ok: true, doc });
  }

  onError(err: Error & { code?: string }): void {
    this.settle({ ok: false, reason: err.code ?? err.message });
  }

  private cut(reason: string): void {
    if (this.settled) return;
    this.settle({ ok: false, reason });
    this.attempt?.abort(new UpstreamError('UPSTREAM_CLOSED', reason));
  }

  private settle(r: Fetched): void {
    if (this.settled) return;
    this.settled = true;
    clearTimeout(this.timer);
    this.chunks = [];
    this.done(r);
  }
}

/** gRPC: `ModelMetadata` on a session of `up`; `authority`: the `:authority` its calls carry. */
export function fetchGrpc(up: GrpcUpstream, authority: string, model: string, version: string, limits: FetchLimits, done: (r: Fetched) => void): void {
  let stream: ClientHttp2Stream;
  try {
    stream = up.request({
      ':method': 'POST',
      ':path': '/inference.GRPCInferenceService/ModelMetadata',
      ':authority': authority,
      ':scheme': up.tls ? 'https' : 'http',
      'content-type': 'application/grpc',
      te: 'trailers',
    }).stream;
  } catch (err) {
    return done({ ok: false, reason: (err as Error).message });
  }
  let settled = false;
  const chunks: Buffer[] = [];
  let size = 0;
  let grpcStatus: string | undefined;
  const settle = (r: Fetched): void => {
    if (settled) return;
    settled = true;
    clearTimeout(timer);
    done(r);
  };
  const cut = (reason: string): void => {
    settle({ ok: false, reason });
    if (!stream.closed) stream.close(NGHTTP2_CANCEL);
  };
  const timer = setTimeout(() => cut(`no answer within ${limits.timeoutMs} ms`), limits.timeoutMs);
  timer.unref();
  stream.on('error', () => undefined);
  stream.on('response', (headers: IncomingHttpHeaders) => {
    const s = headers['grpc-status'];
    if (typeof s === 'string') grpcStatus = s;
  });
  stream.on('trailers', (trailers: IncomingHttpHeaders) => {
    const s = trailers['grpc-status'];
    if (typeof s === 'string') grpcStatus = s;
  });
  stream.on('data', (chunk: Buffer) => {
    if (settled) return;
    size += chunk.length;
    // The length prefix says the size first: cut as soon as it is too large.
    if (size > limits.maxBytes + MESSAGE_HEAD || (chunks.length === 0 && chunk.length >= MESSAGE_HEAD && chunk.readUInt32BE(1) > limits.maxBytes))
      return cut(`its answer is more than ${limits.maxBytes} bytes`);
    chunks.push(chunk);
  });
  stream.once('close', () => {
    if (settled) return;
    if (grpcStatus !== '0') return settle({ ok: false, reason: grpcStatus === undefined ? 'the call ended without a status' : `it answered grpc-status ${grpcStatus}` });
    const whole = Buffer.concat(chunks, size);
    const message = onlyMessage(whole);
    if (message === null) return settle({ ok: false, reason: 'its answer is not one uncompressed message' });
    try {
      settle({ ok: true, doc: readModelMetadataResponse(message) });
    } catch (err) {
      settle({ ok: false, reason: (err as Error).message });
    }
  });
  stream.end(lengthPrefixed(writeModelMetadataRequest(model, version)));
}
