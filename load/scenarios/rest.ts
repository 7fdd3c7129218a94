/**
 * What a REST request costs through the gateway beside the proxies an operator would otherwise run,
 * in one run: the backend alone, the raw TCP relay (the floor of a Node proxy: bytes piped, no HTTP),
 * nginx, haproxy and Caddy where installed, and the gateway (one worker, a 1,000-SeldonDeployment
 * table, the measured deployment a 90/10 canary with a header rule beside it).
 *
 *   --shape floor   a 66-byte JSON request, a 99-byte answer
 *   --shape large   large bodies (the shape of image and tensor payloads), one case per size and
 *                   direction: a large request with a small answer, and a small request with a large
 *                   answer, at --sizes (KiB: 256,1024,8192; --quick: 1024), each case with a fresh set
 *                   of servers, its table giving CPU per request and per MiB of body, and the ratios to
 *                   the relay's and haproxy's CPU and p99; --protocols h1,h2,grpc (the default) runs them over
 *                   HTTP/1.1 (wrk), again over HTTP/2 with prior knowledge (h2c, h2load: the gateway, nginx
 *                   `listen http2`, haproxy `bind proto h2`, each to the HTTP/1.1 backend), then a gRPC Predict
 *                   with a --grpc-kib tensor (1024) that a node:http2 stand-in echoes unparsed, through the relay, nginx's
 *                   `grpc_pass`, haproxy (`proto h2` both sides) and the gateway (h2load, h2c); over h2c and gRPC the
 *                   Node HTTP/2 relay (lib/h2-relay-proxy.ts) is the floor of a Node proxy that must speak HTTP/2
 *   --vs-main F     instead of the peers, an interleaved A/B of this build's gateway against the one
 *                   at F (another build's dist/gateway/main.js): per-round CPU per request, the
 *                   spread of the rounds, and a verdict
 *   --vs-node-args A  the node flags of the --vs-main gateway (default: BENCH_GATEWAY_NODE_ARGS, as this
 *                   build's); with --vs-main dist/gateway/main.js, an A/B of one build under two sets of flags
 *
 * Closed loop (wrk -t1, or autocannon when wrk is absent) on core 0, the proxies and the backend on
 * core 1; CPU per request is each proxy's process tree utime+stime from /proc over the requests it
 * answered. Rounds interleave the targets; the table gives medians.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { generateManifests, MEASURED, predictionPath, sdep, SMALL_BODY, tensorJson, writeManifests } from '../lib/bench-table.js';
import { atCleanup, pinSelf, runMain, startScript, stopServer, which, type Spawned } from '../lib/children.js';
import { ClosedLoop, type LoadResult } from '../lib/closed-loop.js';
import { caddyBinary, startCaddyProxy } from '../lib/caddy.js';
import { buildInfo, GATEWAY_MAIN, nodeArgsOf, restUpstreams, startGateway } from '../lib/gateway.js';
import { predictFrame } from '../lib/grpc.js';
import { H2Load, h2loadBinary } from '../lib/h2load.js';
import { haproxyBinary, startHaproxyProxy } from '../lib/haproxy.js';
import { freePort, h2Post, postStatus } from '../lib/http.js';
import { measure, type Target } from '../lib/measure.js';
import { grpcProxyConf, nginxBinary, proxyConf, startBackend, startNginx } from '../lib/nginx.js';
import { descendants } from '../lib/proc.js';
import { QuietGate } from '../lib/quiet.js';
import { abVerdict, f0, f1, f2, log, median, ratio, table } from '../lib/report.js';
import { vmRss } from '../lib/soak-report.js';

/** Resident memory of a process tree, bytes. */
const treeRss = (pid: number): number => [pid, ...descendants(pid)].reduce((n, p) => n + vmRss(p), 0);

