/**
 * The REST benchmark's report: one line per run as it happens, then the tables over the rounds
 * (medians over the runs no other process disturbed), syscalls per request, ratios between
 * targets with the p99 and p99.9 differences at each fixed rate, the stalls the gateways counted
 * in themselves, the gateway's targets with their verdicts, and notes on foreign load.
 */
import type { RateResult } from './fixed-rate.js';
import { counter } from './gateway.js';
import type { Sample, Target } from './measure.js';
import { MEASURED, SHADOWED } from './bench-table.js';
import { f0, f1, f2, log, median, ms, ratio, table, verdict } from './report.js';
import type { RuntimeDelta } from './runtime-stats.js';

export interface RestRuns {
  readonly targets: readonly Target[];
  readonly conns: readonly number[];
  /** The fixed rate of the latency runs (the first, when `rates` lists several). */
  readonly rate: number;
  /**
   * Every fixed rate, when given: `fixed` is then keyed `${target}@${rate}` (without it, by target
   * alone, at `rate`).
   */
  readonly rates?: readonly number[];
  /** How the rates were chosen, printed under the results (e.g. fractions of a measured saturation). */
  readonly rateNote?: string;
  readonly rounds: number;
  /** Foreign load (% of the machine) from which a run counts as disturbed. */
  readonly quietPct: number;
  /** Closed-loop samples by `${target}@${conns}`. */
  readonly closed: ReadonlyMap<string, Sample[]>;
  /** Fixed-rate samples by target (or `${target}@${rate}`, see `rates`). */
  readonly fixed: ReadonlyMap<string, Sample[]>;
  /** The gateways' own account of their stalls in each fixed-rate run, keyed like `fixed` (lib/runtime-stats.ts). */
  readonly stalls?: ReadonlyMap<string, RuntimeDelta[]>;
}

const sys = (s: Sample): string => `r/w/sleep ${f1(s.perReq.syscr)}/${f1(s.perReq.syscw)}/${f1(s.perReq.vcsw)} per req`;

export function closedLine(round: number, conns: number, key: string, s: Sample): string {
  return (
    `round ${round} c=${String(conns).padStart(3)} ${key.padEnd(9)} ${f0(s.rps).padStart(7)} req/s  proxy ${f1(s.proxyUsPerReq).padStart(5)} µs/req (kernel ${f1(s.proxySysUsPerReq)})  backend ${f1(s.backendUsPerReq).padStart(5)} µs/req  p99 ${ms(s.p99us)} ms  non-2xx ${s.non2xx}  sock-err ${s.socketErrors}${s.errorDetail ? ` (${s.errorDetail})` : ''}  ${sys(s)}  other ${f0(s.otherPct)}%` +
    (s.rps < 100 ? '  STALLED: the server answered (almost) nothing in this run' : '')
  );
}

export function rateLine(round: number, rate: number, key: string, rr: RateResult, s: Sample): string {
  return `round ${round} ${rate}/s  ${key.padEnd(9)} p50 ${ms(rr.latencyUs.p50)} p99 ${ms(rr.latencyUs.p99)} p99.9 ${ms(rr.latencyUs.p999)} max ${ms(rr.latencyUs.max)} ms  proxy ${f1(s.proxyUsPerReq)} µs/req  ${rr.completed}/${rr.scheduled} done, skipped ${rr.skipped}, non-2xx ${rr.non2xx}, errors ${rr.errors}${s.errorDetail ? ` (${s.errorDetail})` : ''}, send lag p99 ${ms(rr.sendLagUs.p99)} max ${ms(rr.sendLagUs.max)} ms  ${sys(s)}  other ${f0(s.otherPct)}%`;
}

