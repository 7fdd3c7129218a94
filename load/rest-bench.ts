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
 *            stack at all: what the Node runtime alone costs (load/lib/bare-proxy.ts); relay, the
 *            raw TCP relay (each client connection piped to its own upstream one, bytes
 *            unparsed: load/lib/relay-proxy.ts), the floor of a Node proxy; floors run only when --targets
 *            names them
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
 *   npx vite-node load/rest-bench.ts --preset floor   # gateway / relay at 16, 64, 256 connections beside nginx
 *
 * This file composes the pieces in load/lib/: rest-bench-options (its options), children (processes, pinning, cleanup), nginx,
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
import { BANDIT, FLOWED, FLOWED_ANNOTATION, generateManifests, HEADER_SDEP, MEASURED, NS, PLAIN, predictionPath, ROLLED_OUT, SHADOWED } from './lib/bench-table.js';
import { atCleanup, nodeScript, pinSelf, ROOT, runMain, startServer, waitFor, which, type Spawned } from './lib/children.js';
import { ClosedLoop } from './lib/closed-loop.js';
import { fixedRate } from './lib/fixed-rate.js';
import { buildInfo, GATEWAY_MAIN, metricsText, nodeVersion, restUpstreams, startGateway, type Gateway } from './lib/gateway.js';
import { freePort, postStatus } from './lib/http.js';
import { measure, type Sample, type Target } from './lib/measure.js';
import { backendConf, nginxBinary, proxyConf, startNginx } from './lib/nginx.js';
import { haproxyBinary, startHaproxyProxy } from './lib/haproxy.js';
import { caddyBinary, startCaddyProxy } from './lib/caddy.js';
import { CLK_TCK } from './lib/proc.js';
import { profileGateway } from './lib/profile.js';
import { numberSetting } from './lib/options.js';
import { QuietGate } from './lib/quiet.js';
import { f0, log, median } from './lib/report.js';
import { formatRuntimeDelta, runtimeDelta, runtimeSnapshot, type RuntimeDelta } from './lib/runtime-stats.js';
import { closedLine, gatewayCounters, printNoiseNotes, printTables, rateLine } from './lib/rest-report.js';

import {
  argv,
  PRESET_NAME,
  ROUNDS,
  DURATION_S,
  RATE_FRACTIONS,
  FIXED_RATES,
  RATE_DURATION_S,
  CONNS,
  DEPLOYMENTS,
  LOAD_CPU,
  SERVER_CPU,
  BACKEND_CPU,
  PROFILE_S,
  PROFILE_TARGET,
  TARGETS,
  NODE_BACKEND,
  WARMUP_S,
  GATEWAY_NODE_ARGS,
  ACCESS_LOG,
  GATEWAY_ARGS,
  GATEWAY_NODE,
  RATE_WARMUP_MS,
  GATEWAY_B,
} from './lib/rest-bench-options.js';

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
  if (TARGETS.has('haproxy') && haproxyBinary()) {
    const port = await freePort();
    const s = await startHaproxyProxy(join(tmp, 'proxy-haproxy'), port, backendPort, SERVER_CPU, answers(port), ACCESS_LOG);
    targets.push({ key: 'haproxy', label: 'haproxy 2.6 proxy (1 thread, http-reuse always)', url: url(port), proxyPid: s.pid });
  }
  if (TARGETS.has('caddy') && caddyBinary()) {
    const port = await freePort();
    const s = await startCaddyProxy(join(tmp, 'proxy-caddy'), port, backendPort, SERVER_CPU, answers(port), ACCESS_LOG);
    targets.push({ key: 'caddy', label: 'Caddy 2.6 reverse_proxy (Go, GOMAXPROCS=1)', url: url(port), proxyPid: s.pid });
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
  // sockets; no HTTP stack at all (bare-proxy); and the raw TCP relay (relay-proxy), the floor of a Node proxy.
  for (const [key, client, label] of [
    ['relay', 'relay', 'relay: raw TCP, each client connection piped to its own upstream one'],
    ['floor', 'undici', 'floor: minimal undici proxy'],
    ['floor-gw', 'gateway', "floor: minimal proxy on the gateway's client"],
    ['floor-http', 'node-http', 'floor: minimal node:http proxy'],
    ['floor-raw', 'raw', 'floor: raw sockets, Content-Length only (not a usable proxy)'],
    ['floor-bare', 'bare', 'floor: raw sockets both sides, no HTTP stack (not a usable proxy)'],
  ] as const) {
    if (!TARGETS.has(key)) continue;
    const port = await freePort();
    const s = startServer(key, join(tmp, `${key}.log`), SERVER_CPU, [process.execPath, ...nodeScript(LIB, client === 'relay' ? 'relay-proxy' : client === 'bare' ? 'bare-proxy' : 'floor-proxy')], {
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
        const s: Sample = {
          ...m.result,
          proxyUsPerReq: m.proxyUsPerReq,
          proxySysUsPerReq: m.proxySysUsPerReq,
          backendUsPerReq: m.backendUsPerReq,
          otherPct: m.otherPct,
          stealPct: m.stealPct,
          perReq: m.perReq,
        };
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
          proxySysUsPerReq: m.proxySysUsPerReq,
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
