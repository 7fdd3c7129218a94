/**
 * The gRPC adapter of the request pipeline (gateway/pipeline/request.ts): one gRPC call as the
 * stages see it. It only translates: refusals into trailers-only statuses (grpc/answer.ts), a
 * SendFeedback's message into its token, and the forward into the beginning of the call it is a layer
 * of (grpc/call-start.ts, grpc/call.ts: the same object, which reads what the stages decided, the
 * token, the request read, as its own fields).
 */
import type { IncomingHttpHeaders, ServerHttp2Stream } from 'node:http2';
import type { Socket } from 'node:net';
import type { Allow, Deny, Gatekeeper, PendingVerdict } from '../auth/gate.js';
import { applyAuthEditsToObject } from '../../routing/policies/auth-edits.js';
import { grpcFrontEndCall } from '../edge/entry.js';
import { GrpcStatus, grpcStatusOf } from '../edge/errors.js';
import { stripMatchingPort } from '../../routing/emissary/edge-rules.js';
import { rawHeaderValue, type Peer } from '../edge/http-headers.js';
import { readSmallBody } from '../edge/small-body.js';
import type { KeptBody, Refusal } from '../pipeline/request.js';
import { ForwardedRequest } from '../forward/forwarded.js';
import { tokenFromFeedbackProto } from '../steer/answer-tag.js';
import { onlyMessage } from '../wire/grpc-message.js';
import { FEEDBACK_MAX_BYTES, type FeedbackReading } from '../steer/bandit-edge.js';
import type { StickyKeys } from '../steer/sticky-keys.js';
import type { NotRouted, Routed } from '../../routing/types.js';
import type { RefusedRequest } from '../observe/payload-tap.js';
import { answerTrailersOnly } from './answer.js';
import { parseGrpcTimeout } from './timeout.js';
import type { CallContext } from './call-context.js';

/** What a call asks of the gRPC proxy (grpc/proxy.ts) beyond what it shares with every call. */
export interface GrpcHost extends CallContext {
  readonly sticky: StickyKeys | undefined;
  /** Fail the call with INTERNAL: an unexpected error while handling it (`call`: forwarding had begun, it ends as its state says). */
  failed(stream: ServerHttp2Stream, backend: Routed['backend'] | undefined, err: unknown, call?: GrpcPipelineRequest): void;
}

/** The gate's view of a front-end call before its token names its deployment. */
const NOT_MATCHED: NotRouted = { ok: false, status: 404, reason: 'NO_ROUTE', info: '' };

/** The token and reward of a gRPC Feedback call's one message, or null. */
function tokenFromGrpcFeedback(frame: Buffer): FeedbackReading | null {
  const payload = onlyMessage(frame);
  const r = payload && tokenFromFeedbackProto(payload);
  return r?.token ? { token: r.token, reward: r.reward } : null;
}

export abstract class GrpcPipelineRequest extends ForwardedRequest {
  /** The call's request, read whole already (a feedback, for its token). */
  request: readonly Buffer[] | undefined;

  constructor(
    protected readonly proxy: GrpcHost,
    readonly stream: ServerHttp2Stream,
    /** The client's headers; the gate's allowance edits them, the call makes them the upstream's. */
    readonly headers: IncomingHttpHeaders,
    private readonly rawHeaders: string[],
    path: string,
    since: number,
    /** The client connection's peer and whether it is a trusted proxy. */
    protected readonly peer: Peer,
  ) {
    const authority = headers[':authority'] ?? headers.host ?? '';
    const host = peer.rules?.stripMatchingHostPort ? stripMatchingPort(authority, peer.localPort) : authority;
    super('grpc', 'POST', path, host, since, proxy.sticky, false, proxy.metrics, proxy.clock);
  }

  rawHeaderFields(): readonly string[] {
    return this.rawHeaders;
  }

  protected readHeader(name: string): string | undefined {
    return rawHeaderValue(this.rawHeaders, name);
  }

  clientAddress(): string | undefined {
    return this.peer.address;
  }

  peerTrusted(): boolean {
    return this.peer.trusted;
  }

  connectionScheme(): 'http' | 'https' {
    return this.peer.proto ?? 'http';
  }

  movedToHttps(location: string): void {
    // As Envoy answers a gRPC call on a require_tls route: the HTTP redirect itself (the client sees a non-200 :status).
    this.proxy.metrics.unroutedRequest('grpc', 'HTTPS_REDIRECT', GrpcStatus.UNKNOWN, this.since);
    if (!this.stream.destroyed && !this.stream.headersSent) this.stream.respond({ ':status': 301, location }, { endStream: true });
    this.proxy.observe?.answered(this.stream, this.headers, GrpcStatus.UNKNOWN);
  }

