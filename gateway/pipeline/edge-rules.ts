/**
 * The ambassador Module's edge keys that answer a request themselves, each a stage in the chain only
 * when the Module sets it (routing/emissary/edge-rules.ts `EdgeRules`, decided at start), so a proxy without them runs
 * neither:
 *
 * - `reject_requests_with_escaped_slashes` (Envoy's `path_with_escaped_slashes_action: REJECT_REQUEST`,
 *   applied by the connection manager before any filter): a path with `%2F` or `%5C` gets 400 and
 *   nothing after it runs; first in the chain.
 * - `headers_with_underscores_action: REJECT_REQUEST` (applied by Envoy's codec, before any filter): a
 *   request with a header name holding `_` gets 400 and nothing after it runs.
 * - `x_forwarded_proto_redirect` (Envoy's `require_tls`, judged by X-Forwarded-Proto, at route selection:
 *   after the ip stage as after Envoy's RBAC filter): a request whose X-Forwarded-Proto, as the model
 *   would get it (a trusted peer's as sent, else the connection's scheme), is not `https` gets a 301 to
 *   `https://<Host><target>`, the Host and target as sent (Envoy's `createSslRedirectPath`).
 */
import { hasEscapedSlash, hasUnderscoredName, UNDERSCORE_REFUSAL } from '../../routing/emissary/edge-rules.js';
import type { PipelineRequest } from './request.js';
import type { Stage } from './stage.js';

export class EscapedSlashStage implements Stage {
  constructor(private readonly next: Stage) {}

  run(r: PipelineRequest): void {
    if (hasEscapedSlash(r.path)) {
      r.unrouted({ ok: false, status: 400, reason: 'BAD_REQUEST', info: `request path has an escaped slash (%2F or %5C): refused (reject_requests_with_escaped_slashes)` });
      return;
    }
    this.next.run(r);
  }
}

export class UnderscoreHeaderStage implements Stage {
  constructor(private readonly next: Stage) {}

  run(r: PipelineRequest): void {
    if (hasUnderscoredName(r.rawHeaderFields())) {
      r.unrouted({ ok: false, status: 400, reason: 'BAD_REQUEST', info: UNDERSCORE_REFUSAL });
      return;
    }
    this.next.run(r);
  }
}

export class HttpsRedirectStage implements Stage {
  constructor(private readonly next: Stage) {}

  run(r: PipelineRequest): void {
    const given = r.peerTrusted() ? r.header('x-forwarded-proto') : undefined;
    const proto = given !== undefined && given !== '' ? given : r.connectionScheme();
    if (proto.trim().toLowerCase() !== 'https') {
      r.movedToHttps(`https://${r.host}${r.path}`);
      return;
    }
    this.next.run(r);
  }
}