const { values: argv } = parseArgs({
  options: {
    shape: { type: 'string', default: 'floor' },
    quick: { type: 'boolean', default: false },
    rounds: { type: 'string' },
    seconds: { type: 'string' },
    conns: { type: 'string' },
    sizes: { type: 'string' },
    directions: { type: 'string' },
    protocols: { type: 'string' },
    'grpc-kib': { type: 'string', default: '1024' },
    'vs-main': { type: 'string' },
    'vs-label': { type: 'string', default: 'other build' },
    'vs-node-args': { type: 'string' },
  },
});
const LARGE = argv.shape === 'large';
if (!LARGE && argv.shape !== 'floor') throw new Error(`--shape is floor or large, not ${argv.shape}`);
const AB = argv['vs-main'];
const ROUNDS = Number(argv.rounds ?? (AB ? (argv.quick ? 6 : 10) : argv.quick ? 2 : 5));
const SECONDS = Number(argv.seconds ?? (argv.quick ? 3 : 5));
const CONNS = (argv.conns ?? (LARGE ? '16' : argv.quick || AB ? '64' : '16,64,256')).split(',').map(Number);
/** Node flags of the gateways, e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof` for a profile under the load. */
const NODE_ARGS = nodeArgsOf(process.env.BENCH_GATEWAY_NODE_ARGS);
const VS_NODE_ARGS = argv['vs-node-args'] === undefined ? NODE_ARGS : nodeArgsOf(argv['vs-node-args']);
const LOAD_CPU = 0;
const SERVER_CPU = 1;
const MIB = 1 << 20;
const KIB = 1 << 10;

type Protocol = 'h1' | 'h2' | 'grpc';
/** One measured shape: the request's body and the answer's size (0: the backend's small answer), and how it goes. */
interface Case {
  readonly title: string;
  readonly body: string | Buffer;
  readonly answerBytes: number;
  /** The large body's size (per MiB figures), or 0 for the small floor. */
  readonly largeBytes: number;
  readonly protocol: Protocol;
}

const SIZES = (argv.sizes ?? (argv.quick ? '1024' : '256,1024,8192')).split(',').map((k) => Number(k) * KIB);
const DIRECTIONS = (argv.directions ?? 'requests,answers').split(',');
for (const d of DIRECTIONS) if (d !== 'requests' && d !== 'answers') throw new Error(`--directions takes requests and answers, not ${d}`);
const sizeText = (bytes: number): string => (bytes >= MIB ? `${bytes / MIB} MiB` : `${bytes / KIB} KiB`);
const PROTOCOLS = (LARGE ? (argv.protocols ?? 'h1,h2,grpc') : 'h1').split(',') as Protocol[];
for (const p of PROTOCOLS) if (p !== 'h1' && p !== 'h2' && p !== 'grpc') throw new Error(`--protocols takes h1, h2 and grpc, not ${p as string}`);
const GRPC_BYTES = Number(argv['grpc-kib']) * KIB;
const GRPC_PATH = '/seldon.protos.Seldon/Predict';
/** What routes a gRPC call through the gateway (`seldon`, `namespace`) and what every gRPC client sends. */
const GRPC_FIELDS = { 'content-type': 'application/grpc', te: 'trailers', seldon: 'bench', namespace: 'load' };
const restCases = (protocol: Protocol): Case[] => {
  const over = protocol === 'h2' ? ' over HTTP/2 (h2c)' : '';
  return SIZES.flatMap((bytes) =>
    DIRECTIONS.map((d) =>
      d === 'requests'
        ? { title: `${sizeText(bytes)} requests, small answers${over}`, body: tensorJson(bytes), answerBytes: 0, largeBytes: bytes, protocol }
        : { title: `small requests, ${sizeText(bytes)} answers${over}`, body: SMALL_BODY, answerBytes: bytes, largeBytes: bytes, protocol },
    ),
  );
};
const CASES: Case[] = LARGE
  ? PROTOCOLS.flatMap((p) =>
      p === 'grpc'
        ? [
            {
              title: `gRPC Predict, a ${sizeText(GRPC_BYTES)} tensor each way (the model stand-in echoes it)`,
              body: predictFrame(GRPC_BYTES),
              answerBytes: GRPC_BYTES,
              largeBytes: GRPC_BYTES,
              protocol: p,
            },
          ]
        : restCases(p),
    )
  : [{ title: 'small requests and answers', body: SMALL_BODY, answerBytes: 0, largeBytes: 0, protocol: 'h1' }];

interface Row {
  rps: number;
  us: number | null;
  p50us: number;
  p99us: number;
  errors: number;
}

