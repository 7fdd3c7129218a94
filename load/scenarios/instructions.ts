/**
 * Instructions per floor request, counted by callgrind: an A/B of the floor scenario's request (the 66-byte POST to
 * the measured 90/10 canary in a 1000-deployment table, access logs off) that does not depend on what else the
 * machine runs, where wall-clock CPU per request moves by ±10% between rounds on a shared machine.
 *
 * Each build's gateway (one worker) runs under `valgrind --tool=callgrind --trace-children=yes`, not instrumented
 * until a warm-up is done (--warmup requests, so the hot functions are optimised as in a long run). Then --requests
 * requests at --conns keep-alive connections (raw sockets, wrk's request bytes) are counted, then the same length
 * of time with no requests, which is subtracted: timers cost per second, and a request under valgrind takes some
 * 50 times as long. Thread 1 is the event loop (the requests' own work); the other threads compile and collect,
 * and under valgrind (threads serialised) their share lags and varies: read the event loop's figure first.
 * With `--node-args=--perf-basic-prof` the dumps' JIT addresses can be named from /tmp/perf-<worker pid>.map (node
 * then also leaves isolate-*-v8.log files in the checkout); `--functions N` prints each build's N costliest functions
 * of the event loop per request, so named.
 *
 * `--body-bytes B --direction requests|answers` counts a large body instead: a B-byte JSON request with the backend's
 * small answer, or the small request with a B-byte answer (the `large` scenario's cases, a plain one-predictor route);
 * `--relay` counts the raw TCP relay (the floor of a Node proxy, lib/relay-proxy.ts) the same way first.
 * `--protocol h2` sends them over h2c (h2load -m1, a fixed count), `--protocol grpc` a gRPC Predict of --body-bytes each
 * way (lib/grpc-echo-backend.ts, a plain gRPC route); `--h2relay` then counts the Node HTTP/2 relay first
 * (lib/h2-relay-proxy.ts, the floor of a Node proxy that must speak HTTP/2).
 *
 *   npm run bench -- instructions --vs <ref>
 *   npx vite-node load/scenarios/instructions.ts -- --main dist/gateway/main.js --main /other/dist/gateway/main.js
 *   npx vite-node load/scenarios/instructions.ts -- --body-bytes 1048576 --direction answers --relay --requests 300 --warmup 600
 *   npx vite-node load/scenarios/instructions.ts -- --protocol grpc --body-bytes 1048576 --h2relay --requests 200 --warmup 300
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { generateManifests, MEASURED, predictionPath, sdep, SMALL_BODY, tensorJson, writeManifests } from '../lib/bench-table.js';
import { runMain, runToEnd, sleep, startScript, stopServer, which, type Spawned } from '../lib/children.js';
import { GATEWAY_MAIN, nodeArgsOf, restUpstreams, startGateway } from '../lib/gateway.js';
import { predictFrame } from '../lib/grpc.js';
import { nameAt, readPerfMap } from '../lib/perf-map.js';
import { descendants } from '../lib/proc.js';

const { values: argv } = parseArgs({
  options: {
    main: { type: 'string', multiple: true },
    /** From `npm run bench -- instructions --vs <ref>`: the other build, measured after this one. */
    'vs-main': { type: 'string' },
    'vs-label': { type: 'string' },
    requests: { type: 'string', default: '4000' },
    warmup: { type: 'string', default: '6000' },
    conns: { type: 'string', default: '16' },
    repeat: { type: 'string', default: '1' },
    cpu: { type: 'string', default: '1' },
    /** node flags of the gateway (e.g. --perf-basic-prof, to name the JIT code of a dump). */
    'node-args': { type: 'string', default: '' },
    /** A large body (bytes; 0: the floor's small request and answer), in --direction requests or answers. */
    'body-bytes': { type: 'string', default: '0' },
    direction: { type: 'string', default: 'requests' },
    /** Count the raw TCP relay too (first), the floor of a Node proxy. */
    relay: { type: 'boolean', default: false },
    /** h1 (raw sockets), h2 (h2c, h2load) or grpc (a Predict of --body-bytes each way over h2c, h2load). */
    protocol: { type: 'string', default: 'h1' },
    /** Count the Node HTTP/2 relay too (first), the floor of a Node proxy that speaks HTTP/2 (--protocol h2 or grpc). */
    h2relay: { type: 'boolean', default: false },
    /** Print the N costliest functions (self, event loop, per request) of each build (name JIT code with --perf-basic-prof). */
    functions: { type: 'string', default: '0' },
  },
});
const MAINS = [...(argv.main ?? [GATEWAY_MAIN]), ...(argv['vs-main'] ? [argv['vs-main']] : [])].map((m) => resolve(m));
const N = Number(argv.requests);
const WARMUP = Number(argv.warmup);
const CONNS = Number(argv.conns);
const NODE_ARGS = nodeArgsOf(argv['node-args']);
const BODY_BYTES = Number(argv['body-bytes']);
if (argv.direction !== 'requests' && argv.direction !== 'answers') throw new Error('--direction is requests or answers');
const BODY = BODY_BYTES > 0 && argv.direction === 'requests' ? tensorJson(BODY_BYTES) : SMALL_BODY;
const ANSWER_BYTES = BODY_BYTES > 0 && argv.direction === 'answers' ? BODY_BYTES : 0;
const FUNCTIONS = Number(argv.functions);
const PROTOCOL = argv.protocol;
if (PROTOCOL !== 'h1' && PROTOCOL !== 'h2' && PROTOCOL !== 'grpc') throw new Error('--protocol is h1, h2 or grpc');
if (argv.h2relay && PROTOCOL === 'h1') throw new Error('--h2relay needs --protocol h2 or grpc');
if (argv.relay && PROTOCOL === 'h2') throw new Error('--relay cannot carry h2c to the HTTP/1.1 backend');
const GRPC_PATH = '/seldon.protos.Seldon/Predict';
/** What routes a gRPC call through the gateway (`seldon`, `namespace`), as the large scenario sends it. */
const GRPC_HEADERS = ['content-type: application/grpc', 'te: trailers', 'seldon: bench', 'namespace: load'];

