/**
 * The gateway's own account of its stalls during a run: the difference of two /metrics scrapes in
 * `seldon_gateway_event_loop_delay_seconds` (how late a 10 ms probe timer fired) and
 * `seldon_gateway_gc_pause_seconds{kind}` (main-thread GC pauses), for the cluster workers (the
 * processes that serve traffic; the primary is left out, unless it is the only process). Tells a stall in the gateway (its loop
 * was blocked: GC, a sweep, a compile) from one outside it (its core was taken, the load
 * generator lagged), which the latency figures alone cannot.
 */

interface Histo {
  /** Cumulative counts by upper bound (seconds; +Inf last). */
  readonly buckets: Map<number, number>;
  sum: number;
  count: number;
}

export interface RuntimeSnapshot {
  readonly delay: Histo;
  /** By GC kind (minor, major, incremental, weakcb). */
  readonly gc: Map<string, Histo>;
}

export interface RuntimeDelta {
  /** Probes of the event-loop timer in the window, and how many fired more than 5 / 10 / 25 ms late. */
  readonly probes: number;
  readonly late5: number;
  readonly late10: number;
  readonly late25: number;
  /** The bucket bound under which 99% of the probes fell (seconds; Infinity beyond the last bound). */
  readonly p99: number;
  /** Upper bound of the highest non-empty bucket (seconds), 0 without probes. */
  readonly maxBound: number;
  /** GC pauses by kind: count, total seconds, upper bound of the highest non-empty bucket. */
  readonly gc: ReadonlyMap<string, { count: number; seconds: number; maxBound: number }>;
}

const LINE = /^(seldon_gateway_(?:event_loop_delay|gc_pause)_seconds)_(bucket|sum|count)\{([^}]*)\} (\S+)$/;

function labelsOf(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of text.matchAll(/([a-zA-Z_]\w*)="((?:[^"\\]|\\.)*)"/g)) out[m[1]!] = m[2]!;
  return out;
}

const empty = (): Histo => ({ buckets: new Map(), sum: 0, count: 0 });

/**
 * Sum of the workers' series (worker label other than `primary`) in a /metrics text; a gateway
 * without workers (one process, started in-process) serves from its primary, whose series it is then.
 */
export function runtimeSnapshot(metricsText: string): RuntimeSnapshot {
  const snap: RuntimeSnapshot = { delay: empty(), gc: new Map() };
  const lines = metricsText.split('\n');
  const hasWorkers = lines.some((l) => l.startsWith('seldon_gateway_event_loop_delay_seconds_count{') && !l.includes('worker="primary"'));
  for (const line of lines) {
    const m = LINE.exec(line);
    if (!m) continue;
    const labels = labelsOf(m[3]!);
    if (labels.worker === undefined || (hasWorkers && labels.worker === 'primary')) continue;
    let h = snap.delay;
    if (m[1] === 'seldon_gateway_gc_pause_seconds') {
      const kind = labels.kind ?? 'other';
      h = snap.gc.get(kind) ?? empty();
      snap.gc.set(kind, h);
    }
    const v = Number(m[4]);
    if (m[2] === 'sum') h.sum += v;
    else if (m[2] === 'count') h.count += v;
    else {
      const le = labels.le === '+Inf' ? Infinity : Number(labels.le);
      h.buckets.set(le, (h.buckets.get(le) ?? 0) + v);
    }
  }
  return snap;
}

function diff(a: Histo | undefined, b: Histo): Histo {
  const buckets = new Map<number, number>();
  for (const [le, n] of b.buckets) buckets.set(le, n - (a?.buckets.get(le) ?? 0));
  return { buckets, sum: b.sum - (a?.sum ?? 0), count: b.count - (a?.count ?? 0) };
}

/** Cumulative count at the largest bound ≤ `le`. */
function atOrBelow(h: Histo, le: number): number {
  let n = 0;
  for (const [bound, c] of h.buckets) if (bound <= le + 1e-12) n = Math.max(n, c);
  return n;
}

/** The smallest bound holding every observation: the highest non-empty bucket's upper bound (0 when empty). */
function maxBound(h: Histo): number {
  if (h.count <= 0) return 0;
  const bounds = [...h.buckets.keys()].sort((x, y) => x - y);
  return bounds.find((le) => (h.buckets.get(le) ?? 0) >= h.count) ?? Infinity;
}

export function runtimeDelta(before: RuntimeSnapshot, after: RuntimeSnapshot): RuntimeDelta {
  const d = diff(before.delay, after.delay);
  const bounds = [...d.buckets.keys()].sort((x, y) => x - y);
  const p99 = d.count > 0 ? (bounds.find((le) => (d.buckets.get(le) ?? 0) >= 0.99 * d.count) ?? Infinity) : 0;
  const gc = new Map<string, { count: number; seconds: number; maxBound: number }>();
  for (const [kind, h] of after.gc) {
    const g = diff(before.gc.get(kind), h);
    if (g.count > 0) gc.set(kind, { count: g.count, seconds: g.sum, maxBound: maxBound(g) });
  }
  return {
    probes: d.count,
    late5: d.count - atOrBelow(d, 0.005),
    late10: d.count - atOrBelow(d, 0.01),
    late25: d.count - atOrBelow(d, 0.025),
    p99,
    maxBound: maxBound(d),
    gc,
  };
}

const bound = (s: number): string => (s === Infinity ? '>1 s' : s >= 1 ? `${s} s` : `${+(s * 1000).toFixed(1)} ms`);

/** One line: the loop's late probes, and the GC pauses by kind. */
export function formatRuntimeDelta(d: RuntimeDelta | null): string {
  if (!d) return 'no runtime metrics';
  if (d.probes === 0) return 'no event-loop probes (gateway without seldon_gateway_event_loop_delay_seconds?)';
  const gc = [...d.gc].map(([kind, g]) => `${kind} ${g.count}× ${(g.seconds * 1000).toFixed(0)} ms (≤${bound(g.maxBound)})`).join(', ');
  return `loop: ${d.probes} probes, late >5/>10/>25 ms: ${d.late5}/${d.late10}/${d.late25}, p99 ≤${bound(d.p99)}, max ≤${bound(d.maxBound)}; GC: ${gc || 'none'}`;
}
