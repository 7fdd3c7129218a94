/**
 * What one request allocates in the gateway, by build, in one run: the bytes V8 allocated on the
 * worker's heap per REST request and per gRPC call under load, and the gateway's CPU per request
 * beside it. V8 reports what was allocated since the previous collection at every collection
 * (`--trace-gc-nvp`, `allocated=`); the sum over the collections of a measured window, divided by
 * the requests in it, is the allocation per request. The worker runs with a 1 MB young generation
 * (`--max-semi-space-size 1`), so that a window holds a hundred collections or more and the bytes
 * since its last one, left out, are at most a percent (at the default 64 MB a window of thousands
 * of requests holds one or two, and the sum jumps by half between windows).
 *
 * Each build (this checkout's, and with `--vs-main` another one's dist/gateway/main.js) is the CLI
 * with one worker, its defaults otherwise (the access log on), a plain one-predictor deployment; REST at a
 * fixed rate (open loop), gRPC with a few call loops (closed). Rounds interleave the builds; the
 * table shows medians and each build's ratio to the first. `--relay` adds the floor of a Node proxy,
 * the raw TCP relay (load/lib/relay-proxy.ts: each client connection piped to its own upstream
 * one, bytes unparsed), measured the same way: what Node's sockets allocate per request or call.
 *
 * `--body-bytes N` sends REST requests of N bytes (a JSON tensor) instead of the 66-byte one: what a large
 * body costs the heap (load/README.md, large; with `--rate 50` or so, the load a large body allows).
 * `--chunked` sends it chunked (no Content-Length, 64 KiB chunks): what a chunked body costs.
 * `--node-server` adds this build again with `--http1-server node`: the lane against Node's server, A/B in one run.
 *
 *   npm run bench -- alloc [--vs REF] [--quick]   (options: [--relay] [--node-server] [--rate 1000] [--seconds 5] [--rounds 3] [--body-bytes 66] [--chunked])
 */
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Readable } from 'node:stream';
import { sdep, writeManifests } from '../lib/bench-table.js';
import { runMain, startScript, stopServer } from '../lib/children.js';
import { startModel } from '../lib/http.js';
import { GATEWAY_MAIN, startGateway } from '../lib/gateway.js';
import { callLoops, connect, routeMetadata, startBenchBackend, type SeldonClient } from '../lib/grpc.js';
import { numbers } from '../lib/options.js';
import { treeSeconds } from '../lib/proc.js';
import { f0, f1, log, median, table } from '../lib/report.js';
import { openLoop } from '../../test/fixtures/loopback-replicas.js';

const PATH = '/seldon/load/bench/api/v1.0/predictions';
const BODY = '{"data":{"names":["a","b","c","d"],"ndarray":[[5.1,3.5,1.4,0.2]]}}';
const GRPC_LOOPS = 8;