  frontEndCall(gate: Gatekeeper | undefined): boolean {
    return grpcFrontEndCall(this.headers, gate?.frontEndActive ?? false);
  }

  unrouted(d: NotRouted): void {
    const status = grpcStatusOf(d.reason);
    this.proxy.metrics.unroutedRequest('grpc', d.reason, status, this.since);
    answerTrailersOnly(this.stream, status, d.info, undefined, this.proxy.server.value);
    this.proxy.observe?.answered(this.stream, this.headers, status);
  }

  corsAnswered(): boolean {
    // CORS is a browser's, over REST: no gRPC call is a preflight.
    return false;
  }

  askGate(gate: Gatekeeper): PendingVerdict {
    const call = { rawHeaders: this.rawHeaders, socket: this.stream.session?.socket as Socket | undefined };
    return gate.grpc(this.headers, this.routed ?? NOT_MATCHED, call, this.table);
  }

  allowed(v: Allow): void {
    for (const name of v.strip) delete this.headers[name];
    // The auth service's edits, then a JWT's claim headers (pipeline/gate.ts set them before this).
    if (this.authEdits !== undefined) applyAuthEditsToObject(this.headers, this.authEdits);
  }

  denied(v: Deny): void {
    const status = v.grpcStatus ?? grpcStatusOf(v.reason);
    this.proxy.metrics.denied('grpc', v.tally, status, this.since);
    answerTrailersOnly(this.stream, status, v.message, v.metadata, this.proxy.server.value);
    this.proxy.observe?.answered(this.stream, this.headers, status, this.routed?.backend, this.logged(v.tally?.check ?? 'gate', status, v));
  }

  refuse(r: Refusal): void {
    const status = grpcStatusOf(r.reason);
    const backend = this.routed?.backend;
    // A routed call refused here (flow control, no gate in this process) is answered, never a predictor's outcome.
    if (backend !== undefined) this.proxy.metrics.refused(backend, 'grpc', status, this.since);
    answerTrailersOnly(this.stream, status, r.message, r.headers, this.proxy.server.value);
    this.proxy.observe?.answered(this.stream, this.headers, status, backend, this.logged(r.check, status, r));
  }

  /** A refusal of a logged predictor's call, for its decision record; undefined (nothing made) for every other route. */
  private logged(check: string, status: number, r: { readonly reason: string; readonly message: string }): RefusedRequest | undefined {
    const d = this.routed;
    return d !== undefined && d.backend.log !== null ? { check, status, reason: r.reason, message: r.message, decision: d, subject: this } : undefined;
  }

  gone(): boolean {
    return this.stream.destroyed || this.stream.closed;
  }

  onGone(listener: () => void): void {
    this.stream.once('close', listener);
  }

  override deadlineMs(now: number): number {
    const ms = parseGrpcTimeout(this.header('grpc-timeout'));
    return ms === undefined ? Infinity : ms - (now - this.since);
  }

  isFeedback(): boolean {
    return this.path.endsWith('/SendFeedback');
  }

  readFeedback(done: (reading: FeedbackReading | null) => void): void {
    const stream = this.stream;
    readSmallBody(stream, FEEDBACK_MAX_BYTES, (body, read) => {
      if (body !== null) {
        this.request = [body];
        done(tokenFromGrpcFeedback(body));
        return;
      }
      // Over the limit: what was read is put back for the call to stream; it is not attributed.
      for (let i = read!.length - 1; i >= 0; i--) stream.unshift(read![i]!);
      done(null);
    });
  }

  keepBody(kept: KeptBody): void {
    this.request = kept as readonly Buffer[];
  }

  forward(): void {
    const routed = this.routed!;
    let begun = false;
    try {
      this.begin(routed, this.proxy.upstreams.for(routed.backend));
      begun = true;
      this.start();
    } catch (err) {
      // Begun, the call ends as its state says (`abort`); before that, only flow control is told.
      if (!begun) this.ended(false);
      this.proxy.failed(this.stream, routed.backend, err, begun ? this : undefined);
    }
  }

  /** Forwarding has begun (`begin`): admitted, the call's attempts follow (grpc/call.ts). */
  protected abstract start(): void;

  /**
   * Last resort (grpc/proxy.ts): an unexpected error while forwarding the call ends the call, not
   * the process: INTERNAL (or, once answered, trailers or a reset), whatever state it was in.
   */
  abstract abort(err: unknown): void;

  redirected(): void {
    // routing/ drops a gRPC Mapping with host_redirect: no call reaches here with one.
    this.failed(new Error(`gRPC route ${this.routed?.backend.id ?? ''} redirects: refused when parsed, it cannot be routed`));
  }

  failed(err: unknown): void {
    this.proxy.failed(this.stream, this.routed?.backend, err);
  }
}