/** Send `total` requests with h2load over `conns` h2c connections, one stream in flight on each; throws unless every one succeeded. */
async function h2load(port: number, total: number, conns: number, dir: string): Promise<void> {
  const bin = which('h2load');
  if (!bin) throw new Error('h2load is not installed (apt-get install nghttp2-client)');
  const grpc = PROTOCOL === 'grpc';
  const bodyFile = join(dir, 'body.h2');
  if (!existsSync(bodyFile)) writeFileSync(bodyFile, grpc ? predictFrame(BODY_BYTES) : BODY);
  const headers = (grpc ? GRPC_HEADERS : ['content-type: application/json']).flatMap((h) => ['-H', h]);
  const path = grpc ? GRPC_PATH : predictionPath(MEASURED);
  const r = await runToEnd(['taskset', '-c', '0', bin, '-t1', `-c${Math.min(conns, total)}`, '-m1', '-n', String(total), '-d', bodyFile, ...headers, `http://127.0.0.1:${port}${path}`], 3_600_000);
  const m = /requests: (\d+) total, \d+ started, (\d+) done, (\d+) succeeded/.exec(r.stdout);
  const codes = /status codes: (\d+) 2xx/.exec(r.stdout);
  if (!m || Number(m[3]) !== total || Number(codes?.[1]) !== total) throw new Error(`h2load: not all ${total} succeeded:\n${r.stdout}\n${r.stderr}`);
}

/** Send `total` requests of --protocol over `conns` connections, one in flight on each; throws on any failure. */
const load = (port: number, total: number, conns: number, dir: string): Promise<void> => (PROTOCOL === 'h1' ? load1(port, total, conns) : h2load(port, total, conns, dir));

/** Send `total` POSTs over `conns` keep-alive sockets, one in flight per socket; throws on any non-200. */
async function load1(port: number, total: number, conns: number): Promise<void> {
  const head = `POST ${predictionPath(MEASURED)} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Type: application/json\r\nContent-Length: ${BODY.length}\r\n\r\n`;
  const request = Buffer.from(head + BODY);
  let sent = 0;
  const one = (): Promise<void> =>
    new Promise((done, fail) => {
      const s = connect(port, '127.0.0.1');
      let buf: Buffer = Buffer.alloc(0);
      /** Body bytes of the current answer still to come, once its head is read (a large answer is not gathered). */
      let skip = 0;
      const next = (): void => {
        if (sent >= total) {
          s.end();
          done();
          return;
        }
        sent++;
        s.write(request);
      };
      s.on('connect', next);
      s.on('error', fail);
      s.on('data', (chunk: Buffer) => {
        if (skip > 0) {
          const n = Math.min(skip, chunk.length);
          skip -= n;
          chunk = chunk.subarray(n);
          if (skip === 0) next();
          if (chunk.length === 0) return;
        }
        buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
        for (;;) {
          const end = buf.indexOf('\r\n\r\n');
          if (end < 0) return;
          const headText = buf.subarray(0, end).toString('latin1');
          if (!headText.startsWith('HTTP/1.1 200')) return fail(new Error(`answer: ${headText.split('\r\n')[0]}`));
          const length = Number(/\r\ncontent-length: *(\d+)/i.exec(headText)?.[1]);
          if (!Number.isFinite(length)) return fail(new Error(`no content-length: ${headText}`));
          if (buf.length < end + 4 + length) {
            skip = end + 4 + length - buf.length;
            buf = Buffer.alloc(0);
            return;
          }
          buf = buf.subarray(end + 4 + length);
          next();
        }
      });
    });
  await Promise.all(Array.from({ length: conns }, one));
}

