/**
 * Run the quick start as `npm start` runs it (the built `dist/examples/quickstart.js`), on
 * OS-chosen ports, and wait for its banner: it is printed once the gateway is ready.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sleep } from './wait.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
/** The banner's last line. */
const BANNER_END = 'Ctrl-C stops everything';

export interface Quickstart {
  readonly child: ChildProcess;
  /** The public and admin ports the banner names. */
  readonly port: number;
  readonly admin: number;
  /** Everything written to stdout and stderr so far. */
  output(): string;
  stop(): Promise<void>;
}

export async function startQuickstart(): Promise<Quickstart> {
  const child = spawn(process.execPath, [join(root, 'dist/examples/quickstart.js'), '--port', '0', '--admin-port', '0'], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  let all = '';
  child.stdout?.on('data', (d: Buffer) => (all += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (all += d.toString()));
  const end = Date.now() + 20_000;
  while (!all.includes(BANNER_END) && Date.now() < end && child.exitCode === null) await sleep(50);
  const m = /ready on http:\/\/localhost:(\d+) .*admin page on http:\/\/localhost:(\d+)\//.exec(all);
  if (!all.includes(BANNER_END) || !m) {
    child.kill('SIGKILL');
    throw new Error(`the quick start did not print its banner:\n${all}`);
  }
  return {
    child,
    port: Number(m[1]),
    admin: Number(m[2]),
    output: () => all,
    async stop() {
      if (child.exitCode !== null) return;
      child.kill('SIGTERM');
      await Promise.race([once(child, 'exit'), sleep(5000)]);
      if (child.exitCode === null) child.kill('SIGKILL');
    },
  };
}
