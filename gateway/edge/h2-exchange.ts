/**
 * HTTP/2 as a REST exchange (edge/rest-exchange.ts): Node's HTTP/2 compatibility API (Http2ServerRequest,
 * Http2ServerResponse) already presents a stream as a request and a response; the subclasses here
 * close the gaps between an HTTP/2 exchange and the HTTP/1.1 message the proxy forwards, so the
 * REST path has no second code path (rest/h2.ts makes them, with HTTP/2's own edge checks):
 *
 * - request: `complete` means END_STREAM arrived, as IncomingMessage's does, and a stream reset
 *   before it never passes for the end of the body (so the model never gets a cut body framed as
 *   whole); the peer's addresses are kept from when the stream arrived;
 * - answers: connection-specific fields (Connection, Keep-Alive, Transfer-Encoding, Upgrade,
 *   Proxy-Connection, TE) are not sent and the reason phrase is dropped (HTTP/2 has neither, and
 *   Node would warn); a field Node writes once only keeps its first value (it throws on two); an
 *   answer cut short is RST_STREAM INTERNAL_ERROR (a plain destroy resets with NO_ERROR, which a
 *   client takes for a complete answer).
 */
import { CONNECTION_SPECIFIC_FIELDS } from '../../routing/values/syntax.js';
import type { OutgoingHttpHeaders } from 'node:http';
import http2, { type IncomingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import type { Socket } from 'node:net';
import type { Readable } from 'node:stream';
import type { RestRequest, RestResponse } from './rest-exchange.js';
import { rawHeaderValue, type ForwardInfo } from './http-headers.js';
import { UpstreamFields } from './upstream-fields.js';
import type { AnswerFields } from './answer-fields.js';
import { headerText } from '../observe/request-tap.js';
import { withServer } from './server-name.js';
import { streamFull } from '../wire/h2-settings.js';

// Node's compatibility API takes the flat [name, value, …] form of writeHead's headers too, as
// ServerResponse's does; the types say objects only.
declare module 'node:http2' {
  interface Http2ServerResponse {
    writeHead(statusCode: number, headers?: OutgoingHttpHeaders | readonly string[]): this;
  }
}

const { NGHTTP2_NO_ERROR, NGHTTP2_INTERNAL_ERROR } = http2.constants;
const NO_OPTIONS = {};

/** Response fields HTTP/2 forbids (RFC 9113 §8.2.2): never written, whoever set them. */
const CONNECTION_SPECIFIC = CONNECTION_SPECIFIC_FIELDS;
const CONNECTION_SPECIFIC_LENGTHS = new Set([...CONNECTION_SPECIFIC].map((n) => n.length));
const connectionSpecific = (name: string): boolean => CONNECTION_SPECIFIC_LENGTHS.has(name.length) && CONNECTION_SPECIFIC.has(name.toLowerCase());
/**
 * Fields Node's HTTP/2 writes once only (it throws on a second): a model's repeated one (two
 * Content-Types) goes with its first value rather than cost the whole answer.
 */
const SINGLE_VALUE = new Set([
  'access-control-allow-credentials',
  'access-control-max-age',
  'access-control-request-method',
  'age',
  'authorization',
  'content-encoding',
  'content-language',
  'content-length',
  'content-location',
  'content-md5',
  'content-range',
  'content-type',
  'date',
  'dnt',
  'etag',
  'expires',
  'from',
  'host',
  'if-match',
  'if-modified-since',
  'if-none-match',
  'if-range',
  'if-unmodified-since',
  'last-modified',
  'location',
  'max-forwards',
  'proxy-authorization',
  'range',
  'referer',
  'retry-after',
  'tk',
  'upgrade-insecure-requests',
  'user-agent',
  'x-content-type-options',
]);

/** The connection's addresses, read once when the stream arrives: they outlive the stream (the access log reads them after it closed). */
export interface H2Peer {
  readonly remoteAddress: string | undefined;
  readonly remotePort: number | undefined;
  readonly remoteFamily: string | undefined;
  readonly localAddress: string | undefined;
  readonly localPort: number | undefined;
  readonly encrypted: boolean | undefined;
}

export function peerOf(socket: Socket | undefined): H2Peer {
  return {
    remoteAddress: socket?.remoteAddress,
    remotePort: socket?.remotePort,
    remoteFamily: socket?.remoteFamily,
    localAddress: socket?.localAddress,
    localPort: socket?.localPort,
    encrypted: (socket as { encrypted?: boolean } | undefined)?.encrypted,
  };
}

/** Node's `socket` of a compatibility request: a stand-in whose operations act on the stream. */
const compatSocket = Object.getOwnPropertyDescriptor(http2.Http2ServerRequest.prototype, 'socket')!.get!;

/** An HTTP/2 request as a REST request: the HTTP/1.1 message it becomes. */
export class H2Request extends http2.Http2ServerRequest implements RestRequest {
  /** END_STREAM arrived: the whole body has been received. */
  received = false;
  /** The `socket` handed out (made on first use). */
  socketView: Socket | undefined;

  constructor(
    stream: ServerHttp2Stream,
    headers: IncomingHttpHeaders,
    rawHeaders: string[],
    readonly peer: H2Peer,
  ) {
    super(stream, headers, NO_OPTIONS, rawHeaders);
  }

  /** `:authority` (or the Host field): rest/h2.ts sets `headers.host` to it before serving. */
  get host(): string {
    return this.headers.host ?? '';
  }

  /** The session; a stream already cut from it stands for itself (nothing more comes on it). */
  get connectionKey(): object {
    return this.stream.session ?? this;
  }

  /** The body streams on the request itself. */
  get body(): Readable {
    return this;
  }

  header(name: string): string | undefined {
    return rawHeaderValue(this.rawHeaders, name);
  }

  field(name: string): string | undefined {
    return headerText(this.headers[name]);
  }

  upstreamFields(info: ForwardInfo): UpstreamFields {
    return UpstreamFields.ofList(this.rawHeaders, info);
  }

  /**
   * The body's end, as the stream reports it. A stream closed by a reset also ends its readable
   * side: that is not the end of the body, and is never passed on as one (the request is
   * destroyed when it closes instead: `H2Rest.watch`).
   */
  override push(chunk: unknown, encoding?: BufferEncoding): boolean {
    if (chunk === null) {
      const s = this.stream;
      if (s.aborted || (s.closed && s.rstCode !== NGHTTP2_NO_ERROR)) return false;
      this.received = true;
    }
    return super.push(chunk, encoding);
  }

  /** Node's reader asserts its stream is open: a request read after its stream closed has nothing more to give. */
  override _read(size: number): void {
    if (!this.stream.closed && !this.stream.destroyed) super._read(size);
  }
}

// Accessors over properties of the base class's declared type, so not declarable in the class body:
// - `complete`: Node's is true once the stream closed, reset or not; IncomingMessage's (which the
//   REST path reads) means the body arrived whole;
// - `socket`: Node's stand-in (destroy, 'close' act on the stream), with the peer's addresses as
//   they were when the stream arrived (Node's answers undefined once the stream has closed).
Object.defineProperties(H2Request.prototype, {
  complete: {
    get(this: H2Request): boolean {
      return this.received || this.stream.endAfterHeaders;
    },
  },
  socket: {
    get(this: H2Request): Socket {
      const peer = this.peer;
      return (this.socketView ??= new Proxy(compatSocket.call(this) as Socket, {
        get: (target, prop) => (typeof prop === 'string' && Object.hasOwn(peer, prop) ? peer[prop as keyof H2Peer] : Reflect.get(target, prop)),
      }));
    },
  },
});

/** An HTTP/2 answer as a REST response. */
export class H2Response extends http2.Http2ServerResponse implements RestResponse {
  /** The Module's `server_name` (edge/server-name.ts): set only when there is one. */
  declare serverName: string | undefined;

  /** HTTP/2 has no reason phrase (it is dropped) and no connection-specific fields (removed). */
  override writeHead(statusCode: number, headers?: OutgoingHttpHeaders | readonly string[]): this;
  override writeHead(statusCode: number, statusMessage: string, headers?: OutgoingHttpHeaders | readonly string[]): this;
  override writeHead(statusCode: number, a?: string | OutgoingHttpHeaders | readonly string[], b?: OutgoingHttpHeaders | readonly string[]): this {
    const server = this.serverName;
    const given = server === undefined ? (typeof a === 'string' ? b : a) : withServer(typeof a === 'string' ? b : a, server);
    if (given === undefined) return super.writeHead(statusCode);
    try {
      if (isFlat(given)) {
        let kept: string[] | undefined;
        let once: Set<string> | undefined;
        for (let i = 0; i < given.length; i += 2) {
          const name = given[i]!.toLowerCase();
          let drop = connectionSpecific(name);
          if (!drop && SINGLE_VALUE.has(name)) {
            drop = once?.has(name) === true;
            (once ??= new Set()).add(name);
          }
          if (drop) kept ??= given.slice(0, i);
          else kept?.push(given[i]!, given[i + 1]!);
        }
        return super.writeHead(statusCode, kept ?? given);
      }
      let copy: OutgoingHttpHeaders | undefined;
      for (const name in given) if (connectionSpecific(name)) delete (copy ??= { ...given })[name];
      return super.writeHead(statusCode, copy ?? given);
    } catch (err) {
      // Node keeps the fields it took before it threw: the next head (the gateway's 502) starts clean.
      for (const name of this.getHeaderNames()) this.removeHeader(name);
      throw err;
    }
  }

  /** HTTP/2 has no reason phrase: the fields alone. */
  writeAnswerHead(status: number, fields: AnswerFields): this {
    return this.writeHead(status, fields.list());
  }

  /** A gateway-made answer's body length: its Content-Length (writeHead sets its fields on the response). */
  get bodyBytes(): number {
    const n = Number(this.getHeader('content-length') ?? 0);
    return Number.isFinite(n) ? n : 0;
  }

  /**
   * A body chunk; false: wait for 'drain'. Node's stream answers false after every 64 KiB chunk a model's
   * socket hands over (its fixed mark, the chunk included): the answer waits only once the stream holds
   * its write mark (wire/h2-settings.ts `streamFull`), not per chunk.
   */
  override write(chunk: string | Uint8Array, ...rest: unknown[]): boolean {
    return !streamFull((super.write as (chunk: string | Uint8Array, ...rest: unknown[]) => boolean)(chunk, ...rest), this.stream);
  }

  /** A cut answer: RST_STREAM INTERNAL_ERROR (destroy() would reset with NO_ERROR, a clean end to the client). */
  override destroy(err?: Error): this {
    if (!this.stream.closed) this.stream.close(NGHTTP2_INTERNAL_ERROR);
    else if (!this.stream.destroyed) this.stream.destroy(err);
    return this;
  }
}

// `destroyed`, which the REST path checks (Node's class, a legacy Stream, has none).
Object.defineProperty(H2Response.prototype, 'destroyed', {
  get(this: H2Response): boolean {
    return this.stream.destroyed;
  },
});

const isFlat = (h: OutgoingHttpHeaders | readonly string[]): h is readonly string[] => Array.isArray(h);
