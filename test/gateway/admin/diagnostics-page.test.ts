/**
 * The diagnostics page in a real browser (Debian's headless Chromium driven by playwright-core):
 * the numbers shown match the traffic sent, problems are highlighted, the page refreshes itself,
 * and a screenshot is saved under the test's temp dir.
 */
import { existsSync, mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHttpBackend, type HttpBackend, type HttpHandler } from '../../fixtures/http-backend.js';
import { sdep } from '../../helpers/gateway.js';
import { post, predict, startObservedGateway, type ObservedGateway } from '../../helpers/observability.js';

const CHROMIUM = '/usr/bin/chromium';
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

/** Answers like the default backend, except `x-variant: far` (another number). */
const shadowHandler: HttpHandler = (req, res) => {
  const x = req.headers['x-variant'] === 'far' ? 1.5 : 1;
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ data: { ndarray: [[x]] }, meta: { tags: { backend: 'shadow' } } }));
};

const round1 = (n: number): number => Math.round(n * 10) / 10;
/** The computed text colour of an element (runs in the page). */
const color = (e: unknown): string => (globalThis as unknown as { getComputedStyle(el: unknown): { color: string } }).getComputedStyle(e).color;

describe('admin diagnostics page in Chromium', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sgw-admin-page-'));
  let main: HttpBackend;
  let canary: HttpBackend;
  let shadow: HttpBackend;
  let gw: ObservedGateway;
  let browser: BrowserContext;
  let page: Page;
  const seen: Record<string, number> = {};

  async function sendSplit(n: number): Promise<void> {
    for (let i = 0; i < n; i++) {
      const r = await post(`${gw.url}/seldon/m/split${predict}`);
      expect(r.status).toBe(200);
      const who = String(r.headers['x-seldon-predictor']);
      seen[who] = (seen[who] ?? 0) + 1;
    }
  }

  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install chromium (.ci/run installs it when missing)`);
    main = await startHttpBackend({ name: 'main' });
    canary = await startHttpBackend({ name: 'canary' });
    shadow = await startHttpBackend({ name: 'shadow', handler: shadowHandler });
    gw = await startObservedGateway({
      manifests: {
        'split.yaml': sdep('split', 'm', {
          annotations: { 'seldon.io/rest-timeout': '5000', 'seldon.io/ambassador-retries': '1' },
          predictors: [
            { name: 'main', traffic: 75 },
            { name: 'canary', traffic: 25 },
          ],
        }),
        'churn.yaml': sdep('churn', 'm', { predictors: [{ name: 'main' }, { name: 'shadow', shadow: true }] }),
        'fraud.yaml': sdep('fraud', 'm', { predictors: [{ name: 'main' }] }),
        'fraud-eu.yaml': sdep('fraud-eu', 'm', { annotations: { 'seldon.io/ambassador-service-name': 'fraud', 'seldon.io/ambassador-header': 'x-region: eu' }, predictors: [{ name: 'main' }] }),
        'bad.yaml': sdep('bad', 'm', { annotations: { 'seldon.io/ambassador-header': 'a:b:c' }, predictors: [{ name: 'main' }] }),
        'meh.yaml': sdep('meh', 'm', { annotations: { 'seldon.io/ambassador-retries': 'lots' }, predictors: [{ name: 'main' }] }),
        'blue.yaml': sdep('bluemodel', 'm', { predictors: [{ name: 'main' }] }, { 'seldon.io/ambassador-id': 'blue' }),
      },
      resolve: {
        'split-main.m:8000': main.port,
        'split-canary.m:8000': canary.port,
        'churn-main.m:8000': main.port,
        'churn-shadow.m:8000': shadow.port,
        'fraud-main.m:8000': main.port,
        'fraud-eu-main.m:8000': canary.port,
        'meh-main.m:8000': main.port,
      },
      args: ['--predictor-header', '--shadow-compare'],
    });
    await sendSplit(120);
    for (let i = 0; i < 10; i++) expect((await post(`${gw.url}/seldon/m/churn${predict}`, { 'x-variant': i < 2 ? 'far' : 'same' })).status).toBe(200);
    for (let i = 0; i < 3; i++) expect((await post(`${gw.url}/seldon/m/fraud${predict}`, { 'x-region': 'eu' })).status).toBe(200);

    browser = await chromium.launchPersistentContext(join(dir, 'user-data'), { executablePath: CHROMIUM, headless: true, args: ARGS, viewport: { width: 1400, height: 1000 } });
    page = await browser.newPage();
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await gw?.stop();
    await Promise.all([main?.close(), canary?.close(), shadow?.close()]);
  });

  const cell = (deployment: string, backend: string, column: string, kind = 'rest') =>
    page.locator(`section[data-deployment="${deployment}"] .route[data-kind="${kind}"] tr[data-backend="${backend}"] td.${column}`);

  it('shows each predictor with its configured weight beside the observed split, matching the traffic sent', async () => {
    const r = await page.goto(`${gw.adminUrl}/?refresh=1`);
    expect(r?.status()).toBe(200);
    expect(await page.title()).toBe('seldon-gateway diagnostics');
    expect(seen.main! + seen.canary!).toBe(120);
    for (const [predictor, weight] of [
      ['main', 75],
      ['canary', 25],
    ] as const) {
      await expect.poll(() => cell('m/split', `m/split/${predictor}`, 'count').textContent()).toBe(String(seen[predictor]));
      expect(await cell('m/split', `m/split/${predictor}`, 'weight').textContent()).toBe(`${weight}%`);
      expect(await cell('m/split', `m/split/${predictor}`, 'observed').textContent()).toBe(`${round1((seen[predictor]! / 120) * 100)}%`);
      expect(await cell('m/split', `m/split/${predictor}`, 'codes').textContent()).toBe(`200×${seen[predictor]}`);
      expect(await cell('m/split', `m/split/${predictor}`, 'timeout').textContent()).toBe('5 s');
      expect(await cell('m/split', `m/split/${predictor}`, 'retries').textContent()).toContain('×1');
    }
    // No gRPC traffic was sent: its route shows zero and no split.
    expect(await cell('m/split', 'm/split/main', 'count', 'grpc').textContent()).toBe('0');
    expect(await cell('m/split', 'm/split/main', 'observed', 'grpc').textContent()).toBe('–');
  });

  it('shows header routes, the shadow mirror rate and agreement, and the last disagreements', async () => {
    const eu = page.locator('section[data-deployment="m/fraud-eu"] .route[data-kind="rest"]');
    expect(await eu.locator('code.match').textContent()).toBe('/seldon/m/fraud/ [x-region=eu]');
    expect(await eu.locator('tr[data-backend="m/fraud-eu/main"] td.count').textContent()).toBe('3');
    expect(await cell('m/fraud', 'm/fraud/main', 'count').textContent()).toBe('0');

    await expect.poll(() => cell('m/churn', 'm/churn/shadow', 'agree').textContent()).toBe('8');
    expect(await cell('m/churn', 'm/churn/shadow', 'mirrored').textContent()).toBe('10');
    expect(await cell('m/churn', 'm/churn/shadow', 'weight').textContent()).toBe('100%');
    expect(await cell('m/churn', 'm/churn/shadow', 'disagree').textContent()).toBe('2');
    expect(await cell('m/churn', 'm/churn/shadow', 'agreement').textContent()).toBe('80%');
    expect(await cell('m/churn', 'm/churn/shadow', 'dropped').textContent()).toBe('0');
    expect(await cell('m/churn', 'm/churn/shadow', 'rate').textContent()).toMatch(/^[0-9.]+\/s$/);
    // A disagreeing shadow stands out. (Polled: the page re-renders itself, and an element it has
    // just replaced has no computed colour.)
    await expect.poll(() => cell('m/churn', 'm/churn/shadow', 'agreement').evaluate(color)).toBe('rgb(198, 40, 40)');

    const d = page.locator('#disagreements article.disagreement');
    expect(await d.count()).toBe(2);
    expect(await d.first().locator('.why').textContent()).toBe('$.data.ndarray[0][0]: 1 ≠ 1.5');
    expect(await d.first().locator('.pair').textContent()).toBe('primary main · shadow shadow');
    expect(JSON.parse((await d.first().locator('pre.shadow-body').textContent())!)).toMatchObject({ data: { ndarray: [[1.5]] } });
  });

  it('highlights rejected and degraded deployments with their reasons, and says why one is skipped', async () => {
    const bad = page.locator('section[data-deployment="m/bad"]');
    expect(await bad.getAttribute('class')).toContain('state-rejected');
    expect(await bad.locator('.state').textContent()).toBe('rejected');
    expect(await bad.locator('ul.problems li').first().textContent()).toContain('a:b:c');
    await expect.poll(() => bad.locator('ul.problems li').first().evaluate(color)).toBe('rgb(198, 40, 40)');
    const meh = page.locator('section[data-deployment="m/meh"]');
    expect(await meh.getAttribute('class')).toContain('state-degraded');
    expect(await meh.locator('ul.problems li').first().textContent()).toContain('seldon.io/ambassador-retries');
    const blue = page.locator('section[data-deployment="m/bluemodel"]');
    expect(await blue.getAttribute('class')).toContain('state-skipped');
    expect(await blue.locator('ul.problems li').first().textContent()).toContain('"blue"');
    expect(await blue.locator('.ambassador-id').textContent()).toBe('ambassador-id blue');
    // Problems first: the rejected deployment is the first section.
    expect(await page.locator('section.deployment').first().getAttribute('data-deployment')).toBe('m/bad');
    expect(await page.locator('.counts').textContent()).toMatch(/4 accepted.*1 degraded.*1 rejected.*1 skipped/s);
  });

  it('refreshes itself: new traffic shows up without a reload', async () => {
    await page.evaluate(() => ((globalThis as unknown as { marker: number }).marker = 42));
    await sendSplit(30);
    // Both counts together: a refresh may show one predictor's last requests before the other's (each worker reports on its own).
    await expect
      .poll(async () => [await cell('m/split', 'm/split/main', 'count').textContent(), await cell('m/split', 'm/split/canary', 'count').textContent()], { timeout: 10_000 })
      .toEqual([String(seen.main), String(seen.canary)]);
    expect(await page.locator('.route[data-kind="rest"] .total').first().textContent()).toBeTruthy();
    // Same document (no reload), the status line says when it updated.
    expect(await page.evaluate(() => (globalThis as unknown as { marker: number }).marker)).toBe(42);
    expect(await page.locator('#status').textContent()).toMatch(/^updated /);
    // Paused: nothing changes.
    await page.locator('#auto').uncheck();
    await sendSplit(10);
    // The case is an absence: two and a half refresh periods (?refresh=1) in which it would have refreshed twice.
    await new Promise((r) => setTimeout(r, 2500));
    expect(Number(await cell('m/split', 'm/split/main', 'count').textContent()) + Number(await cell('m/split', 'm/split/canary', 'count').textContent())).toBe(150);
  });

  it('saves a screenshot', async () => {
    await page.locator('#auto').check();
    await page.reload();
    const file = join(dir, 'admin-page.png');
    await page.screenshot({ path: file, fullPage: true });
    expect(statSync(file).size).toBeGreaterThan(10_000);
    console.info(`admin page screenshot: ${file}`);
  });
});
