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
 * Each build (`--main`, one or more dist/gateway/main.js; default: this checkout's) is the CLI
 * with one worker, its defaults otherwise (the access log on), a plain one-predictor deployment; REST at a
 * fixed rate (open loop), gRPC with a few call loops (closed). Rounds interleave the builds; the
 * table shows medians and each build's ratio to the first.
 *
 *   npm run build && npx vite-node load/alloc-bench.ts [--main /old/dist/gateway/main.js,dist/gateway/main.js] [--rate 1000] [--seconds 5] [--rounds 3]
 */
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import { runMain } from './lib/children.js';
import { GATEWAY_MAIN, startGateway, type Gateway } from './lib/gateway.js';
import { seldonClient, startBenchBackend, type SeldonClient } from './lib/grpc.js';
import { treeSeconds } from './lib/proc.js';
import { f0, f1, log, median, table } from './lib/report.js';
import { openLoop } from '../test/fixtures/loopback-replicas.js';

const REST_UPSTREAM = 'bench-default.load:8000';
const GRPC_UPSTREAM = 'bench-default.load:5001';
const PATH = '/seldon/load/bench/api/v1.0/predictions';
const BODY = '{"data":{"names":["a","b","c","d"],"ndarray":[[5.1,3.5,1.4,0.2]]}}';
const GRPC_LOOPS = 8;

/** The bytes allocated on the heap of the processes other than `primary`, summed over the collections in `text`. */
export function allocatedBytes(text: string, primary: number): number {
  let sum = 0;
  for (const m of text.matchAll(/^\[(\d+):[^\n]*? allocated=(\d+)/gm)) if (Number(m[1]) !== primary) sum += Number(m[2]);
  return sum;
}

interface Measure {
  readonly bytes: number[];
  readonly cpuUs: number[];
  readonly failed: number[];
}

/** One window: `run` makes the requests and says how many succeeded and failed. */
async function window(gw: Gateway, logFile: string, run: () => Promise<{ ok: number; failed: number }>, into: Measure): Promise<void> {
  const from = statSync(logFile).size;
  const cpu0 = treeSeconds(gw.server.child.pid!);
  const { ok, failed } = await run();
  const cpu = treeSeconds(gw.server.child.pid!) - cpu0;
  const text = readFileSync(logFile, 'utf8').slice(from);
  into.bytes.push(allocatedBytes(text, gw.server.child.pid!) / ok);
  into.cpuUs.push((cpu * 1e6) / ok);
  into.failed.push(failed);
}

async function grpcCalls(clients: SeldonClient[], seconds: number): Promise<{ ok: number; failed: number }> {
  const metadata = new grpc.Metadata();
  metadata.set('seldon', 'bench');
  metadata.set('namespace', 'load');
  const end = performance.now() + seconds * 1000;
  let ok = 0;
  let failed = 0;
  const request = { data: { names: ['a', 'b', 'c', 'd'], tensor: { shape: [1, 4], values: [5.1, 3.5, 1.4, 0.2] } } };
  const loop = (c: SeldonClient): Promise<void> =>
    new Promise((resolve) => {
      const once = (): void => {
        if (performance.now() >= end) return resolve();
        c.Predict(request, metadata, (err) => {
          if (err) failed++;
          else ok++;
          once();
        });
      };
      once();
    });
  await Promise.all(Array.from({ length: GRPC_LOOPS }, (_, i) => loop(clients[i % clients.length]!)));
  return { ok, failed };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { main: { type: 'string', default: GATEWAY_MAIN }, rate: { type: 'string', default: '1000' }, seconds: { type: 'string', default: '5' }, rounds: { type: 'string', default: '3' } },
  });
  const mains = values.main.split(',').filter(Boolean);
  const rate = Number(values.rate);
  const seconds = Number(values.seconds);
  const rounds = Number(values.rounds);
  const dir = mkdtempSync(join(tmpdir(), 'alloc-bench-'));
  const model = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end('{"data":{"names":["t:0","t:1"],"ndarray":[[0.1,0.9]]}}'));
  });
  model.listen(0, '127.0.0.1');
  await new Promise((r) => model.once('listening', r));
  const grpcModel = await startBenchBackend('model');
  writeFileSync(
    join(dir, 'bench.yaml'),
    JSON.stringify({ apiVersion: 'machinelearning.seldon.io/v1', kind: 'SeldonDeployment', metadata: { name: 'bench', namespace: 'load' }, spec: { predictors: [{ name: 'default' }] } }),
  );
  const gateways: { main: string; gw: Gateway; logFile: string; clients: SeldonClient[]; rest: Measure; grpc: Measure }[] = [];
  for (const [i, main] of mains.entries()) {
    const logFile = join(dir, `gateway-${i}.log`);
    const gw = await startGateway(`gateway-${i}`, {
      log: logFile,
      manifests: dir,
      upstreams: [],
      backendPort: 0,
      nodeArgs: ['--trace-gc-nvp'],
      // A 1 MB young generation: a collection every few dozen requests, so a window's sum is exact to a few percent.
      args: ['--max-semi-space-size', '1', '--resolve', `${REST_UPSTREAM}=127.0.0.1:${(model.address() as AddressInfo).port}`, '--resolve', `${GRPC_UPSTREAM}=127.0.0.1:${grpcModel.port}`],
      main,
    });
    const clients = [0, 1].map(() => seldonClient(`127.0.0.1:${gw.port}`));
    gateways.push({ main, gw, logFile, clients, rest: { bytes: [], cpuUs: [], failed: [] }, grpc: { bytes: [], cpuUs: [], failed: [] } });
  }
  const restRun = (gw: Gateway) => async (): Promise<{ ok: number; failed: number }> => {
    const sent = await openLoop(gw.port, PATH, rate, seconds, () => BODY);
    const ok = sent.filter((s) => s.status === 200).length;
    return { ok, failed: sent.length - ok };
  };
  // Warm-up: the code paths compiled, the pools' connections open.
  for (const g of gateways) {
    await openLoop(g.gw.port, PATH, rate, 1, () => BODY);
    await grpcCalls(g.clients, 1);
  }
  for (let round = 1; round <= rounds; round++) {
    for (const g of gateways) {
      await window(g.gw, g.logFile, restRun(g.gw), g.rest);
      await window(g.gw, g.logFile, () => grpcCalls(g.clients, seconds), g.grpc);
      log(`round ${round} ${g.main}: REST ${f0(g.rest.bytes.at(-1))} B, ${f1(g.rest.cpuUs.at(-1))} µs; gRPC ${f0(g.grpc.bytes.at(-1))} B, ${f1(g.grpc.cpuUs.at(-1))} µs per request`);
    }
  }
  const first = gateways[0]!;
  const rows = gateways.map((g) => {
    const ratio = (m: Measure, base: Measure, k: 'bytes' | 'cpuUs'): string => `${(median(m[k]) / median(base[k])).toFixed(2)}x`;
    return [
      g.main,
      f0(median(g.rest.bytes)),
      ratio(g.rest, first.rest, 'bytes'),
      f1(median(g.rest.cpuUs)),
      f0(median(g.grpc.bytes)),
      ratio(g.grpc, first.grpc, 'bytes'),
      f1(median(g.grpc.cpuUs)),
      String([...g.rest.failed, ...g.grpc.failed].reduce((a, b) => a + b, 0)),
    ];
  });
  log(table(['build', 'REST B/request', 'vs first', 'REST CPU µs', 'gRPC B/call', 'vs first', 'gRPC CPU µs', 'failed'], rows));
  log(
    `REST ${rate}/s open loop and gRPC ${GRPC_LOOPS} call loops, ${seconds} s each per round, ${rounds} rounds interleaved; --workers 1, --max-semi-space-size 1, defaults otherwise (access log on); V8 --trace-gc-nvp allocated= of the worker`,
  );
  for (const g of gateways) {
    for (const c of g.clients) c.close();
    g.gw.server.child.kill('SIGTERM');
    await g.gw.server.exited;
  }
  model.close();
  grpcModel.close();
}

runMain('alloc-bench', main);
