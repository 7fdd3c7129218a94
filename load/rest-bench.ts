/**
 * REST data-plane benchmark (not a test): one run, interleaved, comparing
 *
 *   direct   the backend itself (no proxy)
 *   nginx    nginx 1 worker, upstream keep-alive (skipped with a note when nginx is absent)
 *   stock    a static fastify + @fastify/http-proxy (load/lib/stock-proxy.ts)
 *   floor    a minimal proxy on undici; floor-gw the same on the gateway's own client
 *            (gateway/upstream/http1-client.ts); floor-http on node:http's Agent; floor-raw on a
 *            few lines of socket code that only know Content-Length answers, the least any client
 *            could cost (load/lib/floor-proxy.ts); floor-bare on raw sockets on both sides, no HTTP
 *            stack at all: what the Node runtime alone costs (load/lib/bare-proxy.ts); floors run
 *            only when --targets names them
 *   gateway  seldon-gateway, --workers 1, a 1,000-SeldonDeployment table; the measured deployment
 *            is a 90/10 canary with a header route beside it (requests carry no matching header,
 *            so every one checks the header rule and makes a weighted pick)
 *   nginx-shadow the nginx proxy mirroring every request to the backend (nginx's `mirror`)
 *   gw+shadow the gateway on a deployment whose predictor is mirrored 100% to a shadow
 *   gateway B optional second gateway (other build, node flags or node binary): an A/B test in one run
 *
 * Two presets (--preset): `nginx-backend` (the default) loads an nginx `return 200` backend at 16
 * and 64 connections, then at a fixed 2,000 req/s; `shared-core` loads a node:http backend (sharing the
 * proxy's core) with wrk at 64 connections, then at fixed rates of a quarter and a half of the
 * gateway's own saturation throughput measured in the same run (--rate-fraction).
 *
 * Per target and round: requests/s (closed loop: wrk, or autocannon when wrk is absent), then
 * p50/p99/p99.9 latency at each fixed rate (open loop, load/lib/rate-generator.ts); for each, the
 * CPU time (utime+stime from /proc, whole process tree) the proxy and the backend spent per
 * completed request, and for the gateways the stalls they counted in themselves (event-loop delay
 * and GC pauses from their /metrics, lib/runtime-stats.ts). Rounds interleave the targets; the
 * tables show medians. The load generator runs on one core, the servers on the other (see --help).
 * Other processes' load is measured per run; disturbed runs are left out of the medians when
 * undisturbed ones exist. load/README.md ("REST benchmark") has the method, results and how to
 * read them.
 *
 *   npm run build && npx vite-node load/rest-bench.ts [--preset shared-core] [--rounds 3] [--profile 8]
 *   npx vite-node load/rest-bench.ts --preset shared-core --gateway-b-node /opt/node24/bin/node   # Node 20 vs 24
 *
 * This file composes the pieces in load/lib/: children (processes, pinning, cleanup), nginx,
 * bench-table and gateway (the targets), closed-loop and fixed-rate (the load), measure and proc
 * (the accounting), rest-report (the tables), profile (--profile).
 *
 * Everything listens on and talks to 127.0.0.1 only; every load run is bounded in time and
 * count; every child process is stopped on exit, error, Ctrl-C or SIGTERM.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { BANDIT, FLOWED, FLOWED_ANNOTATION, generateManifests, HEADER_SDEP, MEASURED, NS, PLAIN, predictionPath, ROLLED_OUT, SHADOWED } from './lib/bench-table.js';
import { atCleanup, nodeScript, pinSelf, ROOT, runMain, startServer, waitFor, which, type Spawned } from './lib/children.js';
import { ClosedLoop } from './lib/closed-loop.js';
import { fixedRate } from './lib/fixed-rate.js';
import { buildInfo, GATEWAY_MAIN, metricsText, nodeVersion, restUpstreams, startGateway, type Gateway } from './lib/gateway.js';
import { freePort, postStatus } from './lib/http.js';
import { measure, type Sample, type Target } from './lib/measure.js';
import { backendConf, nginxBinary, proxyConf, startNginx } from './lib/nginx.js';
import { CLK_TCK } from './lib/proc.js';
import { profileGateway } from './lib/profile.js';
import { numberSetting, setting } from './lib/options.js';
import { QuietGate } from './lib/quiet.js';
import { f0, log, median } from './lib/report.js';
import { formatRuntimeDelta, runtimeDelta, runtimeSnapshot, type RuntimeDelta } from './lib/runtime-stats.js';
import { closedLine, gatewayCounters, printNoiseNotes, printTables, rateLine } from './lib/rest-report.js';

// ---------------------------------------------------------------------------------------------
// Options

const HELP = `Usage: npx vite-node load/rest-bench.ts [options]

  --preset NAME        nginx-backend (default): nginx return-200 backend, wrk at 16 and 64
                       connections, fixed 2,000 req/s, targets direct,nginx,stock,gateway,shadow;
                       shared-core: node:http backend on the proxy's core, wrk at 64 connections, fixed
                       rates at 0.25 and 0.5 of the gateway's saturation, 8 s each, targets
                       direct,nginx,gateway (BENCH_PRESET). Options below override the preset's.
  --rounds N           interleaved rounds; medians are reported (env BENCH_ROUNDS, default 3)
  --duration S         seconds per closed-loop run (BENCH_DURATION, default 3)
  --rate LIST          fixed rates of the latency runs, req/s (BENCH_RATE, default 2000)
  --rate-fraction LIST fixed rates as fractions of the gateway's saturation req/s (median at the
                       highest --conns, measured first in the same run), e.g. 0.25,0.5; replaces
                       --rate (BENCH_RATE_FRACTION)
  --rate-duration S    seconds per latency run, after a 1 s warm-up (BENCH_RATE_DURATION, default 4)
  --conns LIST         closed-loop connection counts (BENCH_CONNS, default 16,64)
  --deployments N      SeldonDeployments in the gateway's table (BENCH_DEPLOYMENTS, default 1000)
  --targets LIST       subset of direct,nginx,nginx-shadow,stock,gateway,shadow,rollout,bandit,plain,flow,floor,floor-gw,floor-http,
                       floor-raw,floor-bare
                       (BENCH_TARGETS, default: the preset's). nginx-shadow: the nginx proxy with
                       every request mirrored by its own mirror directive (the reference for
                       the gateway's shadow cost). floor / floor-gw / floor-http: a
                       minimal proxy on undici / on the gateway's own client (from the build under
                       test) / on node:http's Agent (load/lib/floor-proxy.ts): what the runtime and
                       a client cost with none of the gateway's work; floor-raw: the same on raw
                       sockets that know Content-Length answers only (not a usable proxy: what the
                       leanest client could save); floor-bare: raw sockets on both sides, no HTTP
                       stack (what the Node runtime alone costs: floor-raw over it is node:http's
                       server side)
  --load-cpu C         core of the load generators (BENCH_LOAD_CPU, default 0)
  --server-cpu C       core of the proxy under test (BENCH_SERVER_CPU, default 1)
  --backend-cpu C      core of the backend (BENCH_BACKEND_CPU, default: the server core)
  --node-backend       use the node:http backend even when nginx is installed
  --autocannon         use autocannon even when wrk is installed
  --profile S          after the table, profile the gateway under S seconds of load (--cpu-prof)
                       and print its self time by function (BENCH_PROFILE, default off)
  --profile-target T   what --profile loads: gateway (the measured canary, default) or shadow
                       (the 100%-mirrored deployment) (BENCH_PROFILE_TARGET)
  --gateway-node BIN   the node binary that runs the gateway (BENCH_GATEWAY_NODE, default: this one)
  --gateway-b-main F   also measure a second gateway from this main.js (another build), interleaved
  --gateway-b-node-args "FLAGS"
                       node flags of that second gateway (same build unless --gateway-b-main), e.g.
                       "--max-semi-space-size=64" (env BENCH_GATEWAY_B_MAIN / BENCH_GATEWAY_B_NODE_ARGS)
  --access-log         every proxy logs each request: the gateways with their default access log
                       (JSON lines, to a file here), the nginx proxy with a buffered access_log;
                       without it neither logs (BENCH_ACCESS_LOG=1)
  --gateway-args "FLAGS"
                       extra gateway flags (after the benchmark's own), e.g. --gateway-args="--access-log off"
                       (the = form: the value starts with a dash) (BENCH_GATEWAY_ARGS)
  --gateway-b-args "FLAGS"
                       gateway flags of the second gateway instead of --gateway-args: an A/B of
                       a gateway option in one run (BENCH_GATEWAY_B_ARGS)
  --gateway-b-node BIN the node binary of that second gateway (same build and flags unless the
                       options above say otherwise), e.g. /opt/node24/bin/node: a runtime A/B
                       (BENCH_GATEWAY_B_NODE)
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
    'profile-target': { type: 'string' },
    build: { type: 'boolean' },
    'gateway-b-main': { type: 'string' },
    'gateway-b-node-args': { type: 'string' },
    'gateway-b-node': { type: 'string' },
    'gateway-args': { type: 'string' },
    'access-log': { type: 'boolean' },
    'gateway-b-args': { type: 'string' },
    'gateway-node': { type: 'string' },
    preset: { type: 'string' },
    'rate-fraction': { type: 'string' },
    keep: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  },
  allowPositionals: false,
});
if (argv.help) {
  process.stdout.write(HELP);
  process.exit(0);
}

/** What a preset sets; every one of them can be overridden by its option or environment variable. */
interface Preset {
  readonly nodeBackend: boolean;
  readonly conns: string;
  /** Fixed rates (req/s), or '' when `rateFraction` sets them. */
  readonly rate: string;
  readonly rateFraction: string;
  readonly rateDuration: number;
  readonly targets: string;
}
const PRESETS: Readonly<Record<string, Preset>> = {
  'nginx-backend': { nodeBackend: false, conns: '16,64', rate: '2000', rateFraction: '', rateDuration: 4, targets: 'direct,nginx,stock,gateway,shadow' },
  // Issue 15's arrangement: a node:http backend sharing the proxy's core, the load generator on
  // core 0, wrk at 64 connections, then open-loop rates relative to the gateway's own saturation.
  'shared-core': { nodeBackend: true, conns: '64', rate: '', rateFraction: '0.25,0.5', rateDuration: 8, targets: 'direct,nginx,gateway' },
};
const PRESET_NAME = argv.preset ?? process.env.BENCH_PRESET ?? 'nginx-backend';
const PRESET = PRESETS[PRESET_NAME];
if (!PRESET) throw new Error(`unknown --preset ${PRESET_NAME}: one of ${Object.keys(PRESETS).join(', ')}`);