/** The total instruction count (Ir) of a callgrind dump. */
const totalIr = (file: string): number => Number(/^totals: *(\d+)/m.exec(readFileSync(file, 'utf8'))?.[1] ?? /^summary: *(\d+)/m.exec(readFileSync(file, 'utf8'))?.[1]);

const VALGRIND = (dir: string): string[] => ['--tool=callgrind', '--trace-children=yes', '--instr-atstart=no', '--separate-threads=yes', `--callgrind-out-file=${join(dir, 'cg.%p')}`];

/** A process under callgrind, counted once warm: its public port and the pid whose instructions are counted. */
interface Counted {
  readonly port: number;
  readonly pid: () => number;
  stop(): Promise<void>;
}

async function measureBuild(main: string, tmp: string, manifests: string, backendPort: number, run: number): Promise<{ loop: number; all: number }> {
  const dir = mkdtempSync(join(tmp, 'cg-'));
  // gRPC: the one deployment's gRPC upstream (as the large scenario's gRPC case), resolved to the echo model.
  const upstreams = PROTOCOL === 'grpc' ? ['bench-default.load:5001'] : restUpstreams(manifests, main).upstreams;
  const g = await startGateway(`gateway-${run}`, {
    log: join(dir, 'gateway.log'),
    cpu: Number(argv.cpu),
    manifests,
    upstreams,
    backendPort,
    main,
    node: 'valgrind',
    nodeArgs: [...VALGRIND(dir), process.execPath, ...NODE_ARGS],
    // A gateway under valgrind runs some 50 times slower: the route timeout must not fire (its timer is set either way).
    args: ['--access-log', 'off', '--default-timeout', '300s'],
    readyTimeoutMs: 600_000,
  });
  // The worker is the valgrind'd process under the primary that is not itself a parent (the gateway's only worker).
  const worker = (): number => {
    const found = descendants(g.server.pid)
      .filter((p) => descendants(p).length === 0)
      .at(-1);
    if (!found) throw new Error('no worker process');
    return found;
  };
  return count(main, dir, { port: g.port, pid: worker, stop: () => g.stop() });
}

const accepts = (port: number): Promise<boolean> =>
  new Promise((done) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => (s.destroy(), done(true)));
    s.once('error', () => done(false));
  });

/** A floor (lib/relay-proxy.ts, or lib/h2-relay-proxy.ts), one process, under callgrind in front of the backend. */
async function measureRelay(tmp: string, backendPort: number, script = 'relay-proxy'): Promise<{ loop: number; all: number }> {
  const dir = mkdtempSync(join(tmp, `cg-${script}-`));
  const relay: Spawned & { port: number } = await startScript(
    script,
    dir,
    Number(argv.cpu),
    { BENCH_UPSTREAM_PORT: String(backendPort), BENCH_UPSTREAM_PROTOCOL: PROTOCOL === 'grpc' ? 'h2' : 'h1' },
    {
      name: script,
      node: 'valgrind',
      nodeArgs: [...VALGRIND(dir), process.execPath, ...NODE_ARGS],
      // valgrind echoes the script (and its `listening`) as it starts: ready once the port takes a connection.
      ready: (port) => accepts(port),
    },
  );
  // taskset and valgrind exec in place: the spawned pid is node's.
  return count(script, dir, { port: relay.port, pid: () => relay.pid, stop: () => stopServer(relay) });
}

