/**
 * The HTTP auth service, as Ambassador's AuthService (`proto: http`) asks it: the request's method,
 * its path after --ext-auth-path-prefix, and its allowed headers (those always sent, and
 * --ext-auth-allowed-request-headers), with the body when include_body says so. A 2xx answer allows
 * the request: the answer's allowed authorization headers are set on it (Set-Cookie goes to the
 * client's answer instead), and `x-envoy-auth-headers-to-remove` names headers to remove. A 5xx is
 * the auth service failing, as Envoy takes it: no decision (--ext-auth-status-on-error, or
 * through under --ext-auth-failure-mode-allow), its words never returned. Any other answer is the
 * denial, returned to the client as it came: status, body, and the headers it may return (the
 * allowed authorization headers, and Content-Type for its body).
 *
 * Requests go over the gateway's own pooled keep-alive HTTP/1.1 client (upstream/http1-client.ts).
 */
import type { ConnectionOptions } from 'node:tls';
import { isIP } from 'node:net';
import { Http1Pool, type ResponseHandler, type ResponseHead, type UpstreamAttempt } from '../upstream/http1-client.js';
import type { ExtAuthConfig } from '../config/ext-auth.js';
import { CheckFailed, type AuthServiceClient, type CheckSubject, type ServiceAnswer } from './policy.js';
import type { AuthHeaderEdit } from '../../routing/policies/auth-edits.js';
import type { TlsIdentity } from '../upstream/grpc-sessions.js';

/** Sent to the auth service whatever --ext-auth-allowed-request-headers says (Ambassador's list), with Host. */
const ALWAYS_SENT = ['authorization', 'cookie', 'from', 'proxy-authorization', 'user-agent', 'x-forwarded-for', 'x-forwarded-host', 'x-forwarded-proto', 'host'];
/** Taken from its answer whatever --ext-auth-allowed-authorization-headers says (Ambassador's list). */
const ALWAYS_TAKEN = ['authorization', 'location', 'proxy-authenticate', 'set-cookie', 'www-authenticate'];
/** The largest answer (its body) read from the auth service; a larger one is a failure, never passed on. */
const MAX_ANSWER_BYTES = 1024 * 1024;
const REMOVE_HEADER = 'x-envoy-auth-headers-to-remove';
/** A check without a body still says `Content-Length: 0`, a GET's too, as Envoy's HTTP ext_authz frames every check. */
const NO_BODY = Buffer.alloc(0);

/** Where the auth service is dialled: its address, or what --resolve maps it to. */
export interface Dial {
  readonly host: string;
  readonly port: number;
  readonly tls?: ConnectionOptions | undefined;
}

export class HttpAuthClient implements AuthServiceClient {
  private readonly pool: Http1Pool;
  private readonly sent: ReadonlySet<string>;
  private readonly taken: ReadonlySet<string>;

  constructor(
    private readonly config: ExtAuthConfig,
    dial: Dial,
    connectTimeoutMs: number,
  ) {
    this.pool = new Http1Pool({ host: dial.host, port: dial.port, connections: config.maxConnections, connectTimeoutMs, maxHeadBytes: 64 * 1024, tls: dial.tls });
    this.sent = new Set([...ALWAYS_SENT, ...config.allowedRequestHeaders]);
    this.taken = new Set([...ALWAYS_TAKEN, ...config.allowedAuthorizationHeaders]);
  }

  check(subject: CheckSubject, signal: AbortSignal): Promise<ServiceAnswer> {
    const headers: string[] = [];
    const h = subject.headers;
    for (let i = 0; i < h.length; i += 2) if (this.sent.has(h[i]!)) headers.push(h[i]!, h[i + 1]!);
    if (subject.body !== null) headers.push('x-envoy-auth-partial-body', subject.partial ? 'true' : 'false');
    headers.push(...this.config.addHeaders);
    return new Promise<ServiceAnswer>((resolve, reject) => {
      const handler = new AnswerReader(this.taken, resolve, reject);
      signal.addEventListener('abort', () => handler.abort(signal.reason as Error), { once: true });
      this.pool.dispatch({ method: subject.method, path: `${this.config.pathPrefix}${subject.path}`, headers, body: subject.body ?? NO_BODY, headersTimeout: 0, bodyTimeout: 0 }, handler);
    });
  }

  close(): void {
    void this.pool.destroy().catch(() => undefined);
  }
}

/** Reads one answer of the auth service into a decision. */
class AnswerReader implements ResponseHandler {
  private attempt: UpstreamAttempt | undefined;
  private status = 0;
  private headers: string[] = [];
  private readonly chunks: Buffer[] = [];
  private size = 0;
  private done = false;

  constructor(
    private readonly taken: ReadonlySet<string>,
    private readonly resolve: (a: ServiceAnswer) => void,
    private readonly reject: (err: Error) => void,
  ) {}

  abort(err: Error): void {
    if (this.done) return;
    this.attempt?.abort(err);
    this.fail(err);
  }

  onConnect(attempt: UpstreamAttempt): void {
    this.attempt = attempt;
  }

  onHeaders(head: ResponseHead): boolean {
    this.status = head.status;
    this.headers = head.headers;
    return true;
  }

  onData(chunk: Buffer): boolean {
    this.size += chunk.length;
    if (this.size > MAX_ANSWER_BYTES) {
      this.abort(new CheckFailed('error', `an answer larger than ${MAX_ANSWER_BYTES} bytes`));
      return false;
    }
    this.chunks.push(chunk);
    return true;
  }

  onComplete(): void {
    if (this.status >= 500) return this.fail(new CheckFailed('error', `it answered ${this.status}`));
    if (this.done) return;
    this.done = true;
    const body = Buffer.concat(this.chunks, this.size);
    const h = this.headers;
    if (this.status >= 200 && this.status < 300) {
      const edits: AuthHeaderEdit[] = [];
      const answer: AuthHeaderEdit[] = [];
      const remove: string[] = [];
      for (let i = 0; i < h.length; i += 2) {
        const name = h[i]!.toLowerCase();
        if (name === REMOVE_HEADER) for (const n of h[i + 1]!.split(',')) remove.push(n.trim().toLowerCase());
        else if (!this.taken.has(name)) continue;
        // A cookie the auth service sets (a refreshed session) is for the client, not the model.
        else if (name === 'set-cookie') answer.push({ name, value: h[i + 1]!, append: true });
        else edits.push({ name, value: h[i + 1]!, append: false });
      }
      this.resolve({ allow: true, headers: edits, remove: remove.filter((n) => n !== '' && n !== 'host'), answer });
      return;
    }
    const returned: string[] = [];
    for (let i = 0; i < h.length; i += 2) {
      const name = h[i]!.toLowerCase();
      if (this.taken.has(name) || (name === 'content-type' && body.length > 0)) returned.push(name, h[i + 1]!);
    }
    this.resolve({ allow: false, status: this.status, headers: returned, body });
  }

  onError(err: Error & { code?: string }): void {
    this.fail(err instanceof CheckFailed ? err : new CheckFailed('error', err.code ?? err.message));
  }

  private fail(err: Error): void {
    if (this.done) return;
    this.done = true;
    this.reject(err);
  }
}

/** The TLS options of a dial to `host` (SNI unless it is an address), with the client certificate to present when there is one. */
export function tlsOptions(host: string, verify: boolean, ca: Buffer | undefined, identity?: TlsIdentity): ConnectionOptions {
  return { ...(isIP(host) === 0 ? { servername: host } : {}), rejectUnauthorized: verify, ...(ca ? { ca } : {}), ...identity };
}