/** The results, syscalls, ratios, stalls and (with a gateway target) targets tables. */
export function printTables(r: RestRuns): void {
  const { targets, conns: CONNS, rate: RATE, closed, fixed, quietPct } = r;
  const RATES = r.rates ?? [RATE];
  const fixedOf = (key: string, rate: number): Sample[] | undefined => (r.rates ? fixed.get(`${key}@${rate}`) : rate === RATE ? fixed.get(key) : undefined);
  // Medians over the runs no other process disturbed (foreign load < quietPct); when every run
  // of a cell was disturbed, over all of them, and the cell is marked '*'.
  const clean = (xs: Sample[] | undefined): Sample[] => {
    const quiet = (xs ?? []).filter((s) => s.otherPct < quietPct);
    return quiet.length ? quiet : (xs ?? []);
  };
  const noisy = (xs: Sample[] | undefined): boolean => (xs ?? []).length > 0 && (xs ?? []).every((s) => s.otherPct >= quietPct);
  const med = (xs: Sample[] | undefined, f: (s: Sample) => number | null | undefined): number | null => {
    const v = clean(xs)
      .map(f)
      .filter((x): x is number => x !== null && x !== undefined && Number.isFinite(x));
    return v.length ? median(v) : null;
  };
  const mark = (xs: Sample[] | undefined, text: string): string => (noisy(xs) ? text + '*' : text);
  const sum = (xs: Sample[] | undefined, f: (s: Sample) => number): number => (xs ?? []).reduce((a, s) => a + f(s), 0);
  const latencies = (xs: Sample[] | undefined): string => (xs?.length ? mark(xs, `${ms(med(xs, (s) => s.p50us))} / ${ms(med(xs, (s) => s.p99us))} / ${ms(med(xs, (s) => s.p999us))}`) : '–');

  // ----- Results.
  const head = [
    'target',
    ...CONNS.flatMap((c) => [`req/s @${c}`, `proxy CPU µs/req @${c}`]),
    ...RATES.flatMap((rate) => [`p50 / p99 / p99.9 ms @${rate}/s`, `proxy CPU µs/req @${rate}/s`]),
    'backend µs/req',
    'non-2xx',
    'socket errors',
    'other load % med/max',
  ];
  const rows = targets.map((t) => {
    const allSamples = [...CONNS.flatMap((c) => closed.get(`${t.key}@${c}`) ?? []), ...RATES.flatMap((rate) => fixedOf(t.key, rate) ?? [])];
    return [
      t.label,
      ...CONNS.flatMap((c) => {
        const xs = closed.get(`${t.key}@${c}`);
        return [mark(xs, f0(med(xs, (s) => s.rps))), mark(xs, f1(med(xs, (s) => s.proxyUsPerReq)))];
      }),
      ...RATES.flatMap((rate) => {
        const fx = fixedOf(t.key, rate);
        return [latencies(fx), fx?.length ? mark(fx, f1(med(fx, (s) => s.proxyUsPerReq))) : '–'];
      }),
      f1(med(closed.get(`${t.key}@${CONNS[0]}`), (s) => s.backendUsPerReq)),
      String(sum(allSamples, (s) => s.non2xx)),
      String(sum(allSamples, (s) => s.socketErrors)),
      `${f0(med(allSamples, (s) => s.otherPct))}/${f0(Math.max(...allSamples.map((s) => s.otherPct)))}`,
    ];
  });
  log('');
  log(
    `## Results (median of ${r.rounds} rounds, over the runs with < ${quietPct}% foreign load when there are any; * = every run of that cell was disturbed; non-2xx and socket errors summed over all runs)`,
  );
  log('');
  log(table(head, rows));
  if (r.rateNote) log(`\nFixed rates: ${r.rateNote}.`);

  // ----- Where the CPU goes, outside JavaScript: syscalls and sleeps per request.
  const diagHead = [
    'target (proxy process; direct: backend)',
    ...[...CONNS.map((c) => `@${c}`), ...RATES.map((rate) => `@${rate}/s`)].map((c) => `reads / writes / sleeps per req, kernel µs/req ${c}`),
  ];
  const diag = (xs: Sample[] | undefined): string => {
    if (!xs?.length) return '–';
    return `${f2(med(xs, (s) => s.perReq.syscr))} / ${f2(med(xs, (s) => s.perReq.syscw))} / ${f2(med(xs, (s) => s.perReq.vcsw))}, ${f1(med(xs, (s) => s.proxySysUsPerReq))}`;
  };
  log('');
  log(
    "Syscalls and sleeps per request (read-ish and write-ish syscalls from /proc/<pid>/io, voluntary context switches of every thread): a sleep is an epoll_wait that blocked, so a wake-up; kernel µs: the proxy's stime per request (syscalls, loopback delivery, wake-ups; the rest of its CPU is user space).",
  );
  log('');
  log(
    table(
      diagHead,
      targets.map((t) => [t.label, ...CONNS.map((c) => diag(closed.get(`${t.key}@${c}`))), ...RATES.map((rate) => diag(fixedOf(t.key, rate)))]),
    ),
  );

  // ----- Ratios, and latency differences at the fixed rates.
  const rps = (k: string, c: number): number | null => med(closed.get(`${k}@${c}`), (s) => s.rps);
  const cpu = (k: string, c: number): number | null => med(closed.get(`${k}@${c}`), (s) => s.proxyUsPerReq);
  const lat = (k: string, rate: number, f: (s: Sample) => number | undefined): number | null => med(fixedOf(k, rate), f);
  const delta = (k: string, base: string, rate: number): string => {
    if (!fixedOf(k, rate)?.length || !fixedOf(base, rate)?.length) return '–';
    const d = (f: (s: Sample) => number | undefined): string => {
      const v = ((lat(k, rate, f) ?? NaN) - (lat(base, rate, f) ?? NaN)) / 1000;
      return Number.isFinite(v) ? `${v >= 0 ? '+' : '−'}${Math.abs(v).toFixed(2)}` : '–';
    };
    return `${d((s) => s.p99us)} / ${d((s) => s.p999us)}`;
  };
  const ratioRows: string[][] = [];
  for (const k of ['gateway', 'gateway-b', 'shadow', 'nginx-shadow', 'stock', 'relay', 'floor-bare', 'floor-raw', 'floor-http', 'floor-gw', 'floor', 'caddy', 'haproxy', 'nginx']) {
    if (!targets.some((t) => t.key === k)) continue;
    for (const base of k === 'gateway-b'
      ? ['gateway', 'direct', 'nginx', 'relay', 'stock', 'floor-gw', 'floor']
      : ['direct', 'nginx', 'haproxy', 'caddy', 'relay', 'stock', 'floor-bare', 'floor-gw', 'floor']) {
      if (base === k || !targets.some((t) => t.key === base)) continue;
      ratioRows.push([
        `${k} / ${base}`,
        ...CONNS.map((c) => ratio(rps(k, c), rps(base, c))),
        ...CONNS.map((c) => (base === 'direct' ? '–' : ratio(cpu(k, c), cpu(base, c)))),
        ...RATES.map((rate) => delta(k, base, rate)),
      ]);
    }
  }
  log('');
  log('## Ratios');
  log('');
  log(table(['', ...CONNS.map((c) => `req/s @${c}`), ...CONNS.map((c) => `CPU/req @${c}`), ...RATES.map((rate) => `Δ p99 / Δ p99.9 ms @${rate}/s`)], ratioRows));

  // ----- The gateways' own account of their stalls during the fixed-rate runs.
  if (r.stalls?.size) {
    const stallRows: string[][] = [];
    for (const t of targets) {
      for (const rate of RATES) {
        const ds = r.stalls.get(r.rates ? `${t.key}@${rate}` : t.key);
        if (!ds?.length) continue;
        const total = (f: (d: RuntimeDelta) => number): number => ds.reduce((a, d) => a + f(d), 0);
        const worst = (f: (d: RuntimeDelta) => number): number => Math.max(...ds.map(f));
        const kinds = [...new Set(ds.flatMap((d) => [...d.gc.keys()]))].sort();
        const gc = kinds
          .map((kind) => {
            const n = total((d) => d.gc.get(kind)?.count ?? 0);
            const secs = total((d) => d.gc.get(kind)?.seconds ?? 0);
            return `${kind} ${n}× ${(secs * 1000).toFixed(0)} ms, max ≤${boundText(worst((d) => d.gc.get(kind)?.maxBound ?? 0))}`;
          })
          .join('; ');
        stallRows.push([
          `${t.label} @${rate}/s`,
          f0(total((d) => d.probes)),
          `${f0(total((d) => d.late5))} / ${f0(total((d) => d.late10))} / ${f0(total((d) => d.late25))}`,
          `≤${boundText(worst((d) => d.p99))}`,
          `≤${boundText(worst((d) => d.maxBound))}`,
          gc || 'none',
        ]);
      }
    }
    log('');
    log(`## Stalls the gateway saw in itself during the fixed-rate runs (its workers' seldon_gateway_event_loop_delay_seconds and seldon_gateway_gc_pause_seconds, every round)`);
    log('');
    log(table(['target', 'loop probes', 'late > 5 / 10 / 25 ms', 'worst round p99', 'worst probe', 'GC pauses (count, total, largest)'], stallRows));
  }

  // ----- The gateway's targets (issue 15: ratios to nginx measured in this run).
  if (!targets.some((t) => t.key === 'gateway')) return;
  const checks: string[][] = [];
  const have = (k: string): boolean => targets.some((t) => t.key === k);
  const each = (f: (c: number) => number | null, fmt: (v: number) => string, ok: (v: number) => boolean): [string, string] => {
    const vs = CONNS.map(f);
    const known = vs.every((v): v is number => v !== null && Number.isFinite(v));
    return [vs.map((v, i) => `${v === null || !Number.isFinite(v) ? '–' : fmt(v)} @${CONNS[i]}`).join(', '), verdict(known ? vs.every((v) => ok(v!)) : null)];
  };
  const over = (a: number | null, b: number | null): number | null => (a !== null && b !== null && b > 0 ? a / b : null);
  if (have('nginx')) {
    checks.push([
      'req/s ≥ 0.5x nginx',
      ...each(
        (c) => over(rps('gateway', c), rps('nginx', c)),
        (v) => `${v.toFixed(2)}x`,
        (v) => v >= 0.5,
      ),
    ]);
    checks.push([
      'CPU per request ≤ 3x nginx',
      ...each(
        (c) => over(cpu('gateway', c), cpu('nginx', c)),
        (v) => `${v.toFixed(2)}x`,
        (v) => v <= 3,
      ),
    ]);
    const top = Math.max(...CONNS);
    const cl = (k: string): number | null => med(closed.get(`${k}@${top}`), (s) => s.p99us);
    const p99ratio = over(cl('gateway'), cl('nginx'));
    checks.push([
      `closed-loop p99 @${top} ≤ 3x nginx's`,
      p99ratio === null ? '–' : `${ms(cl('gateway'))} vs ${ms(cl('nginx'))} ms: ${p99ratio.toFixed(2)}x`,
      verdict(p99ratio === null ? null : p99ratio <= 3),
    ]);
    for (const rate of RATES) {
      const d = (f: (s: Sample) => number | undefined): number | null => {
        const g = lat('gateway', rate, f);
        const n = lat('nginx', rate, f);
        return g !== null && n !== null ? (g - n) / 1000 : null;
      };
      const [d99, d999] = [d((s) => s.p99us), d((s) => s.p999us)];
      const sign = (v: number): string => `${v >= 0 ? '+' : '−'}${Math.abs(v).toFixed(2)}`;
      checks.push([
        `@${rate}/s: p99 within 1 ms of nginx's, p99.9 within 3 ms`,
        d99 === null || d999 === null ? '–' : `p99 ${sign(d99)} ms, p99.9 ${sign(d999)} ms`,
        verdict(d99 === null || d999 === null ? null : d99 <= 1 && d999 <= 3),
      ]);
    }
  }
  if (have('caddy')) {
    // Ahead of a Go proxy at every point: less CPU per request than Caddy's.
    checks.push([
      "CPU per request below Caddy's",
      ...each(
        (c) => over(cpu('gateway', c), cpu('caddy', c)),
        (v) => `${v.toFixed(2)}x`,
        (v) => v < 1,
      ),
    ]);
  }
  if (have('relay')) {
    // The gateway's CPU per request against the raw relay's, the floor of a Node proxy.
    checks.push([
      'CPU per request ≤ 1.5x the raw relay',
      ...each(
        (c) => over(cpu('gateway', c), cpu('relay', c)),
        (v) => `${v.toFixed(2)}x`,
        (v) => v <= 1.5,
      ),
    ]);
    if (have('nginx'))
      checks.push([
        "(info) relay req/s / nginx's",
        each(
          (c) => over(rps('relay', c), rps('nginx', c)),
          (x) => `${x.toFixed(2)}x`,
          () => true,
        )[0],
        '–',
      ]);
  }
  if (have('nginx') && CONNS.includes(64)) {
    const v = over(rps('gateway', 64), rps('nginx', 64));
    checks.push(["req/s ≥ 0.75x nginx's @64", v === null ? '–' : `${v.toFixed(2)}x`, verdict(v === null ? null : v >= 0.75)]);
  }
  if (have('shadow')) {
    // The same cost from the gateway's CPU alone (the mirrored request also costs the backend, which shares the core).
    const shadowCpu = CONNS.map((c) => 1 - (cpu('gateway', c) ?? NaN) / (cpu('shadow', c) ?? NaN));
    const [text, v] = each(
      (c) => 1 - (rps('shadow', c) ?? NaN) / (rps('gateway', c) ?? NaN),
      (x) => `${(100 * x).toFixed(1)}%`,
      (x) => x < 0.15,
    );
    checks.push([
      '100% shadow costs < 15% req/s',
      `${text} (from the gateway's CPU/req alone: ${shadowCpu.map((x, i) => `${Number.isFinite(x) ? (100 * x).toFixed(1) : '–'}% @${CONNS[i]}`).join(', ')})`,
      v,
    ]);
  }
  if (have('nginx-shadow') && have('nginx')) {
    // The reference: what a 100% mirror costs nginx itself (its `mirror` directive), on the same backend and core.
    const [text] = each(
      (c) => 1 - (rps('nginx-shadow', c) ?? NaN) / (rps('nginx', c) ?? NaN),
      (x) => `${(100 * x).toFixed(1)}%`,
      () => true,
    );
    checks.push(["(reference) nginx's 100% mirror costs it", text, '–']);
  }
  if (have('gateway-b')) {
    // Gateway B as the runtime (or build) under test: at least as good as gateway on every row.
    checks.push([
      'gateway B req/s ≥ gateway',
      ...each(
        (c) => over(rps('gateway-b', c), rps('gateway', c)),
        (x) => `${x.toFixed(2)}x`,
        (x) => x >= 1,
      ),
    ]);
    checks.push([
      'gateway B CPU per request ≤ gateway',
      ...each(
        (c) => over(cpu('gateway-b', c), cpu('gateway', c)),
        (x) => `${x.toFixed(2)}x`,
        (x) => x <= 1,
      ),
    ]);
    for (const rate of RATES) {
      const b = lat('gateway-b', rate, (s) => s.p99us);
      const g = lat('gateway', rate, (s) => s.p99us);
      checks.push([`gateway B p99 @${rate}/s ≤ gateway's`, b === null || g === null ? '–' : `${ms(b)} vs ${ms(g)} ms`, verdict(b === null || g === null ? null : b <= g)]);
    }
  }
  if (have('floor')) {
    // Not a target: how much of the gateway's cost is its own work, over a proxy with none.
    const [text] = each(
      (c) => over(cpu('gateway', c), cpu('floor', c)),
      (x) => `${x.toFixed(2)}x`,
      () => true,
    );
    checks.push(["(info) gateway CPU per request / the floor's", text, '–']);
    if (have('nginx'))
      checks.push([
        "(info) floor req/s / nginx's",
        each(
          (c) => over(rps('floor', c), rps('nginx', c)),
          (x) => `${x.toFixed(2)}x`,
          () => true,
        )[0],
        '–',
      ]);
  }
  if (have('floor-gw')) {
    // Not a target: what the gateway adds to its own client (routing, header rules, metrics, timeouts).
    checks.push([
      "(info) gateway CPU per request / floor-gw's",
      each(
        (c) => over(cpu('gateway', c), cpu('floor-gw', c)),
        (x) => `${x.toFixed(2)}x`,
        () => true,
      )[0],
      '–',
    ]);
  }
  log('');
  log('## Targets (issues 15 and 54; gateway, full routing, 1 worker; ratios within this run)');
  log('');
  log(table(['target', 'measured', 'verdict'], checks));
}

