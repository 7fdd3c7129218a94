/**
 * Compression beside nginx `gzip on` (docs/edge.md#compression): a 100 KB and a 1 MB JSON tensor from
 * an nginx static backend, through the gateway (`--compress gzip --compress-level gzip=N`), through
 * nginx (`gzip_comp_level N`) and through the gateway without compression. Per row: the body's bytes
 * on the wire, whether the client's decoded body is the model's, and the proxy's CPU per request
 * (its process tree's, from /proc). Proxies on core 0, the backend and the client on core 1; each
 * proxy warmed, then they take turns `--rounds` times. `--vs-main <main.js>`: both gateway rows on
 * that build too, in the same turns.
 *
 *   npm run bench -- compression [--quick] [--vs <ref>]   (or: --requests 600 --rounds 4 --conns 4 --level 6 --vs-main dir/dist/gateway/main.js)
 */
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Pool } from 'undici';
import { gunzipSync } from 'node:zlib';
import { atCleanup, runMain } from '../lib/children.js';
import { sdep, writeManifests } from '../lib/bench-table.js';
import { startGateway } from '../lib/gateway.js';
import { log, table } from '../lib/report.js';
import { freePort, httpStatus, tensor } from '../lib/http.js';
import { startNginx, writeConf } from '../lib/nginx.js';
import { treeSeconds } from '../lib/proc.js';

const { values: opts } = parseArgs({
  options: {
    requests: { type: 'string', default: '600' },
    conns: { type: 'string', default: '4' },
    level: { type: 'string', default: '6' },
    'vs-main': { type: 'string' },
    'vs-label': { type: 'string', default: 'the other build' },
    rounds: { type: 'string', default: '4' },
    'plain-requests': { type: 'string', default: '3000' },
    warmup: { type: 'string', default: '1000' },
  },
});
const [REQUESTS, CONNS, WARMUP, ROUNDS, LEVEL] = [opts.requests, opts.conns, opts.warmup, opts.rounds, opts.level].map(Number) as [number, number, number, number, number];
const PROXY_CPU = 0;
const OTHER_CPU = availableParallelism() > 1 ? 1 : 0;

/** A proxy measured (`pid`: its process tree), asking for gzip or not. */
type Target = { readonly proxy: string; readonly port: number; readonly pid: number; readonly prefix: string; readonly gzip: boolean };

/** A client of `t` over CONNS keep-alive connections: `one` GET of `path` (its body as received); `cpu`: `n` of them at once, the proxy's CPU seconds over them. */
function client(t: Target, path: string): { one: () => Promise<Buffer>; cpu: (n: number) => Promise<number>; close: () => void } {
  const pool = new Pool(`http://127.0.0.1:${t.port}`, { connections: CONNS });
  const headers = t.gzip ? { 'accept-encoding': 'gzip' } : {};
  const one = async (): Promise<Buffer> => {
    const r = await pool.request({ method: 'GET', path: t.prefix + path, headers });
    const body = Buffer.from(await r.body.arrayBuffer());
    if (r.statusCode !== 200) throw new Error(`${path}: ${r.statusCode}`);
    return body;
  };
  const cpu = async (n: number): Promise<number> => {
    const before = treeSeconds(t.pid);
    const connection = async (): Promise<void> => {
      while (n-- > 0) await one();
    };
    await Promise.all(Array.from({ length: CONNS }, connection));
    return treeSeconds(t.pid) - before;
  };
  return { one, cpu, close: () => void pool.close() };
}

