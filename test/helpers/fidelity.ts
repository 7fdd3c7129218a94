/**
 * The documented header rules of the REST proxy (docs/edge.md "Headers", gateway/edge/http-headers.ts,
 * docs/routing.md#rest-prefixes-and-rewrite), as a test states them: what an upstream may see differ from what the client
 * sent, and what a client may see differ from what the upstream answered. Everything else must be
 * byte for byte the same, in order, with the original case.
 *
 * Requests: hop-by-hop headers (Connection and the names it lists, Keep-Alive, Proxy-Connection,
 * TE, Trailer, Transfer-Encoding, Upgrade, Expect) are dropped; X-Forwarded-For / X-Forwarded-Proto
 * are replaced (peer not trusted), X-Envoy-Original-Path set, X-Request-Id added when absent, and
 * x-envoy-* / x-seldon-predictor from the client dropped. The OAuth front end drops the client's
 * Authorization. A shadow copy's Host gets `-shadow` before any port. Framing may change only
 * where the client used chunked (the upstream may get a Content-Length of the same body) or sent
 * no body (the upstream may get `Content-Length: 0`). Host is checked by value only (exactly one
 * line): an HTTP/1.1 client's stays where and as it was sent (test/gateway/upstream/http1-client.test.ts), an h2
 * request's :authority becomes a `host` line first.
 * The upstream hop may carry the gateway's own `Connection: keep-alive|close`, never a name the
 * client listed.
 *
 * Responses: hop-by-hop headers (and those the upstream's Connection lists) are dropped; the
 * gateway may add its own Connection / Keep-Alive / Transfer-Encoding.
 */
import { headerValue, headerValues, startRecordingUpstream, type Answer, type HeaderLine, type RecordedRequest, type RecordingUpstream } from '../fixtures/recording-upstream.js';
import { sdep } from './gateway.js';

const REQUEST_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'expect', 'proxy-authorization', 'proxy-authenticate']);
const RESPONSE_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'proxy-authenticate']);
const GATEWAY_SET = new Set(['x-forwarded-for', 'x-forwarded-proto', 'x-envoy-original-path', 'x-request-id']);
const FRAMING = new Set(['content-length', 'transfer-encoding']);

function listedIn(lines: readonly HeaderLine[]): Set<string> {
  const out = new Set<string>();
  for (const v of headerValues(lines, 'connection')) {
    for (const t of v.split(',')) {
      const n = t.trim().toLowerCase();
      if (n && n !== 'close' && n !== 'keep-alive') out.add(n);
    }
  }
  return out;
}

/** `-shadow` before any `:port`. */
export function shadowHostOf(host: string): string {
  const m = /^(.*?)(:\d+)?$/.exec(host)!;
  return `${m[1]}-shadow${m[2] ?? ''}`;
}

/** What the upstream must see of the client's header lines (framing and gateway-set ones aside). */
export function expectedUpstreamLines(sent: readonly HeaderLine[], opts: { dropAuthorization?: boolean; shadow?: boolean } = {}): HeaderLine[] {
  const listed = listedIn(sent);
  const out: HeaderLine[] = [];
  for (const [k, v] of sent) {
    const n = k.toLowerCase();
    if (REQUEST_HOP.has(n) || listed.has(n) || GATEWAY_SET.has(n) || FRAMING.has(n) || n === 'host') continue;
    if (n.startsWith('x-envoy-') || n === 'x-seldon-predictor') continue;
    if (opts.dropAuthorization && n === 'authorization') continue;
    out.push(opts.shadow && n === 'host' ? [k, shadowHostOf(v)] : [k, v]);
  }
  return out;
}

/** The Host the upstream must see. */
export function expectedHost(sent: readonly HeaderLine[], opts: { shadow?: boolean } = {}): string[] {
  return headerValues(sent, 'host').map((h) => (opts.shadow ? shadowHostOf(h) : h));
}

/** The upstream's header lines without Host, framing, the hop's own Connection and gateway-set
 * headers (each checked separately). */
export function comparableUpstreamLines(received: readonly HeaderLine[]): HeaderLine[] {
  return received.filter(([k]) => {
    const n = k.toLowerCase();
    return !FRAMING.has(n) && !GATEWAY_SET.has(n) && n !== 'host' && n !== 'connection';
  });
}

