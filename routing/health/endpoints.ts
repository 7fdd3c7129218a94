/**
 * Endpoint health, pure (docs/routing.md#endpoint-health): which endpoints of one upstream are
 * ejected, and which one the next attempt goes to. No I/O: the time (`now`, ms) and the randomness
 * (`random`, [0, 1)) are the caller's, so seeded simulations and an injected clock drive it.
 *
 * Ejection (Envoy's outlier detection, adapted to model servers that run 2–4 replicas):
 * - **local-origin failures** (refused, reset, timed out: no answer) `consecutiveLocal` times in a
 *   row eject the endpoint (Envoy's `consecutive_local_origin_failure`);
 * - **server errors** (5xx, gRPC INTERNAL, UNAVAILABLE, UNKNOWN, DATA_LOSS) eject an endpoint only
 *   when it is worse than its peers: on each error, its errors among its last `window` outcomes
 *   (at most `windowMs` old) are tested against the other endpoints' pooled rate over theirs: it
 *   is ejected when it has at least `minErrors` errors, its rate exceeds theirs by `margin`, and so
 *   many errors would come by chance with less than `chance` probability at the peers' rate (a
 *   binomial tail, at an upper bound of the peers' rate: (errors + 1) / (outcomes + 2) plus three
 *   standard errors, so little evidence from them is not read as none, nor a lucky spell as clean). A client's bad input that every replica answers with a 500 raises
 *   every rate alike and ejects nobody, where Envoy's `consecutive_5xx` would eject them one by
 *   one; a replica that fails every request while its peers do not is out after about `minErrors`
 *   of them, with two replicas as with ten.
 * - an ejection lasts `baseEjectionMs` × the number of times the endpoint was ejected, at most
 *   `maxEjectionMs`; then the endpoint is back, on probation: its window starts empty and slow start
 *   ramps its share up. The count decays by one for each `maxEjectionMs` without an ejection.
 * - at most `maxEjectedPercent` of the endpoints (rounded down) are out at once, so one endpoint of
 *   one is never ejected, and when every endpoint fails most keep being tried: the client gets the
 *   model's own answer, never a gateway-made "no healthy upstream".
 *
 * Picking (peak-EWMA with power of two choices, as Linkerd and Finagle): each endpoint's cost is
 * its latency estimate × (requests in flight + 1); two distinct endpoints
 * are drawn and the cheaper one taken when it is cheaper by more than COST_BAND, else the one with
 * fewer requests in flight (latency noise must not skew equal replicas' shares). The estimate jumps to a slower answer at once and decays
 * toward faster ones over DECAY_MS, and decays with time when no answer comes, so an endpoint that
 * was slow is tried again now and then. A failure without an answer (refused, reset, timed out)
 * counts as at least LOCAL_PENALTY_MS of latency; a server error does not count (a fast failure
 * would make a sick endpoint look fast and draw traffic; a penalty would let a client's bad input
 * steer it). An attempt cancelled because a hedge of its request answered first (`lost`) raises
 * the estimate to the time it ran, when that is longer, and keeps the endpoint out of the pick
 * for as long again, twice as long for each further loss in a row, until it answers: a replica
 * in a pause, whose cancelled requests no longer count as its work in flight, would otherwise be
 * drawn again whenever its peers are busier. It is neither a success nor a failure. A new
 * endpoint (joined a set that had others) or one back from ejection starts at weight
 * SLOW_START_MIN_WEIGHT, rising linearly to 1 over `slowStartMs`: it stays in a draw with the
 * probability of its weight, so its share ramps up with it.
 */
import type { OutcomeKind, OutlierPolicy } from '../types.js';

export type { OutlierPolicy };

export const DEFAULT_OUTLIER_POLICY: OutlierPolicy = {
  consecutiveLocal: 5,
  minErrors: 5,
  window: 30,
  windowMs: 10_000,
  chance: 1e-5,
  margin: 0.4,
  baseEjectionMs: 30_000,
  maxEjectionMs: 300_000,
  maxEjectedPercent: 50,
  slowStartMs: 10_000,
};

/** Why an endpoint was ejected (the `reason` label of seldon_gateway_upstream_ejections_total). */
export type EjectionReason = 'local_origin' | 'error_rate';

