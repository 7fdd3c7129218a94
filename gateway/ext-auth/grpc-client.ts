/**
 * The gRPC auth service, as Ambassador's AuthService (`proto: grpc`) and Envoy's ext_authz ask it:
 * one unary `envoy.service.auth.v3.Authorization/Check` per request, the `CheckRequest` written by
 * envoy-authz-wire.ts (every request header, merged as Envoy merges them, the body when include_body
 * says so), the `CheckResponse` read there. OK allows with its `OkHttpResponse` edits; any other
 * status denies with its `DeniedHttpResponse` (status, default 403, or 401 for UNAUTHENTICATED;
 * headers; body). A call that ends without a CheckResponse (a gRPC error status, a reset, bytes
 * that do not decode) is a failure, never a decision.
 *
 * Calls go over the gateway's own pooled HTTP/2 sessions (upstream/grpc-sessions.ts), with no new
 * dependency: the messages are small and hand-encoded.
 */
import http2, { type ClientHttp2Stream, type IncomingHttpHeaders } from 'node:http2';
import { GrpcUpstream, type TlsIdentity } from '../upstream/grpc-sessions.js';
import type { ExtAuthConfig } from '../config/ext-auth.js';
import { CheckFailed, type AuthServiceClient, type CheckSubject, type ServiceAnswer } from './policy.js';
import { MalformedCheckResponse, decodeCheckResponse, encodeCheckRequest } from './envoy-authz-wire.js';
import { MESSAGE_HEAD, framesOneMessage, lengthPrefixed } from '../wire/grpc-message.js';
import type { AuthHeaderEdit } from '../../routing/policies/auth-edits.js';

const CHECK_PATH = '/envoy.service.auth.v3.Authorization/Check';
/** The largest CheckResponse read; a larger one is a failure. */
const MAX_ANSWER_BYTES = 1024 * 1024;

export interface GrpcDialSettings {
  readonly resolve: ReadonlyMap<string, { host: string; port: number }>;
  readonly connectTimeoutMs: number;
  readonly ca: Buffer | undefined;
  readonly identity: TlsIdentity | undefined;
}

/** `CheckRequest.attributes.request.http.headers`: names lower case, repeated ones joined with `,`, pseudo-headers first. */
function headerMap(s: CheckSubject): Map<string, string> {
  const m = new Map<string, string>([
    [':authority', s.host],
    [':method', s.method],
    [':path', s.path],
    [':scheme', s.scheme],
  ]);
  const h = s.headers;
  for (let i = 0; i < h.length; i += 2) {
    const name = h[i]!;
    if (name === 'host') continue;
    const had = m.get(name);
    m.set(name, had === undefined ? h[i + 1]! : `${had},${h[i + 1]!}`);
  }
  return m;
}

/** Edits as pairs for the client's answer. */
const toAnswer = (edits: readonly AuthHeaderEdit[]): AuthHeaderEdit[] => edits.map((e) => ({ name: e.name, value: e.value, append: true }));

export class GrpcAuthClient implements AuthServiceClient {
  private readonly upstream: GrpcUpstream;
  private readonly authority: string;

  constructor(
    private readonly config: ExtAuthConfig,
    settings: GrpcDialSettings,
  ) {
    this.upstream = new GrpcUpstream(
      { host: config.host, port: config.port, tls: config.tls },
      { maxConnections: config.maxConnections, maxPendingRequests: config.maxRequests, maxRequests: config.maxRequests, maxRetries: 0 },
      { resolve: settings.resolve, connectTimeoutMs: settings.connectTimeoutMs, tlsVerify: config.tlsVerify, ca: settings.ca, identity: settings.identity },
    );
    this.authority = config.address;
  }

  check(subject: CheckSubject, signal: AbortSignal): Promise<ServiceAnswer> {
    const message = encodeCheckRequest({
      sourceAddress: subject.remoteAddress,
      sourcePort: subject.remotePort,
      destinationAddress: subject.localAddress,
      destinationPort: subject.localPort,
      id: headerValue(subject.headers, 'x-request-id') ?? '',
      method: subject.method,
      headers: headerMap(subject),
      path: subject.path,
      host: subject.host,
      scheme: subject.scheme,
      size: subject.size,
      protocol: subject.httpVersion,
      body: subject.body,
      timeMs: Date.now(),
      contextExtensions: subject.contextExtensions,
    });
    const frame = lengthPrefixed(message);
    return new Promise<ServiceAnswer>((resolve, reject) => {
      let stream: ClientHttp2Stream;
      try {
        ({ stream } = this.upstream.request({
          ':method': 'POST',
          ':path': CHECK_PATH,
          ':authority': this.authority,
          ':scheme': this.config.tls ? 'https' : 'http',
          'content-type': 'application/grpc',
          te: 'trailers',
          'grpc-timeout': `${this.config.timeoutMs}m`,
          ...pairsToObject(this.config.addHeaders),
        }));
      } catch (err) {
        reject(new CheckFailed('error', (err as Error).message));
        return;
      }
      new CallReader(stream, resolve, reject, signal).start(frame);
    });
  }

