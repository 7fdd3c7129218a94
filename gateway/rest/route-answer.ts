/**
 * The answers on a route with a Mapping policy, as Envoy gives them (docs/routing.md "What a Mapping
 * changes of a request and its answer"): the Mapping's answer header edits and the route's error
 * overrides (its Mapping's, else the ambassador Module's) apply to the model's answer and to the
 * gateway's own (a timeout, an upstream failure, a refusal after the route was chosen), as Envoy's
 * local replies on a route pass through the route's header edits and its response map filter; the
 * Module's overrides apply to the gateway's 404 and 503 when no route serves a request too. REST
 * only: a gRPC answer's metadata gets the header edits (grpc/call.ts); its HTTP status is 200, which
 * no override names.
 */
import type { ErrorOverride, HeaderEdits, MappingPolicy } from '../../routing/emissary/mapping-policy.js';
import type { NotRouted } from '../../routing/types.js';
import type { AnswerFields } from '../edge/answer-fields.js';
import { errorBody, type GatewayReason } from '../edge/errors.js';
import { sendError, sendWhole } from '../edge/http-answer.js';
import type { RestRequest, RestResponse } from '../edge/rest-exchange.js';
import { editFields, errorOverrideFor, overrideBody, setField } from '../forward/mapping-edits.js';
import type { AnswerSink } from './tagged-answer.js';

/**
 * A gateway-made error on a route whose backend is `mapping`'s: the override's body for its status
 * (the status kept), then the Mapping's answer header edits. A plain route's (`mapping` null) is
 * the gateway's JSON error as everywhere.
 */
export function sendRouteError(
  req: RestRequest,
  res: RestResponse,
  status: number,
  reason: GatewayReason,
  info: string,
  extra: Readonly<Record<string, string>> | undefined,
  mapping: MappingPolicy | null,
): void {
  if (mapping === null) sendError(req, res, status, reason, info, extra);
  else sendOverridden(req, res, status, reason, info, extra, errorOverrideFor(status, mapping.errorOverrides), mapping.responseHeaders);
}

/**
 * The gateway's answer when no route serves a request: with the ambassador Module's `overrides`
 * (undefined: none) as Envoy's response map filter gives them to the router's 404 (no route) and 503 (no
 * healthy upstream). A request refused as malformed (400) is the connection manager's answer in Envoy,
 * ahead of every filter: never overridden.
 */
export function sendUnrouted(req: RestRequest, res: RestResponse, d: NotRouted, extra: Readonly<Record<string, string>> | undefined, overrides: readonly ErrorOverride[] | undefined): void {
  const o = unroutedOverride(d, overrides);
  if (o === undefined) sendError(req, res, d.status, d.reason, d.info, extra);
  else sendOverridden(req, res, d.status, d.reason, d.info, extra, o, null);
}

/** A gateway-made error with override `o`'s body (undefined: the gateway's JSON error), then a Mapping's answer header edits. */
function sendOverridden(
  req: RestRequest,
  res: RestResponse,
  status: number,
  reason: GatewayReason,
  info: string,
  extra: Readonly<Record<string, string>> | undefined,
  o: ErrorOverride | undefined,
  edits: HeaderEdits | null,
): void {
  const { fields, body } = errorAnswer(status, reason, info, extra, o, edits);
  sendWhole(req, res, status, fields, body);
}

/** The override, if any, of the Module's `overrides` for the gateway's answer when no route serves a request (never a malformed request's 400). */
export function unroutedOverride(d: NotRouted, overrides: readonly ErrorOverride[] | undefined): ErrorOverride | undefined {
  return overrides === undefined || d.reason === 'BAD_REQUEST' ? undefined : errorOverrideFor(d.status, overrides);
}

/**
 * A gateway-made error's fields and body, for every writer of one (a request's answer, an upgrade's
 * raw answer, rest/upgrade-answers.ts): override `o`'s body (undefined: the gateway's JSON error), `extra`,
 * then a Mapping's answer header edits.
 */
export function errorAnswer(
  status: number,
  reason: GatewayReason,
  info: string,
  extra: Readonly<Record<string, string>> | undefined,
  o: ErrorOverride | undefined,
  edits: HeaderEdits | null,
): { fields: string[]; body: Buffer } {
  const body = o === undefined ? Buffer.from(errorBody(status, reason, info)) : overrideBody(o, status);
  const fields = ['content-type', o === undefined ? 'application/json' : o.contentType, 'content-length', String(body.length)];
  if (extra !== undefined) for (const [name, value] of Object.entries(extra)) fields.push(name, value);
  if (edits !== null) editFields(fields, edits);
  return { fields, body };
}

/**
 * The model's answer on a Mapping's route: its header edits on `fields`, and, when an override
 * covers its status, the sink that answers with the override's body instead of the model's
 * (undefined: the answer goes as it is). `headOnly`: a HEAD request's, which gets the override's length and no body.
 */
export function mappingAnswer(status: number, fields: AnswerFields, mapping: MappingPolicy, sink: AnswerSink, headOnly: boolean): AnswerSink | undefined {
  if (mapping.responseHeaders !== null) editFields(fields.list(), mapping.responseHeaders);
  const o = errorOverrideFor(status, mapping.errorOverrides);
  if (o === undefined) return undefined;
  const body = overrideBody(o, status);
  const list = fields.list();
  // The model's body is not the answer's any more: what described it goes with it.
  for (let i = list.length - 2; i >= 0; i -= 2) if (REPLACED.has(list[i]!.toLowerCase())) list.splice(i, 2);
  setField(list, 'content-type', o.contentType);
  setField(list, 'content-length', String(body.length));
  return new OverriddenAnswer(sink, headOnly ? undefined : body);
}

const REPLACED = new Set(['content-encoding', 'etag', 'content-md5', 'content-range', 'content-type', 'content-length']);

/** The model's answer with its body replaced by an override's: the model's bytes are read and dropped, the override's sent at its end. */
class OverriddenAnswer implements AnswerSink {
  private status = 0;
  private fields: AnswerFields | undefined;

  constructor(
    private readonly inner: AnswerSink,
    private readonly body: Buffer | undefined,
  ) {}

  head(statusCode: number, fields: AnswerFields): boolean {
    this.status = statusCode;
    this.fields = fields;
    return true;
  }

  data(): boolean {
    return true;
  }

  end(): void {
    if (this.inner.head(this.status, this.fields!)) this.inner.end(this.body);
  }
}
