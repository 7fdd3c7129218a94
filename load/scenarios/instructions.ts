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
 * then also leaves isolate-*-v8.log files in the checkout).
 *
 *   npm run bench -- instructions --vs <ref>
 *   npx vite-node load/scenarios/instructions.ts -- --main dist/gateway/main.js --main /other/dist/gateway/main.js
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { generateManifests, MEASURED, predictionPath, SMALL_BODY } from '../lib/bench-table.js';
import { runMain, sleep, startScript, stopServer } from '../lib/children.js';
import { GATEWAY_MAIN, restUpstreams, startGateway } from '../lib/gateway.js';
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
  },
});
const MAINS = [...(argv.main ?? [GATEWAY_MAIN]), ...(argv['vs-main'] ? [argv['vs-main']] : [])].map((m) => resolve(m));
const N = Number(argv.requests);
const WARMUP = Number(argv.warmup);
const CONNS = Number(argv.conns);
const NODE_ARGS = argv['node-args'].split(/\s+/).filter(Boolean);
const BODY = SMALL_BODY;

/** Send `total` POSTs over `conns` keep-alive sockets, one in flight per socket; throws on any non-200. */
async function load(port: number, total: number, conns: number): Promise<void> {
  const head = `POST ${predictionPath(MEASURED)} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Type: application/json\r\nContent-Length: ${BODY.length}\r\n\r\n`;
  const request = Buffer.from(head + BODY);
  let sent = 0;
  const one = (): Promise<void> =>
    new Promise((done, fail) => {
      const s = connect(port, '127.0.0.1');
      let buf = Buffer.alloc(0);
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
        buf = Buffer.concat([buf, chunk]);
        for (;;) {
          const end = buf.indexOf('\r\n\r\n');
          if (end < 0) return;
          const headText = buf.subarray(0, end).toString('latin1');
          if (!headText.startsWith('HTTP/1.1 200')) return fail(new Error(`answer: ${headText.split('\r\n')[0]}`));
          const length = Number(/\r\ncontent-length: *(\d+)/i.exec(headText)?.[1]);
          if (!Number.isFinite(length)) return fail(new Error(`no content-length: ${headText}`));
          if (buf.length < end + 4 + length) return;
          buf = buf.subarray(end + 4 + length);
          next();
        }
      });
    });
  await Promise.all(Array.from({ length: conns }, one));
}

/** The total instruction count (Ir) of a callgrind dump. */
const totalIr = (file: string): number => Number(/^totals: *(\d+)/m.exec(readFileSync(file, 'utf8'))?.[1] ?? /^summary: *(\d+)/m.exec(readFileSync(file, 'utf8'))?.[1]);

async function measureBuild(main: string, tmp: string, manifests: string, backendPort: number, run: number): Promise<{ loop: number; all: number }> {
  const dir = mkdtempSync(join(tmp, 'cg-'));
  const { upstreams } = restUpstreams(manifests, main);
  const node = process.execPath;
  const g = await startGateway(`gateway-${run}`, {
    log: join(dir, 'gateway.log'),
    cpu: Number(argv.cpu),
    manifests,
    upstreams,
    backendPort,
    main,
    node: 'valgrind',
    nodeArgs: ['--tool=callgrind', '--trace-children=yes', '--instr-atstart=no', '--separate-threads=yes', `--callgrind-out-file=${join(dir, 'cg.%p')}`, node, ...NODE_ARGS],
    // A gateway under valgrind runs some 50 times slower: the route timeout must not fire (its timer is set either way).
    args: ['--access-log', 'off', '--default-timeout', '300s'],
    readyTimeoutMs: 600_000,
  });
  try {
    await load(g.port, WARMUP, CONNS);
    // The worker is the valgrind'd process under the primary that is not itself a parent (the gateway's only worker).
    const tree = descendants(g.server.pid);
    const worker = tree.filter((p) => descendants(p).length === 0).at(-1);
    if (!worker) throw new Error('no worker process');
    execFileSync('callgrind_control', ['-i', 'on', String(worker)], { stdio: 'ignore' });
    await load(g.port, Math.min(WARMUP, 500), CONNS);
    // Thread 1 is the event loop (the requests' own work); the other threads compile and collect.
    let dumpNo = 0;
    const window = async (work: () => Promise<void>): Promise<{ loop: number; all: number; ms: number }> => {
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
      const threads = dumps.map((f) => ({ ir: totalIr(join(dir, f)), thread: Number(/-(\d+)$/.exec(f)![1]) }));
      return { loop: threads.find((t) => t.thread === 1)?.ir ?? NaN, all: threads.reduce((n, t) => n + t.ir, 0), ms };
    };
    const busy = await window(() => load(g.port, N, CONNS));
    // Timers (metrics, sweeps) cost per second, not per request, and a request under valgrind takes ~50 times as
    // long: the same length of time without requests is subtracted, or they would pass for the requests' cost.
    const idle = await window(() => sleep(busy.ms));
    const loop = (busy.loop - (idle.loop * busy.ms) / idle.ms) / N;
    const all = (busy.all - (idle.all * busy.ms) / idle.ms) / N;
    process.stdout.write(
      `${main}: ${loop.toFixed(0)} instructions/request on the event loop, ${all.toFixed(0)} in all threads, idle subtracted ` +
        `(raw ${(busy.loop / N).toFixed(0)} and ${(busy.all / N).toFixed(0)}; ${N} requests in ${busy.ms} ms; ${dir})\n`,
    );
    return { loop, all };
  } finally {
    await g.stop();
  }
}

runMain('instructions', async () => {
  const tmp = mkdtempSync(join(tmpdir(), 'bench-instructions-'));
  const manifests = join(tmp, 'manifests');
  generateManifests(manifests, 1000);
  const backend = await startScript('node-backend', tmp, Number(argv.cpu), {}, { name: 'backend' });
  const results = new Map<string, { loop: number; all: number }[]>();
  let run = 0;
  for (let r = 0; r < Number(argv.repeat); r++)
    for (const main of MAINS) {
      const v = await measureBuild(main, tmp, manifests, backend.port, run++);
      results.set(main, [...(results.get(main) ?? []), v]);
    }
  for (const [main, vs] of results) process.stdout.write(`${main}: event loop ${vs.map((v) => v.loop.toFixed(0)).join(' ')}; all threads ${vs.map((v) => v.all.toFixed(0)).join(' ')}\n`);
  await stopServer(backend);
});
