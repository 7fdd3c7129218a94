/**
 * A deployment's steering annotations, read at compile time (docs/rollouts.md, docs/bandits.md):
 * `seldon.io/gateway-rollout`, `-rollout-action`, `-bandit` and `-sticky` into its `DeploymentSteering`,
 * with the run hash that says whether a change starts a new run.
 */
import type { EffectiveAnnotations, Findings } from '../seldon/annotations.js';
import { BANDIT_ANNOTATION, parseBanditAnnotation } from './bandit.js';
import { parseRolloutAnnotation, ROLLOUT_ACTION_ANNOTATION, ROLLOUT_ANNOTATION } from './rollout/config.js';
import type { PredictorSpec } from '../seldon/deployment.js';
import type { DeploymentSteering } from './spec.js';
import { runHash } from './shares.js';
import { parseSticky, STICKY_ANNOTATION, type StickySpec } from './sticky.js';

/** Predictor fields that do not start a new rollout or bandit run when they change (a promotion writes `traffic`). */
const NOT_A_NEW_RUN = new Set(['traffic', 'replicas']);

/**
 * `seldon.io/gateway-rollout`, `-rollout-action`, `-bandit` and `-sticky` (docs/rollouts.md,
 * docs/bandits.md). A malformed value degrades the deployment: that steering is ignored and the
 * configured `traffic` applies.
 */
export function steeringAnnotations(key: string, predictors: readonly PredictorSpec[], ann: EffectiveAnnotations, shadowAll: boolean, f: Findings): DeploymentSteering | null {
  const rawRollout = ann.get(ROLLOUT_ANNOTATION);
  const rawBandit = ann.get(BANDIT_ANNOTATION);
  const rawSticky = ann.get(STICKY_ANNOTATION);
  // A bandit's empty value is every default (docs/bandits.md); the others need a field.
  if (!rawRollout && rawBandit === undefined && !rawSticky) return null;
  const live = shadowAll ? [] : predictors.filter((p) => p.shadow !== true);
  const names = live.map((p) => p.name!);
  const runOf = (ps: readonly PredictorSpec[]): string => runHash(ps.map((p) => Object.fromEntries(Object.entries(p).filter(([k]) => !NOT_A_NEW_RUN.has(k)))));
  if (rawRollout && rawBandit !== undefined) {
    f.warn(`${ROLLOUT_ANNOTATION} and ${BANDIT_ANNOTATION} cannot steer one deployment together: both are ignored, the configured traffic applies`);
    return null;
  }
  let rollout: DeploymentSteering['rollout'] = null;
  let bandit: DeploymentSteering['bandit'] = null;
  let sticky: StickySpec | null = null;
  if (rawRollout) {
    const parsed = parseRolloutAnnotation(rawRollout, names);
    if (!parsed.ok) f.warn(`${ROLLOUT_ANNOTATION} is ignored, the configured traffic applies: ${parsed.error}`);
    else {
      const canary = live.find((p) => p.name === parsed.value.canary)!;
      rollout = { config: parsed.value, run: runOf([canary]), action: ann.get(ROLLOUT_ACTION_ANNOTATION) ?? '' };
      sticky = parsed.value.sticky;
    }
  }
  if (rawBandit !== undefined) {
    const parsed = parseBanditAnnotation(rawBandit, names);
    if (!parsed.ok) f.warn(`${BANDIT_ANNOTATION} is ignored, the configured traffic applies: ${parsed.error}`);
    else bandit = { config: parsed.value, run: runOf(live.filter((p) => parsed.value.arms.includes(p.name!))) };
  }
  if (rawSticky && !sticky) {
    const parsed = parseSticky(rawSticky);
    if (typeof parsed === 'string') f.warn(`${STICKY_ANNOTATION} is ignored: ${parsed}`);
    else if (names.length < 2) f.warn(`${STICKY_ANNOTATION} is ignored: the deployment has fewer than two predictors to stick to`);
    else sticky = parsed;
  }
  if (!rollout && !bandit && !sticky) return null;
  return { key, predictors: names, rollout, bandit, sticky };
}
