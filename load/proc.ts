/**
 * Process accounting from /proc for the benchmarks: a process tree's CPU time (a gateway primary
 * and its workers, an nginx master and its worker).
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';

export const CLK_TCK = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** Every live descendant of `pid` (scans /proc once). */
export function descendants(pid: number): number[] {
  const parent = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const list = parent.get(ppid) ?? [];
      list.push(Number(name));
      parent.set(ppid, list);
    } catch {
      /* gone */
    }
  }
  const out: number[] = [];
  const walk = (p: number): void => {
    for (const c of parent.get(p) ?? []) {
      out.push(c);
      walk(c);
    }
  };
  walk(pid);
  return out;
}

/** utime+stime (+ reaped children's) of a process, in ticks; 0 when gone. */
export function procTicks(pid: number, withReaped: boolean): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const own = Number(f[11]) + Number(f[12]);
    return withReaped ? own + Number(f[13]) + Number(f[14]) : own;
  } catch {
    return 0;
  }
}

/** CPU seconds of a process and its live descendants. */
export function treeSeconds(pid: number): number {
  let t = procTicks(pid, false);
  for (const d of descendants(pid)) t += procTicks(d, false);
  return t / CLK_TCK;
}
