/**
 * One REST exchange as the REST path (rest/, observe/, auth/) reads and writes it, whichever
 * server received it: the interface each of the three codecs implements, as Envoy's codecs give
 * its router one stream API.
 *
 * The adapters, each the server's own objects (no wrapper per request):
 * - the lane (edge/http1-lane.ts): `LaneExchange`, the request and its answer in one object, its body read whole
 *   (up to 64 KiB) or streaming in (edge/lane-body.ts);
 * - Node's HTTP/1.1 server (edge/node-exchange.ts): `NodeRequest`, `NodeResponse`, the classes
 *   `node:http` makes its IncomingMessage and ServerResponse of;
 * - HTTP/2 (edge/h2-exchange.ts): `H2Request`, `H2Response`, the compatibility API's classes with
 *   the gaps to an HTTP/1.1 message closed.
 *
 * test/gateway/edge/exchange-contract.test.ts runs one contract against the three over real sockets.
 */
import type { OutgoingHttpHeaders } from 'node:http';
import type { ObservedRequest, ObservedResponse } from '../observe/rest-view.js';
import type { ForwardInfo } from './http-headers.js';
import type { UpstreamFields } from './upstream-fields.js';
import type { AnswerFields } from './answer-fields.js';

/** A REST request: its head, its peer, its body (what observe/ reads of it is observe/rest-view.ts's `ObservedRequest`). */
export interface RestRequest extends ObservedRequest {
  /** The Host (HTTP/2: `:authority`), '' when there is none. */
  readonly host: string;
  /** Name, value, name, value…: what goes upstream (HTTP/2: the HTTP/1.1 fields it becomes). */
  readonly rawHeaders: string[];
  readonly httpVersionMinor: number;
  /** When its first byte was read (performance.now() ms), where the server knows it (the lane); else when it is served. */
  readonly arrivedAt?: number;
  /**
   * The values of every field named `name` (lower case) joined with `,`, as routing reads a header
   * (routing/types.ts HeaderGetter); undefined when absent.
   */
  header(name: string): string | undefined;
  /** Its fields as they go to the model (edge/upstream-fields.ts: forwarding fields added, hop-by-hop ones dropped). */
  upstreamFields(info: ForwardInfo): UpstreamFields;
}

/** The answer to a `RestRequest` (what observe/ reads of it is observe/rest-view.ts's `ObservedResponse`). */
export interface RestResponse extends ObservedResponse {
  /** Cut (the stream reset, the connection destroyed): nothing more reaches the client. */
  readonly destroyed: boolean;
  /** The whole answer has been written. */
  readonly writableEnded: boolean;
  /**
   * The ambassador Module's `server_name` (edge/server-name.ts): every head written gets it as its one
   * Server field. Set by the data plane only when a Module names one; undefined: heads as given.
   */
  serverName: string | undefined;
  /** Headers as an object or a flat name, value list; throws (writing nothing) on a field the server will not write. */
  writeHead(status: number, reason: string, headers?: OutgoingHttpHeaders | string[]): this;
  writeHead(status: number, headers?: OutgoingHttpHeaders | string[]): this;
  /**
   * The head of a model's answer (edge/answer-fields.ts), with its own reason phrase unless `reason`
   * is given; throws as writeHead does. The lane writes it from the bytes the model sent.
   */
  writeAnswerHead(status: number, fields: AnswerFields, reason?: string): this;
  /** False: wait for 'drain' before writing more. */
  write(chunk: Buffer): boolean;
  /**
   * Whether a chunk given to `write` may still be referenced (held behind the head, or queued in the
   * socket); false: every one went to the kernel, its memory free to reuse. Absent: assume held.
   */
  holdsWrites?(): boolean;
  end(): this;
  end(chunk: Buffer | string): this;
  /** The answer cannot be completed: the client must not take what it got for the whole. */
  destroy(): void;
  /** 'close': the answer ended or its connection went first (once); 'drain': room to write again. */
  once(event: 'close' | 'drain', listener: () => void): this;
}
