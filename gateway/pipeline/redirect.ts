/**
 * Redirect: a custom Mapping with `host_redirect` answers every request it routes itself, with its
 * redirect (routing/table/redirect.ts), after CORS and before the gate: no model is asked, and neither is
 * the external auth service (Emissary turns ext_authz off on redirect routes). gRPC never gets here
 * with one: a gRPC Mapping that redirects is dropped when parsed.
 */
import type { PipelineRequest } from './request.js';
import type { Stage } from './stage.js';

export class RedirectStage implements Stage {
  constructor(private readonly next: Stage) {}

  run(r: PipelineRequest): void {
    // One property read on every route without a Mapping (routed is undefined only for the front end's calls).
    const mapping = r.routed?.backend.mapping;
    if (mapping != null && mapping.redirect !== null) r.redirected(mapping.redirect);
    else this.next.run(r);
  }
}
