/** Admin: the admin port, its token and its page. */
import { env, SERVE, type OptionSpec } from './option.js';
import type { Reader } from './read.js';

export const ADMIN_OPTIONS: readonly OptionSpec[] = [
  {
    flag: 'admin-port',
    section: 'admin',
    value: 'port',
    env: env('admin-port'),
    kind: 'int',
    default: '8877',
    commands: SERVE,
    help: 'Admin port: /healthz, /readyz, /routes, /metrics, /memory. Never served on the public port.',
  },
  {
    flag: 'admin-host',
    section: 'admin',
    value: 'address',
    env: env('admin-host'),
    kind: 'string',
    commands: SERVE,
    help: "Address the admin port binds to. Default 127.0.0.1, or 0.0.0.0 inside a cluster, where the kubelet's probes and Prometheus reach it at the pod's address (guard it with --admin-token-file and a NetworkPolicy).",
  },
  {
    flag: 'admin-token-file',
    section: 'admin',
    value: 'path',
    env: env('admin-token-file'),
    kind: 'string',
    commands: SERVE,
    help: 'File holding a bearer token the admin port then requires (Authorization: Bearer <token>, or a browser login) on everything but /healthz and /readyz; re-read when it changes, as a mounted Secret does. Unset: no token.',
  },
  {
    flag: 'admin-page-sample',
    section: 'admin',
    env: env('admin-page-sample'),
    kind: 'duration',
    default: '10s',
    commands: SERVE,
    help: 'How often the admin page samples the traffic counters: its window is 30 samples (5 minutes at 10s), its charts one point per sample.',
  },
];

/** The admin listener's part of ListenConfig. */
export interface AdminListenConfig {
  readonly adminPort: number;
  readonly adminHost: string;
  /** --admin-token-file: the file's path (the admin server reads it, and again when it changes). */
  readonly adminTokenFile: string | undefined;
  /** --admin-page-sample: the admin page's traffic sample interval (its window is 30 of them). */
  readonly adminPageSampleMs: number;
}

export function inCluster(environment: NodeJS.ProcessEnv = process.env): boolean {
  return Boolean(environment.KUBERNETES_SERVICE_HOST);
}

export function buildAdmin(read: Reader): AdminListenConfig {
  return {
    adminPort: read.port('admin-port'),
    // No row default: it depends on where the gateway runs (the help says so).
    adminHost: read.optStr('admin-host') ?? (inCluster(read.environment) ? '0.0.0.0' : '127.0.0.1'),
    adminTokenFile: read.optStr('admin-token-file'),
    adminPageSampleMs: read.duration('admin-page-sample'),
  };
}
