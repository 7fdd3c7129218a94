/**
 * The soak's readings (load/soak.ts) and what it makes of them: each process's resident memory
 * (VmRSS from /proc, read before the collections), heap after two forced full collections, external
 * memory, descriptors and upstreams kept (the admin `/memory?gc`); the `/metrics` series, those
 * naming deleted deployments (and of them, those deleted longer ago than the grace and a sweep) and
 * gone pod addresses; least-squares slopes of RSS and of the heap per process over the second half
 * of the run, in MB per hour; the progress lines and the final tables.
 */
import { readFileSync } from 'node:fs';
import type { ProcessMemory } from '../../gateway/observe/process-memory.js';
import { f0, f1, f2, table } from './report.js';
import type { SoakFailure, StreamCounts, StreamName } from './soak-load.js';

const MB = 1024 * 1024;

/** One process at one reading: what admin `/memory?gc` says of it, named, with its RSS from /proc (VmRSS, 0 once it is gone). */
export type ProcessReading = Pick<ProcessMemory, 'pid' | 'rss' | 'heapUsed' | 'heapTotal' | 'external' | 'arrayBuffers' | 'descriptors'> & {
  readonly name: string;
  readonly upstreams: NonNullable<ProcessMemory['upstreams']> | null;
};

export interface SeriesReading {
  readonly total: number;
  /** Naming a deployment deleted at any time (within the grace they are expected). */
  readonly deleted: number;
  /** Naming a deployment deleted longer ago than the grace and a sweep: should be 0. */
  readonly deletedPastGrace: number;
  /** Naming a pod address that stopped longer ago than the grace and a sweep: should be 0. */
  readonly goneAddresses: number;
}

export interface Reading {
  /** Seconds since the load started. */
  readonly t: number;
  /** Since the reading before: the gateway's CPU (all its processes) and everyone else's (not this run's), % of the machine. */
  readonly cpu: { readonly gateway: number; readonly foreign: number };
  /** The longest event-loop stall of the runner (the stand-in and the pods) since the reading before, ms. */
  readonly stallMs: number;
  readonly processes: readonly ProcessReading[];
  readonly series: SeriesReading;
  readonly counts: Record<StreamName, StreamCounts>;
}

/** VmRSS of a process, bytes; 0 when it is gone. */
export function vmRss(pid: number): number {
  try {
    const kb = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return kb === undefined ? 0 : Number(kb) * 1024;
  } catch {
    return 0;
  }
}

/** Resident memory first (the collections would shrink it), then the heap after collections. */
export async function readProcesses(admin: number, pids: readonly number[]): Promise<ProcessReading[]> {
  const rss = new Map(pids.map((p) => [p, vmRss(p)]));
  const res = await fetch(`http://127.0.0.1:${admin}/memory?gc`, { signal: AbortSignal.timeout(60_000) });
  const { processes } = (await res.json()) as { processes: ProcessMemory[] };
  return processes.map((m) => ({
    name: m.role === 'worker' ? `worker ${m.worker ?? m.pid}` : m.role,
    pid: m.pid,
    rss: rss.get(m.pid) ?? vmRss(m.pid),
    heapUsed: m.heapUsed,
    heapTotal: m.heapTotal,
    external: m.external,
    arrayBuffers: m.arrayBuffers,
    descriptors: m.descriptors,
    upstreams: m.upstreams ?? null,
  }));
}

/** The series of a Prometheus exposition, and those naming deleted deployments or gone addresses. */
export function readSeries(text: string, deletedAt: ReadonlyMap<string, number>, goneAt: ReadonlyMap<string, number>, pastMs: number): SeriesReading {
  const now = Date.now();
  let total = 0;
  let deleted = 0;
  let deletedPastGrace = 0;
  let goneAddresses = 0;
  const gone = new Set([...goneAt].filter(([, at]) => now - at > pastMs).map(([ip]) => ip));
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    total++;
    const d = /deployment="([^"]*)"/.exec(line)?.[1];
    const at = d === undefined ? undefined : deletedAt.get(d);
    if (at !== undefined) {
      deleted++;
      if (now - at > pastMs) deletedPastGrace++;
    }
    // A label value that is a pod address (`"<ip>:<port>"`).
    for (const m of line.matchAll(/"(\d+\.\d+\.\d+\.\d+):\d+"/g)) {
      if (!gone.has(m[1]!)) continue;
      goneAddresses++;
      break;
    }
  }
  return { total, deleted, deletedPastGrace, goneAddresses };
}

