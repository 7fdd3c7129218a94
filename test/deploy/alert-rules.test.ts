/**
 * The alert rules of deploy/kustomize/components/alerts (the Helm chart's copy is the same file),
 * unit-tested by `promtool test rules` (test/deploy/alert-rules.promtool.yaml): the PrometheusRule's
 * groups are written as a rule file beside a copy of the tests, and promtool runs them; its output
 * is the failure message. Every alert has a test where it fires on its trouble, pending first (its
 * `for`), and one where it stays silent; and the runner fails on a test that fails.
 */
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { promtool, ruleGroups, writeRuleFile } from '../helpers/prometheus.js';

const TESTS = fileURLToPath(new URL('alert-rules.promtool.yaml', import.meta.url));
/** The rule file the tests name (their `rule_files`). */
const RULE_FILE = 'seldon-gateway-rules.yaml';

interface AlertTest {
  eval_time: string;
  alertname: string;
  exp_alerts: { exp_labels: Record<string, string> }[];
}
interface ExprTest {
  expr: string;
  eval_time: string;
  exp_samples: { labels: string }[];
}
interface TestGroup {
  name: string;
  alert_rule_test?: AlertTest[];
  promql_expr_test?: ExprTest[];
}
interface TestFile {
  rule_files: string[];
  tests: TestGroup[];
}

/** A promtool duration (`1h10m`, `90s`) in seconds. */
function seconds(d: string): number {
  let s = 0;
  for (const [, n, unit] of d.matchAll(/(\d+)(ms|s|m|h|d)/g)) s += Number(n) * { ms: 0.001, s: 1, m: 60, h: 3600, d: 86400 }[unit as 'ms' | 's' | 'm' | 'h' | 'd'];
  return s;
}

describe('the alert rules under promtool', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sgw-alert-rules-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const groups = ruleGroups();
  const alerts = groups.flatMap((g) => g.rules);
  const tests = parse(readFileSync(TESTS, 'utf8')) as TestFile;
  writeRuleFile(join(dir, RULE_FILE), groups);
  copyFileSync(TESTS, join(dir, 'tests.yaml'));

  it('promtool accepts the rules', () => {
    expect(tests.rule_files).toEqual([RULE_FILE]);
    const r = promtool(['check', 'rules', RULE_FILE], dir);
    expect(r.status, r.output).toBe(0);
    expect(r.output).toContain(`SUCCESS: ${alerts.length} rules found`);
  });

  it('every test passes', () => {
    const r = promtool(['test', 'rules', 'tests.yaml'], dir);
    expect(r.status, r.output).toBe(0);
    expect(r.output).toContain('SUCCESS');
  });

  it('every alert fires in a test (pending first, its labels and annotations given) and stays silent in another', () => {
    const missing: string[] = [];
    for (const { alert, for: wait } of alerts) {
      const fires = tests.tests.filter((t) => t.alert_rule_test?.some((a) => a.alertname === alert && a.exp_alerts.length > 0));
      if (fires.length === 0) missing.push(`${alert}: no test where it fires`);
      // Pending (the ALERTS series says so) before it fires in the same test: its `for` held it back.
      const pendingFirst = fires.some((t) => {
        const firing = Math.min(...t.alert_rule_test!.filter((a) => a.alertname === alert && a.exp_alerts.length > 0).map((a) => seconds(a.eval_time)));
        return (t.promql_expr_test ?? []).some((e) => e.expr.includes(`alertname="${alert}"`) && seconds(e.eval_time) < firing && e.exp_samples.some((s) => s.labels.includes('alertstate="pending"')));
      });
      if (fires.length > 0 && !pendingFirst) missing.push(`${alert}: not seen pending before it fires (for: ${wait})`);
      for (const t of fires) {
        for (const a of t.alert_rule_test!.filter((x) => x.alertname === alert)) {
          for (const e of a.exp_alerts) {
            const rule = alerts.find((x) => x.alert === alert)!;
            if (e.exp_labels.severity !== rule.labels.severity) missing.push(`${alert} in "${t.name}": severity ${e.exp_labels.severity}, the rule says ${rule.labels.severity}`);
          }
        }
      }
      const silent = tests.tests.filter(
        (t) => !fires.includes(t) && t.alert_rule_test?.some((a) => a.alertname === alert) && t.alert_rule_test.every((a) => a.alertname !== alert || a.exp_alerts.length === 0),
      );
      if (silent.length === 0) missing.push(`${alert}: no test where it stays silent`);
    }
    // And no test names an alert the rules do not have.
    for (const t of tests.tests) for (const a of t.alert_rule_test ?? []) if (!alerts.some((x) => x.alert === a.alertname)) missing.push(`"${t.name}" tests ${a.alertname}, which is no rule`);
    expect(missing).toEqual([]);
  });

  it('the runner fails on a failing test, and its output says which and why', () => {
    const broken: TestFile = {
      rule_files: [RULE_FILE],
      tests: [
        {
          name: 'a healthy target said to be down',
          interval: '1m',
          input_series: [{ series: 'up{job="seldon-gateway", instance="10.0.0.1:8877", namespace="seldon-system", pod="gw-1"}', values: '1x20' }],
          alert_rule_test: [{ eval_time: '10m', alertname: 'SeldonGatewayScrapeDown', exp_alerts: [{ exp_labels: { severity: 'critical' } }] }],
        } as TestGroup,
      ],
    };
    writeFileSync(join(dir, 'broken.yaml'), stringify(broken));
    const r = promtool(['test', 'rules', 'broken.yaml'], dir);
    expect(r.status).not.toBe(0);
    expect(r.output).toContain('FAILED');
    expect(r.output).toContain('a healthy target said to be down');
    expect(r.output).toContain('alertname: SeldonGatewayScrapeDown, time: 10m');
  });
});
