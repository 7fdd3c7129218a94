/**
 * `npm start`: the gateway on port 8003 (where Seldon's docs and Python client look) over the
 * SeldonDeployments in examples/deployments, with a mock model server standing in for every
 * REST upstream the table names, wired with --resolve. No cluster needed.
 *
 * Once the gateway is ready it prints curl lines to try (again on Enter), then the access log of
 * the reader's own requests. The demo's rollout and bandit traffic stays out of that log: a line
 * every 30 s sums it up, with where the rollout and the bandit stand. A rollout that has ended
 * starts again a minute later (examples/rerun-source.ts), so the admin page always has one moving.
 *
 *   node dist/examples/quickstart.js [--port 8003] [--admin-port 8877] [--manifests DIR]
 */
import { createInterface } from 'node:readline';
import { relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startMockModel, type MockModel } from './mock-model.js';
import { sendRewards } from './bandit-rewards.js';
import { parseConfig } from '../gateway/config/parse.js';
import { createLogger, startGateway } from '../gateway/process/serve.js';
import { DEMO_USER_AGENT, QuickstartTerminal } from './quickstart-terminal.js';
import { RerunSource } from './rerun-source.js';
import { ManifestSource } from '../source/manifest-source.js';
import { buildTable } from '../routing/table/builder.js';
import type { SeldonDeployment } from '../routing/seldon/deployment.js';

function flag(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && process.argv[i + 1] ? process.argv[i + 1]! : dflt;
}

/** Read the manifests once, to learn which upstreams need a stand-in. */
async function readDeployments(path: string): Promise<SeldonDeployment[]> {
  const found: SeldonDeployment[] = [];
  const source = new ManifestSource({ path });
  await new Promise<void>((resolve) => {
    void source.start({
      onEvents: (events) => {
        for (const e of events) if (e.type === 'upsert') found.push(e.deployment);
      },
      onSynced: resolve,
      onProblem: (where, message) => message && console.error(`${where}: ${message}`),
    });
  });
  await source.stop();
  return found;
}

const manifests = flag('manifests', fileURLToPath(new URL('../../examples/deployments', import.meta.url)));
const port = flag('port', '8003');
const adminPort = flag('admin-port', '8877');
const deployments = await readDeployments(manifests);
// The same table the gateway will build; every REST upstream gets its own mock model.
const table = buildTable(deployments, parseConfig('serve', ['--manifests', manifests]).compile);
const models = new Map<string, MockModel>();
for (const g of table.groups) {
  if (g.kind !== 'rest') continue;
  for (const b of [...g.members.map((m) => m.backend), ...g.mirrors.map((m) => m.backend)]) {
    const address = `${b.upstream.host}:${b.upstream.port}`;
    if (!models.has(address)) models.set(address, await startMockModel({ port: 0, name: b.id }));
  }
}
const resolve = [...models].flatMap(([address, m]) => ['--resolve', `${address}=127.0.0.1:${m.port}`]);
const config = parseConfig('serve', ['--manifests', manifests, '--port', port, '--admin-port', adminPort, '--workers', '1', ...resolve]);
const terminal = new QuickstartTerminal();
const source = new RerunSource(new ManifestSource({ path: manifests }));
const gateway = await startGateway(config, { source, logger: createLogger(config.process.logLevel, terminal.log), accessSink: terminal.access });
while (!gateway.ready()) await new Promise((r) => setTimeout(r, 20));

