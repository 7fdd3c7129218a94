/**
 * Who serves a request as it enters, for both protocols in one place: the proxy, the OAuth
 * front end (the old Seldon API gateway's API, docs/security.md), or the gateway's own routes.
 * The front end exists only while some deployment registers an OAuth client (`frontEndOn`).
 *
 * - REST, by path: `/seldon/…` is always the proxy's; `/api/v0.1/…` and `/api/v1.0/…` are the
 *   front end's; exactly `/oauth/token`, `/ping` and `/ready` (with any query) are the gateway's
 *   own (fastify); any other path, under `/oauth/` too, is the proxy's (its 404 is the gateway's JSON).
 * - gRPC, by metadata, once no route matched: `oauth_token` and no `seldon` is a front-end call,
 *   which serves `seldon.protos.Seldon` only.
 */
import type { IncomingHttpHeaders } from 'node:http2';

export type RestEntry = 'proxy' | 'front' | 'own';

const OWN_ROUTES = /^\/(?:oauth\/token|ping|ready)(?:\?|$)/;

/** Who serves a REST request for `url`. */
export function restEntry(url: string | undefined, frontEndOn: boolean): RestEntry {
  if (url === undefined || url.charCodeAt(1) === 115 /* s: /seldon/ */ || !frontEndOn) return 'proxy';
  if (url.startsWith('/api/v0.1/') || url.startsWith('/api/v1.0/')) return 'front';
  if (OWN_ROUTES.test(url)) return 'own';
  return 'proxy';
}

/** A gRPC call no route matched is the front end's: `oauth_token` metadata and no `seldon`. */
export function grpcFrontEndCall(headers: IncomingHttpHeaders, frontEndOn: boolean): boolean {
  return frontEndOn && headers['oauth_token'] !== undefined && headers['seldon'] === undefined;
}

/** The gRPC services the front end serves: a front-end call for any other path is refused (404, UNIMPLEMENTED). */
export function frontEndServes(path: string): boolean {
  return path.startsWith('/seldon.protos.Seldon/');
}
