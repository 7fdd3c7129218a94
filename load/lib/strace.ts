/**
 * Syscalls of a process tree over a window, from `strace -c -f` attached to every process of it
 * (each thread followed): calls by syscall name. The tracer stops the traced threads at every
 * syscall, so times and the number of `epoll_wait` returns per request are not the untraced
 * ones; the reads, writes and timer calls a request makes are.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sleep } from './children.js';

export type SyscallCounts = Map<string, number>;

/** Parse `strace -c`'s summary table (calls per syscall). */
export function parseStraceSummary(text: string): SyscallCounts {
  const counts: SyscallCounts = new Map();
  for (const line of text.split('\n')) {
    // % time  seconds  usecs/call  calls  [errors]  syscall
    const m = /^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?([a-z_0-9]+)\s*$/.exec(line);
    if (m && m[2] !== 'total') counts.set(m[2]!, (counts.get(m[2]!) ?? 0) + Number(m[1]));
  }
  return counts;
}

/** Trace `pids` (every thread of each) while `run` runs; the counts of the window. */
export async function straceWhile<T>(pids: readonly number[], run: () => Promise<T>): Promise<{ result: T; counts: SyscallCounts }> {
  const dir = mkdtempSync(join(tmpdir(), 'strace-'));
  const out = join(dir, 'summary.txt');
  const args = ['-c', '-f', '-o', out, ...pids.flatMap((p) => ['-p', String(p)])];
  const child = spawn('strace', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    // Attached once it has said so for every process (it names each thread it attaches).
    const attached = new Promise<void>((resolve, reject) => {
      child.stderr!.setEncoding('utf8').on('data', (c: string) => {
        stderr += c;
        if (pids.every((p) => stderr.includes(`Process ${p} attached`))) resolve();
      });
      child.once('exit', () => reject(new Error(`strace exited: ${stderr.slice(-500)}`)));
    });
    await Promise.race([attached, sleep(5000).then(() => Promise.reject(new Error(`strace did not attach: ${stderr.slice(-500)}`)))]);
    await sleep(200);
    const result = await run();
    child.kill('SIGINT');
    await exited;
    return { result, counts: parseStraceSummary(readFileSync(out, 'utf8')) };
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
}
