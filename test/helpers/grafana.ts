/**
 * The Grafana dashboard (deploy/kustomize/components/dashboard/grafana-dashboard.json; the Helm
 * chart links to it) as the tests read it: its panels flattened out of their rows, every PromQL
 * expression with where it sits, and its template variables, with `withVariables` putting values
 * where Grafana would.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const DASHBOARD_FILE = fileURLToPath(new URL('../../deploy/kustomize/components/dashboard/grafana-dashboard.json', import.meta.url));

export interface Target {
  refId: string;
  expr: string;
}
export interface Panel {
  id: number;
  type: string;
  title: string;
  gridPos: { h: number; w: number; x: number; y: number };
  datasource?: { type: string; uid: string };
  targets?: Target[];
  panels?: Panel[];
}
export interface Variable {
  name: string;
  type: string;
  query: string | { query: string };
  allValue?: string;
}
export interface Dashboard {
  title: string;
  uid: string;
  schemaVersion: number;
  panels: Panel[];
  templating: { list: Variable[] };
  annotations: { list: { name: string; expr?: string }[] };
}

export function loadDashboard(): Dashboard {
  return JSON.parse(readFileSync(DASHBOARD_FILE, 'utf8')) as Dashboard;
}

/** Every panel, those inside collapsed rows too, rows included. */
export function panelsOf(dash: Dashboard): Panel[] {
  return dash.panels.flatMap((p) => [p, ...(p.panels ?? [])]);
}

/** Every PromQL expression of the dashboard (panel targets, then annotations), with where it is. */
export function expressionsOf(dash: Dashboard): { where: string; expr: string }[] {
  return [
    ...panelsOf(dash).flatMap((p) => (p.targets ?? []).map((t) => ({ where: `panel "${p.title}" ${t.refId}`, expr: t.expr }))),
    ...dash.annotations.list.filter((a) => a.expr).map((a) => ({ where: `annotation "${a.name}"`, expr: a.expr! })),
  ];
}

/** A query variable's query text (`label_values(metric{…}, label)`). */
export function variableQuery(v: Variable): string {
  return typeof v.query === 'string' ? v.query : v.query.query;
}

/**
 * `expr` as Grafana sends it: each `$name` / `${name}` of `values` replaced (a regex alternation
 * when several values are selected, as Grafana formats a multi-value variable in `=~`), and the
 * interval variables replaced by `intervals`.
 */
export function withVariables(expr: string, values: Readonly<Record<string, readonly string[]>>, intervals: { rate: string; interval: string; range: string }): string {
  return expr
    .replace(/\$__rate_interval/g, intervals.rate)
    .replace(/\$__interval/g, intervals.interval)
    .replace(/\$__range/g, intervals.range)
    .replace(/\$\{(\w+)\}|\$(\w+)/g, (whole, braced: string | undefined, bare: string | undefined) => {
      const v = values[(braced ?? bare)!];
      if (v === undefined) return whole;
      return v.length === 1 ? v[0]! : `(${v.join('|')})`;
    });
}
