/**
 * A real redis-server for tests: started on a free port on 127.0.0.1 without persistence
 * (`--save '' --appendonly no`), killed after. `kill()` and `restart()` (same port) let a test
 * take Redis away mid-run. With `persist: true`, `kill()` saves a snapshot first (SAVE) and
 * `restart()` loads it: Redis refuses the gateway for a while and comes back with its data.
 * With `down: true` the port is chosen but nothing listens on it until `restart()`: a gateway
 * can start while Redis is away.
 * Needs `redis-server` on PATH (.ci/run installs it).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './net.js';

export interface TestRedis {
  readonly port: number;
  readonly url: string;
  /** SIGKILL, like a crash (after a SAVE with `persist`); resolves once the process is gone. */
  kill(): Promise<void>;
  /** Start (again) on its port (empty unless `persist`: then with the data saved by kill()). */
  restart(): Promise<void>;
  /** One command over a fresh connection (inline protocol), its raw reply. */
  command(...args: string[]): Promise<string>;
  stop(): Promise<void>;
}

function send(port: number, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    let out = '';
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error('redis did not answer'));
    }, 1000);
    s.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    s.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.endsWith('\r\n')) {
        clearTimeout(timer);
        s.end();
        resolve(out);
      }
    });
    s.write(`*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`);
  });
}

export async function startRedis(options: { persist?: boolean; down?: boolean } = {}): Promise<TestRedis> {
  const port = await freePort();
  const dir = options.persist ? mkdtempSync(join(tmpdir(), 'sgw-redis-')) : undefined;
  let proc: ChildProcess | undefined;
  const start = async (): Promise<void> => {
    const storage = dir ? ['--dir', dir, '--dbfilename', 'dump.rdb'] : [];
    proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', ...storage], { stdio: 'ignore' });
    proc.on('error', () => undefined);
    const end = Date.now() + 5000;
    for (;;) {
      try {
        if ((await send(port, ['PING'])).startsWith('+PONG')) return;
      } catch {
        // not up yet
      }
      if (Date.now() > end) throw new Error(`redis-server did not start on port ${port} (is it installed?)`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  const kill = async (): Promise<void> => {
    const p = proc;
    proc = undefined;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    if (dir) await send(port, ['SAVE']);
    const gone = once(p, 'exit');
    p.kill('SIGKILL');
    await gone;
  };
  if (!options.down) await start();
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    kill,
    restart: start,
    command: (...args) => send(port, args),
    stop: async () => {
      const p = proc;
      proc = undefined;
      if (p && p.exitCode === null && p.signalCode === null) {
        const gone = once(p, 'exit');
        p.kill('SIGKILL');
        await gone;
      }
      if (dir) rmSync(dir, { recursive: true, force: true });
    },
  };
}
