/**
 * The admin page fits the window (headless Chromium at 1,280 and 2,400 px): no horizontal
 * scrollbar, long text (a rollout's "why", check details, reasons with long unbroken values) wraps,
 * and nothing sticks out of its deployment's card. And a rollout promoted within the window is
 * shown as healthy: its primary's weight is 0% while the window still holds the traffic it took
 * before, and that is said, not flagged in red. Screenshots go to
 * `$TMPDIR/seldon-gateway-admin-layout/page-<width>.png`.
 */
import { existsSync, mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHttpBackend, type HttpBackend } from '../../fixtures/http-backend.js';
import { sdep } from '../../helpers/gateway.js';
import { getJson, post, predict, startObservedGateway, type ObservedGateway } from '../../helpers/observability.js';

const CHROMIUM = '/usr/bin/chromium';
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const SHOTS = join(tmpdir(), 'seldon-gateway-admin-layout');
const LONG_PREDICTOR = 'a-predictor-whose-name-takes-all-of-the-sixty-three-characters1';

/** What overflows, measured in the page: the document's scroll width, and elements past their card's right edge or cut by their own box. */
interface Overflow {
  scrollWidth: number;
  clientWidth: number;
  outside: string[];
  cut: string[];
}

function measure(): Overflow {
  const doc = (globalThis as unknown as { document: { documentElement: { scrollWidth: number; clientWidth: number }; querySelectorAll(s: string): ArrayLike<El> } }).document;
  interface El {
    tagName: string;
    className: unknown;
    textContent: string | null;
    scrollWidth: number;
    clientWidth: number;
    children: ArrayLike<unknown>;
    getBoundingClientRect(): { right: number; width: number };
    querySelectorAll(s: string): ArrayLike<El>;
  }
  const name = (e: El): string => `${e.tagName.toLowerCase()}.${String(e.className)} "${(e.textContent ?? '').trim().slice(0, 60)}"`;
  const outside: string[] = [];
  const cut: string[] = [];
  for (const card of Array.from(doc.querySelectorAll('section.deployment, section#disagreements, p.summary'))) {
    const right = card.getBoundingClientRect().right;
    for (const e of Array.from(card.querySelectorAll('*'))) {
      const r = e.getBoundingClientRect();
      if (r.width > 0 && r.right > right + 0.5) outside.push(`${name(e)} ends at ${Math.round(r.right)} past ${Math.round(right)}`);
      // A text box narrower than its own text (clipped, or scrolled) cuts it.
      if (e.children.length === 0 && (e.textContent ?? '').trim() !== '' && e.scrollWidth > e.clientWidth + 1 && e.clientWidth > 0) cut.push(`${name(e)}: ${e.scrollWidth} > ${e.clientWidth}`);
    }
  }
  return { scrollWidth: doc.documentElement.scrollWidth, clientWidth: doc.documentElement.clientWidth, outside, cut };
}

