/**
 * What each process of an idle gateway holds: the CLI (`serve`, a primary and `--workers` workers)
 * of this build (and with --vs-main another one), one at a time, on the bundled example (manifests) or on the Kubernetes API
 * stand-in (one SeldonDeployment and its EndpointSlice, endpoint routing on), with no traffic. After
 * `--settle` seconds each process's resident memory (VmRSS, from /proc) is read, then, from the
 * admin port's `/memory`, its heap after forced collections. Several rounds, the
 * builds interleaved; the table gives each process's median.
 *
 *   npm run bench -- memory [--vs-main /tmp/old/dist/gateway/main.js] [--source manifests|kubernetes|both] [--workers 2] [--settle 30] [--rounds 3]
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ROOT, runMain, sleep } from '../lib/children.js';
import { GATEWAY_MAIN, buildInfo, startGateway } from '../lib/gateway.js';
import { descendants } from '../lib/proc.js';
import { log, median, table } from '../lib/report.js';
import { readProcesses, type ProcessReading } from '../lib/soak-report.js';
import { endpointSlice, seldonDeployment, startFakeKubeApi, writeKubeconfig, type FakeKubeApi } from '../../test/fixtures/fake-kube-api.js';

type Source = 'manifests' | 'kubernetes';
/** A process's resident memory and its heap after forced collections (the admin port's `/memory?gc`), bytes. */
type Reading = Pick<ProcessReading, 'name' | 'rss' | 'heapUsed'>;

const MB = 1024 * 1024;

/** One idle gateway of `main`: its primary's reading, then each worker's (resident memory read first: the collections would shrink it). */
async function measure(main: string, source: Source, workers: number, settleMs: number, kubeconfig: string | undefined, dir: string): Promise<Reading[]> {
  const from = source === 'manifests' ? { manifests: join(ROOT, 'examples/deployments/01-iris.yaml') } : { kubeconfig: kubeconfig! };
  const gw = await startGateway('gateway', { log: join(dir, 'gateway.log'), ...from, main, workers, args: ['--access-log', 'off'] });
  try {
    await sleep(settleMs);
    return await readProcesses(gw.admin, [gw.server.pid, ...descendants(gw.server.pid)]);
  } finally {
    await gw.stop();
  }
}

runMain('idle-memory', async () => {
  const { values } = parseArgs({
    options: {
      'vs-main': { type: 'string' },
      'vs-label': { type: 'string' },
      source: { type: 'string', default: 'both' },
      workers: { type: 'string', default: '2' },
      settle: { type: 'string', default: '30' },
      rounds: { type: 'string', default: '3' },
    },
  });
  const mains = [GATEWAY_MAIN, ...(values['vs-main'] ? [values['vs-main']] : [])];
  const sources: Source[] = values.source === 'both' ? ['manifests', 'kubernetes'] : [values.source as Source];
  const workers = Number(values.workers);
  const dir = mkdtempSync(join(tmpdir(), 'idle-memory-'));
  let api: FakeKubeApi | undefined;
  let kubeconfig: string | undefined;
  if (sources.includes('kubernetes')) {
    api = await startFakeKubeApi();
    api.upsert('seldondeployments', seldonDeployment('iris', 'seldon', { predictors: [{ name: 'default', graph: { name: 'classifier', implementation: 'SKLEARN_SERVER', modelUri: 'gs://x' } }] }));
    api.upsert(
      'endpointslices',
      endpointSlice(
        'iris-default',
        'seldon',
        'iris-default-abc',
        [{ ip: '127.0.0.2', pod: 'iris-0' }],
        [
          { name: 'http', port: 9000 },
          { name: 'grpc', port: 9500 },
        ],
      ),
    );
    kubeconfig = writeKubeconfig(dir, api);
  }
  const results = new Map<string, Reading[][]>();
  for (let round = 1; round <= Number(values.rounds); round++) {
    for (const source of sources) {
      for (const main of mains) {
        const r = await measure(main, source, workers, Number(values.settle) * 1000, kubeconfig, dir);
        log(`round ${round} ${source} ${main}: ${r.map((p) => `${(p.rss / MB).toFixed(0)}`).join(' / ')} MB resident`);
        const key = `${source}\u0000${main}`;
        results.set(key, [...(results.get(key) ?? []), r]);
      }
    }
  }
  await api?.close();
  log(`\n${workers} workers, idle ${values.settle} s after ready, medians of ${values.rounds} rounds (MB):\n`);
  const rows: string[][] = [];
  for (const [key, runs] of results) {
    const [source, main] = key.split('\u0000') as [Source, string];
    for (let i = 0; i < Math.min(...runs.map((r) => r.length)); i++) {
      const heap = (median(runs.map((r) => r[i]!.heapUsed)) / MB).toFixed(1);
      rows.push([source, buildInfo(main), runs[0]![i]!.name, (median(runs.map((r) => r[i]!.rss)) / MB).toFixed(0), heap]);
    }
  }
  log(table(['source', 'build', 'process', 'resident', 'heap after collections'], rows));
});
