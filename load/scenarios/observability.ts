/**
 * What observation costs (not a test): the same gateway, table and backend, with each
 * observation setting in its own process, measured in one run, rounds interleaved:
 *
 *   plain        --access-log off (no tracing: no --otlp-endpoint)
 *   tracing off  --access-log off --trace-sample 0.01, no --otlp-endpoint: tracing is never built
 *                (the same code path as plain: the difference between them is the noise floor)
 *   traced 0%    --otlp-endpoint set, --trace-sample 0: every request gets a trace id and a
 *                traceparent for its upstream, no span is made
 *   traced 1%    --trace-sample 0.01
 *   traced 100%  --trace-sample 1: a server and an attempt span per request, exported
 *   access json  --access-log on (the default), JSON lines to stdout (a file here)
 *   access text  --access-log-format text
 *
 * The collector is an OTLP/HTTP sink in this process (it reads and drops each export, answering
 * 200), on the load core. Per target and round: wrk at --conns connections for --duration
 * seconds; the CPU time (utime+stime, /proc) the gateway spent per request; requests/s and
 * latency. The table shows medians and the best (least disturbed) run, each against plain's, and
 * the targets, judged on the best runs (off: nothing measurable; 1%: under 3% more CPU
 * per request; access log on: under 10%). load/README.md ("Observability benchmark") says how to
 * read it.
 *
 *   npm run bench -- observability [--rounds 2] [--duration 4] [--conns 64]
 *
 * Everything listens on and talks to 127.0.0.1 only; every run is bounded in time; every child
 * is stopped on exit, error, Ctrl-C or SIGTERM.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { generateManifests, MEASURED, predictionPath } from '../lib/bench-table.js';
import { atCleanup, nodeScript, pinSelf, ROOT, runMain, startServer, waitFor, which, type Spawned } from '../lib/children.js';
import { ClosedLoop, type LoadResult } from '../lib/closed-loop.js';
import { buildInfo, GATEWAY_MAIN, metricsText, restUpstreams, startGateway, type Gateway } from '../lib/gateway.js';
import { freePort, postStatus } from '../lib/http.js';
import { measure, type Accounted, type Target } from '../lib/measure.js';
import { backendConf, nginxBinary, startNginx } from '../lib/nginx.js';
import { CLK_TCK } from '../lib/proc.js';
import { numberSetting } from '../lib/options.js';
import { QuietGate } from '../lib/quiet.js';
import { f0, f1, log, median, ms, table, verdict } from '../lib/report.js';

const { values: argv } = parseArgs({
  options: {
    rounds: { type: 'string' },
    duration: { type: 'string' },
    conns: { type: 'string' },
    deployments: { type: 'string' },
    'load-cpu': { type: 'string' },
    'server-cpu': { type: 'string' },
    build: { type: 'boolean' },
    keep: { type: 'boolean' },
  },
});
const ROUNDS = Math.max(1, Math.floor(numberSetting(argv.rounds, 'BENCH_ROUNDS', 2)));
const DURATION_S = Math.max(1, numberSetting(argv.duration, 'BENCH_DURATION', 4));
const CONNS = Math.max(1, Math.floor(numberSetting(argv.conns, 'BENCH_CONNS', 64)));
const DEPLOYMENTS = Math.max(3, Math.floor(numberSetting(argv.deployments, 'BENCH_DEPLOYMENTS', 1000)));
const LOAD_CPU = Math.floor(numberSetting(argv['load-cpu'], 'BENCH_LOAD_CPU', 0));
const SERVER_CPU = Math.floor(numberSetting(argv['server-cpu'], 'BENCH_SERVER_CPU', 1));
const WARMUP_S = 2;
const QUIET = new QuietGate(numberSetting(undefined, 'BENCH_QUIET_BUDGET', 60) * 1000, 10);
const LIB = join(dirname(fileURLToPath(import.meta.url)), '..', 'lib');
const BODY = '{"data":{"names":["a","b","c","d"],"ndarray":[[5.1,3.5,1.4,0.2]]}}';
const BACKEND_BODY = '{"data":{"names":["t:0","t:1"],"ndarray":[[0.1,0.9]]},"meta":{"requestPath":{"model":"bench:1"}}}';

interface Setting {
  readonly key: string;
  readonly label: string;
  /** Gateway flags; `{sink}` is replaced by the OTLP sink's URL. */
  readonly args: readonly string[];
}

