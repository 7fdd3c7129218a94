/**
 * /proc accounting for the benchmarks (Linux only): a process tree's CPU time (a gateway primary
 * and its workers, an nginx master and its worker), its read/write syscalls and context switches,
 * and the whole machine's ticks split into ours, kernel threads and everyone else's.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { cpus } from 'node:os';

export const CLK_TCK = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** Every live process's /proc/<pid>/stat fields from the state on (f[1] the parent, f[11] utime, f[12] stime, f[13..14] its reaped children's), by pid. */
function procStats(): Map<number, string[]> {
  const out = new Map<number, string[]>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      out.set(Number(name), stat.slice(stat.lastIndexOf(')') + 2).split(' '));
    } catch {
      /* gone */
    }
  }
  return out;
}

/** Every live descendant of `pid` (scans /proc once unless given its scan). */
export function descendants(pid: number, stats = procStats()): number[] {
  const out: number[] = [];
  const walk = (p: number): void => {
    for (const [c, f] of stats) {
      if (Number(f[1]) !== p) continue;
      out.push(c);
      walk(c);
    }
  };
  walk(pid);
  return out;
}

/** utime+stime of a process, in ticks; 0 when gone. */
export function procTicks(pid: number, stats = procStats()): number {
  const f = stats.get(pid);
  return f ? Number(f[11]) + Number(f[12]) : 0;
}

/** CPU seconds of a process and its live descendants. */
export function treeSeconds(pid: number): number {
  const stats = procStats();
  return [pid, ...descendants(pid, stats)].reduce((t, p) => t + procTicks(p, stats), 0) / CLK_TCK;
}

/**
 * CPU seconds the scheduler ran a process tree's threads (the first field of each thread's
 * /proc/<pid>/task/<tid>/schedstat, in ns). Exact, where utime+stime are sampled at each tick (4 ms
 * at this kernel's HZ=250): a process that wakes on its timers runs in step with the tick and is
 * charged whole ticks for slices far shorter. Threads that exited are not in it (a gateway's threads
 * live as long as it does).
 */
export function treeRuntimeSeconds(pid: number): number {
  let ns = 0;
  for (const p of [pid, ...descendants(pid)]) {
    try {
      for (const tid of readdirSync(`/proc/${p}/task`)) ns += Number(readFileSync(`/proc/${p}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      /* gone */
    }
  }
  return ns / 1e9;
}

export interface Counters {
  syscr: number;
  syscw: number;
  /** Context switches, every thread: voluntary (the thread slept: a wake-up each) and not. */
  vcsw: number;
  ivcsw: number;
}

/** Read/write syscalls (/proc/<pid>/io) and context switches of a process tree. */
export function treeCounters(pid: number): Counters {
  const c: Counters = { syscr: 0, syscw: 0, vcsw: 0, ivcsw: 0 };
  for (const p of [pid, ...descendants(pid)]) {
    try {
      const io = readFileSync(`/proc/${p}/io`, 'utf8');
      c.syscr += Number(/syscr: (\d+)/.exec(io)?.[1] ?? 0);
      c.syscw += Number(/syscw: (\d+)/.exec(io)?.[1] ?? 0);
      for (const tid of readdirSync(`/proc/${p}/task`)) {
        const st = readFileSync(`/proc/${p}/task/${tid}/status`, 'utf8');
        c.vcsw += Number(/^voluntary_ctxt_switches:\s+(\d+)/m.exec(st)?.[1] ?? 0);
        c.ivcsw += Number(/^nonvoluntary_ctxt_switches:\s+(\d+)/m.exec(st)?.[1] ?? 0);
      }
    } catch {
      /* gone */
    }
  }
  return c;
}

export interface MachineTicks {
  /** user+nice+system of all CPUs (/proc/stat). */
  busy: number;
  steal: number;
  /** This process and everything it started, reaped load generators included. */
  ours: number;
  /** Kernel threads (softirq work, kworkers): not "someone else's load". */
  kernel: number;
}

export function machineTicks(): MachineTicks {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal
  const stats = procStats();
  const ours = new Set([process.pid, ...descendants(process.pid, stats)]);
  let own = 0;
  let kernel = 0;
  for (const [pid, f] of stats) {
    if (ours.has(pid)) own += Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]);
    else if (Number(f[6]) & 0x00200000 || Number(f[1]) === 2 || pid === 2) kernel += Number(f[11]) + Number(f[12]); // PF_KTHREAD
  }
  return { busy: line[0]! + line[1]! + line[2]!, steal: line[7] ?? 0, ours: own, kernel };
}

/**
 * CPU used between two snapshots by processes this one did not start (other people's builds,
 * tests, benchmarks), as a percentage of the whole machine: all user+system time minus ours minus
 * kernel threads. A noise indicator, not an exact account.
 */
export function foreignPct(a: MachineTicks, b: MachineTicks, seconds: number): number {
  const ticks = b.busy - a.busy - (b.ours - a.ours) - (b.kernel - a.kernel);
  return Math.max(0, (100 * ticks) / CLK_TCK / Math.max(1e-3, seconds) / cpus().length);
}