async function main(): Promise<void> {
  pinSelf(LOAD_CPU);
  const tmp = mkdtempSync(join(tmpdir(), 'bench-rest-'));
  atCleanup(() => rmSync(tmp, { recursive: true, force: true }));
  const manifests = join(tmp, 'manifests');
  const count = generateManifests(manifests, 1000);
  const { upstreams } = restUpstreams(manifests);
  log(
    `load: ${which('wrk') ? 'wrk -t1' : 'autocannon'} on core ${LOAD_CPU}, closed loop, ${SECONDS} s per run at ${CONNS.join(', ')} connections, ${ROUNDS} interleaved rounds; proxies and backend on core ${SERVER_CPU}`,
  );
  log(`gateway table ${count} SeldonDeployments, access logs off`);
  // gRPC cases' gateway: one deployment whose gRPC upstream is the grpc-js backend (as `npm run bench -- grpc`).
  const grpcManifests = join(tmp, 'grpc.yaml');
  writeManifests(grpcManifests, [sdep('bench', 'load', undefined, [{ name: 'default' }])]);
  for (let i = 0; i < CASES.length; i++) {
    const c = CASES[i]!;
    await (c.protocol === 'grpc' ? runCase(c, join(tmp, `case-${i}`), grpcManifests, ['bench-default.load:5001']) : runCase(c, join(tmp, `case-${i}`), manifests, upstreams));
  }
}

/** How each protocol's case is sent, and whether an answer through `port` is a good one (its readiness probe). */
function loadFor(
  c: Case,
  tmp: string,
): { loop: { run(url: string, conns: number, seconds: number): Promise<LoadResult> }; path: string; answers: (port: number) => () => Promise<boolean>; note?: string } | null {
  if (c.protocol === 'h1') {
    const wrk = which('wrk');
    const path = predictionPath(MEASURED);
    return {
      loop: new ClosedLoop(wrk, LOAD_CPU, c.body as string, tmp),
      path,
      answers: (port) => async () => (await postStatus(`http://127.0.0.1:${port}${path}`, SMALL_BODY)) === 200,
      ...(wrk ? {} : { note: 'wrk is not installed: the load is autocannon, a node process that may saturate its core first' }),
    };
  }
  const h2load = h2loadBinary();
  if (!h2load) return null;
  if (c.protocol === 'h2') {
    const path = predictionPath(MEASURED);
    return {
      loop: new H2Load(h2load, LOAD_CPU, c.body, tmp),
      path,
      answers: (port) => async () => (await h2Post(`http://127.0.0.1:${port}${path}`, SMALL_BODY, { 'content-type': 'application/json' })).status === 200,
    };
  }
  const probe = predictFrame(64);
  return {
    loop: new H2Load(
      h2load,
      LOAD_CPU,
      c.body,
      tmp,
      Object.entries(GRPC_FIELDS).map(([k, v]) => `${k}: ${v}`),
    ),
    path: GRPC_PATH,
    answers: (port) => async () => {
      const r = await h2Post(`http://127.0.0.1:${port}${GRPC_PATH}`, probe, GRPC_FIELDS);
      return r.status === 200 && r.grpcStatus === '0';
    },
  };
}

