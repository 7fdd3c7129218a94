/**
 * A process's payload logger (the request taps' `PayloadLogger`, observe/payload-tap.ts): for a
 * request of a predictor with a `seldon.io/gateway-log` policy, whether it is logged at all, and if
 * so its recorder, which holds the bodies (each up to the policy's cap) and what happened, and
 * when the request ends makes its events (event.ts) and hands them to the sinks.
 *
 * Whether a request is logged, decided once when it is forwarded (or refused): not when its
 * `Seldon-Skip-Logging` is true (`true`, `on`, `1`, as Seldon's executor reads it); else drawn at
 * the policy's `sample` rate, or, with a `sampleKey`, by a hash of the key's value (a header, or a
 * claim of the verified JWT), so one caller's requests are all in or all out (a request without the
 * key is drawn on its own). What is logged: the request event (the body the client sent; a
 * feedback's as a feedback event), the response event (the body the client received, when a model
 * answered), the decision record (decision.ts); a refused request has its decision record only.
 * `requestid` is the client's `Seldon-Puid`, else the request id the model got (`x-request-id`).
 *
 * Nothing here runs for a route without a policy: the taps test `backend.log` first.
 */
import { randomUUID } from 'node:crypto';
import { stickyPoint } from '../../routing/steering/shares.js';
import type { LogPolicy } from '../../routing/policies/log.js';
import type { Protocol, Routed } from '../../routing/types.js';
import type { LogSubject, PayloadLogger, RefusedRequest, RequestRecorder } from '../observe/payload-tap.js';
import { joinPieces } from '../wire/message-body.js';
import { decisionJson, type AttemptRecord, type Outcome } from './decision.js';
import { fixedAttributes, newEvent, type EventHead, type LogEvent } from './event.js';
import { MESSAGE_HEAD } from '../wire/grpc-message.js';

/** Where a logged request's events go: the process's sinks (sinks.ts). */
export interface EventSink {
  emit(sinks: readonly string[], e: LogEvent): void;
}

const PROTOBUF = 'application/protobuf';
const JSON_TYPE = 'application/json';

/** Seldon's executor's reading of `Seldon-Skip-Logging` (payload.MetaData.GetAsBoolean). */
function skips(v: string | undefined): boolean {
  if (v === undefined) return false;
  for (const part of v.split(',')) {
    const p = part.trim().toLowerCase();
    if (p === 'true' || p === 'on' || p === '1') return true;
  }
  return false;
}

/** The request target without its query (a query can carry a credential: `?access_token=`). */
const pathOnly = (p: string | undefined): string => {
  if (p === undefined) return '';
  const q = p.indexOf('?');
  return q < 0 ? p : p.slice(0, q);
};

const isFeedback = (protocol: Protocol, path: string): boolean => (protocol === 'grpc' ? path.endsWith('/SendFeedback') : path.endsWith('/feedback'));

/** A body, kept up to a cap; its whole length counted. */
class Body {
  private readonly chunks: Buffer[] = [];
  private kept = 0;
  length = 0;

  constructor(private readonly cap: number) {}

  add(chunk: Buffer): void {
    this.length += chunk.length;
    if (this.kept >= this.cap) return;
    const part = this.kept + chunk.length <= this.cap ? chunk : chunk.subarray(0, this.cap - this.kept);
    this.chunks.push(part);
    this.kept += part.length;
  }

  bytes(): Buffer {
    // One piece (the exchange's kept body, when it holds one whole) is the log's too: no second copy.
    return joinPieces(this.chunks, this.kept);
  }
}

/** A payload as logged: REST bodies as they are; gRPC's first message without its length prefix. `cut` when over `cap`. */
function payload(protocol: Protocol, body: Body, cap: number): { data: Buffer; length?: number } {
  const all = body.bytes();
  if (protocol === 'rest') return body.length > cap ? { data: all, length: body.length } : { data: all };
  if (all.length < MESSAGE_HEAD) return { data: Buffer.alloc(0) };
  const size = all.readUInt32BE(1);
  const data = all.subarray(MESSAGE_HEAD, MESSAGE_HEAD + Math.min(size, cap));
  return size > cap ? { data, length: size } : { data };
}

