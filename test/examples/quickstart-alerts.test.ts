/**
 * The quick start as a platform team first meets it: `npm start` (its example deployments, a live
 * rollout and a bandit with traffic) scraped every second by a real Prometheus with the gateway's
 * alert rules loaded (evaluated every second; the rule file is the PrometheusRule's own groups).
 * After 90 scrapes (90 s), while the rollout steps and the bandit moves its shares: no alert was ever
 * pending or firing, every rule evaluates healthy, and Prometheus accepts every dashboard query.
 *
 * Two alerts judge the machine more than the gateway: a scrape that took longer than its second,
 * and an event loop (here the quick start's one process: gateway, models and demo traffic) held
 * back 100 ms. On a test machine busy with other work they go pending, rightly; they are left out
 * of "never pending" (their rules must still evaluate healthy). Every alert about the deployments,
 * their traffic and the gateway's configuration is held to it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expressionsOf, loadDashboard, withVariables } from '../helpers/grafana.js';
import { ruleGroups, startPrometheus, type TestPrometheus } from '../helpers/prometheus.js';
import { startQuickstart, type Quickstart } from '../helpers/quickstart.js';

/** The alerts about the machine's load rather than the gateway's behaviour (see the header). */
const HOST_ALERTS = ['SeldonGatewayScrapeDown', 'SeldonGatewayEventLoopStalled'];
/** How long the quick start is watched, in scrapes (one a second). */
const SCRAPES = 90;
const WINDOW = '10m';

describe('the quick start scraped by Prometheus with the alert rules', () => {
  let qs: Quickstart;
  let prom: TestPrometheus;

  beforeAll(async () => {
    qs = await startQuickstart();
    prom = await startPrometheus([{ target: `127.0.0.1:${qs.admin}` }], { rules: ruleGroups() });
    await prom.until(`count_over_time(up[${WINDOW}]) >= ${SCRAPES}`, (s) => s.length > 0, 180_000, `${SCRAPES} scrapes of the quick start`);
  }, 240_000);

  afterAll(async () => {
    await prom?.stop();
    await qs?.stop();
  });

  it('moves its split as designed meanwhile: the rollout steps, the bandit shares move, with traffic enough for the split alert to judge', async () => {
    const weight = (deployment: string, predictor: string): string => `seldon_gateway_route_weight{namespace="seldon", deployment="${deployment}", predictor="${predictor}", protocol="rest"}`;
    await prom.until(`changes(${weight('reviews', 'v2')}[${WINDOW}]) >= 2`, (s) => s.length > 0, 30_000, "the rollout's canary weight stepping");
    await prom.until(`max_over_time(${weight('recommender', 'c')}[${WINDOW}]) > 40`, (s) => s.length > 0, 30_000, "the bandit's arm c above its even share");
    // The drift alert's own traffic condition holds: its silence is a judgement, not a lack of data.
    const judged = await prom.query('sum by (deployment) (increase(seldon_gateway_requests_total{kind="primary", namespace="seldon"}[15m])) > 1000');
    expect('series' in judged ? judged.series.map((s) => s.metric.deployment).sort() : judged).toEqual(expect.arrayContaining(['recommender', 'reviews']));
  }, 90_000);

  it('no alert about the deployments or the gateway was ever pending or firing, and every rule evaluates healthy', async () => {
    // ALERTS has a sample at each evaluation where an alert was pending or firing.
    const ever = await prom.query(`max_over_time(ALERTS{alertname!~"${HOST_ALERTS.join('|')}"}[${WINDOW}])`);
    expect(ever).toEqual({ series: [] });
    expect((await prom.alerts()).filter((a) => !HOST_ALERTS.includes(a.labels.alertname!))).toEqual([]);
    const rules = await prom.rules();
    expect(rules.map((r) => r.name).sort()).toEqual(
      ruleGroups()
        .flatMap((g) => g.rules.map((r) => r.alert))
        .sort(),
    );
    expect(rules.map((r) => r.name)).toEqual(expect.arrayContaining(HOST_ALERTS));
    expect(rules.filter((r) => r.health !== 'ok').map((r) => `${r.name}: ${r.health} ${r.lastError ?? ''}`)).toEqual([]);
  });

  it('Prometheus accepts every query of the dashboard', async () => {
    const refused: string[] = [];
    for (const { where, expr } of expressionsOf(loadDashboard())) {
      const r = await prom.query(withVariables(expr, { namespace: ['seldon'], deployment: ['.*'] }, { rate: '4s', interval: '1s', range: '5m' }));
      if ('error' in r) refused.push(`${where}: ${r.error}`);
    }
    expect(refused).toEqual([]);
  });
});
