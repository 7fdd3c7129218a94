/**
 * The control plane's side of rollouts and bandits (docs/rollouts.md, docs/bandits.md): once a
 * second it
 *
 *   1. takes what its data planes counted (observe/steer-tally.ts) and appends it, per run, to the
 *      store (one script call per steered deployment: no Redis call per request anywhere);
 *   2. for each rollout, takes or keeps the deployment's lease; the holder reads the pending counts
 *      and the stored state, runs the pure `decide` (routing/steering/rollout/decide.ts) and writes the new state
 *      by compare-and-set on its epoch, consuming exactly the counts it read; other replicas read
 *      the state;
 *   3. for each bandit, reads the arms' decayed sums and computes the shares (routing/steering/bandit.ts);
 *   4. hands every data plane the live shares (`SteerOverride`s), which its picker applies.
 *
 * Advancing needs the store; retreating never waits: while the store cannot be reached a replica
 * keeps deciding on its own counts with advancing turned off, so it can roll a bad canary back by
 * itself, and writes that rollback to the store once it is back. A bandit's shares freeze.
 */
import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { banditShares, type BanditConfig } from '../../routing/steering/bandit.js';
import { seededRandom } from '../../routing/table/pick.js';
import { LATENCY_BOUNDS_MS } from '../../routing/stats/latency-buckets.js';
import type { RolloutConfig } from '../../routing/steering/rollout/config.js';
import { decide, effectiveWeights, initialState } from '../../routing/steering/rollout/decide.js';
import type { RolloutWindow, Tally } from '../../routing/steering/rollout/inputs.js';
import type { RolloutChecks, RolloutState, Transition } from '../../routing/steering/rollout/state.js';
import type { DeploymentSteering } from '../../routing/steering/spec.js';
import type { SteerOverride } from '../../routing/steering/shares.js';
import type { RouteTable } from '../../routing/types.js';
import type { SteerCounts } from '../observe/steer-tally.js';
import { runKey, type CountsPiece, type SteerStore } from './store.js';
import { withTimeout } from '../auth/redis.js';

/** What the controller needs of the data planes. */
export interface SteerPlanes {
  /** What every data plane counted since the last call. */
  takeCounts(): Promise<SteerCounts>;
  /** Every data plane applies these shares from now on. */
  steer(overrides: ReadonlyMap<string, SteerOverride>): void;
}

/** Where transitions go besides the log: Kubernetes Events (Kubernetes source only) and metrics. */
export interface SteerObservers {
  event?(namespace: string, name: string, type: 'Normal' | 'Warning', reason: string, message: string): void;
  transition?(deployment: string, canary: string, t: Transition): void;
  /** The leader judged new counts: each check's verdict now. */
  judged?(deployment: string, canary: string, checks: RolloutChecks): void;
}

export interface SteerControllerOptions {
  readonly store: SteerStore;
  readonly planes: SteerPlanes;
  readonly table: () => RouteTable;
  readonly log: Logger;
  readonly observers?: SteerObservers;
  /** How often it runs (default 1000 ms). */
  readonly tickMs?: number;
  /** How long a lease lasts without renewal (default 5 × tickMs). */
  readonly leaseMs?: number;
  /** This replica's clock (ms; default Date.now): how long its lease holds, by its own reckoning. Tests move it. */
  readonly now?: () => number;
  /** Seed of the bandit's draws (tests); default: random. */
  readonly seed?: number;
  /** A store call that takes longer counts as the store being unreachable (default 2 × tickMs). */
  readonly storeTimeoutMs?: number;
}

/** A rollout as this replica last knew it. */
export interface RolloutView {
  readonly deployment: string;
  readonly run: string;
  readonly config: RolloutConfig;
  readonly state: RolloutState | null;
  /** This replica holds the lease (it decides): its last renewal was sent less than the lease's time ago. */
  readonly leader: boolean;
  /** The store could not be reached at the last tick: this replica may only roll back. */
  readonly storeUnreachable: boolean;
}

export interface BanditArmView {
  readonly share: number;
  readonly probabilityBest: number;
  readonly mean: number;
  readonly interval: readonly [number, number];
  /** Rewards recorded (decayed sums s + f, and the raw count). */
  readonly weight: number;
  readonly rewards: number;
}