export interface Ejection {
  readonly reason: EjectionReason;
  /** When it is back (the caller's clock). */
  readonly until: number;
  /** Its error rate and its peers' when ejected for errors. */
  readonly rate?: number;
  readonly peerRate?: number;
}

/** How long a failure without an answer counts at least, in the estimate (ms). */
const LOCAL_PENALTY_MS = 1000;
/** The estimate's decay time toward faster answers, and toward nothing without answers (ms). */
const DECAY_MS = 10_000;
const SLOW_START_MIN_WEIGHT = 0.1;
/** Costs closer than this factor are taken as equal by the pick. */
const COST_BAND = 2;
/**
 * Standard errors added to the peers' rate before testing an endpoint against it. With `chance`
 * 1e-5: no false ejection in 1,000 simulated 20 s runs of 30% bad input, and a replica failing
 * everything out after a median of 15 failures (both workers) of four replicas, 25 of two
 * (load/health-sim.ts).
 */
const PEER_SE = 2;

/** One endpoint's health: its recent outcomes, its ejection, its latency estimate. */
export class EndpointHealth {
  /** Recent outcomes, a ring of at most the policy's window (allocated at the first): when, and whether a server error. */
  private times: Float64Array | undefined;
  private errors: Uint8Array | undefined;
  /** Where the oldest is, and how many there are. */
  private head = 0;
  private count = 0;
  private consecutiveLocal = 0;
  private ejections = 0;
  private lastEjectedAt = -Infinity;
  /** Ejected until then (the caller's clock); -Infinity when in. */
  ejectedUntil = -Infinity;
  ejection: Ejection | undefined;
  /** Slow start runs from then (the caller's clock); -Infinity: none. */
  private rampFrom: number;
  /** Peak-EWMA latency estimate (ms) and when it was last updated; 0: no answer yet. */
  private ewma = 0;
  private ewmaAt = 0;
  /** Attempts lost to hedges since its last answer, and until when that keeps it out of the pick. */
  private lostInARow = 0;
  private stalledUntil = -Infinity;

  constructor(
    readonly address: string,
    now: number,
    slowStart: boolean,
  ) {
    this.rampFrom = slowStart ? now : -Infinity;
  }

  isEjected(now: number): boolean {
    return now < this.ejectedUntil;
  }

  /** Lost to hedges lately, without an answer since: the pick prefers any other (`lost` above). */
  isStalled(now: number): boolean {
    return now < this.stalledUntil;
  }

  /** The latency estimate at `now` (ms), decayed since the last answer; 0 when none. */
  latency(now: number): number {
    if (this.ewma === 0) return 0;
    return this.ewma * Math.exp(-Math.max(0, now - this.ewmaAt) / DECAY_MS);
  }

  /** Slow start's share factor at `now`, 1 once over. */
  weight(now: number, policy: OutlierPolicy): number {
    const t = now - this.rampFrom;
    if (t >= policy.slowStartMs || policy.slowStartMs <= 0) return 1;
    return Math.max(SLOW_START_MIN_WEIGHT, t / policy.slowStartMs);
  }

  /** Its error count and outcome count over the window at `now`. */
  counts(now: number, policy: OutlierPolicy): { errors: number; total: number } {
    this.expire(now, policy);
    let errors = 0;
    const ring = this.errors;
    if (ring !== undefined) for (let i = 0; i < this.count; i++) errors += ring[(this.head + i) % ring.length]!;
    return { errors, total: this.count };
  }

  /** Record an outcome: the latency estimate and the window. */
  observe(kind: OutcomeKind, latencyMs: number, now: number, policy: OutlierPolicy): void {
    if (kind === 'none') return;
    if (kind === 'lost') {
      // A hedge's loser ran at least this long: an estimate below it rises to it, and the endpoint
      // sits out as long again (doubling with each loss in a row). Neither a success nor a
      // failure: the window is untouched.
      if (latencyMs > this.latency(now)) this.sample(latencyMs, now);
      this.stalledUntil = now + latencyMs * 2 ** Math.min(this.lostInARow, 10);
      this.lostInARow++;
      return;
    }
    if (kind !== 'local' && this.lostInARow !== 0) {
      this.lostInARow = 0;
      this.stalledUntil = -Infinity;
    }
    if (kind !== 'error') this.sample(kind === 'local' ? Math.max(latencyMs, LOCAL_PENALTY_MS) : latencyMs, now);
    if (kind === 'local') {
      this.consecutiveLocal++;
      return;
    }
    this.consecutiveLocal = 0;
    const size = Math.max(1, policy.window);
    if (this.times === undefined || this.times.length !== size) {
      this.times = new Float64Array(size);
      this.errors = new Uint8Array(size);
      this.head = 0;
      this.count = 0;
    }
    const at = (this.head + this.count) % size;
    this.times[at] = now;
    this.errors![at] = kind === 'error' ? 1 : 0;
    if (this.count < size) this.count++;
    else this.head = (this.head + 1) % size;
  }