const base = `http://localhost:${gateway.port}`;
const admin = `http://localhost:${gateway.adminPort}`;
const data = '{"data":{"ndarray":[[5.1,3.5,1.4,0.2]]}}';
const v2Data = '{"inputs":[{"name":"input-0","shape":[1,4],"datatype":"FP64","data":[5.1,3.5,1.4,0.2]}]}';
const curl = (path: string, extra = '', body = data): string => `  curl -s ${extra}-H 'content-type: application/json' -d '${body}' ${base}${path}`;
const where = relative(process.cwd(), manifests);
const curlLines = `  # a single model, and its explainer
${curl('/seldon/seldon/iris/api/v1.0/predictions')}
${curl('/seldon/seldon/iris-explainer/default/api/v1.0/explain')}
  # a 75/25 canary (the x-seldon-model response header says who answered)
${curl('/seldon/seldon/income/api/v1.0/predictions', '-i ')}
  # a shadow: "main" answers, "shadow" gets a copy
${curl('/seldon/seldon/churn/api/v1.0/predictions')}
  # a header route: x-region: eu goes to fraud-eu
${curl('/seldon/seldon/fraud/api/v1.0/predictions', "-H 'x-region: eu' ")}
  # a rollout: v2 gets more of the traffic step by step, judged against main (the demo sends it
  # traffic, and starts it again a minute after it ends); watch it on ${admin}/
${curl('/seldon/seldon/reviews/api/v1.0/predictions', '-i ')}
  # a bandit: traffic moves to the predictor earning the best reward (the demo sends rewards,
  # examples/bandit-rewards.ts); the answer's seldon-gateway-arm header is its attribution token
${curl('/seldon/seldon/recommender/api/v1.0/predictions', '-i ')}
  # protocol translation: a 50/50 canary from Seldon's wrapper (main) to a v2 server (mlserver); a Seldon
  # client gets Seldon's answer from both, a v2 client a v2 answer (x-seldon-translated: when translated)
${curl('/seldon/seldon/wine/api/v1.0/predictions', '-i ')}
${curl('/seldon/seldon/wine/v2/models/classifier/infer', '-i ', v2Data)}
  # OAuth, as Seldon's API front end: a token for the client 09-oauth.yaml registers, then a prediction
  TOKEN=$(curl -s -u iriskeyseldon:irissecret -d grant_type=client_credentials ${base}/oauth/token | sed 's/.*"access_token":"\\([^"]*\\)".*/\\1/')
  curl -s -H "Authorization: Bearer $TOKEN" -H 'content-type: application/json' -d '${data}' ${base}/api/v0.1/predictions
  # what the gateway made of the manifests (admin port)
  curl -s ${admin}/routes
  curl -s ${admin}/metrics | grep seldon_gateway_requests_total
`;
terminal.banner(`
seldon-gateway is ready on ${base} (REST and gRPC), with its admin page on ${admin}/
serving the ${deployments.length} SeldonDeployments in ${where.startsWith('..') ? manifests : where}, a mock model behind each predictor.
Try these in another terminal (press Enter here to see them again):

${curlLines}
Below: the access log of your requests, the gateway's log, and every 30 s a line on the demo's own traffic.
Ctrl-C stops everything.

`);
if (process.stdin.isTTY) createInterface({ input: process.stdin }).on('line', () => process.stdout.write(`\n${curlLines}\n`));

// A little traffic to every deployment with a rollout, so the page shows it progressing.
const demoHeaders = { 'content-type': 'application/json', 'user-agent': DEMO_USER_AGENT };
const rollouts = deployments.filter((d) => d.metadata?.annotations?.['seldon.io/gateway-rollout']);
const traffic = setInterval(() => {
  for (const d of rollouts) {
    const url = `${base}/seldon/${d.metadata?.namespace ?? 'default'}/${d.metadata?.name}/api/v1.0/predictions`;
    void fetch(url, { method: 'POST', headers: demoHeaders, body: data })
      .then((r) => r.arrayBuffer())
      .catch(() => undefined);
  }
}, 20);

// Rewards for every bandit deployment (arm "c" is the best), so the page shows the shares moving.
const bandits = deployments
  .filter((d) => d.metadata?.annotations?.['seldon.io/gateway-bandit'])
  .map((d) => sendRewards({ url: base, deployment: `${d.metadata?.namespace ?? 'default'}/${d.metadata?.name}`, rates: { a: 0.3, b: 0.35, c: 0.45 }, perSecond: 20, userAgent: DEMO_USER_AGENT }));

interface Steered {
  namespace: string;
  name: string;
  steering?: { rollout?: { canary: string; phase: string; weight: number; step: number; steps: number[] }; bandit?: { arms: Record<string, { share: number }> } };
}
/** Where each rollout and bandit stands, from the admin port's /routes; a rollout that ended a minute ago starts again. */
const ended = new Map<string, number>();
const RERUN_AFTER_MS = 60_000;
async function steeringStatus(): Promise<string> {
  const routes = (await (await fetch(`${admin}/routes`)).json()) as { deployments: Steered[] };
  const parts: string[] = [];
  for (const d of routes.deployments) {
    const key = `${d.namespace}/${d.name}`;
    const r = d.steering?.rollout;
    if (r) {
      parts.push(`${d.name}: ${r.phase}, ${r.canary} at ${r.weight}%`);
      if (r.phase !== 'Promoted' && r.phase !== 'RolledBack') ended.delete(key);
      else if (!ended.has(key)) ended.set(key, Date.now());
      else if (Date.now() - ended.get(key)! >= RERUN_AFTER_MS && source.rerun(key, r.canary)) {
        ended.delete(key);
        terminal.note(`demo: ${key}'s rollout ended (${r.phase}) a minute ago; starting it again, so the page shows one moving`);
      }
    }
    const arms = d.steering?.bandit?.arms;
    if (arms)
      parts.push(
        `${d.name}: ${Object.entries(arms)
          .map(([arm, a]) => `${arm} ${Math.round(a.share)}%`)
          .join(', ')}`,
      );
  }
  return parts.join('; ');
}
const SUMMARY_SECONDS = 30;
let ticks = 0;
const watch = setInterval(() => {
  ticks++;
  void steeringStatus()
    .then((status) => {
      if (ticks % (SUMMARY_SECONDS / 5) === 0) terminal.summary(SUMMARY_SECONDS, status);
    })
    .catch(() => undefined);
}, 5000);

const stop = (): void => {
  clearInterval(traffic);
  clearInterval(watch);
  for (const b of bandits) b.stop();
  void gateway.shutdown().then(async () => {
    await Promise.all([...models.values()].map((m) => m.close()));
    process.exit(0);
  });
};
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
