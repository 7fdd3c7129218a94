/**
 * What a worker counts for rollouts and bandits (docs/rollouts.md#counting): per predictor of a
 * steered deployment, the answered requests, the errors among them, a latency histogram on the
 * fine buckets the rank test needs, the mirrored copies and how many of their answers agreed with
 * the primary's. Only backends of steered deployments (`Backend.steered`) reach it, from the same
 * calls that feed the request metrics: an addition or two and one bucket index, no Redis, no
 * allocation once a predictor is seen.
 *
 * `take()` hands over what was counted since the last call (once a second, to the control plane),
 * as plain JSON with the histograms sparse, and starts again from zero.
 */
import { LATENCY_BOUNDS_MS, latencyBucket } from '../../routing/stats/latency-buckets.js';
import { isRolloutError } from '../../routing/steering/rollout/inputs.js';
import type { Backend, Protocol } from '../../routing/types.js';

/** One predictor's counts over one flush period. Latency: bucket index → count. */
export interface PredictorCounts {
  /** Answered requests (primary traffic). */
  n: number;
  /** Errors among them (docs/rollouts.md#errors). */
  e: number;
  /** Latency histogram (ms buckets of routing/stats/latency-buckets.ts), sparse. */
  l: Record<string, number>;
  /** Mirrored copies sent to it. */
  m: number;
  /** Its mirrored answers compared with the primary's, and how many agreed. */
  c: number;
  a: number;
}

/** deployment (`ns/name`) → predictor → counts. */
export type SteerCounts = Record<string, Record<string, PredictorCounts>>;

class Tally {
  n = 0;
  e = 0;
  m = 0;
  c = 0;
  a = 0;
  readonly latency = new Float64Array(LATENCY_BOUNDS_MS.length + 1);
  touched = false;
}

export class SteerTally {
  private readonly byBackend = new WeakMap<Backend, Tally>();
  /** deployment → predictor → tally; REST and gRPC backends of one predictor share one. */
  private readonly byPredictor = new Map<string, Map<string, Tally>>();

  private tallyOf(b: Backend): Tally {
    let t = this.byBackend.get(b);
    if (!t) {
      const dep = `${b.origin.namespace}/${b.origin.deployment}`;
      let preds = this.byPredictor.get(dep);
      if (!preds) this.byPredictor.set(dep, (preds = new Map()));
      t = preds.get(b.origin.predictor);
      if (!t) preds.set(b.origin.predictor, (t = new Tally()));
      this.byBackend.set(b, t);
    }
    t.touched = true;
    return t;
  }

  /** One answered primary request: its status (HTTP, or the gRPC status), and its upstream latency when one answered. */
  request(b: Backend, protocol: Protocol, code: number, upstreamSeconds: number | null): void {
    const t = this.tallyOf(b);
    t.n++;
    if (isRolloutError(protocol, code)) t.e++;
    if (upstreamSeconds !== null) t.latency[latencyBucket(upstreamSeconds * 1000)]!++;
  }

  /** One copy mirrored to `b`. */
  mirrored(b: Backend): void {
    this.tallyOf(b).m++;
  }

  /** `b`'s mirrored answer compared with the primary's. */
  compared(b: Backend, agree: boolean): void {
    const t = this.tallyOf(b);
    t.c++;
    if (agree) t.a++;
  }

  /** What was counted since the last call; zeroes the tallies. Deployments with nothing counted are left out. */
  take(): SteerCounts {
    const out: SteerCounts = {};
    for (const [dep, preds] of this.byPredictor) {
      let any: Record<string, PredictorCounts> | undefined;
      for (const [pred, t] of preds) {
        if (!t.touched) continue;
        const l: Record<string, number> = {};
        for (let i = 0; i < t.latency.length; i++) {
          if (t.latency[i]! > 0) {
            l[i] = t.latency[i]!;
            t.latency[i] = 0;
          }
        }
        (any ??= {})[pred] = { n: t.n, e: t.e, l, m: t.m, c: t.c, a: t.a };
        t.n = t.e = t.m = t.c = t.a = 0;
        t.touched = false;
      }
      if (any) out[dep] = any;
    }
    return out;
  }

  /** Forget deployments that are no longer steered. */
  retain(steered: ReadonlySet<string>): void {
    for (const dep of this.byPredictor.keys()) if (!steered.has(dep)) this.byPredictor.delete(dep);
  }
}

/** Adds `from` into `into` (the control plane sums its workers' counts). */
export function addCounts(into: SteerCounts, from: SteerCounts): SteerCounts {
  for (const [dep, preds] of Object.entries(from)) {
    const target = (into[dep] ??= {});
    for (const [pred, c] of Object.entries(preds)) {
      const t = (target[pred] ??= { n: 0, e: 0, l: {}, m: 0, c: 0, a: 0 });
      t.n += c.n;
      t.e += c.e;
      t.m += c.m;
      t.c += c.c;
      t.a += c.a;
      for (const [b, k] of Object.entries(c.l)) t.l[b] = (t.l[b] ?? 0) + k;
    }
  }
  return into;
}