const list = (text: string, env: string, ok: (n: number) => boolean): number[] =>
  text
    .split(',')
    .filter((x) => x.trim())
    .map((x) => {
      const v = Number(x);
      if (!Number.isFinite(v) || !ok(v)) throw new Error(`bad value ${x} in ${env}`);
      return v;
    });
const ROUNDS = Math.max(1, Math.floor(numberSetting(argv.rounds, 'BENCH_ROUNDS', 3)));
const DURATION_S = Math.max(1, numberSetting(argv.duration, 'BENCH_DURATION', 3));
/** An explicit --rate replaces the preset's fractions, and --rate-fraction the preset's rates. */
const RATE_FRACTIONS = list(
  argv['rate-fraction'] ?? process.env.BENCH_RATE_FRACTION ?? ((argv.rate ?? process.env.BENCH_RATE) ? '' : PRESET.rateFraction),
  'BENCH_RATE_FRACTION',
  (v) => v > 0 && v <= 2,
);
const FIXED_RATES = RATE_FRACTIONS.length ? [] : list(setting(argv.rate, 'BENCH_RATE', PRESET.rate || '2000'), 'BENCH_RATE', (v) => v >= 1).map(Math.round);
const RATE_DURATION_S = Math.max(1, numberSetting(argv['rate-duration'], 'BENCH_RATE_DURATION', PRESET.rateDuration));
const CONNS = list(setting(argv.conns, 'BENCH_CONNS', PRESET.conns), 'BENCH_CONNS', (n) => n > 0 && n <= 1024).map(Math.floor);
const DEPLOYMENTS = Math.max(3, Math.floor(numberSetting(argv.deployments, 'BENCH_DEPLOYMENTS', 1000)));
const LOAD_CPU = Math.floor(numberSetting(argv['load-cpu'], 'BENCH_LOAD_CPU', 0));
const SERVER_CPU = Math.floor(numberSetting(argv['server-cpu'], 'BENCH_SERVER_CPU', 1));
const BACKEND_CPU = Math.floor(numberSetting(argv['backend-cpu'], 'BENCH_BACKEND_CPU', SERVER_CPU));
const PROFILE_S = numberSetting(argv.profile, 'BENCH_PROFILE', 0);
const PROFILE_TARGET = setting(argv['profile-target'], 'BENCH_PROFILE_TARGET', 'gateway');
if (PROFILE_TARGET !== 'gateway' && PROFILE_TARGET !== 'shadow') throw new Error(`--profile-target ${PROFILE_TARGET}: gateway or shadow`);
const TARGETS = new Set(setting(argv.targets, 'BENCH_TARGETS', PRESET.targets).split(','));
const KNOWN_TARGETS = ['direct', 'nginx', 'nginx-shadow', 'stock', 'gateway', 'shadow', 'rollout', 'bandit', 'plain', 'flow', 'floor', 'floor-gw', 'floor-http', 'floor-raw', 'floor-bare'];
for (const t of TARGETS) if (!KNOWN_TARGETS.includes(t)) throw new Error(`unknown target ${t} in --targets: one of ${KNOWN_TARGETS.join(', ')}`);
const NODE_BACKEND = argv['node-backend'] ?? PRESET.nodeBackend;
if (RATE_FRACTIONS.length && !TARGETS.has('gateway')) throw new Error("--rate-fraction is relative to the gateway's saturation: the targets must include gateway");
const WARMUP_S = 2;
/** Extra node flags for the gateway (experiments: --max-semi-space-size=64, --trace-gc, ...). */
const GATEWAY_NODE_ARGS = (process.env.BENCH_GATEWAY_NODE_ARGS ?? '').split(/\s+/).filter(Boolean);
/** Like for like: nginx logs each request exactly when the gateways do. */
const ACCESS_LOG = argv['access-log'] ?? process.env.BENCH_ACCESS_LOG === '1';
/** Extra gateway flags (A, and B unless --gateway-b-args). Node flags the gateway sets itself for its
 * workers (--max-semi-space-size) are gateway flags: as node flags they would be replaced. */
