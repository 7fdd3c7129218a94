/**
 * The Grafana dashboard against a real Prometheus: two real gateways (test/helpers/dashboard-features.ts)
 * scraped every second, traffic that drives each feature the dashboard shows, then every query of
 * every panel sent as Grafana sends it (a range query over the test, the dashboard's variables
 * filled in from its own variable queries, `$__rate_interval` as Grafana makes it of a 1 s scrape).
 *
 * `PANELS` names, for each panel's queries, the feature that fills it. Prometheus must accept every
 * query; a query whose feature was driven must have shown data (a finite value other than 0 at some
 * point), and one whose feature this test does not drive must show none (so the table stays true).
 * A panel that could never show data has no place in the table: its query is to be fixed, or the
 * panel removed. And the split panel shows a rollout's live weights: the numbers of /metrics and
 * the admin page.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FEATURE_NAMES, NS, startFeatureGateways, type Feature, type FeatureGateways, type Watch } from '../helpers/dashboard-features.js';
import { expressionsOf, loadDashboard, panelsOf, variableQuery, withVariables } from '../helpers/grafana.js';
import { getJson, scrape } from '../helpers/observability.js';
import { startPrometheus, type TestPrometheus } from '../helpers/prometheus.js';

/** A feature this test does not drive: what would fill the query. */
interface Unexercised {
  readonly notExercised: string;
}
type Fill = Feature | Unexercised;
const not = (what: string): Unexercised => ({ notExercised: what });
/** A panel's queries: one feature for all, or one per refId. */
type PanelFill = Fill | Readonly<Record<string, Fill>>;

const RUNNING: Feature = 'a running gateway';
const REST: Feature = 'REST traffic with model errors';
const SHADOW: Feature = 'a shadow answering, failing and disagreeing (--shadow-compare)';
const OAUTH: Feature = 'OAuth tokens, refusals and throttled logins';
const TLS: Feature = 'TLS handshakes, a refused certificate and a certificate reload';
const LOGS: Feature = 'payload logging to a sink that is down, then up, and one that refuses';
const FLOW: Feature = 'flow control holding, queueing and refusing';
const KUBE: Feature = 'endpoint routing on Kubernetes: ready endpoints, an ejection, a relist';
const REDIS_AWAY: Feature = 'Redis going away: local rate limits, OAuth revocations waiting, events held in memory';

/** Every panel of the dashboard (by title) and the annotation, with what fills each of its queries. */
const PANELS: Readonly<Record<string, PanelFill>> = {
  'Requests per second by deployment': REST,
  'Observed split by predictor': 'a canary split',
  'Error ratio': { A: REST, B: 'gRPC traffic with UNAVAILABLE answers' },
  'Status codes': REST,
  'Upstream latency (p50, p95, p99)': REST,
  'Upstream p99 by predictor': REST,
  'Mean upstream latency by predictor': REST,
  'Unrouted requests by reason': 'requests no route takes',
  'Ready endpoints by predictor': KUBE,
  'Request duration p50 and p99 by deployment': REST,
  'Requests by code class': REST,
  'Open connections by listener and protocol': REST,
  'Bytes received and sent': REST,
  Retries: { A: 'retries of 503 answers', B: not('a model closing an idle keep-alive connection as a request is sent on it (seldon_gateway_upstream_replays_total)') },
  'Circuit breaker rejections': 'a circuit breaker refusing',
  Timeouts: 'route timeouts',
  'Shadow outcomes': SHADOW,
  'Shadow agreement with the primary': SHADOW,
  'Shadow comparisons': SHADOW,
  'Shadow latency p99': SHADOW,
  'Shadow answers by status': SHADOW,
  'OAuth refusals': OAUTH,
  'OAuth token requests': OAUTH,
  'Rate limited': 'a rate limit',
  'Rate limits decided locally': REDIS_AWAY,
  'Redis and replicas': RUNNING,
  'Refused at the edge': 'malformed and handed-off HTTP/1.1 requests',
  'Route table generation': RUNNING,
  'Since last applied': RUNNING,
  'Source connected': RUNNING,
  'SeldonDeployments by state': RUNNING,
  'Source resyncs (1h)': KUBE,
  'Access log lines dropped; spans dropped and exported': {
    A: not('an access log output that cannot keep up (seldon_gateway_access_log_dropped_total)'),
    B: not('an OTLP collector that refuses spans, or an export queue overflowing (seldon_gateway_tracing_spans_dropped_total)'),
    C: 'tracing to an OTLP collector',
  },
  'Deployments by state over time': RUNNING,
  'Generation over time': RUNNING,
  CPU: RUNNING,
  Memory: RUNNING,
  'Event-loop delay p99 and GC pauses p99 by worker': RUNNING,
  'GC time': RUNNING,
  'Open sockets and handles': RUNNING,
  Version: RUNNING,
  'Internal errors and process errors': not('an unexpected error inside the gateway, a defect: none in a healthy run'),
  'Accept failures (descriptor exhaustion)': not('a worker out of file descriptors (--max-connections above the descriptor limit)'),
  'OAuth: throttled logins and pending revocations': { A: OAUTH, B: REDIS_AWAY, C: REDIS_AWAY },
  'TLS handshakes': TLS,
  'TLS handshake failures': TLS,
  'Certificate reloads and days to expiry': { A: TLS, B: TLS, C: not('an ambassador Module file (--ambassador-module) changed while serving (test/gateway/process/ambassador-module.test.ts)') },
  'Rollout: canary weight and phase': 'a rollout',
  'Rollout: checks against their thresholds': 'a rollout',
  'Bandit: shares, rewards and feedback': 'a bandit with feedback',
  'External auth decisions': 'external auth allowing and denying',
  'External auth decision time': 'external auth allowing and denying',
  'Flow control: limit, in flight and queued': FLOW,
  'Flow control: refusals by priority': FLOW,
  'Flow control: replicas sharing fixed limits': RUNNING,
  'Endpoint ejections': KUBE,
  'JWT checks': 'JWT checks and a providers file reload',
  'Payload log events': LOGS,
  'Payload log drops, sink file reloads and claims': { A: LOGS, B: LOGS, C: not("a replica dying with events of a cloudevents sink it had read (another replica's shipper claims them)") },
  'Payload log backlog': { A: LOGS, B: LOGS, C: LOGS, D: REDIS_AWAY },
  'Fallbacks by reason and result': not('a predictor with seldon.io/gateway-fallback that cannot answer (test/gateway/pipeline/fallback-*.test.ts, test/gateway/forward/fallback-on-error.test.ts)'),
  'Hedges by result': 'hedged requests on Kubernetes: each first attempt slow, its hedge quick',
  'Hedge delay in force': 'hedged requests on Kubernetes: each first attempt slow, its hedge quick',
  'Compression: bytes before and after': 'compressed answers and decoded requests',
  'Translations by direction and result': not('a deployment with seldon.io/gateway-protocol and clients of the other protocol (test/gateway/translate/rest-translation.test.ts reads the counter)'),
  'annotation "Route table changes"': 'a SeldonDeployment added',
};

