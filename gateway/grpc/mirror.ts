/**
 * gRPC mirroring (docs/routing.md#shadows): a fire-and-forget copy of a call to each chosen shadow's
 * gRPC upstream, sent once the client's request half has ended within the body-size limit
 * (unary calls, client streams). Same path and metadata, `:authority` with `-shadow` inserted.
 *
 * The copy shares nothing with the primary but the (immutable) body chunks: it runs on the
 * shadow upstream's own sessions, under that upstream's breaker (admission and settlement are
 * upstream/mirror.ts, shared with REST). Admitted, it waits for a stream as any call does (a
 * session at the server's SETTINGS_MAX_CONCURRENT_STREAMS holds new streams until one ends), to
 * the shadow route's timeout from admission; its answer is read, discarded and counted.
 */
import http2, { type ClientHttp2Stream, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http2';
import { shadowHost } from '../edge/http-headers.js';
import type { GatewayMetrics } from '../observe/metrics.js';
import type { CallTap } from '../observe/observed-grpc.js';
import type { GrpcUpstreams } from '../upstream/grpc-sessions.js';
import type { MirrorBudget } from '../upstream/mirror-budget.js';
import { MirrorAdmission, mirrorTimeoutMs } from '../upstream/mirror.js';
import type { Backend, Mirror } from '../../routing/types.js';

const { NGHTTP2_CANCEL, NGHTTP2_FLAG_END_STREAM } = http2.constants;
const ignore = (): void => undefined;

/**
 * gRPC status of an answer: grpc-status when present, else the HTTP status (non-gRPC reply). A
 * status outside gRPC's codes (0..16) is UNKNOWN, as gRPC clients read it: a model cannot make up
 * metric labels.
 */
export function answerStatus(headers: OutgoingHttpHeaders, httpStatus: number): number {
  const s = headers['grpc-status'];
  if (typeof s === 'string' && s !== '') {
    const n = Number(s);
    if (Number.isInteger(n)) return n >= 0 && n <= 16 ? n : 2;
  }
  return httpStatus === 200 ? 2 /* UNKNOWN: a gRPC answer without a status */ : httpStatus;
}

class MirrorCall {
  private done = false;
  private status = -1;
  private httpStatus = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly sentAt = performance.now();
  /** Time to the copy's response headers, as the primary's upstream latency is measured. */
  private seconds: number | null = null;

  constructor(
    private readonly backend: Backend,
    stream: ClientHttp2Stream,
    private readonly settle: (backend: Backend, status: number, seconds: number | null) => void,
  ) {
    const s = stream;
    s.on('error', ignore);
    s.on('response', (headers: IncomingHttpHeaders, flags: number) => {
      this.seconds = (performance.now() - this.sentAt) / 1000;
      this.httpStatus = Number(headers[':status']);
      if (flags & NGHTTP2_FLAG_END_STREAM) this.status = answerStatus(headers, this.httpStatus);
    });
    s.on('trailers', (trailers: IncomingHttpHeaders) => {
      this.status = answerStatus(trailers, this.httpStatus);
    });
    s.resume(); // read and discard
    s.once('close', () => this.finish());
    const ms = mirrorTimeoutMs(backend);
    if (ms > 0) {
      this.timer = setTimeout(() => s.close(NGHTTP2_CANCEL), ms);
      this.timer.unref();
    }
  }

  private finish(): void {
    if (this.done) return;
    this.done = true;
    if (this.timer) clearTimeout(this.timer);
    this.settle(this.backend, this.status, this.seconds);
  }
}

export class GrpcMirrors extends MirrorAdmission {
  constructor(
    private readonly upstreams: GrpcUpstreams,
    budget: MirrorBudget,
    metrics: GatewayMetrics,
    maxBodyBytes: number,
  ) {
    super(budget, metrics, 'grpc', maxBodyBytes);
  }

  /** `headers`: the primary's upstream headers (copied here, never changed); `tap`: the primary's, which traces each shadow. */
  send(mirrors: readonly Mirror[], headers: OutgoingHttpHeaders, body: readonly Buffer[], tap?: Pick<CallTap, 'shadow'>): void {
    const authority = String(headers[':authority'] ?? '');
    for (const m of mirrors) {
      const up = this.upstreams.for(m.backend);
      if (!this.admit(up, m.backend)) continue;
      let stream: ClientHttp2Stream;
      const copy: OutgoingHttpHeaders = { ...headers, ':authority': shadowHost(authority), ':scheme': up.tls ? 'https' : 'http' };
      const traced = tap?.shadow(m.backend, copy);
      try {
        stream = up.request((traced?.carrier as OutgoingHttpHeaders | undefined) ?? copy).stream;
      } catch {
        traced?.end(-1, true);
        this.settle(up, m.backend, true, 0, null);
        continue;
      }
      // status -1: the mirror ended (reset, timeout, unreachable) without an answer.
      new MirrorCall(m.backend, stream, (backend, status, seconds) => {
        traced?.end(status, status < 0);
        this.settle(up, backend, status < 0, status, seconds);
      });
      for (const chunk of body) stream.write(chunk);
      stream.end();
    }
  }
}
