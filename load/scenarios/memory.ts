/**
 * What each process of an idle gateway holds: the CLI (`serve`, a primary and `--workers` workers)
 * of one or more builds, one at a time, on the bundled example (manifests) or on the Kubernetes API
 * stand-in (one SeldonDeployment and its EndpointSlice, endpoint routing on), with no traffic. After
 * `--settle` seconds each process's resident memory (VmRSS, from /proc) is read, then, where the
 * build has the admin port's `/memory`, its heap after forced collections. Several rounds, the
 * builds interleaved; the table gives each process's median.
 *
 *   npm run bench -- memory [--main dist/gateway/main.js,/tmp/old/dist/gateway/main.js]
 *     [--source manifests|kubernetes|both] [--workers 2] [--settle 30] [--rounds 3]
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ROOT, runMain, sleep, startServer, waitFor } from '../lib/children.js';
import { GATEWAY_MAIN, buildInfo } from '../lib/gateway.js';
import { freePort, httpStatus } from '../lib/http.js';
import { log } from '../lib/report.js';
import { vmRss } from '../lib/soak-report.js';
import { endpointSlice, seldonDeployment, startFakeKubeApi, writeKubeconfig, type FakeKubeApi } from '../../test/fixtures/fake-kube-api.js';

type Source = 'manifests' | 'kubernetes';
interface Reading {
  readonly rss: number;
  /** Heap after forced collections; undefined where the build has no /memory. */
  readonly heap: number | undefined;
}

const MB = 1024 * 1024;

/** The workers the primary forked: its children. */
function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

async function heaps(admin: number): Promise<Map<number, number>> {
  try {
    const res = await fetch(`http://127.0.0.1:${admin}/memory?gc`, { signal: AbortSignal.timeout(30_000) });
    if (res.status !== 200) return new Map();
    const { processes } = (await res.json()) as { processes: { pid: number; heapUsed: number }[] };
    return new Map(processes.map((p) => [p.pid, p.heapUsed]));
  } catch {
    return new Map();
  }
}

/** One idle gateway of `main`: its primary's reading, then each worker's. */
async function measure(main: string, source: Source, workers: number, settleMs: number, kubeconfig: string | undefined, dir: string): Promise<Reading[]> {
  const port = await freePort();
  const admin = await freePort();
  const from = source === 'manifests' ? ['--manifests', join(ROOT, 'examples/deployments/01-iris.yaml')] : ['--kubernetes', '--kubeconfig', kubeconfig!];
  const gw = startServer('gateway', join(dir, 'gateway.log'), undefined, [
    process.execPath,
    main,
    'serve',
    ...from,
    '--port',
    String(port),
    '--admin-port',
    String(admin),
    '--host',
    '127.0.0.1',
    '--workers',
    String(workers),
    '--access-log',
    'off',
  ]);
  try {
    await waitFor('gateway', gw, async () => (await httpStatus(`http://127.0.0.1:${admin}/readyz`)) === 200, 60_000);
    await sleep(settleMs);
    const pids = [gw.pid, ...childrenOf(gw.pid)];
    // Resident memory first: the collections /memory?gc runs would shrink it.
    const rss = pids.map(vmRss);
    const heap = await heaps(admin);
    return pids.map((pid, i) => ({ rss: rss[i]!, heap: heap.get(pid) }));
  } finally {
    gw.child.kill('SIGTERM');
    await gw.exited;
  }
}

const median = (xs: readonly number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

runMain('idle-memory', async () => {
  const { values } = parseArgs({
    options: {
      main: { type: 'string', default: GATEWAY_MAIN },
      source: { type: 'string', default: 'both' },
      workers: { type: 'string', default: '2' },
      settle: { type: 'string', default: '30' },
      rounds: { type: 'string', default: '3' },
    },
  });
  const mains = values.main.split(',');
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
  log('| source | build | process | resident | heap after collections |');
  log('|:--|:--|:--|--:|--:|');
  for (const [key, runs] of results) {
    const [source, main] = key.split('\u0000') as [Source, string];
    const n = Math.min(...runs.map((r) => r.length));
    for (let i = 0; i < n; i++) {
      const heapsOf = runs.map((r) => r[i]!.heap).filter((h): h is number => h !== undefined);
      const heap = heapsOf.length ? (median(heapsOf) / MB).toFixed(1) : '—';
      log(`| ${source} | ${buildInfo(main)} | ${i === 0 ? 'primary' : `worker ${i}`} | ${(median(runs.map((r) => r[i]!.rss)) / MB).toFixed(0)} | ${heap} |`);
    }
  }
});