/** One shape against every target, with servers of its own (a backend answering its size, the peers, the gateways), stopped after it. */
async function runCase(c: Case, tmp: string, manifests: string, upstreams: readonly string[]): Promise<void> {
  mkdirSync(tmp, { recursive: true });
  const how = loadFor(c, tmp);
  if (!how) {
    log('');
    log(`## ${c.title}: not measured, h2load is not installed (apt-get install nghttp2-client)`);
    return;
  }
  const { loop, path, answers } = how;
  const notes: string[] = how.note ? [how.note] : [];
  const grpcCase = c.protocol === 'grpc';
  const backend = grpcCase
    ? await startScript('grpc-echo-backend', tmp, SERVER_CPU, {}, { name: 'backend' })
    : await startBackend(tmp, SERVER_CPU, c.answerBytes ? { answerBytes: c.answerBytes } : {});
  const { pid: backendPid, port: backendPort } = backend;
  const backendServer = 'server' in backend ? backend.server : backend;

  const targets: Target[] = [];
  const servers = new Map<string, Spawned>();
  const url = (port: number): string => `http://127.0.0.1:${port}${path}`;
  /** Adds a target, or replaces the one of the same key (a restarted gateway). */
  const add = (key: string, label: string, port: number, s: Spawned | null): void => {
    const t = { key, label, url: url(port), proxyPid: s?.pid ?? null };
    const i = targets.findIndex((x) => x.key === key);
    if (i < 0) targets.push(t);
    else targets[i] = t;
    if (s) servers.set(key, s);
  };
  if (!AB) {
    // Over h2c the HTTP/1.1 backend cannot be asked directly, nor through the raw relay (bytes unparsed).
    if (c.protocol === 'h2') notes.push('over h2c the backend (HTTP/1.1) has no direct row and the raw relay no row: they would speak HTTP/2 to it');
    else {
      add('direct', grpcCase ? 'the backend alone (node:http2 echo)' : 'the backend alone (node:http)', backendPort, null);
      const relay = await startScript('relay-proxy', tmp, SERVER_CPU, { BENCH_UPSTREAM_PORT: String(backendPort) }, { name: 'relay' });
      add('relay', 'relay: raw TCP on Node, no HTTP', relay.port, relay);
    }
    // The floor of a Node proxy that must speak HTTP/2: node:http2 in, the model's protocol out, bodies piped.
    if (c.protocol !== 'h1') {
      const env = { BENCH_UPSTREAM_PORT: String(backendPort), BENCH_UPSTREAM_PROTOCOL: grpcCase ? 'h2' : 'h1' };
      const h2relay = await startScript('h2-relay-proxy', tmp, SERVER_CPU, env, { name: 'h2relay', ready: (port) => answers(port)() });
      add('h2relay', `Node HTTP/2 relay: node:http2, ${grpcCase ? 'one http2 session to the model' : 'keep-alive http.Agent'}, no routing`, h2relay.port, h2relay);
    }
    const h2 = c.protocol !== 'h1';
    type Peer = [string, string, () => string | null, (dir: string, port: number) => Promise<Spawned>];
    const caddy: Peer = ['caddy', 'Caddy reverse_proxy, GOMAXPROCS=1', caddyBinary, (dir, port) => startCaddyProxy(dir, port, backendPort, SERVER_CPU, answers(port))];
    const peers: Peer[] = [
      [
        'nginx',
        grpcCase ? 'nginx grpc_pass, 1 worker, keep-alive' : `nginx, 1 worker, upstream keep-alive${h2 ? ', listen http2' : ''}`,
        nginxBinary,
        (dir, port) => startNginx('nginx', SERVER_CPU, grpcCase ? grpcProxyConf(dir, port, backendPort) : proxyConf(dir, port, backendPort, undefined, h2), answers(port)),
      ],
      [
        'haproxy',
        `haproxy, 1 thread, http-reuse always${grpcCase ? ', proto h2 both sides' : h2 ? ', bind proto h2' : ''}`,
        haproxyBinary,
        (dir, port) => startHaproxyProxy(dir, port, backendPort, SERVER_CPU, h2 ? { h2: { ready: answers(port) }, upstreamH2: grpcCase } : {}),
      ],
      ...(h2 ? [] : [caddy]),
    ];
    for (const [key, label, binary, start] of peers) {
      if (!binary()) {
        notes.push(`${key} is not installed: no ${key} row`);
        continue;
      }
      const port = await freePort();
      add(key, label, port, await start(join(tmp, key), port));
    }
  }

  const gateways: [string, string, string][] = [['gateway', AB ? `gateway, this checkout` : 'gateway, 1 worker', GATEWAY_MAIN]];
  if (AB) gateways.push(['vs', `gateway, ${argv['vs-label']}`, AB]);
  const startGateways = async (): Promise<void> => {
    for (const [key, label, main] of gateways) {
      const old = servers.get(key);
      if (old) await stopServer(old);
      const nodeArgs = key === 'vs' ? VS_NODE_ARGS : NODE_ARGS;
      const g = await startGateway(key, { log: join(tmp, `${key}.log`), cpu: SERVER_CPU, manifests, upstreams, backendPort, nodeArgs, main, args: ['--access-log', 'off'] });
      // Its first answers can take seconds on a busy machine (a 2 s probe each): asked for up to 20 s.
      const deadline = Date.now() + 20_000;
      while (!(await answers(g.port)())) if (Date.now() > deadline) throw new Error(`${key} does not answer ${path}:\n${g.server.output().slice(-2000)}`);
      add(key, label, g.port, g.server);
    }
  };
  await startGateways();

  log('');
  log(
    `## ${c.title}: request ${f0(c.body.length)} bytes, answer ${c.answerBytes ? f0(c.answerBytes) : '99'} bytes${c.protocol === 'h1' ? '' : `, h2load -m1 over h2c${grpcCase ? `, ${GRPC_PATH}` : ''}`}`,
  );
  for (const [key, , main] of gateways) log(`${key}: ${buildInfo(main)}`);
  for (const n of notes) log(`note: ${n}`);

  const quiet = new QuietGate(0, 100);
  for (const t of targets) await loop.run(t.url, Math.max(...CONNS), Math.min(2, SECONDS));
  const runs = new Map<string, Row[]>();
  const rss = new Map<string, number>();
  for (let round = 0; round < ROUNDS; round++) {
    // An A/B gets a fresh pair of gateways every two rounds: a process keeps a bias of its own (its
    // heap layout, its JIT's choices) that would otherwise pass for a difference between the builds.
    if (AB && round > 0 && round % 2 === 0) {
      await startGateways();
      for (const t of targets) await loop.run(t.url, Math.max(...CONNS), Math.min(2, SECONDS));
    }
    for (const conns of CONNS) {
      const order = targets.map((_, i) => targets[(i + round) % targets.length]!);
      for (const t of order) {
        // A 1 MiB gRPC round trip at 16 connections can take seconds on a busy machine: windows of at least 5 s.
        const m = await measure(t, backendPid, quiet, () => loop.run(t.url, conns, grpcCase ? Math.max(5, SECONDS) : SECONDS));
        const r = m.result;
        const row: Row = { rps: r.rps, us: t.proxyPid ? m.proxyUsPerReq : m.backendUsPerReq, p50us: r.p50us, p99us: r.p99us, errors: r.non2xx + r.socketErrors };
        runs.set(`${t.key}@${conns}`, [...(runs.get(`${t.key}@${conns}`) ?? []), row]);
        const s = servers.get(t.key);
        if (s) rss.set(t.key, Math.max(rss.get(t.key) ?? 0, treeRss(s.pid)));
        if (AB) log(`round ${round + 1} ${t.key.padEnd(7)} @${conns}: ${f0(r.rps)} req/s, ${f1(row.us)} µs CPU/req`);
      }
    }
  }

  const med = (key: string, conns: number, pick: (r: Row) => number | null): number => median((runs.get(`${key}@${conns}`) ?? []).map(pick).filter((x): x is number => x !== null));
  const large = c.largeBytes > 0;
  for (const conns of CONNS) {
    const floor = AB ? null : med('relay', conns, (r) => r.us);
    const h2floor = AB || !targets.some((t) => t.key === 'h2relay') ? null : med('h2relay', conns, (r) => r.us);
    const haproxy = AB || !targets.some((t) => t.key === 'haproxy') ? null : { us: med('haproxy', conns, (r) => r.us), p99: med('haproxy', conns, (r) => r.p99us) };
    const rows = targets.map((t) => {
      const m = (pick: (r: Row) => number | null): number => med(t.key, conns, pick);
      const us = m((r) => r.us);
      const cells = [t.label, f0(m((r) => r.rps)), f1(us)];
      if (large) cells.push(f1(us / (c.largeBytes / MIB)));
      if (!AB) cells.push(t.key === 'direct' ? '–' : ratio(us, floor));
      if (h2floor !== null) cells.push(t.key === 'direct' ? '–' : ratio(us, h2floor));
      if (haproxy) cells.push(t.key === 'direct' ? '–' : ratio(us, haproxy.us));
      const errors = (runs.get(`${t.key}@${conns}`) ?? []).reduce((n, r) => n + r.errors, 0);
      const p99 = m((r) => r.p99us);
      cells.push(f2(m((r) => r.p50us) / 1000), f2(p99 / 1000));
      if (haproxy) cells.push(t.key === 'direct' ? '–' : ratio(p99, haproxy.p99));
      return [...cells, f0(errors), rss.has(t.key) ? f0(rss.get(t.key)! / MIB) : '–'];
    });
    const head = [
      `@${conns} connections`,
      'req/s',
      'CPU µs/req',
      ...(large ? ['CPU µs/MiB'] : []),
      ...(AB ? [] : ['x relay CPU']),
      ...(h2floor !== null ? ['x Node h2 floor CPU'] : []),
      ...(haproxy ? ['x haproxy CPU'] : []),
      'p50 ms',
      'p99 ms',
      ...(haproxy ? ['x haproxy p99'] : []),
      'errors',
      'RSS MB after',
    ];
    log(table(head, rows));
  }
  if (AB) {
    // Per round, the other build's CPU per request over this checkout's: the rounds' spread is the noise.
    const conns = CONNS[0]!;
    const a = runs.get(`gateway@${conns}`) ?? [];
    const b = runs.get(`vs@${conns}`) ?? [];
    const ratios = a.map((r, i) => (r.us ?? NaN) / (b[i]?.us ?? NaN)).filter(Number.isFinite);
    log('');
    log(`this checkout / ${argv['vs-label']}, CPU per request by round: ${ratios.map(f2).join(' ')}`);
    log(abVerdict(ratios));
  }
  for (const s of servers.values()) await stopServer(s);
  await stopServer(backendServer);
}

runMain('bench rest', main);
