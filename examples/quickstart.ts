/**
 * `npm start`: the gateway on port 8003 (where Seldon's docs and Python client look) over the
 * SeldonDeployments in examples/deployments, with a mock model server standing in for every
 * REST upstream the table names, wired with --resolve. No cluster needed.
 *
 *   node dist/examples/quickstart.js [--port 8003] [--admin-port 8877] [--manifests DIR]
 */
import { fileURLToPath } from 'node:url';
import { startMockModel, type MockModel } from './mock-model.js';
import { sendRewards } from './bandit-rewards.js';
import { parseConfig } from '../gateway/config/parse.js';
import { startGateway } from '../gateway/process/serve.js';
import { ManifestSource } from '../source/manifest-source.js';
import { buildTable } from '../routing/table.js';
import type { SeldonDeployment } from '../routing/seldon-deployment.js';

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
const gateway = await startGateway(config);

const base = `http://localhost:${gateway.port}`;
const body = `'{"data":{"ndarray":[[5.1,3.5,1.4,0.2]]}}'`;
const curl = (path: string, extra = ''): string => `  curl -s ${extra}-H 'content-type: application/json' -d ${body} ${base}${path}`;
process.stdout.write(`
seldon-gateway is serving ${deployments.length} SeldonDeployments from ${manifests}
with ${models.size} mock models behind it. Try:

  # a single model
${curl('/seldon/seldon/iris/api/v1.0/predictions')}
  # its explainer
${curl('/seldon/seldon/iris-explainer/default/api/v1.0/explain')}
  # a 75/25 canary (the x-seldon-model response header says who answered)
${curl('/seldon/seldon/income/api/v1.0/predictions', '-i ')}
  # a shadow: "main" answers, "shadow" gets a copy
${curl('/seldon/seldon/churn/api/v1.0/predictions')}
  # a header route: x-region: eu goes to fraud-eu
${curl('/seldon/seldon/fraud/api/v1.0/predictions', "-H 'x-region: eu' ")}

  # a rollout: v2 gets more of the traffic step by step (this script sends it some);
  # watch it on the admin page: http://localhost:${gateway.adminPort}/
${curl('/seldon/seldon/reviews/api/v1.0/predictions', '-i ')}

  # a bandit: traffic moves to the predictor earning the best reward (this script sends rewards,
  # examples/bandit-rewards.ts); the answer's seldon-gateway-arm header is its attribution token
${curl('/seldon/seldon/recommender/api/v1.0/predictions', '-i ')}

  # what the gateway made of the manifests (admin port)
  curl -s http://localhost:${gateway.adminPort}/routes
  curl -s http://localhost:${gateway.adminPort}/metrics | grep seldon_gateway_requests_total

Ctrl-C stops everything.
`);

// A little traffic to every deployment with a rollout, so the page shows it progressing.
const rollouts = deployments.filter((d) => d.metadata?.annotations?.['seldon.io/gateway-rollout']);
const traffic = setInterval(() => {
  for (const d of rollouts) {
    const url = `${base}/seldon/${d.metadata?.namespace ?? 'default'}/${d.metadata?.name}/api/v1.0/predictions`;
    void fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"data":{"ndarray":[[5.1,3.5,1.4,0.2]]}}' })
      .then((r) => r.arrayBuffer())
      .catch(() => undefined);
  }
}, 20);

// Rewards for every bandit deployment (arm "c" is the best), so the page shows the shares moving.
const bandits = deployments
  .filter((d) => d.metadata?.annotations?.['seldon.io/gateway-bandit'])
  .map((d) => sendRewards({ url: base, deployment: `${d.metadata?.namespace ?? 'default'}/${d.metadata?.name}`, rates: { a: 0.3, b: 0.35, c: 0.45 }, perSecond: 20 }));

const stop = (): void => {
  clearInterval(traffic);
  for (const b of bandits) b.stop();
  void gateway.shutdown().then(async () => {
    await Promise.all([...models.values()].map((m) => m.close()));
    process.exit(0);
  });
};
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
