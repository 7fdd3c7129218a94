/**
 * The translated route end to end, beside the untranslated one, through one real gateway (npm run bench --
 * translate-route): a Seldon client → gateway → a v2 model (translated, `seldon.io/gateway-protocol`) against a
 * Seldon client → gateway → a Seldon model (untranslated), REST (HTTP/1.1 keep-alive) and gRPC (one HTTP/2
 * connection), a 1×4 and a 100×100 FP64 tensor, and the issue's 1×150,528 (an image's 224×224×3) as FP32 (the
 * annotation's `datatype: FP32`, the model answering FP32). What is measured is the gateway process tree's CPU (the time
 * the scheduler ran its threads, /proc's schedstat: exact, where utime+stime are sampled at each tick) per request over a window of each route in turn, the two routes alternating window by window in one
 * gateway (what the shared host does to one window it mostly does to the next): each round gives a ratio,
 * translated over untranslated; the table gives the medians.
 *
 * The models are stand-ins in this process answering precomputed bytes (the v2 model MLServer's answer to the
 * request, the Seldon model its request back), so the client receives a body of about the same size both ways and
 * the models' own CPU is not the gateway's. Every answer is checked: status, `x-seldon-translated` where it must be.
 *
 *   npx vite-node load/scenarios/translate-route.ts [--rounds 5] [--requests-small 3000] [--requests-medium 300] [--requests-large 12] [--concurrency 4] [--only 150528]
 *     [--transport REST] [--node-args "--cpu-prof --cpu-prof-dir=/tmp/p"] [--in-place parse-write|hold]
 *
 * `--node-args`: node flags for the gateway (its workers inherit them), e.g. a CPU profile or `--trace-gc` of the route.
 * `--in-place`: the translated route with something else in the translation's place (load/lib/translate-in-place.mjs):
 * `parse-write`, each body parsed once and the translation's output written once (the `translate` scenario's
 * yardstick, in the route); `hold`, each body passed as it came (read whole, counted, logged, nothing parsed). Its
 * ratio beside the real translation's says what the translation adds over one parse and one write where it runs.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { Pool } from 'undici';
import { PROTO_DIR } from '../../test/fixtures/grpc-backend.js';
import { atCleanup, runMain } from '../lib/children.js';
import { GATEWAY_MAIN, buildInfo, counter, metricsText, nodeArgsOf, startGateway } from '../lib/gateway.js';
import { treeRuntimeSeconds } from '../lib/proc.js';
import { median, table } from '../lib/report.js';

const { values: opts } = parseArgs({
  options: {
    rounds: { type: 'string', default: '5' },
    'requests-small': { type: 'string', default: '3000' },
    'requests-medium': { type: 'string', default: '300' },
    'requests-large': { type: 'string', default: '12' },
    only: { type: 'string', default: '' },
    concurrency: { type: 'string', default: '4' },
    transport: { type: 'string', default: '' },
    'node-args': { type: 'string', default: '' },
    'in-place': { type: 'string', default: '' },
  },
});
const ROUNDS = Number(opts.rounds);
const CONCURRENCY = Number(opts.concurrency);
const IN_PLACE = opts['in-place'] ?? '';
if (IN_PLACE !== '' && IN_PLACE !== 'parse-write' && IN_PLACE !== 'hold') throw new Error(`--in-place is parse-write or hold, not ${IN_PLACE}`);

const defs = protoLoader.loadSync(['seldon.proto', 'inference.proto'], { includeDirs: [PROTO_DIR], keepCase: true, longs: String, enums: String, defaults: false, oneofs: false });
type Msg = Record<string, unknown>;
type Method = protoLoader.MethodDefinition<Msg, Msg>;
const predict = (defs['seldon.protos.Seldon'] as unknown as Record<string, Method>).Predict!;
const infer = (defs['inference.GRPCInferenceService'] as unknown as Record<string, Method>).ModelInfer!;
const PREDICT = '/seldon.protos.Seldon/Predict';
const INFER = '/inference.GRPCInferenceService/ModelInfer';

/** Seeded values (mulberry32): the same bodies every run. */
function values(n: number, seed: number): number[] {
  let a = seed;
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    out.push(Math.round((((t ^ (t >>> 14)) >>> 0) / 4294967296) * 1e6) / 1e4);
  }
  return out;
}

const frame = (m: Buffer): Buffer => {
  const h = Buffer.alloc(5);
  h.writeUInt32BE(m.length, 1);
  return Buffer.concat([h, m]);
};

interface Size {
  readonly name: string;
  readonly requests: number;
  /** The translated deployment: FP64 by the values, or the annotation's FP32. */
  readonly deployment: 'translated' | 'translated-fp32';
  readonly restRequest: Buffer;
  /** The v2 model's REST answer to the translated request. */
  readonly restV2Answer: Buffer;
  readonly grpcRequest: Buffer;
  /** The v2 model's gRPC answer (framed). */
  readonly grpcV2Answer: Buffer;
}

