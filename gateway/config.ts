/**
 * Settings of `seldon-gateway serve` and `seldon-gateway routes`: one table of options, from which
 * the parser, the `--help` text and the README's configuration reference all come. Every flag has
 * an environment form (`SELDON_GATEWAY_<FLAG>`), except the Ambassador names users already set
 * (`AMBASSADOR_ID`, `AMBASSADOR_SINGLE_NAMESPACE`, `AMBASSADOR_NAMESPACE`). Flags win over env.
 */
import { availableParallelism } from 'node:os';
import { parseArgs } from 'node:util';
import type { CompileOptions } from '../routing/types.js';

type Kind = 'string' | 'boolean' | 'int' | 'bytes' | 'duration' | 'list';

interface OptionSpec {
  readonly flag: string;
  readonly env: string;
  readonly kind: Kind;
  readonly help: string;
  readonly default?: string;
  readonly short?: string;
  readonly commands: readonly ('serve' | 'routes')[];
}

const BOTH = ['serve', 'routes'] as const;
const SERVE = ['serve'] as const;
const env = (flag: string): string => `SELDON_GATEWAY_${flag.toUpperCase().replace(/-/g, '_')}`;

export const OPTIONS: readonly OptionSpec[] = [
  { flag: 'manifests', short: 'f', env: env('manifests'), kind: 'string', commands: BOTH, help: 'File or directory of SeldonDeployment manifests (YAML/JSON) to serve; watched for changes.' },
  { flag: 'port', env: env('port'), kind: 'int', default: '8080', commands: SERVE, help: 'Public port: REST (HTTP/1.1) and gRPC (h2c) on one listener, as Ambassador had.' },
  { flag: 'host', env: env('host'), kind: 'string', default: '0.0.0.0', commands: SERVE, help: 'Address the public port binds to.' },
  { flag: 'grpc-port', env: env('grpc-port'), kind: 'int', commands: SERVE, help: 'Optional extra port that serves h2c gRPC only.' },
  { flag: 'admin-port', env: env('admin-port'), kind: 'int', default: '8877', commands: SERVE, help: 'Admin port: /healthz, /readyz, /routes, /metrics. Never served on the public port.' },
  { flag: 'admin-host', env: env('admin-host'), kind: 'string', commands: SERVE, help: 'Address the admin port binds to. Default 127.0.0.1, or 0.0.0.0 inside a cluster (so probes reach it).' },
  { flag: 'ambassador-id', env: 'AMBASSADOR_ID', kind: 'string', default: 'default', commands: BOTH, help: 'Serve only SeldonDeployments whose seldon.io/ambassador-id is this id (untagged ones are "default").' },
  { flag: 'single-namespace', env: 'AMBASSADOR_SINGLE_NAMESPACE', kind: 'boolean', commands: BOTH, help: 'Serve one namespace (--namespace) and also the un-namespaced /seldon/<name>/ prefixes.' },
  { flag: 'namespace', env: 'AMBASSADOR_NAMESPACE', kind: 'string', default: 'default', commands: BOTH, help: 'The namespace served in single-namespace mode (in a cluster: the gateway\'s own).' },
  { flag: 'resolve', env: env('resolve'), kind: 'list', commands: SERVE, help: 'Dial <svc>.<ns>:<port> at <host>:<port> instead, like curl --resolve. Repeatable; env: comma-separated.' },
  { flag: 'workers', env: env('workers'), kind: 'int', commands: SERVE, help: 'Worker processes serving traffic. Default: one per core. 1 runs everything in one process.' },
  { flag: 'grace-period', env: env('grace-period'), kind: 'duration', default: '10s', commands: SERVE, help: 'On SIGTERM/SIGINT, how long in-flight requests may take to finish before exit.' },
  { flag: 'default-timeout', env: env('default-timeout'), kind: 'duration', default: '3000ms', commands: BOTH, help: 'Request timeout of routes without seldon.io/rest-timeout / grpc-timeout.' },
  { flag: 'default-idle-timeout', env: env('default-idle-timeout'), kind: 'duration', default: '300000ms', commands: BOTH, help: 'Stream idle timeout of routes that set none.' },
  { flag: 'connect-timeout', env: env('connect-timeout'), kind: 'duration', default: '3000ms', commands: SERVE, help: 'Upstream connect timeout, per attempt (TCP plus TLS).' },
  { flag: 'default-http-port', env: env('default-http-port'), kind: 'int', default: '8000', commands: BOTH, help: 'Executor REST port when the SeldonDeployment status is silent (the operator\'s ENGINE_SERVER_PORT).' },
  { flag: 'default-grpc-port', env: env('default-grpc-port'), kind: 'int', default: '5001', commands: BOTH, help: 'Executor gRPC port when the status is silent (ENGINE_SERVER_GRPC_PORT).' },
  { flag: 'legacy-service-naming', env: env('legacy-service-naming'), kind: 'boolean', commands: BOTH, help: 'Use Seldon <= 0.3 Service names (<spec.name>-<sdep>, one Service for all predictors).' },
  { flag: 'no-custom-config', env: env('no-custom-config'), kind: 'boolean', commands: BOTH, help: 'Ignore seldon.io/ambassador-config (as Seldon\'s resource mode did).' },
  { flag: 'upstream-tls-verify', env: env('upstream-tls-verify'), kind: 'boolean', commands: SERVE, help: 'Verify upstream TLS certificates (predictors with ssl). Off by default: Seldon uses self-signed ones.' },
  { flag: 'upstream-ca', env: env('upstream-ca'), kind: 'string', commands: SERVE, help: 'PEM file of CA certificates to verify upstream TLS against (implies --upstream-tls-verify).' },
  { flag: 'shadow-max-in-flight', env: env('shadow-max-in-flight'), kind: 'int', default: '64', commands: SERVE, help: 'Mirrored requests in flight per shadow upstream; more are dropped and counted.' },
  { flag: 'shadow-max-body', env: env('shadow-max-body'), kind: 'bytes', default: '4MiB', commands: SERVE, help: 'Largest request body that is mirrored; larger ones are not mirrored (counted).' },
  { flag: 'retry-buffer', env: env('retry-buffer'), kind: 'bytes', default: '1MiB', commands: SERVE, help: 'Largest request body kept for retries; larger requests are not retried.' },
  { flag: 'balance', env: env('balance'), kind: 'string', default: 'random', commands: SERVE, help: 'How a weighted split picks: random (one uniform draw per request) or round-robin (smooth weighted).' },
  { flag: 'random-seed', env: env('random-seed'), kind: 'int', commands: SERVE, help: 'Seed the weighted pick for reproducible splits (tests, demos).' },
  { flag: 'log-level', env: env('log-level'), kind: 'string', default: 'info', commands: SERVE, help: 'fatal, error, warn, info, debug or trace.' },
  { flag: 'json', env: env('json'), kind: 'boolean', commands: ['routes'], help: 'Print the table as JSON (the shape of the admin /routes).' },
  { flag: 'help', short: 'h', env: '', kind: 'boolean', commands: BOTH, help: 'Show this help.' },
];

