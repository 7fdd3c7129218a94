/**
 * One accounted run: run a load generator against a target (after waiting for a quiet machine) and
 * charge the CPU time (utime+stime from /proc, whole process trees) the proxy and the backend spent
 * meanwhile to each request they handled; the foreign load during the run says how trustworthy it is.
 */
import { machineTicks, foreignPct, treeSeconds } from './proc.js';
import type { QuietGate } from './quiet.js';

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
 * request they handled (`handled`: every completed request, warm-up included).
 */
export async function measure<T>(target: Target, backendPid: number, quiet: QuietGate, run: () => Promise<T>, handled: (r: T) => number): Promise<Accounted<T>> {
  await quiet.wait();
  const p0 = target.proxyPid ? treeSeconds(target.proxyPid) : 0;
  const b0 = treeSeconds(backendPid);
  const m0 = machineTicks();
  const t0 = performance.now();
  const result = await run();
  const wall = (performance.now() - t0) / 1000;
  const p1 = target.proxyPid ? treeSeconds(target.proxyPid) : 0;
  const n = Math.max(1, handled(result));
  return {
    result,
    proxyUsPerReq: target.proxyPid ? ((p1 - p0) * 1e6) / n : null,
    backendUsPerReq: ((treeSeconds(backendPid) - b0) * 1e6) / n,
    otherPct: foreignPct(m0, machineTicks(), wall),
  };
}
