/**
 * A pipeline request without a protocol, for the stages' unit tests: what a stage asks of the
 * adapter is recorded in `calls` (`refuse:503 AUTH_BACKEND_UNAVAILABLE`, `forward`…), and what the
 * adapter would answer (a gate verdict, a feedback's body) is set by the test.
 */
import type { Redirect } from '../../../routing/emissary/mapping-policy.js';
import type { Allow, Deny, Gatekeeper, PendingVerdict } from '../../../gateway/auth/gate.js';
import { PipelineRequest, type KeptBody, type Refusal } from '../../../gateway/pipeline/request.js';
import type { FeedbackReading } from '../../../gateway/steer/bandit-edge.js';
import type { StickyKeys } from '../../../gateway/steer/sticky-keys.js';
import type { CorsPolicy, NotRouted, Protocol } from '../../../routing/types.js';

export interface RecordingOptions {
  readonly kind?: Protocol;
  readonly method?: string;
  readonly headers?: Record<string, string>;
  readonly sticky?: StickyKeys;
  readonly frontEnd?: boolean;
  /** `frontEndCall` answers this. */
  readonly frontEndCall?: boolean;
  /** `corsAnswered` answers this. */
  readonly preflight?: boolean;
  /** `askGate` answers this (or what this function gives, for the request as matched). */
  readonly verdict?: PendingVerdict | ((r: PipelineRequest) => PendingVerdict);
  /** `readFeedback` hands this over, at once or (`later`) when the test calls `feedbackRead()`. */
  readonly feedback?: FeedbackReading | null;
  readonly later?: boolean;
  /** `isFeedback` answers this. */
  readonly isFeedback?: boolean;
}

export class RecordingRequest extends PipelineRequest {
  readonly calls: string[] = [];
  private pendingFeedback: ((r: FeedbackReading | null) => void) | undefined;

  constructor(
    path: string,
    private readonly o: RecordingOptions = {},
  ) {
    super(o.kind ?? 'rest', o.method ?? 'POST', path, 'gw.example', 0, o.sticky, o.frontEnd ?? false);
  }

  protected readHeader(name: string): string | undefined {
    return (this.o.headers ?? {})[name];
  }

  rawHeaderFields(): readonly string[] {
    return Object.entries(this.o.headers ?? {}).flat();
  }

  clientAddress(): string | undefined {
    return '127.0.0.1';
  }

  peerTrusted(): boolean {
    return false;
  }

  connectionScheme(): 'http' | 'https' {
    return 'http';
  }

  movedToHttps(location: string): void {
    this.calls.push(`movedToHttps:${location}`);
  }

  /** Whether the client left (set by the test). */
  left = false;

  frontEndCall(gate: Gatekeeper | undefined): boolean {
    return gate !== undefined && (this.o.frontEndCall ?? false);
  }
  unrouted(d: NotRouted): void {
    this.calls.push(`unrouted:${d.status} ${d.reason}`);
  }
  corsAnswered(policy: CorsPolicy): boolean {
    this.calls.push(`cors:${policy.origins.join(',')}`);
    return this.o.preflight ?? false;
  }
  redirected(r: Redirect): void {
    this.calls.push(`redirected:${r.status} ${r.host}`);
  }
  askGate(): PendingVerdict {
    this.calls.push('askGate');
    const v = this.o.verdict!;
    return typeof v === 'function' ? v(this) : v;
  }
  allowed(v: Allow): void {
    this.calls.push(`allowed:${v.strip.join(',')}`);
  }
  denied(v: Deny): void {
    this.calls.push(`denied:${v.status} ${v.reason}`);
  }
  refuse(r: Refusal): void {
    this.calls.push(`refuse:${r.status} ${r.reason}`);
  }
  gone(): boolean {
    return this.left;
  }
  onGone(): void {
    // Nothing waits on a recording request's client.
  }
  isFeedback(): boolean {
    return this.o.isFeedback ?? false;
  }
  readFeedback(done: (reading: FeedbackReading | null) => void): void {
    this.calls.push('readFeedback');
    if (this.o.later) this.pendingFeedback = done;
    else done(this.o.feedback ?? null);
  }
  /** The feedback's body has been read (`later`). */
  feedbackRead(): void {
    this.pendingFeedback!(this.o.feedback ?? null);
  }
  keepBody(kept: KeptBody): void {
    this.calls.push(`keepBody:${Array.isArray(kept) ? kept.length : kept === null ? 'none' : (kept as Buffer).length}`);
  }
  forward(): void {
    this.calls.push(`forward:${this.routed?.backend.id ?? '-'}`);
  }
  failed(err: unknown): void {
    this.calls.push(`failed:${(err as Error).message}`);
  }
}