export interface GatewayConfig {
  readonly manifests: string | undefined;
  readonly port: number;
  readonly host: string;
  readonly grpcPort: number | undefined;
  readonly adminPort: number;
  readonly adminHost: string;
  readonly resolve: ReadonlyMap<string, { host: string; port: number }>;
  readonly workers: number;
  readonly gracePeriodMs: number;
  readonly connectTimeoutMs: number;
  readonly upstreamTlsVerify: boolean;
  readonly upstreamCa: string | undefined;
  readonly shadowMaxInFlight: number;
  readonly shadowMaxBodyBytes: number;
  readonly retryBufferBytes: number;
  readonly balance: 'random' | 'round-robin';
  readonly randomSeed: number | undefined;
  readonly logLevel: string;
  readonly json: boolean;
  readonly compile: CompileOptions;
}

export class UsageError extends Error {}

const UNITS: Record<string, number> = { b: 1, kb: 1e3, kib: 1024, mb: 1e6, mib: 1024 ** 2, gb: 1e9, gib: 1024 ** 3 };

function parseBytes(flag: string, v: string): number {
  const m = /^([0-9]+)\s*([a-z]*)$/i.exec(v.trim());
  const unit = m ? UNITS[(m[2] || 'b').toLowerCase()] : undefined;
  if (!m || unit === undefined) throw new UsageError(`--${flag}: "${v}" is not a size like 1048576, 512KiB or 4MiB`);
  return Number(m[1]) * unit;
}

