/**
 * Endpoint health beside haproxy and nginx, in one run: four model replicas on 127.0.0.2–127.0.0.5
 * at one port, one of them sick, hanging or slow, behind each proxy in turn, open-loop load; what
 * the clients got and where the requests went.
 *
 *   gateway  the CLI (2 workers), endpoints from EndpointSlices served by the Kubernetes API
 *            stand-in (test/fixtures/fake-kube-api.ts); route timeout 1 s (`seldon.io/rest-timeout`)
 *   haproxy  `balance leastconn`, `observe layer7`, `error-limit 5`, `on-error mark-down`, active
 *            checks every second (GET /health/ping), `timeout server 1s`
 *   nginx    `max_fails=5 fail_timeout=30s`, `proxy_next_upstream error timeout http_500
 *            non_idempotent` (POST included, so a 500 is tried elsewhere), `proxy_read_timeout 1s`
 *
 * Cases: all healthy (the latency baseline), one replica answering 500 at once (150/s for 20 s),
 * one that accepts and never answers (100/s for 10 s), one 10x slower (200 ms against 20 ms, 100/s
 * for 10 s). `npx vite-node load/health-bench.ts [--seconds-scale 0.5]`.
 *
 * `--cpu-ab <other dist/gateway/main.js>`: instead, the gateway's CPU per request with all four
 * healthy (the endpoint-health bookkeeping on every attempt), this build against another, 1,000
 * requests/s for 10 s, rounds interleaved.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { runMain, startServer, waitFor, type Spawned } from './lib/children.js';
import { GATEWAY_MAIN } from './lib/gateway.js';
import { haproxyBinary } from './lib/haproxy.js';
import { httpStatus } from './lib/http.js';
import { nginxBinary } from './lib/nginx.js';
import { treeSeconds } from './lib/proc.js';
import { f1, log, median, table } from './lib/report.js';
import { endpointSlice, seldonDeployment, startFakeKubeApi, writeKubeconfig } from '../test/fixtures/fake-kube-api.js';
import { openLoop, REPLICA_IPS, restReplicas, share, type Replicas, type Sent } from '../test/fixtures/loopback-replicas.js';

const IPS = REPLICA_IPS;
const PATH = '/seldon/models/iris/api/v1.0/predictions';
const BODY = (): string => '{"data":{"ndarray":[[1]]}}';

/** `rate` requests per second for `seconds`, open loop, to `port`. */
const load = (port: number, rate: number, seconds: number): Promise<Sent[]> => openLoop(port, PATH, rate, seconds, BODY);

interface Target {
  readonly name: string;
  readonly port: number;
  stop(): Promise<void>;
}

async function gateway(dir: string, r: Replicas, main = GATEWAY_MAIN): Promise<Target & { pid: number }> {
  const api = await startFakeKubeApi();
  api.upsert(
    'endpointslices',
    endpointSlice(
      'iris-default',
      'models',
      'iris-default-abc',
      IPS.map((ip) => ({ ip })),
      [{ name: 'http', port: r.port }],
    ),
  );
  api.upsert('seldondeployments', seldonDeployment('iris', 'models', undefined, { 'seldon.io/rest-timeout': '1000' }));
  const port = 18_400;
  const admin = 18_401;
  const s = startServer('gateway', join(dir, 'gateway.log'), undefined, [
    process.execPath,
    main,
    'serve',
    '--kubernetes',
    '--kubeconfig',
    writeKubeconfig(dir, api),
    '--workers',
    '2',
    '--port',
    String(port),
    '--admin-port',
    String(admin),
    '--host',
    '127.0.0.1',
    '--access-log',
    'off',
  ]);
  await waitFor('gateway', s, async () => {
    const text = await fetch(`http://127.0.0.1:${admin}/metrics`).then(
      (x) => x.text(),
      () => '',
    );
    return (
      text
        .split('\n')
        .filter((l) => l.startsWith('seldon_gateway_upstream_ready_endpoints') && l.includes('iris'))
        .reduce((a, l) => a + Number(l.slice(l.lastIndexOf(' ') + 1)), 0) >= 4
    );
  });
  return { name: 'gateway', port, pid: s.pid, stop: async () => void (await stop(s, api)) };
}

async function stop(s: Spawned, api?: { close(): Promise<void> }): Promise<void> {
  s.child.kill('SIGTERM');
  await s.exited;
  await api?.close();
}

async function haproxy(dir: string, r: Replicas): Promise<Target> {
  const binary = haproxyBinary();
  if (binary === null) throw new Error('haproxy is not installed (apt-get install haproxy)');
  const port = 18_410;
  const cfg = join(dir, 'haproxy.cfg');
  writeFileSync(
    cfg,
    `global
  maxconn 8000
defaults
  mode http
  timeout connect 1s
  timeout client 30s
  timeout http-keep-alive 60s
  timeout server 1s
frontend bench
  bind 127.0.0.1:${port}
  http-request return status 200 if { path /__ready }
  default_backend models
backend models
  balance leastconn
  option httpchk GET /health/ping
${IPS.map((ip, i) => `  server r${i} ${ip}:${r.port} check inter 1s observe layer7 error-limit 5 on-error mark-down`).join('\n')}
`,
  );
  const s = startServer('haproxy', join(dir, 'haproxy.log'), undefined, [binary, '-db', '-f', cfg]);
  await waitFor('haproxy', s, async () => (await httpStatus(`http://127.0.0.1:${port}/__ready`)) === 200);
  return { name: 'haproxy', port, stop: () => stop(s) };
}

