/**
 * What the REST taps (observed-rest.ts) read of an exchange, said here because observe/ sits below
 * edge/: edge/rest-exchange.ts's `RestRequest` and `RestResponse`, and edge/'s upstream and answer
 * fields, have these members, so the edge hands its own objects over and observe/ imports none of
 * its code (docs/architecture.md#import-rules). Types only: nothing here runs.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { Socket } from 'node:net';
import type { RestBody } from '../wire/message-body.js';

/** A REST request as the access log, the spans and the payload taps read it. */
export interface ObservedRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
  readonly httpVersion: string;
  readonly httpVersionMajor: number;
  readonly socket: Socket;
  /** The same object for every request of one client connection. */
  readonly connectionKey: object;
  readonly complete: boolean;
  readonly body: RestBody;
  /** `headers[name]` as one text, without building `headers`. */
  field(name: string): string | undefined;
}

/** The answer to an `ObservedRequest`, as the taps read it when it ends. */
export interface ObservedResponse {
  readonly statusCode: number;
  readonly headersSent: boolean;
  /** The body length of an answer the gateway made. */
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
