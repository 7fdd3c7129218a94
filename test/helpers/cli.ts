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
 * limit of the gateway's processes (`bash -c 'ulimit -n N; exec node …'`).
 */
export async function startCli(args: string[], options: { ulimit?: number; readyWithinMs?: number } = {}): Promise<CliGateway> {
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const admin = await freePort();
    // No access log unless the test asks for it (any --access-log* flag): nothing reads it otherwise.
    const accessLog = args.some((a) => a.startsWith('--access-log')) ? [] : ['--access-log', 'off'];
    const argv = [join(root, 'dist/gateway/main.js'), 'serve', '--port', String(port), '--admin-port', String(admin), '--host', '127.0.0.1', ...accessLog, ...args];
    const child =
      options.ulimit === undefined
        ? spawn(process.execPath, argv, { stdio: ['ignore', 'pipe', 'pipe'] })
        : spawn('bash', ['-c', `ulimit -n ${options.ulimit} && exec "$0" "$@"`, process.execPath, ...argv], { stdio: ['ignore', 'pipe', 'pipe'] });
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
