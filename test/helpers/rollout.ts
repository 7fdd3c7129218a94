/**
 * A rollout end to end (docs/rollouts.md): the `iris` deployment in `models` with a `main` and a `v2`
 * (canary) predictor, and what a replica's /routes says of its rollout.
 */
import { request } from 'undici';
import type { CliGateway } from './cli.js';

export interface RolloutJson {
  run: string;
  phase: string;
  step: number;
  weight: number;
  leader: boolean;
  storeUnreachable: boolean;
  needs: string | null;
  transitions: { at: number; from: string; to: string; step: number; weight: number; kind: string; reason: string }[];
}

/** The rollout of `iris` as `gw`'s /routes shows it (undefined before it has one). */
export async function rolloutOf(gw: CliGateway): Promise<RolloutJson | undefined> {
  const r = await request(`http://127.0.0.1:${gw.admin}/routes`, { headersTimeout: 5000, bodyTimeout: 5000 });
  const body = (await r.body.json()) as { deployments: { namespace: string; name: string; steering?: { rollout?: RolloutJson } }[] };
  return body.deployments.find((d) => d.name === 'iris')?.steering?.rollout;
}

/** The steps a run took, as `<kind> <weight>` (started, advanced, promoted), in order. */
export const stepsOf = (r: RolloutJson): string[] => r.transitions.filter((t) => ['RolloutStarted', 'RolloutAdvanced', 'RolloutPromoted'].includes(t.kind)).map((t) => `${t.kind} ${t.weight}`);

/**
 * `iris` rolling out its canary `v2` (model `canaryUri`) by `steps`, each held `interval` and
 * `minRequests` long; with `rateLimit`, limited too. Hedged, as a rollout may be: each predictor
 * here has one endpoint, so no hedge goes, but every request takes the hedged path
 * (test/gateway/steer/hedged-steering.test.ts hedges predictors of two pods each).
 */
export function rolloutManifest(canaryUri: string, o: { steps: readonly number[]; minRequests: number; maxLatencyShift: string; rateLimit?: string }): string {
  return `apiVersion: machinelearning.seldon.io/v1
kind: SeldonDeployment
metadata:
  name: iris
  namespace: models
  annotations:${o.rateLimit ? `\n    seldon.io/gateway-rate-limit: "${o.rateLimit}"` : ''}
    seldon.io/gateway-hedge: "after: 5ms"
    seldon.io/gateway-rollout: |
      canary: v2
      steps: [${o.steps.join(', ')}]
      interval: 1s
      minRequests: ${o.minRequests}
      maxErrorRate: "+5%"
      maxLatencyShift: ${o.maxLatencyShift}
spec:
  predictors:
  - name: main
    graph: {name: model, implementation: SKLEARN_SERVER, modelUri: "gs://models/iris/v1"}
  - name: v2
    graph: {name: model, implementation: SKLEARN_SERVER, modelUri: "${canaryUri}"}
`;
}