export class PayloadLog implements PayloadLogger {
  constructor(
    private readonly sinks: EventSink,
    /** The sampling draws (seeded with --random-seed, for tests and benchmarks). */
    private readonly random: () => number = Math.random,
  ) {}

  /** Whether this request is logged under `policy` (Seldon-Skip-Logging, the sample). */
  private logged(policy: LogPolicy, s: LogSubject): boolean {
    if (s.header !== undefined && skips(s.header('seldon-skip-logging'))) return false;
    const rate = policy.sample;
    if (rate >= 1) return true;
    if (rate <= 0) return false;
    const key = policy.sampleKey;
    if (key !== null) {
      const v = key.kind === 'header' ? s.header?.(key.name) : s.claims?.[key.name];
      // The same caller, the same verdict: a point of its key's value (not the sticky pick's: another hash input).
      if (v !== undefined && v !== null) return stickyPoint(`log\u0000${typeof v === 'string' ? v : JSON.stringify(v)}`) < rate;
    }
    return this.random() < rate;
  }

  begin(protocol: Protocol, decision: Routed, subject: LogSubject): RequestRecorder | undefined {
    const policy = decision.backend.log!;
    return this.logged(policy, subject) ? new Recorder(this.sinks, protocol, decision, subject, policy) : undefined;
  }

  refused(protocol: Protocol, r: RefusedRequest): void {
    const policy = r.decision.backend.log!;
    if (!policy.decisions || !this.logged(policy, r.subject)) return;
    const grpc = protocol === 'grpc';
    const outcome: Outcome = {
      status: grpc ? 200 : r.status,
      grpcStatus: grpc ? r.status : undefined,
      latencyMs: r.subject.since === undefined ? 0 : performance.now() - r.subject.since,
      upstreamMs: null,
      attempts: [],
      shadowsSent: [],
      refused: { check: r.check, reason: r.reason, message: r.message },
    };
    const s = r.subject;
    const record = decisionJson(protocol, grpc ? 'POST' : (s.method ?? ''), pathOnly(s.path), r.decision, s, outcome, s.credit);
    const head = eventHead(r.decision, policy, s.header?.('seldon-puid') ?? s.header?.('x-request-id') ?? randomUUID());
    this.sinks.emit(policy.sinks, newEvent(head, 'decision', JSON_TYPE, record));
  }
}

/** A backend's attributes as event.ts `fixedAttributes` writes them, under the policy they were written for (a table change can give a backend a new one). */
const fixedByBackend = new WeakMap<Routed['backend'], { readonly policy: LogPolicy; readonly text: string }>();

function eventHead(d: Routed, policy: LogPolicy, requestId: string, translated?: string): EventHead {
  const o = d.backend.origin;
  const head: EventHead = { requestId, modelId: policy.modelId, service: o.deployment, namespace: o.namespace, endpoint: o.predictor, protocol: policy.protocol, fixed: undefined, translated };
  let fixed = fixedByBackend.get(d.backend);
  if (fixed?.policy !== policy) fixedByBackend.set(d.backend, (fixed = { policy, text: fixedAttributes(head) }));
  // Not set above: one shape for every head.
  (head as { fixed?: string }).fixed = fixed.text;
  return head;
}

/** One logged request, from its forward to its end. */
class Recorder implements RequestRecorder {
  private readonly request: Body | undefined;
  private readonly response: Body | undefined;
  private readonly feedback: boolean;
  private responseContentType: string | undefined;
  /** REST: the codings the gateway decoded the request from and compressed the answer in (the bodies kept are plain). */
  private requestEncoding: string | undefined;
  private responseEncoding: string | undefined;
  private translatedAs: string | undefined;
  private readonly attempts: AttemptRecord[] = [];
  private readonly shadows: string[] = [];
  /** A feedback's credit as steering decided it: the request lets go of it once committed. */
  private readonly credit: LogSubject['credit'];
  private done = false;