async function count(label: string, dir: string, target: Counted): Promise<{ loop: number; all: number }> {
  try {
    await load(target.port, WARMUP, CONNS, dir);
    const worker = target.pid();
    execFileSync('callgrind_control', ['-i', 'on', String(worker)], { stdio: 'ignore' });
    await load(target.port, Math.min(WARMUP, 500), CONNS, dir);
    // Thread 1 is the event loop (the requests' own work); the other threads compile and collect.
    let dumpNo = 0;
    const window = async (work: () => Promise<void>): Promise<{ loop: number; all: number; ms: number; file: string }> => {
      execFileSync('callgrind_control', ['-z', String(worker)], { stdio: 'ignore' });
      const t0 = Date.now();
      await work();
      const ms = Date.now() - t0;
      execFileSync('callgrind_control', ['-d', String(worker)], { stdio: 'ignore' });
      dumpNo++;
      const dumped = (): string[] => readdirSync(dir).filter((f) => f.startsWith(`cg.${worker}.${dumpNo}-`));
      for (let i = 0; i < 60 && dumped().length === 0; i++) await sleep(500);
      await sleep(1000);
      const dumps = dumped();
      if (dumps.length === 0) throw new Error(`no dump ${dumpNo} of ${worker} in ${dir}`);
      const threads = dumps.map((f) => ({ ir: totalIr(join(dir, f)), thread: Number(/-(\d+)$/.exec(f)![1]), f }));
      const loopThread = threads.find((t) => t.thread === 1);
      return { loop: loopThread?.ir ?? NaN, all: threads.reduce((n, t) => n + t.ir, 0), ms, file: join(dir, loopThread?.f ?? '') };
    };
    const busy = await window(() => load(target.port, N, CONNS, dir));
    // Timers (metrics, sweeps) cost per second, not per request, and a request under valgrind takes ~50 times as
    // long: the same length of time without requests is subtracted, or they would pass for the requests' cost.
    const idle = await window(() => sleep(busy.ms));
    const loop = (busy.loop - (idle.loop * busy.ms) / idle.ms) / N;
    const all = (busy.all - (idle.all * busy.ms) / idle.ms) / N;
    process.stdout.write(
      `${label}: ${loop.toFixed(0)} instructions/request on the event loop, ${all.toFixed(0)} in all threads, idle subtracted ` +
        `(raw ${(busy.loop / N).toFixed(0)} and ${(busy.all / N).toFixed(0)}; ${N} requests in ${busy.ms} ms; ${dir})\n`,
    );
    if (FUNCTIONS > 0) process.stdout.write(costliest(busy.file, `/tmp/perf-${worker}.map`, FUNCTIONS));
    return { loop, all };
  } finally {
    await target.stop();
  }
}

/** The `n` costliest functions of a callgrind dump (self instructions per request), JIT code named from node's perf map. */
function costliest(file: string, perfMap: string, n: number): string {
  const out = execFileSync('callgrind_annotate', ['--inclusive=no', `--threshold=100`, file], { encoding: 'utf8', maxBuffer: 256 << 20 });
  const jit = readPerfMap(perfMap);
  const byName = new Map<string, number>();
  for (const line of out.split('\n')) {
    const m = /^\s*([\d,]+) \([^)]*\)\s+(.*)$/.exec(line);
    if (!m) continue;
    let name = m[2]!.trim();
    const addr = /0x([0-9a-f]+)/.exec(name);
    if (name.startsWith('???') && addr) {
      const a = parseInt(addr[1]!, 16);
      name = nameAt(jit, a) ?? 'JIT code, unnamed';
    }
    byName.set(name, (byName.get(name) ?? 0) + Number(m[1]!.replaceAll(',', '')));
  }
  return [...byName]
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([name, ir]) => `  ${(ir / N).toFixed(0).padStart(9)}  ${name}\n`)
    .join('');
}

runMain('instructions', async () => {
  const tmp = mkdtempSync(join(tmpdir(), 'bench-instructions-'));
  const manifests = join(tmp, 'manifests');
  if (PROTOCOL === 'grpc') writeManifests(manifests, [sdep('bench', 'load', undefined, [{ name: 'default' }])]);
  else generateManifests(manifests, 1000);
  const backend =
    PROTOCOL === 'grpc'
      ? await startScript('grpc-echo-backend', tmp, Number(argv.cpu), {}, { name: 'backend' })
      : await startScript('node-backend', tmp, Number(argv.cpu), { BENCH_ANSWER_BYTES: ANSWER_BYTES ? String(ANSWER_BYTES) : '' }, { name: 'backend' });
  const results = new Map<string, { loop: number; all: number }[]>();
  let run = 0;
  for (let r = 0; r < Number(argv.repeat); r++) {
    if (argv.relay) results.set('relay', [...(results.get('relay') ?? []), await measureRelay(tmp, backend.port)]);
    if (argv.h2relay) results.set('h2relay', [...(results.get('h2relay') ?? []), await measureRelay(tmp, backend.port, 'h2-relay-proxy')]);
    for (const main of MAINS) {
      const v = await measureBuild(main, tmp, manifests, backend.port, run++);
      results.set(main, [...(results.get(main) ?? []), v]);
    }
  }
  for (const [main, vs] of results) process.stdout.write(`${main}: event loop ${vs.map((v) => v.loop.toFixed(0)).join(' ')}; all threads ${vs.map((v) => v.all.toFixed(0)).join(' ')}\n`);
  await stopServer(backend);
});
