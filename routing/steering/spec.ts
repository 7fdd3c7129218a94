/**
 * Which deployments are steered and how (docs/rollouts.md, docs/bandits.md), as `compile/deployment.ts` reads
 * them from their annotations into `RouteTable.steering`. Types only, apart from the routes, so
 * `types.ts` can name them without importing the steering code.
 */
import type { BanditConfig } from './bandit.js';
import type { RolloutConfig } from './rollout/config.js';
import type { StickySpec } from './sticky.js';

export interface DeploymentSteering {
  /** `ns/name`. */
  readonly key: string;
  /** Its non-shadow predictors, in spec order. */
  readonly predictors: readonly string[];
  /** `run` changes when a run starts anew: the canary predictor's spec or the rollout changed. */
  readonly rollout: { readonly config: RolloutConfig; readonly run: string; readonly action: string } | null;
  readonly bandit: { readonly config: BanditConfig; readonly run: string } | null;
  readonly sticky: StickySpec | null;
}
