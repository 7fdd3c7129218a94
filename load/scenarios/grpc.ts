/**
 * What a unary gRPC call costs: Predict throughput, p50/p99 and the CPU each process spent per call,
 * straight to a @grpc/grpc-js backend, through the gateway (`node dist/gateway/main.js serve`, one
 * worker, h2c on its shared public port) and, when installed, through nginx's `grpc_pass` (h2c both
 * sides, one worker, upstream keep-alive), with the same client in the same run. `--gateway-b-main F`
 * adds another build's gateway (an A/B in one run). With taskset, the client and the backend share
 * CPU 0 and the proxies get CPU 1. Each round runs direct, then each proxy; every phase is bounded by
 * time and by call count and records the foreign load during it.
 *
 *   npm run bench -- grpc [--duration 10] [--warmup 2] [--concurrency 64] [--connections 4] [--rounds 3]
 *                         [--max-calls 2000000] [--gateway-args="FLAGS"] [--no-nginx] [--no-pin] [--keep]
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { atCleanup, hasTaskset, pinSelf, runMain, startAnnounced, type Announced } from '../lib/children.js';
import { GATEWAY_MAIN, metricsText, startGateway } from '../lib/gateway.js';
import { freePort } from '../lib/http.js';
import { grpcProxyConf, nginxBinary, startNginx } from '../lib/nginx.js';
import { seldonClient, startBenchBackend, type SeldonClient, type SeldonMessage } from '../lib/grpc.js';
import { foreignPct, machineTicks, treeSeconds } from '../lib/proc.js';
import { QuietGate } from '../lib/quiet.js';
import { f0, f1, log, median, table } from '../lib/report.js';

const ROLE = process.env['GRPC_BENCH_ROLE'];
const SCRIPT = fileURLToPath(import.meta.url);

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

// ---------------------------------------------------------------------------------------------
// Parent: options, children, load.

interface Options {
  durationS: number;
  warmupS: number;
  concurrency: number;
  connections: number;
  rounds: number;
  maxCalls: number;
  /** Extra gateway flags. */
  gatewayArgs: string[];
  /** Gateway B from another build's main.js. */
  gatewayBMain: string | undefined;
  pin: boolean;
  /** Measure nginx's grpc_pass beside the gateways (when installed). */
  nginx: boolean;
  keep: boolean;
}

function options(args: readonly string[]): Options {
  const { values: argv } = parseArgs({
    args: [...args],
    options: {
      duration: { type: 'string' },
      warmup: { type: 'string' },
      concurrency: { type: 'string' },
      connections: { type: 'string' },
      rounds: { type: 'string' },
      'max-calls': { type: 'string' },
      // Values of gateway flags start with a dash: the = form (--gateway-args="--a 1").
      'gateway-args': { type: 'string' },
      'gateway-b-main': { type: 'string' },
      'no-pin': { type: 'boolean' },
      'no-nginx': { type: 'boolean' },
      keep: { type: 'boolean' },
    },
    allowPositionals: false,
  });
  const num = (flag: keyof typeof argv, dflt: number, min: number, max: number): number => {
    const text = argv[flag];
    if (typeof text !== 'string') return dflt;
    const v = Number(text);
    if (!Number.isFinite(v) || v < min || v > max) throw new Error(`--${flag} must be a number in ${min}..${max}`);
    return v;
  };
  const words = (text: string | undefined): string[] | undefined => text?.split(/\s+/).filter(Boolean);
  return {
    durationS: num('duration', 10, 1, 120),
    warmupS: num('warmup', 2, 0, 30),
    concurrency: num('concurrency', 64, 1, 1024),
    connections: num('connections', 4, 1, 64),
    rounds: num('rounds', 3, 1, 10),
    maxCalls: num('max-calls', 2_000_000, 1, 10_000_000),
    gatewayBMain: argv['gateway-b-main'],
    gatewayArgs: words(argv['gateway-args']) ?? [],
    pin: argv['no-pin'] !== true && hasTaskset(),
    nginx: argv['no-nginx'] !== true,
    keep: argv.keep === true,
  };
}

