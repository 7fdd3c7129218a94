/**
 * A bandit deployment for end-to-end tests (docs/bandits.md): `rec` in `models` with arms a, b, c,
 * stand-in models that name themselves in their answers and record the feedback they receive, and
 * what a client and an operator see of it: a prediction with its attribution token, feedback sent
 * the way the official Seldon client sends it, the arms' shares and rewards in /routes, and the
 * feedback outcomes in /metrics.
 */
import { request } from 'undici';
import { expect } from 'vitest';
import { startHttpBackend, type HttpBackend } from '../fixtures/http-backend.js';
import type { CliGateway } from './cli.js';

export const ARMS = ['a', 'b', 'c'] as const;
/** Where an answer's token sits in its `meta.tags` (and so in the feedback that echoes it). */
export const ARM_TAG = 'seldon.io/gateway-arm';

/**
 * Even shares until every arm has 25 rewards, then a floor of 5%; rewards never fade. Hedged, as a
 * bandit may be: each arm here has one endpoint, so no hedge goes, but every request takes the
 * hedged path (test/gateway/steer/hedged-steering.test.ts hedges arms of two pods each).
 */
export const BANDIT_MANIFEST = `apiVersion: machinelearning.seldon.io/v1
kind: SeldonDeployment
metadata:
  name: rec
  namespace: models
  annotations:
    seldon.io/gateway-hedge: "after: 5ms"
    seldon.io/gateway-bandit: |
      arms: [a, b, c]
      floor: 5%
      halfLife: none
spec:
  predictors:
${ARMS.map((a) => `  - name: ${a}\n    graph: {name: model, implementation: SKLEARN_SERVER, modelUri: "gs://models/rec/${a}"}`).join('\n')}
`;

/** `--resolve` arguments that send each arm's service (`rec-<arm>.models:<servicePort>`) to its stand-in. */
export function armResolves(models: Readonly<Record<string, { port: number }>>, servicePort = 8000): string[] {
  return ARMS.flatMap((a) => ['--resolve', `rec-${a}.models:${servicePort}=127.0.0.1:${models[a]!.port}`]);
}

/** A model that answers predictions naming itself, and feedback with an empty SeldonMessage. */
export function banditModel(name: string): Promise<HttpBackend> {
  return startHttpBackend({
    name,
    handler: (req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(req.url?.endsWith('/feedback') ? '{}' : JSON.stringify({ data: { names: [name], ndarray: [[1]] }, meta: { requestPath: { model: `rec-${name}:1` } } }));
    },
  });
}

export interface Prediction {
  arm: string;
  header: string | undefined;
  body: { data: { names: string[] }; meta: { tags?: Record<string, string> } };
}

/** A prediction through `gw`. `fresh`: on a connection of its own (closed after), so a gateway's workers take turns. */
export async function predict(gw: CliGateway, options: { fresh?: boolean } = {}): Promise<Prediction> {
  const r = await request(`http://127.0.0.1:${gw.port}/seldon/models/rec/api/v1.0/predictions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: '{"meta":{},"data":{"ndarray":[[1,2]]}}',
    reset: options.fresh === true,
  });
  const body = (await r.body.json()) as Prediction['body'];
  expect(r.statusCode).toBe(200);
  return { arm: body.data.names[0]!, header: r.headers['seldon-gateway-arm'] as string | undefined, body };
}

/** Feedback for a prediction's answer (`response`, token included), as the Seldon client sends it; the status. */
export async function feedback(gw: CliGateway, response: unknown, reward: number): Promise<number> {
  const r = await request(`http://127.0.0.1:${gw.port}/seldon/models/rec/api/v1.0/feedback`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ request: { meta: {}, data: { ndarray: [[1, 2]] } }, response, reward }),
  });
  await r.body.dump();
  return r.statusCode;
}

/** Feedback bodies a model received: the arm named in each echoed response. */
export function echoedArms(m: HttpBackend): string[] {
  return m.requests.filter((q) => q.url.endsWith('/feedback')).map((q) => (JSON.parse(q.body.toString()) as { response: Prediction['body'] }).response.data.names[0]!);
}

/** The bandit's arms as a gateway's /routes shows them (none until the store has answered once). */
export async function shares(gw: CliGateway): Promise<Record<string, { share: number; rewards: number }> | undefined> {
  const r = await request(`http://127.0.0.1:${gw.admin}/routes`);
  const body = (await r.body.json()) as { deployments: { name: string; steering?: { bandit?: { arms: Record<string, { share: number; rewards: number }> } } }[] };
  return body.deployments.find((d) => d.name === 'rec')?.steering?.bandit?.arms;
}

/** Feedback outcomes counted by a gateway (summed over its workers and arms). */
export async function outcomes(gw: CliGateway, outcome: string): Promise<number> {
  const text = await (await request(`http://127.0.0.1:${gw.admin}/metrics`)).body.text();
  let n = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith('seldon_gateway_bandit_feedback_total{') && line.includes(`outcome="${outcome}"`)) n += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return n;
}
