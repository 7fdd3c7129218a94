/**
 * PromQL as the tests read it: parsed with Prometheus's own grammar (@prometheus-io/lezer-promql,
 * the parser of the Prometheus UI), never with regular expressions. `promqlUses` says what an
 * expression reads (each selector's metric and the labels it matches on, the labels it groups
 * by) and where it does not parse; `gatewaySeries` lists the series names the gateway exposes,
 * exactly as Prometheus scrapes them (a histogram `h` as `h_bucket`, `h_sum`, `h_count`), with
 * their labels.
 */
import { parser } from '@prometheus-io/lezer-promql';
import { GatewayMetrics } from '../../gateway/observe/metrics.js';
import { registerSteerMetrics } from '../../gateway/steer/metrics.js';
import { registerFlowMetrics } from '../../gateway/observe/flow-metrics.js';
import { LogMetrics } from '../../gateway/payload-log/metrics.js';

export interface PromqlUses {
  /** Each vector selector: metric name (empty when the selector has none) and its matchers' label names. */
  readonly selectors: readonly { readonly metric: string; readonly labels: readonly string[] }[];
  /** Labels named in by(...), without(...), on(...), ignoring(...), group_left(...)/group_right(...). */
  readonly grouping: readonly string[];
  /** Text around each place the parser could not read. */
  readonly errors: readonly string[];
}

/** Grafana's variables, replaced by values of their kind before parsing. */
function withoutGrafanaVariables(expr: string): string {
  return expr.replace(/\$__rate_interval|\$__interval|\$__range/g, '5m');
}

export function promqlUses(expr: string): PromqlUses {
  const src = withoutGrafanaVariables(expr);
  const selectors: { metric: string; labels: string[] }[] = [];
  const grouping: string[] = [];
  const errors: string[] = [];
  const text = (from: number, to: number): string => src.slice(from, to);
  parser.parse(src).iterate({
    enter(node) {
      if (node.type.isError) {
        errors.push(`at ${node.from}: …${src.slice(Math.max(0, node.from - 20), node.to + 20)}…`);
        return;
      }
      if (node.name === 'VectorSelector') {
        const n = node.node;
        const id = n.getChild('Identifier');
        const labels: string[] = [];
        for (const m of n.getChild('LabelMatchers')?.getChildren('UnquotedLabelMatcher') ?? []) {
          const name = m.getChild('LabelName');
          if (name) labels.push(text(name.from, name.to));
        }
        selectors.push({ metric: id ? text(id.from, id.to) : '', labels });
      } else if (node.name === 'GroupingLabels') {
        for (const l of node.node.getChildren('LabelName')) grouping.push(text(l.from, l.to));
      }
    },
  });
  return { selectors, grouping, errors };
}

/** Every series name the gateway exposes → its labels (a histogram's `_bucket` has `le` too). */
export async function gatewaySeries(): Promise<Map<string, readonly string[]>> {
  const metrics = new GatewayMetrics();
  // The control plane's rollout and bandit metrics (gateway/steer/metrics.ts) are exposed beside them.
  registerSteerMetrics(metrics.registry);
  // And each data plane's flow control metrics (gateway/observe/flow-metrics.ts).
  registerFlowMetrics(metrics.registry, () => []);
  // And payload logging's, with --log-sinks (gateway/payload-log/metrics.ts).
  LogMetrics.of(metrics.registry);
  const series = new Map<string, readonly string[]>();
  for (const m of await metrics.registry.getMetricsAsJSON()) {
    const single = metrics.registry.getSingleMetric(m.name) as unknown as { labelNames?: readonly string[] };
    const labels = [...(single.labelNames ?? [])];
    const type = String(m.type);
    if (type === 'histogram') {
      series.set(`${m.name}_bucket`, [...labels, 'le']);
      series.set(`${m.name}_sum`, labels);
      series.set(`${m.name}_count`, labels);
    } else if (type === 'summary') {
      series.set(m.name, [...labels, 'quantile']);
      series.set(`${m.name}_sum`, labels);
      series.set(`${m.name}_count`, labels);
    } else series.set(m.name, labels);
  }
  return series;
}
