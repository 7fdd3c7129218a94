/**
 * REST data-plane benchmark (not a test): one run, interleaved, comparing
 *
 *   direct   the backend itself (no proxy)
 *   nginx    nginx 1 worker, upstream keep-alive (skipped with a note when nginx is absent)
 *   stock    a static fastify + @fastify/http-proxy (load/rest-bench-stock-proxy.ts)
 *   gateway  seldon-gateway, --workers 1, a 1,000-SeldonDeployment table; the measured deployment
 *            is a 90/10 canary with a header route beside it (requests carry no matching header,
 *            so every one checks the header rule and makes a weighted pick)
 *   gw+shadow the gateway on a deployment whose predictor is mirrored 100% to a shadow
 *   gateway B optional second gateway (other build or node flags): an A/B test in one run
 *
 * Per target and round: requests/s at 16 and 64 connections (closed loop: wrk, or autocannon when
 * wrk is absent), and p50/p99 latency at a fixed 2,000 req/s (open loop, load/rest-bench-rate.ts);
 * for each, the CPU time (utime+stime from /proc, whole process tree) the proxy and the backend spent
 * per completed request. Rounds interleave the targets; the table shows medians. The load generator
 * runs on one core, the servers on the other (see --help for the arrangement). Other processes'
 * load is measured per run; disturbed runs are left out of the medians when undisturbed ones exist.
 * load/README.md ("REST benchmark") has the method, a measured table and how to read it.
 *
 *   npm run build && npx vite-node load/rest-bench.ts [--rounds 3] [--duration 3] [--profile 8]
 *
 * Everything listens on and talks to 127.0.0.1 only; every load run is bounded in time and
 * count; every child process is stopped on exit, error, Ctrl-C or SIGTERM.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir, cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import ts from 'typescript';
import YAML from 'yaml';
import { formatSummary, summarise, type CpuProfile } from './rest-bench-cpuprofile.js';
import type { RateConfig, RateResult } from './rest-bench-rate.js';
import { CLK_TCK, descendants, treeSeconds } from './proc.js';

// ---------------------------------------------------------------------------------------------
// Options

const HELP = `Usage: npx vite-node load/rest-bench.ts [options]

  --rounds N           interleaved rounds; medians are reported (env BENCH_ROUNDS, default 3)
  --duration S         seconds per closed-loop run (BENCH_DURATION, default 3)
  --rate R             fixed rate of the latency runs, req/s (BENCH_RATE, default 2000)
  --rate-duration S    seconds per latency run, after a 1 s warm-up (BENCH_RATE_DURATION, default 4)
  --conns LIST         closed-loop connection counts (BENCH_CONNS, default 16,64)
  --deployments N      SeldonDeployments in the gateway's table (BENCH_DEPLOYMENTS, default 1000)
  --targets LIST       subset of direct,nginx,stock,gateway,shadow (BENCH_TARGETS, default all)
  --load-cpu C         core of the load generators (BENCH_LOAD_CPU, default 0)
  --server-cpu C       core of the proxy under test (BENCH_SERVER_CPU, default 1)
  --backend-cpu C      core of the backend (BENCH_BACKEND_CPU, default: the server core)
  --node-backend       use the node:http backend even when nginx is installed
  --autocannon         use autocannon even when wrk is installed
  --profile S          after the table, profile the gateway under S seconds of load (--cpu-prof)
                       and print its self time by function (BENCH_PROFILE, default off)
  --gateway-b-main F   also measure a second gateway from this main.js (another build), interleaved
  --gateway-b-node-args "FLAGS"
                       node flags of that second gateway (same build unless --gateway-b-main), e.g.
                       "--max-semi-space-size=64" (env BENCH_GATEWAY_B_MAIN / BENCH_GATEWAY_B_NODE_ARGS)
  --build              run 'npm run build' first
  --keep               keep the temporary directory (configs, logs, manifests)

Environment only:
  BENCH_QUIET_BUDGET   seconds the runner may wait, in all, for other processes to quiet down
                       before its runs (default 60); runs with >10% foreign load are marked
  BENCH_GATEWAY_NODE_ARGS  extra node flags for the gateway, e.g. "--max-semi-space-size=64" or "--trace-gc"
                       (its output lands in gateway.log in the kept temporary directory)
`;

const { values: argv } = parseArgs({
  options: {
    rounds: { type: 'string' },
    duration: { type: 'string' },
    rate: { type: 'string' },
    'rate-duration': { type: 'string' },
    conns: { type: 'string' },
    deployments: { type: 'string' },
    targets: { type: 'string' },
    'load-cpu': { type: 'string' },
    'server-cpu': { type: 'string' },
    'backend-cpu': { type: 'string' },
    'node-backend': { type: 'boolean' },
    autocannon: { type: 'boolean' },
    profile: { type: 'string' },
    build: { type: 'boolean' },
    'gateway-b-main': { type: 'string' },
    'gateway-b-node-args': { type: 'string' },
    keep: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  },
  allowPositionals: false,
});
if (argv.help) {
  process.stdout.write(HELP);
  process.exit(0);
}

const opt = (flag: string | undefined, env: string, dflt: string): string => flag ?? process.env[env] ?? dflt;
const num = (flag: string | undefined, env: string, dflt: number): number => {
  const v = Number(opt(flag, env, String(dflt)));
  if (!Number.isFinite(v) || v < 0) throw new Error(`bad number for ${env}: ${String(flag ?? process.env[env])}`);
  return v;
};
const ROUNDS = Math.max(1, Math.floor(num(argv.rounds, 'BENCH_ROUNDS', 3)));
const DURATION_S = Math.max(1, num(argv.duration, 'BENCH_DURATION', 3));
const RATE = Math.max(1, num(argv.rate, 'BENCH_RATE', 2000));
const RATE_DURATION_S = Math.max(1, num(argv['rate-duration'], 'BENCH_RATE_DURATION', 4));
const CONNS = opt(argv.conns, 'BENCH_CONNS', '16,64')
  .split(',')
  .map((s) => Math.floor(Number(s)))
  .filter((n) => n > 0 && n <= 1024);
const DEPLOYMENTS = Math.max(3, Math.floor(num(argv.deployments, 'BENCH_DEPLOYMENTS', 1000)));
const LOAD_CPU = Math.floor(num(argv['load-cpu'], 'BENCH_LOAD_CPU', 0));
const SERVER_CPU = Math.floor(num(argv['server-cpu'], 'BENCH_SERVER_CPU', 1));
const BACKEND_CPU = Math.floor(num(argv['backend-cpu'], 'BENCH_BACKEND_CPU', SERVER_CPU));
const PROFILE_S = num(argv.profile, 'BENCH_PROFILE', 0);
const TARGETS = new Set(opt(argv.targets, 'BENCH_TARGETS', 'direct,nginx,stock,gateway,shadow').split(','));
const WARMUP_S = 2;
/** Extra node flags for the gateway (experiments: --max-semi-space-size=64, --trace-gc, ...). */
const GATEWAY_NODE_ARGS = (process.env.BENCH_GATEWAY_NODE_ARGS ?? '').split(/\s+/).filter(Boolean);
const RATE_WARMUP_MS = 1000;

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = findRoot(HERE);
const GATEWAY_MAIN = join(ROOT, 'dist', 'gateway', 'main.js');
/** An optional second gateway measured beside the first (same table, backend and rounds). */
const GATEWAY_B = ((): { main: string; nodeArgs: string[]; label: string } | null => {
  const mainB = argv['gateway-b-main'] ?? process.env.BENCH_GATEWAY_B_MAIN;
  const argsB = argv['gateway-b-node-args'] ?? process.env.BENCH_GATEWAY_B_NODE_ARGS;
  if (!mainB && argsB === undefined) return null;
  const nodeArgs = (argsB ?? '').split(/\s+/).filter(Boolean);
  return { main: mainB ?? GATEWAY_MAIN, nodeArgs, label: [mainB ? mainB : 'same build', nodeArgs.length ? nodeArgs.join(' ') : ''].filter(Boolean).join(', ') };
})();
const NS = 'bench';
const MEASURED = 'measured';
const HEADER_SDEP = 'measured-b';
const SHADOWED = 'shadowed';
const BODY = '{"data":{"names":["a","b","c","d"],"ndarray":[[5.1,3.5,1.4,0.2]]}}';
const BACKEND_BODY = '{"data":{"names":["t:0","t:1"],"ndarray":[[0.1,0.9]]},"meta":{"requestPath":{"model":"bench:1"}}}';

