/**
 * Compression beside nginx `gzip on` (docs/edge.md#compression): a 100 KB and a 1 MB JSON tensor
 * answer, served by an nginx static backend, fetched through the gateway (`--compress gzip
 * --compress-level gzip=N`) and through nginx (`gzip on; gzip_comp_level N`) at the same level,
 * and through the gateway without compression (the plain route). For each: the answer's bytes on
 * the wire (its body as the client received it, compressed), that the client's decoded body is
 * the model's, and the proxy's CPU per request (its process tree's user+system time over the run,
 * from /proc). The proxy is pinned to core 0, the backend and the client to core 1 when there are
 * two.
 *
 * With `--vs-main <main.js>` (another build, e.g. the commit before compression), the plain route
 * is also measured on that build, the two alternating for `--plain-rounds` rounds: what the route
 * without compression costs now beside what it cost before.
 *
 *   npm run bench -- compression [--quick] [--vs <ref>]   (or: --requests 300 --conns 4 --level 6 --vs-main dir/dist/gateway/main.js)
 */
import http from 'node:http';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { gunzipSync } from 'node:zlib';
import { atCleanup, runMain, type Spawned } from '../lib/children.js';
import { sdep, writeManifests } from '../lib/bench-table.js';
import { startGateway } from '../lib/gateway.js';
import { log, table } from '../lib/report.js';
import { freePort, httpStatus, tensor } from '../lib/http.js';
import { startNginx, writeConf } from '../lib/nginx.js';
import { treeSeconds } from '../lib/proc.js';

const { values: opts } = parseArgs({
  options: {
    requests: { type: 'string', default: '300' },
    conns: { type: 'string', default: '4' },
    level: { type: 'string', default: '6' },
    'vs-main': { type: 'string' },
    'vs-label': { type: 'string', default: 'the other build' },
    'plain-rounds': { type: 'string', default: '3' },
    'plain-requests': { type: 'string', default: '3000' },
  },
});
const REQUESTS = Number(opts.requests);
const CONNS = Number(opts.conns);
const LEVEL = Number(opts.level);
const PROXY_CPU = 0;
const OTHER_CPU = availableParallelism() > 1 ? 1 : 0;

interface Run {
  readonly wireBytes: number;
  readonly cpuMsPerRequest: number;
  readonly exact: boolean;
}

/** `requests` GETs of `path` over `CONNS` keep-alive connections; the proxy `pid`'s CPU over them. */
async function run(port: number, path: string, pid: number, answer: Buffer, gzip: boolean, requests: number): Promise<Run> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: CONNS });
  const headers = gzip ? { 'accept-encoding': 'gzip' } : {};
  const one = (): Promise<Buffer> =>
    new Promise((resolve, reject) => {
      http
        .get({ host: '127.0.0.1', port, path, agent, headers }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => (res.statusCode === 200 ? resolve(Buffer.concat(chunks)) : reject(new Error(`${path}: ${res.statusCode}`))));
        })
        .on('error', reject);
    });
  // Warm up: connections open, the JIT past its first tiers.
  for (let i = 0; i < CONNS * 4; i++) await one();
  const body = await one();
  const decoded = gzip ? gunzipSync(body) : body;
  const before = treeSeconds(pid);
  let left = requests;
  await Promise.all(
    Array.from({ length: CONNS }, async () => {
      while (left-- > 0) await one();
    }),
  );
  const cpu = treeSeconds(pid) - before;
  agent.destroy();
  return { wireBytes: body.length, cpuMsPerRequest: (cpu * 1000) / requests, exact: decoded.equals(answer) };
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

  const rows: string[][] = [];
  const row = (proxy: string, size: string, r: Run): void =>
    void rows.push([proxy, size, String(r.wireBytes), `${(answers[size as keyof typeof answers].length / r.wireBytes).toFixed(2)}x`, r.cpuMsPerRequest.toFixed(3), r.exact ? 'yes' : 'NO']);
  const measure = async (proxy: string, port: number, server: Spawned, prefix: string, gzip: boolean): Promise<void> => {
    const requests = gzip ? REQUESTS : Number(opts['plain-requests']);
    for (const size of Object.keys(answers) as (keyof typeof answers)[]) row(proxy, size, await run(port, `${prefix}${size}.json`, server.pid, answers[size], gzip, requests));
  };

  await measure(`nginx gzip_comp_level ${LEVEL}`, nginxPort, nginx, '/', true);
  const compressing = await launch('gateway-gzip', ['--compress', 'gzip', '--compress-level', `gzip=${LEVEL}`]);
  await measure(`gateway --compress gzip=${LEVEL}`, compressing.port, compressing.server, '/seldon/bench/model/', true);
  await compressing.stop();
  const plain = await launch('gateway-plain', []);
  const baseline = opts['vs-main'] === undefined ? undefined : await launch('gateway-vs', [], opts['vs-main']);
  for (let round = 0; round < (baseline === undefined ? 1 : Number(opts['plain-rounds'])); round++) {
    await measure('gateway, compression off', plain.port, plain.server, '/seldon/bench/model/', false);
    if (baseline !== undefined) await measure(`gateway, ${opts['vs-label']}`, baseline.port, baseline.server, '/seldon/bench/model/', false);
  }

  log(`${REQUESTS} requests per compressed row, ${opts['plain-requests']} per plain one, over ${CONNS} connections; proxy on core ${PROXY_CPU}, backend and client on core ${OTHER_CPU}\n`);
  log(table(['proxy', 'answer', 'body bytes on the wire', 'ratio', 'proxy CPU ms/request', 'decoded = model bytes'], rows));
});
