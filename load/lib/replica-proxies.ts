/**
 * Four model replicas on 127.0.0.2–127.0.0.5 at one port (test/fixtures/loopback-replicas.ts),
 * behind each proxy the replica benchmarks compare (load/scenarios/health.ts, load/scenarios/hedging.ts),
 * one at a time, each as an operator would run it in front of a predictor's pods:
 *
 *   gateway  the CLI (2 workers unless told), endpoints from EndpointSlices served by the
 *            Kubernetes API stand-in (test/fixtures/fake-kube-api.ts), the deployment `iris` with
 *            the annotations given
 *   haproxy  `balance leastconn`, `observe layer7`, `error-limit 5`, `on-error mark-down`, active
 *            checks every second (GET /health/ping), `timeout server 1s`
 *   nginx    `max_fails=5 fail_timeout=30s`, `proxy_next_upstream error timeout http_500
 *            non_idempotent` (POST included, so a 500 is tried elsewhere), `proxy_read_timeout 1s`
 *
 * Neither haproxy nor nginx hedges: a request waits for the replica it went to. Not in `lib/`: it
 * borrows the Kubernetes API stand-in and the replicas' addresses from test/fixtures/.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startServer, waitFor, type Spawned } from './children.js';
import { GATEWAY_MAIN } from './gateway.js';
import { haproxyBinary } from './haproxy.js';
import { httpStatus } from './http.js';
import { nginxBinary } from './nginx.js';
import { endpointSlice, seldonDeployment, startFakeKubeApi, writeKubeconfig } from '../../test/fixtures/fake-kube-api.js';
import { REPLICA_IPS } from '../../test/fixtures/loopback-replicas.js';

/** The predictions path of `iris` on every proxy. */
export const IRIS_PATH = '/seldon/models/iris/api/v1.0/predictions';

/** The gateway target's admin port (its /metrics) at the default public port: always the one after it. */
export const GATEWAY_ADMIN_PORT = 18_401;

export interface Target {
  readonly name: string;
  readonly port: number;
  /** The proxy's process (its CPU is its tree's). */
  readonly pid: number;
  stop(): Promise<void>;
}

async function stop(s: Spawned, api?: { close(): Promise<void> }): Promise<void> {
  s.child.kill('SIGTERM');
  await s.exited;
  await api?.close();
}

/** The CLI gateway (`main`) over the replicas at `replicaPort`, once each worker routes to all four. */
export async function gatewayTarget(
  dir: string,
  replicaPort: number,
  o: {
    readonly name?: string;
    readonly annotations?: Record<string, string>;
    readonly main?: string;
    readonly workers?: number;
    readonly nodeArgs?: readonly string[];
    /** Its public port (18,400); the admin port is the next one. Two gateways measured side by side take two. */
    readonly port?: number;
  } = {},
): Promise<Target> {
  const api = await startFakeKubeApi();
  api.upsert(
    'endpointslices',
    endpointSlice(
      'iris-default',
      'models',
      'iris-default-abc',
      REPLICA_IPS.map((ip) => ({ ip })),
      [{ name: 'http', port: replicaPort }],
    ),
  );
  api.upsert('seldondeployments', seldonDeployment('iris', 'models', undefined, o.annotations));
  const port = o.port ?? 18_400;
  const admin = port + 1;
  const workers = o.workers ?? 2;
  const s = startServer('gateway', join(dir, 'gateway.log'), undefined, [
    process.execPath,
    // Node's own flags (a profile, say): the workers start with the primary's (gateway/process/cluster.ts).
    ...(o.nodeArgs ?? []),
    o.main ?? GATEWAY_MAIN,
    'serve',
    '--kubernetes',
    '--kubeconfig',
    writeKubeconfig(dir, api),
    '--workers',
    String(workers),
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
        .reduce((a, l) => a + Number(l.slice(l.lastIndexOf(' ') + 1)), 0) >= REPLICA_IPS.length
    );
  });
  return { name: o.name ?? 'gateway', port, pid: s.pid, stop: () => stop(s, api) };
}

/** haproxy over the replicas at `replicaPort`. */
export async function haproxyTarget(dir: string, replicaPort: number): Promise<Target> {
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
${REPLICA_IPS.map((ip, i) => `  server r${i} ${ip}:${replicaPort} check inter 1s observe layer7 error-limit 5 on-error mark-down`).join('\n')}
`,
  );
  const s = startServer('haproxy', join(dir, 'haproxy.log'), undefined, [binary, '-db', '-f', cfg]);
  await waitFor('haproxy', s, async () => (await httpStatus(`http://127.0.0.1:${port}/__ready`)) === 200);
  return { name: 'haproxy', port, pid: s.pid, stop: () => stop(s) };
}

/** nginx (two workers) over the replicas at `replicaPort`. */
export async function nginxTarget(dir: string, replicaPort: number): Promise<Target> {
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
${REPLICA_IPS.map((ip) => `    server ${ip}:${replicaPort} max_fails=5 fail_timeout=30s;`).join('\n')}
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
  return { name: 'nginx', port, pid: s.pid, stop: () => stop(s) };
}
