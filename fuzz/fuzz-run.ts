/**
 * A fuzzing run, whichever side: cases `seed:0…` judged by `judge`, several at once, until a count
 * or a deadline; the tally by verdict and every divergence with its replay line (`--case seed:index`).
 */
import net from 'node:net';
import type { DefectClass, Verdict } from './request-judge.js';

export interface Divergence {
  /** `--case <replay>` runs this case again. */
  readonly replay: string;
  readonly kind: DefectClass | 'hang';
  readonly detail: string;
  /** The case's bytes, as a JSON string (shortened). */
  readonly bytes: string;
}

export interface RunResult {
  readonly side: string;
  readonly seed: number;
  readonly cases: number;
  readonly ms: number;
  /** Cases by verdict; `stricter: <rule>` counted by rule. */
  readonly tally: Record<string, number>;
  readonly divergences: Divergence[];
}

export interface RunOptions {
  readonly seed: number;
  /** The first case's index (default 0). */
  readonly from?: number;
  /** Stop after this many cases… */
  readonly count?: number;
  /** …or at this `performance.now()` time, whichever comes first. */
  readonly until?: number;
  /** Cases in flight at once (default 32). */
  readonly concurrency?: number;
  /** Told of each divergence as it is found. */
  readonly onDivergence?: (d: Divergence) => void;
  /** Stop once this many divergences are found (default: never). */
  readonly stopAfter?: number;
}

/** Today's seed: YYYYMMDD (UTC), so each day's short run explores new cases. */
export function dateSeed(now = new Date()): number {
  return Number(now.toISOString().slice(0, 10).replaceAll('-', ''));
}

/** One case: its verdict and its bytes (for the report). */
export type CaseRunner = (index: number) => Promise<{ verdict: Verdict | { kind: 'hang'; detail: string }; bytes: Buffer }>;

export async function runCases(side: string, options: RunOptions, runOne: CaseRunner): Promise<RunResult> {
  const start = performance.now();
  const from = options.from ?? 0;
  const end = options.count === undefined ? Infinity : from + options.count;
  const tally: Record<string, number> = {};
  const divergences: Divergence[] = [];
  let next = from;
  const worker = async (): Promise<void> => {
    for (;;) {
      if (next >= end || (options.until !== undefined && performance.now() >= options.until) || divergences.length >= (options.stopAfter ?? Infinity)) return;
      const index = next++;
      const { verdict, bytes } = await runOne(index);
      const key = verdict.kind === 'stricter' ? `stricter: ${verdict.detail}` : verdict.kind;
      tally[key] = (tally[key] ?? 0) + 1;
      if (verdict.kind === 'fine' || verdict.kind === 'stricter') continue;
      const text = bytes.toString('latin1');
      const d: Divergence = { replay: `${options.seed}:${index}`, kind: verdict.kind, detail: verdict.detail, bytes: JSON.stringify(text.length > 600 ? `${text.slice(0, 600)}…` : text) };
      divergences.push(d);
      options.onDivergence?.(d);
    }
  };
  await Promise.all(Array.from({ length: options.concurrency ?? 32 }, worker));
  return { side, seed: options.seed, cases: next - from, ms: performance.now() - start, tally, divergences };
}

/**
 * Write `bytes` to `port` in pieces cut at `splits` (each after the last was handed to the
 * system), then (when `halfClose`) end the stream, and read everything until the other side
 * closes; `hung` when it keeps the connection open past `ms` after the last byte.
 */
export async function exchangeBytes(port: number, bytes: Buffer, splits: readonly number[], halfClose: boolean, ms: number): Promise<{ received: Buffer; hung: boolean }> {
  const s = net.connect(port, '127.0.0.1');
  s.setNoDelay(true);
  const chunks: Buffer[] = [];
  s.on('data', (d: Buffer) => chunks.push(d));
  s.on('error', () => undefined);
  let done: (hung: boolean) => void = () => undefined;
  const closed = new Promise<boolean>((resolve) => (done = resolve));
  s.once('close', () => done(false));
  let from = 0;
  for (const at of [...splits, bytes.length]) {
    if (s.destroyed) break;
    await new Promise<void>((resolve) => s.write(bytes.subarray(from, at), () => resolve()));
    from = at;
  }
  if (halfClose) s.end();
  const timer = setTimeout(() => done(true), ms);
  const hung = await closed;
  clearTimeout(timer);
  s.destroy();
  return { received: Buffer.concat(chunks), hung };
}
