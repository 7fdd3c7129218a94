/**
 * The soak: the gateway as a platform team runs it, for as long as asked,
 * while everything behind it changes; what each process holds over time, and every failed request.
 *
 *   gateway   the CLI (`serve --kubernetes --workers 2`, V8's defaults unless `--old-space MB` caps the old
 *             space), on the Kubernetes API stand-in (test/fixtures/fake-kube-api.ts). Heap headroom cannot
 *             pass for growth here: the heap is read after forced collections, beside V8's heap total. A cap
 *             of 96 MB costs a worker a third of its time in GC at this load (about 50 MB
 *             live): twice the gateway's CPU
 *   pods      real REST and gRPC servers on 127.0.0.x sharing two ports, as pods share a Service's
 *             target ports (test/fixtures/loopback-replicas.ts LoopbackPods), listed by EndpointSlices
 *   stable    a deployment with `main` (90%, four replicas on 127.0.0.2–5), `canary` (10%, two pods)
 *             and a `shadow`: REST 200/s and gRPC 40/s, open loop
 *   churn     a new deployment every second on two pods of its own (addresses from 127.0.0.7–254,
 *             reused), the one six seconds older deleted (EndpointSlice, then SeldonDeployment), and
 *             30/s chasing the live ones (REST and gRPC; a deployment is chased from 1 s after creation)
 *   flips     every 3 s one replica of `main` leaves the ready set (ready: false, terminating, out of the
 *             slice) and comes back
 *   canary    every 4 s the canary's pods are replaced by two on new addresses; the old ones stop once
 *             the gateway has let go of them (lib/soak-world.ts)
 *   abusive   15/s clients that send part of a request and go away (HTTP/1.1 and h2c)
 *
 * Every `--report-every` seconds, and at the end as a table (and JSON to `--out`): per process the
 * resident memory (VmRSS), heap after two forced full collections (admin `/memory?gc`), external
 * memory, descriptors and upstreams kept; the `/metrics` series, those naming deleted deployments and
 * gone addresses; the requests sent and failed. At the end: least-squares slopes of RSS and heap per
 * process over the second half (MB/hour), every failure with its reason, split into "to a live
 * deployment" (must be 0) and "to a deployment deleted while the request was in flight or being sent"
 * (allowed), and, once the churn stopped and its pods were let go, what each process keeps.
 *
 * Nothing is pinned unless `--pin` (with taskset: the load, the stand-in and the pods on CPU 0, the
 * gateway on CPU 1): the gateway's two workers are meant to use both cores, and on a shared 2-core
 * host one core is not enough for this mix (measured: pinned, half the stable REST stream could not be
 * sent on time; not pinned, all of it). The load (lib/soak-load.ts, a child script) works on a 5 ms tick
 * and never spins. The runner's own event-loop stalls are reported: its stand-in and pods stalling make
 * the gateway's requests time out and its table lag, and are not the gateway's doing.
 *
 *   npm run bench -- soak --minutes 10 [--report-every 30] [--out soak.json]
 *     [--series-grace 60s] [--old-space 0] [--workers 2] [--main dist/gateway/main.js] [--pin]
 *     [--node-args='--heapsnapshot-signal=SIGUSR2 --diagnostic-dir=/tmp/snaps'] (node flags of every gateway process)
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { request } from 'undici';
import { parseDuration } from '../../gateway/config/values.js';
import { atCleanup, hasTaskset, nodeScript, pinSelf, runMain, sleep, startAnnounced, waitFor } from '../lib/children.js';
import { buildInfo, GATEWAY_MAIN, nodeArgsOf, startGateway } from '../lib/gateway.js';
import { foreignPct, machineTicks, treeSeconds } from '../lib/proc.js';
import { log } from '../lib/report.js';
import type { SoakFailure, SoakLoadConfig, StreamCounts, StreamName } from '../lib/soak-load.js';
import { classify, finalTables, progressLine, readProcesses, readSeries, reasons, slopes, type Reading } from '../lib/soak-report.js';
import { SoakWorld } from '../lib/soak-world.js';
import { startFakeKubeApi, writeKubeconfig } from '../../test/fixtures/fake-kube-api.js';
import { LoopbackPods } from '../../test/fixtures/loopback-replicas.js';

const LIB = join(dirname(fileURLToPath(import.meta.url)), '..', 'lib');
const NS = 'soak';
const STABLE = 'stable';
/** Failures kept whole in memory (and the JSON); past it they are only counted. */
const KEEP_FAILURES = 20_000;

