/**
 * The diagnostics page as a person sees it, in headless Chromium: deployments with problems
 * first (rejected, degraded, then those answering 5xx, then 4xx), each one's traffic health in
 * colour beside its state, request-rate and error-rate charts over the window, the configured
 * weight against the observed share as a bar, p50/p99 per predictor, idle routes folded, a link
 * to each deployment's own view, a shadow's agreement as a gauge; `/routes?pretty` indented.
 * Screenshots are saved under the test's temp dir (their paths are printed).
 */
import { existsSync, mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHttpBackend, type HttpBackend, type HttpHandler } from '../../fixtures/http-backend.js';
import { sdep } from '../../helpers/gateway.js';
import { getText, post, predict, startObservedGateway, type ObservedGateway } from '../../helpers/observability.js';

const CHROMIUM = '/usr/bin/chromium';
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const RED = 'rgb(198, 40, 40)';
const AMBER = 'rgb(138, 97, 0)';
const GREEN = 'rgb(37, 107, 58)';

/** Answers like the default backend, except `x-variant: far` (another number). */
const shadowHandler: HttpHandler = (req, res) => {
  const x = req.headers['x-variant'] === 'far' ? 1.5 : 1;
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ data: { ndarray: [[x]] }, meta: { tags: { backend: 'shadow' } } }));
};

const color = (e: unknown): string => (globalThis as unknown as { getComputedStyle(el: unknown): { color: string } }).getComputedStyle(e).color;
/** Milliseconds from the page's duration text ("123 ms" or "12.3 s"). */
const millis = (text: string | null): number => {
  const m = /^([0-9.]+) (ms|s)$/.exec(text ?? '');
  if (!m) throw new Error(`not a duration: ${text}`);
  return Number(m[1]) * (m[2] === 's' ? 1000 : 1);
};

