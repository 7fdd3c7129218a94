/**
 * One accounted run: run a load generator against a target (after waiting for a quiet machine) and
 * charge the CPU time (utime+stime from /proc, whole process trees) the proxy and the backend spent
 * meanwhile to each request they handled; the foreign load during the run says how trustworthy it is.
 */
import { machineTicks, foreignPct, treeSeconds } from './proc.js';
import { median } from './report.js';
import type { QuietGate } from './quiet.js';
import type { Sent } from '../../test/fixtures/loopback-replicas.js';

export interface Target {
  readonly key: string;
  readonly label: string;
  readonly url: string;
  /** The process tree whose CPU is "the proxy"; null for direct. */
  readonly proxyPid: number | null;
}

export interface Accounted<T> {
  readonly result: T;
  readonly proxyUsPerReq: number | null;
  readonly backendUsPerReq: number;
  readonly otherPct: number;
}

/**
 * Run `run` against `target` and account the CPU the proxy and the backend spent meanwhile, per
 * request they handled (every completed or failed request of the run).
 */
export async function measure<T extends { readonly completed: number; readonly failed?: number }>(target: Target, backendPid: number, quiet: QuietGate, run: () => Promise<T>): Promise<Accounted<T>> {
  await quiet.wait();
  const p0 = target.proxyPid ? treeSeconds(target.proxyPid) : 0;
  const b0 = treeSeconds(backendPid);
  const m0 = machineTicks();
  const t0 = performance.now();
  const result = await run();
  const wall = (performance.now() - t0) / 1000;
  const p1 = target.proxyPid ? treeSeconds(target.proxyPid) : 0;
  const n = Math.max(1, result.completed + (result.failed ?? 0));
  return {
    result,
    proxyUsPerReq: target.proxyPid ? ((p1 - p0) * 1e6) / n : null,
    backendUsPerReq: ((treeSeconds(backendPid) - b0) * 1e6) / n,
    otherPct: foreignPct(m0, machineTicks(), wall),
  };
}

/** One side of a side-by-side pair: a process tree answering on `port`. */
export interface Side {
  readonly port: number;
  readonly pid: number;
  stop(): Promise<void>;
}

export interface PairResult {
  /** CPU µs per request of each side, by round, and each round's second over first. */
  readonly us: [number[], number[]];
  readonly ratios: number[];
  /** Every request of the measured windows, each side's, by round. */
  readonly sent: [Sent[][], Sent[][]];
}

/**
 * Two sides under the same open-loop load in the same windows, `rounds` times: each round a fresh pair (a process
 * keeps a bias of its own), started in turn with the first to start alternating, both warmed for `warmupS`, then
 * each side's CPU per request over one window of `seconds` (`cpuSeconds` of its process tree: utime+stime unless
 * given). What the shared host does to one window it does to both. `window(sides)` is called before each window and
 * what it returns after it, the sides still running (a caller's own counters).
 */
export async function sideBySide(o: {
  readonly rounds: number;
  readonly seconds: number;
  readonly warmupS: number;
  start(which: 0 | 1, round: number): Promise<Side>;
  load(side: Side, which: 0 | 1, seconds: number, round: number, warmup: boolean): Promise<Sent[]>;
  cpuSeconds?: (pid: number) => number;
  window?: (sides: readonly Side[], round: number) => (sent: readonly Sent[][]) => Promise<void> | void;
}): Promise<PairResult> {
  const cpu = o.cpuSeconds ?? treeSeconds;
  const r: PairResult = { us: [[], []], ratios: [], sent: [[], []] };
  for (let round = 0; round < o.rounds; round++) {
    const order = (round % 2 === 0 ? [0, 1] : [1, 0]) as (0 | 1)[];
    const sides: Side[] = [];
    try {
      for (const which of order) sides[which] = await o.start(which, round);
      await Promise.all(sides.map((s, i) => o.load(s, i as 0 | 1, o.warmupS, round, true)));
      const after = o.window?.(sides, round);
      const cpu0 = sides.map((s) => cpu(s.pid));
      const sent = await Promise.all(sides.map((s, i) => o.load(s, i as 0 | 1, o.seconds, round, false)));
      sides.forEach((s, i) => {
        r.us[i]!.push(((cpu(s.pid) - cpu0[i]!) * 1e6) / Math.max(1, sent[i]!.length));
        r.sent[i]!.push(sent[i]!);
      });
      await after?.(sent);
      r.ratios.push(r.us[1].at(-1)! / r.us[0].at(-1)!);
    } finally {
      for (const s of sides) await s?.stop();
    }
  }
  return r;
}

/** The median of `pick` over the runs no other process disturbed (foreign load under `pct`%; all runs when every one was); null when none has it. */
export function quietMedian<T extends { readonly otherPct: number }>(xs: readonly T[], pick: (x: T) => number | null, pct: number): number | null {
  const quiet = xs.filter((x) => x.otherPct < pct);
  const v = (quiet.length ? quiet : xs).map(pick).filter((x): x is number => x !== null && Number.isFinite(x));
  return v.length ? median(v) : null;
}