/** `$__rate_interval` as Grafana makes it for a 1 s scrape interval (4 scrapes), the step it sends. */
const INTERVALS = { rate: '4s', interval: '1s', range: '5m' };
const STEP_SECONDS = 1;

interface Query {
  readonly where: string;
  readonly expr: string;
  readonly fill: Fill | undefined;
}

/** Each query of the dashboard with what fills it, per `PANELS`. */
function queries(): Query[] {
  const dash = loadDashboard();
  return expressionsOf(dash).map(({ where, expr }) => {
    const m = /^panel "(.*)" (\w+)$/.exec(where);
    const entry = PANELS[m ? m[1]! : where];
    const fill = entry === undefined || typeof entry === 'string' || 'notExercised' in entry ? entry : (entry as Record<string, Fill>)[m?.[2] ?? ''];
    return { where, expr, fill: fill as Fill | undefined };
  });
}

const shows = (values: readonly number[]): boolean => values.some((v) => Number.isFinite(v) && v !== 0);

describe('the Grafana dashboard against a real Prometheus scraping gateways that drive its features', () => {
  let gws: FeatureGateways;
  let prom: TestPrometheus;
  let from: number;
  let variables: Record<string, string[]>;

  /** What the drivers ask of Prometheus: whether a condition holds (a query with a series in its answer). */
  const watch: Watch = {
    has: async (expr) => {
      const r = await prom.query(expr);
      return 'series' in r && r.series.length > 0;
    },
    seen: async (expr, what) => void (await prom.until(expr, (s) => s.length > 0, 30_000, what)),
  };

  beforeAll(async () => {
    gws = await startFeatureGateways();
    prom = await startPrometheus(gws.scrapes);
    from = Date.now();
    // Both gateways scraped, so what the drivers do lands on series Prometheus already has.
    await prom.until('up', (s) => s.length === 2 && s.every((x) => x.value === 1), 30_000, 'both gateways scraped');
    for (const round of [0, 1]) {
      for (const name of FEATURE_NAMES) await gws.features[name](watch, round);
      // Both gateways scraped since: the next round's counts are increases of series Prometheus has.
      const done = Date.now() / 1000;
      await prom.until(`min(timestamp(up)) > ${done}`, (s) => s.length > 0, 30_000, 'a scrape after the round');
    }
    // The dashboard's variables, from its own variable queries (label_values) as Grafana runs them.
    variables = {};
    for (const v of loadDashboard().templating.list.filter((x) => x.type === 'query')) {
      const m = /^label_values\((.*),\s*(\w+)\)$/.exec(variableQuery(v))!;
      const expr = withVariables(`group by (${m[2]}) (${m[1]})`, variables, INTERVALS);
      const found = await prom.until(expr, (s) => s.length > 0, 30_000, `variable ${v.name}`);
      variables[v.name] = found.map((s) => s.metric[m[2]!]!).sort();
    }
  }, 240_000);

  afterAll(async () => {
    await prom?.stop();
    await gws?.stop();
  });

  it('names what fills each query of every panel, and drives or names every feature', () => {
    const qs = queries();
    expect(qs.filter((q) => q.fill === undefined).map((q) => q.where)).toEqual([]);
    const panels = new Set([
      ...panelsOf(loadDashboard())
        .filter((p) => p.type !== 'row')
        .map((p) => p.title),
      'annotation "Route table changes"',
    ]);
    expect(Object.keys(PANELS).filter((t) => !panels.has(t))).toEqual([]);
    // Every driven feature fills some query (a driver for nothing is a table out of date).
    const used = new Set(qs.map((q) => q.fill).filter((f): f is Feature => typeof f === 'string'));
    expect(FEATURE_NAMES.filter((f) => !used.has(f))).toEqual([]);
  });

  it("the dashboard's variables find the deployments", () => {
    expect(variables.namespace).toContain(NS);
    expect(variables.deployment).toEqual(expect.arrayContaining(['iris', 'income', 'reviews', 'rec', 'churn']));
  });

  it('Prometheus accepts every query; each shows data once its feature was driven, and none whose feature was not', async () => {
    // Grafana's "All" for a multi-value variable is its allValue; a chosen namespace is its value.
    const values = { namespace: [NS], deployment: ['.*'] };
    const problems: string[] = [];
    let pending = queries();
    const deadline = Date.now() + 30_000;
    // Each query until it shows what it should: the last scrapes may still be on their way.
    while (pending.length > 0) {
      const next: Query[] = [];
      for (const q of pending) {
        const r = await prom.queryRange(withVariables(q.expr, values, INTERVALS), from, Date.now(), STEP_SECONDS);
        if ('error' in r) {
          problems.push(`${q.where}: Prometheus refused it: ${r.error}`);
          continue;
        }
        const data = r.series.some((s) => shows(s.values));
        const driven = typeof q.fill === 'string';
        if (driven && !data) next.push(q);
        if (!driven && data) problems.push(`${q.where}: shows data, but the table says its feature (${(q.fill as Unexercised).notExercised}) is not driven: name what drives it`);
      }
      pending = next;
      if (pending.length > 0 && Date.now() > deadline) {
        problems.push(...pending.map((q) => `${q.where}: no data, though "${q.fill as string}" was driven: ${q.expr}`));
        break;
      }
      if (pending.length > 0) await new Promise((r) => setTimeout(r, 1000));
    }
    expect(problems).toEqual([]);
  });

  it("the split panel shows the rollout's live weights: the numbers of /metrics and the admin page", async () => {
    // The rollout holds its step without traffic: the three agree once Prometheus has scraped it.
    const routes = async (): Promise<Record<string, number>> => {
      const r = await getJson<{ deployments: { name: string; routes: { kind: string; members: { predictor: string; percent: number }[] }[] }[] }>(`${gws.edge.adminUrl}/routes`);
      const rest = r.deployments.find((d) => d.name === 'reviews')!.routes.find((x) => x.kind === 'rest')!;
      return Object.fromEntries(rest.members.map((m) => [m.predictor, m.percent]));
    };
    const live = await routes();
    expect(live.v2).toBeGreaterThan(0);
    const gauge = Object.fromEntries(
      (await scrape(gws.edge.adminUrl))
        .filter((s) => s.name === 'seldon_gateway_route_weight' && s.labels.deployment === 'reviews' && s.labels.protocol === 'rest')
        .map((s) => [s.labels.predictor!, s.value]),
    );
    expect(gauge).toEqual(live);
    const panel = queries().find((q) => q.where === 'panel "Observed split by predictor" B')!;
    const expr = withVariables(panel.expr, { namespace: [NS], deployment: ['reviews'] }, INTERVALS);
    const shown = await prom.until(expr, (s) => s.filter((x) => x.metric.protocol === 'rest').every((x) => x.value === live[x.metric.predictor!]) && s.length > 0, 15_000, 'the panel');
    expect(Object.fromEntries(shown.filter((x) => x.metric.protocol === 'rest').map((x) => [x.metric.predictor, x.value]))).toEqual(live);
    expect(await routes()).toEqual(live);
  });
});