describe('the admin page fits its window, and a promoted rollout reads as healthy', () => {
  const backends: Record<string, HttpBackend> = {};
  let gw: ObservedGateway;
  let browser: BrowserContext;

  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install chromium (.ci/run installs it when missing)`);
    mkdirSync(SHOTS, { recursive: true });
    for (const name of ['main', 'v2', 'long']) {
      backends[name] = await startHttpBackend({
        name,
        handler: (_req, res) => {
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ data: { names: [name], ndarray: [[1]] } }));
        },
      });
    }
    gw = await startObservedGateway({
      manifests: {
        'reviews.yaml': sdep(
          'reviews',
          'm',
          { predictors: [{ name: 'main' }, { name: 'v2' }] },
          { 'seldon.io/gateway-rollout': 'canary: v2\nsteps: [30, 100]\ninterval: 1s\nminRequests: 20\nmaxLatencyShift: 300%' },
        ),
        // Long names and a long unbroken value in a reason: they must wrap, not widen the page.
        'long.yaml': sdep(
          'a-deployment-with-a-rather-long-name-to-show',
          'a-namespace-with-a-long-name',
          {
            predictors: [
              { name: LONG_PREDICTOR, traffic: 60 },
              { name: 'other', traffic: `${'x'.repeat(300)}` },
            ],
          },
          { 'seldon.io/ambassador-regex-header': `x-a-long-header-name: ${'(?:alpha|beta|gamma|delta)'.repeat(3)}` },
        ),
      },
      resolve: {
        'reviews-main.m:8000': backends.main!.port,
        'reviews-v2.m:8000': backends.v2!.port,
      },
    });
    // Traffic until the rollout is promoted: the window then holds main's share from before.
    const end = Date.now() + 60_000;
    for (;;) {
      for (let i = 0; i < 25; i++) expect((await post(`${gw.url}/seldon/m/reviews${predict}`)).status).toBe(200);
      const routes = await getJson<{ deployments: { name: string; steering?: { rollout?: { phase: string } } }[] }>(`${gw.adminUrl}/routes`);
      if (routes.deployments.find((d) => d.name === 'reviews')?.steering?.rollout?.phase === 'Promoted') break;
      if (Date.now() > end) throw new Error(`not promoted: ${JSON.stringify(routes.deployments.find((d) => d.name === 'reviews')?.steering)}`);
    }
    for (let i = 0; i < 20; i++) expect((await post(`${gw.url}/seldon/m/reviews${predict}`)).status).toBe(200);
    browser = await chromium.launchPersistentContext(mkdtempSync(join(tmpdir(), 'sgw-chromium-')), { executablePath: CHROMIUM, headless: true, args: ARGS, viewport: { width: 1280, height: 900 } });
  }, 90_000);

  afterAll(async () => {
    await browser?.close();
    await gw?.stop();
    await Promise.all(Object.values(backends).map((b) => b.close()));
  });

  it.each([1280, 2400])('at %i px: no horizontal scrollbar, nothing past its card, no text cut', async (width) => {
    const page = await browser.newPage();
    await page.setViewportSize({ width, height: 900 });
    await page.goto(`${gw.adminUrl}/?refresh=3600`);
    // Idle routes are folded: open every fold, so that their rows are measured too.
    await page.evaluate(() => {
      for (const d of Array.from((globalThis as unknown as { document: { querySelectorAll(s: string): ArrayLike<{ open: boolean }> } }).document.querySelectorAll('details'))) d.open = true;
    });
    await page.screenshot({ path: join(SHOTS, `page-${width}.png`), fullPage: true });
    const o = await page.evaluate(measure);
    expect(o.outside, 'elements past their card').toEqual([]);
    expect(o.cut, 'text cut by its box').toEqual([]);
    expect(o.scrollWidth, 'the page scrolls sideways').toBeLessThanOrEqual(o.clientWidth);
    await page.close();
  });

  it("after a promotion the primary's 0% against its share from before the change is explained, not flagged", async () => {
    const page = await browser.newPage();
    await page.goto(`${gw.adminUrl}/?refresh=3600`);
    const route = page.locator('section[data-deployment="m/reviews"] .route[data-kind="rest"]');
    const main = route.locator('tr[data-backend="m/reviews/main"]');
    expect(await main.locator('td.weight').textContent()).toBe('0%');
    // main answered most of the window's requests, at weight 0% now: not drift.
    expect(Number((await main.locator('td.observed').textContent())!.replace('%', ''))).toBeGreaterThan(10);
    expect(await main.getAttribute('class')).not.toContain('drift');
    expect(await route.locator('tr.drift').count()).toBe(0);
    expect(await route.locator('p.weights-moved').textContent()).toMatch(
      /^Observed shares are not held against the weights: the rollout changed the weights \(RolloutPromoted\) at \d\d:\d\d:\d\d, within the window/,
    );
    // A deployment whose weights held keeps the check: the long one has no traffic, so no note either.
    expect(await page.locator('section[data-deployment="a-namespace-with-a-long-name/a-deployment-with-a-rather-long-name-to-show"] p.weights-moved').count()).toBe(0);
    await page.close();
  });
});
