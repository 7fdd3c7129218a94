/**
 * The benchmarks' SeldonDeployments: `sdep` and `writeManifests` for a scenario's own, and the REST scenarios'
 * routing table: N generated deployments as YAML files (canaries, shadows, header routes, explainers across 50
 * namespaces; never called, they make the table realistic) and the one that is called, a 90/10 canary with a
 * header route beside it.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import YAML from 'yaml';

export const NS = 'bench';
/** The measured 90/10 canary. */
export const MEASURED = 'measured';

/** The floor scenario's small request: 66 bytes of Seldon JSON (`scenarios/rest.ts`, `scenarios/instructions.ts`). */
export const SMALL_BODY = '{"data":{"names":["a","b","c","d"],"ndarray":[[5.1,3.5,1.4,0.2]]}}';

/** A JSON tensor of exactly `bytes` bytes (the shape of an image's payload): the large scenarios' request body. */
export const tensorJson = (bytes: number): string => `{"data":{"ndarray":[${'0.123456,'.repeat(Math.floor((bytes - 40) / 9))}0]}}`.padEnd(bytes, ' ');

export const predictionPath = (name: string, namespace = NS): string => `/seldon/${namespace}/${name}/api/v1.0/predictions`;

type SDep = Record<string, unknown>;
const graph = { name: 'model', implementation: 'SKLEARN_SERVER', modelUri: 'gs://bench/model' };

/** A SeldonDeployment (one predictor `main` unless given); its REST upstream is `<name>-<predictor>.<namespace>:8000`. */
export function sdep(name: string, namespace: string, annotations?: Record<string, string>, predictors: SDep[] = [{ name: 'main', graph }]): SDep {
  return {
    apiVersion: 'machinelearning.seldon.io/v1',
    kind: 'SeldonDeployment',
    metadata: { name, namespace },
    spec: { ...(annotations ? { annotations } : {}), predictors },
  };
}

/** `docs` as one YAML file of several documents; its path. */
export function writeManifests(file: string, docs: readonly SDep[]): string {
  writeFileSync(file, docs.map((d) => YAML.stringify(d)).join('---\n'));
  return file;
}

/** The i-th generated deployment, `model-<i>` in `team-<i % 50>`: a canary in 4 of 10, a shadow in 2, a header route to the one before in 1, an explainer in 1. */
export function generated(i: number, annotations: Record<string, string> = {}): SDep {
  const kind = i % 10;
  const predictors: SDep[] = [{ name: 'main', graph, ...(kind < 4 ? { traffic: 100 - (10 + (i % 40)) } : {}), ...(kind === 7 ? { explainer: { type: 'AnchorTabular' } } : {}) }];
  if (kind < 4) predictors.push({ name: 'canary', traffic: 10 + (i % 40), graph });
  if (kind === 4 || kind === 5) predictors.push({ name: 'shadow', shadow: true, graph });
  if (kind === 6 && i > 0) Object.assign(annotations, { 'seldon.io/ambassador-service-name': `model-${i - 1}`, 'seldon.io/ambassador-header': 'x-variant: b' });
  return sdep(`model-${i}`, `team-${i % 50}`, Object.keys(annotations).length ? annotations : undefined, predictors);
}

/** Write `count` SeldonDeployments (at least the two above) into `dir`, 50 per file; returns how many. */
export function generateManifests(dir: string, count: number): number {
  mkdirSync(dir, { recursive: true });
  const all: SDep[] = [
    sdep(MEASURED, NS, undefined, [
      { name: 'main', traffic: 90, graph },
      { name: 'canary', traffic: 10, graph },
    ]),
    // A header route beside it, which requests never select (they carry no x-variant).
    sdep(`${MEASURED}-b`, NS, { 'seldon.io/ambassador-service-name': MEASURED, 'seldon.io/ambassador-header': 'x-variant: b' }),
  ];
  for (let i = 0; all.length < count; i++) all.push(generated(i));
  const perFile = 50;
  for (let f = 0; f * perFile < all.length; f++) writeManifests(join(dir, `sdeps-${String(f).padStart(3, '0')}.yaml`), all.slice(f * perFile, (f + 1) * perFile));
  return all.length;
}
