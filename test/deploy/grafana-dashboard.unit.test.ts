/**
 * deploy/kustomize/components/dashboard/grafana-dashboard.json: it parses, it is a well-formed Grafana dashboard, every PromQL
 * expression names only metrics the gateway registers (and only their labels), and every gateway
 * metric is on it.
 */
import { describe, expect, it } from 'vitest';
import { registerSteerMetrics } from '../../gateway/steer/metrics.js';
import { GatewayMetrics } from '../../gateway/observe/metrics.js';
import { registerFlowMetrics } from '../../gateway/observe/flow-metrics.js';
import { LogMetrics } from '../../gateway/payload-log/metrics.js';
import { expressionsOf, loadDashboard, panelsOf, variableQuery } from '../helpers/grafana.js';

const KEYWORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'and', 'or', 'unless', 'bool', 'offset']);

/** Metric names an expression reads: identifiers that are not functions, keywords, labels or variables. */
export function metricNames(expr: string): string[] {
  const s = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ')
    .replace(/\$\{?\w+\}?/g, ' ');
  const names: string[] = [];
  for (const m of s.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*/g)) {
    const t = m[0];
    if (/^\s*\(/.test(s.slice(m.index + t.length))) continue; // a function or aggregation
    if (KEYWORDS.has(t) || /[0-9.]$/.test(s.slice(0, m.index))) continue; // 1e-6, 5m
    names.push(t);
  }
  return names;
}

/** `name{a="x", b=~"y"}` → [name, [a, b]] for every selector with matchers. */
function selectors(expr: string): [string, string[]][] {
  const out: [string, string[]][] = [];
  for (const m of expr.matchAll(/([a-zA-Z_:][a-zA-Z0-9_:]*)\{([^}]*)\}/g)) {
    out.push([m[1]!, [...m[2]!.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)/g)].map((l) => l[1]!)]);
  }
  return out;
}

async function registered(): Promise<Map<string, { family: string; labels: string[] }>> {
  const metrics = new GatewayMetrics();
  // The control plane's rollout and bandit metrics live in the same registry (gateway/steer/metrics.ts).
  registerSteerMetrics(metrics.registry);
  // And each data plane's flow control metrics (gateway/observe/flow-metrics.ts).
  registerFlowMetrics(metrics.registry, () => []);
  // And payload logging's, with --log-sinks (gateway/payload-log/metrics.ts).
  LogMetrics.of(metrics.registry);
  const names = new Map<string, { family: string; labels: string[] }>();
  for (const m of await metrics.registry.getMetricsAsJSON()) {
    const type = String(m.type);
    const single = metrics.registry.getSingleMetric(m.name) as unknown as { labelNames?: string[] };
    const labels = [...(single.labelNames ?? [])];
    const suffixes = type === 'histogram' ? ['_bucket', '_sum', '_count'] : type === 'summary' ? ['', '_sum', '_count'] : [''];
    for (const sfx of suffixes) names.set(`${m.name}${sfx}`, { family: m.name, labels: sfx === '_bucket' ? [...labels, 'le'] : type === 'summary' && sfx === '' ? [...labels, 'quantile'] : labels });
  }
  return names;
}

describe('the Grafana dashboard', () => {
  const dash = loadDashboard();
  const panels = panelsOf(dash);
  const exprs = expressionsOf(dash);

  it('parses as a Grafana dashboard: ids unique, every panel placed and on the datasource variable', () => {
    expect(dash.uid).toBe('seldon-gateway');
    expect(dash.schemaVersion).toBeGreaterThanOrEqual(36);
    const ids = panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const p of panels) {
      expect(p.gridPos.w, p.title).toBeGreaterThan(0);
      expect(p.gridPos.x + p.gridPos.w, p.title).toBeLessThanOrEqual(24);
      if (p.type === 'row') continue;
      expect(p.datasource, p.title).toEqual({ type: 'prometheus', uid: '${datasource}' });
      expect(p.targets!.length, p.title).toBeGreaterThan(0);
      expect(new Set(p.targets!.map((t) => t.refId)).size, p.title).toBe(p.targets!.length);
    }
    expect(dash.templating.list.map((v) => v.name)).toEqual(['datasource', 'namespace', 'deployment']);
    expect(exprs.length).toBeGreaterThan(30);
  });

  it('every PromQL expression reads only metrics the gateway registers, with their own labels', async () => {
    const known = await registered();
    const problems: string[] = [];
    for (const { where, expr } of exprs) {
      const names = metricNames(expr);
      if (names.length === 0) problems.push(`${where}: no metric in ${expr}`);
      for (const n of names) if (!known.has(n)) problems.push(`${where}: ${n} is not registered`);
      for (const [n, labels] of selectors(expr)) {
        for (const l of labels) if (known.has(n) && !known.get(n)!.labels.includes(l)) problems.push(`${where}: ${n} has no label ${l}`);
      }
      const grouped = [...expr.matchAll(/\b(?:by|without)\s*\(([^)]*)\)/g)].flatMap((m) =>
        m[1]!
          .split(',')
          .map((x) => x.trim())
          .filter(Boolean),
      );
      const available = new Set(['instance', 'job', ...names.flatMap((n) => known.get(n)?.labels ?? [])]);
      for (const l of grouped) if (!available.has(l)) problems.push(`${where}: groups by ${l}, which none of ${names.join(', ')} has`);
    }
    for (const v of dash.templating.list.filter((x) => x.type === 'query')) {
      const q = variableQuery(v);
      const m = /^label_values\(([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{[^}]*\})?,\s*(\w+)\)$/.exec(q);
      if (!m) problems.push(`variable ${v.name}: ${q}`);
      else if (!known.get(m[1]!)?.labels.includes(m[2]!)) problems.push(`variable ${v.name}: ${m[1]} has no label ${m[2]}`);
    }
    expect(problems).toEqual([]);
  });

  it('shows every metric the gateway registers', async () => {
    const known = await registered();
    const used = new Set(exprs.flatMap(({ expr }) => metricNames(expr)).map((n) => known.get(n)?.family));
    const gateway = [...new Set([...known.values()].map((v) => v.family))].filter((n) => n.startsWith('seldon_gateway_'));
    expect(gateway.filter((n) => !used.has(n))).toEqual([]);
  });

  it('the name extraction itself', () => {
    expect(metricNames('histogram_quantile(0.99, sum by (le) (rate(a_bucket{kind="x", c=~"$d"}[$__rate_interval])))')).toEqual(['a_bucket']);
    expect(metricNames('100 * sum by (p) (rate(x_total[5m])) / ignoring (p) group_left () sum(rate(x_total[5m]))')).toEqual(['x_total', 'x_total']);
    expect(metricNames('time() - max(t_seconds)')).toEqual(['t_seconds']);
  });
});
