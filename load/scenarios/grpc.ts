/**
 * What a unary gRPC call costs: Predict throughput, p50/p99 and the CPU each process spent per call,
 * straight to a @grpc/grpc-js backend, through the gateway (`node dist/gateway/main.js serve`, one
 * worker, h2c on its shared public port) and, when installed, through nginx's `grpc_pass` (h2c both
 * sides, one worker, upstream keep-alive), with the same client in the same run. `--vs-main F`
 * adds another build's gateway (an A/B in one run). With taskset, the client and the backend share
 * CPU 0 and the proxies get CPU 1. Each round runs direct, then each proxy; every phase is bounded by
 * time and by call count and records the foreign load during it.
 *
 *   npm run bench -- grpc [--duration 10] [--warmup 2] [--concurrency 64] [--connections 4] [--rounds 3]
 *                         [--gateway-args="FLAGS"] [--no-nginx] [--no-pin]
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import { sdep, writeManifests } from '../lib/bench-table.js';
import { atCleanup, hasTaskset, pinSelf, runMain, startAnnounced, viteNode } from '../lib/children.js';
import { counter, GATEWAY_MAIN, metricsText, nodeArgsOf, startGateway } from '../lib/gateway.js';
import { freePort } from '../lib/http.js';
import { grpcProxyConf, nginxBinary, startNginx } from '../lib/nginx.js';
import { callLoops, connect, PREDICT_REQUEST, routeMetadata, type CallsResult } from '../lib/grpc.js';
import { measure, quietMedian, type Target as MeasureTarget } from '../lib/measure.js';
import { numbers } from '../lib/options.js';
import { QuietGate } from '../lib/quiet.js';
import { f0, f1, log, median, quantile, ratio, table } from '../lib/report.js';

function options(args: readonly string[]) {
  const { values: argv } = parseArgs({
    args: [...args],
    options: {
      duration: { type: 'string' },
      warmup: { type: 'string' },
      concurrency: { type: 'string' },
      connections: { type: 'string' },
      rounds: { type: 'string' },
      // Values of gateway flags start with a dash: the = form (--gateway-args="--a 1").
      'gateway-args': { type: 'string' },
      'vs-main': { type: 'string' },
      'vs-label': { type: 'string' },
      'no-pin': { type: 'boolean' },
      'no-nginx': { type: 'boolean' },
    },
    allowPositionals: false,
  });
  const n = numbers(argv, { duration: 10, warmup: 2, concurrency: 64, connections: 4, rounds: 3 });
  return {
    durationS: n.duration,
    warmupS: n.warmup,
    concurrency: n.concurrency,
    connections: n.connections,
    rounds: n.rounds,
    gatewayBMain: argv['vs-main'],
    gatewayArgs: argv['gateway-args']?.split(/\s+/).filter(Boolean) ?? [],
    pin: argv['no-pin'] !== true && hasTaskset(),
    nginx: argv['no-nginx'] !== true,
  };
}

/** Whether a Predict through `port` is answered (within 2 s). */
function answersGrpc(port: number): Promise<boolean> {
  const [c] = connect(port, 1);
  return new Promise((resolve) => {
    const timer = setTimeout(() => c!.close(), 2000);
    c!.Predict(PREDICT_REQUEST, new grpc.Metadata(), (err) => {
      clearTimeout(timer);
      c!.close();
      resolve(!err);
    });
  });
}

interface Summary {
  p50: number;
  p99: number;
  p999: number;
  max: number;
  calls: number;
  errors: number;
}

function summarise(results: readonly CallsResult[]): Summary {
  const all = results.flatMap((r) => Array.from(r.latenciesMs)).sort((a, b) => a - b);
  const calls = all.length;
  return { p50: quantile(all, 0.5), p99: quantile(all, 0.99), p999: quantile(all, 0.999), max: all.at(-1) ?? NaN, calls, errors: results.reduce((n, r) => n + r.errors, 0) };
}

/** One measured phase with its accounting: CPU per call of each process, foreign load, the gateway's stalls. */
/** One measured phase: its calls and, per call, the µs of CPU of the proxy's process tree (null for direct), the backend's and this client's. */
interface Measured extends CallsResult {
  readonly gatewayUs: number | null;
  readonly backendUs: number;
  readonly clientUs: number;
  readonly otherPct: number;
}

/** A lib/measure.ts target with its port and, for a gateway, its admin port (its /metrics). */
interface Target extends MeasureTarget {
  readonly port: number;
  readonly admin?: number;
}

const QUIET_PCT = 10;

