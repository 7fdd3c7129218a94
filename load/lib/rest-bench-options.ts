/**
 * The options of load/rest-bench.ts (`--help` prints them): parsed once, on import, into the
 * settings the runner reads. A preset (--preset) sets several at once; each one can be overridden
 * by its option or environment variable.
 */
import { parseArgs } from 'node:util';
import { GATEWAY_MAIN, nodeVersion } from './gateway.js';
import { numberSetting, setting } from './options.js';

export const HELP = `Usage: npx vite-node load/rest-bench.ts [options]

  --preset NAME        nginx-backend (default): nginx return-200 backend, wrk at 16 and 64
                       connections, fixed 2,000 req/s, targets direct,nginx,stock,gateway,shadow;
                       shared-core: node:http backend on the proxy's core, wrk at 64 connections, fixed
                       rates at 0.25 and 0.5 of the gateway's saturation, 8 s each, targets
                       direct,nginx,gateway; floor: the shared-core arrangement at 16,
                       64 and 256 connections with the raw relay beside nginx, haproxy, Caddy and the
                       gateway, and one fixed rate at half the gateway's saturation (BENCH_PRESET).
                       Options below override the preset's.
  --rounds N           interleaved rounds; medians are reported (env BENCH_ROUNDS, default 3)
  --duration S         seconds per closed-loop run (BENCH_DURATION, default 3)
  --rate LIST          fixed rates of the latency runs, req/s (BENCH_RATE, default 2000)
  --rate-fraction LIST fixed rates as fractions of the gateway's saturation req/s (median at the
                       highest --conns, measured first in the same run), e.g. 0.25,0.5; replaces
                       --rate (BENCH_RATE_FRACTION)
  --rate-duration S    seconds per latency run, after a 1 s warm-up (BENCH_RATE_DURATION, default 4)
  --conns LIST         closed-loop connection counts (BENCH_CONNS, default 16,64)
  --deployments N      SeldonDeployments in the gateway's table (BENCH_DEPLOYMENTS, default 1000)
  --targets LIST       subset of direct,nginx,haproxy,caddy,nginx-shadow,stock,gateway,shadow,rollout,bandit,plain,flow,
                       relay,floor,floor-gw,floor-http,floor-raw,floor-bare
                       (BENCH_TARGETS, default: the preset's). haproxy: Debian's haproxy 2.6 as a
                       keep-alive proxy, one thread (load/lib/haproxy.ts); caddy: Debian's Caddy 2.6
                       reverse_proxy, GOMAXPROCS=1 (load/lib/caddy.ts); each skipped when not
                       installed. relay: the raw TCP relay, each client
                       connection piped to its own upstream connection, bytes unparsed
                       (load/lib/relay-proxy.ts): the floor of a Node proxy. nginx-shadow: the nginx proxy with
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

export const { values: argv } = parseArgs({
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
  // The floor: the same, at 16, 64 and 256 connections, beside the raw TCP relay (the
  // floor of a Node proxy), and the tail at half the gateway's saturation against nginx's at that rate.
  floor: { nodeBackend: true, conns: '16,64,256', rate: '', rateFraction: '0.5', rateDuration: 8, targets: 'nginx,haproxy,caddy,relay,gateway' },
};
export const PRESET_NAME = argv.preset ?? process.env.BENCH_PRESET ?? 'nginx-backend';
export const PRESET = PRESETS[PRESET_NAME];
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
export const ROUNDS = Math.max(1, Math.floor(numberSetting(argv.rounds, 'BENCH_ROUNDS', 3)));
export const DURATION_S = Math.max(1, numberSetting(argv.duration, 'BENCH_DURATION', 3));
/** An explicit --rate replaces the preset's fractions, and --rate-fraction the preset's rates. */
export const RATE_FRACTIONS = list(
  argv['rate-fraction'] ?? process.env.BENCH_RATE_FRACTION ?? ((argv.rate ?? process.env.BENCH_RATE) ? '' : PRESET.rateFraction),
  'BENCH_RATE_FRACTION',
  (v) => v > 0 && v <= 2,
);
export const FIXED_RATES = RATE_FRACTIONS.length ? [] : list(setting(argv.rate, 'BENCH_RATE', PRESET.rate || '2000'), 'BENCH_RATE', (v) => v >= 1).map(Math.round);
export const RATE_DURATION_S = Math.max(1, numberSetting(argv['rate-duration'], 'BENCH_RATE_DURATION', PRESET.rateDuration));
export const CONNS = list(setting(argv.conns, 'BENCH_CONNS', PRESET.conns), 'BENCH_CONNS', (n) => n > 0 && n <= 1024).map(Math.floor);
export const DEPLOYMENTS = Math.max(3, Math.floor(numberSetting(argv.deployments, 'BENCH_DEPLOYMENTS', 1000)));
export const LOAD_CPU = Math.floor(numberSetting(argv['load-cpu'], 'BENCH_LOAD_CPU', 0));
export const SERVER_CPU = Math.floor(numberSetting(argv['server-cpu'], 'BENCH_SERVER_CPU', 1));
export const BACKEND_CPU = Math.floor(numberSetting(argv['backend-cpu'], 'BENCH_BACKEND_CPU', SERVER_CPU));
export const PROFILE_S = numberSetting(argv.profile, 'BENCH_PROFILE', 0);
export const PROFILE_TARGET = setting(argv['profile-target'], 'BENCH_PROFILE_TARGET', 'gateway');
if (PROFILE_TARGET !== 'gateway' && PROFILE_TARGET !== 'shadow') throw new Error(`--profile-target ${PROFILE_TARGET}: gateway or shadow`);
export const TARGETS = new Set(setting(argv.targets, 'BENCH_TARGETS', PRESET.targets).split(','));
export const KNOWN_TARGETS = [
  'direct',
  'nginx',
  'haproxy',
  'caddy',
  'nginx-shadow',
  'stock',
  'gateway',
  'shadow',
  'rollout',
  'bandit',
  'plain',
  'flow',
  'relay',
  'floor',
  'floor-gw',
  'floor-http',
  'floor-raw',
  'floor-bare',
];
for (const t of TARGETS) if (!KNOWN_TARGETS.includes(t)) throw new Error(`unknown target ${t} in --targets: one of ${KNOWN_TARGETS.join(', ')}`);
export const NODE_BACKEND = argv['node-backend'] ?? PRESET.nodeBackend;
if (RATE_FRACTIONS.length && !TARGETS.has('gateway')) throw new Error("--rate-fraction is relative to the gateway's saturation: the targets must include gateway");
export const WARMUP_S = 2;
/** Extra node flags for the gateway (experiments: --max-semi-space-size=64, --trace-gc, ...). */
export const GATEWAY_NODE_ARGS = (process.env.BENCH_GATEWAY_NODE_ARGS ?? '').split(/\s+/).filter(Boolean);
/** Like for like: nginx logs each request exactly when the gateways do. */
export const ACCESS_LOG = argv['access-log'] ?? process.env.BENCH_ACCESS_LOG === '1';
/** Extra gateway flags (A, and B unless --gateway-b-args). Node flags the gateway sets itself for its
 * workers (--max-semi-space-size) are gateway flags: as node flags they would be replaced. */
export const GATEWAY_ARGS = (argv['gateway-args'] ?? process.env.BENCH_GATEWAY_ARGS ?? '').split(/\s+/).filter(Boolean);
/** The node binary of the gateway (A). */
export const GATEWAY_NODE = argv['gateway-node'] ?? process.env.BENCH_GATEWAY_NODE ?? process.execPath;
export const RATE_WARMUP_MS = 1000;

/** An optional second gateway measured beside the first (same table, backend and rounds). */
export const GATEWAY_B = ((): { main: string; nodeArgs: string[]; node: string; args: string[]; label: string } | null => {
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