describe('admin page: problems first, traffic health, charts, gauges (Chromium)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sgw-admin-health-'));
  let backend: HttpBackend;
  let shadow: HttpBackend;
  let gw: ObservedGateway;
  let browser: BrowserContext;
  let page: Page;
  const seen: Record<string, number> = {};

  const send = async (deployment: string, n: number, query = '', headers: Record<string, string> = {}): Promise<number[]> => {
    const out: number[] = [];
    for (let i = 0; i < n; i++) out.push((await post(`${gw.url}/seldon/m/${deployment}${predict}${query}`, headers)).status);
    return out;
  };

  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install chromium (.ci/run installs it when missing)`);
    backend = await startHttpBackend({ name: 'model' });
    shadow = await startHttpBackend({ name: 'shadow', handler: shadowHandler });
    const names = ['split', 'flaky', 'picky', 'slow', 'quiet', 'churn', 'meh'];
    gw = await startObservedGateway({
      manifests: {
        'split.yaml': sdep('split', 'm', {
          predictors: [
            { name: 'main', traffic: 75 },
            { name: 'canary', traffic: 25 },
          ],
        }),
        'flaky.yaml': sdep('flaky', 'm', { predictors: [{ name: 'main' }] }),
        'picky.yaml': sdep('picky', 'm', { predictors: [{ name: 'main' }] }),
        'slow.yaml': sdep('slow', 'm', { predictors: [{ name: 'main' }] }),
        'quiet.yaml': sdep('quiet', 'm', { predictors: [{ name: 'main' }] }),
        'churn.yaml': sdep('churn', 'm', { predictors: [{ name: 'main' }, { name: 'shadow', shadow: true }] }),
        'bad.yaml': sdep('bad', 'm', { annotations: { 'seldon.io/ambassador-header': 'a:b:c' }, predictors: [{ name: 'main' }] }),
        'meh.yaml': sdep('meh', 'm', { annotations: { 'seldon.io/ambassador-retries': 'lots' }, predictors: [{ name: 'main' }] }),
      },
      resolve: {
        ...Object.fromEntries(names.map((n) => [`${n}-main.m:8000`, backend.port])),
        'split-canary.m:8000': backend.port,
        'churn-shadow.m:8000': shadow.port,
      },
      // One sample a second: a 30 s window, several chart steps within the test.
      args: ['--predictor-header', '--shadow-compare', '--admin-page-sample', '1s'],
    });
    browser = await chromium.launchPersistentContext(join(dir, 'user-data'), { executablePath: CHROMIUM, headless: true, args: ARGS, viewport: { width: 1500, height: 1000 } });
    page = await browser.newPage();

    // The traffic, after the browser is up (the window is 30 s).
    for (let i = 0; i < 200; i++) {
      const r = await post(`${gw.url}/seldon/m/split${predict}`);
      expect(r.status).toBe(200);
      const who = String(r.headers['x-seldon-predictor']);
      seen[who] = (seen[who] ?? 0) + 1;
    }
    expect(await send('flaky', 6)).toEqual([200, 200, 200, 200, 200, 200]);
    expect(await send('flaky', 3, '?status=503')).toEqual([503, 503, 503]);
    expect(await send('flaky', 1, '?status=404')).toEqual([404]);
    expect(await send('picky', 8)).toEqual(Array(8).fill(200));
    expect(await send('picky', 2, '?status=404')).toEqual([404, 404]);
    expect(await send('slow', 4, '?sleep=150')).toEqual([200, 200, 200, 200]);
    for (let i = 0; i < 10; i++) expect((await post(`${gw.url}/seldon/m/churn${predict}`, { 'x-variant': i < 2 ? 'far' : 'same' })).status).toBe(200);
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await gw?.stop();
    await Promise.all([backend?.close(), shadow?.close()]);
  });

  const section = (key: string) => page.locator(`section[data-deployment="${key}"]`);
  const member = (key: string, backendId: string, kind = 'rest') => section(key).locator(`.route[data-kind="${kind}"] tr[data-backend="${backendId}"]`);

  it('puts problems first: rejected, degraded, then 5xx, then 4xx, then the healthy by traffic, idle and skipped last', async () => {
    expect((await page.goto(`${gw.adminUrl}/?refresh=1`))?.status()).toBe(200);
    await expect.poll(() => section('m/churn').locator('.health .requests b').textContent()).toBe('10');
    const order = await page.locator('section.deployment').evaluateAll((els) => els.map((e) => e.getAttribute('data-deployment')));
    expect(order).toEqual(['m/bad', 'm/meh', 'm/flaky', 'm/picky', 'm/split', 'm/churn', 'm/slow', 'm/quiet']);
    expect(await page.locator('.summary .erring').textContent()).toBe('2 answering errors');
  });

  it("shows each deployment's error ratio with its 4xx and 5xx, in colour", async () => {
    const flaky = section('m/flaky').locator('.health');
    expect(await flaky.locator('.requests b').textContent()).toBe('10');
    expect(await flaky.locator('.error-ratio').textContent()).toBe('40% errors');
    expect(await flaky.locator('.c4xx').textContent()).toBe('4xx 1');
    expect(await flaky.locator('.c5xx').textContent()).toBe('5xx 3');
    await expect.poll(() => flaky.locator('.error-ratio').evaluate(color)).toBe(RED);
    expect(await flaky.locator('.c5xx').evaluate(color)).toBe(RED);
    expect(await flaky.locator('.c4xx').evaluate(color)).toBe(AMBER);
    expect(await member('m/flaky', 'm/flaky/main').locator('td.codes').textContent()).toBe('200×6 404×1 503×3');
    expect(await member('m/flaky', 'm/flaky/main').locator('td.codes .code.bad').evaluate(color)).toBe(RED);

    const picky = section('m/picky').locator('.health');
    expect(await picky.locator('.error-ratio').textContent()).toBe('20% errors');
    expect(await picky.locator('.error-ratio').evaluate(color)).toBe(AMBER);
    const split = section('m/split').locator('.health');
    expect(await split.locator('.error-ratio').textContent()).toBe('0% errors');
    expect(await split.locator('.error-ratio').evaluate(color)).toBe(GREEN);
    expect(await section('m/quiet').locator('.health .error-ratio').textContent()).toBe('no traffic');
  });

  it('draws request-rate and error-rate charts over the window: 5xx red, 4xx amber', async () => {
    // Several samples have been taken since the traffic started (one a second).
    await expect.poll(async () => Number(await section('m/split').locator('svg.rate-chart').getAttribute('data-points')), { timeout: 15_000 }).toBeGreaterThanOrEqual(3);
    expect(Number(await section('m/split').locator('svg.rate-chart').getAttribute('data-max'))).toBeGreaterThan(0);
    expect(await section('m/split').locator('svg.rate-chart rect').count()).toBeGreaterThan(0);
    expect(await section('m/split').locator('svg.error-chart rect').count()).toBe(0);
    const fills = async (key: string): Promise<string[]> =>
      section(key)
        .locator('svg.error-chart rect')
        .evaluateAll((els) => [...new Set(els.map((e) => e.getAttribute('fill')!))].sort());
    expect(await fills('m/flaky')).toEqual(['#c62828', '#d49b00']);
    expect(await fills('m/picky')).toEqual(['#d49b00']);
    expect(await section('m/quiet').locator('svg.rate-chart rect').count()).toBe(0);
  });

  it('shows the configured weight against the observed share as a bar, and p50/p99 per predictor', async () => {
    expect(seen.main! + seen.canary!).toBe(200);
    for (const [predictor, weight] of [
      ['main', 75],
      ['canary', 25],
    ] as const) {
      const row = member('m/split', `m/split/${predictor}`);
      const observed = Math.round((seen[predictor]! / 200) * 1000) / 10;
      expect(await row.locator('td.weight').textContent()).toBe(`${weight}%`);
      expect(await row.locator('td.observed').textContent()).toBe(`${observed}%`);
      expect(await row.locator('.configured-share').evaluate((e) => (e as unknown as { style: { width: string } }).style.width)).toBe(`${weight}%`);
      expect(await row.locator('.observed-share').evaluate((e) => (e as unknown as { style: { width: string } }).style.width)).toBe(`${observed}%`);
      const p50 = millis(await row.locator('td.p50').textContent());
      const p99 = millis(await row.locator('td.p99').textContent());
      expect(p50).toBeGreaterThan(0);
      expect(p99).toBeGreaterThanOrEqual(p50);
    }
    // Each of the slow model's requests took at least 150 ms: its median cannot be under 100 ms.
    expect(millis(await member('m/slow', 'm/slow/main').locator('td.p50').textContent())).toBeGreaterThanOrEqual(100);
    expect(await member('m/quiet', 'm/quiet/main').locator('td.p50').textContent()).toBe('–');
  });

  it("folds idle routes: a deployment's unused gRPC route, a deployment without requests", async () => {
    const split = section('m/split');
    expect(await split.locator(':scope > .route[data-kind="rest"]').count()).toBe(1);
    const folded = split.locator('details.idle-routes');
    expect(await folded.locator('summary').textContent()).toBe('1 idle route (no requests in the window)');
    expect(await folded.locator('.route[data-kind="grpc"]').count()).toBe(1);
    expect(await folded.evaluate((e) => (e as unknown as { open: boolean }).open)).toBe(false);
    expect(await folded.locator('.route[data-kind="grpc"]').isVisible()).toBe(false);
    expect(await section('m/quiet').locator('details.idle-routes summary').textContent()).toBe('2 idle routes (no requests in the window)');
    await folded.locator('summary').click();
    expect(await folded.locator('.route[data-kind="grpc"]').isVisible()).toBe(true);
    // The page refreshes itself every second here: an opened fold stays open across refreshes.
    const status = await page.locator('#status').textContent();
    await expect.poll(() => page.locator('#status').textContent(), { timeout: 15_000 }).not.toBe(status);
    await expect.poll(() => page.locator('#status').textContent(), { timeout: 15_000 }).not.toBe(await page.locator('#status').textContent());
    expect(await section('m/split').locator('details.idle-routes .route[data-kind="grpc"]').isVisible()).toBe(true);
  });

  it("shows a shadow's agreement as a gauge, red below 95%", async () => {
    const row = member('m/churn', 'm/churn/shadow');
    await expect.poll(() => row.locator('svg.gauge').getAttribute('data-value')).toBe('80');
    expect(await row.locator('svg.gauge text').textContent()).toBe('80%');
    expect(await row.locator('svg.gauge path.needle').getAttribute('stroke')).toBe('#c62828');
    expect(await row.locator('td.agreement').textContent()).toBe('80%');
  });

  it('saves screenshots of the whole page and of the deployments answering errors', async () => {
    await page.locator('#auto').uncheck();
    const full = join(dir, 'admin-page-health.png');
    await page.screenshot({ path: full, fullPage: true });
    expect(statSync(full).size).toBeGreaterThan(20_000);
    const flaky = join(dir, 'admin-page-flaky.png');
    await section('m/flaky').screenshot({ path: flaky });
    expect(statSync(flaky).size).toBeGreaterThan(3_000);
    console.info(`admin page screenshots: ${full} ${flaky}`);
  });

  it('links each deployment to its own view', async () => {
    await section('m/flaky').locator('a.deployment-link').click();
    await page.waitForURL(/\?deployment=m%2Fflaky$/);
    expect(await page.locator('section.deployment').evaluateAll((els) => els.map((e) => e.getAttribute('data-deployment')))).toEqual(['m/flaky']);
    expect(await page.locator('p.only').textContent()).toBe('showing m/flaky only · all deployments');
    const one = join(dir, 'admin-page-one.png');
    await page.screenshot({ path: one, fullPage: true });
    console.info(`one deployment: ${one}`);
    await page.locator('p.only a').click();
    await page.waitForURL(`${gw.adminUrl}/`);
    expect(await page.locator('section.deployment').count()).toBe(8);
  });

  it('/routes?pretty is the same JSON, indented', async () => {
    const pretty = await getText(`${gw.adminUrl}/routes?pretty`);
    const plain = await getText(`${gw.adminUrl}/routes`);
    expect(pretty.startsWith('{\n  "')).toBe(true);
    expect(plain.includes('\n')).toBe(false);
    expect(pretty).toBe(`${JSON.stringify(JSON.parse(plain), null, 2)}\n`);
  });
});
