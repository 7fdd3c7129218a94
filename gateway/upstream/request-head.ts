/**
 * The head of a request to a model, as the upstream client (http1-client.ts) writes it: the request
 * line, the caller's headers (their framing fields dropped: the client frames the body itself), a
 * Host when the caller gave none, the framing line and `connection: keep-alive`, in one string for
 * one write. Pure; a request line or header the gateway cannot write is an `UpstreamError`
 * (`UPSTREAM_INVALID_REQUEST`), never a malformed head on the wire.
 */
import type { Readable } from 'node:stream';
import { NOT_TOKEN_CHAR, NOT_VALUE_CHAR } from '../wire/http1-syntax.js';
import type { ParseFailure } from './http1-response.js';

export type UpstreamErrorCode =
  ParseFailure | 'UPSTREAM_CONNECT_TIMEOUT' | 'UPSTREAM_HEADERS_TIMEOUT' | 'UPSTREAM_BODY_TIMEOUT' | 'UPSTREAM_CLOSED' | 'UPSTREAM_POOL_CLOSED' | 'UPSTREAM_INVALID_REQUEST';

export class UpstreamError extends Error {
  constructor(
    readonly code: UpstreamErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export interface UpstreamRequest {
  readonly method: string;
  readonly path: string;
  /** `[name, value, …]`; framing headers (Content-Length, Transfer-Encoding) are the client's to set. */
  readonly headers: readonly string[];
  readonly body: Buffer | Readable | null;
  /** Longest wait for the answer's head, in ms (0: none). */
  readonly headersTimeout: number;
  /** Longest gap between reads of the answer's body, in ms (0: none). */
  readonly bodyTimeout: number;
}

const BAD_PATH = /[^\x21-\x7e\x80-\xff]/;
const BODY_METHODS = new Set(['POST', 'PUT', 'PATCH']);

/** A body that is read as it is sent (it cannot be sent twice). */
export const isStream = (body: UpstreamRequest['body']): body is Readable => body !== null && !Buffer.isBuffer(body);

/**
 * The framing line of a request's head: the buffered body's length; a stream body's declared
 * length (`streamLength`, -1: none), else chunked; no body: `content-length: 0` where a body is
 * expected (POST, PUT, PATCH), else nothing.
 */
export function framingLine(req: UpstreamRequest, streamLength: number): string {
  const body = req.body;
  if (body === null) return BODY_METHODS.has(req.method) ? 'content-length: 0\r\n' : '';
  if (Buffer.isBuffer(body)) return `content-length: ${body.length}\r\n`;
  return streamLength >= 0 ? `content-length: ${streamLength}\r\n` : 'transfer-encoding: chunked\r\n';
}

/** The head of a request, or an error naming what cannot be written. */
export function requestHead(req: UpstreamRequest, defaultHost: string, framing: string): string {
  if (NOT_TOKEN_CHAR.test(req.method) || BAD_PATH.test(req.path) || req.path.length === 0) {
    throw new UpstreamError('UPSTREAM_INVALID_REQUEST', 'a request line the gateway cannot write');
  }
  let head = `${req.method} ${req.path} HTTP/1.1\r\n`;
  let host = false;
  const h = req.headers;
  for (let i = 0; i < h.length; i += 2) {
    const name = h[i]!;
    const value = h[i + 1]!;
    const n = name.length;
    if (n === 4 || n === 14 || n === 17 || n === 10) {
      const lower = name.toLowerCase();
      if (lower === 'host') host = true;
      else if (lower === 'content-length' || lower === 'transfer-encoding' || lower === 'connection') continue;
    }
    if (NOT_TOKEN_CHAR.test(name) || n === 0 || NOT_VALUE_CHAR.test(value)) {
      throw new UpstreamError('UPSTREAM_INVALID_REQUEST', `a header the gateway cannot write (${JSON.stringify(name.slice(0, 64))})`);
    }
    head += `${name}: ${value}\r\n`;
  }
  if (!host) head += `host: ${defaultHost}\r\n`;
  return `${head}${framing}connection: keep-alive\r\n\r\n`;
}

/** The Content-Length a stream body declares in the caller's headers (-1: none). */
export function declaredLength(headers: readonly string[]): number {
  for (let i = 0; i < headers.length; i += 2) {
    if (headers[i]!.length === 14 && headers[i]!.toLowerCase() === 'content-length') {
      const v = headers[i + 1]!.trim();
      return /^\d{1,15}$/.test(v) ? Number(v) : -1;
    }
  }
  return -1;
}
