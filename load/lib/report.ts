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
export function quantile(xs: readonly number[], q: number): number {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
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

/**
 * The verdict of an A/B from its per-round ratios (A's cost over B's): dearer or cheaper only when
 * every round agrees and the median moves by more than 2%; otherwise within noise.
 */
export function abVerdict(ratios: readonly number[]): string {
  if (!ratios.length) return 'verdict: no rounds';
  const m = median(ratios);
  const lo = Math.min(...ratios);
  const hi = Math.max(...ratios);
  const word = lo > 1 && m > 1.02 ? 'dearer' : hi < 1 && m < 0.98 ? 'cheaper' : 'within noise';
  const pct = (x: number): string => `${x >= 1 ? '+' : ''}${((x - 1) * 100).toFixed(1)}%`;
  return `verdict: ${word} (median ${pct(m)}, rounds from ${pct(lo)} to ${pct(hi)}, spread ±${(((hi - lo) / 2) * 100).toFixed(1)}%, ${ratios.length} rounds)`;
}
