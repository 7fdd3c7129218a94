/**
 * CORS on REST routes that have a policy (`backend.cors`; docs/routing.md#cors), done as Envoy's
 * cors filter does it for Ambassador, so browser apps keep working when they move over:
 *
 * - a preflight (OPTIONS with a non-empty `Origin` and `Access-Control-Request-Method`) from an
 *   allowed origin is answered here, 200 with the policy's Access-Control-* headers, before auth and
 *   rate limits (Envoy's cors filter runs before ext_authz: preflights carry no credentials) and
 *   without reaching the model. The requested method and headers are not judged: the browser
 *   compares them with the lists;
 * - any other request from an allowed origin is proxied, and the answer gets Access-Control-Allow-
 *   Origin, -Allow-Credentials and -Expose-Headers (replacing any of those the model sent) and
 *   `Vary: Origin`; so do the gateway's own error answers (edge/http-answer.ts), so a browser can
 *   read them. These headers are decided once per request (`corsRequest`, or `corsHeadersFor` once the
 *   gate chose an OAuth front-end request's route) and carried by the request to every answer;
 * - a request without `Origin`, or from an origin the policy does not allow, preflight or not, is
 *   proxied untouched (Envoy forwards non-matching preflights by default).
 *
 * Routes without a policy never get here: the proxy checks `backend.cors !== null` and nothing else.
 */
import type { RestRequest, RestResponse } from '../edge/rest-exchange.js';
import type { CorsPolicy } from '../../routing/types.js';

/** The request's `Origin` if the policy allows it, else undefined. */
function allowedOrigin(req: RestRequest, policy: CorsPolicy): string | undefined {
  const origin = req.headers.origin;
  return origin !== undefined && origin !== '' && policy.allowsOrigin(origin) ? origin : undefined;
}

/** The headers every answer to a request from an allowed origin carries (not a preflight's), in the order they are written. */
export type CorsHeaders = Readonly<Record<string, string>>;

/** The headers an answer to an allowed origin carries (not a preflight's), as an object. */
function answerHeaders(policy: CorsPolicy, origin: string): CorsHeaders {
  // The Origin itself, `*` in the policy included, as Envoy's CORS filter answers.
  const h: Record<string, string> = { 'access-control-allow-origin': origin };
  if (policy.credentials) h['access-control-allow-credentials'] = 'true';
  if (policy.text.exposedHeaders !== '') h['access-control-expose-headers'] = policy.text.exposedHeaders;
  h.vary = 'Origin';
  return h;
}

/**
 * First thing for a request on a route with a policy: an allowed preflight is answered here
 * (`'answered'`); any other request from an allowed origin gets the headers the gateway's own
 * answers to it carry (its errors: a browser can then read a 401, 429 or 503); undefined otherwise.
 */
export function corsRequest(req: RestRequest, res: RestResponse, policy: CorsPolicy, draining: boolean): 'answered' | CorsHeaders | undefined {
  const origin = allowedOrigin(req, policy);
  if (origin === undefined) return undefined;
  const requested = req.method === 'OPTIONS' ? req.headers['access-control-request-method'] : undefined;
  if (requested === undefined || requested === '') return answerHeaders(policy, origin);
  const h: Record<string, string> = { 'access-control-allow-origin': origin };
  if (policy.credentials) h['access-control-allow-credentials'] = 'true';
  // `*` echoes what the preflight asks for (Envoy's rule): a literal `*` means nothing to a browser sending credentials.
  const methods = policy.text.methods === '*' ? requested : policy.text.methods;
  if (methods !== '') h['access-control-allow-methods'] = methods;
  const headers = policy.text.headers === '*' ? (req.headers['access-control-request-headers'] ?? '') : policy.text.headers;
  if (headers !== '') h['access-control-allow-headers'] = headers;
  if (policy.maxAge !== null) h['access-control-max-age'] = policy.maxAge;
  h.vary = 'Origin';
  h['content-length'] = '0';
  // `connection` is HTTP/1.1 only (an HTTP/2 answer must not carry it).
  if (draining && req.httpVersionMajor === 1) h.connection = 'close';
  try {
    res.writeHead(200, h);
    res.end();
  } catch {
    res.destroy();
  }
  return 'answered';
}

/**
 * An OAuth front-end request's headers, once the gate chose its route (its path names none, so the
 * CORS stage had no policy to read): a preflight carries no token and never gets this far.
 */
export function corsHeadersFor(req: RestRequest, policy: CorsPolicy | null): CorsHeaders | undefined {
  const origin = policy === null ? undefined : allowedOrigin(req, policy);
  return origin === undefined ? undefined : answerHeaders(policy!, origin);
}

const ALLOW_ORIGIN = 'access-control-allow-origin';
const ALLOW_CREDENTIALS = 'access-control-allow-credentials';
const EXPOSE_HEADERS = 'access-control-expose-headers';

/**
 * The proxied answer's head (`headers`: flat name/value list, client-bound) of a request from an
 * allowed origin (`cors`, as decided for it): the model's Access-Control-Allow-Origin,
 * -Allow-Credentials and -Expose-Headers give way to the policy's, and `Vary: Origin` is added
 * unless a Vary already names Origin or `*`.
 */
export function corsResponseHeaders(headers: string[], cors: CorsHeaders): void {
  let varies = false;
  for (let i = headers.length - 2; i >= 0; i -= 2) {
    const name = headers[i]!.toLowerCase();
    if (name === ALLOW_ORIGIN || name === ALLOW_CREDENTIALS || name === EXPOSE_HEADERS) headers.splice(i, 2);
    else if (name === 'vary' && /(?:^|,)\s*(?:origin|\*)\s*(?:,|$)/i.test(headers[i + 1]!)) varies = true;
  }
  for (const name in cors) if (name !== 'vary' || !varies) headers.push(name, cors[name]!);
}
