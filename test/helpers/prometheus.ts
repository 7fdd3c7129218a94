/**
 * A real Prometheus for tests (Debian's `prometheus` 2.42 and its `promtool`; npm test's pretest
 * installs them): the gateway's alert rules as a rule file, `promtool` runs, and a `prometheus`
 * process in a temp dir of its own on a free port, scraping gateways' admin /metrics every second
 * with the rules loaded, asked through its HTTP API (queries, alerts, rules).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { parse, stringify } from 'yaml';
import { freePort } from './net.js';
import { sleep } from './wait.js';

/** The one source of the gateway's alert rules (the Helm chart's copy is held to it by the chart's test). */
export const PROMETHEUS_RULE = fileURLToPath(new URL('../../deploy/kustomize/components/alerts/prometheusrule.yaml', import.meta.url));

export interface RuleGroup {
  name: string;
  interval?: string;
  rules: { alert: string; expr: string; for: string; labels: Record<string, string>; annotations: Record<string, string> }[];
}

/** The rule groups of the PrometheusRule (its `spec.groups`), as a Prometheus rule file has them. */
export function ruleGroups(): RuleGroup[] {
  return (parse(readFileSync(PROMETHEUS_RULE, 'utf8')) as { spec: { groups: RuleGroup[] } }).spec.groups;
}

/** Write `groups` as a Prometheus rule file at `path`. */
export function writeRuleFile(path: string, groups: readonly RuleGroup[] = ruleGroups()): void {
  writeFileSync(path, stringify({ groups }));
}

