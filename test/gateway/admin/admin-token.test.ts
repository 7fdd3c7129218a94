/**
 * `--admin-token-file` on the real CLI (`node dist/gateway/main.js serve`): every admin path but
 * /healthz and /readyz needs `Authorization: Bearer <token>` or a browser session; the login form
 * sets an HttpOnly, SameSite=Strict session cookie that is not the token and only redirects to
 * this port; a rotated token file (written the way the kubelet updates a Secret) takes effect
 * without a restart and ends old sessions; an unusable file keeps the last good token; a file
 * that cannot be used at start stops the start; and no token ever reaches the log. Then the
 * diagnostics page in headless Chromium, logged in through the form, refreshing itself.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type BrowserContext } from 'playwright-core';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { poll, startCli, type CliGateway } from '../../helpers/cli.js';
import { sdep } from '../../helpers/gateway.js';

const root = fileURLToPath(new URL('../../..', import.meta.url));
const CHROMIUM = '/usr/bin/chromium';
const TOKEN = 'a3f1c9e2-admin-token-0123456789abcdef';
const NEXT_TOKEN = 'b7d20e44-rotated-token-fedcba9876543210';

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

async function admin(gw: CliGateway, path: string, options: { method?: 'GET' | 'POST' | 'HEAD'; headers?: Record<string, string>; body?: string } = {}): Promise<Answer> {
  const r = await request(`http://127.0.0.1:${gw.admin}${path}`, { method: options.method ?? 'GET', headers: options.headers ?? {}, body: options.body, headersTimeout: 5000, bodyTimeout: 5000 });
  return { status: r.statusCode, headers: r.headers, body: await r.body.text() };
}

const bearer = (token: string): Record<string, string> => ({ authorization: `Bearer ${token}` });
const login = (gw: CliGateway, token: string, next = '/'): Promise<Answer> =>
  admin(gw, '/login', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ token, next }).toString() });
/** The `name=value` part of a Set-Cookie header. */
const cookieOf = (a: Answer): string => String(a.headers['set-cookie']).split(';')[0]!;

/** Replace the file the way the kubelet updates a mounted Secret: write aside, then rename over it. */
function rotate(file: string, text: string): void {
  writeFileSync(`${file}.new`, text);
  renameSync(`${file}.new`, file);
}