runMain('compression', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'compression-'));
  // nginx's workers run as an unprivileged user: they read the answers through this directory.
  chmodSync(dir, 0o755);
  atCleanup(() => rmSync(dir, { recursive: true, force: true }));
  const answers = { '100k': tensor(100 * 1024), '1m': tensor(1024 * 1024) };
  const www = join(dir, 'www');
  mkdirSync(www);
  for (const [name, body] of Object.entries(answers)) writeFileSync(join(www, `${name}.json`), body);

  const backendPort = await freePort();
  await startNginx(
    'backend',
    OTHER_CPU,
    writeConf(join(dir, 'backend'), backendPort, `    default_type application/json;\n    location / { root ${www}; }`),
    async () => (await httpStatus(`http://127.0.0.1:${backendPort}/100k.json`)) === 200,
  );

  const nginxPort = await freePort();
  const gzipConf = `    gzip on;\n    gzip_comp_level ${LEVEL};\n    gzip_min_length 30;\n    gzip_proxied any;\n    gzip_types application/json;\n    gzip_vary on;\n`;
  const proxied = `    location / {\n      proxy_pass http://bench_backend;\n      proxy_http_version 1.1;\n      proxy_set_header Connection "";\n    }\n`;
  const nginx = await startNginx(
    'nginx-gzip',
    PROXY_CPU,
    writeConf(join(dir, 'nginx'), nginxPort, gzipConf + proxied, { upstream: `  upstream bench_backend { server 127.0.0.1:${backendPort}; keepalive 64; }` }),
    async () => (await httpStatus(`http://127.0.0.1:${nginxPort}/100k.json`)) === 200,
  );

  const manifests = join(dir, 'manifests');
  mkdirSync(manifests);
  writeManifests(join(manifests, 'bench.yaml'), [sdep('model', 'bench')]);
  const launch = (name: string, args: string[], main?: string): ReturnType<typeof startGateway> =>
    startGateway(name, {
      log: join(dir, `${name}.log`),
      cpu: PROXY_CPU,
      manifests,
      upstreams: ['model-main.bench:8000'],
      backendPort,
      nodeArgs: [],
      ...(main !== undefined ? { main } : {}),
      args: ['--access-log', 'off', ...args],
    });

  const gzipArgs = ['--compress', 'gzip', '--compress-level', `gzip=${LEVEL}`];
  const compressing = await launch('gateway-gzip', gzipArgs);
  const plain = await launch('gateway-plain', []);
  const vs = opts['vs-main'];
  const baseline = vs === undefined ? undefined : await launch('gateway-vs', [], vs);
  const baselineGzip = vs === undefined ? undefined : await launch('gateway-vs-gzip', gzipArgs, vs);
  const gw = (proxy: string, g: Awaited<ReturnType<typeof launch>> | undefined, gzip: boolean): Target[] =>
    g ? [{ proxy, port: g.port, pid: g.server.pid, prefix: '/seldon/bench/model/', gzip }] : [];
  const targets: Target[] = [
    { proxy: `nginx gzip_comp_level ${LEVEL}`, port: nginxPort, pid: nginx.pid, prefix: '/', gzip: true },
    ...gw(`gateway --compress gzip=${LEVEL}`, compressing, true),
    ...gw(`gateway --compress gzip=${LEVEL}, ${opts['vs-label']}`, baselineGzip, true),
    ...gw('gateway, compression off', plain, false),
    ...gw(`gateway, ${opts['vs-label']}`, baseline, false),
  ];

  // Every target is warmed (connections open, a gateway's JIT past its first tiers: it compiles its hot
  // path and sizes its heap over its first thousand answers or so), then they take turns, ROUNDS times: what the machine
  // does meanwhile falls on all of them alike.
  const rows: string[][] = [];
  for (const [size, answer] of Object.entries(answers)) {
    const scale = (n: number): number => Math.max(CONNS, Math.round((n * 100 * 1024) / answer.length));
    const per = (t: Target): number => (t.gzip ? scale(REQUESTS / ROUNDS) : Math.round(Number(opts['plain-requests']) / ROUNDS));
    const runs = targets.map((t) => ({ t, c: client(t, `${size}.json`), cpu: 0, first: Buffer.alloc(0) as Buffer, requests: per(t) }));
    for (const r of runs) {
      for (let i = 0; i < scale(WARMUP); i++) await r.c.one();
      r.first = await r.c.one();
    }
    for (let round = 0; round < ROUNDS; round++) for (const r of runs) r.cpu += await r.c.cpu(r.requests);
    for (const { t, c, cpu, first, requests } of runs) {
      c.close();
      const exact = (t.gzip ? gunzipSync(first) : first).equals(answer);
      rows.push([t.proxy, size, String(first.length), `${(answer.length / first.length).toFixed(2)}x`, ((cpu * 1000) / (requests * ROUNDS)).toFixed(3), exact ? 'yes' : 'NO']);
    }
  }
  rows.sort((x, y) => targets.findIndex((t) => t.proxy === x[0]) - targets.findIndex((t) => t.proxy === y[0]));
  log(`${ROUNDS} rounds in turn after ${WARMUP} answers of warm-up; 100 KB: ${REQUESTS} requests per compressed row (1 MB: a tenth), ${opts['plain-requests']} per plain one`);
  log(`${CONNS} connections; proxy on core ${PROXY_CPU}, backend and client on core ${OTHER_CPU}\n`);
  log(table(['proxy', 'answer', 'body bytes on the wire', 'ratio', 'proxy CPU ms/request', 'decoded = model bytes'], rows));
});