/** Least-squares slope of y against t (seconds), per hour; NaN with fewer than two points. */
export function slopePerHour(points: readonly (readonly [number, number])[]): number {
  const n = points.length;
  if (n < 2) return NaN;
  const mt = points.reduce((a, [t]) => a + t, 0) / n;
  const my = points.reduce((a, [, y]) => a + y, 0) / n;
  let num = 0;
  let den = 0;
  for (const [t, y] of points) {
    num += (t - mt) * (y - my);
    den += (t - mt) ** 2;
  }
  return den === 0 ? NaN : (num / den) * 3600;
}

/** Per process: slopes of RSS and heap (MB/hour) over the readings from `from` seconds on. */
export function slopes(readings: readonly Reading[], from: number): Map<string, { rss: number; heap: number }> {
  const late = readings.filter((r) => r.t >= from);
  const names = new Set(late.flatMap((r) => r.processes.map((p) => p.name)));
  const out = new Map<string, { rss: number; heap: number }>();
  for (const name of names) {
    const of = (k: 'rss' | 'heapUsed'): [number, number][] => late.flatMap((r) => r.processes.filter((p) => p.name === name).map((p): [number, number] => [r.t, p[k] / MB]));
    out.set(name, { rss: slopePerHour(of('rss')), heap: slopePerHour(of('heapUsed')) });
  }
  return out;
}

/** One progress line per reading. */
export function progressLine(r: Reading): string {
  const ps = r.processes.map(
    (p) =>
      `${p.name} rss ${f0(p.rss / MB)} heap ${f1(p.heapUsed / MB)}/${f0(p.heapTotal / MB)} ext ${f1(p.external / MB)} fds ${p.descriptors ?? '–'}${p.upstreams ? ` up ${p.upstreams.rest}/${p.upstreams.grpc}` : ''}`,
  );
  const failed = Object.values(r.counts).reduce((a, c) => a + c.failed, 0);
  const sent = Object.values(r.counts).reduce((a, c) => a + c.sent, 0);
  const p99 = (k: StreamName): string => f1(r.counts[k].p99);
  return (
    `[${f0(r.t)} s] ${ps.join(' | ')} | series ${r.series.total} (deleted ${r.series.deleted}, past grace ${r.series.deletedPastGrace}, gone addresses ${r.series.goneAddresses})` +
    ` | sent ${f0(sent)}, failed ${failed}, p99 ms REST ${p99('stable-rest')} gRPC ${p99('stable-grpc')} | CPU % gateway ${f0(r.cpu.gateway)} others ${f0(r.cpu.foreign)} | pods' longest stall ${f0(r.stallMs)} ms`
  );
}

export interface Verdicts {
  readonly liveFailures: readonly SoakFailure[];
  readonly deletedFailures: readonly SoakFailure[];
}

/** A failure is allowed when its deployment's deletion began before it ended (deleted while in flight or being sent). */
export function classify(failures: readonly SoakFailure[], deletedAt: ReadonlyMap<string, number>): Verdicts {
  const liveFailures: SoakFailure[] = [];
  const deletedFailures: SoakFailure[] = [];
  for (const f of failures) {
    const at = deletedAt.get(f.target);
    (at !== undefined && at <= f.endedAt ? deletedFailures : liveFailures).push(f);
  }
  return { liveFailures, deletedFailures };
}

