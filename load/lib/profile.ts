/**
 * A CPU profile of a gateway under closed-loop load (rest-bench --profile): a separate gateway
 * started with `node --cpu-prof`, loaded for a fixed time, stopped, and its main thread's self
 * time summarised by function, counting only the samples of the measured load, in the process
 * that served it (the cluster worker, not the idle primary).
 */
import { copyFileSync, mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { killTree, sleep } from './children.js';
import type { ClosedLoop } from './closed-loop.js';
import { formatSummary, summarise, type CpuProfile } from './cpuprofile.js';
import type { Gateway } from './gateway.js';
import { treeSeconds } from './proc.js';
import type { QuietGate } from './quiet.js';
import { f0, f1, log } from './report.js';

export interface ProfileRun {
  /** Where the .cpuprofile is written (a copy is kept in the system temp directory). */
  readonly dir: string;
  readonly seconds: number;
  readonly warmupS: number;
  readonly conns: number;
  /** Request path of the loaded deployment, and what it is (for the heading). */
  readonly path: string;
  readonly what: string;
  readonly loop: ClosedLoop;
  readonly quiet: QuietGate;
  /** The gateway's core, which it gets to itself; the backend runs on `backendCpu`. */
  readonly serverCpu: number;
  readonly backendCpu: number;
  readonly startBackend: (name: string, cpu: number) => Promise<{ readonly port: number }>;
  readonly startGateway: (name: string, backendPort: number, extraNodeArgs: string[]) => Promise<Gateway>;
}

export async function profileGateway(p: ProfileRun): Promise<void> {
  const profDir = join(p.dir, 'prof');
  mkdirSync(profDir, { recursive: true });
  log('');
  log(`## CPU profile: gateway under ${p.seconds}s of ${p.loop.tool} at ${p.conns} connections (${p.what}), node --cpu-prof`);
  // V8's sampler charges wall time: a gateway preempted by the backend it just woke (same core)
  // would show that wait as self time of 'writev'. So this gateway gets its core alone, with a
  // backend of its own elsewhere.
  const backend = await p.startBackend('backend-prof', p.backendCpu);
  const prof = await p.startGateway('gateway-prof', backend.port, ['--cpu-prof', `--cpu-prof-dir=${profDir}`]);
  log(`(gateway alone on core ${p.serverCpu}; load generator and a backend of its own on core ${p.backendCpu})`);
  const url = `http://127.0.0.1:${prof.port}${p.path}`;
  await p.loop.run(url, p.conns, p.warmupS);
  await p.quiet.wait();
  const before = treeSeconds(prof.server.pid);
  const r = await p.loop.run(url, p.conns, p.seconds);
  const cpuUs = ((treeSeconds(prof.server.pid) - before) * 1e6) / Math.max(1, r.completed);
  const loadEnd = performance.now();
  killTree(prof.server.child, 'SIGTERM');
  const code = await Promise.race([prof.server.exited, sleep(15_000).then(() => 'timeout' as const)]);
  if (code === 'timeout') killTree(prof.server.child, 'SIGKILL');
  // The profile ends when the process exits: keep the samples of the measured load only.
  const tailUs = (performance.now() - loadEnd) * 1000;
  // One profile per process: the cluster primary (idle) and the worker that served the traffic.
  // Keep the samples of the measured load only (the profile ends when the process exits), and the
  // process that was busiest during it.
  const window = { fromEndUs: tailUs + r.seconds * 1e6, toEndUs: tailUs };
  const profiles = readdirSync(profDir)
    .filter((f) => f.endsWith('.cpuprofile'))
    .map((f) => ({ file: join(profDir, f), summary: summarise(JSON.parse(readFileSync(join(profDir, f), 'utf8')) as CpuProfile, window) }))
    .sort((a, b) => b.summary.busyMs - a.summary.busyMs);
  const busiest = profiles[0];
  if (!busiest) {
    log(`no .cpuprofile written (gateway exit: ${String(code)})`);
    return;
  }
  const keep = join(tmpdir(), `rest-bench-gateway-${Date.now()}.cpuprofile`);
  copyFileSync(busiest.file, keep);
  log(`${f0(r.rps)} req/s while profiling, ${r.completed} requests, ${f1(cpuUs)} µs process CPU per request (all threads; profiling adds overhead); profile kept at ${keep}`);
  log(`(self time of the main thread over the ${p.seconds} s of load only; start-up, warm-up and shutdown samples left out)`);
  log('');
  log(formatSummary(busiest.summary, 30, r.completed));
}
