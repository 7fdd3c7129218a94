/**
 * Bearer-token protection of the admin port (`--admin-token-file`), for programs and browsers.
 *
 * - Every path but `/healthz` and `/readyz` (the kubelet's probes, which carry no credentials)
 *   needs `Authorization: Bearer <token>` or a browser session; else 401 with
 *   `WWW-Authenticate: Bearer` (`error="invalid_token"` when a wrong one was sent). Unknown paths
 *   too, so a 404 says nothing to a caller without the token.
 * - Browsers: a page request (`Accept: text/html`) without credentials gets a login form instead
 *   of the JSON 401. `POST /login` with the right token sets a session cookie (`HttpOnly`, so
 *   scripts cannot read it; `SameSite=Strict`, so other sites cannot make the browser send it; an
 *   HMAC of its expiry under a key derived from the token, so it is not the token and dies when
 *   the token changes) and redirects back, and the page's own refresh requests carry it. The
 *   token is posted in a form body, never put in a URL (history, proxy logs); `next` only ever
 *   redirects to a path on this port.
 * - Nothing here logs a token, a cookie or an Authorization header.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { esc } from './page.js';
import { SESSION_SECONDS, type AdminToken } from './token.js';

export const SESSION_COOKIE = 'seldon-gateway-admin';
const OPEN_PATHS = new Set(['/healthz', '/readyz', '/login']);
const REALM = 'seldon-gateway admin';

/** The value of cookie `name` in a Cookie header, if present. */
function cookie(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/** The token of an `Authorization: Bearer <token>` header (scheme case-insensitive), or undefined. */
function bearer(header: string | undefined): string | undefined {
  const m = header === undefined ? null : /^bearer +([^ ]+) *$/i.exec(header);
  return m?.[1];
}

/** A path on this port to go back to after login: `/…`, never `//host` or `/\host` (another site). */
function safeNext(next: unknown): string {
  return typeof next === 'string' && next.length <= 2048 && /^\/(?![/\\])[\x21-\x7e]*$/.test(next) ? next : '/';
}

const wantsHtml = (req: FastifyRequest): boolean => req.method === 'GET' && /\btext\/html\b/.test(req.headers.accept ?? '');

function loginPage(next: string, problem: string | undefined): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>seldon-gateway admin: sign in</title>
<meta name="viewport" content="width=device-width,initial-scale=1">
<style>body{font:15px system-ui,sans-serif;margin:3em auto;max-width:28em;color:#222}input{font:inherit;padding:.4em;width:100%;box-sizing:border-box}button{font:inherit;margin-top:.8em;padding:.4em 1.2em}.problem{color:#b00}code{background:#eee;padding:0 .2em}</style></head>
<body><h1>seldon-gateway admin</h1>
<p>This admin port needs its token (the content of <code>--admin-token-file</code>).</p>
${problem ? `<p class="problem">${esc(problem)}</p>` : ''}<form method="post" action="/login">
<input type="hidden" name="next" value="${esc(next)}">
<label for="token">Token</label>
<input id="token" name="token" type="password" autocomplete="current-password" required autofocus>
<button type="submit">Sign in</button>
</form></body></html>
`;
}

function sendLoginPage(reply: FastifyReply, next: string, problem?: string, status = 401): FastifyReply {
  return reply
    .code(status)
    .header('www-authenticate', `Bearer realm="${REALM}"`)
    .header('cache-control', 'no-store')
    .header('content-security-policy', "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'")
    .type('text/html; charset=utf-8')
    .send(loginPage(next, problem));
}

/** Require the token on `app` (see the header): call before any route is added. */
export function protectAdmin(app: FastifyInstance, token: AdminToken): void {
  // Only the login form is parsed; 4 KiB is plenty for a token.
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: 4096 }, (_req, body, done) => {
    done(null, Object.fromEntries(new URLSearchParams(body as string)));
  });

  app.addHook('onRequest', async (req, reply) => {
    if (OPEN_PATHS.has(req.routeOptions.url ?? '')) return;
    const presented = bearer(req.headers.authorization);
    if (presented !== undefined && (await token.matches(presented))) return;
    const session = presented === undefined ? cookie(req.headers.cookie, SESSION_COOKIE) : undefined;
    if (session !== undefined && (await token.validSession(session))) return;
    if (presented === undefined && wantsHtml(req)) return sendLoginPage(reply, safeNext(req.url));
    return reply
      .code(401)
      .header('www-authenticate', presented === undefined ? `Bearer realm="${REALM}"` : `Bearer realm="${REALM}", error="invalid_token"`)
      .header('cache-control', 'no-store')
      .send({ error: presented === undefined ? 'unauthorized' : 'invalid_token', detail: 'the admin port needs Authorization: Bearer <token> (the content of --admin-token-file)' });
  });

  app.get('/login', async (req, reply) => sendLoginPage(reply, safeNext((req.query as Record<string, unknown>).next), undefined, 200));

  app.post('/login', async (req, reply) => {
    const form = (req.body ?? {}) as Record<string, unknown>;
    const next = safeNext(form.next);
    if (typeof form.token !== 'string' || !(await token.matches(form.token.trim()))) return sendLoginPage(reply, next, 'That is not the token.');
    return reply
      .code(303)
      .header('location', next)
      .header('cache-control', 'no-store')
      .header('set-cookie', `${SESSION_COOKIE}=${token.session()}; HttpOnly; SameSite=Strict; Path=/; Max-Age=${SESSION_SECONDS}`)
      .send();
  });
}
