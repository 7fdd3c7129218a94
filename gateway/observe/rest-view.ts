/**
 * What the REST taps (observed-rest.ts) read of an exchange, said here because observe/ sits below
 * edge/: edge/rest-exchange.ts's `RestRequest` and `RestResponse` extend these, and edge/'s upstream
 * and answer fields implement them, so the edge hands its own objects over and observe/ imports none
 * of its code (docs/architecture.md#import-rules). Types only: nothing here runs.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { Socket } from 'node:net';
import type { RestBody } from '../wire/message-body.js';

/** A REST request as the access log, the spans and the payload taps read it. */
export interface ObservedRequest {
  readonly method: string;
  /** The target in origin form (absolute-form is rewritten at the edge: edge/http1-edge.ts). */
  readonly url: string;
  /** The fields by lower-case name, combined as `node:http` combines them. */
  readonly headers: IncomingHttpHeaders;
  readonly httpVersion: string;
  readonly httpVersionMajor: number;
  /** The peer: its addresses, TLS (HTTP/2: a stand-in whose `destroy` resets the stream only). */
  readonly socket: Socket;
  /**
   * Stands for the client connection: the same object for every request it carries, another for
   * each other connection (HTTP/2: its session; `socket` there is a stand-in made per stream).
   */
  readonly connectionKey: object;
  /** The whole body has been received. */
  readonly complete: boolean;
  readonly body: RestBody;
  /** `headers[name]` as one text (a list joined with `, `): what the access log and spans read, without building `headers`. */
  field(name: string): string | undefined;
}

/** The answer to an `ObservedRequest`, as the taps read it when it ends. */
export interface ObservedResponse {
  /** The status written (or to be written by a bare `end`). */
  readonly statusCode: number;
  readonly headersSent: boolean;
  /**
   * The body length of an answer the gateway made (the access log's bytes sent): the lane counts
   * what it wrote, Node's servers report its Content-Length.
   */
  readonly bodyBytes: number;
  once(event: 'close', listener: () => void): unknown;
}

/** The fields a request goes upstream with (edge/upstream-fields.ts): a trace context is read and written in them. */
export interface ObservedUpstreamFields {
  get(name: string): string | undefined;
  copy(): ObservedUpstreamFields;
  /** Name, value, name, value…: edited in place when a trace context goes in. */
  list(): string[];
}

/** The fields of the answer going to the client (edge/answer-fields.ts): the predictor header is added to them. */
export interface ObservedAnswerFields {
  get(name: string): string | undefined;
  setPredictor(predictor: string): void;
}
