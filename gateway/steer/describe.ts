/**
 * Rollouts and bandits as `/routes` and the admin page show them (docs/rollouts.md#the-admin-page,
 * docs/bandits.md#the-admin-page): per steered deployment, what this replica knows of its run.
 * Pure: views in, JSON out.
 */
import type { RolloutChecks, Transition } from '../../routing/steering/rollout/state.js';
import type { BanditView, RolloutView } from './controller.js';

export interface RolloutJson {
  readonly canary: string;
  readonly run: string;
  readonly phase: string;
  /** Step index (-1 while mirroring) of `steps`. */
  readonly step: number;
  readonly steps: readonly number[];
  /** Live canary percent, and the percent mirrored to it. */
  readonly weight: number;
  readonly mirror: number;
  readonly leader: boolean;
  readonly storeUnreachable: boolean;
  /** What the run waits for, in words; empty when nothing. */
  readonly needs: readonly string[];
  readonly warnings: readonly string[];
  readonly checks: RolloutChecks | null;
  readonly transitions: readonly Transition[];
}

export interface BanditJson {
  readonly run: string;
  readonly policy: string;
  readonly staleSeconds: number;
  readonly arms: Readonly<Record<string, { share: number; probabilityBest: number; mean: number; interval: readonly [number, number]; rewards: number }>>;
  /** Shares over the last hour: [time ms, share per arm]. */
  readonly history: BanditView['history'];
}

export interface SteeringJson {
  readonly rollout?: RolloutJson;
  readonly bandit?: BanditJson;
}

export function rolloutJson(v: RolloutView): RolloutJson {
  const s = v.state;
  return {
    canary: v.config.canary,
    run: v.run,
    phase: s?.phase ?? 'Starting',
    step: s?.step ?? -1,
    steps: v.config.steps,
    weight: s?.weight ?? 0,
    mirror: s?.mirrorPercent ?? 0,
    leader: v.leader,
    storeUnreachable: v.storeUnreachable,
    needs: s?.needs ?? ['waiting for the first decision'],
    warnings: s?.warnings ?? [],
    checks: s?.checks ?? null,
    transitions: s?.transitions ?? [],
  };
}

export function banditJson(v: BanditView): BanditJson {
  const arms: Record<string, BanditJson['arms'][string]> = {};
  for (const [arm, a] of v.arms) arms[arm] = { share: a.share, probabilityBest: a.probabilityBest, mean: a.mean, interval: a.interval, rewards: a.rewards };
  return { run: v.run, policy: v.config.policy, staleSeconds: v.staleSeconds, arms, history: v.history };
}

/** deployment key → what is steering it. */
export function steeringJson(rollouts: readonly RolloutView[], bandits: readonly BanditView[]): Map<string, SteeringJson> {
  const out = new Map<string, SteeringJson>();
  for (const r of rollouts) out.set(r.deployment, { ...out.get(r.deployment), rollout: rolloutJson(r) });
  for (const b of bandits) out.set(b.deployment, { ...out.get(b.deployment), bandit: banditJson(b) });
  return out;
}