/** The bytes allocated on the heap of the processes other than `primary`, summed over the collections in `text`. */
function allocatedBytes(text: string, primary: number): number {
  let sum = 0;
  for (const m of text.matchAll(/^\[(\d+):[^\n]*? allocated=(\d+)/gm)) if (Number(m[1]) !== primary) sum += Number(m[2]);
  return sum;
}

/** The collections' pause time (ms) of the processes other than `primary` in `text`: what the allocations cost in GC. */
function gcPauseMs(text: string, primary: number): number {
  let sum = 0;
  for (const m of text.matchAll(/^\[(\d+):[^\n]*?\bpause=([\d.]+)/gm)) if (Number(m[1]) !== primary) sum += Number(m[2]);
  return sum;
}

interface Measure {
  readonly bytes: number[];
  readonly cpuUs: number[];
  /** GC pause µs per request (the young generation is 1 MB here: far more collections than in production, so compare builds, not to production). */
  readonly gcUs: number[];
  readonly failed: number[];
}

/** What is measured: a gateway (its worker's heap: the primary's collections are left out), or the relay (its one process). */
interface Subject {
  readonly pid: number;
  /** The process whose collections are not counted (-1: none). */
  readonly primary: number;
  readonly port: number;
  readonly logFile: string;
}

/** One window: `run` makes the requests and says how many succeeded and failed. */
async function window(s: Subject, run: () => Promise<{ ok: number; failed: number }>, into: Measure): Promise<void> {
  const from = statSync(s.logFile).size;
  const cpu0 = treeSeconds(s.pid);
  const { ok, failed } = await run();
  const cpu = treeSeconds(s.pid) - cpu0;
  const text = readFileSync(s.logFile, 'utf8').slice(from);
  into.bytes.push(allocatedBytes(text, s.primary) / ok);
  into.cpuUs.push((cpu * 1e6) / ok);
  into.gcUs.push((gcPauseMs(text, s.primary) * 1000) / ok);
  into.failed.push(failed);
}

async function grpcCalls(clients: SeldonClient[], seconds: number): Promise<{ ok: number; failed: number }> {
  const r = await callLoops(clients, routeMetadata('bench', 'load'), GRPC_LOOPS, seconds);
  return { ok: r.calls, failed: r.errors };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      'vs-main': { type: 'string' },
      'vs-label': { type: 'string' },
      relay: { type: 'boolean', default: false },
      rate: { type: 'string' },
      seconds: { type: 'string' },
      rounds: { type: 'string' },
      'body-bytes': { type: 'string' },
      chunked: { type: 'boolean', default: false },
      'node-server': { type: 'boolean', default: false },
    },
  });
  const bodyBytes = Number(values['body-bytes'] ?? 0);
  // A JSON tensor of about that size: `[0.123,…]`, made once.
  const body = bodyBytes > BODY.length ? `{"data":{"ndarray":[${'0.123,'.repeat(Math.floor((bodyBytes - 25) / 6))}0]}}` : BODY;
  // Each build, and with --node-server this build again with Node's HTTP/1.1 server in place of the lane.
  const builds = [
    { main: GATEWAY_MAIN, label: GATEWAY_MAIN, args: [] as string[] },
    ...(values['node-server'] ? [{ main: GATEWAY_MAIN, label: `${GATEWAY_MAIN} --http1-server node`, args: ['--http1-server', 'node'] }] : []),
    ...(values['vs-main'] ? [{ main: values['vs-main'], label: values['vs-main'], args: [] }] : []),
  ];
  const { rate, seconds, rounds } = numbers(values, { rate: 1000, seconds: 5, rounds: 3 });
  const dir = mkdtempSync(join(tmpdir(), 'alloc-bench-'));
  const model = await startModel('{"data":{"names":["t:0","t:1"],"ndarray":[[0.1,0.9]]}}');
  const grpcModel = await startBenchBackend('model');
  writeManifests(join(dir, 'bench.yaml'), [sdep('bench', 'load', undefined, [{ name: 'default' }])]);
  /** Each measured row: a gateway build (REST and gRPC through it), or the relay (one for each model: it is protocol-blind). */
  interface Row {
    readonly main: string;
    readonly restSubject: Subject;
    readonly grpcSubject: Subject;
    readonly clients: SeldonClient[];
    readonly rest: Measure;
    readonly grpc: Measure;
    readonly stop: () => Promise<void>;
  }
  const rows: Row[] = [];
  const measures = (): { rest: Measure; grpc: Measure } => ({ rest: { bytes: [], cpuUs: [], gcUs: [], failed: [] }, grpc: { bytes: [], cpuUs: [], gcUs: [], failed: [] } });
  if (values.relay) {
    const relay = async (name: string, upstream: number): Promise<Subject & { stop: () => Promise<void> }> => {
      const s = await startScript('relay-proxy', dir, undefined, { BENCH_UPSTREAM_PORT: String(upstream) }, { name, nodeArgs: ['--trace-gc-nvp', '--max-semi-space-size=1'] });
      return { pid: s.pid, primary: -1, port: s.port, logFile: s.log, stop: () => stopServer(s) };
    };
    const r = await relay('relay', model.port);
    const g = await relay('relay-grpc', grpcModel.port);
    rows.push({
      main: 'relay (raw TCP: load/lib/relay-proxy.ts)',
      restSubject: r,
      grpcSubject: g,
      clients: connect(g.port, 2),
      ...measures(),
      stop: async () => (await r.stop(), await g.stop()),
    });
  }
  for (const [i, { main, label, args }] of builds.entries()) {
    const logFile = join(dir, `gateway-${i}.log`);
    const gw = await startGateway(`gateway-${i}`, {
      log: logFile,
      manifests: dir,
      nodeArgs: ['--trace-gc-nvp'],
      // A 1 MB young generation: a collection every few dozen requests, so a window's sum is exact to a few percent.
      args: ['--max-semi-space-size', '1', '--resolve', `bench-default.load:8000=127.0.0.1:${model.port}`, '--resolve', `bench-default.load:5001=127.0.0.1:${grpcModel.port}`, ...args],
      main,
    });
    const subject: Subject = { pid: gw.server.child.pid!, primary: gw.server.child.pid!, port: gw.port, logFile };
    rows.push({ main: label, restSubject: subject, grpcSubject: subject, clients: connect(gw.port, 2), ...measures(), stop: gw.stop });
  }
  // Chunked: the body as a stream of 64 KiB pieces, which the client frames as chunks (no length to give).
  const pieces = Array.from({ length: Math.ceil(body.length / 65536) }, (_, k) => Buffer.from(body.slice(k * 65536, (k + 1) * 65536)));
  const bodyOf = (): string | Readable => (values.chunked ? Readable.from(pieces, { objectMode: false }) : body);
  const restRun = (port: number) => async (): Promise<{ ok: number; failed: number }> => {
    const sent = await openLoop(port, PATH, rate, seconds, bodyOf);
    const ok = sent.filter((s) => s.status === 200).length;
    return { ok, failed: sent.length - ok };
  };
  // Warm-up: the code paths compiled, the pools' connections open.
  for (const g of rows) {
    await openLoop(g.restSubject.port, PATH, rate, 1, bodyOf);
    await grpcCalls(g.clients, 1);
  }
  for (let round = 1; round <= rounds; round++) {
    for (const g of rows) {
      await window(g.restSubject, restRun(g.restSubject.port), g.rest);
      await window(g.grpcSubject, () => grpcCalls(g.clients, seconds), g.grpc);
      log(`round ${round} ${g.main}: REST ${f0(g.rest.bytes.at(-1))} B, ${f1(g.rest.cpuUs.at(-1))} µs; gRPC ${f0(g.grpc.bytes.at(-1))} B, ${f1(g.grpc.cpuUs.at(-1))} µs per request`);
    }
  }
  const first = rows.find((g) => !g.main.startsWith('relay')) ?? rows[0]!;
  const ratio = (m: Measure, base: Measure, k: 'bytes' | 'cpuUs'): string => `${(median(m[k]) / median(base[k])).toFixed(2)}x`;
  log(
    table(
      ['build', 'REST B/request', 'vs first build', 'REST CPU µs', 'REST GC µs', 'gRPC B/call', 'vs first build', 'gRPC CPU µs', 'gRPC GC µs', 'failed'],
      rows.map((g) => [
        g.main,
        f0(median(g.rest.bytes)),
        ratio(g.rest, first.rest, 'bytes'),
        f1(median(g.rest.cpuUs)),
        f1(median(g.rest.gcUs)),
        f0(median(g.grpc.bytes)),
        ratio(g.grpc, first.grpc, 'bytes'),
        f1(median(g.grpc.cpuUs)),
        f1(median(g.grpc.gcUs)),
        String([...g.rest.failed, ...g.grpc.failed].reduce((a, b) => a + b, 0)),
      ]),
    ),
  );
  log(
    `REST ${rate}/s open loop (${body.length} bytes a request${values.chunked ? ', chunked' : ''}) and gRPC ${GRPC_LOOPS} call loops, ${seconds} s each per round, ${rounds} rounds interleaved; --workers 1, --max-semi-space-size 1, defaults otherwise (access log on); V8 --trace-gc-nvp allocated= of the worker (the relay: of its process, also at a 1 MB young generation)`,
  );
  for (const g of rows) {
    for (const c of g.clients) c.close();
    await g.stop();
  }
  model.close();
  grpcModel.close();
}

runMain('alloc-bench', main);
