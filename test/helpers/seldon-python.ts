/**
 * Python processes running the official Seldon Python package (vendored unmodified in
 * test/fixtures/seldon-python/, see its README): Seldon's own wrapper serving a model, and the
 * official `SeldonClient`. Always Debian's /usr/bin/python3 with Debian's packages (installed by
 * scripts/test-deps.sh), never whatever python3 is first on PATH. Each process speaks JSON lines on
 * stdout; readiness is its first line, never a delay.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

export const PYTHON = '/usr/bin/python3';
const DIR = fileURLToPath(new URL('../fixtures/seldon-python/', import.meta.url));

export interface PythonProcess {
  /** Lines printed after the first, parsed, as they arrive. */
  readonly lines: Record<string, unknown>[];
  /** The next line not yet taken by `next()` (the first is taken by the start). */
  next(): Promise<Record<string, unknown>>;
  send(msg: unknown): void;
  stop(): Promise<void>;
}

/** Starts `script` (in test/fixtures/seldon-python/) and resolves with its first line once it is printed. */
export async function startPython(script: string, args: readonly string[] = []): Promise<{ proc: PythonProcess; first: Record<string, unknown> }> {
  const child: ChildProcessWithoutNullStreams = spawn(PYTHON, ['-u', script, ...args], {
    cwd: DIR,
    // Its own process group: the wrapper's metrics start a multiprocessing Manager, a child of its own, which a
    // kill of the script alone would leave behind.
    detached: true,
    // The vendored seldon_core first, then the stand-in for the module Debian lacks (stubs/README.md).
    env: { PATH: process.env.PATH ?? '', PYTHONPATH: `${DIR}:${DIR}stubs`, PYTHONDONTWRITEBYTECODE: '1' },
  });
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => (stderr = (stderr + c.toString()).slice(-8192)));
  const lines: Record<string, unknown>[] = [];
  let taken = 0;
  const waiters: (() => void)[] = [];
  let exited = false;
  createInterface({ input: child.stdout }).on('line', (line) => {
    lines.push(JSON.parse(line) as Record<string, unknown>);
    for (const w of waiters.splice(0)) w();
  });
  const exit = new Promise<void>((resolve) =>
    child.once('exit', () => {
      exited = true;
      for (const w of waiters.splice(0)) w();
      resolve();
    }),
  );
  const next = async (): Promise<Record<string, unknown>> => {
    while (lines.length <= taken) {
      if (exited) throw new Error(`${script} ended (${child.exitCode ?? child.signalCode}): ${stderr}`);
      await new Promise<void>((resolve) => waiters.push(resolve));
    }
    return lines[taken++]!;
  };
  const first = await next();
  return {
    first,
    proc: {
      lines,
      next,
      send: (msg) => child.stdin.write(`${JSON.stringify(msg)}\n`),
      /** Closes its stdin: the script ends by itself (the wrapper shuts its servers and its Manager down); the group is killed only if it has not after 20 s. */
      async stop() {
        child.stdin.end();
        let timer: NodeJS.Timeout | undefined;
        const late = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), 20_000)));
        if (await Promise.race([exit.then(() => false), late])) process.kill(-child.pid!, 'SIGKILL');
        clearTimeout(timer);
        await exit;
      },
    },
  };
}

/** Seldon's wrapper serving doubling_model.py with these class names: its REST and gRPC ports, and each call its model received. */
export async function startSeldonWrapper(classNames: readonly string[]): Promise<{ rest: number; grpc: number; proc: PythonProcess }> {
  const { proc, first } = await startPython('serve_wrapper.py', classNames);
  return { rest: first['rest'] as number, grpc: first['grpc'] as number, proc };
}

/** The official SeldonClient, one call per `call()`, answered in order. */
export async function startSeldonClient(): Promise<{ call(req: Record<string, unknown>): Promise<Record<string, unknown>>; stop(): Promise<void> }> {
  const { proc } = await startPython('client.py');
  // One call at a time: the answers come in order, each taken by its own call.
  let queue: Promise<unknown> = Promise.resolve();
  return {
    call(req) {
      const answer = queue.then(() => {
        proc.send(req);
        return proc.next();
      });
      queue = answer.catch(() => undefined);
      return answer;
    },
    stop: () => proc.stop(),
  };
}