function findRoot(from: string): string {
  let dir = from;
  for (;;) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'node_modules'))) return dir;
    const up = dirname(dir);
    if (up === dir) throw new Error(`no package.json with node_modules above ${from}`);
    dir = up;
  }
}

// ---------------------------------------------------------------------------------------------
// Child processes: every one is tracked and stopped on the way out, whatever the way out is.

const children = new Set<ChildProcess>();
let tmp = '';
let cleaning: Promise<never> | null = null;
let signalled = false;

function which(cmd: string): string | null {
  for (const dir of (process.env.PATH ?? '').split(':').concat(['/usr/sbin', '/sbin'])) {
    const p = join(dir, cmd);
    try {
      if (statSync(p).isFile()) return p;
    } catch {
      /* not here */
    }
  }
  return null;
}

function killTree(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  const pids = signal === 'SIGKILL' ? [...descendants(child.pid).reverse(), child.pid] : [child.pid];
  for (const pid of pids) {
    try {
      process.kill(pid, signal);
    } catch {
      /* already gone */
    }
  }
}

async function stopAll(): Promise<void> {
  const live = [...children].filter((c) => c.exitCode === null && c.signalCode === null);
  // nginx masters take their workers down on SIGTERM (fast shutdown); a node server drains.
  const orphans = live.flatMap((c) => (c.pid ? descendants(c.pid) : []));
  for (const c of live) killTree(c, 'SIGTERM');
  const deadline = Date.now() + 3000;
  while (Date.now() < deadline && live.some((c) => c.exitCode === null && c.signalCode === null)) await sleep(50);
  for (const c of live) killTree(c, 'SIGKILL');
  for (const pid of orphans) {
    try {
      process.kill(pid, 0);
      process.kill(pid, 'SIGKILL');
    } catch {
      /* exited with its parent, as it should */
    }
  }
}

/** Stop every child, remove the temporary directory, exit: once, whoever asks first sets the code. */
function cleanup(code: number): Promise<never> {
  cleaning ??= (async () => {
    await stopAll().catch(() => undefined);
    if (tmp && !argv.keep) rmSync(tmp, { recursive: true, force: true });
    else if (tmp) process.stderr.write(`kept ${tmp}\n`);
    process.exit(code);
  })();
  return cleaning;
}

process.on('exit', () => {
  // Last resort (process.exit from elsewhere): synchronous SIGKILL of anything still running.
  for (const c of children) killTree(c, 'SIGKILL');
});
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.once(sig, () => {
    signalled = true;
    process.stderr.write(`\n${sig}: stopping children\n`);
    void cleanup(130);
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Spawned {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly log: string;
  readonly exited: Promise<number | null>;
}

/** Start a long-lived server child pinned to `cpu`, output to a log file in tmp. */
function startServer(name: string, cpu: number, cmd: string, args: string[], env: Record<string, string> = {}): Spawned {
  const log = join(tmp, `${name}.log`);
  const fd = openSync(log, 'w');
  const child = spawn('taskset', ['-c', String(cpu), cmd, ...args], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', fd, fd],
  });
  closeSync(fd);
  children.add(child);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  child.once('error', (err) => process.stderr.write(`${name}: ${err.message}\n`));
  if (child.pid === undefined) throw new Error(`${name}: could not start ${cmd}`);
  return { child, pid: child.pid, log, exited };
}

function outputOf(s: Spawned): string {
  try {
    return readFileSync(s.log, 'utf8');
  } catch {
    return '';
  }
}

/** Run a bounded command to completion (load generators), with a hard timeout. */
function runToEnd(cmd: string, args: string[], timeoutMs: number, env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(child);
    let stdout = '';
    let stderr = '';
    child.stdout!.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr!.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    const timer = setTimeout(() => {
      stderr += `\n(killed after ${timeoutMs} ms)`;
      killTree(child, 'SIGKILL');
    }, timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      children.delete(child);
      reject(err);
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      children.delete(child);
      resolve({ code, stdout, stderr });
    });
  });
}

/** node arguments that run load/<name>.ts (transpiled in memory, imports resolved from the repo root) or a compiled <name>.js. */
function nodeScript(name: string): string[] {
  const tsPath = join(HERE, `${name}.ts`);
  if (existsSync(tsPath)) {
    const out = ts.transpileModule(readFileSync(tsPath, 'utf8'), {
      compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022, verbatimModuleSyntax: false },
      fileName: tsPath,
    });
    // --eval code resolves bare imports from the working directory: the runner spawns in ROOT.
    return ['--input-type=module', '--eval', out.outputText];
  }
  const jsPath = join(HERE, `${name}.js`);
  if (existsSync(jsPath)) return [jsPath];
  throw new Error(`missing helper ${name}.ts/.js beside ${HERE}`);
}

// ---------------------------------------------------------------------------------------------
// /proc accounting

interface Counters {
  syscr: number;
  syscw: number;
  /** Context switches, every thread: voluntary (the thread slept: a wake-up each) and not. */
  vcsw: number;
  ivcsw: number;
}

/** Read/write syscalls (/proc/<pid>/io) and context switches of a process tree. */
function treeCounters(pid: number): Counters {
  const c: Counters = { syscr: 0, syscw: 0, vcsw: 0, ivcsw: 0 };
  for (const p of [pid, ...descendants(pid)]) {
    try {
      const io = readFileSync(`/proc/${p}/io`, 'utf8');
      c.syscr += Number(/syscr: (\d+)/.exec(io)?.[1] ?? 0);
      c.syscw += Number(/syscw: (\d+)/.exec(io)?.[1] ?? 0);
      for (const tid of readdirSync(`/proc/${p}/task`)) {
        const st = readFileSync(`/proc/${p}/task/${tid}/status`, 'utf8');
        c.vcsw += Number(/^voluntary_ctxt_switches:\s+(\d+)/m.exec(st)?.[1] ?? 0);
        c.ivcsw += Number(/^nonvoluntary_ctxt_switches:\s+(\d+)/m.exec(st)?.[1] ?? 0);
      }
    } catch {
      /* gone */
    }
  }
  return c;
}

