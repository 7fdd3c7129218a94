/**
 * How many requests one process may have at a predictor's model at once (docs/flow-control.md#limits):
 * a fixed limit shared between the gateway's processes, or an adaptive one found from latencies;
 * and the observed service time the wait estimates use. Pure: clock and randomness are arguments.
 */

/**
 * A fixed limit of `total` (concurrency × ready endpoints) split between `replicas` replicas of
 * the gateway and the `workers` processes of this one: each replica takes total / replicas
 * (rounded, at least 1), and its processes split that by index, the first ones taking the
 * remainder. Every process gets at least 1, so a limit under the number of processes is exceeded by
 * at most the difference: each process must be able to serve, and no per-request round trip
 * between processes is affordable.
 */
export function fixedShare(total: number, replicas: number, workers: number, index: number): number {
  if (total <= 0) return 0;
  const perReplica = Math.max(1, Math.round(total / Math.max(1, replicas)));
  const w = Math.max(1, workers);
  const base = Math.floor(perReplica / w);
  return Math.max(1, base + (index % w < perReplica % w ? 1 : 0));
}

/** Moving average of the time a model takes per request, in ms (null until the first answer). */
export class ServiceTime {
  private value: number | null = null;
  constructor(private readonly weight = 0.1) {}
  get ms(): number | null {
    return this.value;
  }
  add(ms: number): void {
    this.value = this.value === null ? ms : this.value + this.weight * (ms - this.value);
  }
}

export interface AdaptiveOptions {
  /** Lowest and highest limit. */
  readonly minLimit: number;
  readonly maxLimit: number;
  /** Latency above the ideal that still counts as unloaded, as a fraction (Envoy's buffer). */
  readonly buffer: number;
  /** Samples of a probe of the ideal latency (their median is taken). */
  readonly probeSamples: number;
  /** Mean time between two probes of the ideal latency, in ms (jittered ±25%). */
  readonly probeIntervalMs: number;
  /** Windows in a row at the lowest gradient that start a probe at once (the model slowed down). */
  readonly slowWindows: number;
  /** The limit while the first probe runs (Envoy's min_concurrency): its sample is the first request, sent alone. */
  readonly startLimit: number;
}

export const ADAPTIVE_DEFAULTS: AdaptiveOptions = Object.freeze({ minLimit: 1, maxLimit: 1000, buffer: 0.1, probeSamples: 5, probeIntervalMs: 2000, slowWindows: 2, startLimit: 3 });

const median = (xs: number[]): number => {
  xs.sort((a, b) => a - b);
  return xs[xs.length >> 1]!;
};

/**
 * An adaptive concurrency limit, after Envoy's adaptive concurrency filter (gradient controller)
 * and Netflix's concurrency-limits Gradient2:
 * - The ideal latency (`minRtt`) is measured by a probe: the limit drops to half (at least 1) so
 *   the model has nothing queued inside it, and the median latency of `probeSamples` requests sent
 *   while fewer than that were in flight is taken. The first probe starts at once (at limit 1); the
 *   next ones every `probeIntervalMs` ± 25% (seeded jitter, so processes do not probe together),
 *   and at once after `slowWindows` windows at the lowest gradient: the model slowed down.
 * - Between probes, each window of max(3, limit) answers gives its median latency, and
 *   `limit = limit × gradient + 1` with `gradient = minRtt × (1 + buffer) / median`, clamped to
 *   [0.5, 1]. Above the model's own concurrency every request waits inside it, the median grows
 *   with the limit, and the limit settles near the model's concurrency × (1 + buffer) + 1: the
 *   model stays busy and little waits inside it, where the gateway cannot reorder or refuse it.
 *   A window faster than `minRtt` lowers it at once (the model sped up).
 * - When the model slows 3×, the gradient is 0.5 from the next window: the limit halves per
 *   window, then a probe measures the new ideal latency and the limit grows back to the model's
 *   concurrency.
 */
