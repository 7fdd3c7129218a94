/**
 * The whole gateway on the Kubernetes source: `startGateway` with `--kubernetes --kubeconfig`
 * against the fake API server, real REST traffic to a local backend via `--resolve`. Readiness
 * waits for the first list; watch changes route live; a rejected deployment gets a Kubernetes
 * Event; the API server going away for 3 s drops no route and no readiness; a 410 relist
 * applies deletions missed while away and is counted.
 */
import { request } from 'undici';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { parseConfig } from '../../../gateway/config/parse.js';
import { startGateway, type Gateway } from '../../../gateway/process/serve.js';
import { startHttpBackend, type HttpBackend } from '../../fixtures/http-backend.js';
import { seldonDeployment, startFakeKubeApi, tempDir, until, writeKubeconfig, type FakeKubeApi } from '../../fixtures/fake-kube-api.js';
import { sleep } from '../../helpers/wait.js';

const predict = '/api/v1.0/predictions';
let backend: HttpBackend;
let api: FakeKubeApi;
let tmp: ReturnType<typeof tempDir>;
let gw: Gateway | undefined;

beforeAll(async () => {
  backend = await startHttpBackend({ name: 'model' });
});
afterAll(() => backend.close());

beforeEach(async () => {
  api = await startFakeKubeApi();
  tmp = tempDir();
});

afterEach(async () => {
  await gw?.close();
  gw = undefined;
  await api.close();
  tmp.cleanup();
});

async function start(): Promise<{ gw: Gateway; url: string; admin: string }> {
  const kubeconfig = writeKubeconfig(tmp.dir, api);
  const resolve = ['iris', 'income', 'fraud', 'late'].flatMap((n) => ['--resolve', `${n}-default.models:8000=127.0.0.1:${backend.port}`]);
  const config = parseConfig('serve', ['--kubernetes', '--kubeconfig', kubeconfig, '--port', '0', '--admin-port', '0', '--host', '127.0.0.1', '--workers', '1', '--access-log', 'off', ...resolve], {});
  gw = await startGateway(config, { logger: pino({ level: 'silent' }) });
  return { gw, url: `http://127.0.0.1:${gw.port}`, admin: `http://127.0.0.1:${gw.adminPort}` };
}

async function status(url: string, method: 'GET' | 'POST' = 'POST'): Promise<number> {
  const r = await request(url, method === 'POST' ? { method, body: '{"data":{"ndarray":[[1]]}}', headers: { 'content-type': 'application/json' } } : { method });
  await r.body.text();
  return r.statusCode;
}

async function metric(admin: string, name: string): Promise<number | undefined> {
  const r = await request(`${admin}/metrics`);
  const text = await r.body.text();
  const line = text.split('\n').find((l) => l.startsWith(`${name}{`) && l.includes('source="kubernetes"'));
  return line === undefined ? undefined : Number(line.split(' ').at(-1));
}

const sdep = (name: string, annotations?: Record<string, string>) => seldonDeployment(name, 'models', undefined, annotations);