/** `10s`, `500ms`, `2m`; a bare number is milliseconds. */
export function parseDuration(flag: string, v: string): number {
  const m = /^([0-9]+(?:\.[0-9]+)?)\s*(ms|s|m)?$/.exec(v.trim());
  if (!m) throw new UsageError(`--${flag}: "${v}" is not a duration like 500ms, 10s or 2m`);
  const n = Number(m[1]);
  return Math.round(m[2] === 's' ? n * 1000 : m[2] === 'm' ? n * 60_000 : n);
}

function parseInt32(flag: string, v: string): number {
  if (!/^[0-9]+$/.test(v.trim())) throw new UsageError(`--${flag}: "${v}" is not a whole number`);
  return Number(v.trim());
}

function parseBool(flag: string, v: string): boolean {
  const s = v.trim().toLowerCase();
  if (['1', 'true', 'yes', 'on'].includes(s)) return true;
  if (['0', 'false', 'no', 'off', ''].includes(s)) return false;
  throw new UsageError(`${flag}: "${v}" is not true or false`);
}

/** `<svc>.<ns>:<port>=<host>:<port>` */
export function parseResolve(entry: string): [string, { host: string; port: number }] {
  const m = /^([^=\s]+):([0-9]+)=(\[[^\]]+\]|[^:=\s]+):([0-9]+)$/.exec(entry.trim());
  if (!m) throw new UsageError(`--resolve: "${entry}" is not <svc>.<ns>:<port>=<host>:<port>`);
  return [`${m[1]}:${m[2]}`, { host: m[3]!.replace(/^\[|\]$/g, ''), port: Number(m[4]) }];
}

export function inCluster(environment: NodeJS.ProcessEnv = process.env): boolean {
  return Boolean(environment.KUBERNETES_SERVICE_HOST);
}

