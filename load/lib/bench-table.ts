/**
 * The REST scenarios' routing table: N generated SeldonDeployments as YAML files (canaries,
 * shadows, header routes, explainers across 50 namespaces; most never called, they make the table
 * realistic) and the ones that are called: a 90/10 canary, a header route beside it, a
 * deployment mirrored 100% to a shadow, one under a rollout, one under a bandit, and a single
 * predictor with and without flow control.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import YAML from 'yaml';

export const NS = 'bench';
/** The measured 90/10 canary. */
export const MEASURED = 'measured';
/** The header route (x-variant: b) beside MEASURED; requests never carry the header. */
export const HEADER_SDEP = 'measured-b';
/** The deployment whose predictor is mirrored 100% to a shadow. */
export const SHADOWED = 'shadowed';
/** A deployment under a rollout held at 10% (its interval outlasts any run): each request is counted for it and picked from live shares. */
export const ROLLED_OUT = 'rolled-out';
/** A deployment under a bandit of two arms: each answer carries an attribution token (header and meta.tags). */
export const BANDIT = 'bandit';
/** One predictor under flow control (seldon.io/gateway-flow) with a limit no run reaches, and the same without it: the flow stage's cost below its limit. */
export const FLOWED = 'flowed';
export const PLAIN = 'plain';
export const FLOWED_ANNOTATION = 'concurrency: 10000\nqueue: 100\nqueueTimeout: 1s';

export const predictionPath = (name: string): string => `/seldon/${NS}/${name}/api/v1.0/predictions`;

type SDep = Record<string, unknown>;
function sdep(name: string, namespace: string, predictors: SDep[], annotations?: Record<string, string>): SDep {
  return {
    apiVersion: 'machinelearning.seldon.io/v1',
    kind: 'SeldonDeployment',
    metadata: { name, namespace },
    spec: { ...(annotations ? { annotations } : {}), predictors },
  };
}
const graph = { name: 'model', implementation: 'SKLEARN_SERVER', modelUri: 'gs://bench/model' };

/** Write `count` SeldonDeployments (at least the three called ones) into `dir`, 50 per file; returns how many. */
export function generateManifests(dir: string, count: number): number {
  mkdirSync(dir, { recursive: true });
  const all: SDep[] = [
    sdep(MEASURED, NS, [
      { name: 'main', traffic: 90, graph },
      { name: 'canary', traffic: 10, graph },
    ]),
    sdep(HEADER_SDEP, NS, [{ name: 'main', graph }], { 'seldon.io/ambassador-service-name': MEASURED, 'seldon.io/ambassador-header': 'x-variant: b' }),
    sdep(SHADOWED, NS, [
      { name: 'main', graph },
      { name: 'shadow', shadow: true, graph },
    ]),
    sdep(
      ROLLED_OUT,
      NS,
      [
        { name: 'main', graph },
        { name: 'v2', graph },
      ],
      { 'seldon.io/gateway-rollout': 'canary: v2\nsteps: [10, 100]\ninterval: 24h' },
    ),
    sdep(
      BANDIT,
      NS,
      [
        { name: 'a', graph },
        { name: 'b', graph },
      ],
      { 'seldon.io/gateway-bandit': 'arms: [a, b]' },
    ),
    sdep(FLOWED, NS, [{ name: 'main', graph }], { 'seldon.io/gateway-flow': FLOWED_ANNOTATION }),
    sdep(PLAIN, NS, [{ name: 'main', graph }]),
  ];
  for (let i = 0; all.length < count; i++) {
    const ns = `team-${i % 50}`;
    const kind = i % 10;
    const predictors: SDep[] = [{ name: 'main', graph }];
    let annotations: Record<string, string> | undefined;
    if (kind < 4) predictors.push({ name: 'canary', traffic: 10 + (i % 40), graph });
    if (kind === 4 || kind === 5) predictors.push({ name: 'shadow', shadow: true, graph });
    if (kind === 6 && i > 0) annotations = { 'seldon.io/ambassador-service-name': `model-${i - 1}`, 'seldon.io/ambassador-header': 'x-variant: b' };
    if (kind === 7) predictors[0] = { name: 'main', graph, explainer: { type: 'AnchorTabular' } };
    if (kind < 4) predictors[0] = { ...predictors[0], traffic: 100 - (10 + (i % 40)) };
    all.push(sdep(`model-${i}`, ns, predictors, annotations));
  }
  const perFile = 50;
  for (let f = 0; f * perFile < all.length; f++) {
    const docs = all.slice(f * perFile, (f + 1) * perFile).map((d) => YAML.stringify(d));
    writeFileSync(join(dir, `sdeps-${String(f).padStart(3, '0')}.yaml`), docs.join('---\n'));
  }
  return all.length;
}