const GATEWAY_ARGS = (argv['gateway-args'] ?? process.env.BENCH_GATEWAY_ARGS ?? '').split(/\s+/).filter(Boolean);
/** The node binary of the gateway (A). */
const GATEWAY_NODE = argv['gateway-node'] ?? process.env.BENCH_GATEWAY_NODE ?? process.execPath;
const RATE_WARMUP_MS = 1000;

/** An optional second gateway measured beside the first (same table, backend and rounds). */
const GATEWAY_B = ((): { main: string; nodeArgs: string[]; node: string; args: string[]; label: string } | null => {
  const mainB = argv['gateway-b-main'] ?? process.env.BENCH_GATEWAY_B_MAIN;
  const gatewayArgsB = argv['gateway-b-args'] ?? process.env.BENCH_GATEWAY_B_ARGS;
  const argsB = argv['gateway-b-node-args'] ?? process.env.BENCH_GATEWAY_B_NODE_ARGS;
  const nodeB = argv['gateway-b-node'] ?? process.env.BENCH_GATEWAY_B_NODE;
  if (!mainB && argsB === undefined && !nodeB && gatewayArgsB === undefined) return null;
  const nodeArgs = argsB === undefined ? GATEWAY_NODE_ARGS : argsB.split(/\s+/).filter(Boolean);
  const args = gatewayArgsB === undefined ? GATEWAY_ARGS : gatewayArgsB.split(/\s+/).filter(Boolean);
  const node = nodeB ?? GATEWAY_NODE;
  const label = [
    mainB ? mainB : 'same build',
    nodeB ? `node ${nodeVersion(node)}` : '',
    argsB !== undefined && nodeArgs.length ? nodeArgs.join(' ') : '',
    gatewayArgsB !== undefined ? `gateway ${args.join(' ') || 'defaults'}` : '',
  ]
    .filter(Boolean)
    .join(', ');
  return { main: mainB ?? GATEWAY_MAIN, nodeArgs, node, args, label };
})();
/** Runs with this much foreign load (% of the machine) count as disturbed. */
const QUIET_PCT = 10;
const QUIET = new QuietGate(numberSetting(undefined, 'BENCH_QUIET_BUDGET', 60) * 1000, QUIET_PCT);
const LIB = join(dirname(fileURLToPath(import.meta.url)), 'lib');
const BODY = '{"data":{"names":["a","b","c","d"],"ndarray":[[5.1,3.5,1.4,0.2]]}}';
/** What the backend answers (load/lib/node-backend.ts answers the same bytes). */
const BACKEND_BODY = '{"data":{"names":["t:0","t:1"],"ndarray":[[0.1,0.9]]},"meta":{"requestPath":{"model":"bench:1"}}}';

