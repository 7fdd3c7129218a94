/**
 * The `seldon.*` attributes of the gateway's spans: where a request was routed, REST and gRPC alike.
 */
import type { Attributes } from '@opentelemetry/api';
import type { Backend, Routed } from '../../routing/types.js';

/** A routed request's span attributes naming where it was routed (the deployment's predictor). */
export function originAttributes(b: Backend): { 'seldon.namespace': string; 'seldon.deployment': string; 'seldon.predictor': string } {
  const o = b.origin;
  return { 'seldon.namespace': o.namespace, 'seldon.deployment': o.deployment, 'seldon.predictor': o.predictor };
}

/** The `seldon.*` attributes of a routed request's server span, REST and gRPC alike. */
export function routedAttributes(decision: Routed, upstream: string, requestId: string | undefined): Attributes {
  const a: Attributes = { ...originAttributes(decision.backend), 'seldon.upstream': upstream, 'seldon.shadows': decision.mirrors.length };
  if (requestId !== undefined) a['seldon.request_id'] = requestId;
  return a;
}

/** The `seldon.*` attributes of a shadow copy's span, REST and gRPC alike. */
export function shadowAttributes(backend: Backend): Attributes {
  return { 'seldon.shadow': true, ...originAttributes(backend), 'seldon.upstream': `${backend.upstream.host}:${backend.upstream.port}` };
}