async function main(): Promise<void> {
  const opt = options(process.argv.slice(2));
  const dir = mkdtempSync(join(tmpdir(), 'sgw-bench-'));
  atCleanup(() => rmSync(dir, { recursive: true, force: true }));
  const quiet = new QuietGate(Number(process.env.BENCH_QUIET_BUDGET ?? 60) * 1000, QUIET_PCT);
  const stops: (() => Promise<void>)[] = [];
  try {
    if (opt.pin) pinSelf(0);
    const backend = await startAnnounced('backend', viteNode('load/lib/grpc-backend.ts'), { cpu: opt.pin ? 0 : undefined, port: (l) => (l.startsWith('READY ') ? Number(l.slice(6)) : undefined) });
    stops.push(() => backend.stop());
    writeManifests(join(dir, 'bench.yaml'), [sdep('bench', 'load', undefined, [{ name: 'default' }])]);
    const upstream = 'bench-default.load:5001';
    if (!existsSync(GATEWAY_MAIN)) throw new Error(`${GATEWAY_MAIN} is missing: run npm run build`);
    const nodeArgs = nodeArgsOf(process.env.BENCH_GATEWAY_NODE_ARGS);
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
      return { key: name, label: `${name}${main ? ` (${main})` : ''}${args.length ? ` ${args.join(' ')}` : ''}`, url: '', port: g.port, proxyPid: g.server.pid, admin: g.admin };
    };
    const targets: Target[] = [{ key: 'direct', label: 'direct', url: '', port: backend.port, proxyPid: null }];
    targets.push(await compiled('gateway', opt.gatewayArgs));
    if (opt.gatewayBMain) targets.push(await compiled('gateway-b', opt.gatewayArgs, opt.gatewayBMain));
    if (opt.nginx && nginxBinary()) {
      // nginx's grpc_pass on the gateways' core: the reference proxy for gRPC.
      const port = await freePort();
      const s = await startNginx('nginx-grpc', opt.pin ? 1 : 0, grpcProxyConf(join(dir, 'nginx-grpc'), port, backend.port), () => answersGrpc(port));
      targets.push({ key: 'nginx', label: 'nginx grpc_pass (h2c both sides, 1 worker, keepalive 64)', url: '', port, proxyPid: s.pid });
    }

    const metadata = routeMetadata('bench', 'load');
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
        if (opt.warmupS > 0) await callLoops(cs, metadata, opt.concurrency, opt.warmupS);
        const c0 = process.cpuUsage();
        const a = await measure(t, backend.pid, quiet, () => callLoops(cs, metadata, opt.concurrency, opt.durationS).then((r) => ({ ...r, completed: r.calls, failed: r.errors })));
        const r = a.result;
        const c1 = process.cpuUsage(c0);
        const m: Measured = { ...r, gatewayUs: a.proxyUsPerReq, backendUs: a.backendUsPerReq, clientUs: (c1.user + c1.system) / Math.max(1, r.calls + r.errors), otherPct: a.otherPct };
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
    const med = (xs: Measured[], f: (m: Measured) => number | null): number | null => quietMedian(xs, f, QUIET_PCT);
    const rps = (m: Measured): number => m.calls / m.seconds;
    const gwUs = (m: Measured): number | null => m.gatewayUs;
    const rows = targets.map((t) => {
      const xs = results.get(t.key)!;
      const s = summarise(xs);
      const noisy = xs.every((x) => x.otherPct >= QUIET_PCT) ? '*' : '';
      const gw = med(xs, gwUs);
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
      const perRound = xa.map((x, i) => rps(x) / rps(xb[i]!));
      const cpu = b === 'direct' ? '–' : ratio(med(xa, gwUs), med(xb, gwUs));
      ratioRows.push([`${a} / ${b}`, ratio(med(xa, rps), med(xb, rps)), perRound.map((x) => x.toFixed(2)).join(', '), cpu]);
    }
    log(table(['', 'calls/s (medians)', 'per round', 'gateway CPU/call'], ratioRows));

    // ----- The gateways' own counters over the rounds.
    for (const t of targets) {
      if (t.admin === undefined) continue;
      const text = await metricsText(t.admin);
      const c = (metric: string, labels: Record<string, string> = {}): number => counter(text, `seldon_gateway_${metric}_total`, { protocol: 'grpc', ...labels });
      log(`${t.key} counters (all phases, warm-up included): gRPC status 0 ${c('requests', { code: '0' })}, all ${c('requests')}, retries ${c('retries')}, timeouts ${c('timeouts')}`);
    }
    const disturbed = [...results.values()].flat().filter((x) => x.otherPct >= QUIET_PCT).length;
    if (disturbed) log(`note: ${disturbed} of ${[...results.values()].flat().length} phases ran with ≥ ${QUIET_PCT}% foreign load (other processes on the machine): compare within one run only`);
  } finally {
    for (const stop of stops) await stop();
  }
}

runMain('grpc-bench', main);