function size(name: string, rows: number, cols: number, requests: number, fp32 = false): Size {
  // FP32: values a float32 holds, so the model's FP32 answer is the request's numbers.
  const v = values(rows * cols, rows * 1000 + cols).map((x) => (fp32 ? Math.fround(x) : x));
  const shape = [rows, cols];
  const datatype = fp32 ? 'FP32' : 'FP64';
  const contents = fp32 ? { fp32_contents: v } : { fp64_contents: v };
  const restRequest = Buffer.from(JSON.stringify({ data: { tensor: { shape, values: v } } }));
  const restV2Answer = Buffer.from(JSON.stringify({ model_name: 'm', outputs: [{ name: 'output-0', shape, datatype, data: v }] }));
  const grpcRequest = predict.requestSerialize({ data: { tensor: { shape, values: v } } });
  const grpcV2Answer = frame(infer.responseSerialize({ model_name: 'm', outputs: [{ name: 'output-0', datatype, shape, contents }] }));
  return { name, requests, deployment: fp32 ? 'translated-fp32' : 'translated', restRequest, restV2Answer, grpcRequest, grpcV2Answer };
}

const SIZES = [
  size('1×4', 1, 4, Number(opts['requests-small'])),
  size('100×100', 100, 100, Number(opts['requests-medium'])),
  size('1×150,528 FP32', 1, 150_528, Number(opts['requests-large']), true),
].filter((s) => s.name.replace(',', '').includes(opts.only ?? ''));

/** The answer of the size whose request's length is nearest `length` (a translated request is a little longer or shorter than the client's). */
function nearest(length: number, answers: ReadonlyMap<number, Buffer>): Buffer {
  let best: Buffer | undefined;
  let d = Infinity;
  for (const [len, a] of answers)
    if (Math.abs(len - length) < d) {
      d = Math.abs(len - length);
      best = a;
    }
  return best!;
}

/** One REST server for both models: the v2 model's answer by the request's size, the Seldon model's its request back. */
async function restModel(): Promise<{ port: number; close(): void }> {
  const answers = new Map(SIZES.map((s) => [s.restRequest.length, s.restV2Answer]));
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      if (req.url === '/api/v1.0/predictions') return void res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length }).end(body);
      if (req.url === '/v2/models/m/infer') {
        const best = nearest(body.length, answers);
        return void res.writeHead(200, { 'content-type': 'application/json', 'content-length': best.length }).end(best);
      }
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"not found"}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { port: (server.address() as AddressInfo).port, close: () => server.close() };
}