  close(): void {
    this.upstream.close();
  }
}

function headerValue(h: readonly string[], name: string): string | undefined {
  for (let i = 0; i < h.length; i += 2) if (h[i] === name) return h[i + 1];
  return undefined;
}

function pairsToObject(pairs: readonly string[]): Record<string, string> {
  const o: Record<string, string> = {};
  for (let i = 0; i < pairs.length; i += 2) o[pairs[i]!] = pairs[i + 1]!;
  return o;
}

/** One Check call: its answer read into a decision, or a failure. */
class CallReader {
  private readonly chunks: Buffer[] = [];
  private size = 0;
  private status: number | undefined;
  private done = false;

  constructor(
    private readonly stream: ClientHttp2Stream,
    private readonly resolve: (a: ServiceAnswer) => void,
    private readonly reject: (err: Error) => void,
    private readonly signal: AbortSignal,
  ) {}

  start(frame: Buffer): void {
    const s = this.stream;
    const onAbort = (): void => {
      this.fail(this.signal.reason as Error);
      if (!s.destroyed) s.close(http2.constants.NGHTTP2_CANCEL);
    };
    this.signal.addEventListener('abort', onAbort, { once: true });
    s.on('response', (headers: IncomingHttpHeaders) => {
      const status = Number(headers[':status']);
      if (status !== 200) return this.fail(new CheckFailed('error', `HTTP/2 status ${String(status)} instead of a gRPC answer`));
      const ct = headers['content-type'];
      if (typeof ct !== 'string' || !ct.startsWith('application/grpc')) return this.fail(new CheckFailed('error', `content-type ${String(ct)} instead of application/grpc`));
      // Trailers-only: the status is in the headers.
      if (headers['grpc-status'] !== undefined) this.status = Number(headers['grpc-status']);
    });
    s.on('data', (c: Buffer) => {
      this.size += c.length;
      if (this.size > MAX_ANSWER_BYTES) {
        this.fail(new CheckFailed('error', `a CheckResponse larger than ${MAX_ANSWER_BYTES} bytes`));
        s.close(http2.constants.NGHTTP2_CANCEL);
        return;
      }
      this.chunks.push(c);
    });
    s.on('trailers', (trailers: IncomingHttpHeaders) => {
      if (trailers['grpc-status'] !== undefined) this.status = Number(trailers['grpc-status']);
      if (this.status !== 0 && this.status !== undefined) {
        const message = trailers['grpc-message'] ?? '';
        this.fail(new CheckFailed('error', `gRPC status ${this.status}${message ? `: ${decodeURIComponent(String(message))}` : ''}`));
      }
    });
    s.on('end', () => this.finish());
    s.on('close', () => this.fail(new CheckFailed('error', `the call ended without an answer${s.rstCode ? ` (reset ${s.rstCode})` : ''}`)));
    s.on('error', (err: Error & { code?: string }) => this.fail(new CheckFailed('error', err.code ?? err.message)));
    s.end(frame);
  }

  private finish(): void {
    if (this.done) return;
    if (this.status !== 0) return this.fail(new CheckFailed('error', this.status === undefined ? 'the call ended without a gRPC status' : `gRPC status ${this.status}`));
    const body = Buffer.concat(this.chunks, this.size);
    if (body.length < MESSAGE_HEAD || body[0] !== 0)
      return this.fail(new CheckFailed('error', body.length < MESSAGE_HEAD ? 'no CheckResponse message' : 'a compressed CheckResponse (no compression was offered)'));
    if (!framesOneMessage(body)) return this.fail(new CheckFailed('error', 'not exactly one CheckResponse message'));
    let decision;
    try {
      decision = decodeCheckResponse(body.subarray(MESSAGE_HEAD));
    } catch (err) {
      return this.fail(new CheckFailed('error', err instanceof MalformedCheckResponse ? err.message : String(err)));
    }
    this.done = true;
    if (decision.ok) {
      this.resolve({ allow: true, headers: decision.headers, remove: decision.remove, answer: toAnswer(decision.responseHeaders) });
      return;
    }
    const headers: string[] = [];
    for (const h of decision.headers) headers.push(h.name, h.value);
    this.resolve({ allow: false, status: decision.status, headers, body: decision.body });
  }

  private fail(err: Error): void {
    if (this.done) return;
    this.done = true;
    this.reject(err);
  }
}