/** Parse argv (after the sub-command) and the environment. Throws UsageError on bad input. */
export function parseConfig(command: 'serve' | 'routes', argv: readonly string[], environment: NodeJS.ProcessEnv = process.env): GatewayConfig & { help: boolean } {
  const specs = OPTIONS.filter((o) => o.commands.includes(command));
  const parseOptions: Record<string, { type: 'string' | 'boolean'; multiple?: boolean; short?: string }> = {};
  for (const o of specs) {
    parseOptions[o.flag] = { type: o.kind === 'boolean' ? 'boolean' : 'string', ...(o.kind === 'list' ? { multiple: true } : {}), ...(o.short ? { short: o.short } : {}) };
  }
  let values: Record<string, string | boolean | (string | boolean)[] | undefined>;
  try {
    ({ values } = parseArgs({ args: [...argv], options: parseOptions, allowPositionals: false, strict: true }));
  } catch (e) {
    throw new UsageError(e instanceof Error ? e.message : String(e));
  }
  const raw = (o: OptionSpec): string | boolean | string[] | undefined => {
    const v = values[o.flag];
    if (v !== undefined) return v as string | boolean | string[];
    const e = o.env ? environment[o.env] : undefined;
    if (e !== undefined && e !== '') return o.kind === 'list' ? e.split(',').map((s) => s.trim()).filter(Boolean) : e;
    return o.default;
  };
  const get = (flag: string): string | boolean | string[] | undefined => raw(specs.find((o) => o.flag === flag)!);
  const str = (flag: string): string | undefined => {
    const v = specs.some((o) => o.flag === flag) ? get(flag) : undefined;
    return typeof v === 'string' ? v : undefined;
  };
  const bool = (flag: string): boolean => {
    if (!specs.some((o) => o.flag === flag)) return false;
    const v = get(flag);
    return typeof v === 'boolean' ? v : typeof v === 'string' ? parseBool(specs.find((o) => o.flag === flag)!.env || flag, v) : false;
  };
  const int = (flag: string): number | undefined => {
    const v = str(flag);
    return v === undefined ? undefined : parseInt32(flag, v);
  };
  const dur = (flag: string, dflt: number): number => {
    const v = str(flag);
    return v === undefined ? dflt : parseDuration(flag, v);
  };
  const bytes = (flag: string, dflt: number): number => {
    const v = str(flag);
    return v === undefined ? dflt : parseBytes(flag, v);
  };

  const resolve = new Map<string, { host: string; port: number }>();
  const resolveRaw = specs.some((o) => o.flag === 'resolve') ? get('resolve') : undefined;
  for (const entry of Array.isArray(resolveRaw) ? resolveRaw : []) {
    const [k, v] = parseResolve(entry);
    resolve.set(k, v);
  }
  const balance = str('balance') ?? 'random';
  if (balance !== 'random' && balance !== 'round-robin') throw new UsageError(`--balance: "${balance}" is not random or round-robin`);
  const port = int('port') ?? 8080;
  const adminPort = int('admin-port') ?? 8877;
  for (const [flag, p] of [['port', port], ['admin-port', adminPort], ['grpc-port', int('grpc-port')]] as const) {
    if (p !== undefined && p > 65535) throw new UsageError(`--${flag}: ${p} is not a port`);
  }
  const upstreamCa = str('upstream-ca');

  return {
    help: bool('help'),
    manifests: str('manifests'),
    port,
    host: str('host') ?? '0.0.0.0',
    grpcPort: int('grpc-port'),
    adminPort,
    adminHost: str('admin-host') ?? (inCluster(environment) ? '0.0.0.0' : '127.0.0.1'),
    resolve,
    workers: Math.max(1, int('workers') ?? availableParallelism()),
    gracePeriodMs: dur('grace-period', 10_000),
    connectTimeoutMs: dur('connect-timeout', 3000),
    upstreamTlsVerify: bool('upstream-tls-verify') || upstreamCa !== undefined,
    upstreamCa,
    shadowMaxInFlight: int('shadow-max-in-flight') ?? 64,
    shadowMaxBodyBytes: bytes('shadow-max-body', 4 * 1024 * 1024),
    retryBufferBytes: bytes('retry-buffer', 1024 * 1024),
    balance,
    randomSeed: int('random-seed'),
    logLevel: str('log-level') ?? 'info',
    json: bool('json'),
    compile: {
      ambassadorId: str('ambassador-id') || 'default',
      singleNamespace: bool('single-namespace'),
      namespace: str('namespace') || 'default',
      defaultTimeoutMs: dur('default-timeout', 3000),
      defaultIdleTimeoutMs: dur('default-idle-timeout', 300_000),
      defaultHttpPort: int('default-http-port') ?? 8000,
      defaultGrpcPort: int('default-grpc-port') ?? 5001,
      legacyServiceNaming: bool('legacy-service-naming'),
      honourCustomConfig: !bool('no-custom-config'),
    },
  };
}

/** `--help` text for a command, from the option table. */
export function helpText(command: 'serve' | 'routes'): string {
  const usage =
    command === 'serve'
      ? 'Usage: seldon-gateway [serve] [options]\n\nServe REST and gRPC predictions for the SeldonDeployments found by --manifests.'
      : 'Usage: seldon-gateway routes -f <file-or-dir> [options]\n\nPrint the routing table compiled from the manifests, then every rejected or degraded\nSeldonDeployment with its reason. Exit 0: all compiled; 1: some rejected; 2: usage error.';
  const lines = [usage, '', 'Options (flag / environment variable, default):'];
  for (const o of OPTIONS.filter((x) => x.commands.includes(command))) {
    const name = `${o.short ? `-${o.short}, ` : ''}--${o.flag}${o.kind === 'boolean' ? '' : ' <value>'}`;
    const meta = [o.env, o.default ? `default ${o.default}` : ''].filter(Boolean).join(', ');
    lines.push(`  ${name}`, `      ${o.help}${meta ? ` (${meta})` : ''}`);
  }
  return lines.join('\n') + '\n';
}