/** Tokens of the upstream hop's Connection header other than keep-alive / close (must be none). */
export function foreignConnectionTokens(received: readonly HeaderLine[]): string[] {
  return headerValues(received, 'connection')
    .flatMap((v) => v.split(','))
    .map((t) => t.trim().toLowerCase())
    .filter((t) => t !== '' && t !== 'keep-alive' && t !== 'close');
}

export interface ForwardingHeaders {
  xff: string[];
  proto: string[];
  originalPath: string[];
  requestId: string[];
}

export function forwardingHeaders(received: readonly HeaderLine[]): ForwardingHeaders {
  return {
    xff: headerValues(received, 'x-forwarded-for'),
    proto: headerValues(received, 'x-forwarded-proto'),
    originalPath: headerValues(received, 'x-envoy-original-path'),
    requestId: headerValues(received, 'x-request-id'),
  };
}

/** How the client framed its body: 'none' (no framing headers), 'cl' or 'chunked'. */
export type Framing = 'none' | 'cl' | 'chunked';

/**
 * Whether the upstream's framing is allowed for the client's: a Content-Length is kept as is; a
 * chunked body may arrive chunked or with a Content-Length of its length; no body may arrive as
 * `Content-Length: 0`. Returns a description of the problem, or undefined.
 */
export function framingProblem(client: Framing, clientLength: number | undefined, received: readonly HeaderLine[], receivedBodyLength: number): string | undefined {
  const te = headerValue(received, 'transfer-encoding');
  const cl = headerValues(received, 'content-length');
  if (cl.length > 1) return `several Content-Length lines: ${cl.join(' | ')}`;
  if (client === 'cl') {
    if (te !== undefined) return `Transfer-Encoding ${te} where the client sent Content-Length ${clientLength}`;
    if (cl[0] !== String(clientLength)) return `Content-Length ${cl[0] ?? 'absent'} where the client sent ${clientLength}`;
    return undefined;
  }
  if (client === 'chunked') {
    if (te !== undefined && cl.length) return 'both Transfer-Encoding and Content-Length';
    if (te !== undefined) return /^chunked$/i.test(te) ? undefined : `Transfer-Encoding ${te}`;
    if (cl[0] === String(receivedBodyLength)) return undefined;
    return `neither chunked nor a Content-Length of the body (${cl[0] ?? 'absent'})`;
  }
  if (te !== undefined) return `Transfer-Encoding ${te} on a request without a body`;
  if (cl.length && cl[0] !== '0') return `Content-Length ${cl[0]} on a request without a body`;
  return undefined;
}

/** What the client must see of the upstream's header lines. */
export function expectedClientLines(answered: readonly HeaderLine[]): HeaderLine[] {
  const listed = listedIn(answered);
  return answered.filter(([k]) => !RESPONSE_HOP.has(k.toLowerCase()) && !listed.has(k.toLowerCase()));
}

/** The client's header lines without those the gateway may add (its own hop-by-hop headers, and the upstream's time as Envoy adds it). */
export function comparableClientLines(received: readonly HeaderLine[]): HeaderLine[] {
  return received.filter(([k]) => !['connection', 'keep-alive', 'transfer-encoding', 'x-envoy-upstream-service-time'].includes(k.toLowerCase()));
}

/** A JSON document of exactly n bytes (n >= 24). */
export function jsonOfSize(n: number): Buffer {
  const head = '{"data":{"ndarray":[[';
  const tail = ']]}}';
  const room = n - head.length - tail.length;
  if (room < 1) throw new Error(`jsonOfSize: ${n} is too small`);
  // "1,1,...,1" has odd length; pad with a space when room is even (whitespace is valid JSON).
  const ones = room % 2 === 1 ? room : room - 1;
  const body = '1,'.repeat((ones - 1) / 2) + '1' + (room % 2 === 1 ? '' : ' ');
  return Buffer.from(head + body + tail);
}

/** Every byte value, repeated to n bytes: NUL, CR, LF, high bytes, invalid UTF-8. */
export function binaryOfSize(n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 7 + 13) & 0xff;
  return b;
}

// ---- the route kinds every fidelity matrix runs through -------------------------------------------