describe('gateway on the Kubernetes source', () => {
  it('is unready until the first list, then routes; watch changes apply live; a rejected deployment gets an Event', async () => {
    api.upsert('seldondeployments', sdep('iris'));
    api.listDelayMs = 1000;
    const { url, admin } = await start();
    expect(await status(`${admin}/readyz`, 'GET')).toBe(503);
    await until(() => gw!.ready(), 5000, 'ready');
    expect(await status(`${admin}/readyz`, 'GET')).toBe(200);
    expect(await status(`${url}/seldon/models/iris${predict}`)).toBe(200);
    expect(await status(`${url}/seldon/models/income${predict}`)).toBe(404);

    api.upsert('seldondeployments', sdep('income'));
    await until(() => gw!.state.current.deployments.has('models/income'), 3000, 'income routed');
    expect(await status(`${url}/seldon/models/income${predict}`)).toBe(200);
    api.remove('seldondeployments', 'models', 'iris');
    await until(() => !gw!.state.current.deployments.has('models/iris'), 3000, 'iris gone');
    expect(await status(`${url}/seldon/models/iris${predict}`)).toBe(404);

    const bad = api.upsert('seldondeployments', sdep('fraud', { 'seldon.io/ambassador-header': 'a:b:c' }));
    await until(() => api.eventPosts.length > 0, 3000, 'Event posted');
    const ev = api.eventPosts[0] as { reason?: string; type?: string; message?: string; involvedObject?: Record<string, unknown> };
    expect(ev.type).toBe('Warning');
    expect(ev.reason).toBe('RouteRejected');
    expect(ev.message).toContain('ambassador-header');
    expect(ev.involvedObject).toMatchObject({ kind: 'SeldonDeployment', name: 'fraud', namespace: 'models', uid: bad.metadata.uid, apiVersion: 'machinelearning.seldon.io/v1' });
    // The rest keeps routing.
    expect(await status(`${url}/seldon/models/income${predict}`)).toBe(200);
    expect(await metric(admin, 'seldon_gateway_source_connected')).toBe(1);
  });

  it('API server down for 3 s: routes and readiness stay, the disconnection shows; a change made meanwhile applies after reconnect', { timeout: 30_000 }, async () => {
    api.upsert('seldondeployments', sdep('iris'));
    const { url, admin } = await start();
    await until(() => gw!.ready() && api.openWatches('seldondeployments') === 1, 5000, 'ready and watching');
    const down = api.down(3000);
    let served = 0;
    let failed = 0;
    const deadline = Date.now() + 2500;
    let sawDisconnected = false;
    while (Date.now() < deadline) {
      if ((await status(`${url}/seldon/models/iris${predict}`)) === 200) served++;
      else failed++;
      expect(await status(`${admin}/readyz`, 'GET')).toBe(200);
      if (!sawDisconnected && (await metric(admin, 'seldon_gateway_source_connected')) === 0) sawDisconnected = true;
      await sleep(50); // the clients' pace while the API server is down
    }
    expect(failed).toBe(0);
    expect(served).toBeGreaterThan(10);
    expect(sawDisconnected).toBe(true);
    const routes = (await (await request(`${admin}/routes`)).body.json()) as { sourceProblems: Record<string, string> };
    expect(routes.sourceProblems.kubernetes).toMatch(/keep serving/);

    api.upsert('seldondeployments', sdep('late'));
    await down;
    await until(() => gw!.state.current.deployments.has('models/late'), 12_000, 'caught up after reconnect');
    expect(await status(`${url}/seldon/models/late${predict}`)).toBe(200);
    expect(await metric(admin, 'seldon_gateway_source_connected')).toBe(1);
    const after = (await (await request(`${admin}/routes`)).body.json()) as { sourceProblems: Record<string, string> };
    expect(after.sourceProblems.kubernetes).toBeUndefined();
  });

  it('410 Gone after missed changes: relist applies the deletion, keeps the rest, counts the resync', async () => {
    api.upsert('seldondeployments', sdep('iris'));
    api.upsert('seldondeployments', sdep('income'));
    const { url, admin } = await start();
    await until(() => gw!.ready() && api.openWatches('seldondeployments') === 1, 5000, 'ready and watching');
    const generation = gw!.state.current.generation;
    api.dropWatches();
    api.remove('seldondeployments', 'models', 'income');
    api.compact();
    await until(() => !gw!.state.current.deployments.has('models/income'), 5000, 'deletion applied');
    expect(await status(`${url}/seldon/models/income${predict}`)).toBe(404);
    expect(await status(`${url}/seldon/models/iris${predict}`)).toBe(200);
    expect(await metric(admin, 'seldon_gateway_source_resyncs_total')).toBe(1);
    // One new table for the relist: nothing re-applied for the unchanged deployment.
    expect(gw!.state.current.generation).toBe(generation + 1);
  });
});

describe('rollouts on the Kubernetes source', () => {
  it('each transition is one Event on the SeldonDeployment, in the order of the run, with the numbers that caused it', async () => {
    const annotations = { 'seldon.io/gateway-rollout': 'canary: canary\nsteps: [25, 50, 100]\ninterval: 1s\nminRequests: 20\nmaxLatencyShift: 300%' };
    api.upsert(
      'seldondeployments',
      seldonDeployment(
        'roll',
        'models',
        {
          predictors: [
            { name: 'main', graph: { name: 'model', type: 'MODEL' } },
            { name: 'canary', graph: { name: 'model', type: 'MODEL' } },
          ],
        },
        annotations,
      ),
    );
    const kubeconfig = writeKubeconfig(tmp.dir, api);
    const resolve = ['main', 'canary'].flatMap((p) => ['--resolve', `roll-${p}.models:8000=127.0.0.1:${backend.port}`]);
    gw = await startGateway(
      parseConfig('serve', ['--kubernetes', '--kubeconfig', kubeconfig, '--port', '0', '--admin-port', '0', '--host', '127.0.0.1', '--workers', '1', '--access-log', 'off', ...resolve], {}),
      {
        logger: pino({ level: 'silent' }),
      },
    );
    await until(() => gw!.ready(), 5000, 'ready');
    const url = `http://127.0.0.1:${gw.port}/seldon/models/roll${predict}`;
    const reasons = (): string[] => [...api.events.values()].filter((e) => (e.involvedObject as { name?: string } | undefined)?.name === 'roll').map((e) => e.reason ?? '');
    const end = Date.now() + 60_000;
    while (!reasons().includes('RolloutPromoted')) {
      if (Date.now() > end) throw new Error(`no promotion; events so far: ${reasons().join(', ')}`);
      for (let i = 0; i < 20; i++) expect(await status(url)).toBe(200);
    }
    const byReason = new Map([...api.events.values()].map((e) => [e.reason, e]));
    expect(byReason.get('RolloutStarted')).toMatchObject({ type: 'Normal', involvedObject: { kind: 'SeldonDeployment', name: 'roll', namespace: 'models' } });
    expect(byReason.get('RolloutAdvanced')).toMatchObject({ type: 'Normal' });
    expect(byReason.get('RolloutPromoted')?.message).toMatch(/write traffic: 100 for canary/);
    // Each is one post: the order of the run.
    expect(reasons().filter((r) => r !== 'RolloutHeld')).toEqual(['RolloutStarted', 'RolloutAdvanced', 'RolloutPromoted']);
    expect(byReason.get('RolloutAdvanced')?.message).toMatch(/canary requests/);
  }, 90_000);
});