runMain('soak', async () => {
  const { values } = parseArgs({
    options: {
      minutes: { type: 'string', default: '10' },
      'report-every': { type: 'string', default: '30' },
      out: { type: 'string' },
      'series-grace': { type: 'string' },
      'old-space': { type: 'string', default: '0' },
      'node-args': { type: 'string', default: '' },
      workers: { type: 'string', default: '2' },
      main: { type: 'string', default: GATEWAY_MAIN },
      pin: { type: 'boolean', default: false },
      'rest-rate': { type: 'string', default: '200' },
      'grpc-rate': { type: 'string', default: '40' },
      'chase-rate': { type: 'string', default: '30' },
      'abuse-rate': { type: 'string', default: '15' },
    },
    allowPositionals: true,
  });
  const minutes = Number(values.minutes);
  const reportEvery = Number(values['report-every']) * 1000;
  // The gateway's own reading of the flag; its default when not given.
  const grace = values['series-grace'] === undefined ? 60_000 : parseDuration('series-grace', values['series-grace']);
  // A series may outlive its subject by the grace and two sweeps (a sweep every quarter of the grace, 1 to 15 s: the
  // first to see the subject gone starts the grace, the first after it removes the series); past that and a margin, it should be gone.
  const pastGrace = grace + 2 * Math.min(15_000, Math.max(1000, grace / 4)) + 5000;
  const pin = values.pin && hasTaskset();
  if (pin) pinSelf(0);
  const dir = mkdtempSync(join(tmpdir(), 'sgw-soak-'));

  const api = await startFakeKubeApi();
  atCleanup(() => void api.close());
  const pods = new LoopbackPods(() => 3 + Math.random() * 4);
  atCleanup(() => void pods.close());
  const world = new SoakWorld(api, pods, { namespace: NS, stable: STABLE, lifetimeS: 6, letGoWithinMs: 15_000 });
  await world.setUp();

  const oldSpace = Number(values['old-space']);
  const g = await startGateway('gateway', {
    log: join(dir, 'gateway.log'),
    cpu: pin ? 1 : undefined,
    kubeconfig: writeKubeconfig(dir, api),
    nodeArgs: [...(oldSpace > 0 ? [`--max-old-space-size=${oldSpace}`] : []), ...nodeArgsOf(values['node-args'])],
    main: values.main,
    workers: Number(values.workers),
    args: ['--access-log', 'off', ...(values['series-grace'] ? ['--series-grace', values['series-grace']] : [])],
    readyTimeoutMs: 90_000,
  });
  const [gateway, port, admin] = [g.server, g.port, g.admin];
  // Ready on every worker: 20 predictions in a row on fresh connections (each worker's slice watch listed).
  const url = `http://127.0.0.1:${port}/seldon/${NS}/${STABLE}/api/v1.0/predictions`;
  const fresh = (): Promise<number> =>
    request(url, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' }, reset: true, headersTimeout: 5000 }).then(
      async (r) => (await r.body.dump(), r.statusCode),
      () => 0,
    );
  let inRow = 0;
  await waitFor('the stable deployment', gateway, async () => (inRow = (await fresh()) === 200 ? inRow + 1 : 0) >= 20, 60_000);
  const memory0 = (await (await fetch(`http://127.0.0.1:${admin}/memory`)).json()) as { processes: { pid: number }[] };
  const pids = memory0.processes.map((p) => p.pid);
  log(`soak: ${minutes} min, ${buildInfo(values.main)}; gateway pids ${pids.join(', ')}; ${pin ? 'load, stand-in and pods on CPU 0, gateway on CPU 1' : 'not pinned'}; logs in ${dir}`);

  // The clients.
  const failures: SoakFailure[] = [];
  let failuresDropped = 0;
  let countsWaiter: ((c: Record<StreamName, StreamCounts>) => void) | undefined;
  let done: ((c: Record<StreamName, StreamCounts>) => void) | undefined;
  const finished = new Promise<Record<StreamName, StreamCounts>>((r) => (done = r));
  const loadConfig: SoakLoadConfig = {
    port,
    namespace: NS,
    stable: STABLE,
    restRate: Number(values['rest-rate']),
    grpcRate: Number(values['grpc-rate']),
    chaseRate: Number(values['chase-rate']),
    abuseRate: Number(values['abuse-rate']),
    connections: 64,
    channels: 4,
    timeoutMs: 10_000,
    maxInFlight: 2000,
  };
  const load = await startAnnounced('load', [process.execPath, ...nodeScript(LIB, 'soak-load')], {
    cpu: pin ? 0 : undefined,
    env: { SOAK_LOAD_CONFIG: JSON.stringify(loadConfig) },
    port: (line) => (line.startsWith('SOAK_LOAD_READY') ? 1 : undefined),
    onLine: (line) => {
      const space = line.indexOf(' ');
      const [kind, json] = [line.slice(0, space), line.slice(space + 1)];
      if (kind === 'FAIL') {
        if (failures.length < KEEP_FAILURES) failures.push(JSON.parse(json) as SoakFailure);
        else failuresDropped++;
      } else if (kind === 'COUNTS') countsWaiter?.(JSON.parse(json) as Record<StreamName, StreamCounts>);
      else if (kind === 'DONE') done?.(JSON.parse(json) as Record<StreamName, StreamCounts>);
    },
  });
  const tell = (msg: object): void => void load.child.stdin!.write(JSON.stringify(msg) + '\n');
  const counts = (): Promise<Record<StreamName, StreamCounts>> =>
    new Promise((resolve) => {
      countsWaiter = resolve;
      tell({ counts: true });
    });

  // What changes behind the gateway, each on its own period; a step still running when its next is due is skipped.
  const t0 = Date.now();
  const every = (ms: number, step: () => Promise<void>): NodeJS.Timeout => {
    let busy = false;
    return setInterval(() => {
      if (busy) return;
      busy = true;
      step()
        .catch((err: unknown) => log(`soak: ${(err as Error).message}`))
        .finally(() => (busy = false));
    }, ms);
  };
  let lastChase = '';
  const timers = [
    every(1000, () => world.churn()),
    every(3000, () => world.flip(2000)),
    every(4000, () => world.replaceCanary(500)),
    // The chased deployments: created at least 1 s ago, not being deleted.
    every(100, async () => {
      const live = world.live(1000);
      const key = live.join(',');
      if (key !== lastChase) tell({ chase: live });
      lastChase = key;
    }),
  ];

  const readings: Reading[] = [];
  // This process hosts the stand-in and the pods: its stalls are theirs.
  const stalls = monitorEventLoopDelay({ resolution: 10 });
  stalls.enable();
  let before = { at: Date.now(), machine: machineTicks(), gateway: treeSeconds(gateway.pid) };
  const reading = async (): Promise<Reading> => {
    const now = { at: Date.now(), machine: machineTicks(), gateway: treeSeconds(gateway.pid) };
    const seconds = (now.at - before.at) / 1000;
    const cpu = { gateway: (100 * (now.gateway - before.gateway)) / seconds / cpus().length, foreign: foreignPct(before.machine, now.machine, seconds) };
    before = now;
    const stallMs = stalls.max / 1e6;
    stalls.reset();
    const c = await counts();
    const processes = await readProcesses(admin, pids);
    const text = await (await fetch(`http://127.0.0.1:${admin}/metrics`, { signal: AbortSignal.timeout(30_000) })).text();
    const r: Reading = { t: Math.round((Date.now() - t0) / 1000), cpu, stallMs, processes, series: readSeries(text, world.deletedAt, world.goneAddresses, pastGrace), counts: c };
    log(progressLine(r));
    return r;
  };
  const end = t0 + minutes * 60_000;
  for (let next = t0 + reportEvery; next < end; next += reportEvery) {
    await sleep(Math.max(0, next - Date.now()));
    if (gateway.child.exitCode !== null) throw new Error(`the gateway exited (${gateway.child.exitCode}); see ${gateway.log}`);
    readings.push(await reading());
  }
  await sleep(Math.max(0, end - Date.now()));
  readings.push(await reading());

  // The end: the churn stops, the clients finish, what left is let go; then what each process keeps.
  for (const t of timers) clearInterval(t);
  load.child.stdin!.end();
  const finalCounts = await finished;
  await world.wind();
  await sleep(2000);
  const settled = await readProcesses(admin, pids);
  const exits = (gateway.output().match(/worker exited/g) ?? []).length;

  const verdicts = classify(failures, world.deletedAt);
  const half = (minutes * 60) / 2;
  const last = { ...readings.at(-1)!, counts: finalCounts };
  readings[readings.length - 1] = last;
  log('');
  log(finalTables(readings, half, verdicts));
  log('');
  log(`churn: ${world.stats.created} deployments created, ${world.stats.deleted} deleted; ${world.stats.flips} replica flips; ${world.stats.canaryReplacements} canary replacements`);
  log(
    `pods stopped after the gateway let go: ${world.stats.podsStopped} (slowest let-go ${world.stats.slowestLetGoMs} ms after leaving); held past 15 s: ${world.stats.heldPods.length}${world.stats.heldPods.length ? ` (${world.stats.heldPods.slice(0, 5).join('; ')})` : ''}`,
  );
  log(
    `after the churn stopped and its pods were let go: ${settled.map((p) => `${p.name} ${p.descriptors} fds${p.upstreams ? `, upstreams ${p.upstreams.rest} REST / ${p.upstreams.grpc} gRPC` : ''}`).join('; ')}`,
  );
  log(`gateway worker exits: ${exits}${failuresDropped ? `; ${failuresDropped} failures beyond the first ${KEEP_FAILURES} counted only` : ''}`);
  if (values.out) {
    const sl = Object.fromEntries(slopes(readings, half));
    writeFileSync(
      values.out,
      JSON.stringify(
        {
          build: buildInfo(values.main),
          options: { ...values, seriesGraceMs: grace },
          readings,
          slopesFromSecond: half,
          slopesMbPerHour: sl,
          world: world.stats,
          settled,
          workerExits: exits,
          failures: {
            live: verdicts.liveFailures.length,
            deletedInFlight: verdicts.deletedFailures.length,
            dropped: failuresDropped,
            liveByReason: reasons(verdicts.liveFailures),
            deletedByReason: reasons(verdicts.deletedFailures),
            // With the deployment's age when the request was sent, and when its deletion began (churn deployments).
            list: failures.map((f) => ({ ...f, createdAt: world.createdAt.get(f.target), deletedAt: world.deletedAt.get(f.target) })),
          },
        },
        null,
        1,
      ),
    );
    log(`JSON: ${values.out}`);
  }
  if (verdicts.liveFailures.length > 0) throw new Error(`${verdicts.liveFailures.length} requests to a live deployment failed`);
});