export interface BanditView {
  readonly deployment: string;
  readonly run: string;
  readonly config: BanditConfig;
  readonly arms: ReadonlyMap<string, BanditArmView>;
  /** Store clock of the shares' computation; null before the first. */
  readonly computedAt: number | null;
  /** Seconds since the shares were last computed from the store (they freeze while it is away). */
  readonly staleSeconds: number;
  /** Shares over the last hour, a point every 10 s: [time ms, share per arm]. */
  readonly history: readonly (readonly [number, Readonly<Record<string, number>>])[];
}

interface RolloutRun {
  readonly deployment: string;
  readonly run: string;
  config: RolloutConfig;
  predictors: readonly string[];
  action: string;
  state: RolloutState | null;
  epoch: number | null;
  /**
   * Until when (this replica's clock) it holds the lease: the lease's time from before its last
   * renewal was sent, so it stops acting no later than the store lets the lease lapse (0: not held).
   */
  leaseUntil: number;
  storeUnreachable: boolean;
  /** A rollback decided while the store was away, to be written when it is back. */
  unwritten: boolean;
}

interface BanditRun {
  readonly deployment: string;
  readonly run: string;
  config: BanditConfig;
  arms: Map<string, BanditArmView>;
  computedAt: number | null;
  computedLocally: number;
  history: [number, Record<string, number>][];
}

/** Pending count pieces read per decision at most (minutes of a busy replica set). */
const MAX_PIECES_PER_DECISION = 600;
const HISTORY_EVERY_MS = 10_000;
const HISTORY_POINTS = 360;

const EMPTY_TALLY = (): { requests: number; errors: number; latency: number[] } => ({ requests: 0, errors: 0, latency: new Array<number>(LATENCY_BOUNDS_MS.length + 1).fill(0) });

/** A piece's fields for one deployment: `<predictor>:<n|e|m|c|a>` and `<predictor>:l<bucket>`. */
export function piece(counts: SteerCounts[string]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [pred, c] of Object.entries(counts)) {
    if (c.n) out[`${pred}:n`] = c.n;
    if (c.e) out[`${pred}:e`] = c.e;
    if (c.m) out[`${pred}:m`] = c.m;
    if (c.c) out[`${pred}:c`] = c.c;
    if (c.a) out[`${pred}:a`] = c.a;
    for (const [b, k] of Object.entries(c.l)) out[`${pred}:l${b}`] = k;
  }
  return out;
}

/**
 * One stored piece as a rollout window: the canary's own counts, the other predictors' summed as
 * the primary, and the canary's mirrored answers compared with the primary's.
 */
export function windowOf(p: CountsPiece, canary: string, predictors: readonly string[], periodMs: number): RolloutWindow {
  const primary = EMPTY_TALLY();
  const can = EMPTY_TALLY();
  let compared = 0;
  let agree = 0;
  for (const [field, v] of Object.entries(p.counts)) {
    const colon = field.lastIndexOf(':');
    const pred = field.slice(0, colon);
    const what = field.slice(colon + 1);
    if (pred !== canary && !predictors.includes(pred)) continue;
    const t = pred === canary ? can : primary;
    if (what === 'n') t.requests += v;
    else if (what === 'e') t.errors += v;
    else if (what.startsWith('l')) {
      const b = Number(what.slice(1));
      if (Number.isInteger(b) && b >= 0 && b < t.latency.length) t.latency[b]! += v;
    } else if (pred === canary && what === 'c') compared += v;
    else if (pred === canary && what === 'a') agree += v;
  }
  return { start: p.at - periodMs, end: p.at, primary: primary as Tally, canary: can as Tally, agreement: { compared, agree } };
}

/** The store with every call bounded: one that does not answer in time fails like an unreachable store. */
function withDeadlines(store: SteerStore, ms: number): SteerStore {
  const bounded =
    <A extends unknown[], T>(what: string, f: (...args: A) => Promise<T>) =>
    (...args: A): Promise<T> =>
      withTimeout(f.apply(store, args), ms, what);
  return {
    shared: store.shared,
    addCounts: bounded('steer store addCounts', store.addCounts),
    pending: bounded('steer store pending', store.pending),
    writeState: bounded('steer store writeState', store.writeState),
    readState: bounded('steer store readState', store.readState),
    lease: bounded('steer store lease', store.lease),
    reward: bounded('steer store reward', store.reward),
    arms: bounded('steer store arms', store.arms),
    retain: (runs) => store.retain(runs),
    close: () => store.close(),
  };
}

