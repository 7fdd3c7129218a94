/**
 * Fallback (docs/routing.md#fallback-models): a request whose predictor cannot answer it, for one of
 * the gateway's own reasons its `seldon.io/gateway-fallback` covers, goes to the fallback instead,
 * REST and gRPC alike. The decision is here, once:
 *
 * - `unavailable` / `cold`: match found the predictor picked has no ready endpoint or only ejected
 *   ones (`request.fallbackDue`), or (`unavailable`) its upstream's breaker refused it (forward/forwarded.ts
 *   `admit` asks `afterOverflow` through the request); this stage, after the gate (a refused request never falls back),
 *   sends it on. `cold` (held at zero with `scaleFromZero`): the primary's demand counts the request
 *   until its answer ends, so KEDA still scales it up;
 * - `overload`: flow control would refuse it (pipeline/flow.ts calls `reroute`);
 * - `error`: the final attempt failed retriably (forward/forwarded.ts asks `afterError` through the
 *   request, with the body it kept for retries; one it did not keep is counted `skipped`).
 *
 * Sent on, it runs steering (a bandit's token names the arm that answers), flow control (the
 * fallback's own) and forward again, with its answer marked `x-seldon-fallback: <reason>` and
 * `x-seldon-model: <who answered>`; its time is what the primary's route timeout had left. At most
 * one hop: a fallback's own refusal is the answer. A feedback never falls back. Every other
 * request pays one property check (`fallbackDue`).
 */
import { fallbackRoute, deploymentRoutes, type DeploymentRoutes, type FallbackWorld } from '../../routing/fallback/route.js';
import type { FallbackReason } from '../../routing/fallback/config.js';
import type { Backend, Picker, Protocol, RouteTable, Routed } from '../../routing/types.js';
import type { FallbackSender, KeptBody, PipelineRequest } from './request.js';
import { continueWith, type Stage } from './stage.js';

export const FALLBACK_HEADER = 'x-seldon-fallback';
export const MODEL_HEADER = 'x-seldon-model';

/** Counts fallbacks (observe/fallback-metrics.ts): `refused` by the fallback (or it had no member), `skipped` (`error` with a body not kept), else `answered`. */
export interface FallbackCounter {
  count(from: Backend, protocol: Protocol, reason: FallbackReason, result: 'answered' | 'refused' | 'skipped'): void;
}

/** What falling back needs of the process. */
export interface FallbackDeps {
  /** With endpoint routing: why a backend cannot take a request now (`upstream/registry.ts` `unready`), or undefined. */
  readonly unready?: ((backend: Backend) => 'unavailable' | 'cold' | undefined) | undefined;
  /** --fallback-target backends by name. */
  readonly targets: ReadonlyMap<string, Backend>;
  readonly metrics?: FallbackCounter | undefined;
  /** Counts a request its fallback answers while `backend` is at zero in the primary's demand, until the returned release runs. */
  readonly coldDemand?: ((backend: Backend) => () => void) | undefined;
}

const NO_MIRRORS: Routed['mirrors'] = [];

/** Each table's deployment routes, made on a table's first fallback to a deployment; they go with the table. */
const routesOf = new WeakMap<RouteTable, DeploymentRoutes>();

/** The process's fallbacks: where a request goes instead, and sending it there (from this stage on: steer, flow control, forward). */
export class Fallbacks implements FallbackSender {
  /** The stage a request sent to its fallback resumes at (steering): set by `FallbackStage`. */
  resume: Stage | undefined;

  constructor(
    private readonly d: FallbackDeps,
    private readonly picker: Picker,
    private readonly eligible: ((backend: Backend) => boolean) | undefined,
  ) {}

  /**
   * Send `r` to its predictor's fallback for `reason` (the caller checked the policy covers it);
   * false when it may not (it fell back already, it is a feedback) or the fallback has no member now:
   * the caller goes on as without one.
   */
  reroute(r: PipelineRequest, reason: FallbackReason): boolean {
    const to = this.route(r, reason);
    if (to === undefined) return false;
    this.send(r, to, reason);
    return true;
  }