interface MachineTicks {
  /** user+nice+system of all CPUs (/proc/stat). */
  busy: number;
  steal: number;
  /** This runner and everything it started, reaped load generators included. */
  ours: number;
  /** Kernel threads (softirq work, kworkers): not "someone else's load". */
  kernel: number;
}

function machineTicks(): MachineTicks {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal
  const ours = new Set([process.pid, ...descendants(process.pid)]);
  let own = 0;
  let kernel = 0;
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const pid = Number(name);
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (ours.has(pid)) own += Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]);
      else if (Number(f[6]) & 0x00200000 || Number(f[1]) === 2 || pid === 2) kernel += Number(f[11]) + Number(f[12]); // PF_KTHREAD
    } catch {
      /* gone */
    }
  }
  return { busy: line[0]! + line[1]! + line[2]!, steal: line[7] ?? 0, ours: own, kernel };
}

/**
 * CPU used between two snapshots by processes this runner did not start (other people's builds,
 * tests, benchmarks), as a percentage of the whole machine: all user+system time minus ours minus
 * kernel threads. A noise indicator, not an exact account.
 */
function foreignPct(a: MachineTicks, b: MachineTicks, seconds: number): number {
  const ticks = b.busy - a.busy - (b.ours - a.ours) - (b.kernel - a.kernel);
  return Math.max(0, (100 * ticks) / CLK_TCK / Math.max(1e-3, seconds) / cpus().length);
}

let quietWaitedMs = 0;
const QUIET_PCT = 10;
const QUIET_BUDGET_MS = num(undefined, 'BENCH_QUIET_BUDGET', 60) * 1000;

/** Before a run: if other processes keep the machine busy, wait (bounded: QUIET_BUDGET_MS over the whole run) for them to calm down. */
async function awaitQuiet(): Promise<void> {
  let warned = false;
  while (quietWaitedMs < QUIET_BUDGET_MS) {
    const a = machineTicks();
    await sleep(500);
    const pct = foreignPct(a, machineTicks(), 0.5);
    if (pct < QUIET_PCT) return;
    if (!warned) process.stdout.write(`  (other processes use ${pct.toFixed(0)}% of the machine: waiting for quiet, budget left ${((QUIET_BUDGET_MS - quietWaitedMs) / 1000).toFixed(0)} s)\n`);
    warned = true;
    quietWaitedMs += 500;
    await sleep(500);
    quietWaitedMs += 500;
  }
}

// ---------------------------------------------------------------------------------------------
// Servers

const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
  });

async function httpStatus(url: string, init: RequestInit = {}): Promise<number> {
  try {
    const res = await fetch(url, { ...init, signal: AbortSignal.timeout(2000) });
    await res.arrayBuffer();
    return res.status;
  } catch {
    return 0;
  }
}

async function waitFor(what: string, server: Spawned, probe: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (server.child.exitCode !== null || server.child.signalCode !== null) throw new Error(`${what} exited early:\n${outputOf(server).slice(-3000)}`);
    if (await probe()) return;
    await sleep(100);
  }
  throw new Error(`${what} not ready after ${timeoutMs} ms:\n${outputOf(server).slice(-3000)}`);
}

const post = (url: string, headers: Record<string, string> = {}): Promise<number> =>
  httpStatus(url, { method: 'POST', body: BODY, headers: { 'content-type': 'application/json', ...headers } });

function nginxConf(name: string, port: number, inner: string, upstreamBlock = ''): string {
  const dir = join(tmp, name);
  mkdirSync(dir, { recursive: true });
  const conf = join(dir, 'nginx.conf');
  writeFileSync(
    conf,
    `# generated by load/rest-bench.ts
worker_processes 1;
daemon off;
master_process on;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 8192; }
http {
  access_log off;
  server_tokens off;
  keepalive_timeout 300s;
  keepalive_requests 10000000;
  client_body_temp_path ${dir}/client_body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
${upstreamBlock}
  server {
    listen 127.0.0.1:${port} backlog=4096;
${inner}
  }
}
`,
  );
  return conf;
}

async function startNginx(name: string, cpu: number, conf: string, probeUrl: string): Promise<Spawned> {
  const s = startServer(name, cpu, which('nginx')!, ['-p', `${dirname(conf)}/`, '-c', conf, '-e', join(dirname(conf), 'error.log')]);
  await waitFor(name, s, async () => (await post(probeUrl)) === 200);
  return s;
}

// ---------------------------------------------------------------------------------------------
// The gateway's table: DEPLOYMENTS SeldonDeployments, most of them never called (they make the
// table realistic: canaries, shadows, header routes, explainers across 50 namespaces).

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

function generateManifests(dir: string): number {
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
  ];
  for (let i = 0; all.length < DEPLOYMENTS; i++) {
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

interface RoutesJson {
  deployments: { namespace: string; name: string; state: string; reasons: unknown[]; routes: { kind: string; match: { headers: unknown[]; prefix?: string }; members: { upstream: string; percent: number; predictor: string; deployment: string }[]; mirrors: { upstream: string }[] }[] }[];
}

/** Ask the gateway's own `routes --json` which REST upstreams the table dials, to --resolve them all. */
function restUpstreams(manifests: string): { upstreams: string[]; routes: RoutesJson } {
  let text: string;
  try {
    text = execFileSync(process.execPath, [GATEWAY_MAIN, 'routes', '-f', manifests, '--json'], { cwd: ROOT, encoding: 'utf8', maxBuffer: 256 << 20 });
  } catch (err) {
    // Exit code 1 = some deployment rejected: still print the table.
    const e = err as { stdout?: string; status?: number };
    if (e.status !== 1 || !e.stdout) throw err;
    text = e.stdout;
  }
  const routes = JSON.parse(text) as RoutesJson;
  const ups = new Set<string>();
  for (const d of routes.deployments)
    for (const r of d.routes) {
      if (r.kind !== 'rest') continue;
      for (const m of r.members) ups.add(m.upstream);
      for (const m of r.mirrors) ups.add(m.upstream);
    }
  return { upstreams: [...ups], routes };
}

interface Gateway {
  readonly server: Spawned;
  readonly port: number;
  readonly admin: number;
}

async function startGateway(
  name: string,
  manifests: string,
  upstreams: string[],
  backendPort: number,
  extraNodeArgs: string[] = [],
  main = GATEWAY_MAIN,
  nodeArgs = GATEWAY_NODE_ARGS,
): Promise<Gateway> {
  const [port, admin] = [await freePort(), await freePort()];
  const args = [
    ...nodeArgs,
    ...extraNodeArgs,
    main,
    'serve',
    '--manifests',
    manifests,
    '--port',
    String(port),
    '--admin-port',
    String(admin),
    '--host',
    '127.0.0.1',
    '--workers',
    '1',
    '--log-level',
    'warn',
    '--grace-period',
    '1s',
  ];
  for (const u of upstreams) args.push('--resolve', `${u}=127.0.0.1:${backendPort}`);
  const server = startServer(name, SERVER_CPU, process.execPath, args);
  await waitFor(name, server, async () => (await httpStatus(`http://127.0.0.1:${admin}/readyz`)) === 200, 60_000);
  return { server, port, admin };
}

async function metricsText(admin: number): Promise<string> {
  try {
    const res = await fetch(`http://127.0.0.1:${admin}/metrics`, { signal: AbortSignal.timeout(5000) });
    return await res.text();
  } catch {
    return '';
  }
}

/** Sum of a counter's samples whose labels include every `want` pair. */
function counter(text: string, metric: string, want: Record<string, string>): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(metric + '{')) continue;
    const labels = line.slice(metric.length + 1, line.lastIndexOf('}'));
    if (Object.entries(want).every(([k, v]) => labels.includes(`${k}="${v}"`))) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