/** A model's answer for upstream `name` (its status line, or the default one). */
export type ModelAnswer = (name: string, req: RecordedRequest, statusLine?: string) => Answer;

/**
 * Recording upstreams by name, each answering `answer`; the one named `retry` answers the first
 * attempt of each case (`x-case`) 503, so the route's retry reaches it a second time.
 */
export async function startRouteKindUpstreams(names: readonly string[], answer: ModelAnswer): Promise<Record<string, RecordingUpstream>> {
  const up: Record<string, RecordingUpstream> = {};
  const attempts = new Map<string, number>();
  for (const n of names) {
    up[n] = await startRecordingUpstream({
      name: n,
      bodyIdleMs: 3000,
      responder: (req) => {
        if (n === 'retry') {
          const id = headerValue(req.headers, 'x-case') ?? '';
          const k = (attempts.get(id) ?? 0) + 1;
          attempts.set(id, k);
          if (k === 1) return answer(n, req, 'HTTP/1.1 503 Service Unavailable');
        }
        return answer(n, req);
      },
    });
  }
  return up;
}

/**
 * The SeldonDeployments of the route kinds in namespace `ns` (plain, a header route beside it,
 * a 50/50 canary, a shadow, retries, the OAuth front end with `oauth`'s key and secret, a gate),
 * and where their Services resolve among `up` (the upstreams of `startRouteKindUpstreams` named
 * plain, header, canaryMain, canaryCanary, shadowMain, shadowCopy, retry, oauth, gated).
 */
export function routeKinds(
  ns: string,
  up: Readonly<Record<string, RecordingUpstream>>,
  oauth: { key: string; secret: string },
): { manifests: Record<string, string>; resolve: Record<string, number> } {
  return {
    manifests: {
      'plain.yaml': sdep('plain', ns, { predictors: [{ name: 'main' }] }),
      'plain-eu.yaml': sdep('plain-eu', ns, { annotations: { 'seldon.io/ambassador-service-name': 'plain', 'seldon.io/ambassador-header': 'x-route: special' }, predictors: [{ name: 'main' }] }),
      'canary.yaml': sdep('canary', ns, {
        predictors: [
          { name: 'main', traffic: 50 },
          { name: 'canary', traffic: 50 },
        ],
      }),
      'shadowed.yaml': sdep('shadowed', ns, { predictors: [{ name: 'main' }, { name: 'copy', shadow: true }] }),
      'retry.yaml': sdep('retry', ns, { predictors: [{ name: 'main' }] }, { 'seldon.io/ambassador-retries': '2' }),
      'secure.yaml': sdep('secure', ns, { oauth_key: oauth.key, oauth_secret: oauth.secret, predictors: [{ name: 'main' }] }),
      'gated.yaml': sdep('gated', ns, { predictors: [{ name: 'main' }] }, { 'seldon.io/gateway-rate-limit': '100000/s' }),
    },
    resolve: {
      [`plain-main.${ns}:8000`]: up.plain!.port,
      [`plain-eu-main.${ns}:8000`]: up.header!.port,
      [`canary-main.${ns}:8000`]: up.canaryMain!.port,
      [`canary-canary.${ns}:8000`]: up.canaryCanary!.port,
      [`shadowed-main.${ns}:8000`]: up.shadowMain!.port,
      [`shadowed-copy.${ns}:8000`]: up.shadowCopy!.port,
      [`retry-main.${ns}:8000`]: up.retry!.port,
      [`secure-main.${ns}:8000`]: up.oauth!.port,
      [`gated-main.${ns}:8000`]: up.gated!.port,
    },
  };
}

/** The requests of case `id` that reached `ups`: once `count` have (or `ms` passed), with their bodies read. */
export async function waitForCase(ups: readonly RecordingUpstream[], id: string, count: number, ms = 3000): Promise<RecordedRequest[]> {
  const end = Date.now() + ms;
  for (;;) {
    const got = ups.flatMap((u) => u.byCase(id));
    if (got.length >= count || Date.now() > end) {
      await Promise.all(got.map((g) => Promise.race([g.bodyDone, new Promise((r) => setTimeout(r, 5000))])));
      return got;
    }
    await new Promise((r) => setTimeout(r, 5));
  }
}
