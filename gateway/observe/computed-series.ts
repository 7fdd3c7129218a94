/**
 * Gauges whose series are computed from state when metrics are read (route weights, ready
 * endpoints), never on a request.
 */
import type { Gauge } from 'prom-client';

/** One series of a gauge computed from state: its label values (in the gauge's label order) and value. */
export interface GaugeSeries {
  readonly labels: readonly string[];
  readonly value: number;
}

/**
 * A gauge's series computed from state when metrics are read (never on the hot path). Only the
 * series that changed since the last read are touched: setting 10,000 unchanged series again would
 * cost more than computing them (prom-client hashes the labels of each).
 */
export class ComputedSeries {
  private current: ReadonlyMap<string, GaugeSeries> = new Map();
  constructor(
    private readonly gauge: Gauge<string>,
    /** Every series by a key of its labels; undefined when nothing changed since the last call. */
    private readonly source: () => ReadonlyMap<string, GaugeSeries> | undefined,
  ) {}

  collect(): void {
    const next = this.source();
    if (next === undefined) return;
    for (const [key, s] of this.current) if (!next.has(key)) this.gauge.remove(...s.labels);
    for (const [key, s] of next) {
      if (this.current.get(key)?.value !== s.value) this.gauge.labels(...s.labels).set(s.value);
    }
    this.current = next;
  }
}