const boundText = (s: number): string => (s === Infinity ? '>1 s' : s >= 1 ? `${s} s` : `${+(s * 1000).toFixed(1)} ms`);

/** What the gateway itself counted between two /metrics scrapes: the canary split, the mirrors, non-2xx series. */
export function gatewayCounters(before: string, after: string): string {
  const d = (labels: Record<string, string>): number => counter(after, 'seldon_gateway_requests_total', labels) - counter(before, 'seldon_gateway_requests_total', labels);
  const main = d({ deployment: MEASURED, predictor: 'main', kind: 'primary' });
  const canary = d({ deployment: MEASURED, predictor: 'canary', kind: 'primary' });
  const ds = (result: string): number =>
    counter(after, 'seldon_gateway_shadow_requests_total', { deployment: SHADOWED, result }) - counter(before, 'seldon_gateway_shadow_requests_total', { deployment: SHADOWED, result });
  const non200 = after.split('\n').filter((l) => l.startsWith('seldon_gateway_requests_total{') && !/code="2\d\d"/.test(l) && Number(l.slice(l.lastIndexOf(' ') + 1)) > 0);
  return (
    `gateway's own counters over the rounds: ${MEASURED} main ${main} / canary ${canary} (${main + canary ? ((100 * canary) / (main + canary)).toFixed(1) : '–'}% canary); ` +
    `${SHADOWED} shadow mirrors: mirrored ${ds('mirrored')}, dropped ${ds('dropped')}, failed ${ds('failed')}` +
    (non200.length ? `; non-2xx series: ${non200.join(', ')}` : '')
  );
}

/** Notes when other processes or the hypervisor took CPU during some runs. */
export function printNoiseNotes(r: RestRuns): void {
  const all = [...r.closed.values(), ...r.fixed.values()].flat();
  const other = all.map((s) => s.otherPct);
  const steal = all.map((s) => s.stealPct);
  if (Math.max(...other, 0) > 5)
    log(`note: other processes used up to ${f0(Math.max(...other))}% of the machine during some runs (median ${f0(median(other))}%): those runs are noisy; compare within one run only`);
  if (Math.max(...steal, 0) > 1) log(`note: hypervisor steal up to ${f0(Math.max(...steal))}% during some runs`);
}
