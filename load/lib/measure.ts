/**
 * One accounted run: wait for a quiet machine, run a load generator against a target, and charge
 * the CPU time (utime+stime from /proc, whole process trees) the proxy and the backend spent
 * meanwhile, their syscalls and sleeps, to each request they handled; the foreign load and
 * hypervisor steal during the run say how trustworthy it is.
 */
import { machineTicks, foreignPct, stealPct, treeCounters, treeSeconds, treeSystemSeconds } from './proc.js';
import type { QuietGate } from './quiet.js';

export interface Target {
  readonly key: string;
  readonly label: string;
  readonly url: string;
  /** The process tree whose CPU is "the proxy"; null for direct. */
  readonly proxyPid: number | null;
}

/** Per handled request, for the proxy (or the backend for direct): read and write syscalls, context switches. */
export interface PerRequest {
  syscr: number;
  syscw: number;
  vcsw: number;
  ivcsw: number;
}

export interface Accounted<T> {
  readonly result: T;
  readonly proxyUsPerReq: number | null;
  /** The kernel's part of the proxy's CPU (stime), µs per request. */
  readonly proxySysUsPerReq: number | null;
  readonly backendUsPerReq: number;
  readonly otherPct: number;
  readonly stealPct: number;
  readonly perReq: PerRequest;
}

/** One cell's run as the report sees it, whichever generator made it. */
export interface Sample {
  rps: number;
  completed: number;
  proxyUsPerReq: number | null;
  /** The kernel's part of it (stime). */
  proxySysUsPerReq?: number | null;
  backendUsPerReq: number;
  non2xx: number;
  socketErrors: number;
  errorDetail: string;
  p50us: number;
  p99us: number;
  /** Fixed-rate runs only: p99.9 latency. */
  p999us?: number;
  otherPct: number;
  stealPct: number;
  perReq: PerRequest;
}

/**
 * Run `run` against `target` and account the CPU the proxy and the backend spent meanwhile, per
 * request they handled (`handled`: every completed request, warm-up included).
 */
export async function measure<T>(target: Target, backendPid: number, quiet: QuietGate, run: () => Promise<T>, handled: (r: T) => number): Promise<Accounted<T>> {
  await quiet.wait();
  const counted = target.proxyPid ?? backendPid;
  const c0 = treeCounters(counted);
  const p0 = target.proxyPid ? treeSeconds(target.proxyPid) : 0;
  const s0 = target.proxyPid ? treeSystemSeconds(target.proxyPid) : 0;
  const b0 = treeSeconds(backendPid);
  const m0 = machineTicks();
  const t0 = performance.now();
  const result = await run();
  const wall = (performance.now() - t0) / 1000;
  const p1 = target.proxyPid ? treeSeconds(target.proxyPid) : 0;
  const s1 = target.proxyPid ? treeSystemSeconds(target.proxyPid) : 0;
  const b1 = treeSeconds(backendPid);
  const m1 = machineTicks();
  const c1 = treeCounters(counted);
  const n = Math.max(1, handled(result));
  return {
    perReq: { syscr: (c1.syscr - c0.syscr) / n, syscw: (c1.syscw - c0.syscw) / n, vcsw: (c1.vcsw - c0.vcsw) / n, ivcsw: (c1.ivcsw - c0.ivcsw) / n },
    result,
    proxyUsPerReq: target.proxyPid ? ((p1 - p0) * 1e6) / n : null,
    proxySysUsPerReq: target.proxyPid ? ((s1 - s0) * 1e6) / n : null,
    backendUsPerReq: ((b1 - b0) * 1e6) / n,
    otherPct: foreignPct(m0, m1, wall),
    stealPct: stealPct(m0, m1, wall),
  };
}