/** `promtool <args>` in `cwd`: its exit status and everything it printed. */
export function promtool(args: string[], cwd: string): { status: number | null; output: string } {
  const r = spawnSync('promtool', args, { cwd, encoding: 'utf8', timeout: 60_000 });
  if (r.error) throw new Error(`promtool is needed for this test (Debian's prometheus package; npm test's pretest installs it): ${r.error.message}`);
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

export interface Scrape {
  /** host:port of the admin listener. */
  readonly target: string;
  /** The admin token, when the gateway has one (--admin-token-file). */
  readonly token?: string;
}

/** One series of a query's answer: its labels and its last value. */
export interface Series {
  readonly metric: Record<string, string>;
  readonly value: number;
}

/** One series of a range query's answer: its labels and its points' values. */
export interface RangeSeries {
  readonly metric: Record<string, string>;
  readonly values: readonly number[];
}

export interface AlertJson {
  labels: Record<string, string>;
  state: 'pending' | 'firing' | 'inactive';
  value: string;
}

export interface RuleJson {
  name: string;
  type: string;
  health: string;
  lastError?: string;
  state?: string;
}

export interface TestPrometheus {
  readonly url: string;
  /** An instant query: its series, or its error (Prometheus refused the query). */
  query(expr: string): Promise<{ series: Series[] } | { error: string }>;
  /** A range query, as a Grafana time series panel sends it (`start`, `end` in ms): each series' points, or the error. */
  queryRange(expr: string, start: number, end: number, stepSeconds: number): Promise<{ series: RangeSeries[] } | { error: string }>;
  /** Poll `expr` until `ok` holds of its series, or throw after `ms` with the last answer. */
  until(expr: string, ok: (series: Series[]) => boolean, ms: number, what?: string): Promise<Series[]>;
  alerts(): Promise<AlertJson[]>;
  rules(): Promise<RuleJson[]>;
  /** Everything the process wrote (its log). */
  output(): string;
  stop(): Promise<void>;
}

/** The job name the bundled ServiceMonitor and PodMonitor give the gateway, which the alert rules read. */
export const JOB = 'seldon-gateway';

/**
 * A `prometheus` scraping `scrapes` every second (a scrape may take as long) as job
 * "seldon-gateway", with `rules` (a rule file's groups) evaluated every second, in its own temp dir
 * on a free port. Resolves once it answers.
 */
export async function startPrometheus(scrapes: readonly Scrape[], options: { rules?: readonly RuleGroup[] } = {}): Promise<TestPrometheus> {
  const dir = mkdtempSync(join(tmpdir(), 'sgw-prometheus-'));
  const every = '1s';
  const scrapeConfigs = scrapes.map((s, i) => ({
    job_name: scrapes.length === 1 ? JOB : `${JOB}-${i}`,
    scrape_interval: every,
    scrape_timeout: every,
    honor_labels: true,
    ...(s.token ? { authorization: { type: 'Bearer', credentials: s.token } } : {}),
    static_configs: [{ targets: [s.target], labels: { job: JOB, pod: `gateway-${i}`, namespace: 'seldon-system' } }],
  }));
  const config: Record<string, unknown> = { global: { scrape_interval: every, evaluation_interval: '1s' }, scrape_configs: scrapeConfigs };
  if (options.rules) {
    writeRuleFile(join(dir, 'rules.yaml'), options.rules);
    config.rule_files = [join(dir, 'rules.yaml')];
  }
  writeFileSync(join(dir, 'prometheus.yml'), stringify(config));
  let log = '';
  let child: ChildProcess | undefined;
  let url = '';
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    child = spawn(
      'prometheus',
      [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn', '--web.enable-lifecycle'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    child.on('error', (err) => (log += `${err.message}\n`));
    child.stdout!.on('data', (d: Buffer) => (log += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (log += d.toString()));
    const deadline = Date.now() + 30_000;
    let ready = false;
    while (!ready && child.exitCode === null && child.signalCode === null && Date.now() < deadline) {
      ready = await request(`${url}/-/ready`)
        .then(async (r) => (await r.body.text(), r.statusCode === 200))
        .catch(() => false);
      if (!ready) await sleep(100);
    }
    if (ready) break;
    child.kill('SIGKILL');
    if (attempt < 3 && log.includes('address already in use')) continue;
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`prometheus did not start (Debian's prometheus package; npm test's pretest installs it):\n${log}`);
  }
  const proc = child;

  const api = async <T>(path: string): Promise<{ status: string; data: T; error?: string }> => {
    const r = await request(`${url}${path}`, { headersTimeout: 10_000, bodyTimeout: 10_000 });
    return (await r.body.json()) as { status: string; data: T; error?: string };
  };
  const query = async (expr: string): Promise<{ series: Series[] } | { error: string }> => {
    const r = await api<{ resultType: string; result: { metric: Record<string, string>; value?: [number, string] }[] | [number, string] }>(`/api/v1/query?query=${encodeURIComponent(expr)}`);
    if (r.status !== 'success') return { error: r.error ?? r.status };
    // A scalar (time() - …) is one series without labels.
    if (r.data.resultType === 'scalar') return { series: [{ metric: {}, value: Number((r.data.result as [number, string])[1]) }] };
    return { series: (r.data.result as { metric: Record<string, string>; value?: [number, string] }[]).map((s) => ({ metric: s.metric, value: Number(s.value?.[1]) })) };
  };
  const queryRange = async (expr: string, start: number, end: number, stepSeconds: number): Promise<{ series: RangeSeries[] } | { error: string }> => {
    const params = new URLSearchParams({ query: expr, start: String(start / 1000), end: String(end / 1000), step: String(stepSeconds) });
    const r = await api<{ result: { metric: Record<string, string>; values: [number, string][] }[] }>(`/api/v1/query_range?${params.toString()}`);
    if (r.status !== 'success') return { error: r.error ?? r.status };
    return { series: r.data.result.map((s) => ({ metric: s.metric, values: s.values.map(([, v]) => Number(v)) })) };
  };
  return {
    url,
    query,
    queryRange,
    async until(expr, ok, ms, what = expr) {
      const end = Date.now() + ms;
      for (;;) {
        const r = await query(expr);
        if ('error' in r) throw new Error(`${what}: Prometheus refused ${expr}: ${r.error}`);
        if (ok(r.series)) return r.series;
        if (Date.now() > end) throw new Error(`${what}: still ${JSON.stringify(r.series)} after ${ms} ms`);
        await sleep(250);
      }
    },
    alerts: async () => (await api<{ alerts: AlertJson[] }>('/api/v1/alerts')).data.alerts,
    rules: async () => (await api<{ groups: { rules: RuleJson[] }[] }>('/api/v1/rules')).data.groups.flatMap((g) => g.rules),
    output: () => log,
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) {
        const gone = once(proc, 'exit');
        proc.kill('SIGTERM');
        await Promise.race([gone, sleep(10_000)]);
        if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
