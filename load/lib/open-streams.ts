/**
 * Open-loop load of several streams at once, for the flow scenario: each stream sends requests on
 * a fixed schedule (request i of a stream is due at t0 + i/rate) whatever the server's pace, with
 * its own path and headers (priority class, tenant), and each latency is counted from the
 * request's scheduled time, so a stall is charged to every request it delayed. Rates here are
 * low (hundreds per second), so the schedule runs in this process on a 1 ms timer.
 *
 * Bounded: rate x duration requests per stream, at most `maxInFlight` in flight (a request due
 * over it is counted as skipped, never queued), a client timeout per request, and a deadline after
 * which what is left is aborted. Loopback only (the caller's URLs are 127.0.0.1).
 */
import { Pool } from 'undici';
import { quantile } from './report.js';

export interface Stream {
  readonly label: string;
  readonly path: string;
  readonly rate: number;
  readonly headers?: Record<string, string>;
}

export interface StreamResult {
  readonly label: string;
  readonly asked: number;
  readonly ok: number;
  /** Refused by the proxy: 503 (overload, queue timeout). */
  readonly refused: number;
  /** Any other answer (504 after the route timeout, 502...). */
  readonly failed: number;
  /** No answer: client timeout, reset, skipped over maxInFlight. */
  readonly lost: number;
  /** Answers of any status that came more than 2.5 s after they were due. */
  readonly late: number;
  /** Latencies of the 200s and of the 503s, ms, sorted. */
  readonly okMs: readonly number[];
  /** The 200s' latencies by the second they were due in (their count: the 200s due that second). */
  readonly okMsByDueSecond: readonly (readonly number[])[];
  readonly refusedMs: readonly number[];
  /**
   * 200s per second of the run, by the second they were answered in (those after the run's end
   * not counted): the rate the model is kept serving at, which the drain of a queue after the
   * last request does not inflate (a deeper queue adds its length to `ok`, not to this).
   */
  readonly okDonePerSecond: readonly number[];
  readonly statuses: Record<string, number>;
}

export const LATE_MS = 2500;
const BODY = Buffer.from('{"data":{"ndarray":[[1.0,2.0,3.0,4.0]]}}');

