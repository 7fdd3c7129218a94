/**
 * Where the gateway refuses a request that the reference (llhttp, strict, as `node:http` runs it)
 * reads: the documented list (docs/edge.md "Stricter than llhttp"), each rule with its reason. A
 * refusal of the fuzzers' request side is fine only when one of these names it; anything else the
 * gateway refuses and llhttp reads is a divergence.
 */
import type { LlhttpRequest } from './llhttp.js';

export interface StricterRule {
  readonly name: string;
  /** The status the gateway answers with. */
  readonly status: readonly number[];
  /** Why the gateway is stricter than llhttp here. */
  readonly reason: string;
  readonly applies: (req: LlhttpRequest) => boolean;
}

const names = (req: LlhttpRequest): string[] => req.rawHeaders.filter((_v, i) => i % 2 === 0).map((n) => n.toLowerCase());
const values = (req: LlhttpRequest, name: string): string[] => req.rawHeaders.filter((_v, i) => i % 2 === 1 && req.rawHeaders[i - 1]!.toLowerCase() === name);

function hostAndPort(v: string): boolean {
  const m = /^(?:(?:[A-Za-z0-9\-._~!$&'()*+;=]|%[0-9A-Fa-f]{2})+|\[[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*\])(?::([0-9]{1,5}))?$/.exec(v);
  return m !== null && (m[1] === undefined || (Number(m[1]) >= 1 && Number(m[1]) <= 65535));
}

/** The path part of the target, as the gateway checks it (absolute-form: its path). */
function pathOf(target: string): string {
  const abs = /^[a-z][a-z0-9+.-]*:\/\/[^/?#]*/i.exec(target);
  const rest = abs ? target.slice(abs[0].length) || '/' : target;
  const q = rest.search(/[?#]/);
  return q < 0 ? rest : rest.slice(0, q);
}

export const STRICTER_RULES: readonly StricterRule[] = [
  {
    name: 'method TRACE or CONNECT',
    status: [405],
    reason: 'TRACE echoes credentials back (cross-site tracing) and CONNECT opens a tunnel: a model serves neither; answered 405 with Allow, as Envoy answers CONNECT without an upgrade config',
    applies: (r) => r.method === 'TRACE' || r.method === 'CONNECT',
  },
  {
    name: 'a method no model serves',
    status: [400, 404, 405],
    reason: 'WebDAV and other methods llhttp knows (PROPFIND, QUERY, …) reach no route: a SeldonDeployment serves GET, HEAD, POST, PUT, PATCH, DELETE and OPTIONS',
    applies: (r) => !['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'TRACE', 'CONNECT'].includes(r.method),
  },
  {
    name: 'more than one Host',
    status: [400],
    reason: 'RFC 9112 §3.2: a server must answer 400 to a request with more than one Host field line; llhttp leaves it to the server and node:http takes the first',
    applies: (r) => names(r).filter((n) => n === 'host').length > 1,
  },
  {
    name: 'no Host in HTTP/1.1',
    status: [400],
    reason: 'RFC 9112 §3.2 (node:http refuses it too, by requireHostHeader)',
    applies: (r) => r.versionMinor === 1 && !names(r).includes('host'),
  },
  {
    name: 'a Host that is not host[:port]',
    status: [400],
    reason:
      'RFC 9112 §3.2 and RFC 3986 §3.2.2: userinfo (`a@b`), a space, a list (`x,y`), an unclosed IP literal or a second port disguise where the request goes; llhttp reads any field value (docs/edge.md "Host and target")',
    // Written apart from routing/values/host.ts: a reg-name of unreserved characters, sub-delims but `,`, and
    // %-escapes, or an IPv6 literal in brackets, then an optional port 1-65535; anything else may be refused.
    applies: (r) => values(r, 'host').some((v) => !hostAndPort(v)),
  },
  {
    name: 'a fragment in the target',
    status: [400],
    reason: "a fragment is the client's own and never sent (RFC 9110 §7.1): Envoy's http_reject_path_with_fragment answers 400 rather than route by a path that ends somewhere else",
    applies: (r) => r.target.includes('#'),
  },
  {
    name: 'a framing field look-alike',
    status: [400],
    reason: 'Content_Length or Transfer_Encoding: a server that maps "_" to "-" (CGI environments) would frame by it (nginx drops such names by default)',
    applies: (r) => names(r).some((n) => n === 'content_length' || n === 'transfer_encoding'),
  },
  {
    name: 'a transfer coding other than chunked',
    status: [400, 501],
    reason: 'the gateway decodes chunked only and never forwards a coded body as if plain; Envoy and nginx answer 501',
    applies: (r) => values(r, 'transfer-encoding').some((v) => !/^[ \t]*chunked[ \t]*$/i.test(v)) || values(r, 'transfer-encoding').length > 1,
  },
  {
    name: 'a dot segment an encoded separator delimits, or a backslash in the path',
    status: [400],
    reason:
      'docs/edge.md "Paths": "." and ".." segments are resolved as Envoy normalises them, but one that only %2f or %5c delimits, and a raw backslash, are refused: a model that decodes it would walk out of its path',
    applies: (r) => {
      const p = pathOf(r.target);
      return p.includes('\\') || /(?:%2f|%5c)(?:\.|%2e){1,2}(?:$|\/|%2f|%5c)|(?:^|\/|%2f|%5c)(?:\.|%2e){1,2}(?:%2f|%5c)/i.test(p);
    },
  },
  {
    name: 'a target that is not origin-form or absolute-form',
    status: [400, 404],
    reason: 'an asterisk-form or authority-form target names no model (RFC 9112 §3.2.3-4: only OPTIONS * and CONNECT use them)',
    applies: (r) => !r.target.startsWith('/') && !/^https?:\/\//i.test(r.target),
  },
];

/** The rules that explain refusing `req` with `status`. */
export function stricterRule(req: LlhttpRequest, status: number): StricterRule | undefined {
  return STRICTER_RULES.find((rule) => rule.status.includes(status) && rule.applies(req));
}