  /**
   * `r`'s final attempt failed in a way its fallback covers (`error`, forward/forwarded.ts): the send,
   * to run once that exchange is settled (it counted the failure against its predictor), or undefined.
   * `kept` undefined: its body was not kept (over the retry buffer, or streamed), so it cannot go again.
   */
  afterError(r: PipelineRequest, kept: KeptBody | undefined): (() => void) | undefined {
    const from = r.routed!.backend;
    if (!from.fallback!.error || r.fellBack !== undefined || r.isFeedback()) return undefined;
    if (kept === undefined) {
      this.d.metrics?.count(from, r.kind, 'error', 'skipped');
      return undefined;
    }
    const routed = this.route(r, 'error');
    if (routed === undefined) return undefined;
    // The failed exchange sent the shadows their copies already: they get one per request.
    const to: Routed = { ...routed, mirrors: NO_MIRRORS };
    return () => {
      r.keepBody(kept);
      this.send(r, to, 'error');
    };
  }

  /** `r`'s upstream breaker refused it (its predictor is unavailable): the send to the fallback, or undefined. */
  afterOverflow(r: PipelineRequest): (() => void) | undefined {
    const to = this.route(r, 'unavailable');
    return to === undefined ? undefined : () => this.send(r, to, 'unavailable');
  }

  /** Where `r` goes instead, or undefined (counted as refused) when it may not fall back or its fallback has no member now. */
  private route(r: PipelineRequest, reason: FallbackReason): Routed | undefined {
    const routed = r.routed!;
    const from = routed.backend;
    if (r.fellBack !== undefined || r.isFeedback()) return undefined;
    const table = r.table!;
    const w: FallbackWorld = {
      picker: this.picker,
      eligible: this.eligible,
      routes: () => {
        let routes = routesOf.get(table);
        if (routes === undefined) routesOf.set(table, (routes = deploymentRoutes(table)));
        return routes;
      },
      target: (name) => this.d.targets.get(name),
    };
    const to = fallbackRoute(routed, r.kind, reason, w);
    // The gate ran once, for the predictor that fell back: a fallback with a gate of its own (auth, rate limits) is never reached around it.
    if (to === undefined || (to.backend.gate !== null && to.backend.gate !== from.gate)) {
      this.d.metrics?.count(from, r.kind, reason, 'refused');
      return undefined;
    }
    return to;
  }

  /** `r` goes to `to`: marked, its remaining time its budget, on from steering. */
  private send(r: PipelineRequest, to: Routed, reason: FallbackReason): void {
    const from = r.routed!.backend;
    const ms = from.timeoutMs;
    r.fellBack = { reason, from, budgetMs: ms > 0 ? Math.max(1, ms - (performance.now() - r.since)) : 0 };
    r.routed = to;
    // Steering runs again for where it goes: a token names the arm that answers, never the one that fell back.
    r.token = undefined;
    // The primary's flow slot (released when its exchange settled) is not the fallback's: its own flow control gives one.
    r.flow = undefined;
    const marks = [FALLBACK_HEADER, reason, MODEL_HEADER, to.backend.id];
    r.answerHeaders = r.answerHeaders === undefined ? marks : [...r.answerHeaders, ...marks];
    if (reason === 'cold' && this.d.coldDemand !== undefined) r.onGone(this.d.coldDemand(from));
    // Under the fallback's own flow control, its admission decides (`settled`).
    if (to.backend.flow === null) this.d.metrics?.count(from, r.kind, reason, 'answered');
    continueWith(this.resume!, r);
  }

  /** Flow control forwarded (`answered`) or refused a request: counted, if it was a fallback's. */
  settled(r: PipelineRequest, answered: boolean): void {
    const fb = r.fellBack;
    if (fb !== undefined) this.d.metrics?.count(fb.from, r.kind, fb.reason, answered ? 'answered' : 'refused');
  }
}

export class FallbackStage implements Stage {
  constructor(
    private readonly fallbacks: Fallbacks | undefined,
    private readonly next: Stage,
  ) {
    if (fallbacks !== undefined) fallbacks.resume = next;
  }

  run(r: PipelineRequest): void {
    const due = r.fallbackDue;
    if (due === undefined) {
      this.next.run(r);
      return;
    }
    r.fallbackDue = undefined;
    if (!this.fallbacks!.reroute(r, due)) this.next.run(r);
  }
}
