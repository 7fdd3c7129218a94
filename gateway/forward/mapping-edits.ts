/**
 * What a custom Mapping changes of a request on its way to the model and of its answer on its way
 * to the client (routing/emissary/mapping-policy.ts; docs/routing.md "What a Mapping changes of a request and
 * its answer"), for REST's field lists and gRPC's metadata alike, as Envoy's route does it:
 *
 * - header edits: removals first, then additions in order; an addition with `append: true`
 *   (Emissary's default) adds a line beside any the message has, one with `append: false` replaces
 *   them (the first in place, the others dropped; at the end when there was none);
 * - the Host (`:authority`) the model gets: `host_rewrite`, or with `auto_host_rewrite` the
 *   upstream's own host name (`upstreamHost`), after the header edits;
 * - error overrides (Envoy's local reply mapper): the first override of the answer's status in the
 *   route's list (its Mapping's own, else the Module's, none with `bypass`: routing/emissary/mapping-policy.ts
 *   `withRouteDefaults` decided which at compile time).
 *
 * A plain route (`Backend.mapping` null: no Mapping policy, no Module default) never calls in here: its
 * callers check that one property.
 */
import type { IncomingHttpHeaders } from 'node:http2';
import type { ErrorOverride, HeaderEdits, MappingPolicy } from '../../routing/emissary/mapping-policy.js';
import type { Upstream } from '../../routing/types.js';
import { removeField } from '../wire/field-writer.js';

/** `name` set to `value`: the first such field keeps its place, the others go; appended when there is none. */
export function setField(list: string[], name: string, value: string): void {
  let at = -1;
  for (let i = list.length - 2; i >= 0; i -= 2) {
    if (list[i]!.length !== name.length || list[i]!.toLowerCase() !== name) continue;
    if (at >= 0) list.splice(at, 2);
    at = i;
  }
  if (at < 0) list.push(name, value);
  else list[at + 1] = value;
}

/** A route's header edits on a field list, in place. */
export function editFields(list: string[], edits: HeaderEdits): void {
  for (const name of edits.remove) removeField(list, name);
  for (const a of edits.add) {
    if (a.append) list.push(a.name, a.value);
    else setField(list, a.name, a.value);
  }
}

/**
 * The Host the model gets on this route, or undefined to keep the client's. `auto_host_rewrite`: the
 * upstream's host name as the Mapping's `service` names it, without its port, whichever endpoint is
 * dialled: Envoy rewrites to its host's `hostname()`, which for the DNS clusters Emissary makes is
 * the service's name and never carries the port; a pod address picked by endpoint routing names no
 * virtual host the model serves.
 */
export function upstreamHost(m: MappingPolicy, up: Upstream): string | undefined {
  if (m.hostRewrite !== null) return m.hostRewrite;
  return m.autoHostRewrite ? up.host : undefined;
}

/** What the model receives on a Mapping's route: its header edits, then its Host, on the upstream field list. */
export function editUpstreamFields(list: string[], m: MappingPolicy, up: Upstream): void {
  if (m.requestHeaders !== null) editFields(list, m.requestHeaders);
  const host = upstreamHost(m, up);
  if (host !== undefined) setField(list, 'host', host);
}

/** The same edits on a gRPC call's header object (names lower case), and its `:authority`. */
export function editUpstreamMetadata(headers: IncomingHttpHeaders, m: MappingPolicy, up: Upstream): void {
  if (m.requestHeaders !== null) editHeaderObject(headers, m.requestHeaders);
  const host = upstreamHost(m, up);
  if (host !== undefined) {
    headers[':authority'] = host;
    delete headers.host;
  }
}

/** Header edits on an HTTP/2 header object: a repeated field is an array of values. */
export function editHeaderObject(headers: Record<string, string | string[] | number | undefined>, edits: HeaderEdits): void {
  for (const name of edits.remove) delete headers[name];
  for (const a of edits.add) {
    const had = headers[a.name];
    if (!a.append || had === undefined) headers[a.name] = a.value;
    else headers[a.name] = [...(Array.isArray(had) ? had : [String(had)]), a.value];
  }
}

/** The override of `status` in `list` (a route's `errorOverrides`, or the Module's for an answer without a route), if any. */
export function errorOverrideFor(status: number, list: readonly ErrorOverride[]): ErrorOverride | undefined {
  for (const o of list) if (o.status === status) return o;
  return undefined;
}

/** An override's body for an answer of `status` (`%RESPONSE_CODE%` is the status). */
export function overrideBody(o: ErrorOverride, status: number): Buffer {
  return Buffer.from(o.body.replaceAll('%RESPONSE_CODE%', String(status)));
}
