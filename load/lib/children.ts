/**
 * The benchmarks' child processes: servers pinned to a core with taskset (output to a log file, or
 * announcing their port on stdout), bounded runs of load generators, and one way out that stops
 * every child whatever the way out is (the end of `main`, an error, Ctrl-C, SIGTERM, SIGHUP).
 * Children run in the repository root, so bare imports of a transpiled script resolve there.
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { freePort as freePortOf } from './http.js';
import { descendants } from './proc.js';

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The repository root (the nearest folder above this one with package.json and node_modules). */
export const ROOT = ((): string => {
  const from = dirname(fileURLToPath(import.meta.url));
  let dir = from;
  for (;;) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'node_modules'))) return dir;
    const up = dirname(dir);
    if (up === dir) throw new Error(`no package.json with node_modules above ${from}`);
    dir = up;
  }
})();

const children = new Set<ChildProcess>();
const finalizers: (() => void)[] = [];
let cleaning: Promise<never> | null = null;
let signalled = false;

/** The path of an executable on PATH (or /usr/sbin, /sbin), or null. */
export function which(cmd: string): string | null {
  for (const dir of (process.env.PATH ?? '').split(':').concat(['/usr/sbin', '/sbin'])) {
    const p = join(dir, cmd);
    try {
      if (statSync(p).isFile()) return p;
    } catch {
      /* not here */
    }
  }
  return null;
}

export const hasTaskset = (): boolean => spawnSync('taskset', ['-V']).status === 0;

/** Pin this process, every thread, to one core (best effort); what it spawns unpinned inherits it. */
export function pinSelf(cpu: number): void {
  try {
    execFileSync('taskset', ['-a', '-p', '-c', String(cpu), String(process.pid)], { stdio: 'ignore' });
  } catch {
    /* best effort */
  }
}

/** `command` prefixed with `taskset -c <cpu>` when a core is given (taskset execs in place: same pid). */
export const pinned = (command: readonly string[], cpu: number | undefined): string[] => (cpu === undefined ? [...command] : ['taskset', '-c', String(cpu), ...command]);

export function killTree(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  const pids = signal === 'SIGKILL' ? [...descendants(child.pid).reverse(), child.pid] : [child.pid];
  for (const pid of pids) {
    try {
      process.kill(pid, signal);
    } catch {
      /* already gone */
    }
  }
}

const running = (c: ChildProcess): boolean => c.exitCode === null && c.signalCode === null;

/** SIGTERM every live child (nginx masters take their workers down, node servers drain), SIGKILL what is left after 3 s. */
export async function stopAll(): Promise<void> {
  const live = [...children].filter(running);
  const orphans = live.flatMap((c) => (c.pid ? descendants(c.pid) : []));
  for (const c of live) killTree(c, 'SIGTERM');
  const deadline = Date.now() + 3000;
  while (Date.now() < deadline && live.some(running)) await sleep(50);
  for (const c of live) killTree(c, 'SIGKILL');
  for (const pid of orphans) {
    try {
      process.kill(pid, 0);
      process.kill(pid, 'SIGKILL');
    } catch {
      /* exited with its parent, as it should */
    }
  }
}

/** Run `fn` on the way out, after the children are stopped (e.g. remove a temporary directory). */
export function atCleanup(fn: () => void): void {
  finalizers.push(fn);
}

/** Stop every child, run the finalizers, exit: once, whoever asks first sets the code. */
function cleanup(code: number): Promise<never> {
  cleaning ??= (async () => {
    await stopAll().catch(() => undefined);
    for (const fn of finalizers) fn();
    process.exit(code);
  })();
  return cleaning;
}

/**
 * Run a benchmark's `main` and exit: 0 when it resolves, 1 (with the error on stderr) when it
 * throws, 130 on SIGINT/SIGTERM/SIGHUP; every child is stopped first.
 */
