/**
 * What the request tap (request-tap.ts) tells a payload logger (gateway/payload-log/,
 * docs/payload-logging.md) of a request whose predictor has a `seldon.io/gateway-log` policy: the
 * bodies both ways, each attempt and shadow, the end; and the requests the gateway refused.
 * Types only: the logger implements them, so observe/ imports nothing of it.
 *
 * A route without a policy never reaches here: the taps test `backend.log !== null` first.
 */
import type { Protocol, RouteTable, Routed } from '../../routing/types.js';

/** What the pipeline decided for a request, as the logger reads it (the pipeline request implements it). */
export interface LogSubject {
  /** The request line: REST's method and target (gRPC's is POST and the method's path). */
  readonly method?: string;
  readonly path?: string;
  /** Its headers as the model gets them (a JWT's claim headers in). */
  header?(name: string): string | undefined;
  /** When it reached the gateway (performance.now() ms). */
  readonly since?: number | undefined;
  /** The verified JWT's claims, when the route checks one. */
  readonly claims?: Readonly<Record<string, unknown>> | undefined;
  /** The table it was matched on (steering: a rollout's steps, a bandit's run). */
  readonly table?: RouteTable | undefined;
  /** A bandit feedback's credit, as steering decided it (steer/bandit-edge.ts `FeedbackCredit`). */
  readonly credit?: { readonly arm: string; readonly outcome?: string | undefined; readonly reward?: readonly unknown[] | undefined } | undefined;
  /** REST: a sticky cookie minted for it while matching (its pick took a sticky point). */
  readonly minted?: string | undefined;
  /** Sent to its predictor's fallback (pipeline/fallback.ts): why, and the predictor that fell back. */
  readonly fellBack?: { readonly reason: string; readonly from: { readonly id: string } } | undefined;
}

/** One logged request's recorder, fed by its tap; made by `PayloadLogger.begin`. */
export interface RequestRecorder {
  /** A piece of the request body as the client sent it (REST: whole or chunks, decoded when the gateway decodes it; gRPC: DATA). */
  requestBody(chunk: Buffer): void;
  /** The answer's Content-Type (REST), once its head is sent. */
  responseType(contentType: string | undefined): void;
  /** A piece of the answer as the client received it (before the gateway compressed it: the plain bytes). */
  responseBody(chunk: Buffer): void;
  /**
   * REST: the request body arrived in `coding` and was decoded for the model, or the answer goes to
   * the client compressed in `coding` (undefined: it does not after all); the bodies logged are plain.
   */
  coded(direction: 'request' | 'response', coding: string | undefined): void;
  /** The request was translated between protocols (`seldon->v2`); the bodies logged are the client's message and the answer as the client got it. */
  translated(label: string): void;
  /** An attempt goes to `host:port`; `hedge`: beside one still in flight. */
  attempted(host: string, port: number, hedge?: boolean): void;
  /** Attempt `n`'s (absent: the last one's) answer head, or why it failed. */
  attemptStatus(status: number, n?: number): void;
  attemptFailed(error: string, n?: number): void;
  /** Hedged: attempt `n` was cut, another's answer won; attempt `n`'s answer is the client's. */
  attemptLost(n: number): void;
  attemptWon(n: number): void;
  /** A shadow copy was sent to `predictor`. */
  shadow(predictor: string): void;
  /**
   * The request is over: the status the client got (HTTP; on gRPC the :status, with `grpcStatus`),
   * the upstream's time to its answer head (null: none answered), the request id the upstream got.
   */
  end(status: number, grpcStatus: number | undefined, upstreamSeconds: number | null, requestId: string | undefined): void;
}

/** A request the gateway refused (a gate check, flow control) before it reached a model. */
export interface RefusedRequest {
  /** Which check: jwt, oauth, ext-auth, rate-limit, flow-control, gate. */
  readonly check: string;
  readonly reason: string;
  readonly message: string;
  /** The status the client got (HTTP; gRPC: the gRPC status). */
  readonly status: number;
  readonly decision: Routed;
  readonly subject: LogSubject;
}

export interface PayloadLogger {
  /** A recorder for a routed request of a logged predictor, or undefined when this request is not logged (sampled out, Seldon-Skip-Logging). */
  begin(protocol: Protocol, decision: Routed, subject: LogSubject): RequestRecorder | undefined;
  /** A refused request of a logged predictor: its decision record (no request or response event). */
  refused(protocol: Protocol, r: RefusedRequest): void;
}