/** Start one of this script's child roles (pinned when `cpu` is given) and wait for its READY line. */
function startRole(label: string, role: string, cpu: number | undefined): Promise<Announced> {
  return startAnnounced(label, selfCommand(), {
    cpu,
    env: { GRPC_BENCH_ROLE: role },
    port: (line) => (line.startsWith('READY ') ? (JSON.parse(line.slice(6)) as { port: number }).port : undefined),
  });
}

/** Whether a Predict through `port` is answered (within 2 s). */
function answersGrpc(port: number): Promise<boolean> {
  const [c] = connect(port, 1);
  return new Promise((resolve) => {
    const timer = setTimeout(() => c!.close(), 2000);
    c!.Predict(REQUEST, new grpc.Metadata(), (err) => {
      clearTimeout(timer);
      c!.close();
      resolve(!err);
    });
  });
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
  p50: number;
  p99: number;
  p999: number;
  max: number;
  calls: number;
  errors: number;
}

function summarise(results: readonly PhaseResult[]): Summary {
  const calls = results.reduce((n, r) => n + r.calls, 0);
  const all = new Float64Array(calls);
  let o = 0;
  for (const r of results) {
    all.set(r.latenciesMs, o);
    o += r.calls;
  }
  all.sort();
  return { p50: percentile(all, 50), p99: percentile(all, 99), p999: percentile(all, 99.9), max: all.length ? all[all.length - 1]! : NaN, calls, errors: results.reduce((n, r) => n + r.errors, 0) };
}

function connect(port: number, n: number): SeldonClient[] {
  // A local subchannel pool per channel: n real TCP connections, not one shared.
  return Array.from({ length: n }, (_, i) => seldonClient(`127.0.0.1:${port}`, { 'grpc.use_local_subchannel_pool': 1, 'grpc.bench_channel': i }));
}

/** One measured phase with its accounting: CPU per call of each process, foreign load, the gateway's stalls. */
interface Measured extends PhaseResult {
  /** µs of CPU per call: the gateway's process tree (null for direct), the backend's, this client's. */
  gatewayUs: number | null;
  backendUs: number;
  clientUs: number;
  otherPct: number;
}

interface Target {
  readonly key: string;
  readonly label: string;
  readonly port: number;
  /** The gateway's process tree; undefined for direct. */
  readonly pid?: number;
  /** The gateway's admin port (its /metrics). */
  readonly admin?: number;
}

const QUIET_PCT = 10;