export function runMain(name: string, main: () => Promise<void>): void {
  process.on('exit', () => {
    // Last resort (process.exit from elsewhere): synchronous SIGKILL of anything still running.
    for (const c of children) killTree(c, 'SIGKILL');
  });
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(sig, () => {
      signalled = true;
      process.stderr.write(`\n${sig}: stopping children\n`);
      void cleanup(130);
    });
  }
  main().then(
    () => cleanup(0),
    (err: unknown) => {
      // After Ctrl-C the load generator dies with the same signal: that failure is not news.
      if (!signalled) process.stderr.write(`${name}: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      void cleanup(1);
    },
  );
}

export interface Spawned {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly log: string;
  readonly exited: Promise<number | null>;
  /** Everything it wrote so far (stdout and stderr). */
  output(): string;
}

/** Start a long-lived server child pinned to `cpu` (not pinned when undefined), stdout and stderr to `log`. */
export function startServer(name: string, log: string, cpu: number | undefined, command: readonly string[], env: Record<string, string> = {}): Spawned {
  const fd = openSync(log, 'w');
  const [cmd, ...args] = pinned(command, cpu);
  const child = spawn(cmd!, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  children.add(child);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  child.once('error', (err) => process.stderr.write(`${name}: ${err.message}\n`));
  if (child.pid === undefined) throw new Error(`${name}: could not start ${command[0]}`);
  const output = (): string => {
    try {
      return readFileSync(log, 'utf8');
    } catch {
      return '';
    }
  };
  return { child, pid: child.pid, log, exited, output };
}

/** SIGTERM a server child and wait for its exit. */
export async function stopServer(s: Spawned): Promise<void> {
  s.child.kill('SIGTERM');
  await s.exited;
}

/**
 * One of lib/'s server scripts (node-backend, relay-proxy, tls-floor-proxy: configured by environment, `listening <port>`
 * once up) on a free port, pinned to `cpu`, under `node` with `nodeArgs`, once `ready(port)` says yes; its port.
 */
export async function startScript(
  script: string,
  dir: string,
  cpu: number | undefined,
  env: Record<string, string>,
  o: { name?: string; node?: string; nodeArgs?: readonly string[]; ready?: (port: number) => Promise<boolean> } = {},
): Promise<Spawned & { port: number }> {
  const name = o.name ?? script;
  const port = await freePortOf();
  const s = startServer(name, join(dir, `${name}.log`), cpu, [o.node ?? process.execPath, ...(o.nodeArgs ?? []), ...nodeScript(join(ROOT, 'load', 'lib'), script)], {
    BENCH_PORT: String(port),
    ...env,
  });
  await waitFor(name, s, o.ready ? () => o.ready!(port) : async () => s.output().includes('listening'));
  return { ...s, port };
}

/** Poll `probe` every 100 ms until it says yes; throw (with the server's output) if it exits or times out. */
export async function waitFor(what: string, server: Spawned, probe: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!running(server.child)) throw new Error(`${what} exited early:\n${server.output().slice(-3000)}`);
    if (await probe()) return;
    await sleep(100);
  }
  throw new Error(`${what} not ready after ${timeoutMs} ms:\n${server.output().slice(-3000)}`);
}

export interface Announced {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly port: number;
  /** Close its stdin (children that watch it exit), SIGTERM after 3 s; waits for the exit at most 5 s. */
  stop(): Promise<void>;
}

/**
 * Start a child (pinned when `cpu` is given; stdin and stdout piped, stderr inherited) and wait,
 * at most `timeoutMs`, for the stdout line from which `port` reads its port (e.g. "listening <port>").
 * Every stdout line also goes to `onLine`.
 */
export async function startAnnounced(
  label: string,
  command: readonly string[],
  opts: { cpu?: number | undefined; env?: Record<string, string>; port: (line: string) => number | undefined; onLine?: (line: string) => void; timeoutMs?: number },
): Promise<Announced> {
  const [cmd, ...args] = pinned(command, opts.cpu);
  const child = spawn(cmd!, args, { cwd: ROOT, env: { ...process.env, ...opts.env }, stdio: ['pipe', 'pipe', 'inherit'] });
  children.add(child);
  const timeoutMs = opts.timeoutMs ?? 60_000;
  const port = await new Promise<number>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`${label}: not ready within ${timeoutMs / 1000} s`)), timeoutMs);
    child.once('error', (err) => reject(new Error(`${label}: ${err.message}`)));
    child.once('exit', (code) => reject(new Error(`${label} exited (${code}) before it was ready`)));
    createInterface({ input: child.stdout! }).on('line', (line) => {
      opts.onLine?.(line);
      const p = opts.port(line);
      if (p !== undefined) {
        clearTimeout(t);
        resolve(p);
      }
    });
  });
  if (child.pid === undefined) throw new Error(`${label}: no pid`);
  return {
    child,
    pid: child.pid,
    port,
    async stop() {
      if (!running(child)) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.stdin!.end();
      setTimeout(() => killTree(child, 'SIGTERM'), 3000).unref();
      await Promise.race([exited, sleep(5000)]);
    },
  };
}

/** The command that runs a TypeScript file of this repository under vite-node (relative imports resolve). */
export const viteNode = (script: string): string[] => [process.execPath, join(ROOT, 'node_modules', 'vite-node', 'vite-node.mjs'), join(ROOT, script)];

/** Run a bounded command to completion (load generators), SIGKILLed after `timeoutMs`. */
export function runToEnd(command: readonly string[], timeoutMs: number, env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const [cmd, ...args] = command;
    const child = spawn(cmd!, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(child);
    let stdout = '';
    let stderr = '';
    child.stdout!.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr!.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    const timer = setTimeout(() => {
      stderr += `\n(killed after ${timeoutMs} ms)`;
      killTree(child, 'SIGKILL');
    }, timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      children.delete(child);
      reject(err);
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      children.delete(child);
      resolve({ code, stdout, stderr });
    });
  });
}

/**
 * node arguments that run `<dir>/<name>.ts` (transpiled in memory, so plain node runs it without
 * vite-node's overhead; bare imports resolve from ROOT, relative ones cannot) or a compiled `<name>.js`.
 */
export function nodeScript(dir: string, name: string): string[] {
  const tsPath = join(dir, `${name}.ts`);
  if (existsSync(tsPath)) {
    const out = ts.transpileModule(readFileSync(tsPath, 'utf8'), {
      compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022, verbatimModuleSyntax: false },
      fileName: tsPath,
    });
    return ['--input-type=module', '--eval', out.outputText];
  }
  const jsPath = join(dir, `${name}.js`);
  if (existsSync(jsPath)) return [jsPath];
  throw new Error(`missing helper ${name}.ts/.js in ${dir}`);
}
