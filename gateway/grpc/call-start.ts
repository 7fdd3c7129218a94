/**
 * The start of a forwarded gRPC call and its client's half (the layer of the call between the pipeline's
 * adapter, grpc/grpc-request.ts, and the attempts and answer, grpc/call.ts): the call's state, afresh
 * for each forward (`begin`; a fallback's forward begins again on the same call), its admission, the
 * client's request chunks (kept for a replay and the mirrors, grpc/kept-request.ts) and its deadlines
 * (grpc/call-deadline.ts: the client's grpc-timeout from arrival, the route timeout from the end of the
 * request until the response headers).
 */
import type { OutgoingHttpHeaders } from 'node:http2';
import { GrpcStatus } from '../edge/errors.js';
import type { ForwardUpstream } from '../forward/forwarded.js';
import { InFlight } from '../forward/in-flight.js';
import type { OutcomeKind } from '../forward/outcome.js';
import type { CallTap } from '../observe/observed-grpc.js';
import type { GrpcUpstream } from '../upstream/grpc-sessions.js';
import type { Routed } from '../../routing/types.js';
import { answerTrailersOnly } from './answer.js';
import type { GrpcAttempt } from './attempt.js';
import { CallDeadline, type DeadlineOwner } from './call-deadline.js';
import { listenToClient, type ClientStreamOwner } from './client-stream.js';
import { GrpcPipelineRequest } from './grpc-request.js';
import { KeptRequest } from './kept-request.js';
import { upstreamMetadata } from './metadata.js';

const OVERLOADED = { 'x-envoy-overloaded': 'true' } as const;
/** The Module's suppress_envoy_headers: a breaker's refusal without x-envoy-overloaded. */
const NO_FIELDS = {} as const;

export abstract class CallStart extends GrpcPipelineRequest implements DeadlineOwner, ClientStreamOwner {
  declare protected up: GrpcUpstream;
  /** The client's grpc-timeout and the route timeout, before the response headers. */
  protected deadline!: CallDeadline;
  /** The attempt in flight and, hedged, its rivals: made by its first forward (a request refused before it has none), kept for a fallback's. */
  protected flight!: InFlight<GrpcAttempt>;
  protected attempts = 0;
  /** Request chunks kept for replay and mirrors. */
  protected kept!: KeptRequest;
  protected requestEnded = false;
  protected responseStarted = false;
  protected upstreamEnded = false;
  protected trailers: OutgoingHttpHeaders | undefined = undefined;
  protected httpStatus = 0;
  /** Access log and tracing: set only when one applies to this call. */
  protected tap: CallTap | undefined = undefined;

  protected override begin(decision: Routed, up: ForwardUpstream): void {
    super.begin(decision, up);
    // Cleared when a forward finishes: a fallback's forward reuses it.
    if (this.flight === undefined) this.flight = new InFlight();
    this.status = GrpcStatus.CANCELLED;
    this.attempts = 0;
    this.requestEnded = false;
    this.responseStarted = false;
    this.upstreamEnded = false;
    this.trailers = undefined;
    this.httpStatus = 0;
    const ctx = this.proxy;
    // Taken as forwarding begins, before its headers become the upstream's.
    this.tap = ctx.observe?.begin(this.stream, this.headers, decision, this.up.name, this);
    upstreamMetadata(this.headers, this.peer, decision.backend);
    // A Mapping's `rewrite` (Emissary's default `/` included) names the method the model is called with.
    if (this.headers[':path'] !== decision.upstreamPath) this.headers[':path'] = decision.upstreamPath;
    this.kept = new KeptRequest(ctx.retryBufferBytes, decision.mirrors, ctx.mirrors);
    // After waiting under flow control, the client's deadline runs from the call's arrival, the wait included.
    this.deadline = new CallDeadline(this, this.clock, this.headers['grpc-timeout'], this.flow !== undefined ? this.since : undefined);
  }

  /** Done with every attempt in flight (the call is cut: client gone, deadline, idle, a fault). */
  protected abstract dropAll(kind?: OutcomeKind): void;
  /** The call is over: its attempts closed, its client's stream let go, counted and settled. */
  protected abstract finish(): void;
  abstract deadlineExpired(why: 'client' | 'route'): void;
  abstract upstreamResumed(): void;
  abstract trailersWanted(): void;
  abstract idle(): void;

  protected who(): string {
    return this.proxy.internalDetail ? `${this.up.name} (${this.backend.id})` : this.backend.id;
  }

  protected answerOverflow(info: string): void {
    answerTrailersOnly(this.stream, GrpcStatus.UNAVAILABLE, info, this.proxy.suppressEnvoyHeaders === true ? NO_FIELDS : OVERLOADED, this.proxy.server.value);
    this.tap?.end(GrpcStatus.UNAVAILABLE, 0, null);
  }

  protected start(): void {
    const client = this.stream;
    if (client.destroyed || client.closed) {
      // The client left while the call waited (auth, rate limits): its 'close' has been and gone. Counted, nothing went upstream.
      this.done = true;
      this.tap?.end(this.status, 0, null);
      this.settle();
      return;
    }
    if (!this.admit(GrpcStatus.UNAVAILABLE)) return;
    const request = this.request;
    listenToClient(client, this, request === undefined, this.backend.idleTimeoutMs);
    this.deadline.startClient();
    this.headers[':scheme'] = this.up.tls ? 'https' : 'http';
    if (request !== undefined) {
      // Read whole already (feedback, for its token; kept for a fallback's forward): sent as one, and the request has ended.
      if (this.tap !== undefined) for (const chunk of request) this.tap.received(chunk);
      this.kept.whole(request);
      this.dispatch();
      this.clientEnded();
      return;
    }
    this.dispatch();
  }

  // ---- client side ---------------------------------------------------------------------------

  clientData(chunk: Buffer): void {
    if (this.done) return;
    if (this.tap !== undefined) this.tap.received(chunk);
    this.kept.keep(chunk);
    // The upstream is slower than the client: it reads on once the attempt took what was written.
    const a = this.flight.current;
    if (a !== undefined && !a.write(chunk)) this.stream.pause();
  }

  clientEnded(): void {
    this.requestEnded = true;
    if (this.done) return;
    this.flight.current?.stream.end();
    if (!this.responseStarted) this.deadline.startRoute(this.routeBudgetMs());
    if (this.kept.forMirror) {
      this.proxy.mirrors.send(this.decision.mirrors, { ...this.headers }, this.kept.chunks ?? [], this.tap);
      this.kept.mirrored();
    }
  }

  /** The client reset the stream or its connection closed: cancel upstream at once. */
  clientClosed(): void {
    if (this.done) return;
    this.status = GrpcStatus.CANCELLED;
    this.dropAll();
    this.finish();
  }

  /** The client's half has ended, its chunks kept, and no answer has begun: it can go again whole. */
  protected resendable(): boolean {
    return this.requestEnded && this.kept.forRetry && !this.responseStarted;
  }
}