// ---------------------------------------------------------------------------------------------
// Load generators

interface LoadResult {
  completed: number;
  seconds: number;
  rps: number;
  non2xx: number;
  socketErrors: number;
  errorDetail: string;
  p50us: number;
  p99us: number;
}

let WRK: string | null = null;
let wrkScript = '';

function writeWrkScript(): string {
  const p = join(tmp, 'post.lua');
  writeFileSync(
    p,
    `-- generated by load/rest-bench.ts
wrk.method = "POST"
wrk.body = '${BODY}'
wrk.headers["Content-Type"] = "application/json"
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('\\nBENCH_JSON {"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,"p50":%d,"p99":%d}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout, latency:percentile(50), latency:percentile(99)))
end
`,
  );
  return p;
}

async function closedLoop(url: string, conns: number, seconds: number): Promise<LoadResult> {
  const bound = (seconds + 20) * 1000;
  if (WRK) {
    const r = await runToEnd('taskset', ['-c', String(LOAD_CPU), WRK, '-t1', `-c${conns}`, `-d${seconds}s`, '--timeout', '5s', '-s', wrkScript, url], bound);
    const line = r.stdout.split('\n').find((l) => l.startsWith('BENCH_JSON '));
    if (!line) throw new Error(`wrk failed (${r.code}): ${r.stdout}\n${r.stderr}`);
    const j = JSON.parse(line.slice(11)) as Record<string, number>;
    const secs = j.duration_us! / 1e6;
    return {
      completed: j.requests!,
      seconds: secs,
      rps: j.requests! / secs,
      // wrk counts an HTTP error for a status >= 400 (it has no separate non-2xx counter).
      non2xx: j.status!,
      socketErrors: j.connect! + j.read! + j.write! + j.timeout!,
      errorDetail: j.connect! + j.read! + j.write! + j.timeout! ? `connect ${j.connect} read ${j.read} write ${j.write} timeout ${j.timeout}` : '',
      p50us: j.p50!,
      p99us: j.p99!,
    };
  }
  const ac = join(ROOT, 'node_modules', 'autocannon', 'autocannon.js');
  const r = await runToEnd(
    'taskset',
    ['-c', String(LOAD_CPU), process.execPath, ac, '-c', String(conns), '-d', String(seconds), '-m', 'POST', '-H', 'content-type=application/json', '-b', BODY, '-t', '5', '--json', url],
    bound,
  );
  const j = JSON.parse(r.stdout.trim().split('\n').pop() ?? 'null') as {
    requests: { total: number };
    duration: number;
    non2xx: number;
    errors: number;
    timeouts: number;
    latency: { p50: number; p99: number };
  } | null;
  if (!j) throw new Error(`autocannon failed (${r.code}): ${r.stderr}`);
  return {
    completed: j.requests.total,
    seconds: j.duration,
    rps: j.requests.total / j.duration,
    non2xx: j.non2xx,
    socketErrors: j.errors,
    errorDetail: j.errors ? `errors ${j.errors} (timeouts ${j.timeouts})` : '',
    p50us: j.latency.p50 * 1000,
    p99us: j.latency.p99 * 1000,
  };
}

async function fixedRate(url: string): Promise<RateResult> {
  const config: RateConfig = {
    url,
    method: 'POST',
    body: BODY,
    headers: { 'content-type': 'application/json' },
    rate: RATE,
    durationMs: RATE_DURATION_S * 1000,
    warmupMs: RATE_WARMUP_MS,
    connections: 32,
    maxInFlight: 256,
    timeoutMs: 5000,
  };
  const r = await runToEnd('taskset', ['-c', String(LOAD_CPU), process.execPath, ...nodeScript('rest-bench-rate')], RATE_DURATION_S * 1000 + 30_000, {
    BENCH_RATE_CONFIG: JSON.stringify(config),
  });
  const line = r.stdout.split('\n').find((l) => l.startsWith('BENCH_JSON '));
  if (!line) throw new Error(`rate generator failed (${r.code}): ${r.stdout}\n${r.stderr}`);
  return JSON.parse(line.slice(11)) as RateResult;
}

// ---------------------------------------------------------------------------------------------
// Measurement

interface Target {
  readonly key: string;
  readonly label: string;
  readonly url: string;
  /** The process tree whose CPU is "the proxy"; null for direct. */
  readonly proxyPid: number | null;
}

interface Sample {
  rps: number;
  completed: number;
  proxyUsPerReq: number | null;
  backendUsPerReq: number;
  non2xx: number;
  socketErrors: number;
  errorDetail: string;
  p50us: number;
  p99us: number;
  otherPct: number;
  stealPct: number;
  /** Per handled request, for the proxy (or the backend for direct): read and write syscalls, voluntary context switches. */
  perReq: { syscr: number; syscw: number; vcsw: number; ivcsw: number };
}

let backendPid = 0;

/**
 * Run one load generator against `target` and account the CPU the proxy and the backend spent
 * meanwhile, per request they handled (`handled`: every completed request, warm-up included).
 */
async function measure<T>(
  target: Target,
  run: () => Promise<T>,
  handled: (r: T) => number,
): Promise<{ result: T; proxyUsPerReq: number | null; backendUsPerReq: number; otherPct: number; stealPct: number; perReq: Sample['perReq'] }> {
  await awaitQuiet();
  const counted = target.proxyPid ?? backendPid;
  const c0 = treeCounters(counted);
  const p0 = target.proxyPid ? treeSeconds(target.proxyPid) : 0;
  const b0 = treeSeconds(backendPid);
  const m0 = machineTicks();
  const t0 = performance.now();
  const result = await run();
  const wall = (performance.now() - t0) / 1000;
  const p1 = target.proxyPid ? treeSeconds(target.proxyPid) : 0;
  const b1 = treeSeconds(backendPid);
  const m1 = machineTicks();
  const c1 = treeCounters(counted);
  const n = Math.max(1, handled(result));
  return {
    perReq: { syscr: (c1.syscr - c0.syscr) / n, syscw: (c1.syscw - c0.syscw) / n, vcsw: (c1.vcsw - c0.vcsw) / n, ivcsw: (c1.ivcsw - c0.ivcsw) / n },
    result,
    proxyUsPerReq: target.proxyPid ? ((p1 - p0) * 1e6) / n : null,
    backendUsPerReq: ((b1 - b0) * 1e6) / n,
    otherPct: foreignPct(m0, m1, wall),
    stealPct: (100 * (m1.steal - m0.steal)) / CLK_TCK / wall / cpus().length,
  };
}