export class SteerController {
  private readonly tickMs: number;
  private readonly leaseMs: number;
  private readonly now: () => number;
  private readonly store: SteerStore;
  private readonly holder = `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
  private readonly rollouts = new Map<string, RolloutRun>();
  private readonly bandits = new Map<string, BanditRun>();
  private readonly random: () => number;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;
  private lastSent = '';
  private current: ReadonlyMap<string, SteerOverride> = new Map();

  constructor(private readonly o: SteerControllerOptions) {
    this.tickMs = o.tickMs ?? 1000;
    this.leaseMs = o.leaseMs ?? 5 * this.tickMs;
    this.now = o.now ?? Date.now;
    this.store = withDeadlines(o.store, o.storeTimeoutMs ?? 2 * this.tickMs);
    this.random = seededRandom(o.seed ?? Math.floor(Math.random() * 2 ** 31));
  }

  start(): void {
    const loop = (): void => {
      if (this.stopped) return;
      this.running = this.tick()
        .catch((err: unknown) => this.o.log.error({ err }, 'rollout and bandit tick failed'))
        .finally(() => {
          if (!this.stopped) this.timer = setTimeout(loop, this.tickMs).unref();
        });
    };
    this.timer = setTimeout(loop, this.tickMs).unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.running;
  }

  /** One round: flush, decide, read, apply. Exposed for tests that drive the clock. */
  async tick(): Promise<void> {
    const table = this.o.table();
    this.sync(table.steering);
    const counts = await this.o.planes.takeCounts();
    await Promise.all([...this.rollouts.values()].map((r) => this.rollout(r, counts[r.deployment])));
    await Promise.all([...this.bandits.values()].map((b) => this.bandit(b, counts[b.deployment])));
    this.apply(table.steering);
  }

  /** The live shares last sent to the data planes. */
  overrides(): ReadonlyMap<string, SteerOverride> {
    return this.current;
  }

  rolloutViews(): RolloutView[] {
    return [...this.rollouts.values()].map((r) => ({ deployment: r.deployment, run: r.run, config: r.config, state: r.state, leader: this.leads(r), storeUnreachable: r.storeUnreachable }));
  }

  banditViews(now = Date.now()): BanditView[] {
    return [...this.bandits.values()].map((b) => ({
      deployment: b.deployment,
      run: b.run,
      config: b.config,
      arms: b.arms,
      computedAt: b.computedAt,
      staleSeconds: b.computedLocally ? (now - b.computedLocally) / 1000 : 0,
      history: b.history,
    }));
  }

  /** Runs follow the table: new ones start, changed ones restart, removed ones go. */
  private sync(steering: ReadonlyMap<string, DeploymentSteering>): void {
    for (const [dep, s] of steering) {
      if (s.rollout) {
        const cur = this.rollouts.get(dep);
        if (!cur || cur.run !== s.rollout.run) {
          this.rollouts.set(dep, {
            deployment: dep,
            run: s.rollout.run,
            config: s.rollout.config,
            predictors: s.predictors,
            action: s.rollout.action,
            state: null,
            epoch: null,
            leaseUntil: 0,
            storeUnreachable: false,
            unwritten: false,
          });
        } else {
          cur.config = s.rollout.config;
          cur.predictors = s.predictors;
          cur.action = s.rollout.action;
        }
      } else this.rollouts.delete(dep);
      if (s.bandit) {
        const cur = this.bandits.get(dep);
        if (!cur || cur.run !== s.bandit.run)
          this.bandits.set(dep, { deployment: dep, run: s.bandit.run, config: s.bandit.config, arms: new Map(), computedAt: null, computedLocally: 0, history: [] });
        else cur.config = s.bandit.config;
      } else this.bandits.delete(dep);
    }
    for (const dep of this.rollouts.keys()) if (!steering.get(dep)?.rollout) this.rollouts.delete(dep);
    for (const dep of this.bandits.keys()) if (!steering.get(dep)?.bandit) this.bandits.delete(dep);
    // What the store keeps of runs that are over goes with them (its owner: this controller).
    const runs = new Set<string>();
    for (const r of this.rollouts.values()) runs.add(runKey(r.deployment, r.run));
    for (const b of this.bandits.values()) runs.add(runKey(b.deployment, b.run));
    this.store.retain(runs);
  }

  private async rollout(r: RolloutRun, counts: SteerCounts[string] | undefined): Promise<void> {
    const store = this.store;
    const fields = counts ? piece(counts) : undefined;
    try {
      if (fields && Object.keys(fields).length) await store.addCounts(r.deployment, r.run, fields);
      if (r.unwritten) await this.writeRollback(r);
      // Timed from before the renewal is sent: the store's lease runs from when it ran the renewal, later
      // (docs/rollouts.md#replicas-and-the-store). A renewal a failover lost is believed no longer than that.
      const asked = this.now();
      r.leaseUntil = (await store.lease(r.deployment, this.holder, this.leaseMs)) ? asked + this.leaseMs : 0;
      if (this.leads(r)) {
        const { pieces, state, now } = await store.pending(r.deployment, r.run, MAX_PIECES_PER_DECISION);
        // No stored state: a new run, or a Redis that lost it (restarted empty). The run this replica
        // last saw goes on from where it was rather than starting over at the first step.
        const known = !state && r.state?.runId === r.run ? r.state : null;
        const before = state ? (JSON.parse(state.json) as RolloutState) : (known ?? initialState(r.run, r.config, now, r.action));
        const windows = pieces.map((p) => windowOf(p, r.config.canary, r.predictors, this.tickMs));
        const { state: after, transitions } = decide(before, windows, r.config, now, r.action);
        // A lease that ran out while it read (slow answers) is not acted on: the store may have let another take it.
        if (this.leads(r) && (await store.writeState(r.deployment, r.run, state?.epoch ?? null, JSON.stringify(after), pieces.length, this.holder, false))) {
          r.state = after;
          r.epoch = (state?.epoch ?? 0) + 1;
          if (windows.length > 0) this.o.observers?.judged?.(r.deployment, r.config.canary, after.checks);
          // A run this write started: its start is a transition too.
          this.announce(r, state || known ? transitions : [...before.transitions, ...transitions]);
          if (known)
            this.o.log.warn(
              { deployment: r.deployment, run: r.run, step: after.step },
              'rollout state missing from the store (Redis restarted empty?): the run goes on from the state this replica had',
            );
        }
      } else {
        const state = await store.readState(r.deployment, r.run);
        if (state) {
          r.state = JSON.parse(state.json) as RolloutState;
          r.epoch = state.epoch;
        }
      }
      if (r.storeUnreachable) this.o.log.info({ deployment: r.deployment }, 'rollout store reachable again: decisions resume');
      r.storeUnreachable = false;
    } catch (err) {
      if (!r.storeUnreachable)
        this.o.log.warn(
          { deployment: r.deployment, problem: err instanceof Error ? err.message : String(err) },
          'rollout store unreachable: this replica holds the step and may only roll back, on its own counts',
        );
      r.storeUnreachable = true;
      r.leaseUntil = 0;
      this.decideAlone(r, fields);
    }
  }

  /** Whether this replica holds `r`'s lease now, by its own clock. */
  private leads(r: RolloutRun): boolean {
    return r.leaseUntil > this.now();
  }

  /** The store is away: decide on this replica's counts alone, never advancing. */
  private decideAlone(r: RolloutRun, fields: Record<string, number> | undefined): void {
    // The store's clock may run ahead of this one: a window must end after what was consumed.
    const before = r.state ?? initialState(r.run, r.config, this.now(), r.action);
    const now = Math.max(this.now(), before.consumedUntil + 1);
    const windows = fields ? [windowOf({ at: now, counts: fields }, r.config.canary, r.predictors, this.tickMs)] : [];
    const { state: after, transitions } = decide(before, windows, r.config, now, r.action, { mayAdvance: false });
    r.state = after;
    const rolledBack = transitions.some((t) => t.kind === 'RolloutRolledBack');
    if (rolledBack) r.unwritten = true;
    this.announce(r, transitions);
  }

  /** Write a rollback decided while the store was away over whatever is stored (any replica may retreat). */
  private async writeRollback(r: RolloutRun): Promise<void> {
    const stored = await this.store.readState(r.deployment, r.run);
    const current = stored ? (JSON.parse(stored.json) as RolloutState) : null;
    if (current?.phase === 'RolledBack') {
      r.unwritten = false;
      return;
    }
    if (await this.store.writeState(r.deployment, r.run, stored?.epoch ?? null, JSON.stringify(r.state), 0, this.holder, true)) r.unwritten = false;
  }

  private announce(r: RolloutRun, transitions: readonly Transition[]): void {
    const slash = r.deployment.indexOf('/');
    const ns = r.deployment.slice(0, slash);
    const name = r.deployment.slice(slash + 1);
    for (const t of transitions) {
      const warning = t.kind === 'RolloutRolledBack' || t.kind === 'RolloutHeld';
      const line = { deployment: r.deployment, canary: r.config.canary, run: r.run, from: t.from, to: t.to, step: t.step, weight: t.weight, reason: t.reason };
      if (warning) this.o.log.warn(line, t.kind);
      else this.o.log.info(line, t.kind);
      this.o.observers?.event?.(ns, name, warning ? 'Warning' : 'Normal', t.kind, t.reason);
      this.o.observers?.transition?.(r.deployment, r.config.canary, t);
    }
  }

  private async bandit(b: BanditRun, counts: SteerCounts[string] | undefined): Promise<void> {
    void counts;
    try {
      const { arms, now } = await this.store.arms(b.deployment, b.run);
      const s = banditShares(arms, b.config, this.random, now);
      const next = new Map<string, BanditArmView>();
      for (const arm of b.config.arms) {
        const a = arms.get(arm);
        next.set(arm, {
          share: s.share.get(arm) ?? 0,
          probabilityBest: s.probabilityBest.get(arm) ?? 0,
          mean: s.mean.get(arm) ?? 0,
          interval: s.interval.get(arm) ?? [0, 1],
          weight: a ? a.s + a.f : 0,
          rewards: a?.n ?? 0,
        });
      }
      b.arms = next;
      b.computedAt = now;
      b.computedLocally = Date.now();
      const last = b.history.at(-1);
      if (!last || now - last[0] >= HISTORY_EVERY_MS) {
        b.history.push([now, Object.fromEntries([...next].map(([arm, v]) => [arm, v.share]))]);
        if (b.history.length > HISTORY_POINTS) b.history.shift();
      }
    } catch (err) {
      // The shares freeze: the last ones stay applied (docs/bandits.md#replicas-and-the-store).
      if (b.computedLocally === 0) b.computedLocally = Date.now();
      this.o.log.debug({ deployment: b.deployment, problem: err instanceof Error ? err.message : String(err) }, 'bandit store unreachable: shares frozen');
    }
  }

  /** The live shares of every steered deployment, sent to the data planes when they change. */
  private apply(steering: ReadonlyMap<string, DeploymentSteering>): void {
    const overrides = new Map<string, SteerOverride>();
    for (const [dep, s] of steering) {
      const r = this.rollouts.get(dep);
      const lead = s.sticky ? (s.rollout?.config.canary ?? null) : null;
      if (r) {
        // Before any state is known the canary gets nothing: a run starts at its first step only once decided.
        const w = r.state ? effectiveWeights(r.state, r.config) : { canaryPercent: 0, mirrorPercent: 0 };
        overrides.set(dep, { percents: new Map([[r.config.canary, w.canaryPercent]]), mirrors: w.mirrorPercent > 0 ? new Map([[r.config.canary, w.mirrorPercent]]) : new Map(), lead });
        continue;
      }
      const b = this.bandits.get(dep);
      if (b) {
        if (b.arms.size === 0) continue;
        overrides.set(dep, { percents: new Map([...b.arms].map(([arm, v]) => [arm, v.share])), mirrors: new Map(), lead: null });
        continue;
      }
      if (s.sticky) overrides.set(dep, { percents: new Map(), mirrors: new Map(), lead: null });
    }
    const text = JSON.stringify([...overrides].map(([k, o]) => [k, [...o.percents], [...o.mirrors], o.lead]));
    if (text === this.lastSent) return;
    this.lastSent = text;
    this.current = overrides;
    this.o.planes.steer(overrides);
  }
}
