/**
 * The compiled gateway as a benchmark target: `node dist/gateway/main.js serve --workers 1` on
 * 127.0.0.1 pinned to a core (under this node or another binary, for a runtime A/B), every REST upstream of its table `--resolve`d to the backend (asked
 * from its own `routes --json`), its admin /metrics counters, and which build it is.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { ROOT, startServer, stopServer, waitFor, type Spawned } from './children.js';
import { freePort, httpStatus } from './http.js';

export const GATEWAY_MAIN = join(ROOT, 'dist', 'gateway', 'main.js');

/** What the benchmarks read of `routes --json`: each deployment's routes and the upstreams they dial. */
export interface RoutesJson {
  deployments: { name: string; state: string; routes: { kind: string; members: { upstream: string }[]; mirrors: { upstream: string }[] }[] }[];
}

/** Ask the gateway's own `routes --json` which REST upstreams the table dials, to --resolve them all. */
export function restUpstreams(manifests: string, main = GATEWAY_MAIN): { upstreams: string[]; routes: RoutesJson } {
  let text: string;
  try {
    text = execFileSync(process.execPath, [main, 'routes', '-f', manifests, '--json'], { cwd: ROOT, encoding: 'utf8', maxBuffer: 256 << 20 });
  } catch (err) {
    // Exit code 1 = some deployment rejected: still print the table.
    const e = err as { stdout?: string; status?: number };
    if (e.status !== 1 || !e.stdout) throw err;
    text = e.stdout;
  }
  const routes = JSON.parse(text) as RoutesJson;
  const ups = new Set<string>();
  for (const d of routes.deployments)
    for (const r of d.routes) {
      if (r.kind !== 'rest') continue;
      for (const m of r.members) ups.add(m.upstream);
      for (const m of r.mirrors) ups.add(m.upstream);
    }
  return { upstreams: [...ups], routes };
}

export interface Gateway {
  readonly server: Spawned;
  readonly port: number;
  readonly admin: number;
  /** SIGTERM, and its exit. */
  stop(): Promise<void>;
}

export interface GatewayLaunch {
  /** Log file (stdout and stderr, at warn and above). */
  readonly log: string;
  /** The core it is pinned to (none when absent). */
  readonly cpu?: number;
  /** Where its SeldonDeployments come from: a manifest file or folder, or (else) the kubeconfig of the Kubernetes API stand-in. */
  readonly manifests?: string;
  readonly kubeconfig?: string;
  /** The upstreams `--resolve`d to 127.0.0.1:`backendPort`. */
  readonly upstreams?: readonly string[];
  readonly backendPort?: number;
  /** node flags before main.js. */
  readonly nodeArgs?: readonly string[];
  readonly main?: string;
  /** The node binary that runs it (default: the one running the benchmark), e.g. /opt/node24/bin/node for a runtime A/B. */
  readonly node?: string;
  /** Worker processes: 1 unless told; 'default' leaves --workers out, as users run it (one per core). */
  readonly workers?: number | 'default';
  /** Its public port (default: a free one); the admin port is a free one, or the next one when the public port is given. */
  readonly port?: number;
  /** Extra gateway flags after the ones every benchmark gateway gets (e.g. --access-log off, --otlp-endpoint). */
  readonly args?: readonly string[];
  /** Its environment beyond this process's (settings as a pod has them). */
  readonly env?: Record<string, string>;
  /** How long it may take to be ready (default 60 s; a table of 10,000 deployments takes longer on a busy host). */
  readonly readyTimeoutMs?: number;
}

/** Start a gateway and wait (at most `readyTimeoutMs`) until its admin /readyz answers 200. */
export async function startGateway(name: string, g: GatewayLaunch): Promise<Gateway> {
  const port = g.port ?? (await freePort());
  const admin = g.port !== undefined ? g.port + 1 : await freePort();
  const source = g.manifests !== undefined ? ['--manifests', g.manifests] : ['--kubernetes', '--kubeconfig', g.kubeconfig!];
  const args = [...(g.nodeArgs ?? []), g.main ?? GATEWAY_MAIN, 'serve', ...source, '--port', String(port), '--admin-port', String(admin), '--host', '127.0.0.1'];
  args.push(...(g.workers === 'default' ? [] : ['--workers', String(g.workers ?? 1)]), '--log-level', 'warn', '--grace-period', '1s');
  for (const u of g.upstreams ?? []) args.push('--resolve', `${u}=127.0.0.1:${g.backendPort}`);
  if (g.args) args.push(...g.args);
  const server = startServer(name, g.log, g.cpu, [g.node ?? process.execPath, ...args], g.env);
  await waitFor(name, server, async () => (await httpStatus(`http://127.0.0.1:${admin}/readyz`)) === 200, g.readyTimeoutMs ?? 60_000);
  return { server, port, admin, stop: () => stopServer(server) };
}

export async function metricsText(admin: number): Promise<string> {
  try {
    const res = await fetch(`http://127.0.0.1:${admin}/metrics`, { signal: AbortSignal.timeout(5000) });
    return await res.text();
  } catch {
    return '';
  }
}

/** Node flags given as one string (`--node-args`, BENCH_GATEWAY_NODE_ARGS): split on whitespace, none when absent. */
export function nodeArgsOf(text: string | undefined): string[] {
  return (text ?? '').split(/\s+/).filter((a) => a !== '');
}

/** Sum of a metric's samples (with labels or without) whose labels include every `want` pair. */
export function counter(text: string, metric: string, want: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(metric) || (line[metric.length] !== '{' && line[metric.length] !== ' ')) continue;
    const labels = line.slice(metric.length, line.lastIndexOf(' '));
    if (Object.entries(want).every(([k, v]) => labels.includes(`${k}="${v}"`))) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

/** The commit of the checkout at `root` (short), marked when its gateway/, routing/ or source/ differ from it; '' when not a checkout. */
export function sourcesAt(root: string): string {
  try {
    const git = (...args: string[]): string => execFileSync('git', ['-C', root, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    return `${git('log', '-1', '--format=%h')}${git('status', '--porcelain', '--untracked-files=no', '--', 'gateway', 'routing', 'source') ? ' + uncommitted changes' : ''}`;
  } catch {
    return '';
  }
}

/** Which gateway was measured: the newest file time under its dist folder, and the git HEAD of the checkout. */
export function buildInfo(main: string): string {
  const dir = dirname(main);
  let newest = 0;
  for (const sub of [dir, join(dir, '..', 'routing'), join(dir, '..', 'source')]) {
    try {
      for (const f of readdirSync(sub)) if (f.endsWith('.js')) newest = Math.max(newest, statSync(join(sub, f)).mtimeMs);
    } catch {
      /* absent */
    }
  }
  const head = sourcesAt(join(dir, '..', '..'));
  return `${main} (built ${newest ? new Date(newest).toISOString() : '?'}${head ? `, sources at ${head}` : ''})`;
}
