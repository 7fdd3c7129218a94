/**
 * gRPC benchmark: unary Predict throughput and p50/p99 through the gateway versus straight to the
 * backend, with the same client in the same run, and their ratio.
 *
 *   npx vite-node load/grpc-bench.ts [--duration 10] [--warmup 2] [--concurrency 64]
 *                                    [--connections 4] [--rounds 3] [--max-calls 2000000]
 *                                    [--compiled] [--no-pin]
 *
 * Three processes, all on 127.0.0.1: this one (the client), a @grpc/grpc-js backend
 * (load/lib/grpc.ts, in a child running this script) and the gateway (one worker, h2c on its
 * shared public port): `startGateway` from the sources, or with --compiled the real entry point
 * `node dist/gateway/main.js serve` (run `npm run build` first), which is how it is deployed. With
 * taskset, the client and the backend share CPU 0 and the gateway gets CPU 1, so both phases give
 * the client+backend pair the same CPU and the gateway's cost shows as the difference.
 * Every phase is bounded by time and by call count. Each round runs direct, then gateway; the
 * ratio is taken per round and over the medians of the rounds' throughputs, so one stalled
 * phase (another process taking the CPU) does not decide the result. Latencies are pooled.
 * Every child is stopped on exit, error, Ctrl-C or SIGTERM (load/lib/children.ts).
 */
