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
 * Neither haproxy nor nginx hedges: a request waits for the replica it went to.
 */
import { join } from 'node:path';
import { stopServer, waitFor } from './children.js';
import { counter, metricsText, startGateway } from './gateway.js';
import { startHaproxy } from './haproxy.js';
import { httpStatus } from './http.js';
import type { Side } from './measure.js';
import { startNginx, writeConf } from './nginx.js';
import { endpointSlice, seldonDeployment, startFakeKubeApi, writeKubeconfig } from '../../test/fixtures/fake-kube-api.js';
import { REPLICA_IPS } from '../../test/fixtures/loopback-replicas.js';

/** The predictions path of `iris` on every proxy. */
export const IRIS_PATH = '/seldon/models/iris/api/v1.0/predictions';

/** The gateway target's admin port (its /metrics) at the default public port: always the one after it. */
export const GATEWAY_ADMIN_PORT = 18_401;

export interface Target extends Side {
  readonly name: string;
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
  const g = await startGateway('gateway', {
    log: join(dir, 'gateway.log'),
    kubeconfig: writeKubeconfig(dir, api),
    port: o.port ?? 18_400,
    workers: o.workers ?? 2,
    // Node's own flags (a profile, say): the workers start with the primary's (gateway/process/cluster.ts).
    nodeArgs: o.nodeArgs ?? [],
    ...(o.main !== undefined ? { main: o.main } : {}),
    args: ['--access-log', 'off'],
  });
  await waitFor('gateway', g.server, async () => counter(await metricsText(g.admin), 'seldon_gateway_upstream_ready_endpoints') >= REPLICA_IPS.length);
  return { name: o.name ?? 'gateway', port: g.port, pid: g.server.pid, stop: async () => (await g.stop(), await api.close()) };
}

/** haproxy over the replicas at `replicaPort`. */
export async function haproxyTarget(dir: string, replicaPort: number): Promise<Target> {
  const port = 18_410;
  const s = await startHaproxy(dir, port, undefined, {
    defaults: '  timeout client 30s\n  timeout http-keep-alive 60s\n  timeout server 1s',
    frontend: '  default_backend models',
    backends: `backend models\n  balance leastconn\n  option httpchk GET /health/ping\n${REPLICA_IPS.map((ip, i) => `  server r${i} ${ip}:${replicaPort} check inter 1s observe layer7 error-limit 5 on-error mark-down`).join('\n')}`,
  });
  return { name: 'haproxy', port, pid: s.pid, stop: () => stopServer(s) };
}

/** nginx (two workers) over the replicas at `replicaPort`. */
export async function nginxTarget(dir: string, replicaPort: number): Promise<Target> {
  const port = 18_420;
  const conf = writeConf(
    join(dir, 'nginx'),
    port,
    `    location = /__ready { return 200; }
    location / {
      proxy_pass http://models;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_read_timeout 1s;
      proxy_next_upstream error timeout http_500 non_idempotent;
    }`,
    { workers: 2, upstream: `  upstream models {\n${REPLICA_IPS.map((ip) => `    server ${ip}:${replicaPort} max_fails=5 fail_timeout=30s;`).join('\n')}\n    keepalive 64;\n  }` },
  );
  const s = await startNginx('nginx', undefined, conf, async () => (await httpStatus(`http://127.0.0.1:${port}/__ready`)) === 200);
  return { name: 'nginx', port, pid: s.pid, stop: () => stopServer(s) };
}
