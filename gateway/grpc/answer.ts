/**
 * Answers the gateway itself makes on a client's gRPC stream (docs/routing.md#precedence-and-no-match, docs/routing.md#error-mapping):
 * trailers-only (`:status 200`, `content-type: application/grpc`, `grpc-status`, a
 * percent-encoded `grpc-message`), or trailers after an upstream's headers went out.
 * Upstream statuses are never rewritten; these are only for what the gateway decided.
 */
import http2, { type OutgoingHttpHeaders, type ServerHttp2Stream, type ServerStreamResponseOptions } from 'node:http2';

const { NGHTTP2_NO_ERROR } = http2.constants;

// Node honours `sendDate` on respond() (no `date` header is added: answers pass unchanged),
// though its typings omit it; non-literal objects get past the excess-property check.
const END_STREAM = { endStream: true, sendDate: false };
const WITH_TRAILERS = { waitForTrailers: true, sendDate: false };
/** respond() options: headers and END_STREAM in one frame (trailers-only, or headers-only). */
export const RESPOND_END_STREAM: ServerStreamResponseOptions = END_STREAM;
/** respond() options: DATA follows, then trailers on 'wantTrailers'. */
export const RESPOND_WITH_TRAILERS: ServerStreamResponseOptions = WITH_TRAILERS;

/**
 * `grpc-message` as the gRPC HTTP/2 spec encodes it: printable ASCII except `%` as is, every other
 * UTF-8 byte as %XX. (Not encodeURIComponent: grpc-js decodes with decodeURI, which leaves escapes
 * of reserved characters such as %2F and %3D in the text the user sees.)
 */
export function encodeGrpcMessage(text: string): string {
  let plain = true;
  for (let i = 0; i < text.length && plain; i++) {
    const c = text.charCodeAt(i);
    plain = c >= 0x20 && c <= 0x7e && c !== 0x25;
  }
  if (plain) return text;
  let out = '';
  for (const b of Buffer.from(text, 'utf8')) out += b >= 0x20 && b <= 0x7e && b !== 0x25 ? String.fromCharCode(b) : `%${b < 16 ? '0' : ''}${b.toString(16).toUpperCase()}`;
  return out;
}

/** Headers that carry a status as trailers-only, plus any extra (e.g. x-envoy-overloaded). */
export function statusHeaders(code: number, message: string, extra?: Readonly<Record<string, string>>): OutgoingHttpHeaders {
  return { ':status': 200, 'content-type': 'application/grpc', 'grpc-status': String(code), 'grpc-message': encodeGrpcMessage(message), ...extra };
}

/** Status trailers (no pseudo-headers) for a stream whose headers were already sent. */
export function statusTrailers(code: number, message: string): OutgoingHttpHeaders {
  return { 'grpc-status': String(code), 'grpc-message': encodeGrpcMessage(message) };
}

/** Answer trailers-only and stop reading the request (the client may still be sending); `server`: the Module's `server_name`, if any. */
export function answerTrailersOnly(stream: ServerHttp2Stream, code: number, message: string, extra?: Readonly<Record<string, string>>, server?: string): void {
  if (stream.destroyed || stream.closed) return;
  if (!stream.headersSent) {
    const headers = statusHeaders(code, message, extra);
    if (server !== undefined) headers.server = server;
    stream.respond(headers, RESPOND_END_STREAM);
  }
  stopReading(stream);
}

/**
 * The response is complete: if the client has not half-closed, drop what it still sends and
 * tell it to stop (RST_STREAM NO_ERROR, sent after our last frame, as RFC 9113 §8.1 allows).
 */
export function stopReading(stream: ServerHttp2Stream): void {
  if (stream.readableEnded || stream.destroyed) return;
  stream.resume();
  stream.close(NGHTTP2_NO_ERROR);
}