const median = (xs: number[]): number => {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

/** Which gateway was measured: the newest file time under its dist folder, and the git HEAD of the checkout. */
function buildInfo(main: string): string {
  const dir = dirname(main);
  let newest = 0;
  for (const sub of [dir, join(dir, '..', 'routing'), join(dir, '..', 'source')]) {
    try {
      for (const f of readdirSync(sub)) if (f.endsWith('.js')) newest = Math.max(newest, statSync(join(sub, f)).mtimeMs);
    } catch {
      /* absent */
    }
  }
  let head = '';
  try {
    const git = (...args: string[]): string => execFileSync('git', ['-C', join(dir, '..', '..'), ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    head = git('log', '-1', '--format=%h');
    if (git('status', '--porcelain', '--untracked-files=no', '--', 'gateway', 'routing', 'source')) head += ' + uncommitted changes';
  } catch {
    /* not a checkout */
  }
  return `${main} (built ${newest ? new Date(newest).toISOString() : '?'}${head ? `, sources at ${head}` : ''})`;
}

// ---------------------------------------------------------------------------------------------
// Formatting

const f0 = (n: number | null | undefined): string => (n === null || n === undefined || !Number.isFinite(n) ? '–' : Math.round(n).toLocaleString('en-US'));
const f1 = (n: number | null | undefined): string => (n === null || n === undefined || !Number.isFinite(n) ? '–' : n.toFixed(1));
const f2 = (n: number | null | undefined): string => (n === null || n === undefined || !Number.isFinite(n) ? '–' : n.toFixed(2));
const ms = (us: number | null | undefined): string => (us === null || us === undefined || !Number.isFinite(us) ? '–' : (us / 1000).toFixed(2));

function table(head: string[], rows: string[][]): string {
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string => '| ' + cells.map((c, i) => (i === 0 ? c.padEnd(w[i]!) : c.padStart(w[i]!))).join(' | ') + ' |';
  return [line(head), '|' + w.map((n, i) => (i === 0 ? ':' : '') + '-'.repeat(n + 1) + (i === 0 ? '' : ':')).join('|') + '|', ...rows.map(line)].join('\n');
}

const log = (s: string): void => void process.stdout.write(s + '\n');
const sys = (s: Sample): string => `r/w/sleep ${f1(s.perReq.syscr)}/${f1(s.perReq.syscw)}/${f1(s.perReq.vcsw)} per req`;

// ---------------------------------------------------------------------------------------------
// Main

async function main(): Promise<void> {
  // The runner (and everything it spawns without an explicit taskset) stays on the load core.
  try {
    execFileSync('taskset', ['-a', '-p', '-c', String(LOAD_CPU), String(process.pid)], { stdio: 'ignore' });
  } catch {
    /* best effort */
  }
  if (argv.build) execFileSync('npm', ['run', 'build'], { cwd: ROOT, stdio: 'inherit' });
  if (!existsSync(GATEWAY_MAIN)) throw new Error(`${GATEWAY_MAIN} is missing: run 'npm run build' first (or pass --build)`);
  tmp = mkdtempSync(join(tmpdir(), 'rest-bench-'));

  const notes: string[] = [];
  const nginx = which('nginx');
  WRK = argv.autocannon ? null : which('wrk');
  if (WRK) wrkScript = writeWrkScript();
  else notes.push('wrk not installed (apt-get install -y wrk): closed-loop runs use autocannon, a node process that may saturate its core before nginx does.');
  if (!nginx) notes.push('nginx not installed (apt-get install -y nginx): no nginx row and no "vs nginx" ratio; the backend is the node:http one.');
  const useNginxBackend = !!nginx && !argv['node-backend'];

  const cores = cpus().length;
  if (Math.max(LOAD_CPU, SERVER_CPU, BACKEND_CPU) >= cores) throw new Error(`only ${cores} cores: --load-cpu/--server-cpu/--backend-cpu must be < ${cores}`);

  // Backend.
  const probePath = `/seldon/${NS}/${MEASURED}/api/v1.0/predictions`;
  const startBackend = async (name: string, cpu: number): Promise<{ server: Spawned; port: number }> => {
    const port = await freePort();
    if (useNginxBackend) {
      const conf = nginxConf(name, port, `    default_type application/json;\n    location / { return 200 '${BACKEND_BODY}'; }`);
      return { server: await startNginx(name, cpu, conf, `http://127.0.0.1:${port}${probePath}`), port };
    }
    const server = startServer(name, cpu, process.execPath, nodeScript('rest-bench-backend'), { BENCH_PORT: String(port) });
    await waitFor(name, server, async () => (await post(`http://127.0.0.1:${port}${probePath}`)) === 200);
    return { server, port };
  };
  const { server: backend, port: backendPort } = await startBackend('backend', BACKEND_CPU);
  backendPid = backend.pid;

  const targets: Target[] = [];
  if (TARGETS.has('direct')) targets.push({ key: 'direct', label: `direct (${useNginxBackend ? 'nginx' : 'node:http'} backend)`, url: `http://127.0.0.1:${backendPort}${probePath}`, proxyPid: null });

  // nginx proxy.
  if (nginx && TARGETS.has('nginx')) {
    const port = await freePort();
    const conf = nginxConf(
      'proxy-nginx',
      port,
      `    location / {\n      proxy_pass http://bench_backend;\n      proxy_http_version 1.1;\n      proxy_set_header Connection "";\n    }`,
      `  upstream bench_backend {\n    server 127.0.0.1:${backendPort};\n    keepalive 64;\n    keepalive_requests 10000000;\n    keepalive_timeout 300s;\n  }`,
    );
    const s = await startNginx('proxy-nginx', SERVER_CPU, conf, `http://127.0.0.1:${port}${probePath}`);
    targets.push({ key: 'nginx', label: 'nginx proxy (1 worker, keepalive 64)', url: `http://127.0.0.1:${port}${probePath}`, proxyPid: s.pid });
  }

  // Stock @fastify/http-proxy.
  if (TARGETS.has('stock')) {
    const port = await freePort();
    const s = startServer('stock-proxy', SERVER_CPU, process.execPath, nodeScript('rest-bench-stock-proxy'), {
      BENCH_PORT: String(port),
      BENCH_UPSTREAM: `http://127.0.0.1:${backendPort}`,
    });
    await waitFor('stock proxy', s, async () => (await post(`http://127.0.0.1:${port}${probePath}`)) === 200);
    targets.push({ key: 'stock', label: 'stock @fastify/http-proxy', url: `http://127.0.0.1:${port}${probePath}`, proxyPid: s.pid });
  }

  // The gateway.
  const manifests = join(tmp, 'manifests');
  let gateway: Gateway | null = null;
  let upstreams: string[] = [];
  let tableNote = '';
  if (TARGETS.has('gateway') || TARGETS.has('shadow') || PROFILE_S > 0) {
    const count = generateManifests(manifests);
    const t = restUpstreams(manifests);
    upstreams = t.upstreams;
    const states = new Map<string, number>();
    for (const d of t.routes.deployments) states.set(d.state, (states.get(d.state) ?? 0) + 1);
    const measured = t.routes.deployments.filter((d) => d.namespace === NS && (d.name === MEASURED || d.name === HEADER_SDEP)).flatMap((d) => d.routes.filter((r) => r.kind === 'rest'));
    tableNote =
      `gateway table: ${count} SeldonDeployments (${[...states].map(([s, n]) => `${n} ${s}`).join(', ')}), ${upstreams.length} REST upstreams, all --resolve'd to the backend; ` +
      `measured routes: ` +
      measured.map((r) => `${r.match.prefix}${r.match.headers.length ? ' ' + JSON.stringify(r.match.headers) : ''} → ${r.members.map((m) => `${m.predictor} ${m.percent}%`).join(' / ')}`).join('; ');
    gateway = await startGateway('gateway', manifests, upstreams, backendPort);
    for (const [path, headers, what] of [
      [probePath, {}, 'measured'],
      [probePath, { 'x-variant': 'b' }, 'header route'],
      [`/seldon/${NS}/${SHADOWED}/api/v1.0/predictions`, {}, 'shadowed'],
    ] as const) {
      const status = await post(`http://127.0.0.1:${gateway.port}${path}`, headers);
      if (status !== 200) throw new Error(`gateway answered ${status} for the ${what} deployment (${path}):\n${outputOf(gateway.server).slice(-3000)}`);
    }
    if (TARGETS.has('gateway')) targets.push({ key: 'gateway', label: 'gateway (90/10 canary + header rule)', url: `http://127.0.0.1:${gateway.port}${probePath}`, proxyPid: gateway.server.pid });
    if (TARGETS.has('shadow'))
      targets.push({ key: 'shadow', label: 'gateway, 100% shadow', url: `http://127.0.0.1:${gateway.port}/seldon/${NS}/${SHADOWED}/api/v1.0/predictions`, proxyPid: gateway.server.pid });
    if (GATEWAY_B) {
      // A second gateway, same table and backend, other build and/or node flags: an A/B in one run.
      const b = await startGateway('gateway-b', manifests, upstreams, backendPort, [], GATEWAY_B.main, GATEWAY_B.nodeArgs);
      const status = await post(`http://127.0.0.1:${b.port}${probePath}`);
      if (status !== 200) throw new Error(`gateway B answered ${status}:\n${outputOf(b.server).slice(-3000)}`);
      targets.push({ key: 'gateway-b', label: `gateway B (${GATEWAY_B.label})`, url: `http://127.0.0.1:${b.port}${probePath}`, proxyPid: b.server.pid });
    }
  }

  const arrangement =
    BACKEND_CPU === SERVER_CPU
      ? `load generator on core ${LOAD_CPU}; proxy under test AND backend on core ${SERVER_CPU} (the proxy→backend hop is a same-core wake-up, and the load core stays the load generator's alone; requests/s is therefore the proxy's and the backend's cost together: see the backend µs/req column)`
      : `load generator on core ${LOAD_CPU}; proxy under test on core ${SERVER_CPU}; backend on core ${BACKEND_CPU}`;
  log(`# rest-bench ${new Date().toISOString()}  node ${process.version}, ${cores} cores, CLK_TCK ${CLK_TCK}`);
  log(`closed loop: ${WRK ? 'wrk -t1' : 'autocannon'}, ${DURATION_S}s per run at ${CONNS.join(' and ')} connections; fixed rate: ${RATE} req/s open loop for ${RATE_DURATION_S}s (after ${RATE_WARMUP_MS / 1000}s warm-up), 32 connections, ≤256 in flight; ${ROUNDS} interleaved rounds, medians`);
  log(`pinning: ${arrangement}`);
  log(`gateway build: ${buildInfo(GATEWAY_MAIN)}${GATEWAY_B && GATEWAY_B.main !== GATEWAY_MAIN ? `; gateway B: ${buildInfo(GATEWAY_B.main)}` : ''}`);
  log(`backend: ${useNginxBackend ? 'nginx 1 worker, return 200' : 'node:http'} with a ${BACKEND_BODY.length}-byte JSON body; request: POST ${BODY.length}-byte JSON`);
  if (tableNote) log(tableNote);
  if (GATEWAY_NODE_ARGS.length) log(`gateway node flags: ${GATEWAY_NODE_ARGS.join(' ')}`);
  for (const n of notes) log(`note: ${n}`);
  log('');

  // Warm-up: JIT, connection pools.
  for (const t of targets) await closedLoop(t.url, Math.max(...CONNS), WARMUP_S);

  const closed = new Map<string, Sample[]>(); // key `${target}@${conns}`
  const rate = new Map<string, (Sample & { rr: RateResult })[]>();
  const push = <T>(m: Map<string, T[]>, k: string, v: T): void => void m.set(k, [...(m.get(k) ?? []), v]);
  const metrics0 = gateway ? await metricsText(gateway.admin) : '';

  for (let round = 0; round < ROUNDS; round++) {
    const order = targets.map((_, i) => targets[(i + round) % targets.length]!);
    for (const conns of CONNS) {
      for (const t of order) {
        const m = await measure(t, () => closedLoop(t.url, conns, DURATION_S), (r) => r.completed);
        const s: Sample = { ...m.result, proxyUsPerReq: m.proxyUsPerReq, backendUsPerReq: m.backendUsPerReq, otherPct: m.otherPct, stealPct: m.stealPct, perReq: m.perReq };
        push(closed, `${t.key}@${conns}`, s);
        log(
          `round ${round + 1} c=${String(conns).padStart(3)} ${t.key.padEnd(9)} ${f0(s.rps).padStart(7)} req/s  proxy ${f1(s.proxyUsPerReq).padStart(5)} µs/req  backend ${f1(s.backendUsPerReq).padStart(5)} µs/req  p99 ${ms(s.p99us)} ms  non-2xx ${s.non2xx}  sock-err ${s.socketErrors}${s.errorDetail ? ` (${s.errorDetail})` : ''}  ${sys(s)}  other ${f0(s.otherPct)}%${s.rps < 100 ? '  STALLED: the server answered (almost) nothing in this run' : ''}`,
        );
      }
    }
    for (const t of order) {
      if (t.key === 'shadow') continue;
      const m = await measure(t, () => fixedRate(t.url), (r) => r.completedTotal);
      const rr = m.result;
      const s = {
        rps: rr.achievedRate,
        completed: rr.completed,
        proxyUsPerReq: m.proxyUsPerReq,
        backendUsPerReq: m.backendUsPerReq,
        non2xx: rr.non2xx,
        socketErrors: rr.errors,
        errorDetail: Object.entries(rr.errorCodes)
          .map(([k, v]) => `${k} ${v}`)
          .join(', '),
        p50us: rr.latencyUs.p50,
        p99us: rr.latencyUs.p99,
        otherPct: m.otherPct,
        stealPct: m.stealPct,
        perReq: m.perReq,
        rr,
      };
      push(rate, t.key, s);
      log(
        `round ${round + 1} ${RATE}/s  ${t.key.padEnd(9)} p50 ${ms(rr.latencyUs.p50)} p99 ${ms(rr.latencyUs.p99)} p99.9 ${ms(rr.latencyUs.p999)} max ${ms(rr.latencyUs.max)} ms  proxy ${f1(s.proxyUsPerReq)} µs/req  ${rr.completed}/${rr.scheduled} done, skipped ${rr.skipped}, non-2xx ${rr.non2xx}, errors ${rr.errors}${s.errorDetail ? ` (${s.errorDetail})` : ''}, send lag p99 ${ms(rr.sendLagUs.p99)} max ${ms(rr.sendLagUs.max)} ms  ${sys(s)}  other ${f0(s.otherPct)}%`,
      );
    }
  }

  // ----- The table.
  // Medians over the runs no other process disturbed (foreign load < QUIET_PCT); when every run
  // of a cell was disturbed, over all of them, and the cell is marked '*'.
  const clean = (xs: Sample[] | undefined): Sample[] => {
    const quiet = (xs ?? []).filter((s) => s.otherPct < QUIET_PCT);
    return quiet.length ? quiet : (xs ?? []);
  };
  const noisy = (xs: Sample[] | undefined): boolean => (xs ?? []).length > 0 && (xs ?? []).every((s) => s.otherPct >= QUIET_PCT);
  const med = (xs: Sample[] | undefined, f: (s: Sample) => number | null): number | null => {
    const v = clean(xs).map(f).filter((x): x is number => x !== null && Number.isFinite(x));
    return v.length ? median(v) : null;
  };
  const mark = (xs: Sample[] | undefined, text: string): string => (noisy(xs) ? text + '*' : text);
  const sum = (xs: Sample[] | undefined, f: (s: Sample) => number): number => (xs ?? []).reduce((a, s) => a + f(s), 0);
  const head = ['target', ...CONNS.flatMap((c) => [`req/s @${c}`, `proxy CPU µs/req @${c}`]), `p50 ms @${RATE}/s`, `p99 ms @${RATE}/s`, `proxy CPU µs/req @${RATE}/s`, 'backend µs/req', 'non-2xx', 'socket errors', 'other load % med/max'];
  const rows = targets.map((t) => {
    const allSamples = [...CONNS.flatMap((c) => closed.get(`${t.key}@${c}`) ?? []), ...(rate.get(t.key) ?? [])];
    const r = rate.get(t.key);
    return [
      t.label,
      ...CONNS.flatMap((c) => {
        const xs = closed.get(`${t.key}@${c}`);
        return [mark(xs, f0(med(xs, (s) => s.rps))), mark(xs, f1(med(xs, (s) => s.proxyUsPerReq)))];
      }),
      r ? mark(r, ms(med(r, (s) => s.p50us))) : '–',
      r ? mark(r, ms(med(r, (s) => s.p99us))) : '–',
      r ? mark(r, f1(med(r, (s) => s.proxyUsPerReq))) : '–',
      f1(med(closed.get(`${t.key}@${CONNS[0]}`), (s) => s.backendUsPerReq)),
      String(sum(allSamples, (s) => s.non2xx)),
      String(sum(allSamples, (s) => s.socketErrors)),
      `${f0(med(allSamples, (s) => s.otherPct))}/${f0(Math.max(...allSamples.map((s) => s.otherPct)))}`,
    ];
  });
  log('');
  log(
    `## Results (median of ${ROUNDS} rounds, over the runs with < ${QUIET_PCT}% foreign load when there are any; * = every run of that cell was disturbed; non-2xx and socket errors summed over all runs)`,
  );
  log('');
  log(table(head, rows));

  // ----- Where the CPU goes, outside JavaScript: syscalls and sleeps per request.
  const diagHead = ['target (proxy process; direct: backend)', ...[...CONNS.map((c) => `@${c}`), `@${RATE}/s`].map((c) => `reads / writes / sleeps per req ${c}`)];
  const diag = (xs: Sample[] | undefined): string => {
    if (!xs?.length) return '–';
    return `${f2(med(xs, (s) => s.perReq.syscr))} / ${f2(med(xs, (s) => s.perReq.syscw))} / ${f2(med(xs, (s) => s.perReq.vcsw))}`;
  };
  log('');
  log('Syscalls and sleeps per request (read-ish and write-ish syscalls from /proc/<pid>/io, voluntary context switches of every thread): a sleep is an epoll_wait that blocked, so a wake-up.');
  log('');
  log(table(diagHead, targets.map((t) => [t.label, ...CONNS.map((c) => diag(closed.get(`${t.key}@${c}`))), diag(rate.get(t.key))])));

  // ----- Ratios and targets.
  const rps = (k: string, c: number): number | null => med(closed.get(`${k}@${c}`), (s) => s.rps);
  const cpu = (k: string, c: number): number | null => med(closed.get(`${k}@${c}`), (s) => s.proxyUsPerReq);
  const p99 = (k: string): number | null => med(rate.get(k), (s) => s.p99us);
  const p50 = (k: string): number | null => med(rate.get(k), (s) => s.p50us);
  const ratio = (a: number | null, b: number | null): string => (a !== null && b !== null && b > 0 ? `${(a / b).toFixed(2)}x` : '–');
  const ratioRows: string[][] = [];
  for (const k of ['gateway', 'gateway-b', 'shadow', 'stock', 'nginx']) {
    if (!targets.some((t) => t.key === k)) continue;
    for (const base of k === 'gateway-b' ? ['gateway', 'direct', 'nginx', 'stock'] : ['direct', 'nginx', 'stock']) {
      if (base === k || !targets.some((t) => t.key === base)) continue;
      ratioRows.push([
        `${k} / ${base}`,
        ...CONNS.map((c) => ratio(rps(k, c), rps(base, c))),
        ...CONNS.map((c) => (base === 'direct' ? '–' : ratio(cpu(k, c), cpu(base, c)))),
        rate.has(k) && rate.has(base) ? `${f2(((p50(k) ?? NaN) - (p50(base) ?? NaN)) / 1000)} / ${f2(((p99(k) ?? NaN) - (p99(base) ?? NaN)) / 1000)}` : '–',
      ]);
    }
  }
  log('');
  log('## Ratios');
  log('');
  log(table(['', ...CONNS.map((c) => `req/s @${c}`), ...CONNS.map((c) => `CPU/req @${c}`), `Δ p50 / Δ p99 ms @${RATE}/s`], ratioRows));

  if (targets.some((t) => t.key === 'gateway')) {
    const checks: string[][] = [];
    const verdict = (ok: boolean | null): string => (ok === null ? 'n/a' : ok ? 'PASS' : 'FAIL');
    const cpuSat = CONNS.map((c) => cpu('gateway', c));
    const cpuRate = med(rate.get('gateway'), (s) => s.proxyUsPerReq);
    checks.push([
      'CPU per proxied request ≤ 75 µs, saturated',
      cpuSat.map((v, i) => `${f1(v)} µs @${CONNS[i]}`).join(', '),
      verdict(cpuSat.every((v) => v !== null) ? cpuSat.every((v) => v! <= 75) : null),
    ]);
    checks.push([`CPU per proxied request ≤ 75 µs, at ${RATE}/s`, `${f1(cpuRate)} µs`, verdict(cpuRate === null ? null : cpuRate <= 75)]);
    const vsNginx = CONNS.map((c) => (rps('gateway', c) ?? NaN) / (rps('nginx', c) ?? NaN));
    checks.push(['req/s ≥ 0.35x nginx', vsNginx.map((v, i) => `${Number.isFinite(v) ? v.toFixed(2) : '–'}x @${CONNS[i]}`).join(', '), verdict(vsNginx.every((v) => Number.isFinite(v)) ? vsNginx.every((v) => v >= 0.35) : null)]);
    const dp99 = p99('gateway') !== null && p99('direct') !== null ? (p99('gateway')! - p99('direct')!) / 1000 : null;
    checks.push([`p99 @${RATE}/s within 1 ms of direct`, dp99 === null ? '–' : `${ms(p99('gateway'))} vs ${ms(p99('direct'))} ms: +${dp99.toFixed(2)} ms`, verdict(dp99 === null ? null : dp99 <= 1)]);
    const shadowCost = CONNS.map((c) => 1 - (rps('shadow', c) ?? NaN) / (rps('gateway', c) ?? NaN));
    // The same cost from the gateway's CPU alone (the mirrored request also costs the backend, which shares the core).
    const shadowCpu = CONNS.map((c) => 1 - (cpu('gateway', c) ?? NaN) / (cpu('shadow', c) ?? NaN));
    checks.push([
      '100% shadow costs < 15% req/s',
      shadowCost.map((v, i) => `${Number.isFinite(v) ? (100 * v).toFixed(1) : '–'}% @${CONNS[i]}`).join(', ') +
        ` (from the gateway's CPU/req alone: ${shadowCpu.map((v, i) => `${Number.isFinite(v) ? (100 * v).toFixed(1) : '–'}% @${CONNS[i]}`).join(', ')})`,
      verdict(shadowCost.every((v) => Number.isFinite(v)) ? shadowCost.every((v) => v < 0.15) : null),
    ]);
    log('');
    log('## Targets (gateway, full routing, 1 worker)');
    log('');
    log(table(['target', 'measured', 'verdict'], checks));
  }

  // ----- Sanity: what the gateway itself counted.
  if (gateway) {
    const m1 = await metricsText(gateway.admin);
    const d = (labels: Record<string, string>): number => counter(m1, 'seldon_gateway_requests_total', labels) - counter(metrics0, 'seldon_gateway_requests_total', labels);
    const main = d({ deployment: MEASURED, predictor: 'main', kind: 'primary' });
    const canary = d({ deployment: MEASURED, predictor: 'canary', kind: 'primary' });
    const ds = (result: string): number =>
      counter(m1, 'seldon_gateway_shadow_requests_total', { deployment: SHADOWED, result }) - counter(metrics0, 'seldon_gateway_shadow_requests_total', { deployment: SHADOWED, result });
    const non200 = m1
      .split('\n')
      .filter((l) => l.startsWith('seldon_gateway_requests_total{') && !/code="2\d\d"/.test(l) && Number(l.slice(l.lastIndexOf(' ') + 1)) > 0);
    log('');
    log(
      `gateway's own counters over the rounds: ${MEASURED} main ${main} / canary ${canary} (${main + canary ? ((100 * canary) / (main + canary)).toFixed(1) : '–'}% canary); ` +
        `${SHADOWED} shadow mirrors: mirrored ${ds('mirrored')}, dropped ${ds('dropped')}, failed ${ds('failed')}` +
        (non200.length ? `; non-2xx series: ${non200.join(', ')}` : ''),
    );
    const warnings = outputOf(gateway.server).split('\n').filter((l) => l.trim());
    if (warnings.length) log(`gateway log (${warnings.length} lines at warn+), first: ${warnings.slice(0, 3).join(' | ').slice(0, 600)}`);
  }
  const allOther = [...closed.values(), ...rate.values()].flat().map((s) => s.otherPct);
  const steal = [...closed.values(), ...rate.values()].flat().map((s) => s.stealPct);
  if (Math.max(...allOther, 0) > 5)
    log(`note: other processes used up to ${f0(Math.max(...allOther))}% of the machine during some runs (median ${f0(median(allOther))}%): those runs are noisy; compare within one run only`);
  if (Math.max(...steal, 0) > 1) log(`note: hypervisor steal up to ${f0(Math.max(...steal))}% during some runs`);

  // ----- Optional CPU profile of the gateway under load.
  if (PROFILE_S > 0 && gateway) {
    const profDir = join(tmp, 'prof');
    mkdirSync(profDir, { recursive: true });
    log('');
    log(`## CPU profile: gateway under ${PROFILE_S}s of ${WRK ? 'wrk' : 'autocannon'} at ${Math.max(...CONNS)} connections (measured deployment), node --cpu-prof`);
    // V8's sampler charges wall time: a gateway preempted by the backend it just woke (same core)
    // would show that wait as self time of 'writev'. So this gateway gets core SERVER_CPU alone,
    // with a backend of its own on the load core.
    const profBackendCpu = BACKEND_CPU === SERVER_CPU ? LOAD_CPU : BACKEND_CPU;
    const profBackend = await startBackend('backend-prof', profBackendCpu);
    const prof = await startGateway('gateway-prof', manifests, upstreams, profBackend.port, ['--cpu-prof', `--cpu-prof-dir=${profDir}`]);
    log(`(gateway alone on core ${SERVER_CPU}; load generator and a backend of its own on core ${profBackendCpu})`);
    const url = `http://127.0.0.1:${prof.port}${probePath}`;
    await closedLoop(url, Math.max(...CONNS), WARMUP_S);
    await awaitQuiet();
    const before = treeSeconds(prof.server.pid);
    const r = await closedLoop(url, Math.max(...CONNS), PROFILE_S);
    const cpuUs = ((treeSeconds(prof.server.pid) - before) * 1e6) / Math.max(1, r.completed);
    const loadEnd = performance.now();
    killTree(prof.server.child, 'SIGTERM');
    const code = await Promise.race([prof.server.exited, sleep(15_000).then(() => 'timeout' as const)]);
    if (code === 'timeout') killTree(prof.server.child, 'SIGKILL');
    // The profile ends when the process exits: keep the samples of the measured load only.
    const tailUs = (performance.now() - loadEnd) * 1000;
    const file = readdirSync(profDir).find((f) => f.endsWith('.cpuprofile'));
    if (!file) log(`no .cpuprofile written (gateway exit: ${String(code)})`);
    else {
      const keep = join(tmpdir(), `rest-bench-gateway-${Date.now()}.cpuprofile`);
      copyFileSync(join(profDir, file), keep);
      log(`${f0(r.rps)} req/s while profiling, ${r.completed} requests, ${f1(cpuUs)} µs process CPU per request (all threads; profiling adds overhead); profile kept at ${keep}`);
      log(`(self time of the main thread over the ${PROFILE_S} s of load only; start-up, warm-up and shutdown samples left out)`);
      log('');
      const window = { fromEndUs: tailUs + r.seconds * 1e6, toEndUs: tailUs };
      log(formatSummary(summarise(JSON.parse(readFileSync(keep, 'utf8')) as CpuProfile, window), 30, r.completed));
    }
  }
}

main().then(
  () => cleanup(0),
  (err: unknown) => {
    // After Ctrl-C the load generator dies with the same signal: that failure is not news.
    if (!signalled) process.stderr.write(`rest-bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    void cleanup(1);
  },
);