/** How many failures of each reason (numbers and ids taken out, so like ones group). */
export function reasons(failures: readonly SoakFailure[]): [string, number][] {
  const by = new Map<string, number>();
  for (const f of failures) {
    const key = `${f.stream}: ${f.reason.replace(/churn\d+/g, 'churnN').replace(/\d+(\.\d+)*(:\d+)?/g, 'N')}`;
    by.set(key, (by.get(key) ?? 0) + 1);
  }
  return [...by].sort((a, b) => b[1] - a[1]);
}

/** The final tables: processes (first, last, slopes), series, requests. */
export function finalTables(readings: readonly Reading[], halfFrom: number, v: Verdicts): string {
  const first = readings[0]!;
  const last = readings.at(-1)!;
  const sl = slopes(readings, halfFrom);
  const procRows = last.processes.map((p) => {
    const f = first.processes.find((x) => x.name === p.name);
    const s = sl.get(p.name);
    return [
      p.name,
      `${f0((f?.rss ?? NaN) / MB)} → ${f0(p.rss / MB)}`,
      f2(s?.rss),
      `${f1((f?.heapUsed ?? NaN) / MB)} → ${f1(p.heapUsed / MB)} (of ${f0(p.heapTotal / MB)})`,
      f2(s?.heap),
      `${f1((f?.external ?? NaN) / MB)} → ${f1(p.external / MB)}`,
      `${f?.descriptors ?? '–'} → ${p.descriptors ?? '–'}`,
      p.upstreams ? `${p.upstreams.rest} REST, ${p.upstreams.grpc} gRPC` : '–',
    ];
  });
  const processes = table(
    ['process', 'RSS MB (first → last)', 'RSS slope MB/h (2nd half)', 'heap after GC MB (of V8 heap total)', 'heap slope MB/h', 'external MB', 'descriptors', 'upstreams kept'],
    procRows,
  );
  const maxOf = (k: keyof SeriesReading): number => Math.max(...readings.map((r) => r.series[k]));
  const series = table(
    ['series', 'first', 'last', 'max'],
    (['total', 'deleted', 'deletedPastGrace', 'goneAddresses'] as const).map((k) => [
      { total: 'all', deleted: 'naming a deleted deployment', deletedPastGrace: '… deleted longer than the grace ago', goneAddresses: 'naming a gone pod address (past the grace)' }[k],
      f0(first.series[k]),
      f0(last.series[k]),
      f0(maxOf(k)),
    ]),
  );
  const requests = table(
    ['stream', 'sent', 'ok', 'failed', 'skipped', 'p99 ms (last interval)'],
    Object.entries(last.counts).map(([name, c]) => [name, f0(c.sent), name === 'abusive' ? '(broke off)' : f0(c.ok), f0(c.failed), f0(c.skipped), f1(c.p99)]),
  );
  const busy = readings.map((r) => r.cpu.foreign);
  const stalls = readings.map((r) => r.stallMs);
  const cpu =
    `CPU, % of the machine per interval: the gateway ${f0(Math.min(...readings.map((r) => r.cpu.gateway)))}–${f0(Math.max(...readings.map((r) => r.cpu.gateway)))}, ` +
    `other people's processes ${f0(Math.min(...busy))}–${f0(Math.max(...busy))}; the stand-in's and pods' longest event-loop stall per interval ${f0(Math.min(...stalls))}–${f0(Math.max(...stalls))} ms`;
  const verdict = `failed to a live deployment: ${v.liveFailures.length} (must be 0); to a deployment deleted while in flight or being sent: ${v.deletedFailures.length} (allowed)`;
  const why = (label: string, fs: readonly SoakFailure[]): string =>
    fs.length === 0
      ? ''
      : `\n${label}:\n${reasons(fs)
          .map(([r, n]) => `  ${n} × ${r}`)
          .join('\n')}`;
  return [processes, '', series, '', requests, cpu, '', verdict + why('to a live deployment, by reason', v.liveFailures) + why('to a deleted deployment, by reason', v.deletedFailures)].join('\n');
}
