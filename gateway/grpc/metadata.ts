/**
 * The gateway's edits of a gRPC call's metadata, both ways: what the model receives (the client's, without
 * the gateway's own fields, with the forwarding fields, a request id and a custom Mapping's edits) and what
 * the client receives with the model's answer.
 */
import type { IncomingHttpHeaders } from 'node:http2';
import type { Backend } from '../../routing/types.js';
import { dropInternalHeaders, forwardHeaderObject, type Peer } from '../edge/http-headers.js';
import { SERVICE_TIME_HEADER } from '../edge/answer-fields.js';
import { requestId } from '../edge/request-id.js';
import { stripMatchingPort, type EdgeRules } from '../../routing/emissary/edge-rules.js';
import { editHeaderObject, editUpstreamMetadata } from '../forward/mapping-edits.js';
import { ARM_HEADER } from '../steer/bandit-edge.js';
import type { PipelineRequest } from '../pipeline/request.js';

/** The client's headers made the model's, in place. */
export function upstreamMetadata(headers: IncomingHttpHeaders, peer: Peer, backend: Backend): void {
  // Clients cannot forge the gateway's own headers (x-seldon-predictor, x-envoy-*), as on REST.
  dropInternalHeaders(headers);
  forwardHeaderObject(headers, peer);
  // As on REST (and as Envoy does for gRPC): every call upstream carries a request id.
  if (headers['x-request-id'] === undefined) headers['x-request-id'] = requestId();
  if (peer.rules !== undefined) moduleMetadata(headers, peer, peer.rules);
  // A custom Mapping's metadata edits and :authority, after the gateway's own: what the model (and a shadow) receives.
  if (backend.mapping !== null) editUpstreamMetadata(headers, backend.mapping, backend.upstream);
}

/** The ambassador Module's edge keys on what the model receives: the request id replaced, the :authority as matched. */
function moduleMetadata(headers: IncomingHttpHeaders, peer: Peer, rules: EdgeRules): void {
  if (rules.replaceRequestId) headers['x-request-id'] = requestId();
  const authority = headers[':authority'];
  if (rules.stripMatchingHostPort && authority !== undefined) headers[':authority'] = stripMatchingPort(authority, peer.localPort);
}

/**
 * The gateway's own fields on the model's initial metadata (a trailers-only answer's too): the upstream service time, the predictor
 * that answered (--predictor-header), the marks the pipeline decided (x-seldon-model, x-seldon-fallback), a
 * custom Mapping's answer edits, a bandit's token, and the Module's `server_name`.
 */
export function answerMetadata(
  headers: IncomingHttpHeaders,
  backend: Backend,
  decided: Pick<PipelineRequest, 'answerHeaders' | 'token'>,
  predictorHeader: boolean | undefined,
  serviceMs: number | undefined,
  server: string | undefined,
): void {
  // Undefined: the Module's suppress_envoy_headers.
  if (serviceMs !== undefined) headers[SERVICE_TIME_HEADER] = String(serviceMs);
  if (predictorHeader) headers['x-seldon-predictor'] = backend.origin.predictor;
  const marks = decided.answerHeaders;
  if (marks !== undefined) for (let i = 0; i < marks.length; i += 2) headers[marks[i]!] = marks[i + 1]!;
  if (backend.mapping?.responseHeaders) editHeaderObject(headers, backend.mapping.responseHeaders);
  if (decided.token !== undefined) headers[ARM_HEADER] = decided.token;
  // The Module's server_name replaces the model's, after every edit (Envoy's connection manager writes it last).
  if (server !== undefined) headers.server = server;
}