describe('admin port with --admin-token-file (real CLI)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sgw-admin-token-'));
  const manifests = join(dir, 'manifests');
  const tokenFile = join(dir, 'token');
  let gw: CliGateway;

  beforeAll(async () => {
    spawnSync('mkdir', ['-p', manifests]);
    writeFileSync(join(manifests, 'iris.yaml'), sdep('iris', 'models', { predictors: [{ name: 'default' }] }));
    // A trailing newline, as `kubectl create secret --from-file` keeps it: trimmed.
    writeFileSync(tokenFile, `${TOKEN}\n`);
    gw = await startCli(['--manifests', manifests, '--workers', '1', '--admin-token-file', tokenFile, '--resolve', 'iris-default.models:8000=127.0.0.1:9']);
  }, 90_000);

  afterAll(async () => {
    await gw?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('/healthz and /readyz answer without a token (the kubelet probes carry none)', async () => {
    expect((await admin(gw, '/healthz')).status).toBe(200);
    expect((await admin(gw, '/readyz')).status).toBe(200);
    expect((await admin(gw, '/readyz?verbose=1')).status).toBe(200);
    expect((await admin(gw, '/healthz', { method: 'HEAD' })).status).toBe(200);
  });

  it('everything else answers 401 with WWW-Authenticate: Bearer and says nothing of the routes', async () => {
    for (const path of ['/routes', '/metrics', '/diagnostics', '/', '/nope', '/routes?x=1', '//routes', '/healthz/../routes']) {
      const a = await admin(gw, path, { headers: { accept: 'application/json' } });
      expect(a.status, path).toBe(401);
      expect(a.headers['www-authenticate'], path).toBe('Bearer realm="seldon-gateway admin"');
      expect(JSON.parse(a.body), path).toMatchObject({ error: 'unauthorized' });
      expect(a.body).not.toContain('iris');
    }
  });

  it('a wrong token, another scheme or a mangled header is refused (error="invalid_token" for a wrong bearer); none crashes the port', async () => {
    const wrong = [`${TOKEN}x`, TOKEN.slice(0, -1), TOKEN.toUpperCase(), 'x', 'a'.repeat(8000), `${TOKEN} ${TOKEN}`];
    for (const t of wrong) {
      const a = await admin(gw, '/routes', { headers: bearer(t) });
      expect(a.status, t.slice(0, 40)).toBe(401);
      expect(a.body).not.toContain('iris');
    }
    expect((await admin(gw, '/routes', { headers: bearer(`${TOKEN}x`) })).headers['www-authenticate']).toBe('Bearer realm="seldon-gateway admin", error="invalid_token"');
    for (const h of [`Basic ${Buffer.from(`admin:${TOKEN}`).toString('base64')}`, TOKEN, `Bearer`, `Bearer  `, `Token ${TOKEN}`]) {
      expect((await admin(gw, '/metrics', { headers: { authorization: h } })).status, h).toBe(401);
    }
    // A cookie that is not a session this token signed.
    for (const c of ['seldon-gateway-admin=1.abc', `seldon-gateway-admin=${TOKEN}`, `seldon-gateway-admin=99999999999.${'A'.repeat(43)}`, 'seldon-gateway-admin=']) {
      expect((await admin(gw, '/routes', { headers: { cookie: c } })).status, c).toBe(401);
    }
    expect((await admin(gw, '/healthz')).status).toBe(200);
  });

  it('the right token opens every path: /routes, /metrics, /diagnostics, the page (scheme case-insensitive)', async () => {
    const routes = await admin(gw, '/routes', { headers: bearer(TOKEN) });
    expect(routes.status).toBe(200);
    expect(JSON.parse(routes.body).deployments.map((d: { name: string }) => d.name)).toEqual(['iris']);
    const metrics = await admin(gw, '/metrics', { headers: { authorization: `bearer ${TOKEN}` } });
    expect(metrics.status).toBe(200);
    expect(metrics.body).toContain('seldon_gateway_config_generation');
    expect((await admin(gw, '/diagnostics', { headers: bearer(TOKEN) })).status).toBe(200);
    const page = await admin(gw, '/', { headers: { ...bearer(TOKEN), accept: 'text/html' } });
    expect(page.status).toBe(200);
    expect(page.body).toContain('<title>seldon-gateway diagnostics</title>');
  });

  it('a browser gets a login form; the right token sets an HttpOnly SameSite=Strict session cookie that opens the admin port', async () => {
    const form = await admin(gw, '/routes', { headers: { accept: 'text/html,application/xhtml+xml' } });
    expect(form.status).toBe(401);
    expect(form.headers['content-type']).toContain('text/html');
    expect(form.body).toContain('<form method="post" action="/login">');
    expect(form.body).toContain('name="next" value="/routes"');
    expect(form.body).not.toContain('iris');

    const refused = await login(gw, 'not the token at all, no');
    expect(refused.status).toBe(401);
    expect(refused.headers['set-cookie']).toBeUndefined();
    expect(refused.body).toContain('That is not the token.');

    const ok = await login(gw, TOKEN, '/routes');
    expect(ok.status).toBe(303);
    expect(ok.headers.location).toBe('/routes');
    const setCookie = String(ok.headers['set-cookie']);
    expect(setCookie).toMatch(/^seldon-gateway-admin=[0-9]+\.[A-Za-z0-9_-]{43}; HttpOnly; SameSite=Strict; Path=\/; Max-Age=43200$/);
    expect(setCookie).not.toContain(TOKEN);
    const session = cookieOf(ok);
    const routes = await admin(gw, '/routes', { headers: { cookie: `other=1; ${session}` } });
    expect(routes.status).toBe(200);
    expect(routes.body).toContain('iris');
    // A session cookie with a bearer that is wrong: the bearer decides.
    expect((await admin(gw, '/routes', { headers: { cookie: session, ...bearer('wrong-but-long-enough-token') } })).status).toBe(401);
  });

  it('after login it only ever redirects to a path on this port', async () => {
    for (const next of ['//evil.example/x', '/\\evil.example', 'https://evil.example/', 'javascript:alert(1)', '/ok path', '']) {
      const a = await login(gw, TOKEN, next);
      expect(a.status, next).toBe(303);
      expect(a.headers.location, next).toBe('/');
    }
    expect((await login(gw, TOKEN, '/diagnostics?x=1')).headers.location).toBe('/diagnostics?x=1');
    // The login form echoes `next` escaped, never as markup.
    const form = await admin(gw, '/login?next=/"><script>alert(1)</script>');
    expect(form.status).toBe(200);
    expect(form.body).not.toContain('<script>');
    expect(form.headers['content-security-policy']).toContain("default-src 'none'");
  });

  it('a rotated token file takes effect without a restart and ends the old sessions; an emptied one keeps the last good token', async () => {
    const oldSession = cookieOf(await login(gw, TOKEN));
    rotate(tokenFile, NEXT_TOKEN);
    await poll(
      'new token accepted',
      async () => (await admin(gw, '/routes', { headers: bearer(NEXT_TOKEN) })).status,
      (s) => s === 200,
      5000,
    );
    expect((await admin(gw, '/routes', { headers: bearer(TOKEN) })).status).toBe(401);
    expect((await admin(gw, '/routes', { headers: { cookie: oldSession } })).status).toBe(401);

    rotate(tokenFile, '');
    await poll(
      'unusable file reported',
      async () => {
        await admin(gw, '/routes', { headers: bearer(NEXT_TOKEN) });
        return gw.output().includes('admin token file unusable');
      },
      (seen) => seen,
      5000,
    );
    expect((await admin(gw, '/routes', { headers: bearer(NEXT_TOKEN) })).status).toBe(200);
    rotate(tokenFile, `${TOKEN}\n`);
    await poll(
      'first token again',
      async () => (await admin(gw, '/routes', { headers: bearer(TOKEN) })).status,
      (s) => s === 200,
      5000,
    );
  });

  it('the log says the admin port has a token, and never holds a token, a session or an Authorization header', () => {
    const out = gw.output();
    const listening = out
      .split('\n')
      .filter((l) => l.includes('seldon-gateway listening'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(listening[0]).toMatchObject({ adminToken: true });
    expect(out).toContain('admin token changed');
    for (const secret of [TOKEN, NEXT_TOKEN, 'seldon-gateway-admin=', 'Bearer ']) expect(out).not.toContain(secret);
    expect(out).not.toMatch(/the admin port answers \/routes/);
  });
});

describe('--admin-token-file that cannot be used stops the start, naming the file and never the token', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sgw-admin-token-bad-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const serve = (tokenFile: string) =>
    spawnSync(
      process.execPath,
      [
        join(root, 'dist/gateway/main.js'),
        'serve',
        '--manifests',
        join(root, 'examples/deployments'),
        '--port',
        '0',
        '--admin-port',
        '0',
        '--host',
        '127.0.0.1',
        '--workers',
        '1',
        '--admin-token-file',
        tokenFile,
      ],
      { encoding: 'utf8', timeout: 15_000 },
    );

  it.each([
    ['missing', null, /--admin-token-file .*missing: cannot be read \(ENOENT\)/],
    ['empty', '\n', /--admin-token-file .*empty: the file is empty/],
    ['short', 'short-token', /shorter than 16 characters/],
    ['spaces', 'a token with some spaces in it', /visible ASCII characters without spaces/],
  ])('%s', (name, content, message) => {
    const file = join(dir, name);
    if (content !== null) writeFileSync(file, content);
    const r = serve(file);
    expect(r.status, r.stderr).toBe(1);
    expect(r.stderr).toMatch(message);
    if (content?.trim()) expect(r.stderr + r.stdout).not.toContain(content.trim());
  });
});

describe('the diagnostics page behind the token, in headless Chromium', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sgw-admin-token-browser-'));
  const tokenFile = join(dir, 'token');
  let gw: CliGateway;
  let browser: BrowserContext;

  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install chromium (.ci/run installs it when missing)`);
    writeFileSync(tokenFile, TOKEN);
    gw = await startCli(['--manifests', join(root, 'examples/deployments'), '--workers', '1', '--admin-token-file', tokenFile]);
    browser = await chromium.launchPersistentContext(join(dir, 'user-data'), {
      executablePath: CHROMIUM,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await gw?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('asks for the token, then shows the page, which keeps refreshing with its session while scripts cannot read it', async () => {
    const page = await browser.newPage();
    const first = await page.goto(`http://127.0.0.1:${gw.admin}/?refresh=1`);
    expect(first?.status()).toBe(401);
    await page.fill('input[name="token"]', 'a wrong token, surely');
    await page.click('button[type="submit"]');
    expect(await page.locator('.problem').textContent()).toBe('That is not the token.');
    await page.fill('input[name="token"]', TOKEN);
    await Promise.all([page.waitForURL(`http://127.0.0.1:${gw.admin}/?refresh=1`), page.click('button[type="submit"]')]);
    expect(await page.title()).toBe('seldon-gateway diagnostics');
    expect(await page.locator('section[data-deployment="seldon/iris"]').count()).toBe(1);
    // The page's own fetch carries the session: it refreshes.
    await expect.poll(() => page.locator('#status').textContent(), { timeout: 10_000 }).toMatch(/^updated /);
    expect(await page.evaluate(() => (globalThis as unknown as { document: { cookie: string } }).document.cookie)).toBe('');
    // Links on the page work with the session too.
    const routes = await page.goto(`http://127.0.0.1:${gw.admin}/routes`);
    expect(routes?.status()).toBe(200);
    expect(await routes!.text()).toContain('"iris"');
  }, 60_000);
});