import { mkdtempSync, existsSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { atCleanup, hasTaskset, pinSelf, runMain, startAnnounced, type Announced } from './lib/children.js';
import { seldonClient, startBenchBackend, type SeldonClient, type SeldonMessage } from './lib/grpc.js';
import { treeSeconds } from './lib/proc.js';
import { median } from './lib/report.js';

const ROLE = process.env['GRPC_BENCH_ROLE'];
const SCRIPT = fileURLToPath(import.meta.url);

const HELP = `Usage: npx vite-node load/grpc-bench.ts [options]

  --duration S         seconds measured per target per round (1..120, default 10)
  --warmup S           seconds of unmeasured calls before each measured phase (0..30, default 2)
  --concurrency N      calls in flight (1..1024, default 64)
  --connections N      client HTTP/2 connections they are spread over, one grpc-js channel each (1..64, default 4)
  --rounds N           rounds of direct, then gateway (1..10, default 3)
  --max-calls N        hard cap on calls per phase (default 2000000)
  --compiled           run dist/gateway/main.js serve --workers 1 (npm run build first) instead of
                       startGateway from the sources
  --no-pin             do not pin (default when taskset exists: client + backend on CPU 0, gateway on CPU 1)
`;

// ---------------------------------------------------------------------------------------------
// Child roles: print one "READY <json>" line, exit when stdin closes (so they never outlive the run).

function serveControl(info: Record<string, unknown>, beforeExit: () => Promise<void> = async () => undefined): void {
  process.stdout.write(`READY ${JSON.stringify(info)}\n`);
  const rl = createInterface({ input: process.stdin });
  rl.on('close', () => void beforeExit().finally(() => process.exit(0)));
}

async function runBackend(): Promise<void> {
  const backend = await startBenchBackend('bench');
  serveControl({ port: backend.port });
}

async function runGateway(): Promise<void> {
  const { parseConfig } = await import('../gateway/config.js');
  const { startGateway } = await import('../gateway/process/serve.js');
  const { pino } = await import('pino');
  const args = JSON.parse(process.env['GRPC_BENCH_GATEWAY_ARGS'] ?? '[]') as string[];
  const gw = await startGateway(parseConfig('serve', args, {}), { logger: pino({ level: 'warn' }) });
  const end = Date.now() + 10_000;
  while (!gw.ready() && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
  // On the way out: the gateway's own view of the gRPC calls (status codes, retries, timeouts).
  serveControl({ port: gw.port }, async () => {
    const text = await gw.metrics.registry.metrics();
    const totals = new Map<string, number>();
    for (const line of text.split('\n')) {
      const m = /^seldon_gateway_(requests|retries|timeouts|unrouted_requests|breaker_rejections)_total\{(.*)\} (\d+)/.exec(line);
      if (!m || !m[2]!.includes('protocol="grpc"')) continue;
      const code = /code="(\d+)"/.exec(m[2]!)?.[1];
      const key = m[1] === 'requests' ? `gRPC status ${code}` : m[1]!.replace('_', ' ');
      totals.set(key, (totals.get(key) ?? 0) + Number(m[3]));
    }
    process.stdout.write(`STATS ${JSON.stringify(Object.fromEntries(totals))}\n`);
  });
}

// ---------------------------------------------------------------------------------------------
// Parent: options, children, load.

interface Options {
  durationS: number;
  warmupS: number;
  concurrency: number;
  connections: number;
  rounds: number;
  maxCalls: number;
  compiled: boolean;
  pin: boolean;
}

function options(argv: readonly string[]): Options {
  const num = (flag: string, dflt: number, min: number, max: number): number => {
    const i = argv.indexOf(flag);
    if (i < 0) return dflt;
    const v = Number(argv[i + 1]);
    if (!Number.isFinite(v) || v < min || v > max) throw new Error(`${flag} must be a number in ${min}..${max}`);
    return v;
  };
  return {
    durationS: num('--duration', 10, 1, 120),
    warmupS: num('--warmup', 2, 0, 30),
    concurrency: num('--concurrency', 64, 1, 1024),
    connections: num('--connections', 4, 1, 64),
    rounds: num('--rounds', 3, 1, 10),
    maxCalls: num('--max-calls', 2_000_000, 1, 10_000_000),
    compiled: argv.includes('--compiled'),
    pin: !argv.includes('--no-pin') && hasTaskset(),
  };
}

interface Child extends Announced {
  /** Ask it to exit; resolves with its STATS line, if it printed one (waits at most 5 s). */
  stopWithStats(): Promise<string | undefined>;
}

/**
 * Start a child (pinned with taskset when `cpu` is given) and wait for its port: a "READY {port}"
 * line from this script's roles, or the gateway's "listening" log line.
 */
async function startChild(label: string, command: readonly string[], cpu: number | undefined, env: Record<string, string>): Promise<Child> {
  let stats: string | undefined;
  const child = await startAnnounced(label, command, {
    cpu,
    env,
    onLine: (line) => {
      if (line.startsWith('STATS ')) stats = line.slice(6);
    },
    port: (line) => {
      if (line.startsWith('READY ')) return (JSON.parse(line.slice(6)) as { port: number }).port;
      if (line.includes('seldon-gateway listening')) return (JSON.parse(line) as { port: number }).port;
      return undefined;
    },
  });
  return {
    ...child,
    async stopWithStats() {
      await child.stop();
      return stats;
    },
  };
}

/** This script in a child role, run the way this one runs (under vite-node or compiled). */
function selfCommand(): string[] {
  const runner = process.argv[1] ?? '';
  return /vite-node(\.mjs)?$/.test(runner) ? [process.execPath, ...process.execArgv, runner, SCRIPT] : [process.execPath, ...process.execArgv, SCRIPT];
}

interface PhaseResult {
  calls: number;
  errors: number;
  seconds: number;
  latenciesMs: Float64Array;
}

const REQUEST: SeldonMessage = { data: { names: ['sepal_length', 'sepal_width', 'petal_length', 'petal_width'], tensor: { shape: [1, 4], values: [5.1, 3.5, 1.4, 0.2] } } };

/** `concurrency` call loops spread over the clients, until `seconds` pass or `maxCalls` are made. */
async function phase(clients: SeldonClient[], metadata: grpc.Metadata, concurrency: number, seconds: number, maxCalls: number): Promise<PhaseResult> {
  const latencies = new Float64Array(maxCalls);
  let calls = 0;
  let errors = 0;
  const start = performance.now();
  const end = start + seconds * 1000;
  const loop = (c: SeldonClient): Promise<void> =>
    new Promise((resolve) => {
      const once = (): void => {
        if (calls >= maxCalls || performance.now() >= end) {
          resolve();
          return;
        }
        const t0 = performance.now();
        c.Predict(REQUEST, metadata, (err) => {
          if (err) errors++;
          else if (calls < maxCalls) latencies[calls++] = performance.now() - t0;
          once();
        });
      };
      once();
    });
  await Promise.all(Array.from({ length: concurrency }, (_, i) => loop(clients[i % clients.length]!)));
  return { calls, errors, seconds: (performance.now() - start) / 1000, latenciesMs: latencies.subarray(0, calls) };
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

interface Summary {
  /** Pooled calls / pooled seconds; the report replaces it with the median of the rounds. */
  rps: number;
  p50: number;
  p99: number;
  max: number;
  calls: number;
  errors: number;
}

function summarise(results: PhaseResult[]): Summary {
  const calls = results.reduce((n, r) => n + r.calls, 0);
  const seconds = results.reduce((n, r) => n + r.seconds, 0);
  const all = new Float64Array(calls);
  let o = 0;
  for (const r of results) {
    all.set(r.latenciesMs, o);
    o += r.calls;
  }
  all.sort();
  return { rps: calls / seconds, p50: percentile(all, 50), p99: percentile(all, 99), max: all.length ? all[all.length - 1]! : NaN, calls, errors: results.reduce((n, r) => n + r.errors, 0) };
}

function connect(port: number, n: number): SeldonClient[] {
  // A local subchannel pool per channel: n real TCP connections, not one shared.
  return Array.from({ length: n }, (_, i) => seldonClient(`127.0.0.1:${port}`, { 'grpc.use_local_subchannel_pool': 1, 'grpc.bench_channel': i }));
}

async function main(): Promise<void> {
  const opt = options(process.argv.slice(2));
  const dir = mkdtempSync(join(tmpdir(), 'sgw-bench-'));
  atCleanup(() => rmSync(dir, { recursive: true, force: true }));
  const children: Child[] = [];
  try {
    if (opt.pin) pinSelf(0);
    const backend = await startChild('backend', selfCommand(), opt.pin ? 0 : undefined, { GRPC_BENCH_ROLE: 'backend' });
    children.push(backend);
    writeFileSync(
      join(dir, 'bench.yaml'),
      JSON.stringify({ apiVersion: 'machinelearning.seldon.io/v1', kind: 'SeldonDeployment', metadata: { name: 'bench', namespace: 'load' }, spec: { predictors: [{ name: 'default' }] } }),
    );
    const gwArgs = ['--manifests', dir, '--port', '0', '--admin-port', '0', '--host', '127.0.0.1', '--workers', '1', '--resolve', `bench-default.load:5001=127.0.0.1:${backend.port}`];
    const entry = fileURLToPath(new URL('../dist/gateway/main.js', import.meta.url));
    if (opt.compiled && !existsSync(entry)) throw new Error(`--compiled needs ${entry}: run npm run build`);
    const gateway = opt.compiled
      ? await startChild('gateway', [process.execPath, entry, 'serve', ...gwArgs, '--log-level', 'info'], opt.pin ? 1 : undefined, {})
      : await startChild('gateway', selfCommand(), opt.pin ? 1 : undefined, { GRPC_BENCH_ROLE: 'gateway', GRPC_BENCH_GATEWAY_ARGS: JSON.stringify(gwArgs) });
    children.push(gateway);
    // CPU seconds (user + system) of the gateway's process tree (a primary and its worker), from /proc.
    const gatewayCpuSeconds = (): number => treeSeconds(gateway.pid);

    const metadata = new grpc.Metadata();
    metadata.set('seldon', 'bench');
    metadata.set('namespace', 'load');
    const direct = connect(backend.port, opt.connections);
    const viaGateway = connect(gateway.port, opt.connections);
    const results = { direct: [] as PhaseResult[], gateway: [] as PhaseResult[] };
    let gatewayCpuUs = 0;
    let gatewayCalls = 0;
    process.stdout.write(
      `gRPC unary Predict: ${opt.concurrency} concurrent calls over ${opt.connections} connections, ${opt.rounds} round(s) of ${opt.durationS} s per target, ` +
        `gateway ${opt.compiled ? 'dist/gateway/main.js' : 'from source (vite-node)'}${opt.pin ? ', client+backend on CPU 0, gateway on CPU 1' : ', not pinned'}\n`,
    );
    for (let round = 1; round <= opt.rounds; round++) {
      for (const [name, clients] of [
        ['direct', direct],
        ['gateway', viaGateway],
      ] as const) {
        if (opt.warmupS > 0) await phase(clients, metadata, opt.concurrency, opt.warmupS, opt.maxCalls);
        const before = gatewayCpuSeconds();
        const r = await phase(clients, metadata, opt.concurrency, opt.durationS, opt.maxCalls);
        if (name === 'gateway') {
          gatewayCpuUs += (gatewayCpuSeconds() - before) * 1e6;
          gatewayCalls += r.calls;
        }
        results[name].push(r);
        const s = summarise([r]);
        process.stdout.write(`  round ${round} ${name.padEnd(7)} ${s.rps.toFixed(0).padStart(7)} calls/s  p50 ${s.p50.toFixed(2)} ms  p99 ${s.p99.toFixed(2)} ms  max ${s.max.toFixed(0)} ms  (${s.calls} calls, ${s.errors} errors)\n`);
      }
    }
    for (const c of [...direct, ...viaGateway]) c.close();
    const d = summarise(results.direct);
    const g = summarise(results.gateway);
    const rps = (r: PhaseResult): number => r.calls / r.seconds;
    const perRound = results.gateway.map((r, i) => rps(r) / rps(results.direct[i]!));
    d.rps = median(results.direct.map(rps));
    g.rps = median(results.gateway.map(rps));
    const ratio = g.rps / d.rps;
    process.stdout.write(
      `\n  target   calls/s (median of rounds)  p50 ms   p99 ms   max ms   calls      errors\n` +
        `  direct   ${d.rps.toFixed(0).padStart(7)}                     ${d.p50.toFixed(2).padStart(7)}  ${d.p99.toFixed(2).padStart(7)}  ${d.max.toFixed(0).padStart(7)}   ${String(d.calls).padEnd(9)}  ${d.errors}\n` +
        `  gateway  ${g.rps.toFixed(0).padStart(7)}                     ${g.p50.toFixed(2).padStart(7)}  ${g.p99.toFixed(2).padStart(7)}  ${g.max.toFixed(0).padStart(7)}   ${String(g.calls).padEnd(9)}  ${g.errors}\n\n` +
        `  throughput ratio gateway/direct: ${ratio.toFixed(2)}x (target >= 0.60x: ${ratio >= 0.6 ? 'met' : 'NOT met'}); per round: ${perRound.map((x) => x.toFixed(2)).join(', ')}\n` +
        `  gateway CPU per call: ${gatewayCalls ? (gatewayCpuUs / gatewayCalls).toFixed(1) : '?'} µs\n`,
    );
    const counters = await gateway.stopWithStats();
    if (counters) process.stdout.write(`  gateway counters (all phases, warm-up included): ${counters}\n`);
  } finally {
    for (const c of children) await c.stop();
  }
}

if (process.argv.includes('--help') || process.argv.includes('-h')) process.stdout.write(HELP);
else if (ROLE === 'backend') await runBackend();
else if (ROLE === 'gateway') await runGateway();
else runMain('grpc-bench', main);