async function main(): Promise<void> {
  // The runner (and everything it spawns without an explicit taskset) stays on the load core.
  pinSelf(LOAD_CPU);
  if (argv.build) execFileSync('npm', ['run', 'build'], { cwd: ROOT, stdio: 'inherit' });
  if (!existsSync(GATEWAY_MAIN)) throw new Error(`${GATEWAY_MAIN} is missing: run 'npm run build' first (or pass --build)`);
  const tmp = mkdtempSync(join(tmpdir(), 'rest-bench-'));
  atCleanup(() => {
    if (argv.keep) process.stderr.write(`kept ${tmp}\n`);
    else rmSync(tmp, { recursive: true, force: true });
  });

  const notes: string[] = [];
  const nginx = nginxBinary();
  const wrk = argv.autocannon ? null : which('wrk');
  const loop = new ClosedLoop(wrk, LOAD_CPU, BODY, tmp);
  if (!wrk) notes.push('wrk not installed (apt-get install -y wrk): closed-loop runs use autocannon, a node process that may saturate its core before nginx does.');
  if (!nginx) notes.push('nginx not installed (apt-get install -y nginx): no nginx row and no "vs nginx" ratio; the backend is the node:http one.');
  const useNginxBackend = !!nginx && !NODE_BACKEND;

  const cores = cpus().length;
  if (Math.max(LOAD_CPU, SERVER_CPU, BACKEND_CPU) >= cores) throw new Error(`only ${cores} cores: --load-cpu/--server-cpu/--backend-cpu must be < ${cores}`);

  // ----- Targets.
  const probePath = predictionPath(MEASURED);
  const answers = (port: number) => async (): Promise<boolean> => (await postStatus(`http://127.0.0.1:${port}${probePath}`, BODY)) === 200;
  const startBackend = async (name: string, cpu: number): Promise<{ server: Spawned; port: number }> => {
    const port = await freePort();
    if (useNginxBackend) return { server: await startNginx(name, cpu, backendConf(join(tmp, name), port, BACKEND_BODY), answers(port)), port };
    const server = startServer(name, join(tmp, `${name}.log`), cpu, [process.execPath, ...nodeScript(LIB, 'node-backend')], { BENCH_PORT: String(port) });
    await waitFor(name, server, answers(port));
    return { server, port };
  };
  const { server: backend, port: backendPort } = await startBackend('backend', BACKEND_CPU);

  const targets: Target[] = [];
  const url = (port: number, path = probePath): string => `http://127.0.0.1:${port}${path}`;
  if (TARGETS.has('direct')) targets.push({ key: 'direct', label: `direct (${useNginxBackend ? 'nginx' : 'node:http'} backend)`, url: url(backendPort), proxyPid: null });

  if (nginx && TARGETS.has('nginx')) {
    const port = await freePort();
    const s = await startNginx('proxy-nginx', SERVER_CPU, proxyConf(join(tmp, 'proxy-nginx'), port, backendPort, { accessLog: ACCESS_LOG }), answers(port));
    targets.push({ key: 'nginx', label: 'nginx proxy (1 worker, keepalive 64)', url: url(port), proxyPid: s.pid });
  }
  if (nginx && TARGETS.has('nginx-shadow')) {
    const port = await freePort();
    const s = await startNginx('proxy-nginx-shadow', SERVER_CPU, proxyConf(join(tmp, 'proxy-nginx-shadow'), port, backendPort, { accessLog: ACCESS_LOG, mirror: true }), answers(port));
    targets.push({ key: 'nginx-shadow', label: 'nginx proxy, 100% mirror', url: url(port), proxyPid: s.pid });
  }

  if (TARGETS.has('stock')) {
    const port = await freePort();
    const s = startServer('stock-proxy', join(tmp, 'stock-proxy.log'), SERVER_CPU, [process.execPath, ...nodeScript(LIB, 'stock-proxy')], {
      BENCH_PORT: String(port),
      BENCH_UPSTREAM: `http://127.0.0.1:${backendPort}`,
    });
    await waitFor('stock proxy', s, answers(port));
    targets.push({ key: 'stock', label: 'stock @fastify/http-proxy', url: url(port), proxyPid: s.pid });
  }

  // The floors: a minimal proxy on undici, on the gateway's own client, on node:http's, on raw
  // sockets; and no HTTP stack at all (bare-proxy).
  for (const [key, client, label] of [
    ['floor', 'undici', 'floor: minimal undici proxy'],
    ['floor-gw', 'gateway', "floor: minimal proxy on the gateway's client"],
    ['floor-http', 'node-http', 'floor: minimal node:http proxy'],
    ['floor-raw', 'raw', 'floor: raw sockets, Content-Length only (not a usable proxy)'],
    ['floor-bare', 'bare', 'floor: raw sockets both sides, no HTTP stack (not a usable proxy)'],
  ] as const) {
    if (!TARGETS.has(key)) continue;
    const port = await freePort();
    const s = startServer(key, join(tmp, `${key}.log`), SERVER_CPU, [process.execPath, ...nodeScript(LIB, client === 'bare' ? 'bare-proxy' : 'floor-proxy')], {
      BENCH_PORT: String(port),
      BENCH_UPSTREAM_PORT: String(backendPort),
      BENCH_CLIENT: client,
      BENCH_GATEWAY_CLIENT: join(dirname(GATEWAY_MAIN), 'upstream', 'http1-client.js'),
    });
    await waitFor(label, s, answers(port));
    targets.push({ key, label, url: url(port), proxyPid: s.pid });
  }

  const manifests = join(tmp, 'manifests');
  let gateway: Gateway | null = null;
  let upstreams: string[] = [];
  let tableNote = '';
  const launchGateway = (name: string, port: number, extraNodeArgs: string[] = [], main = GATEWAY_MAIN, nodeArgs = GATEWAY_NODE_ARGS, node = GATEWAY_NODE, args = GATEWAY_ARGS): Promise<Gateway> =>
    startGateway(name, {
      log: join(tmp, `${name}.log`),
      cpu: SERVER_CPU,
      manifests,
      upstreams,
      backendPort: port,
      nodeArgs: [...nodeArgs, ...extraNodeArgs],
      main,
      node,
      args: [...(ACCESS_LOG ? [] : ['--access-log', 'off']), ...args],
    });
  /** The gateways by target key, for their /metrics. */
  const gateways = new Map<string, Gateway>();
  if (['gateway', 'shadow', 'rollout', 'bandit', 'plain', 'flow'].some((t) => TARGETS.has(t)) || PROFILE_S > 0) {
    const count = generateManifests(manifests, DEPLOYMENTS);
    const t = restUpstreams(manifests);
    upstreams = t.upstreams;
    const states = new Map<string, number>();
    for (const d of t.routes.deployments) states.set(d.state, (states.get(d.state) ?? 0) + 1);
    const measured = t.routes.deployments.filter((d) => d.namespace === NS && (d.name === MEASURED || d.name === HEADER_SDEP)).flatMap((d) => d.routes.filter((r) => r.kind === 'rest'));
    tableNote =
      `gateway table: ${count} SeldonDeployments (${[...states].map(([s, n]) => `${n} ${s}`).join(', ')}), ${upstreams.length} REST upstreams, all --resolve'd to the backend; ` +
      `measured routes: ` +
      measured.map((r) => `${r.match.prefix}${r.match.headers.length ? ' ' + JSON.stringify(r.match.headers) : ''} → ${r.members.map((m) => `${m.predictor} ${m.percent}%`).join(' / ')}`).join('; ');
    gateway = await launchGateway('gateway', backendPort);
    for (const [path, headers, what] of [
      [probePath, {}, 'measured'],
      [probePath, { 'x-variant': 'b' }, 'header route'],
      [predictionPath(SHADOWED), {}, 'shadowed'],
    ] as const) {
      const status = await postStatus(url(gateway.port, path), BODY, headers);
      if (status !== 200) throw new Error(`gateway answered ${status} for the ${what} deployment (${path}):\n${gateway.server.output().slice(-3000)}`);
    }
    const nodeNote = GATEWAY_B && GATEWAY_B.node !== GATEWAY_NODE ? `, node ${nodeVersion(GATEWAY_NODE)}` : '';
    if (TARGETS.has('gateway')) targets.push({ key: 'gateway', label: `gateway (90/10 canary + header rule${nodeNote})`, url: url(gateway.port), proxyPid: gateway.server.pid });
    gateways.set('gateway', gateway);
    if (TARGETS.has('shadow')) targets.push({ key: 'shadow', label: 'gateway, 100% shadow', url: url(gateway.port, predictionPath(SHADOWED)), proxyPid: gateway.server.pid });
    if (TARGETS.has('rollout'))
      targets.push({ key: 'rollout', label: 'gateway, rollout at 10% (counted, live shares)', url: url(gateway.port, predictionPath(ROLLED_OUT)), proxyPid: gateway.server.pid });
    if (TARGETS.has('bandit')) targets.push({ key: 'bandit', label: 'gateway, bandit (token in header and meta.tags)', url: url(gateway.port, predictionPath(BANDIT)), proxyPid: gateway.server.pid });
    if (TARGETS.has('plain')) targets.push({ key: 'plain', label: 'gateway, one predictor', url: url(gateway.port, predictionPath(PLAIN)), proxyPid: gateway.server.pid });
    if (TARGETS.has('flow'))
      targets.push({
        key: 'flow',
        label: `gateway, one predictor under flow control below its limit (${FLOWED_ANNOTATION.replace(/\n/g, ', ')})`,
        url: url(gateway.port, predictionPath(FLOWED)),
        proxyPid: gateway.server.pid,
      });
    if (GATEWAY_B) {
      // A second gateway, same table and backend, other build and/or node flags: an A/B in one run.
      const b = await launchGateway('gateway-b', backendPort, [], GATEWAY_B.main, GATEWAY_B.nodeArgs, GATEWAY_B.node, GATEWAY_B.args);
      gateways.set('gateway-b', b);
      const status = await postStatus(url(b.port), BODY);
      if (status !== 200) throw new Error(`gateway B answered ${status}:\n${b.server.output().slice(-3000)}`);
      targets.push({ key: 'gateway-b', label: `gateway B (${GATEWAY_B.label})`, url: url(b.port), proxyPid: b.server.pid });
    }
  }

  // ----- What is measured, how.
  const arrangement =
    BACKEND_CPU === SERVER_CPU
      ? `load generator on core ${LOAD_CPU}; proxy under test AND backend on core ${SERVER_CPU} (the proxy→backend hop is a same-core wake-up, and the load core stays the load generator's alone; requests/s is therefore the proxy's and the backend's cost together: see the backend µs/req column)`
      : `load generator on core ${LOAD_CPU}; proxy under test on core ${SERVER_CPU}; backend on core ${BACKEND_CPU}`;
  log(`# rest-bench ${new Date().toISOString()}  node ${process.version}, ${cores} cores, CLK_TCK ${CLK_TCK}`);
  const rateText = RATE_FRACTIONS.length ? `${RATE_FRACTIONS.join(' and ')} of the gateway's saturation req/s @${Math.max(...CONNS)}` : `${FIXED_RATES.join(' and ')} req/s`;
  log(`preset: ${PRESET_NAME}`);
  log(
    `closed loop: ${wrk ? 'wrk -t1' : 'autocannon'}, ${DURATION_S}s per run at ${CONNS.join(' and ')} connections; then fixed rate: ${rateText}, open loop for ${RATE_DURATION_S}s (after ${RATE_WARMUP_MS / 1000}s warm-up), 32 connections, ≤256 in flight; ${ROUNDS} interleaved rounds of each, medians`,
  );
  log(`pinning: ${arrangement}`);
  log(`gateway build: ${buildInfo(GATEWAY_MAIN)}${GATEWAY_B && GATEWAY_B.main !== GATEWAY_MAIN ? `; gateway B: ${buildInfo(GATEWAY_B.main)}` : ''}`);
  log(
    `gateway node: ${GATEWAY_NODE} ${nodeVersion(GATEWAY_NODE)}${GATEWAY_B ? `; gateway B node: ${GATEWAY_B.node} ${nodeVersion(GATEWAY_B.node)}${GATEWAY_B.nodeArgs.length ? `, flags ${GATEWAY_B.nodeArgs.join(' ')}` : ''}` : ''}`,
  );
  log(`backend: ${useNginxBackend ? 'nginx 1 worker, return 200' : `node:http (${process.version})`} with a ${BACKEND_BODY.length}-byte JSON body; request: POST ${BODY.length}-byte JSON`);
  if (tableNote) log(tableNote);
  if (GATEWAY_NODE_ARGS.length) log(`gateway node flags: ${GATEWAY_NODE_ARGS.join(' ')}`);
  log(`access logs: ${ACCESS_LOG ? 'on (gateways: their default JSON lines; nginx: buffered access_log)' : 'off in every proxy (--access-log turns them on)'}`);
  if (GATEWAY_ARGS.length || GATEWAY_B?.args.length) log(`gateway flags: ${GATEWAY_ARGS.join(' ') || 'defaults'}${GATEWAY_B ? `; gateway B flags: ${GATEWAY_B.args.join(' ') || 'defaults'}` : ''}`);
  for (const n of notes) log(`note: ${n}`);
  log('');

  // ----- Warm-up first: JIT, connection pools.
  for (const t of targets) await loop.run(t.url, Math.max(...CONNS), WARMUP_S);

  const closed = new Map<string, Sample[]>(); // key `${target}@${conns}`
  const fixed = new Map<string, Sample[]>(); // key `${target}@${rate}`
  const stalls = new Map<string, RuntimeDelta[]>(); // same keys, gateways only
  const push = <T>(m: Map<string, T[]>, k: string, v: T): void => void m.set(k, [...(m.get(k) ?? []), v]);
  const metrics0 = gateway ? await metricsText(gateway.admin) : '';
  const orderOf = (round: number): Target[] => targets.map((_, i) => targets[(i + round) % targets.length]!);

  // ----- Closed loop: every round, every connection count, every target.
  for (let round = 0; round < ROUNDS; round++) {
    for (const conns of CONNS) {
      for (const t of orderOf(round)) {
        const m = await measure(
          t,
          backend.pid,
          QUIET,
          () => loop.run(t.url, conns, DURATION_S),
          (r) => r.completed,
        );
        const s: Sample = { ...m.result, proxyUsPerReq: m.proxyUsPerReq, backendUsPerReq: m.backendUsPerReq, otherPct: m.otherPct, stealPct: m.stealPct, perReq: m.perReq };
        push(closed, `${t.key}@${conns}`, s);
        log(closedLine(round + 1, conns, t.key, s));
      }
    }
  }

  // ----- The fixed rates: given, or fractions of the gateway's saturation just measured.
  let rates = FIXED_RATES;
  let rateNote = '';
  if (RATE_FRACTIONS.length) {
    const sat = closed.get(`gateway@${Math.max(...CONNS)}`) ?? [];
    const quiet = sat.filter((x) => x.otherPct < QUIET_PCT);
    const saturation = median((quiet.length ? quiet : sat).map((x) => x.rps));
    if (!Number.isFinite(saturation) || saturation < 10) throw new Error(`no gateway saturation to take fractions of (median ${saturation} req/s)`);
    rates = RATE_FRACTIONS.map((f) => Math.max(1, Math.round(f * saturation)));
    rateNote = `${RATE_FRACTIONS.map((f, i) => `${f} x ${f0(saturation)} = ${f0(rates[i])} req/s`).join(', ')} (the gateway's median saturation at ${Math.max(...CONNS)} connections in this run${quiet.length ? '' : ', from disturbed runs'})`;
    log(`\nfixed rates: ${rateNote}`);
  }

  // ----- Open loop: every round, every rate, every target (a shadow's latency is its primary's).
  for (let round = 0; round < ROUNDS; round++) {
    for (const rate of rates) {
      for (const t of orderOf(round)) {
        if (t.key === 'shadow' || t.key === 'nginx-shadow') continue;
        const config = {
          url: t.url,
          method: 'POST' as const,
          body: BODY,
          headers: { 'content-type': 'application/json' },
          rate,
          durationMs: RATE_DURATION_S * 1000,
          warmupMs: RATE_WARMUP_MS,
          connections: 32,
          maxInFlight: 256,
          timeoutMs: 5000,
        };
        const gw = gateways.get(t.key);
        const before = gw ? runtimeSnapshot(await metricsText(gw.admin)) : null;
        const m = await measure(
          t,
          backend.pid,
          QUIET,
          () => fixedRate(config, LOAD_CPU),
          (r) => r.completedTotal,
        );
        // The warm-up second is in this window too: the gateway's count covers the whole run.
        const stall = gw && before ? runtimeDelta(before, runtimeSnapshot(await metricsText(gw.admin))) : null;
        const rr = m.result;
        const s: Sample = {
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
          p999us: rr.latencyUs.p999,
          otherPct: m.otherPct,
          stealPct: m.stealPct,
          perReq: m.perReq,
        };
        push(fixed, `${t.key}@${rate}`, s);
        if (stall) push(stalls, `${t.key}@${rate}`, stall);
        log(rateLine(round + 1, rate, t.key, rr, s) + (stall ? `\n        ${t.key} itself: ${formatRuntimeDelta(stall)}` : ''));
      }
    }
  }

  // ----- The report.
  const runs = { targets, conns: CONNS, rate: rates[0]!, rates, rateNote, rounds: ROUNDS, quietPct: QUIET_PCT, closed, fixed, stalls };
  printTables(runs);
  if (gateway) {
    log('');
    log(gatewayCounters(metrics0, await metricsText(gateway.admin)));
    // Its log at warn and above (the access log, on by default, and --trace-gc lines left out).
    const warnings = gateway.server
      .output()
      .split('\n')
      .filter((l) => l.trim() && !l.includes('"msg":"access"') && !/^\[\d+:0x[0-9a-f]+\]/.test(l));
    if (warnings.length) log(`gateway log (${warnings.length} lines at warn+), first: ${warnings.slice(0, 3).join(' | ').slice(0, 600)}`);
  }
  printNoiseNotes(runs);

  if (PROFILE_S > 0 && gateway)
    await profileGateway({
      dir: tmp,
      seconds: PROFILE_S,
      warmupS: WARMUP_S,
      conns: Math.max(...CONNS),
      path: PROFILE_TARGET === 'shadow' ? predictionPath(SHADOWED) : probePath,
      what: PROFILE_TARGET === 'shadow' ? 'the deployment mirrored 100% to a shadow' : 'measured deployment',
      loop,
      quiet: QUIET,
      serverCpu: SERVER_CPU,
      backendCpu: BACKEND_CPU === SERVER_CPU ? LOAD_CPU : BACKEND_CPU,
      startBackend,
      startGateway: (name, port, extra) => launchGateway(name, port, extra),
    });
}

runMain('rest-bench', main);