export async function runStreams(origin: string, streams: readonly Stream[], durationMs: number, options: { timeoutMs?: number; maxInFlight?: number } = {}): Promise<StreamResult[]> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const maxInFlight = options.maxInFlight ?? 4000;
  const pool = new Pool(origin, { connections: maxInFlight, pipelining: 1, keepAliveTimeout: 60_000, headersTimeout: timeoutMs, bodyTimeout: timeoutMs });
  const seconds = Math.ceil(durationMs / 1000);
  const state = streams.map((s) => ({
    s,
    total: Math.round((s.rate * durationMs) / 1000),
    issued: 0,
    ok: [] as number[],
    refused: [] as number[],
    failed: 0,
    lost: 0,
    late: 0,
    okDonePerSecond: new Array<number>(seconds).fill(0),
    okMsByDueSecond: Array.from({ length: seconds }, () => [] as number[]),
    statuses: {} as Record<string, number>,
  }));
  let inFlight = 0;
  const aborts = new Set<AbortController>();
  const t0 = performance.now() + 5;

  const send = (st: (typeof state)[number], due: number): void => {
    if (inFlight >= maxInFlight) {
      st.lost++;
      return;
    }
    inFlight++;
    const abort = new AbortController();
    aborts.add(abort);
    const timer = setTimeout(() => abort.abort(), timeoutMs);
    pool
      .request({ path: st.s.path, method: 'POST', body: BODY, headers: { 'content-type': 'application/json', ...st.s.headers }, signal: abort.signal })
      .then(async (res) => {
        await res.body.dump();
        const ms = performance.now() - due;
        st.statuses[res.statusCode] = (st.statuses[res.statusCode] ?? 0) + 1;
        if (ms > LATE_MS) st.late++;
        if (res.statusCode === 200) {
          st.ok.push(ms);
          const dueS = Math.min(seconds - 1, Math.floor((due - t0) / 1000));
          st.okMsByDueSecond[dueS]!.push(ms);
          const done = Math.floor((performance.now() - t0) / 1000);
          if (done < seconds) st.okDonePerSecond[done]!++;
        } else if (res.statusCode === 503) st.refused.push(ms);
        else st.failed++;
      })
      .catch(() => {
        st.lost++;
        st.statuses.none = (st.statuses.none ?? 0) + 1;
      })
      .finally(() => {
        clearTimeout(timer);
        aborts.delete(abort);
        inFlight--;
      });
  };

  await new Promise<void>((resolve) => {
    const tick = (): void => {
      const now = performance.now();
      let left = false;
      for (const st of state) {
        const due = Math.min(st.total, Math.floor(((now - t0) * st.s.rate) / 1000) + 1);
        while (st.issued < due) send(st, t0 + (st.issued++ * 1000) / st.s.rate);
        if (st.issued < st.total) left = true;
      }
      if (left) setTimeout(tick, 1);
      else resolve();
    };
    setTimeout(tick, 5);
  });
  const deadline = performance.now() + timeoutMs + 1000;
  while (inFlight > 0 && performance.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  for (const a of aborts) a.abort();
  await pool.destroy().catch(() => undefined);
  return state.map((st) => ({
    label: st.s.label,
    asked: st.total,
    ok: st.ok.length,
    refused: st.refused.length,
    failed: st.failed,
    lost: st.lost,
    late: st.late,
    okMs: st.ok.sort((a, b) => a - b),
    refusedMs: st.refused.sort((a, b) => a - b),
    okDonePerSecond: st.okDonePerSecond,
    okMsByDueSecond: st.okMsByDueSecond,
    statuses: st.statuses,
  }));
}

/** The q-quantile of the 200s due from second `fromS` to before `toS`, in ms. */
export function okQuantileBetween(r: StreamResult, fromS: number, toS: number, q: number): number {
  return quantile(
    r.okMsByDueSecond
      .slice(fromS, toS)
      .flat()
      .sort((a, b) => a - b),
    q,
  );
}

/** 200s per second answered from `fromS` to the end of the run (the steady state, past the queue's filling). */
export function steadyOkRate(r: StreamResult, fromS: number): number {
  const xs = r.okDonePerSecond.slice(Math.min(fromS, r.okDonePerSecond.length - 1));
  return xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
}

/** The q-quantile (0..1) of a stream's 200s, or of its refusals, in ms. */
export const okQuantile = (r: StreamResult, q: number): number => quantile(r.okMs, q);
export const refusedQuantile = (r: StreamResult, q: number): number => quantile(r.refusedMs, q);

/** Several streams' results as one (a target's total over its classes or tenants). */
export function combined(label: string, results: readonly StreamResult[]): StreamResult {
  const add = (f: (r: StreamResult) => number): number => results.reduce((n, r) => n + f(r), 0);
  const statuses: Record<string, number> = {};
  for (const r of results) for (const [k, v] of Object.entries(r.statuses)) statuses[k] = (statuses[k] ?? 0) + v;
  return {
    label,
    asked: add((r) => r.asked),
    ok: add((r) => r.ok),
    refused: add((r) => r.refused),
    failed: add((r) => r.failed),
    lost: add((r) => r.lost),
    late: add((r) => r.late),
    okMs: results.flatMap((r) => r.okMs).sort((a, b) => a - b),
    refusedMs: results.flatMap((r) => r.refusedMs).sort((a, b) => a - b),
    okDonePerSecond: results[0]!.okDonePerSecond.map((_, i) => add((r) => r.okDonePerSecond[i] ?? 0)),
    okMsByDueSecond: results[0]!.okMsByDueSecond.map((_, i) => results.flatMap((r) => r.okMsByDueSecond[i] ?? [])),
    statuses,
  };
}
