/**
 * Rollouts and bandits as a person sees them on the admin page (headless Chromium), and sticky
 * cookies as a browser client meets them: the page's numbers are the ones /routes gives, the
 * current step and each check's verdict are marked, the bandit's shares are drawn; a client without
 * the cookie gets a signed one and keeps its predictor with it, and a forged cookie is replaced.
 */
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHttpBackend, type HttpBackend } from '../../fixtures/http-backend.js';
import { sdep } from '../../helpers/gateway.js';
import { getJson, post, predict, startObservedGateway, type ObservedGateway } from '../../helpers/observability.js';

const CHROMIUM = '/usr/bin/chromium';
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

interface Steering {
  rollout?: { phase: string; step: number; weight: number; steps: number[]; checks: Record<string, { verdict: string }> };
  bandit?: { arms: Record<string, { share: number; rewards: number }>; history: unknown[] };
}

describe('rollouts, bandits and sticky cookies, seen from outside', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sgw-steering-page-'));
  const backends: Record<string, HttpBackend> = {};
  let gw: ObservedGateway;
  let browser: BrowserContext;
  let page: Page;

  const steering = async (name: string): Promise<Steering | undefined> =>
    (await getJson<{ deployments: { name: string; steering?: Steering }[] }>(`${gw.adminUrl}/routes`)).deployments.find((d) => d.name === name)?.steering;

  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install chromium (.ci/run installs it when missing)`);
    for (const name of ['main', 'v2', 'a', 'b', 'left', 'right']) {
      backends[name] = await startHttpBackend({
        name,
        handler: (req, res) => {
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end(req.url?.endsWith('/feedback') ? '{}' : JSON.stringify({ data: { names: [name], ndarray: [[1]] } }));
        },
      });
    }
    gw = await startObservedGateway({
      manifests: {
        'reviews.yaml': sdep(
          'reviews',
          'm',
          { predictors: [{ name: 'main' }, { name: 'v2' }] },
          { 'seldon.io/gateway-rollout': 'canary: v2\nsteps: [20, 60, 100]\ninterval: 1s\nminRequests: 20\nmaxLatencyShift: 300%' },
        ),
        'rec.yaml': sdep('rec', 'm', { predictors: [{ name: 'a' }, { name: 'b' }] }, { 'seldon.io/gateway-bandit': 'arms: [a, b]\nhalfLife: none' }),
        'split.yaml': sdep('split', 'm', { predictors: [{ name: 'left' }, { name: 'right', traffic: 50 }] }, { 'seldon.io/gateway-sticky': 'cookie' }),
      },
      resolve: {
        'reviews-main.m:8000': backends.main!.port,
        'reviews-v2.m:8000': backends.v2!.port,
        'rec-a.m:8000': backends.a!.port,
        'rec-b.m:8000': backends.b!.port,
        'split-left.m:8000': backends.left!.port,
        'split-right.m:8000': backends.right!.port,
      },
    });
    browser = await chromium.launchPersistentContext(mkdtempSync(join(tmpdir(), 'sgw-chromium-')), { executablePath: CHROMIUM, headless: true, args: ARGS, viewport: { width: 1400, height: 1000 } });
    page = await browser.newPage();
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await gw?.stop();
    await Promise.all(Object.values(backends).map((b) => b.close()));
  });

  it('the page shows the rollout step by step and the bandit moving, with the numbers /routes gives', async () => {
    // Traffic until the rollout has advanced once and the bandit has a history to draw.
    const end = Date.now() + 60_000;
    for (;;) {
      for (let i = 0; i < 20; i++) {
        expect((await post(`${gw.url}/seldon/m/reviews${predict}`)).status).toBe(200);
        const p = await post(`${gw.url}/seldon/m/rec${predict}`);
        const answer = JSON.parse(p.text) as { data: { names: string[] } };
        const reward = answer.data.names[0] === 'b' ? 1 : 0;
        expect((await post(`${gw.url}/seldon/m/rec/api/v1.0/feedback`, {}, JSON.stringify({ request: {}, response: answer, reward }))).status).toBe(200);
      }
      const s = await steering('reviews');
      const b = await steering('rec');
      if ((s?.rollout?.step ?? 0) >= 1 && (b?.bandit?.history.length ?? 0) >= 2) break;
      if (Date.now() > end) throw new Error(`no progress: ${JSON.stringify({ s, b })}`);
    }
    await page.goto(`${gw.adminUrl}/?refresh=3600`);
    const rollout = (await steering('reviews'))!.rollout!;
    const panel = page.locator('section[data-deployment="m/reviews"] .steering.rollout');
    expect(await panel.getAttribute('data-rollout-phase')).toBe(rollout.phase);
    // The current step is the dark one, and the effective weight is the live one.
    expect(await panel.locator('.steps span.now').textContent()).toBe(`${rollout.steps[rollout.step]}%`);
    expect(await panel.locator('.effective-weight').textContent()).toBe(`${rollout.weight}%`);
    // Every check has a row with its verdict as a class.
    for (const [name, c] of Object.entries(rollout.checks)) {
      expect(await panel.locator(`tr.check[data-check="${name}"]`).getAttribute('class')).toContain(`verdict-${c.verdict}`);
    }
    expect(await panel.locator('table.transitions tbody tr').count()).toBeGreaterThanOrEqual(2);
    const bandit = page.locator('section[data-deployment="m/rec"] .steering.bandit');
    const arms = (await steering('rec'))!.bandit!.arms;
    expect(await bandit.locator('tr[data-arm]').count()).toBe(2);
    expect(await bandit.locator('svg.shares polyline').count()).toBe(2);
    expect(Object.values(arms).reduce((n, a) => n + a.rewards, 0)).toBeGreaterThan(0);
    await page.screenshot({ path: join(dir, 'steering.png'), fullPage: true });
    console.info(`steering page screenshot: ${join(dir, 'steering.png')}`);
  }, 90_000);

  it('sticky cookies: a client without one gets a signed cookie and keeps its predictor with it; a forged one is replaced', async () => {
    const send = async (cookie?: string): Promise<{ who: string; setCookie: string | undefined }> => {
      const r = await request(`${gw.url}/seldon/m/split${predict}`, { method: 'POST', headers: { 'content-type': 'application/json', ...(cookie ? { cookie } : {}) }, body: '{}' });
      const text = await r.body.text();
      const set = r.headers['set-cookie'];
      return { who: (JSON.parse(text) as { data: { names: string[] } }).data.names[0]!, setCookie: Array.isArray(set) ? set[0] : set };
    };
    const places = new Set<string>();
    for (let client = 0; client < 24; client++) {
      const first = await send();
      expect(first.setCookie).toMatch(/^seldon-gateway-sticky=[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+; Path=\/; Max-Age=\d+; HttpOnly; SameSite=Lax$/);
      const cookie = first.setCookie!.split(';')[0]!;
      places.add(first.who);
      for (let i = 0; i < 10; i++) {
        const again = await send(cookie);
        expect(again.who).toBe(first.who);
        expect(again.setCookie).toBeUndefined();
      }
      // The same id with another signature is not ours: a new cookie is set.
      const forged = await send(cookie.replace(/\.[A-Za-z0-9_-]+$/, '.AAAAAAAAAAAAAAAAAAAAAA'));
      expect(forged.setCookie).toBeDefined();
    }
    // Both predictors get clients (24 clients at 50/50: all on one side is a 1-in-8-million chance).
    expect(places.size).toBe(2);
  });
});