  private sample(sample: number, now: number): void {
    const current = this.latency(now);
    // Peak-sensitive: a slower answer is believed at once, faster ones over DECAY_MS.
    if (sample >= current) this.ewma = sample;
    else {
      const w = Math.exp(-Math.max(0, now - this.ewmaAt) / DECAY_MS);
      this.ewma = current * w + sample * (1 - w);
    }
    this.ewmaAt = now;
  }

  get localFailuresInARow(): number {
    return this.consecutiveLocal;
  }

  eject(reason: EjectionReason, now: number, policy: OutlierPolicy, rates?: { rate: number; peerRate: number }): Ejection {
    // One step of the count forgiven per maxEjectionMs without an ejection.
    const forgiven = Math.floor((now - this.lastEjectedAt) / Math.max(1, policy.maxEjectionMs));
    this.ejections = Math.max(0, this.ejections - forgiven) + 1;
    this.lastEjectedAt = now;
    const until = now + Math.min(policy.baseEjectionMs * this.ejections, Math.max(policy.baseEjectionMs, policy.maxEjectionMs));
    this.ejectedUntil = until;
    this.ejection = { reason, until, ...(rates ? { rate: rates.rate, peerRate: rates.peerRate } : {}) };
    // Back on probation with an empty window, a clean count and slow start.
    this.head = 0;
    this.count = 0;
    this.consecutiveLocal = 0;
    this.rampFrom = until;
    return this.ejection;
  }

  private expire(now: number, policy: OutlierPolicy): void {
    const times = this.times;
    if (times === undefined) return;
    const oldest = now - policy.windowMs;
    while (this.count > 0 && times[this.head]! < oldest) {
      this.head = (this.head + 1) % times.length;
      this.count--;
    }
  }
}

/** What the picker needs of an endpoint: its health and its work in flight. */
export interface HealthTracked {
  readonly health: EndpointHealth;
  readonly outstanding: number;
}

/**
 * The outcome of one attempt on `member`, judged against the other endpoints of its `group` (its
 * upstream's, `member` among them): the ejection it caused, if any. `eject` false: outcomes still
 * feed the latency estimate, nothing is ejected (outlier detection off).
 */
export function judge(member: EndpointHealth, group: readonly HealthTracked[], kind: OutcomeKind, latencyMs: number, now: number, policy: OutlierPolicy, eject = true): Ejection | undefined {
  if (member.isEjected(now)) return undefined;
  member.observe(kind, latencyMs, now, policy);
  if (!eject) return undefined;
  if (kind === 'local') {
    if (member.localFailuresInARow < policy.consecutiveLocal) return undefined;
    return roomToEject(member, group, now, policy) ? member.eject('local_origin', now, policy) : undefined;
  }
  if (kind !== 'error') return undefined;
  const own = member.counts(now, policy);
  if (own.errors < policy.minErrors) return undefined;
  let errors = 0;
  let total = 0;
  for (const { health: p } of group) {
    if (p === member || p.isEjected(now)) continue;
    const c = p.counts(now, policy);
    errors += c.errors;
    total += c.total;
  }
  if (total === 0) return undefined;
  const rate = own.errors / own.total;
  const peerRate = errors / total;
  if (rate - peerRate < policy.margin) return undefined;
  // The peers' rate is itself an estimate: the test is against its upper bound (three standard errors).
  const p0 = (errors + 1) / (total + 2);
  const upper = Math.min(1, p0 + PEER_SE * Math.sqrt((p0 * (1 - p0)) / (total + 2)));
  if (binomialTail(own.errors, own.total, upper) >= policy.chance) return undefined;
  return roomToEject(member, group, now, policy) ? member.eject('error_rate', now, policy, { rate, peerRate }) : undefined;
}

