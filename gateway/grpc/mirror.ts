/**
 * gRPC mirroring (SEMANTICS.md §6.3): a fire-and-forget copy of a call to each chosen shadow's
 * gRPC upstream, sent once the client's request half has ended within the body-size limit
 * (unary calls, client streams). Same path and metadata, `:authority` with `-shadow` inserted.
 *
 * The copy shares nothing with the primary but the (immutable) body chunks: it runs on the
 * shadow upstream's own sessions, under its own breaker and the per-upstream in-flight bound,
 * to its own timeout; its answer is read, discarded and counted.
 */
import http2, { type ClientHttp2Stream, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http2';
import { shadowHost } from '../edge/http-headers.js';
import type { GatewayMetrics } from '../observe/metrics.js';
import type { GrpcUpstream, GrpcUpstreams } from './upstreams.js';
import type { MirrorBudget } from '../upstream/mirror-budget.js';
import type { Backend, Mirror } from '../../routing/types.js';

const { NGHTTP2_CANCEL, NGHTTP2_FLAG_END_STREAM } = http2.constants;
const ignore = (): void => undefined;

/** gRPC status of an answer: grpc-status when present, else the HTTP status (non-gRPC reply). */
export function answerStatus(headers: OutgoingHttpHeaders, httpStatus: number): number {
  const s = headers['grpc-status'];
  if (typeof s === 'string' && s !== '') {
    const n = Number(s);
    if (Number.isInteger(n)) return n;
  }
  return httpStatus === 200 ? 2 /* UNKNOWN: a gRPC answer without a status */ : httpStatus;
}

class MirrorCall {
  private done = false;
  private status = -1;
  private httpStatus = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly backend: Backend,
    stream: ClientHttp2Stream,
    private readonly settle: (backend: Backend, status: number) => void,
  ) {
    const s = stream;
    s.on('error', ignore);
    s.on('response', (headers: IncomingHttpHeaders, flags: number) => {
      this.httpStatus = Number(headers[':status']);
      if (flags & NGHTTP2_FLAG_END_STREAM) this.status = answerStatus(headers, this.httpStatus);
    });
    s.on('trailers', (trailers: IncomingHttpHeaders) => {
      this.status = answerStatus(trailers, this.httpStatus);
    });
    s.resume(); // read and discard
    s.once('close', () => this.finish());
    const ms = backend.timeoutMs > 0 ? backend.timeoutMs : backend.idleTimeoutMs;
    if (ms > 0) {
      this.timer = setTimeout(() => s.close(NGHTTP2_CANCEL), ms);
      this.timer.unref();
    }
  }

  private finish(): void {
    if (this.done) return;
    this.done = true;
    if (this.timer) clearTimeout(this.timer);
    this.settle(this.backend, this.status);
  }
}

export class GrpcMirrors {
  constructor(
    private readonly upstreams: GrpcUpstreams,
    private readonly budget: MirrorBudget,
    private readonly metrics: GatewayMetrics,
    readonly maxBodyBytes: number,
  ) {}

  /** Count mirrors not sent because the request outgrew the limit. */
  tooLarge(mirrors: readonly Mirror[]): void {
    for (const m of mirrors) this.metrics.shadow(m.backend, 'grpc', 'dropped_body_size');
  }

  /** `headers`: the primary's upstream headers (copied here, never changed). */
  send(mirrors: readonly Mirror[], headers: OutgoingHttpHeaders, body: readonly Buffer[]): void {
    const authority = String(headers[':authority'] ?? '');
    for (const m of mirrors) {
      const up = this.upstreams.for(m.backend);
      if (!this.budget.take(up)) {
        this.metrics.shadow(m.backend, 'grpc', 'dropped_in_flight');
        continue;
      }
      if (up.breaker.enter() !== null) {
        this.budget.give(up);
        this.metrics.shadow(m.backend, 'grpc', 'dropped_breaker');
        continue;
      }
      let stream: ClientHttp2Stream;
      try {
        stream = up.request({ ...headers, ':authority': shadowHost(authority), ':scheme': up.tls ? 'https' : 'http' }).stream;
      } catch {
        this.settled(up, m.backend, -1);
        continue;
      }
      new MirrorCall(m.backend, stream, (backend, status) => this.settled(up, backend, status));
      for (const chunk of body) stream.write(chunk);
      stream.end();
    }
  }

  /** `status` -1: the mirror failed (reset, timeout, unreachable) without an answer. */
  private settled(up: GrpcUpstream, backend: Backend, status: number): void {
    up.breaker.leave();
    this.budget.give(up);
    if (status < 0) {
      this.metrics.shadow(backend, 'grpc', 'failed');
    } else {
      this.metrics.shadow(backend, 'grpc', 'mirrored');
      this.metrics.request(backend, 'grpc', 'shadow', status, null);
    }
  }
}