export class AdaptiveLimit {
  private estimate: number;
  private minRtt: number | null = null;
  private probing = true;
  /** Current probe: its number (a tag on the requests it sends) and the limit it holds. */
  private probeEpoch = 1;
  private probeLimit = 1;
  private probeSamples: number[] = [];
  /** The estimate before the probe, restored after it. */
  private resumeAt: number;
  private window: number[] = [];
  private nextProbeAt = 0;
  private slow = 0;
  /** Slow start: the limit doubles per window until a window is slower than the ideal. */
  private starting = true;
  /** The limit was reached during this window. */
  private full = false;

  constructor(
    private readonly random: () => number,
    private readonly options: AdaptiveOptions = ADAPTIVE_DEFAULTS,
  ) {
    this.estimate = options.minLimit;
    this.resumeAt = options.minLimit;
    this.probeLimit = Math.max(options.minLimit, options.startLimit);
  }

  get limit(): number {
    return this.probing ? this.probeLimit : Math.max(this.options.minLimit, Math.floor(this.estimate));
  }

  /**
   * The limit the model is served at outside probes (the one before a probe while it runs): what
   * a wait is estimated with, since a probe's halved limit lasts only a few answers. Null until
   * the first probe has found the ideal latency: the model's pace is unknown until then.
   */
  get steadyLimit(): number | null {
    if (this.minRtt === null || this.starting) return null;
    return Math.max(this.options.minLimit, Math.floor(this.probing ? this.resumeAt : this.estimate));
  }

  /** The ideal latency found by the last probe, in ms (null before it). */
  get idealMs(): number | null {
    return this.minRtt;
  }

  /**
   * A request is sent with `inflight` others at the model: the tag to give back with its sample
   * (a probe's number when it measures the ideal latency, else 0).
   */
  started(now: number, inflight: number): number {
    if (!this.probing && now >= this.nextProbeAt && this.minRtt !== null) this.startProbe();
    if (inflight + 1 >= this.limit) this.full = true;
    return this.probing && inflight < (this.minRtt === null ? 1 : this.probeLimit) ? this.probeEpoch : 0;
  }

  /** A model's answer took `latencyMs`; `tag` is what `started` returned for it. */
  sample(now: number, latencyMs: number, tag: number): void {
    if (this.probing) {
      if (tag !== this.probeEpoch) return;
      this.probeSamples.push(latencyMs);
      // The first probe's first answer came from an idle model: it is the ideal until the next probe.
      if (this.probeSamples.length >= (this.minRtt === null ? 1 : this.options.probeSamples)) this.endProbe(now);
      return;
    }
    const w = this.window;
    w.push(latencyMs);
    if (w.length < (this.starting ? 1 : Math.max(3, this.limit))) return;
    const rtt = median(w);
    this.window = [];
    if (rtt < this.minRtt!) this.minRtt = rtt;
    const gradient = Math.min(1, Math.max(0.5, (this.minRtt! * (1 + this.options.buffer)) / rtt));
    // Slow start: from the first probe until a window is clearly slower than the ideal (requests
    // wait inside the model: half again its ideal, past the noise of one answer), the limit doubles.
    if (rtt > this.minRtt! * 1.5) this.starting = false;
    // Only a limit that was reached grows: light load says nothing of what the model can take.
    const grown = this.starting ? (this.full ? this.estimate * 2 : this.estimate) : this.estimate * gradient + 1;
    this.full = false;
    this.estimate = Math.min(this.options.maxLimit, Math.max(this.options.minLimit, grown));
    this.slow = gradient === 0.5 ? this.slow + 1 : 0;
    if (this.slow >= this.options.slowWindows) this.startProbe();
  }

  private startProbe(): void {
    this.slow = 0;
    this.window = [];
    this.resumeAt = this.estimate;
    this.probing = true;
    this.probeEpoch++;
    this.probeLimit = Math.max(this.options.minLimit, Math.floor(this.estimate / 2));
    this.probeSamples = [];
  }

  private endProbe(now: number): void {
    this.minRtt = median(this.probeSamples);
    this.probing = false;
    this.estimate = Math.max(this.resumeAt, this.probeLimit);
    const jitter = 0.75 + 0.5 * this.random();
    this.nextProbeAt = now + this.options.probeIntervalMs * jitter;
  }
}
