/**
 * The per-request metrics (requests by code, upstream latency, request duration) as series bound once per
 * label set, for the hot path: counting is an addition, observing a bucket search and three
 * additions. prom-client's own children hash their label object on every `inc` and `observe`
 * (≈4 µs per proxied request, measured with a CPU profile under load); these do it once, when a
 * backend is first seen.
 *
 * Both register in a prom-client Registry as metrics of their own and answer `get()` (and
 * `getForPromString()`) with exactly the objects prom-client's Counter and Histogram give, so the
 * exposition text, the JSON the cluster workers send the primary, and its aggregation are the same.
 * A series appears once it has counted something, as prom-client's do.
 */
import type { Metric, Registry } from 'prom-client';

type Labels = Record<string, string>;

/** One exported value, as prom-client's metrics give them (its .d.ts types these loosely). */
interface ExportedValue {
  value: number;
  labels: Record<string, string | number>;
  metricName?: string;
  sharedLabels?: Labels;
  /** prom-client's buckets carry one (none here: exemplars are off). */
  exemplar?: null;
}

/** What `get()` answers: what the registry formats and the cluster aggregator merges. */
interface Exported {
  name: string;
  help: string;
  type: 'counter' | 'histogram';
  aggregator: 'sum';
  values: ExportedValue[];
}

/** Label values to the labels object, in `names` order (the exposition keeps that order). */
function labelsOf(names: readonly string[], values: readonly string[]): Labels {
  if (values.length !== names.length) throw new Error(`expected ${names.length} label values (${names.join(', ')}), got ${values.length}`);
  const out: Labels = {};
  names.forEach((n, i) => (out[n] = values[i]!));
  return out;
}

const keyOf = (values: readonly string[]): string => values.join('\u0000');

abstract class BoundMetric<S extends { readonly labels: Labels; empty(): boolean }> {
  readonly aggregator = 'sum' as const;
  private readonly bySet = new Map<string, S>();

  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly string[],
    registry: Registry,
  ) {
    // The registry only calls get()/getForPromString() and reads name, help and type.
    registry.registerMetric(this as unknown as Metric);
  }

  /** The series of these label values (the same object for the same values). */
  protected bound(values: readonly string[], make: (labels: Labels) => S): S {
    const key = keyOf(values);
    let s = this.bySet.get(key);
    if (!s) this.bySet.set(key, (s = make(labelsOf(this.labelNames, values))));
    return s;
  }

  /**
   * Remove one series (its subject is gone: observe/series-reaper.ts). A holder of the removed
   * object counts into nothing; GatewayMetrics binds again after a removal (its `epoch`).
   */
  remove(labels: Readonly<Record<string, string | number>>): void {
    this.bySet.delete(keyOf(this.labelNames.map((n) => String(labels[n] ?? ''))));
  }

  protected counted(): S[] {
    return [...this.bySet.values()].filter((s) => !s.empty());
  }
}

export class CounterSeries {
  value = 0;
  constructor(readonly labels: Labels) {}
  inc(): void {
    this.value++;
  }
  empty(): boolean {
    return this.value === 0;
  }
}

/** A counter whose series are bound once (`series(...)`), then counted with `inc()`. */
export class BoundCounter extends BoundMetric<CounterSeries> {
  readonly type = 'counter' as const;

  series(...values: string[]): CounterSeries {
    return this.bound(values, (labels) => new CounterSeries(labels));
  }

  async get(): Promise<Exported> {
    return { name: this.name, help: this.help, type: 'counter', aggregator: this.aggregator, values: this.counted().map((s) => ({ value: s.value, labels: { ...s.labels } })) };
  }
}

export class HistogramSeries {
  /** Observations per bucket (not cumulative), the last one above every bound (+Inf). */
  readonly counts: Float64Array;
  sum = 0;
  count = 0;
  constructor(
    readonly labels: Labels,
    private readonly bounds: readonly number[],
  ) {
    this.counts = new Float64Array(bounds.length + 1);
  }
  observe(value: number): void {
    if (!Number.isFinite(value)) return;
    const b = this.bounds;
    let i = 0;
    while (i < b.length && value > b[i]!) i++;
    this.counts[i]!++;
    this.sum += value;
    this.count++;
  }
  empty(): boolean {
    return this.count === 0;
  }
}

/** A histogram whose series are bound once (`series(...)`), then fed with `observe(seconds)`. */
export class BoundHistogram extends BoundMetric<HistogramSeries> {
  readonly type = 'histogram' as const;

  constructor(
    name: string,
    help: string,
    labelNames: readonly string[],
    private readonly buckets: readonly number[],
    registry: Registry,
  ) {
    super(name, help, labelNames, registry);
  }

  series(...values: string[]): HistogramSeries {
    return this.bound(values, (labels) => new HistogramSeries(labels, this.buckets));
  }

  /** prom-client's shape: per series, each bucket cumulative with `le`, then +Inf, _sum and _count; the series' labels as shared labels. */
  async getForPromString(): Promise<Exported> {
    const values: ExportedValue[] = [];
    const bucket = `${this.name}_bucket`;
    for (const s of this.counted()) {
      let acc = 0;
      this.buckets.forEach((le, i) => {
        acc += s.counts[i]!;
        values.push({ labels: { le }, sharedLabels: s.labels, value: acc, metricName: bucket, exemplar: null });
      });
      values.push(
        { labels: { le: '+Inf' }, sharedLabels: s.labels, value: s.count, metricName: bucket, exemplar: null },
        { labels: {}, sharedLabels: s.labels, value: s.sum, metricName: `${this.name}_sum` },
        { labels: {}, sharedLabels: s.labels, value: s.count, metricName: `${this.name}_count` },
      );
    }
    return { name: this.name, help: this.help, type: 'histogram', aggregator: this.aggregator, values };
  }

  /** As prom-client's `get()`: the series' labels folded into each value's labels (after `le`). */
  async get(): Promise<Exported> {
    const data = await this.getForPromString();
    return { ...data, values: data.values.map(({ sharedLabels, labels, ...v }) => ({ ...v, labels: { ...labels, ...sharedLabels } })) };
  }
}