/** P(X ≥ k) for X ~ Binomial(n, p), summed in log space (n is at most the window). */
export function binomialTail(k: number, n: number, p: number): number {
  if (k <= 0) return 1;
  if (p <= 0) return 0;
  if (p >= 1) return 1;
  const lp = Math.log(p);
  const lq = Math.log1p(-p);
  // log C(n, k), then each next term from the one before.
  let logC = 0;
  for (let i = 1; i <= k; i++) logC += Math.log((n - k + i) / i);
  let term = logC + k * lp + (n - k) * lq;
  let sum = 0;
  for (let j = k; j <= n; j++) {
    sum += Math.exp(term);
    term += Math.log((n - j) / (j + 1)) + lp - lq;
  }
  return Math.min(1, sum);
}

/** Whether one more of the `group` may be out (maxEjectedPercent of it, rounded down). */
function roomToEject(member: EndpointHealth, group: readonly HealthTracked[], now: number, policy: OutlierPolicy): boolean {
  let n = 0;
  let out = 0;
  for (const { health } of group) {
    n++;
    if (health !== member && health.isEjected(now)) out++;
  }
  if (!group.some((e) => e.health === member)) n++;
  return out + 1 <= Math.floor((n * policy.maxEjectedPercent) / 100);
}

/** An endpoint's cost for the pick: latency estimate × (in flight + 1). */
function cost(e: HealthTracked, fallbackMs: number, now: number): number {
  const latency = e.health.latency(now);
  return (latency > 0 ? latency : fallbackMs) * (e.outstanding + 1);
}

/**
 * The endpoint for the next attempt among `ready`: not ejected, not one of `avoid` (endpoints that
 * failed this request) unless nothing else is left, the cheaper of two distinct random draws.
 */
export function pickEndpoint<E extends HealthTracked>(ready: readonly E[], avoid: readonly EndpointHealth[] | undefined, now: number, policy: OutlierPolicy, random: () => number): E | undefined {
  const n = ready.length;
  if (n <= 1) return ready[0];
  let candidates: E[] | undefined;
  for (let i = 0; i < n; i++) {
    const e = ready[i]!;
    if (e.health.isEjected(now) || (avoid !== undefined && avoid.includes(e.health))) {
      candidates ??= ready.slice(0, i);
    } else if (candidates !== undefined) candidates.push(e);
  }
  let list: readonly E[] = candidates ?? ready;
  if (list.length === 0) {
    // Everything left failed this request or is out: any endpoint not ejected, else any.
    const inService = ready.filter((e) => !e.health.isEjected(now));
    list = inService.length > 0 ? inService : ready;
  }
  const m = list.length;
  if (m === 1) return list[0];
  const i = Math.floor(random() * m);
  let j = Math.floor(random() * (m - 1));
  if (j >= i) j++;
  const a = list[i]!;
  const b = list[j]!;
  // One that keeps losing to hedges sits out while another is drawn beside it.
  const sa = a.health.isStalled(now);
  if (sa !== b.health.isStalled(now)) return sa ? b : a;
  // Slow start: a ramping endpoint stays in the draw with the probability of its weight, so its
  // share rises with it (Envoy's slow_start_window); when both drop out, the further along wins.
  const wa = a.health.weight(now, policy);
  const wb = b.health.weight(now, policy);
  const aOut = wa < 1 && random() >= wa;
  const bOut = wb < 1 && random() >= wb;
  if (aOut !== bOut) return aOut ? b : a;
  if (aOut) return wb > wa ? b : a;
  // Endpoints with no answer yet cost what the others' typical answer costs.
  let sum = 0;
  let known = 0;
  for (const e of list) {
    const l = e.health.latency(now);
    if (l > 0) {
      sum += l;
      known++;
    }
  }
  const fallback = known > 0 ? sum / known : 1;
  const ca = cost(a, fallback, now);
  const cb = cost(b, fallback, now);
  // Costs within COST_BAND of each other are noise (a GC pause, a busy core): the less busy wins,
  // so equal replicas keep equal shares; a clearly slower (or ramping) one loses.
  if (ca > cb * COST_BAND) return b;
  if (cb > ca * COST_BAND) return a;
  return b.outstanding < a.outstanding ? b : a;
}
