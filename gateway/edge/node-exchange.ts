/**
 * Node's HTTP/1.1 server as a REST exchange (edge/rest-exchange.ts): the classes `node:http` makes its
 * requests and responses of (`NODE_EXCHANGE`, given to createServer), so each object it builds
 * already is the exchange: no wrapper, no copy. What they add is read from what Node keeps.
 */
import type { IncomingMessage as NodeIncomingMessage, OutgoingHttpHeader, OutgoingHttpHeaders } from 'node:http';
import { IncomingMessage, ServerResponse } from '../wire/node-http.js';
import type { Readable } from 'node:stream';
import type { RestRequest, RestResponse } from './rest-exchange.js';
import { rawHeaderValue, type ForwardInfo } from './http-headers.js';
import { UpstreamFields } from './upstream-fields.js';
import type { AnswerFields } from './answer-fields.js';
import { headerText } from '../observe/request-tap.js';
import { withServer } from './server-name.js';

export class NodeRequest extends IncomingMessage implements RestRequest {
  // Always set on a server's request (the types serve the client side too).
  declare method: string;
  /** Mutable: the edge rewrites an absolute-form target (edge/http1-edge.ts). */
  declare url: string;

  get host(): string {
    return this.headers.host ?? '';
  }

  get connectionKey(): object {
    return this.socket;
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
}

/** Generic as ServerResponse is (so that a server of these is one of Node's servers to the types); always of a NodeRequest. */
export class NodeResponse<Request extends NodeIncomingMessage = NodeRequest> extends ServerResponse<Request> implements RestResponse {
  /** Set by `node:http` when this answer closes its connection. */
  declare _last?: boolean;
  /** The Content-Length `node:http` wrote from writeHead's own headers (getHeader does not see those). */
  declare _contentLength?: unknown;
  /** The Module's `server_name` (edge/server-name.ts): set only when there is one. */
  declare serverName: string | undefined;

  override writeHead(statusCode: number, statusMessage?: string, headers?: OutgoingHttpHeaders | OutgoingHttpHeader[]): this;
  override writeHead(statusCode: number, headers?: OutgoingHttpHeaders | OutgoingHttpHeader[]): this;
  override writeHead(statusCode: number, a?: string | OutgoingHttpHeaders | OutgoingHttpHeader[], b?: OutgoingHttpHeaders | OutgoingHttpHeader[]): this {
    const server = this.serverName;
    if (typeof a === 'string') return super.writeHead(statusCode, a, server === undefined ? b : withServer(b, server));
    return super.writeHead(statusCode, server === undefined ? a : withServer(a, server));
  }

  get bodyBytes(): number {
    const n = Number(this.getHeader('content-length') ?? this._contentLength ?? 0);
    return Number.isFinite(n) ? n : 0;
  }

  writeAnswerHead(status: number, fields: AnswerFields, reason?: string): this {
    return this.writeHead(status, reason ?? fields.head?.reason ?? '', fields.list());
  }
}

/** createServer's options that make its objects these. */
export const NODE_EXCHANGE = { IncomingMessage: NodeRequest, ServerResponse: NodeResponse } as const;