/** One gRPC (HTTP/2) server for both models: ModelInfer answered by the request's size, Predict with its message back; ModelMetadata UNIMPLEMENTED. */
async function grpcModel(): Promise<{ port: number; close(): void }> {
  const answers = new Map(SIZES.map((s) => [s.grpcRequest.length, s.grpcV2Answer]));
  const server = http2.createServer();
  server.on('stream', (stream, headers) => {
    stream.on('error', () => undefined);
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => {
      const path = headers[':path'];
      const body = Buffer.concat(chunks);
      let answer: Buffer | undefined;
      if (path === PREDICT) answer = body;
      else if (path === INFER) answer = nearest(body.length, answers);
      if (answer === undefined) return stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '12' }, { endStream: true });
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
      stream.once('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
      stream.end(answer);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { port: (server.address() as AddressInfo).port, close: () => server.close() };
}

const sdep = (name: string, protocol: string, annotations: Record<string, string> = {}): string =>
  JSON.stringify({
    apiVersion: 'machinelearning.seldon.io/v1',
    kind: 'SeldonDeployment',
    // A 1×150,528 request on a busy host may take longer than Seldon's default 3 s: the timeouts are out of the way.
    metadata: { name, namespace: 'm', annotations: { 'seldon.io/rest-timeout': '60000', 'seldon.io/grpc-timeout': '60000', ...annotations } },
    spec: { protocol, predictors: [{ name: 'main', graph: { name: 'm' } }] },
  });

/** `n` requests, `CONCURRENCY` at a time, each checked by `one`. */
async function run(n: number, one: () => Promise<void>): Promise<void> {
  let left = n;
  const worker = async (): Promise<void> => {
    while (left-- > 0) await one();
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
}

runMain('translate-route', async () => {
  const rest = await restModel();
  const g = await grpcModel();
  atCleanup(() => {
    rest.close();
    g.close();
  });
  const dir = mkdtempSync(join(tmpdir(), 'sgw-translate-route-'));
  writeFileSync(join(dir, 'translated.json'), sdep('translated', 'v2', { 'seldon.io/gateway-protocol': '{}' }));
  writeFileSync(join(dir, 'translated-fp32.json'), sdep('translated-fp32', 'v2', { 'seldon.io/gateway-protocol': '{"datatype": "FP32"}' }));
  writeFileSync(join(dir, 'plain.json'), sdep('plain', 'seldon'));
  const resolve = (d: string): string[] => ['--resolve', `${d}-main.m:8000=127.0.0.1:${rest.port}`, '--resolve', `${d}-main.m:5001=127.0.0.1:${g.port}`];
  const gw = await startGateway('gateway', {
    log: join(dir, 'gateway.log'),
    manifests: dir,
    nodeArgs: [...nodeArgsOf(opts['node-args']), ...(IN_PLACE === '' ? [] : [`--import=${fileURLToPath(new URL('../lib/translate-in-place.mjs', import.meta.url))}`])],
    env: IN_PLACE === '' ? {} : { TRANSLATE_IN_PLACE: IN_PLACE },
    args: [...resolve('translated'), ...resolve('translated-fp32'), ...resolve('plain')],
  });
  atCleanup(() => void gw.stop());
  const pool = new Pool(`http://127.0.0.1:${gw.port}`, { connections: CONCURRENCY, pipelining: 1 });
  const client = new grpc.Client(`127.0.0.1:${gw.port}`, grpc.credentials.createInsecure());

  const restOne = (deployment: string, body: Buffer) => async (): Promise<void> => {
    const r = await pool.request({ method: 'POST', path: `/seldon/m/${deployment}/api/v1.0/predictions`, headers: { 'content-type': 'application/json' }, body });
    const text = await r.body.text();
    const translated = r.headers['x-seldon-translated'];
    if (r.statusCode !== 200 || (deployment !== 'plain') !== (translated === 'seldon->v2')) throw new Error(`REST ${deployment}: ${r.statusCode} ${String(translated)} ${text.slice(0, 200)}`);
  };
  const grpcOne = (deployment: string, message: Buffer) => (): Promise<void> =>
    new Promise((resolve, reject) => {
      const md = new grpc.Metadata();
      md.set('seldon', deployment);
      md.set('namespace', 'm');
      let translated: unknown;
      const c = client.makeUnaryRequest(
        PREDICT,
        (b: Buffer) => b,
        (b: Buffer) => b,
        message,
        md,
        (err) => {
          if (err !== null) return reject(new Error(`gRPC ${deployment}: ${err.message}`));
          if ((deployment !== 'plain') !== (translated === 'seldon->v2')) return reject(new Error(`gRPC ${deployment}: translated ${String(translated)}`));
          resolve();
        },
      );
      c.on('metadata', (m) => (translated = m.get('x-seldon-translated')[0]));
    });

  const rows: string[][] = [];
  for (const s of SIZES) {
    for (const transport of (['REST', 'gRPC'] as const).filter((t) => !opts.transport || t === opts.transport)) {
      const one = (d: string): (() => Promise<void>) => (transport === 'REST' ? restOne(d, s.restRequest) : grpcOne(d, s.grpcRequest));
      const routes = [one('plain'), one(s.deployment)];
      // Warm both routes (the JIT, the pools, the model's metadata fetched and found UNIMPLEMENTED or 404): the large size's few are enough.
      for (const r of routes) await run(s.requests < 100 ? s.requests : Math.max(200, s.requests / 5), r);
      const us: [number[], number[]] = [[], []];
      const ratios: number[] = [];
      for (let round = 0; round < ROUNDS; round++) {
        const order = round % 2 === 0 ? [0, 1] : [1, 0];
        const got: number[] = [];
        for (const which of order) {
          const c0 = treeRuntimeSeconds(gw.server.pid);
          await run(s.requests, routes[which]!);
          got[which] = ((treeRuntimeSeconds(gw.server.pid) - c0) * 1e6) / s.requests;
        }
        us[0].push(got[0]!);
        us[1].push(got[1]!);
        ratios.push(got[1]! / got[0]!);
      }
      const [u, t] = [median(us[0]), median(us[1])];
      rows.push([
        `${transport} ${s.name}`,
        `${transport === 'REST' ? s.restRequest.length : s.grpcRequest.length}`,
        u.toFixed(0),
        t.toFixed(0),
        (t - u).toFixed(0),
        `${median(ratios).toFixed(2)}x`,
        `${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)}`,
      ]);
    }
  }
  const m = await metricsText(gw.admin);
  const counted =
    counter(m, 'seldon_gateway_protocol_translations_total', { deployment: 'translated', result: 'ok' }) +
    counter(m, 'seldon_gateway_protocol_translations_total', { deployment: 'translated-fp32', result: 'ok' });
  client.close();
  await pool.close();
  process.stdout.write(`gateway log (its stderr, --trace-gc's lines): ${join(dir, 'gateway.log')}\n`);
  process.stdout.write(table(['route and size', 'client body bytes', 'untranslated µs/req', 'translated µs/req', 'added µs/req', 'ratio (median)', 'ratio range'], rows) + '\n');
  process.stdout.write(
    `\n${buildInfo(GATEWAY_MAIN)}; Node ${process.version}; the gateway's process tree CPU (schedstat) per request, ${ROUNDS} rounds of one window per route (alternating which goes first), ${CONCURRENCY} at a time; ${counted} translations counted ok${IN_PLACE === '' ? '' : `; in the translation's place: ${IN_PLACE} (load/lib/translate-in-place.mjs)`}.\n`,
  );
});
