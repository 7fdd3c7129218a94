/**
 * Run the real CLI (`node dist/gateway/main.js serve …`, built by the global setup) as users do,
 * on ports that are free, and wait until its /readyz says 200.
 *
 * Ports: picked by the kernel (listen on port 0, then close), never at random in a range that
 * overlaps the ephemeral ports other tests' connections use. If one is taken meanwhile the
 * gateway exits 1 (EADDRINUSE) and it is started again on other ports. A gateway that exits
 * while starting fails at once with its stderr, not after a readiness timeout.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import type { ProcessMemory } from '../../gateway/observe/process-memory.js';
import { freePort } from './net.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
/** How long a CLI gateway may take to be ready: a primary and its workers each load the whole gateway, slowly on a busy machine. */
const READY_WITHIN_MS = 45_000;

export interface CliGateway {
  readonly child: ChildProcess;
  readonly port: number;
  readonly admin: number;
  /** Everything the process wrote to stdout and stderr so far (JSON log lines). */
  output(): string;
  /** SIGTERM and wait for the exit code. */
  stop(): Promise<number | null>;
}

/** GET /readyz: status and body (0 when the admin port does not answer). */
export async function readyz(admin: number): Promise<{ status: number; body: string }> {
  try {
    const r = await request(`http://127.0.0.1:${admin}/readyz`, { headersTimeout: 2000, bodyTimeout: 2000 });
    return { status: r.statusCode, body: await r.body.text() };
  } catch {
    return { status: 0, body: '' };
  }
}

/**
 * `args` follow `serve --port P --admin-port A --host 127.0.0.1` (and `--access-log off`, unless
 * `args` name an `--access-log` option). `ulimit`: the descriptor
 * limit of the gateway's processes (`bash -c 'ulimit -n N; exec node …'`). `env`: added to this process's.
 */
export async function startCli(args: string[], options: { ulimit?: number; readyWithinMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<CliGateway> {
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const admin = await freePort();
    // No access log unless the test asks for it (any --access-log* flag): nothing reads it otherwise.
    const accessLog = args.some((a) => a.startsWith('--access-log')) ? [] : ['--access-log', 'off'];
    const argv = [join(root, 'dist/gateway/main.js'), 'serve', '--port', String(port), '--admin-port', String(admin), '--host', '127.0.0.1', ...accessLog, ...args];
    const child =
      options.ulimit === undefined
        ? spawn(process.execPath, argv, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...options.env } })
        : spawn('bash', ['-c', `ulimit -n ${options.ulimit} && exec "$0" "$@"`, process.execPath, ...argv], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...options.env } });
    let out = '';
    // Always read the pipes: a full pipe would block the gateway's logging.
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    let exited: number | null | undefined;
    child.once('exit', (code) => (exited = code));
    const deadline = Date.now() + (options.readyWithinMs ?? READY_WITHIN_MS);
    for (;;) {
      if (exited !== undefined) break;
      if ((await readyz(admin)).status === 200) {
        return {
          child,
          port,
          admin,
          output: () => out,
          async stop() {
            if (exited !== undefined) return exited;
            const done = once(child, 'exit') as Promise<[number | null]>;
            child.kill('SIGTERM');
            return (await done)[0];
          },
        };
      }
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(`gateway did not become ready within ${options.readyWithinMs ?? READY_WITHIN_MS} ms; output:\n${out}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    if (attempt < 3 && out.includes('EADDRINUSE')) continue;
    throw new Error(`gateway exited with ${exited} while starting; output:\n${out}`);
  }
}

/** Poll `probe` every 100 ms until `ok` holds (its value), or throw after `ms` with the last value. */
export async function poll<T>(what: string, probe: () => Promise<T>, ok: (v: T) => boolean, ms: number): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (ok(v)) return v;
    if (Date.now() > end) throw new Error(`${what}: still ${JSON.stringify(v)} after ${ms} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** How many times the cluster primary logged a worker exit (`worker exited: starting another`) in `output`. */
export function countWorkerExits(output: string): number {
  return (output.match(/worker exited/g) ?? []).length;
}

/** One process as the admin `/memory` describes it (gateway/observe/process-memory.ts). */
export type ProcessMemoryJson = ProcessMemory;

/** GET /memory on the admin port: every process, after two forced full collections in each when `gc`. */
export async function processMemory(admin: number, gc = false): Promise<ProcessMemoryJson[]> {
  const r = await request(`http://127.0.0.1:${admin}/memory${gc ? '?gc' : ''}`, { headersTimeout: 30_000, bodyTimeout: 30_000 });
  const body = (await r.body.json()) as { processes: ProcessMemoryJson[] };
  if (r.statusCode !== 200) throw new Error(`/memory answered ${r.statusCode}`);
  return body.processes;
}

/**
 * Client connections on known workers of a CLI gateway (`--workers n`), so that a test can send
 * through each worker on purpose (workers share the port with SO_REUSEPORT, and the kernel picks
 * one per connection). `open` makes one connection to the public port and leaves it established;
 * which worker accepted it is the one whose descriptor count (admin `/memory`) rose by exactly one
 * while no other worker's changed; a connection that cannot be told apart that way, or one more
 * than a worker needs, is closed and another opened. Returns `perWorker` connections per worker,
 * in the order of the workers' ids. Call it while the gateway is otherwise quiet.
 */
export async function connectionsOnWorkers<C>(admin: number, open: () => Promise<C>, close: (c: C) => Promise<void> | void, perWorker: number, withinMs = 30_000): Promise<C[][]> {
  const workerFds = async (): Promise<Map<number, number>> => new Map((await processMemory(admin)).filter((p) => p.role === 'worker').map((p) => [p.worker ?? p.pid, p.descriptors ?? -1] as const));
  const placed = new Map<number, C[]>();
  const end = Date.now() + withinMs;
  let before = await workerFds();
  for (const id of before.keys()) placed.set(id, []);
  while ([...placed.values()].some((cs) => cs.length < perWorker)) {
    if (Date.now() > end) throw new Error(`could not place ${perWorker} connection(s) on each worker within ${withinMs} ms: ${[...placed].map(([id, cs]) => `worker ${id}: ${cs.length}`).join(', ')}`);
    const c = await open();
    const after = await workerFds();
    const rose = [...after].filter(([id, n]) => n !== before.get(id));
    const [id, n] = rose[0] ?? [];
    const list = id === undefined ? undefined : placed.get(id);
    if (rose.length === 1 && n === before.get(id!)! + 1 && list !== undefined && list.length < perWorker) {
      list.push(c);
      before = after;
      continue;
    }
    await close(c);
    // Counted again once the gateway has seen the close (the counts are back), or at most 2 s on.
    const settled = Date.now() + 2000;
    let now = await workerFds();
    while (Date.now() < settled && [...before].some(([w, k]) => now.get(w) !== k)) {
      await new Promise((r) => setTimeout(r, 20));
      now = await workerFds();
    }
    before = now;
  }
  return [...placed.keys()].sort((a, b) => a - b).map((id) => placed.get(id)!);
}