async function nginx(dir: string, r: Replicas): Promise<Target> {
  const binary = nginxBinary();
  if (binary === null) throw new Error('nginx is not installed (apt-get install nginx)');
  const port = 18_420;
  const d = join(dir, 'nginx');
  mkdirSync(d, { recursive: true });
  const conf = join(d, 'nginx.conf');
  writeFileSync(
    conf,
    `daemon off;
worker_processes 2;
pid ${d}/nginx.pid;
error_log ${d}/error.log;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${d}/body; proxy_temp_path ${d}/proxy; fastcgi_temp_path ${d}/fcgi; uwsgi_temp_path ${d}/uwsgi; scgi_temp_path ${d}/scgi;
  upstream models {
${IPS.map((ip) => `    server ${ip}:${r.port} max_fails=5 fail_timeout=30s;`).join('\n')}
    keepalive 64;
  }
  server {
    listen 127.0.0.1:${port};
    location = /__ready { return 200; }
    location / {
      proxy_pass http://models;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_read_timeout 1s;
      proxy_next_upstream error timeout http_500 non_idempotent;
    }
  }
}
`,
  );
  const s = startServer('nginx', join(dir, 'nginx.log'), undefined, [binary, '-p', `${d}/`, '-c', conf]);
  await waitFor('nginx', s, async () => (await httpStatus(`http://127.0.0.1:${port}/__ready`)) === 200);
  return { name: 'nginx', port, stop: () => stop(s) };
}

const mean = (xs: readonly Sent[]): number => xs.reduce((a, x) => a + x.ms, 0) / Math.max(1, xs.length);

/** CPU µs per request of each build, all replicas healthy, `rounds` interleaved rounds. */
async function cpuAb(dir: string, other: string, rounds: number): Promise<void> {
  const r = await restReplicas(['ok', 'ok', 'ok', 'ok']);
  const us: Record<string, number[]> = { new: [], before: [] };
  try {
    for (let round = 0; round < rounds; round++) {
      for (const [name, main] of [
        ['new', GATEWAY_MAIN],
        ['before', other],
      ] as const) {
        mkdirSync(join(dir, `${name}-${round}`), { recursive: true });
        const g = await gateway(join(dir, `${name}-${round}`), r, main);
        try {
          await load(g.port, 300, 2); // warm-up
          const cpu0 = treeSeconds(g.pid);
          const sent = await load(g.port, 1000, 10);
          const cpu = treeSeconds(g.pid) - cpu0;
          const bad = sent.filter((x) => x.status !== 200).length;
          if (bad > 0) throw new Error(`${name}: ${bad} requests failed`);
          us[name]!.push((cpu * 1e6) / sent.length);
        } finally {
          await g.stop();
        }
      }
    }
  } finally {
    await r.close();
  }
  log(
    table(
      ['build', ...Array.from({ length: rounds }, (_x, i) => `round ${i + 1} µs/req`), 'median'],
      Object.entries(us).map(([n, xs]) => [n, ...xs.map(f1), f1(median(xs))]),
    ),
  );
  log(`new / before: ${(median(us.new!) / median(us.before!)).toFixed(3)}`);
}

runMain('health-bench', async () => {
  const { values } = parseArgs({ options: { 'seconds-scale': { type: 'string', default: '1' }, 'cpu-ab': { type: 'string' }, rounds: { type: 'string', default: '3' } } });
  const k = Number(values['seconds-scale']);
  const dir = mkdtempSync(join(tmpdir(), 'sgw-health-bench-'));
  if (values['cpu-ab'] !== undefined) return cpuAb(dir, values['cpu-ab'], Number(values.rounds));
  const rows: string[][] = [];
  for (const make of [gateway, haproxy, nginx]) {
    const r = await restReplicas(['ok', 'ok', 'ok', 'ok']);
    mkdirSync(join(dir, make.name), { recursive: true });
    const t = await make(join(dir, make.name), r);
    try {
      const healthy = await load(t.port, 100, 8 * k);
      r.modes[0] = 'fail';
      const sickStart = performance.now();
      const sick = await load(t.port, 150, 20 * k);
      r.modes[0] = 'hang';
      // A fresh start for the hanging case: the sick replica's ejection or mark-down must not carry over.
      await t.stop();
      const t2 = await make(join(dir, make.name), r);
      const hang = await load(t2.port, 100, 10 * k);
      await t2.stop();
      r.modes[0] = 'slow';
      const t3 = await make(join(dir, make.name), r);
      const slowStart = performance.now();
      const slow = await load(t3.port, 100, 10 * k);
      await t3.stop();
      const failed = (xs: Sent[]): string => `${xs.filter((x) => x.status !== 200).length} of ${xs.length}`;
      rows.push([
        t.name,
        failed(sick),
        `${f1(100 * share(r, 0, sickStart + 2000))}%`,
        failed(hang),
        `${f1(Math.max(...hang.map((x) => x.ms)))}`,
        `${f1(100 * share(r, 0, slowStart))}%`,
        `${(mean(slow) / mean(healthy)).toFixed(2)}x`,
      ]);
    } finally {
      await r.close();
    }
  }
  log(table(['proxy', 'sick: failed', 'sick: its share after 2 s', 'hanging: failed', 'hanging: slowest ms', 'slow: its share', 'slow: mean latency vs healthy'], rows));
});