const SETTINGS: readonly Setting[] = [
  { key: 'plain', label: 'plain (--access-log off)', args: ['--access-log', 'off'] },
  { key: 'off', label: 'tracing off (no --otlp-endpoint, --trace-sample 0.01)', args: ['--access-log', 'off', '--trace-sample', '0.01'] },
  { key: 't0', label: 'traced, 0% sampled', args: ['--access-log', 'off', '--otlp-endpoint', '{sink}', '--trace-sample', '0'] },
  { key: 't1', label: 'traced, 1% sampled', args: ['--access-log', 'off', '--otlp-endpoint', '{sink}', '--trace-sample', '0.01'] },
  { key: 't100', label: 'traced, 100% sampled', args: ['--access-log', 'off', '--otlp-endpoint', '{sink}', '--trace-sample', '1'] },
  { key: 'json', label: 'access log on (json, to a file)', args: ['--access-log', 'on'] },
  { key: 'text', label: 'access log on (text, to a file)', args: ['--access-log', 'on', '--access-log-format', 'text'] },
];

/** An OTLP/HTTP collector that takes every export and drops it (answers 200 with an empty protobuf response). */
async function startSink(): Promise<{ url: string; stats: { exports: number; bytes: number }; close(): void }> {
  const stats = { exports: 0, bytes: 0 };
  const server = http.createServer((req, res) => {
    req.on('data', (c: Buffer) => (stats.bytes += c.length));
    req.on('end', () => {
      stats.exports++;
      res.writeHead(200, { 'content-type': 'application/x-protobuf', 'content-length': 0 }).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, stats, close: () => server.close() };
}

/** A counter's total in Prometheus text (all label sets summed). */
function total(text: string, name: string): number {
  let sum = 0;
  for (const line of text.split('\n')) if (line.startsWith(name) && (line[name.length] === ' ' || line[name.length] === '{')) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  return sum;
}

async function main(): Promise<void> {
  pinSelf(LOAD_CPU);
  if (argv.build) execFileSync('npm', ['run', 'build'], { cwd: ROOT, stdio: 'inherit' });
  if (!existsSync(GATEWAY_MAIN)) throw new Error(`${GATEWAY_MAIN} is missing: run 'npm run build' first (or pass --build)`);
  const cores = cpus().length;
  if (Math.max(LOAD_CPU, SERVER_CPU) >= cores) throw new Error(`only ${cores} cores: --load-cpu/--server-cpu must be < ${cores}`);
  const tmp = mkdtempSync(join(tmpdir(), 'observe-bench-'));
  atCleanup(() => {
    if (argv.keep) process.stderr.write(`kept ${tmp}\n`);
    else rmSync(tmp, { recursive: true, force: true });
  });

  const wrk = which('wrk');
  const loop = new ClosedLoop(wrk, LOAD_CPU, BODY, tmp);
  const probePath = predictionPath(MEASURED);
  const answers = (port: number) => async (): Promise<boolean> => (await postStatus(`http://127.0.0.1:${port}${probePath}`, BODY)) === 200;

  // The backend: nginx `return 200` when installed, else the node:http one; on the gateways' core.
  const backendPort = await freePort();
  let backend: Spawned;
  if (nginxBinary()) backend = await startNginx('backend', SERVER_CPU, backendConf(join(tmp, 'backend'), backendPort, BACKEND_BODY), answers(backendPort));
  else {
    backend = startServer('backend', join(tmp, 'backend.log'), SERVER_CPU, [process.execPath, ...nodeScript(LIB, 'node-backend')], { BENCH_PORT: String(backendPort) });
    await waitFor('backend', backend, answers(backendPort));
  }

  const sink = await startSink();
  atCleanup(() => sink.close());
  const manifests = join(tmp, 'manifests');
  const count = generateManifests(manifests, DEPLOYMENTS);
  const { upstreams } = restUpstreams(manifests);

  const gateways = new Map<string, Gateway>();
  const targets: Target[] = [];
  for (const s of SETTINGS) {
    const g = await startGateway(`gateway-${s.key}`, {
      log: join(tmp, `gateway-${s.key}.log`),
      cpu: SERVER_CPU,
      manifests,
      upstreams,
      backendPort,
      nodeArgs: [],
      args: s.args.map((a) => (a === '{sink}' ? sink.url : a)),
    });
    const status = await postStatus(`http://127.0.0.1:${g.port}${probePath}`, BODY);
    if (status !== 200) throw new Error(`gateway ${s.key} answered ${status}:\n${g.server.output().slice(-3000)}`);
    gateways.set(s.key, g);
    targets.push({ key: s.key, label: s.label, url: `http://127.0.0.1:${g.port}${probePath}`, proxyPid: g.server.pid });
  }

  log(`# observe-bench ${new Date().toISOString()}  node ${process.version}, ${cores} cores, CLK_TCK ${CLK_TCK}`);
  log(`load: ${wrk ? 'wrk -t1' : 'autocannon'} at ${CONNS} connections, ${DURATION_S}s per run, ${ROUNDS} interleaved rounds (medians); POST ${BODY.length}-byte JSON`);
  log(`pinning: load generator, runner and OTLP sink on core ${LOAD_CPU}; each gateway (--workers 1) and the backend on core ${SERVER_CPU}`);
  log(`gateway build: ${buildInfo(GATEWAY_MAIN)}`);
  log(
    `table: ${count} SeldonDeployments, ${upstreams.length} REST upstreams --resolve'd to the backend (${nginxBinary() ? 'nginx return 200' : 'node:http'}); measured: the 90/10 canary ${probePath}`,
  );
  log('');

  for (const t of targets) await loop.run(t.url, CONNS, WARMUP_S);
  const metrics0 = new Map<string, string>();
  for (const [k, g] of gateways) metrics0.set(k, await metricsText(g.admin));

  const runs = new Map<string, Accounted<LoadResult>[]>();
  for (let round = 0; round < ROUNDS; round++) {
    const order = targets.map((_, i) => targets[(i + round) % targets.length]!);
    for (const t of order) {
      const a = await measure(
        t,
        backend.pid,
        QUIET,
        () => loop.run(t.url, CONNS, DURATION_S),
        (r) => r.completed,
      );
      runs.set(t.key, [...(runs.get(t.key) ?? []), a]);
      log(
        `  round ${round + 1} ${t.key.padEnd(5)} ${f0(a.result.rps)} req/s, gateway ${f1(a.proxyUsPerReq)} µs/req, p99 ${ms(a.result.p99us)} ms, foreign load ${f1(a.otherPct)}%${a.result.non2xx || a.result.socketErrors ? `, ${a.result.non2xx} non-2xx, ${a.result.socketErrors} socket errors` : ''}`,
      );
    }
  }

  const usPerReq = (key: string): number[] => (runs.get(key) ?? []).map((a) => a.proxyUsPerReq ?? NaN);
  const cpuOf = (key: string): number => median(usPerReq(key));
  /** The least disturbed run: other load only ever adds CPU per request (caches, the scheduler). */
  const bestOf = (key: string): number => Math.min(...usPerReq(key));
  const base = cpuOf('plain');
  const bestBase = bestOf('plain');
  const rows = targets.map((t) => {
    const rs = runs.get(t.key) ?? [];
    const cpu = cpuOf(t.key);
    return [
      t.label,
      f0(median(rs.map((a) => a.result.rps))),
      f1(cpu),
      t.key === 'plain' ? '1.000' : (cpu / base).toFixed(3),
      f1(bestOf(t.key)),
      t.key === 'plain' ? '1.000' : (bestOf(t.key) / bestBase).toFixed(3),
      ms(median(rs.map((a) => a.result.p50us))),
      ms(median(rs.map((a) => a.result.p99us))),
      f1(Math.max(...rs.map((a) => a.otherPct))),
    ];
  });
  log('');
  log(table(['setting', 'req/s', 'gateway CPU µs/req (median)', 'vs plain', 'best run µs/req', 'vs plain', 'p50 ms', 'p99 ms', 'max foreign load %'], rows));
  log('');

  // The verdicts compare best runs: on a shared machine the medians carry other people's load.
  const more = (key: string): number => bestOf(key) / bestBase - 1;
  const pct = (key: string): string => `${(more(key) * 100).toFixed(1)}%`;
  const noise = Math.abs(more('off'));
  log(`targets (best run's CPU per request against plain's; the noise floor, |off/plain - 1|, is ${(noise * 100).toFixed(1)}%):`);
  log(`  tracing off costs nothing measurable (within the noise floor, or under 1%): ${pct('off')} ${verdict(more('off') <= Math.max(0.01, noise))}`);
  log(`  1% sampling under 3% more CPU per request: ${pct('t1')} ${verdict(more('t1') < 0.03)}`);
  log(`  access log on under 10% more: json ${pct('json')} ${verdict(more('json') < 0.1)}, text ${pct('text')} ${verdict(more('text') < 0.1)}`);
  log('');

  // What each gateway did beside serving: spans exported or dropped, access log lines dropped, log bytes.
  for (const [k, g] of gateways) {
    const m1 = await metricsText(g.admin);
    const m0 = metrics0.get(k) ?? '';
    const d = (name: string): number => total(m1, name) - total(m0, name);
    const parts = [
      `spans exported ${f0(d('seldon_gateway_tracing_spans_exported_total'))}`,
      `spans dropped ${f0(d('seldon_gateway_tracing_spans_dropped_total'))}`,
      `access lines dropped ${f0(d('seldon_gateway_access_log_dropped_total'))}`,
    ];
    let size = 0;
    try {
      size = statSync(join(tmp, `gateway-${k}.log`)).size;
    } catch {
      /* none */
    }
    log(`  ${k.padEnd(5)} ${parts.join(', ')}, stdout ${f0(size / 1024)} KiB`);
  }
  log(`  OTLP sink: ${sink.stats.exports} exports, ${f0(sink.stats.bytes / 1024)} KiB of protobuf`);
}

runMain('observe-bench', main);
