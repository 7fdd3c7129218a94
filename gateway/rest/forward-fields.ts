/**
 * The header fields a REST request goes to its model with, one rule for a forwarded request
 * (rest/rest-request.ts) and a WebSocket upgrade (rest/upgrade-exchange.ts), as Envoy's connection
 * manager and router prepare every request of a route:
 *
 * - the forwarding fields (edge/http-headers.ts `upstreamRequestHeaders`): X-Forwarded-For with the
 *   peer appended (not with the Module's `use_remote_address: false` from a trusted peer),
 *   X-Forwarded-Proto, `x-envoy-original-path` (the path as routed), the client's x-request-id or one
 *   of the gateway's (the Module's `preserve_external_request_id: false`: always the gateway's); no
 *   `x-envoy-original-path` with the Module's `suppress_envoy_headers: true`;
 * - the Host as matched (the Module's `strip_matching_host_port`);
 * - the auth service's edits, then the Mapping's (header edits, `host_rewrite` / `auto_host_rewrite`).
 *
 * Positional arguments: the request path makes no object for them.
 */
import type { Backend } from '../../routing/types.js';
import type { EdgeRules } from '../../routing/emissary/edge-rules.js';
import { applyAuthEdits, type AuthEdits } from '../../routing/policies/auth-edits.js';
import type { RestRequest } from '../edge/rest-exchange.js';
import { schemeOf } from '../edge/http-headers.js';
import { requestId } from '../edge/request-id.js';
import type { UpstreamFields } from '../edge/upstream-fields.js';
import { editUpstreamFields, setField } from '../forward/mapping-edits.js';
import { removeField } from '../wire/field-writer.js';

/**
 * `req`'s fields toward `backend`'s model. `trusted`: its peer may set X-Forwarded-For/-Proto;
 * `originalPath`: the path as routed; `host`: the Host as matched (`req.host` unless the Module's
 * edge rules changed it); `stripAuthorization`: the gate took the client's credential.
 */
export function forwardFields(
  req: RestRequest,
  backend: Backend,
  rules: EdgeRules | undefined,
  trusted: boolean,
  originalPath: string,
  host: string,
  stripAuthorization: boolean,
  authEdits: AuthEdits | undefined,
): UpstreamFields {
  const fields = req.upstreamFields({
    // use_remote_address: false: a trusted peer's X-Forwarded-For goes as sent.
    remoteAddress: rules !== undefined && !rules.appendPeer && trusted ? undefined : req.socket.remoteAddress,
    proto: schemeOf(req.socket),
    originalPath,
    trusted,
    stripAuthorization,
  });
  if (rules !== undefined) {
    if (rules.replaceRequestId) setField(fields.list(), 'x-request-id', requestId());
    if (rules.suppressEnvoyHeaders === true) removeField(fields.list(), 'x-envoy-original-path');
    if (host !== req.host) setField(fields.list(), 'host', host);
  }
  if (authEdits !== undefined) applyAuthEdits(fields.list(), authEdits);
  // A custom Mapping's edits come after the gateway's own and the auth service's: what the model (and a shadow) receives.
  const mapping = backend.mapping;
  if (mapping !== null) editUpstreamFields(fields.list(), mapping, backend.upstream);
  return fields;
}
