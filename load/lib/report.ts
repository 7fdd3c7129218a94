/**
 * Reporting helpers shared by the benchmarks: medians, number formats (– for a missing value),
 * Markdown tables (first column left, the others right-aligned), ratios and target verdicts.
 */

export const log = (s: string): void => void process.stdout.write(s + '\n');

export const median = (xs: readonly number[]): number => {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

/** The q-quantile (0..1) of `xs`, nearest rank. */
export function quantile(xs: ArrayLike<number>, q: number): number {
  if (!xs.length) return NaN;
  const s = Array.from(xs).sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))]!;
}

const missing = (n: number | null | undefined): n is null | undefined => n === null || n === undefined || !Number.isFinite(n);
/** Integer with thousands separators. */
export const f0 = (n: number | null | undefined): string => (missing(n) ? '–' : Math.round(n).toLocaleString('en-US'));
export const f1 = (n: number | null | undefined): string => (missing(n) ? '–' : n.toFixed(1));
export const f2 = (n: number | null | undefined): string => (missing(n) ? '–' : n.toFixed(2));
/** Microseconds as milliseconds, 2 decimals. */
export const ms = (us: number | null | undefined): string => (missing(us) ? '–' : (us / 1000).toFixed(2));

/** `a / b` as "1.23x", or – when either is missing or b is not positive. */
export const ratio = (a: number | null, b: number | null): string => (a !== null && b !== null && b > 0 ? `${(a / b).toFixed(2)}x` : '–');

/** PASS / FAIL, or n/a when the measure is missing. */
export const verdict = (ok: boolean | null): string => (ok === null ? 'n/a' : ok ? 'PASS' : 'FAIL');

export function table(head: readonly string[], rows: readonly (readonly string[])[]): string {
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string => '| ' + cells.map((c, i) => (i === 0 ? c.padEnd(w[i]!) : c.padStart(w[i]!))).join(' | ') + ' |';
  return [line(head), '|' + w.map((n, i) => (i === 0 ? ':' : '') + '-'.repeat(n + 1) + (i === 0 ? '' : ':')).join('|') + '|', ...rows.map(line)].join('\n');
}

/** P(X ≥ k) for X ~ Binomial(n, 1/2): how often k or more of n rounds lean one way when the builds are alike. */
function signTail(k: number, n: number): number {
  let p = 0;
  for (let i = k; i <= n; i++) {
    let c = 1;
    for (let j = 0; j < i; j++) c = (c * (n - j)) / (j + 1);
    p += c / 2 ** n;
  }
  return p;
}

/**
 * The verdict of an A/B from its per-round ratios (A's cost over B's). `dearer` (`cheaper`) when the median is more
 * than 2% above (below) 1 and a one-sided sign test says the rounds' spread cannot explain it: at least as many rounds
 * above (below) 1 would happen by chance at most 5% of the time were the builds alike (6 of 6, 7 of 7, 8 of 8, 9 of 10);
 * `within noise` otherwise.
 */
export function abVerdict(ratios: readonly number[]): string {
  if (!ratios.length) return 'verdict: no rounds';
  const m = median(ratios);
  const lo = Math.min(...ratios);
  const hi = Math.max(...ratios);
  const n = ratios.length;
  const up = signTail(ratios.filter((r) => r > 1).length, n);
  const down = signTail(ratios.filter((r) => r < 1).length, n);
  const word = m > 1.02 && up <= 0.05 ? 'dearer' : m < 0.98 && down <= 0.05 ? 'cheaper' : 'within noise';
  const pct = (x: number): string => `${x >= 1 ? '+' : ''}${((x - 1) * 100).toFixed(1)}%`;
  return `verdict: ${word} (median ${pct(m)}, rounds from ${pct(lo)} to ${pct(hi)}, spread ±${(((hi - lo) / 2) * 100).toFixed(1)}%, sign test p ${f2(Math.min(up, down))}, ${n} rounds)`;
}