  constructor(
    private readonly sinks: EventSink,
    private readonly protocol: Protocol,
    private readonly decision: Routed,
    private readonly subject: LogSubject,
    private readonly policy: LogPolicy,
  ) {
    this.feedback = isFeedback(protocol, pathOnly(decision.upstreamPath));
    this.credit = subject.credit;
    // gRPC: the message's length prefix is kept with it, then cut off.
    const cap = policy.maxBodyBytes + (protocol === 'grpc' ? MESSAGE_HEAD : 0);
    if (policy.request || (this.feedback && policy.response)) this.request = new Body(cap);
    if (policy.response && !this.feedback) this.response = new Body(cap);
  }

  requestBody(chunk: Buffer): void {
    this.request?.add(chunk);
  }

  responseType(contentType: string | undefined): void {
    this.responseContentType = contentType;
  }

  responseBody(chunk: Buffer): void {
    this.response?.add(chunk);
  }

  coded(direction: 'request' | 'response', coding: string | undefined): void {
    if (direction === 'request') this.requestEncoding = coding;
    else this.responseEncoding = coding;
  }

  translated(label: string): void {
    this.translatedAs = label;
  }

  attempted(host: string, port: number, hedge = false): void {
    const a: AttemptRecord = { endpoint: `${host.includes(':') ? `[${host}]` : host}:${port}` };
    if (hedge) a.hedge = true;
    this.attempts.push(a);
  }

  attemptStatus(status: number, n = this.attempts.length - 1): void {
    const a = this.attempts[n];
    if (a !== undefined) a.status = status;
  }

  attemptFailed(error: string, n = this.attempts.length - 1): void {
    const a = this.attempts[n];
    if (a !== undefined) a.failure = error;
  }

  attemptLost(n: number): void {
    const a = this.attempts[n];
    if (a !== undefined) a.lost = true;
  }

  attemptWon(n: number): void {
    const a = this.attempts[n];
    if (a !== undefined) a.won = true;
  }

  shadow(predictor: string): void {
    this.shadows.push(predictor);
  }

  end(status: number, grpcStatus: number | undefined, upstreamSeconds: number | null, requestId: string | undefined): void {
    if (this.done) return;
    this.done = true;
    const { protocol, policy, subject: s } = this;
    const head = eventHead(this.decision, policy, s.header?.('seldon-puid') ?? requestId ?? randomUUID(), this.translatedAs);
    const sinks = policy.sinks;
    const grpc = protocol === 'grpc';
    const cap = policy.maxBodyBytes;
    if (this.request !== undefined) {
      const p = payload(protocol, this.request, cap);
      const type = grpc ? PROTOBUF : (s.header?.('content-type') ?? JSON_TYPE);
      this.sinks.emit(sinks, newEvent(head, this.feedback ? 'feedback' : 'request', type, p.data, p.length, this.requestEncoding));
    }
    // A model answered: the answer as the client got it.
    if (this.response !== undefined && upstreamSeconds !== null) {
      const p = payload(protocol, this.response, cap);
      this.sinks.emit(sinks, newEvent(head, 'response', grpc ? PROTOBUF : (this.responseContentType ?? JSON_TYPE), p.data, p.length, this.responseEncoding));
    }
    if (policy.decisions) {
      const outcome: Outcome = {
        status,
        grpcStatus,
        latencyMs: s.since === undefined ? 0 : performance.now() - s.since,
        upstreamMs: upstreamSeconds === null ? null : upstreamSeconds * 1000,
        attempts: this.attempts,
        shadowsSent: this.shadows,
      };
      const record = decisionJson(protocol, grpc ? 'POST' : (s.method ?? ''), pathOnly(s.path), this.decision, s, outcome, this.credit);
      this.sinks.emit(sinks, newEvent(head, 'decision', JSON_TYPE, record));
    }
  }
}
