/**
 * Rollout and bandit metrics (docs/rollouts.md#metrics, docs/bandits.md#metrics), registered by
 * the control plane: gauges computed from the controller's views when metrics are read, counters
 * bumped on each transition. Labels: namespace, deployment, predictor (the canary, or the arm).
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { Phase, RolloutChecks, Transition } from '../../routing/steering/rollout/state.js';
import type { SteerController } from './controller.js';

const PHASES: readonly Phase[] = ['Mirroring', 'Progressing', 'Paused', 'Promoted', 'RolledBack'];

const splitKey = (deployment: string): [string, string] => {
  const slash = deployment.indexOf('/');
  return [deployment.slice(0, slash), deployment.slice(slash + 1)];
};

export interface SteerMetrics {
  /** Read the gauges from this controller's views. */
  follow(controller: SteerController): void;
  transition(deployment: string, canary: string, t: Transition): void;
  /** Each check's verdict, once per decision on new counts. */
  judged(deployment: string, canary: string, checks: RolloutChecks): void;
}

export function registerSteerMetrics(registry: Registry): SteerMetrics {
  let controller: SteerController | undefined;
  const labels = ['namespace', 'deployment', 'predictor'];
  const rolloutGauges = (): void => {
    weight.reset();
    phase.reset();
    statistic.reset();
    threshold.reset();
    for (const v of controller?.rolloutViews() ?? []) {
      const [ns, name] = splitKey(v.deployment);
      const pred = v.config.canary;
      if (!v.state) continue;
      weight.labels(ns, name, pred).set(v.state.weight);
      for (const p of PHASES) phase.labels(ns, name, pred, p).set(v.state.phase === p ? 1 : 0);
      for (const [check, c] of Object.entries(v.state.checks)) {
        if (c.value !== null) statistic.labels(ns, name, pred, check).set(c.value);
        if (c.threshold !== null) threshold.labels(ns, name, pred, check).set(c.threshold);
      }
    }
  };
  const banditGauges = (): void => {
    share.reset();
    best.reset();
    mean.reset();
    age.reset();
    for (const v of controller?.banditViews() ?? []) {
      const [ns, name] = splitKey(v.deployment);
      age.labels(ns, name).set(v.staleSeconds);
      for (const [arm, a] of v.arms) {
        share.labels(ns, name, arm).set(a.share);
        best.labels(ns, name, arm).set(a.probabilityBest);
        mean.labels(ns, name, arm).set(a.mean);
      }
    }
  };
  const weight = new Gauge({
    name: 'seldon_gateway_rollout_weight',
    help: "A rollout's live canary weight (percent of its deployment's traffic).",
    labelNames: labels,
    registers: [registry],
    collect: rolloutGauges,
  });
  const phase = new Gauge({
    name: 'seldon_gateway_rollout_phase',
    help: "A rollout's phase: 1 for the current one (Mirroring, Progressing, Paused, Promoted, RolledBack), 0 for the others.",
    labelNames: [...labels, 'phase'],
    registers: [registry],
  });
  const statistic = new Gauge({
    name: 'seldon_gateway_rollout_statistic',
    help: "A rollout check's current value (errors: the canary's error rate at this step; sequential, burst: the steady and the burst CUSUM statistic; latencyShift: the canary's shift over the primary; p99: ms; agreement: agreed over compared).",
    labelNames: [...labels, 'check'],
    registers: [registry],
  });
  const threshold = new Gauge({ name: 'seldon_gateway_rollout_threshold', help: "The level a rollout check's statistic is judged against.", labelNames: [...labels, 'check'], registers: [registry] });
  const checks = new Counter({
    name: 'seldon_gateway_rollout_checks_total',
    help: 'Rollout checks judged, by check and result (pass, fail, hold).',
    labelNames: [...labels, 'check', 'result'],
    registers: [registry],
  });
  const transitions = new Counter({ name: 'seldon_gateway_rollout_transitions_total', help: 'Rollout transitions, by the phase entered.', labelNames: [...labels, 'to'], registers: [registry] });
  const share = new Gauge({
    name: 'seldon_gateway_bandit_share',
    help: "A bandit arm's share of its deployment's traffic (percent).",
    labelNames: labels,
    registers: [registry],
    collect: banditGauges,
  });
  const best = new Gauge({ name: 'seldon_gateway_bandit_probability_best', help: 'The probability that a bandit arm is the best one, from its posterior.', labelNames: labels, registers: [registry] });
  const mean = new Gauge({ name: 'seldon_gateway_bandit_reward_mean', help: "A bandit arm's mean reward (decayed, scaled to [0, 1]).", labelNames: labels, registers: [registry] });
  const age = new Gauge({
    name: 'seldon_gateway_bandit_shares_age_seconds',
    help: "How long ago a bandit's shares were computed from the store (they freeze while it cannot be reached).",
    labelNames: ['namespace', 'deployment'],
    registers: [registry],
  });
  return {
    follow(c) {
      controller = c;
    },
    transition(deployment, canary, t) {
      const [ns, name] = splitKey(deployment);
      transitions.labels(ns, name, canary, t.to).inc();
    },
    judged(deployment, canary, judged) {
      const [ns, name] = splitKey(deployment);
      for (const [check, c] of Object.entries(judged)) checks.labels(ns, name, canary, check, c.verdict).inc();
    },
  };
}