async function main(): Promise<void> {
  const opt = options(process.argv.slice(2));
  const dir = mkdtempSync(join(tmpdir(), 'sgw-bench-'));
  atCleanup(() => {
    if (opt.keep) process.stderr.write(`kept ${dir}\n`);
    else rmSync(dir, { recursive: true, force: true });
  });
  const quiet = new QuietGate(Number(process.env.BENCH_QUIET_BUDGET ?? 60) * 1000, QUIET_PCT);
  const stops: (() => Promise<void>)[] = [];
  try {
    if (opt.pin) pinSelf(0);
    const backend = await startRole('backend', 'backend', opt.pin ? 0 : undefined);
    stops.push(() => backend.stop());
    writeFileSync(
      join(dir, 'bench.yaml'),
      JSON.stringify({ apiVersion: 'machinelearning.seldon.io/v1', kind: 'SeldonDeployment', metadata: { name: 'bench', namespace: 'load' }, spec: { predictors: [{ name: 'default' }] } }),
    );
    const upstream = 'bench-default.load:5001';
    if (!existsSync(GATEWAY_MAIN)) throw new Error(`${GATEWAY_MAIN} is missing: run npm run build`);
    const nodeArgs = (process.env.BENCH_GATEWAY_NODE_ARGS ?? '').split(/\s+/).filter(Boolean);
    const compiled = async (name: string, args: string[], main?: string): Promise<Target> => {
      const g = await startGateway(name, {
        log: join(dir, `${name}.log`),
        ...(opt.pin ? { cpu: 1 } : {}),
        manifests: dir,
        upstreams: [upstream],
        backendPort: backend.port,
        nodeArgs,
        args,
        ...(main ? { main } : {}),
      });
      return { key: name, label: `${name}${main ? ` (${main})` : ''}${args.length ? ` ${args.join(' ')}` : ''}`, port: g.port, pid: g.server.pid, admin: g.admin };
    };
    const targets: Target[] = [{ key: 'direct', label: 'direct', port: backend.port }];
    targets.push(await compiled('gateway', opt.gatewayArgs));
    if (opt.gatewayBMain) targets.push(await compiled('gateway-b', opt.gatewayArgs, opt.gatewayBMain));
    if (opt.nginx && nginxBinary()) {
      // nginx's grpc_pass on the gateways' core: the reference proxy for gRPC.
      const port = await freePort();
      const s = await startNginx('nginx-grpc', opt.pin ? 1 : 0, grpcProxyConf(join(dir, 'nginx-grpc'), port, backend.port), () => answersGrpc(port));
      targets.push({ key: 'nginx', label: 'nginx grpc_pass (h2c both sides, 1 worker, keepalive 64)', port, pid: s.pid });
    }

    const metadata = new grpc.Metadata();
    metadata.set('seldon', 'bench');
    metadata.set('namespace', 'load');
    const clients = new Map(targets.map((t) => [t.key, connect(t.port, opt.connections)]));
    const results = new Map<string, Measured[]>(targets.map((t) => [t.key, []]));
    log(
      `gRPC unary Predict: ${opt.concurrency} concurrent calls over ${opt.connections} connections, ${opt.rounds} round(s) of ${opt.durationS} s per target; client ${process.version}; ` +
        `proxies ${targets
          .slice(1)
          .map((t) => t.label)
          .join(' and ')}` +
        `${opt.pin ? '; client+backend on CPU 0, gateways on CPU 1' : '; not pinned'}${nodeArgs.length ? `; gateway node flags ${nodeArgs.join(' ')}` : ''}`,
    );
    for (let round = 1; round <= opt.rounds; round++) {
      for (const t of targets) {
        const cs = clients.get(t.key)!;
        if (opt.warmupS > 0) await phase(cs, metadata, opt.concurrency, opt.warmupS, opt.maxCalls);
        await quiet.wait();
        const g0 = t.pid !== undefined ? treeSeconds(t.pid) : 0;
        const b0 = treeSeconds(backend.pid);
        const c0 = process.cpuUsage();
        const m0 = machineTicks();
        const r = await phase(cs, metadata, opt.concurrency, opt.durationS, opt.maxCalls);
        const c1 = process.cpuUsage(c0);
        const n = Math.max(1, r.calls + r.errors);
        const m: Measured = {
          ...r,
          gatewayUs: t.pid !== undefined ? ((treeSeconds(t.pid) - g0) * 1e6) / n : null,
          backendUs: ((treeSeconds(backend.pid) - b0) * 1e6) / n,
          clientUs: (c1.user + c1.system) / n,
          otherPct: foreignPct(m0, machineTicks(), r.seconds),
        };
        results.get(t.key)!.push(m);
        const s = summarise([r]);
        log(
          `  round ${round} ${t.key.padEnd(9)} ${f0(r.calls / r.seconds).padStart(7)} calls/s  p50 ${s.p50.toFixed(2)} ms  p99 ${s.p99.toFixed(2)} ms  max ${s.max.toFixed(0)} ms  (${s.calls} calls, ${s.errors} errors)  ` +
            `CPU µs/call: proxy ${f1(m.gatewayUs)}, backend ${f1(m.backendUs)}, client ${f1(m.clientUs)}  other ${f0(m.otherPct)}%`,
        );
      }
    }
    for (const cs of clients.values()) for (const c of cs) c.close();

    // ----- Report: medians over the phases no other process disturbed (all of them when every one was).
    const clean = (xs: Measured[]): Measured[] => {
      const q = xs.filter((x) => x.otherPct < QUIET_PCT);
      return q.length ? q : xs;
    };
    const med = (xs: Measured[], f: (m: Measured) => number | null): number | null => {
      const v = clean(xs)
        .map(f)
        .filter((x): x is number => x !== null && Number.isFinite(x));
      return v.length ? median(v) : null;
    };
    const rps = (m: Measured): number => m.calls / m.seconds;
    const direct = results.get('direct')!;
    const rows = targets.map((t) => {
      const xs = results.get(t.key)!;
      const s = summarise(xs);
      const noisy = xs.every((x) => x.otherPct >= QUIET_PCT) ? '*' : '';
      const gw = med(xs, (m) => m.gatewayUs);
      const be = med(xs, (m) => m.backendUs);
      return [
        t.label,
        f0(med(xs, rps)) + noisy,
        `${s.p50.toFixed(2)} / ${s.p99.toFixed(2)} / ${s.p999.toFixed(2)} / ${s.max.toFixed(0)}`,
        f1(gw),
        f1(be),
        // What the server side spent per call: the backend alone for direct, gateway + backend through it.
        f1((gw ?? 0) + (be ?? NaN)),
        f1(med(xs, (m) => m.clientUs)),
        String(s.calls),
        String(s.errors),
        `${f0(median(xs.map((x) => x.otherPct)))}/${f0(Math.max(...xs.map((x) => x.otherPct)))}`,
      ];
    });
    log('');
    log(`## Results (median of ${opt.rounds} rounds over the phases with < ${QUIET_PCT}% foreign load, * = all disturbed; latencies pooled)`);
    log('');
    log(
      table(
        ['target', 'calls/s', 'p50 / p99 / p99.9 / max ms', 'proxy CPU µs/call', 'backend CPU µs/call', 'server side µs/call', 'client CPU µs/call', 'calls', 'errors', 'other load % med/max'],
        rows,
      ),
    );
    log('');
    const ratioRows: string[][] = [];
    const pairs: [string, string][] = [];
    for (const t of targets.slice(1)) pairs.push([t.key, 'direct']);
    if (results.has('gateway-b')) pairs.push(['gateway-b', 'gateway']);
    if (results.has('nginx')) for (const k of ['gateway', 'gateway-b']) if (results.has(k)) pairs.push([k, 'nginx']);
    for (const [a, b] of pairs) {
      const xa = results.get(a)!;
      const xb = results.get(b)!;
      const ratio = (med(xa, rps) ?? NaN) / (med(xb, rps) ?? NaN);
      const perRound = xa.map((x, i) => rps(x) / rps(xb[i]!));
      const cpu = b === 'direct' ? '–' : `${((med(xa, (m) => m.gatewayUs) ?? NaN) / (med(xb, (m) => m.gatewayUs) ?? NaN)).toFixed(2)}x`;
      ratioRows.push([`${a} / ${b}`, `${ratio.toFixed(2)}x`, perRound.map((x) => x.toFixed(2)).join(', '), cpu]);
    }
    log(table(['', 'calls/s (medians)', 'per round', 'gateway CPU/call'], ratioRows));
    const gwRatio = (med(results.get('gateway')!, rps) ?? NaN) / (med(direct, rps) ?? NaN);
    log('');
    log(`throughput ratio gateway/direct: ${gwRatio.toFixed(2)}x`);

    // ----- The gateways' own counters (status codes) and stalls over the rounds.
    for (const t of targets) {
      if (t.admin === undefined) continue;
      const text = await metricsText(t.admin);
      const totals = new Map<string, number>();
      for (const line of text.split('\n')) {
        const mm = /^seldon_gateway_(requests|retries|timeouts|unrouted_requests|breaker_rejections)_total\{(.*)\} (\d+)/.exec(line);
        if (!mm || !mm[2]!.includes('protocol="grpc"')) continue;
        const code = /code="(\d+)"/.exec(mm[2]!)?.[1];
        const key = mm[1] === 'requests' ? `gRPC status ${code}` : mm[1]!.replace('_', ' ');
        totals.set(key, (totals.get(key) ?? 0) + Number(mm[3]));
      }
      log(`${t.key} counters (all phases, warm-up included): ${JSON.stringify(Object.fromEntries(totals))}`);
    }
    const disturbed = [...results.values()].flat().filter((x) => x.otherPct >= QUIET_PCT).length;
    if (disturbed) log(`note: ${disturbed} of ${[...results.values()].flat().length} phases ran with ≥ ${QUIET_PCT}% foreign load (other processes on the machine): compare within one run only`);
  } finally {
    for (const stop of stops) await stop();
  }
}

if (ROLE === 'backend') await runBackend();
else runMain('grpc-bench', main);
